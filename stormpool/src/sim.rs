//! A simulated database and its [`Manager`], for tests, examples and the
//! storm lab (feature `sim`, off by default: the workspace's own crates
//! that need it turn it on, and a production build does not compile it).
//!
//! The simulation keeps what matters to a pool and nothing else:
//!
//! * connects, probes, resets and settings take configurable time and can be
//!   made to fail, hang, or be slow ([`Behavior`]), switchable at run time;
//! * a query occupies its session on the "server" for the service time
//!   (with jitter), and, like a real server, **keeps running when the client
//!   drops the future**: the next query on that session waits behind it,
//!   until a server-side [`cancel`](Manager::cancel) stops it;
//! * a statement runs past the deadline the pool passed on at checkout
//!   only until that deadline, as with `statement_timeout`;
//! * queries can be made to hang until cancelled (a deadlock), connections
//!   can be broken all at once (a server restart) or at random;
//! * cancels can be made to go unheeded (a server that ignores them, a
//!   network that loses them).
//!
//! All time is tokio's, so the simulation runs under paused time.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::{self, Instant, Rng};
use crate::{Manager, Settings};

/// How one kind of operation behaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Behavior {
    /// Succeeds after the configured latency.
    #[default]
    Ok,
    /// Fails after the configured latency.
    Err,
    /// Succeeds after this long instead.
    Slow(Duration),
    /// Never completes.
    Never,
}

/// The simulated database's static parameters.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Time to open a connection. Default: 1 ms.
    pub connect_latency: Duration,
    /// Mean server time of one query. Default: 2 ms.
    pub service_time: Duration,
    /// Relative spread of the service time: each query takes
    /// `service_time * (1 ± jitter)`, uniform. Default: 0.
    pub service_jitter: f64,
    /// Time of a probe, reset or settings round trip. Default: 0.
    pub round_trip: Duration,
    /// Seed of the jitter and random failures. Default: 1.
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            connect_latency: Duration::from_millis(1),
            service_time: Duration::from_millis(2),
            service_jitter: 0.0,
            round_trip: Duration::ZERO,
            seed: 1,
        }
    }
}

/// The errors of the simulated database.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimError {
    /// The connect was refused (injected).
    Refused,
    /// The connection is broken.
    Broken,
    /// The statement was cancelled on the server.
    Cancelled,
    /// An injected failure of the named operation.
    Injected(&'static str),
    /// The statement ran into the request's deadline, which the pool passed
    /// on (as `statement_timeout` would stop it on a real server).
    StatementTimeout,
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Refused => f.write_str("simulated database refused the connection"),
            SimError::Broken => f.write_str("simulated connection is broken"),
            SimError::Cancelled => f.write_str("statement cancelled on the simulated server"),
            SimError::Injected(op) => write!(f, "injected failure in {op}"),
            SimError::StatementTimeout => {
                f.write_str("statement stopped at the request's deadline")
            }
        }
    }
}

impl std::error::Error for SimError {}

/// Counters of what the simulated server saw.
#[derive(Debug, Default)]
pub struct SimStats {
    /// Connects attempted.
    pub connects: AtomicU64,
    /// Connects that failed.
    pub connect_failures: AtomicU64,
    /// Connections alive now (opened and not yet dropped).
    pub live: AtomicUsize,
    /// Queries started.
    pub queries: AtomicU64,
    /// Queries that ran to completion on the server.
    pub completed: AtomicU64,
    /// Queries stopped by a server-side cancel.
    pub cancelled: AtomicU64,
    /// Server-side cancels received.
    pub cancels: AtomicU64,
    /// Probes run.
    pub checks: AtomicU64,
    /// Session resets run.
    pub resets: AtomicU64,
    /// Settings applied.
    pub applies: AtomicU64,
    /// Statements stopped on the server at the deadline the pool passed on.
    pub deadline_stops: AtomicU64,
    /// Server time spent on queries whose client had already gone, in
    /// microseconds (the dead work of abandoned statements).
    pub abandoned_micros: AtomicU64,
}

struct Behaviors {
    connect: Behavior,
    check: Behavior,
    apply: Behavior,
    reset: Behavior,
}

/// The simulated server, shared by the manager, its connections and the test
/// that steers it.
pub struct SimDb {
    config: SimConfig,
    behaviors: Mutex<Behaviors>,
    rng: Mutex<Rng>,
    hang: AtomicBool,
    /// Cancels are received (and counted) but stop nothing.
    ignore_cancels: AtomicBool,
    /// Connections opened before this generation are broken.
    broken_before: AtomicU64,
    generation: AtomicU64,
    /// Probability, in millionths, that a query breaks its connection.
    break_ppm: AtomicU64,
    next_id: AtomicU64,
    stats: SimStats,
}

