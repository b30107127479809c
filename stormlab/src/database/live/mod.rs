//! Live backends: the same scenarios against a real server, whose
//! statements keep it busy for the service time, with the database adapters
//! as pools. What differs between servers is behind [`Server`]
//! (`postgres.rs`: stormpool-postgres with and without deadline
//! propagation, deadpool-postgres, bb8-postgres; `mysql.rs`: stormpool-mysql
//! with and without, and mysql_async's own pool); the run is the same for
//! every one ([`Live`]).
//!
//! # A live run
//!
//! 1. The lab's own connections end any session a previous run left on the
//!    server, and prepare it for the statements.
//! 2. The pool is built and warmed up: twice its size of requests at once,
//!    so every pool starts with its connections open.
//! 3. The driver offers the scenario's load, in real time.
//! 4. Meanwhile a side connection samples the server's sessions every
//!    [`sampling::SAMPLE_EVERY`]: which tagged statements are running (see
//!    [`sampling`] for how dead work is told from them).
//! 5. After the load, sampling goes on until no statement of the run is
//!    left on the server (at most [`TAIL_LIMIT`]): the dead work a pool left
//!    behind is part of its bill. Then the pool is dropped and any session
//!    of the lab still open is ended, so the next run starts clean.
//!
//! Before a suite, the server must be reachable ([`ensure_reachable`]), and
//! recovery is judged against a statement's latency on the idle server
//! ([`unloaded_latency`]).

pub mod adapter;
pub mod mysql;
pub mod postgres;
pub mod sampling;
pub mod server;
pub mod workload;

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use stormpool::Priority;
use stormpool_testkit::open_loop::Grant;
use tokio::time::Instant;

use self::adapter::AdapterPool;
use self::sampling::{dead_work, Sample, Sampler};
use self::server::{LabConnection, Server};
use self::workload::Workload;
use crate::base::{Clock, DbUrl, LabError, LabParams, PoolKind};
use crate::database::{Database, Hang};
use crate::metrics::{Attempt, ServerStats};
use crate::pools::{PoolSetup, Request, SharedPool};
use crate::scenario::Scenario;

/// How long after the load the lab waits for the server to finish the
/// run's statements.
pub const TAIL_LIMIT: Duration = Duration::from_secs(15);

/// How long the lab waits for the sessions of a previous run to end.
const END_SESSIONS_LIMIT: Duration = Duration::from_secs(10);

/// How long the reachability check of a live database waits for its TCP
/// handshake.
const CONNECT_CHECK: Duration = Duration::from_secs(3);

/// A live server `S` opened for one run (see the module docs).
pub struct Live<S: Server> {
    server: S,
    /// The warm-up's size: the pool's.
    connections: usize,
    /// The lab's connection that cleans and prepares the server.
    admin: S::Conn,
    /// The connection that samples the sessions, until the sampler takes it.
    observer: Option<S::Conn>,
    sampler: Option<Sampler>,
    samples: Vec<Sample>,
    work: Workload,
}

impl<S: Server> Live<S> {
    /// Opens the server at `url` for one run of `scenario`: ends what a
    /// previous run left on it and prepares it.
    pub async fn open(
        url: &DbUrl,
        scenario: &Scenario,
        params: &LabParams,
    ) -> Result<Live<S>, LabError> {
        if scenario.cancels_ignored {
            // A live server acts on cancels; the lab cannot make it ignore them.
            return Err(LabError::ScenarioUnsupported {
                scenario: scenario.name(),
                database: S::NAME,
            });
        }
        let mut admin = S::Conn::connect(url, "stormlab-admin").await?;
        end_lab_sessions(&mut admin).await?;
        admin.prepare().await?;
        let observer = S::Conn::connect(url, "stormlab-sampler").await?;
        let work = Workload::new(S::sleep, params.service);
        Ok(Live {
            server: S::new(url, work.clone())?,
            connections: params.connections,
            admin,
            observer: Some(observer),
            sampler: None,
            samples: Vec::new(),
            work,
        })
    }
}

