//! A loopback TCP proxy that injects network faults between a client and a
//! server, switchable while connections are open.
//!
//! ```no_run
//! use std::time::Duration;
//! use stormpool_testkit::{Fault, FaultProxy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let proxy = FaultProxy::start("127.0.0.1:5432".parse().unwrap()).await?;
//! let addr = proxy.local_addr(); // point the client here
//! proxy.set_fault(Fault::Latency(Duration::from_millis(20)));
//! proxy.set_fault(Fault::Blackhole); // open connections freeze, new ones hang
//! proxy.set_fault(Fault::None); // and resume
//! # let _ = addr;
//! # Ok(())
//! # }
//! ```
//!
//! # Implementation details
//!
//! Each accepted connection runs as one task that pumps both directions and
//! watches its own `watch` channel for the fault in force. [`FaultProxy::set_fault`]
//! writes the new fault to every open connection's channel and to the default
//! of new ones, so a change reaches a connection blocked in a read at once.
//! A connection is served entirely on loopback: the proxy binds `127.0.0.1`.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A fault the proxy injects into the connections it carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Forward everything unchanged.
    #[default]
    None,
    /// Reset every connection (TCP RST on both sides); new connections are
    /// accepted and reset at once.
    Reset,
    /// Close every connection cleanly (FIN on both sides); new connections
    /// are accepted and closed at once.
    Close,
    /// Forward nothing in either direction, as a partition or a frozen peer
    /// would: bytes stay queued (nothing is lost) and flow again when the
    /// fault changes. New connections are accepted and hang the same way.
    Blackhole,
    /// Delay each chunk of data by this much, in each direction (a round
    /// trip gains twice the delay).
    Latency(Duration),
    /// Forward at most this many bytes per second, in each direction.
    Throttle(u64),
    /// Forward this many more bytes on each connection (both directions
    /// together, counted from when the fault is set or the connection
    /// opens), then reset it.
    CutAfter(u64),
}

/// The fault in force on one connection, and which `set_fault` call set it
/// (so `CutAfter` re-arms its budget on every call).
#[derive(Clone, Copy, Debug)]
struct Applied {
    fault: Fault,
    generation: u64,
}

struct Registry {
    generation: u64,
    /// What a connection accepted from now on starts with.
    for_new: Fault,
    /// One sender per open connection; pruned as connections end.
    open: Vec<watch::Sender<Applied>>,
}

struct ProxyShared {
    upstream: SocketAddr,
    registry: Mutex<Registry>,
    accepted: AtomicU64,
}

impl ProxyShared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A TCP proxy on `127.0.0.1` in front of one upstream address.
///
/// Dropping the proxy stops accepting and closes every connection it carries.
pub struct FaultProxy {
    local: SocketAddr,
    shared: Arc<ProxyShared>,
    acceptor: JoinHandle<()>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("local", &self.local)
            .field("upstream", &self.shared.upstream)
            .field("open", &self.open_connections())
            .finish()
    }
}

