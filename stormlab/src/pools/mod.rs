//! The pools under test, each behind the one small [`LabPool`] trait so that
//! every scenario drives them the same way.
//!
//! A pool serves a [`Request`]: it gets a connection as its own API allows
//! (stormpool takes the request's deadline, priority and key; deadpool a
//! per-call wait timeout; bb8 a pool-wide one; the pre-fix model nothing),
//! reports the moment it yields the connection with [`Request::granted`], and
//! runs one query on it. The driver abandons the request at its deadline by
//! dropping the future, whatever the pool does, as a real client would.
//!
//! On the simulated database (this module's pools), deadpool's and bb8's
//! managers wrap [`::stormpool::sim::SimManager`] through the
//! [`::stormpool::Manager`] trait. Against a live server the same kinds are
//! the database adapters: stormpool-postgres, deadpool-postgres and
//! bb8-postgres (see [`crate::live`]).

mod bb8;
mod deadpool;
mod prefix;
pub(crate) mod stormpool;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::stormpool::Priority;
use serde::Serialize;
use tokio::time::Instant;

use crate::backend::Backend;

pub use self::bb8::Bb8Lab;
pub use self::deadpool::DeadpoolLab;
pub use self::prefix::PrefixLab;
pub use self::stormpool::StormpoolLab;

/// The pools the lab knows. Serialized as its [`name`](PoolKind::name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// stormpool, this project.
    Stormpool,
    /// deadpool 0.12 (managed), a popular peer.
    Deadpool,
    /// bb8 0.9, a popular peer.
    Bb8,
    /// A model of Vitess smartconnpool's waitlist before the fix of seed 000.
    Prefix,
    /// stormpool with `propagate_deadline` off: deadlines bound the wait
    /// only, never the statement on the server.
    StormpoolNoPropagation,
    /// mysql_async's own pool (live MySQL only).
    MysqlAsync,
}

impl PoolKind {
    /// Every pool the lab knows, in report order.
    pub const ALL: [PoolKind; 6] = [
        PoolKind::Stormpool,
        PoolKind::StormpoolNoPropagation,
        PoolKind::Deadpool,
        PoolKind::Bb8,
        PoolKind::MysqlAsync,
        PoolKind::Prefix,
    ];

    /// The pool's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            PoolKind::Stormpool => "stormpool",
            PoolKind::StormpoolNoPropagation => "stormpool-noprop",
            PoolKind::Deadpool => "deadpool",
            PoolKind::Bb8 => "bb8",
            PoolKind::Prefix => "prefix",
            PoolKind::MysqlAsync => "mysql_async",
        }
    }

    /// Every pool's name.
    pub fn names() -> Vec<&'static str> {
        PoolKind::ALL.iter().map(|p| p.name()).collect()
    }

    /// The pool called `name`.
    pub fn from_name(name: &str) -> Option<PoolKind> {
        PoolKind::ALL.into_iter().find(|p| p.name() == name)
    }

    /// A one-line description for reports, on `backend`.
    pub fn description(self, backend: &Backend) -> &'static str {
        let live = !matches!(backend, Backend::Sim);
        match (self, live) {
            (PoolKind::MysqlAsync, _) => {
                "mysql_async 0.37's own pool: at most `connections`, its defaults \
                 (a connection is reset when it comes back)"
            }
            (PoolKind::Stormpool, false) => {
                "stormpool: deadline, priority and key passed per request"
            }
            (PoolKind::Stormpool, true) => {
                "stormpool (adapter): deadline, priority and key passed per request; \
                 the deadline bounds the statement on the server; abandoned statements \
                 cancelled and drained"
            }
            (PoolKind::StormpoolNoPropagation, _) => {
                "stormpool as above, propagate_deadline off: the deadline bounds the \
                 wait only"
            }
            (PoolKind::Deadpool, false) => {
                "deadpool 0.12 (managed): per-call wait timeout = deadline"
            }
            (PoolKind::Deadpool, true) => {
                "deadpool-postgres 0.14: per-call wait timeout = deadline, \
                 RecyclingMethod::Fast (is_closed only, the default)"
            }
            (PoolKind::Bb8, false) => {
                "bb8 0.9: connection_timeout = deadline, test_on_check_out (probe) on"
            }
            (PoolKind::Bb8, true) => {
                "bb8-postgres 0.9: connection_timeout = deadline, test_on_check_out \
                 (empty query) on"
            }
            (PoolKind::Prefix, _) => {
                "pre-fix smartconnpool waitlist model: FIFO, hands off without a \
                 deadline check, expired requests still run their query"
            }
        }
    }
}