impl<S: Server> Database for Live<S> {
    fn build(&self, kind: PoolKind, setup: &PoolSetup) -> Result<SharedPool, LabError> {
        match kind {
            PoolKind::Stormpool | PoolKind::StormpoolNoPropagation => {
                let propagate = kind == PoolKind::Stormpool;
                let manager = self.server.manager();
                let pool = AdapterPool::<S>::new(manager, setup, propagate, self.work.clone())?;
                Ok(Arc::new(pool))
            }
            _ => self.server.build_peer(kind, setup),
        }
    }

    fn hang(&self) -> Hang {
        self.work.hang()
    }

    /// Warms the pool up, forgets the warm-up's statements and starts
    /// sampling the server's sessions.
    async fn ready(&mut self, pool: &SharedPool) {
        warm(pool, self.connections).await;
        self.work.forget();
        if let Some(observer) = self.observer.take() {
            self.sampler = Some(Sampler::start(observer));
        }
    }

    /// Samples until no statement of the run is left on the server, at
    /// most [`TAIL_LIMIT`].
    async fn settle(&mut self) {
        if let Some(sampler) = self.sampler.take() {
            sampler.wait_idle(TAIL_LIMIT).await;
            self.samples = sampler.stop().await;
        }
    }

    fn server_stats(&self, t0: Instant, attempts: &[Attempt]) -> ServerStats {
        self.work
            .server_stats(dead_work(&self.samples, t0, attempts))
    }

    /// Ends every session of the run still on the server.
    async fn close(mut self) -> Result<(), LabError> {
        end_lab_sessions(&mut self.admin).await?;
        self.admin.close().await;
        Ok(())
    }
}

/// Twice the pool's size of requests at once, so that it opens its
/// connections before the run.
async fn warm(pool: &SharedPool, size: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let tasks: Vec<_> = (0..2 * size as u64)
        .map(|i| {
            // Counted down from the top: apart from the run's attempts.
            let req = Request::new(
                u64::MAX - i,
                Priority::Normal,
                None,
                Some(deadline),
                Grant::new(),
            );
            let pool = pool.clone();
            tokio::spawn(async move { pool.serve(&req).await })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Ends the sessions the lab's pools left on the server and waits until
/// they are gone (at most [`END_SESSIONS_LIMIT`]).
async fn end_lab_sessions(admin: &mut impl LabConnection) -> Result<(), LabError> {
    let until = Instant::now() + END_SESSIONS_LIMIT;
    while admin.end_lab_sessions().await? > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Checks that the server at `url` is reachable: a TCP connect to its host
/// and port, so that an unreachable server is reported as such before a run
/// connects for real.
pub fn ensure_reachable(url: &DbUrl, database: &'static str) -> Result<(), LabError> {
    let address = url.address();
    let unreachable = |reason: String| LabError::Unreachable {
        database,
        address: address.clone(),
        reason,
    };
    let addrs: Vec<_> = address
        .to_socket_addrs()
        .map_err(|e| unreachable(e.to_string()))?
        .collect();
    let mut last = String::from("the host name resolves to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_CHECK) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(unreachable(last))
}

/// The latency of one statement on the idle server at `url`: the median
/// of 40 in a row on one connection of the lab's.
pub fn unloaded_latency<S: Server>(url: &DbUrl, service: Duration) -> Result<Duration, LabError> {
    let runtime = Clock::Real.runtime()?;
    runtime.block_on(async {
        let mut holder = S::Conn::connect(url, "stormlab-calibration").await?;
        holder.prepare().await?;
        let mut conn = S::Conn::connect(url, "stormlab-calibration").await?;
        let sql = S::sleep(service.as_secs_f64());
        let mut latencies = Vec::new();
        for _ in 0..40 {
            let start = Instant::now();
            conn.run_statement(&sql).await?;
            latencies.push(start.elapsed());
        }
        conn.close().await;
        holder.close().await;
        latencies.sort_unstable();
        Ok(latencies[latencies.len() / 2])
    })
}