impl fmt::Debug for SimDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimDb")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl SimDb {
    /// Sets how connects behave.
    pub fn set_connect(&self, behavior: Behavior) {
        self.behaviors().connect = behavior;
    }

    /// Sets how probes behave.
    pub fn set_check(&self, behavior: Behavior) {
        self.behaviors().check = behavior;
    }

    /// Sets how applying settings behaves.
    pub fn set_apply(&self, behavior: Behavior) {
        self.behaviors().apply = behavior;
    }

    /// Sets how session resets behave.
    pub fn set_reset(&self, behavior: Behavior) {
        self.behaviors().reset = behavior;
    }

    /// Makes every query started from now on hang until cancelled (`true`),
    /// or run normally again (`false`).
    pub fn set_hang(&self, hang: bool) {
        self.hang.store(hang, Ordering::SeqCst);
    }

    /// Makes server-side cancels stop the running statement (`true`, the
    /// default), or be received and ignored (`false`), as by a server that
    /// does not act on them or a network that loses them. An ignored cancel
    /// still counts in [`SimStats::cancels`], never in
    /// [`SimStats::cancelled`].
    pub fn set_cancellable(&self, cancellable: bool) {
        self.ignore_cancels.store(!cancellable, Ordering::SeqCst);
    }

    /// Breaks every connection open now, as a server restart would.
    pub fn break_all(&self) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.broken_before.store(generation, Ordering::SeqCst);
    }

    /// Makes each query break its connection with this probability.
    pub fn set_break_probability(&self, p: f64) {
        self.break_ppm
            .store((p.clamp(0.0, 1.0) * 1e6) as u64, Ordering::SeqCst);
    }

    /// What the server has seen so far.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    fn behaviors(&self) -> std::sync::MutexGuard<'_, Behaviors> {
        self.behaviors.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn random(&self) -> f64 {
        self.rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_f64()
    }

    async fn behave(
        &self,
        behavior: Behavior,
        latency: Duration,
        op: &'static str,
    ) -> Result<(), SimError> {
        match behavior {
            Behavior::Ok => sleep(latency).await,
            Behavior::Err => {
                sleep(latency).await;
                return Err(SimError::Injected(op));
            }
            Behavior::Slow(d) => sleep(d).await,
            Behavior::Never => std::future::pending::<()>().await,
        }
        Ok(())
    }

    fn service_time(&self) -> Duration {
        let base = self.config.service_time.as_secs_f64();
        let jitter = self.config.service_jitter.clamp(0.0, 1.0);
        if jitter == 0.0 {
            return self.config.service_time;
        }
        let factor = 1.0 + jitter * (2.0 * self.random() - 1.0);
        Duration::from_secs_f64(base * factor)
    }
}

async fn sleep(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

/// One session on the simulated server, shared by its connection and its
/// cancel token.
#[derive(Debug)]
struct Session {
    /// When the statements sent so far finish on the server.
    busy_until: Mutex<Instant>,
    /// Bumped by every server-side cancel.
    cancels: AtomicU64,
    cancelled: Notify,
    /// The planned end of a statement whose client left, already counted in
    /// `abandoned_micros` in full; a cancel takes back what it saves.
    abandoned_end: Mutex<Option<Instant>>,
}

impl Session {
    /// The statement of a client that left stops at `at` (cancel, or the
    /// session closing): take back the dead work it will not do.
    fn stop_abandoned(&self, db: &SimDb, at: Instant) {
        let end = self
            .abandoned_end
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(end) = end.filter(|end| *end > at) {
            let saved = (end - at).as_micros() as u64;
            let _ =
                db.stats
                    .abandoned_micros
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                        Some(v.saturating_sub(saved))
                    });
        }
    }
}

/// A connection to the simulated database.
#[derive(Debug)]
pub struct SimConnection {
    /// A token tests swap on every checkout and return: finding it already
    /// set on checkout means two holders share the connection.
    pub owner: AtomicU64,
    id: u64,
    generation: u64,
    broken: bool,
    settings: Option<Settings>,
    /// The deadline of the request holding the connection, if the pool
    /// passed it on: statements stop there.
    deadline: Option<Instant>,
    session: Arc<Session>,
    db: Arc<SimDb>,
}