impl FaultProxy {
    /// Starts a proxy on an ephemeral loopback port, forwarding to
    /// `upstream`. Must be called inside a tokio runtime; the proxy's tasks
    /// run on it.
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let local = listener.local_addr()?;
        let shared = Arc::new(ProxyShared {
            upstream,
            registry: Mutex::new(Registry {
                generation: 0,
                for_new: Fault::None,
                open: Vec::new(),
            }),
            accepted: AtomicU64::new(0),
        });
        let acceptor = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy {
            local,
            shared,
            acceptor,
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The server behind the proxy.
    pub fn upstream_addr(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Sets the fault for every open connection and every new one.
    pub fn set_fault(&self, fault: Fault) {
        let mut registry = self.shared.registry();
        registry.generation += 1;
        registry.for_new = fault;
        let applied = Applied {
            fault,
            generation: registry.generation,
        };
        registry.open.retain(|tx| {
            tx.send_replace(applied);
            !tx.is_closed()
        });
    }

    /// Sets the fault only for connections accepted from now on; the open
    /// ones keep theirs. Use it to make new connects hang while the
    /// established connections keep working.
    pub fn set_fault_for_new(&self, fault: Fault) {
        let mut registry = self.shared.registry();
        registry.generation += 1;
        registry.for_new = fault;
    }

    /// How many connections the proxy has accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// How many connections are open through the proxy now.
    pub fn open_connections(&self) -> usize {
        let mut registry = self.shared.registry();
        registry.open.retain(|tx| !tx.is_closed());
        registry.open.len()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        // Dropping the senders ends every connection task (cleanly).
        self.shared.registry().open.clear();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<ProxyShared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = client.set_nodelay(true);
        // Relaxed: a statistic only.
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        let rx = {
            let mut registry = shared.registry();
            let (tx, rx) = watch::channel(Applied {
                fault: registry.for_new,
                generation: registry.generation,
            });
            registry.open.push(tx);
            rx
        };
        tokio::spawn(serve(client, shared.upstream, rx));
    }
}

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// One side closed or failed: close the other.
    Eof,
    Close,
    Reset,
}

/// The remaining byte budget of a `CutAfter` fault on one connection.
struct CutBudget(Mutex<Option<(u64, u64)>>);

impl CutBudget {
    /// How many of `len` bytes may pass under the `CutAfter(limit)` set by
    /// `generation`, and whether the budget is spent afterwards.
    fn take(&self, generation: u64, limit: u64, len: usize) -> (usize, bool) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (_, remaining) = match slot.as_mut() {
            Some(state) if state.0 == generation => state,
            _ => slot.insert((generation, limit)),
        };
        let allowed = (*remaining).min(len as u64);
        *remaining -= allowed;
        (allowed as usize, *remaining == 0)
    }
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, rx: watch::Receiver<Applied>) {
    let end = match rx.borrow().fault {
        Fault::Reset => Some(End::Reset),
        Fault::Close => Some(End::Close),
        _ => None,
    };
    if let Some(end) = end {
        finish(&mut client, None, end).await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        finish(&mut client, None, End::Reset).await;
        return;
    };
    let _ = server.set_nodelay(true);
    let budget = CutBudget(Mutex::new(None));
    let end = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let mut to_server = Pump {
            from: client_read,
            to: server_write,
            rx: rx.clone(),
            budget: &budget,
        };
        let mut to_client = Pump {
            from: server_read,
            to: client_write,
            rx,
            budget: &budget,
        };
        tokio::select! {
            end = to_server.run() => end,
            end = to_client.run() => end,
        }
    };
    finish(&mut client, Some(&mut server), end).await;
}

async fn finish(client: &mut TcpStream, server: Option<&mut TcpStream>, end: End) {
    let mut streams = vec![client];
    streams.extend(server);
    for stream in streams {
        match end {
            // SO_LINGER 0: closing the socket sends RST instead of FIN. The
            // deprecation warns of a blocking close with a non-zero linger
            // time; a zero one never blocks.
            End::Reset => {
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(Duration::ZERO));
            }
            End::Close | End::Eof => {
                let _ = stream.shutdown().await;
            }
        }
    }
}

/// One direction of a proxied connection.
struct Pump<'a> {
    from: ReadHalf<'a>,
    to: WriteHalf<'a>,
    rx: watch::Receiver<Applied>,
    budget: &'a CutBudget,
}

