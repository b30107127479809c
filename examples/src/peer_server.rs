//! A loopback HTTP/1 peer that accepts route tables, for the `peer-sync`
//! example and its test.
//!
//! Each peer counts the TCP connections its accept loop takes and the
//! requests it serves, so a test can check that a client reuses its pooled
//! connections and which requests were retried. The server stops (its accept
//! loop and every connection) when its [`PeerServer`] is dropped.

use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The header carrying the route table's version.
pub const VERSION_HEADER: &str = "x-route-version";

/// How a peer answers a route push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Applies the table and answers `200 OK` at once.
    Healthy,
    /// Answers `200 OK` after this delay: a replica stuck in a long pause.
    Slow(Duration),
    /// Refuses every table with `409 Conflict`: its own version is newer.
    Conflict,
}

/// What a peer has seen. Counters only; read them with the accessors on
/// [`PeerServer`].
#[derive(Debug, Default)]
struct PeerStats {
    connections: AtomicUsize,
    requests: AtomicUsize,
    /// The last route table version applied; 0 for none.
    applied: AtomicU64,
}

/// A running loopback peer. Dropping it stops the server.
#[derive(Debug)]
pub struct PeerServer {
    addr: SocketAddr,
    behaviour: Behaviour,
    stats: Arc<PeerStats>,
    accept_loop: JoinHandle<()>,
}

impl PeerServer {
    /// Starts a peer on `127.0.0.1` on a port the system chooses.
    ///
    /// # Errors
    ///
    /// The listener could not be bound.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes leaves no server running.
    pub async fn start(behaviour: Behaviour) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(PeerStats::default());
        let accept_loop = tokio::spawn(accept(listener, behaviour, Arc::clone(&stats)));
        Ok(PeerServer {
            addr,
            behaviour,
            stats,
            accept_loop,
        })
    }

    /// Where the peer listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How the peer answers.
    pub fn behaviour(&self) -> Behaviour {
        self.behaviour
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// Requests received so far (answered or not).
    pub fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }

    /// The last route table version applied, if any.
    pub fn applied_version(&self) -> Option<u64> {
        match self.stats.applied.load(Ordering::SeqCst) {
            0 => None,
            version => Some(version),
        }
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        // The accept loop owns the connections' JoinSet: aborting it stops
        // them all.
        self.accept_loop.abort();
    }
}

async fn accept(listener: TcpListener, behaviour: Behaviour, stats: Arc<PeerStats>) {
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // A failed accept (out of descriptors) must not end the peer.
                Err(_) => continue,
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        stats.connections.fetch_add(1, Ordering::SeqCst);
        let stats = Arc::clone(&stats);
        connections.spawn(async move {
            let service = service_fn(move |request| answer(request, behaviour, Arc::clone(&stats)));
            // A client that gives up mid-request closes the connection:
            // that is an expected end, not an error to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    behaviour: Behaviour,
    stats: Arc<PeerStats>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    stats.requests.fetch_add(1, Ordering::SeqCst);
    let version = request
        .headers()
        .get(VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Read the whole table, as a real peer would, before answering.
    let table = request.into_body().collect().await;
    let (status, text) = match (behaviour, version, table) {
        (_, None, _) | (_, _, Err(_)) => (StatusCode::BAD_REQUEST, "missing version or body"),
        (Behaviour::Conflict, Some(_), Ok(_)) => (StatusCode::CONFLICT, "a newer table is applied"),
        (Behaviour::Slow(delay), Some(version), Ok(_)) => {
            tokio::time::sleep(delay).await;
            stats.applied.store(version, Ordering::SeqCst);
            (StatusCode::OK, "applied")
        }
        (Behaviour::Healthy, Some(version), Ok(_)) => {
            stats.applied.store(version, Ordering::SeqCst);
            (StatusCode::OK, "applied")
        }
    };
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    Ok(response)
}