impl Serialize for PoolKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// How every pool of a run is configured.
#[derive(Clone, Debug)]
pub struct PoolSetup {
    /// The most connections open at once.
    pub max_size: usize,
    /// The requests' deadline, for pools that only take a pool-wide timeout.
    pub deadline: Duration,
    /// The hold limit, for pools that have one (`None`: no limit).
    pub max_hold: Option<Duration>,
    /// The most revoked connections still held, for pools with a hold limit.
    pub max_orphans: usize,
}

/// Why a pool did not serve a request (the driver's own abandonment at the
/// deadline is not one of these: it drops the future instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolError {
    /// The pool's own wait timed out.
    Timeout,
    /// Rejected by load shedding.
    Shed,
    /// Rejected early: the pool was wedged (nothing served for an interval).
    Wedged,
    /// Rejected: too many requests already waiting.
    TooManyWaiters,
    /// Rejected: too many requests of this fairness key waiting.
    KeyQueueFull,
    /// The pool is closed.
    Closed,
    /// Connecting to the database failed.
    Connect,
    /// The query failed on the connection (broken, or cancelled on the server).
    Query,
}

/// A pool under test.
pub trait LabPool: Send + Sync + 'static {
    /// Gets a connection for `req`, calls [`Request::granted`] the moment the
    /// pool yields it, and runs one query on it.
    ///
    /// # Cancel safety
    ///
    /// The driver drops the future at the request's deadline; the pool then
    /// behaves as its real counterpart does when a caller gives up.
    fn serve(&self, req: &Request) -> impl Future<Output = Result<(), PoolError>> + Send;

    /// The pool's own count of waiting requests, if it keeps one. The driver
    /// counts the requests it has waiting otherwise.
    fn waiting(&self) -> Option<usize> {
        None
    }

    /// What the report should say about how the pool ran this setup (an
    /// option it lacks, say).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Server time spent on queries after their clients gave up, where the
    /// pool knows it and the server cannot tell (the pre-fix model runs a
    /// query to its end for a client long gone). The server's own count is
    /// used otherwise.
    fn dead_work(&self) -> Option<Duration> {
        None
    }

    /// Connections the pool revoked so far for being held past its hold
    /// limit, where it has one (stormpool's `max_hold`); `None` otherwise.
    fn revoked(&self) -> Option<u64> {
        None
    }
}

/// One attempt of a client request, as a pool sees it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The attempt's number in its run, unique: live backends tag the
    /// statement with it, to tell on the server whose work it is.
    pub id: u64,
    /// The priority class.
    pub priority: Priority,
    /// The fairness key, if any.
    pub key: Option<u32>,
    /// When the client gives up; `None`: never (a job without a deadline,
    /// which waits for a connection as long as it takes).
    pub deadline: Option<Instant>,
    probe: Arc<Probe>,
}

/// What the driver learns about an attempt from the pool, possibly after the
/// client has given up (the pre-fix model grants connections to requests
/// long gone).
#[derive(Debug)]
pub(crate) struct Probe {
    granted: OnceLock<Instant>,
    /// Whether the attempt was already taken off the driver's waiting count.
    left_queue: AtomicBool,
    waiting: Arc<AtomicUsize>,
}

impl Request {
    /// A request counted in `waiting` until it is granted or ends.
    pub(crate) fn new(
        id: u64,
        priority: Priority,
        key: Option<u32>,
        deadline: Option<Instant>,
        waiting: Arc<AtomicUsize>,
    ) -> Request {
        // Relaxed: the count is a gauge read by the sampler, nothing more.
        waiting.fetch_add(1, Ordering::Relaxed);
        Request {
            id,
            priority,
            key,
            deadline,
            probe: Arc::new(Probe {
                granted: OnceLock::new(),
                left_queue: AtomicBool::new(false),
                waiting,
            }),
        }
    }

    /// The time left until the deadline (zero once it passed); `None`
    /// without a deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The pool yields a connection to this request now.
    pub fn granted(&self) {
        let _ = self.probe.granted.set(Instant::now());
        self.probe.leave_queue();
    }

    pub(crate) fn probe(&self) -> Arc<Probe> {
        self.probe.clone()
    }
}

impl Probe {
    /// When the pool yielded a connection, if it has.
    pub(crate) fn granted_at(&self) -> Option<Instant> {
        self.granted.get().copied()
    }

    /// Takes the attempt off the driver's waiting count, once.
    pub(crate) fn leave_queue(&self) {
        if !self.left_queue.swap(true, Ordering::Relaxed) {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