/// Reaches a [`SimConnection`]'s session from elsewhere, to cancel its statement.
#[derive(Debug, Clone)]
pub struct SimCancelToken {
    session: Arc<Session>,
}

impl SimConnection {
    /// The server-side id of the session.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The settings the server believes this session carries.
    pub fn settings(&self) -> Option<&Settings> {
        self.settings.as_ref()
    }

    /// Whether the connection broke (or the server broke every connection
    /// since it was opened).
    pub fn is_broken(&self) -> bool {
        self.broken || self.generation < self.db.broken_before.load(Ordering::SeqCst)
    }

    /// Runs one query of the configured service time.
    ///
    /// # Cancel safety
    ///
    /// Like a real database, the statement keeps running on the server when
    /// this future is dropped; the next query on the session waits for it.
    pub async fn query(&mut self) -> Result<(), SimError> {
        let service = self.db.service_time();
        self.query_for(service).await
    }

    /// Runs one query that takes `service` on the server.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](SimConnection::query).
    pub async fn query_for(&mut self, service: Duration) -> Result<(), SimError> {
        if self.is_broken() {
            return Err(SimError::Broken);
        }
        let stats = &self.db.stats;
        stats.queries.fetch_add(1, Ordering::Relaxed);
        let hang = self.db.hang.load(Ordering::SeqCst);
        let now = clock::now();
        let (start, end, stopped) = {
            let mut busy = self
                .session
                .busy_until
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let start = (*busy).max(now);
            let mut end = if hang {
                start + Duration::from_secs(86_400 * 365)
            } else {
                start + service
            };
            // The server stops the statement at the propagated deadline.
            let stopped = self.deadline.is_some_and(|d| d < end);
            if let Some(d) = self.deadline.filter(|_| stopped) {
                end = d.max(start);
            }
            *busy = end;
            (start, end, stopped)
        };
        let cancels = self.session.cancels.load(Ordering::SeqCst);
        let mut finished = Finished {
            session: &self.session,
            db: &self.db,
            start,
            end,
            done: false,
        };
        let cancelled = self.session.cancelled.notified();
        tokio::pin!(cancelled);
        cancelled.as_mut().enable();
        if self.session.cancels.load(Ordering::SeqCst) == cancels {
            tokio::select! {
                _ = tokio::time::sleep_until(end) => {
                    finished.done = true;
                    if stopped {
                        stats.deadline_stops.fetch_add(1, Ordering::Relaxed);
                        return Err(SimError::StatementTimeout);
                    }
                    stats.completed.fetch_add(1, Ordering::Relaxed);
                }
                _ = cancelled => {
                    finished.done = true;
                    stats.cancelled.fetch_add(1, Ordering::Relaxed);
                    return Err(SimError::Cancelled);
                }
            }
        } else {
            finished.done = true;
            stats.cancelled.fetch_add(1, Ordering::Relaxed);
            return Err(SimError::Cancelled);
        }
        let ppm = self.db.break_ppm.load(Ordering::Relaxed);
        if ppm > 0 && self.db.random() * 1e6 < ppm as f64 {
            self.broken = true;
            return Err(SimError::Broken);
        }
        Ok(())
    }

    /// The deadline the pool passed on with this checkout, if any.
    pub fn statement_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether a statement sent on this session is still running on the server.
    pub fn statement_in_flight(&self) -> bool {
        *self
            .session
            .busy_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            > clock::now()
    }
}

/// Accounts the dead work of a query whose client dropped it.
struct Finished<'a> {
    session: &'a Session,
    db: &'a SimDb,
    start: Instant,
    end: Instant,
    done: bool,
}

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // The client left; the server goes on until `end` (or a cancel). The
        // time from the drop to the end is work nobody will read.
        let now = clock::now();
        let busy = *self
            .session
            .busy_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let end = self.end.min(busy).min(now + Duration::from_secs(3600));
        let from = now.max(self.start);
        if end > from {
            self.db
                .stats
                .abandoned_micros
                .fetch_add((end - from).as_micros() as u64, Ordering::Relaxed);
            *self
                .session
                .abandoned_end
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(end);
        }
    }
}

