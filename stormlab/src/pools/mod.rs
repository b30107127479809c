//! The pools under test, each behind the one small [`LabPool`] trait so that
//! every scenario drives them the same way.
//!
//! A pool serves a [`Request`]: it gets a connection as its own API allows
//! (stormpool takes the request's deadline, priority and key; deadpool a
//! per-call wait timeout; bb8 a pool-wide one; the pre-fix model and the
//! semaphore floor nothing),
//! reports the moment it yields the connection with [`Request::granted`], and
//! runs one query on it. The driver abandons the request at its deadline by
//! dropping the future, whatever the pool does, as a real client would.
//!
//! The pools here run over the simulated database: deadpool's and bb8's
//! managers wrap [`::stormpool::sim::SimManager`] through the
//! [`::stormpool::Manager`] trait. Against a live server the same kinds are
//! the database adapters, built by the live backends over the helpers
//! here ([`stormpool::build`], [`deadpool::wait_timeout`],
//! [`bb8::builder`]).

pub mod bb8;
pub mod deadpool;
pub mod prefix;
pub mod semaphore;
pub mod stormpool;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ::stormpool::Priority;
use stormpool_testkit::open_loop::Grant;
use tokio::time::Instant;

use crate::base::PoolError;

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

/// The future of [`LabPool::serve`], boxed so that the driver can hold
/// whichever pool a backend built as one [`SharedPool`].
pub type ServeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), PoolError>> + Send + 'a>>;

/// A pool under test, of any kind, as the driver holds it.
pub type SharedPool = Arc<dyn LabPool>;

/// A pool under test.
pub trait LabPool: Send + Sync + 'static {
    /// Gets a connection for `req`, calls [`Request::granted`] the moment the
    /// pool yields it, and runs one query on it.
    ///
    /// # Cancel safety
    ///
    /// The driver drops the future at the request's deadline; the pool then
    /// behaves as its real counterpart does when a caller gives up.
    fn serve<'a>(&'a self, req: &'a Request) -> ServeFuture<'a>;

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
    /// Where the hand-off is recorded, possibly after the client has given
    /// up (the pre-fix model grants connections to requests long gone).
    grant: Grant,
}

impl Request {
    /// A request whose hand-off is recorded on `grant`.
    pub fn new(
        id: u64,
        priority: Priority,
        key: Option<u32>,
        deadline: Option<Instant>,
        grant: Grant,
    ) -> Request {
        Request {
            id,
            priority,
            key,
            deadline,
            grant,
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
        self.grant.granted();
    }

    /// Where the hand-off is recorded.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }
}