impl Pump<'_> {
    async fn run(&mut self) -> End {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let applied = *self.rx.borrow_and_update();
            match applied.fault {
                Fault::Reset => return End::Reset,
                Fault::Close => return End::Close,
                Fault::Blackhole => {
                    if self.rx.changed().await.is_err() {
                        return End::Close;
                    }
                    continue;
                }
                _ => {}
            }
            let n = tokio::select! {
                read = self.from.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return End::Eof,
                    Ok(n) => n,
                },
                changed = self.rx.changed() => {
                    if changed.is_err() {
                        return End::Close;
                    }
                    continue;
                }
            };
            if let Err(end) = self.deliver(&buf[..n]).await {
                return end;
            }
        }
    }

    /// Writes `data` on under the fault in force while it is delivered.
    async fn deliver(&mut self, mut data: &[u8]) -> Result<(), End> {
        while !data.is_empty() {
            let applied = *self.rx.borrow_and_update();
            let chunk = match applied.fault {
                Fault::Reset => return Err(End::Reset),
                Fault::Close => return Err(End::Close),
                Fault::Blackhole => {
                    self.rx.changed().await.map_err(|_| End::Close)?;
                    continue;
                }
                Fault::None => data.len(),
                Fault::Latency(delay) => {
                    if !self.pause(delay).await? {
                        continue;
                    }
                    data.len()
                }
                Fault::Throttle(bytes_per_sec) => {
                    let rate = bytes_per_sec.max(1);
                    // Slices of a tenth of a second keep the rate smooth.
                    let chunk = (rate / 10).clamp(1, data.len() as u64);
                    let delay = Duration::from_secs_f64(chunk as f64 / rate as f64);
                    if !self.pause(delay).await? {
                        continue;
                    }
                    chunk as usize
                }
                Fault::CutAfter(limit) => {
                    let (allowed, spent) = self.budget.take(applied.generation, limit, data.len());
                    self.write(&data[..allowed]).await?;
                    if spent {
                        return Err(End::Reset);
                    }
                    return Ok(());
                }
            };
            self.write(&data[..chunk]).await?;
            data = &data[chunk..];
        }
        Ok(())
    }

    /// Sleeps `delay`; `Ok(false)` when the fault changed meanwhile (the
    /// caller re-reads it), `Err` when the proxy is gone.
    async fn pause(&mut self, delay: Duration) -> Result<bool, End> {
        tokio::select! {
            _ = tokio::time::sleep(delay) => Ok(true),
            changed = self.rx.changed() => changed.map(|_| false).map_err(|_| End::Close),
        }
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), End> {
        self.to.write_all(data).await.map_err(|_| End::Eof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// An echo server on loopback; returns its address.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = sock.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(sock: &mut TcpStream, msg: &[u8]) -> io::Result<Vec<u8>> {
        sock.write_all(msg).await?;
        let mut buf = vec![0; msg.len()];
        sock.read_exact(&mut buf).await?;
        Ok(buf)
    }

    #[tokio::test]
    async fn forwards_and_switches_faults_on_open_connections() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let mut sock = TcpStream::connect(proxy.local_addr()).await.unwrap();
        assert_eq!(round_trip(&mut sock, b"hello").await.unwrap(), b"hello");

        proxy.set_fault(Fault::Latency(Duration::from_millis(30)));
        let start = Instant::now();
        round_trip(&mut sock, b"slow").await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(60));

        proxy.set_fault(Fault::Blackhole);
        let frozen =
            tokio::time::timeout(Duration::from_millis(100), round_trip(&mut sock, b"x")).await;
        assert!(frozen.is_err(), "a blackholed connection must not answer");
        // Nothing was lost: the queued byte arrives once the fault clears.
        proxy.set_fault(Fault::None);
        let mut buf = [0u8; 1];
        sock.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"x");

        proxy.set_fault(Fault::Reset);
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), sock.read(&mut buf)).await;
        assert!(matches!(read, Ok(Err(_)) | Ok(Ok(0))), "{read:?}");
        assert_eq!(proxy.accepted(), 1);
    }

    #[tokio::test]
    async fn close_and_reset_refuse_new_connections() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        for fault in [Fault::Close, Fault::Reset] {
            proxy.set_fault(fault);
            let mut sock = TcpStream::connect(proxy.local_addr()).await.unwrap();
            let outcome = round_trip(&mut sock, b"hi").await;
            assert!(outcome.is_err(), "{fault:?}: {outcome:?}");
        }
    }

    #[tokio::test]
    async fn cut_after_forwards_exactly_the_budget() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let mut sock = TcpStream::connect(proxy.local_addr()).await.unwrap();
        // 6 bytes out and 4 echoed back make 10: the connection is then cut.
        proxy.set_fault(Fault::CutAfter(10));
        sock.write_all(b"abcdef").await.unwrap();
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), sock.read_to_end(&mut got)).await;
        assert_eq!(got, b"abcd");
    }

    #[tokio::test]
    async fn throttle_limits_the_rate_and_new_fault_spares_open_connections() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let mut open = TcpStream::connect(proxy.local_addr()).await.unwrap();
        round_trip(&mut open, b"warm").await.unwrap();
        proxy.set_fault_for_new(Fault::Blackhole);
        let mut fresh = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let hung =
            tokio::time::timeout(Duration::from_millis(100), round_trip(&mut fresh, b"x")).await;
        assert!(hung.is_err());
        round_trip(&mut open, b"still fine").await.unwrap();

        proxy.set_fault(Fault::Throttle(1000));
        let start = Instant::now();
        round_trip(&mut open, &[7u8; 300]).await.unwrap();
        // 300 bytes at 1000 B/s take 0.3 s one way (the echo overlaps).
        assert!(start.elapsed() >= Duration::from_millis(280));
    }
}