impl Drop for SimConnection {
    fn drop(&mut self) {
        // Closing the session stops whatever it still runs.
        self.session.stop_abandoned(&self.db, clock::now());
        self.db.stats.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The [`Manager`] of the simulated database.
#[derive(Debug, Clone)]
pub struct SimManager {
    db: Arc<SimDb>,
}

impl SimManager {
    /// A manager for a new simulated database.
    pub fn new(config: SimConfig) -> Self {
        let rng = Rng::with_seed(config.seed);
        SimManager {
            db: Arc::new(SimDb {
                config,
                behaviors: Mutex::new(Behaviors {
                    connect: Behavior::Ok,
                    check: Behavior::Ok,
                    apply: Behavior::Ok,
                    reset: Behavior::Ok,
                }),
                rng: Mutex::new(rng),
                hang: AtomicBool::new(false),
                ignore_cancels: AtomicBool::new(false),
                broken_before: AtomicU64::new(0),
                generation: AtomicU64::new(0),
                break_ppm: AtomicU64::new(0),
                next_id: AtomicU64::new(1),
                stats: SimStats::default(),
            }),
        }
    }

    /// The simulated database, to steer it and read its counters.
    pub fn db(&self) -> &Arc<SimDb> {
        &self.db
    }
}

impl Manager for SimManager {
    type Connection = SimConnection;
    type Error = SimError;
    type CancelToken = SimCancelToken;

    async fn connect(&self) -> Result<SimConnection, SimError> {
        let db = &self.db;
        db.stats.connects.fetch_add(1, Ordering::Relaxed);
        let behavior = db.behaviors().connect;
        if let Err(e) = db
            .behave(behavior, db.config.connect_latency, "connect")
            .await
        {
            db.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
            return Err(if e == SimError::Injected("connect") {
                SimError::Refused
            } else {
                e
            });
        }
        db.stats.live.fetch_add(1, Ordering::Relaxed);
        Ok(SimConnection {
            owner: AtomicU64::new(0),
            id: db.next_id.fetch_add(1, Ordering::Relaxed),
            generation: db.generation.load(Ordering::SeqCst),
            broken: false,
            settings: None,
            deadline: None,
            session: Arc::new(Session {
                busy_until: Mutex::new(clock::now()),
                cancels: AtomicU64::new(0),
                cancelled: Notify::new(),
                abandoned_end: Mutex::new(None),
            }),
            db: db.clone(),
        })
    }

    fn is_broken(&self, conn: &mut SimConnection) -> bool {
        conn.is_broken()
    }

    fn statement_in_flight(&self, conn: &mut SimConnection) -> bool {
        conn.statement_in_flight()
    }

    fn on_checkout(&self, conn: &mut SimConnection, deadline: Option<Instant>) {
        conn.deadline = deadline;
    }

    async fn check(&self, conn: &mut SimConnection) -> Result<(), SimError> {
        let db = &self.db;
        db.stats.checks.fetch_add(1, Ordering::Relaxed);
        if conn.is_broken() {
            return Err(SimError::Broken);
        }
        let behavior = db.behaviors().check;
        // A probe queues behind a statement still running on the session.
        let busy = *conn
            .session
            .busy_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        tokio::time::sleep_until(busy).await;
        db.behave(behavior, db.config.round_trip, "check").await
    }

    async fn apply(&self, conn: &mut SimConnection, settings: &Settings) -> Result<(), SimError> {
        let db = &self.db;
        db.stats.applies.fetch_add(1, Ordering::Relaxed);
        let behavior = db.behaviors().apply;
        db.behave(behavior, db.config.round_trip, "apply").await?;
        conn.settings = Some(settings.clone());
        Ok(())
    }

    async fn reset(&self, conn: &mut SimConnection) -> Result<(), SimError> {
        let db = &self.db;
        db.stats.resets.fetch_add(1, Ordering::Relaxed);
        let behavior = db.behaviors().reset;
        db.behave(behavior, db.config.round_trip, "reset").await?;
        conn.settings = None;
        Ok(())
    }

    /// The goodbye takes a round trip; the session lives until then.
    async fn close(&self, conn: SimConnection) {
        tokio::time::sleep(self.db.config.round_trip).await;
        drop(conn);
    }

    fn cancel_token(&self, conn: &SimConnection) -> SimCancelToken {
        SimCancelToken {
            session: conn.session.clone(),
        }
    }

    async fn cancel(&self, token: &SimCancelToken) -> Result<(), SimError> {
        self.db.stats.cancels.fetch_add(1, Ordering::Relaxed);
        if self.db.ignore_cancels.load(Ordering::SeqCst) {
            // As a real cancel request, it gets no answer either way.
            return Ok(());
        }
        let session = &token.session;
        let now = clock::now();
        session.stop_abandoned(&self.db, now);
        *session.busy_until.lock().unwrap_or_else(|p| p.into_inner()) = now;
        session.cancels.fetch_add(1, Ordering::SeqCst);
        session.cancelled.notify_waiters();
        Ok(())
    }
}
