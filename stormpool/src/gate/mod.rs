//! [`Gate`]: the pool's waitlist and overload detector as a standalone
//! admission controller for any async critical section or downstream call,
//! and, with the `tower` feature, `GateLayer` in front of a tower service.
//!
//! A gate is a pool of `capacity` permits. It shares every mechanism of the
//! connection pool (the same queue, priority classes, fairness keys and
//! valves, the same CoDel detector, adaptive LIFO and shedding, the same
//! deadlines and counters) because it *is* a pool, whose "connections" are
//! permits that cost nothing to make. One mechanism, tested once.
//!
//! With `capacity` 1 it is a lock that sheds load: a critical section that
//! rejects early when its queue stands, instead of letting callers pile up
//! behind a slow holder.

use std::convert::Infallible;
use std::fmt;
use std::time::Duration;

use crate::error::{AcquireError, ConfigError};
use crate::pool::{AcquireOptions, Config, Conn, Pool, Status};
use crate::Manager;

use crate::admission::{CodelConfig, DeadlineAware};

#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use layer::{GateLayer, GateService, GateServiceError};

/// The [`Manager`] of a gate's permits: they are made instantly and never
/// break.
#[derive(Debug, Clone, Copy, Default)]
pub struct PermitManager;

impl Manager for PermitManager {
    type Connection = ();
    type Error = Infallible;
    type CancelToken = ();

    async fn connect(&self) -> Result<(), Infallible> {
        Ok(())
    }

    async fn check(&self, _: &mut ()) -> Result<(), Infallible> {
        Ok(())
    }

    fn cancel_token(&self, _: &()) {}
}

/// Why [`Gate::enter`] did not admit the request: [`AcquireError::Timeout`],
/// [`Shed`](AcquireError::Shed), [`Wedged`](AcquireError::Wedged) (a holder
/// is stuck and nothing has been admitted for an interval),
/// [`TooManyWaiters`](AcquireError::TooManyWaiters),
/// [`KeyQueueFull`](AcquireError::KeyQueueFull) or [`Closed`](AcquireError::Closed).
pub type GateError = AcquireError<Infallible>;

/// An admission controller with `capacity` permits.
///
/// ```
/// use std::time::Duration;
/// use stormpool::gate::Gate;
/// use stormpool::AcquireOptions;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let gate = Gate::builder().capacity(4).build()?;
/// let permit = gate
///     .enter_with(AcquireOptions::new().timeout(Duration::from_millis(20)))
///     .await?;
/// // ... the guarded work ...
/// drop(permit);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Gate {
    pool: Pool<PermitManager>,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("status", &self.status())
            .finish()
    }
}

impl Gate {
    /// Starts building a gate.
    pub fn builder() -> GateBuilder {
        GateBuilder::new()
    }

    /// Waits for a permit with the default options.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped request leaves the queue in O(1), and a permit
    /// already handed to it goes to the next live waiter.
    pub async fn enter(&self) -> Result<Permit, GateError> {
        self.enter_with(AcquireOptions::new()).await
    }

    /// Waits for a permit with per-request options (deadline, priority class,
    /// fairness key; settings are ignored).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`enter`](Gate::enter).
    pub async fn enter_with(&self, options: AcquireOptions) -> Result<Permit, GateError> {
        let conn = self.pool.get_with(options).await?;
        Ok(Permit { conn: Some(conn) })
    }

    /// A snapshot of the gate: `in_use` permits, waiters, overload state,
    /// counters.
    pub fn status(&self) -> Status {
        self.pool.status()
    }

    /// Changes the capacity at run time.
    pub fn resize(&self, capacity: usize) -> Result<(), ConfigError> {
        self.pool.resize(capacity)
    }

    /// Closes the gate: waiters and new requests fail with `Closed`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the gate is closed by the first poll.
    pub async fn close(&self) {
        // Permits are never "in use" beyond their holders' drops; a drain
        // timeout here only means holders are still running.
        let _ = self.pool.close().await;
    }
}

/// The right to run one guarded section. Dropping it, or calling
/// [`release`](Permit::release), lets the next waiter in.
#[must_use = "a permit is released as soon as it is dropped"]
pub struct Permit {
    conn: Option<Conn<PermitManager>>,
}

impl Permit {
    /// Releases the permit now. Idempotent: releasing twice, or dropping
    /// after releasing, does nothing more.
    pub fn release(&mut self) {
        self.conn = None;
    }

    /// Whether the permit is still held.
    pub fn is_held(&self) -> bool {
        self.conn.is_some()
    }

    /// Whether the gate revoked the permit (held past `max_hold`): its place
    /// went to the next waiter, and releasing it is a no-op.
    pub fn is_revoked(&self) -> bool {
        self.conn.as_ref().is_some_and(Conn::is_revoked)
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("held", &self.is_held())
            .finish()
    }
}

/// Builds a [`Gate`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct GateBuilder {
    config: Config,
}

impl Default for GateBuilder {
    fn default() -> Self {
        GateBuilder::new()
    }
}

impl GateBuilder {
    fn new() -> Self {
        let config = Config {
            name: "gate".to_owned(),
            max_size: 1,
            min_idle: 1,
            max_concurrent_connects: 1,
            // Permits need no probe and never age.
            check_interval: crate::pool::MAX_DURATION,
            idle_timeout: None,
            max_lifetime: None,
            ..Config::default()
        };
        GateBuilder { config }
    }

    /// Names the gate in its metrics and events (the `pool` label: a gate's
    /// permits are reported as its connections). Defaults to `"gate"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = name.into();
        self
    }

    /// How many holders may be inside at once (1: a lock). Defaults to 1.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.config.max_size = capacity;
        self.config.min_idle = capacity;
        self.config.max_concurrent_connects = capacity.max(1);
        self
    }

    /// The most requests waiting at once. Defaults to 1024.
    pub fn max_waiters(mut self, max_waiters: usize) -> Self {
        self.config.max_waiters = max_waiters;
        self
    }

    /// How long a request without its own deadline waits. Defaults to 5 s.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.config.acquire_timeout = timeout;
        self
    }

    /// The overload detector (`None`: plain FIFO, no shedding). Defaults to
    /// target 5 ms, interval 100 ms.
    pub fn codel(mut self, codel: Option<CodelConfig>) -> Self {
        self.config.codel = codel;
        self
    }

    /// The most permits one fairness key may hold. Defaults to no cap.
    pub fn max_in_flight_per_key(mut self, cap: Option<usize>) -> Self {
        self.config.max_in_flight_per_key = cap;
        self
    }

    /// The most waiting requests of one fairness key. Defaults to no cap.
    pub fn max_queued_per_key(mut self, cap: Option<usize>) -> Self {
        self.config.max_queued_per_key = cap;
        self
    }

    /// Revokes a permit held longer than `max_hold`: its place goes to the
    /// next waiter and a late release does nothing (a stuck holder cannot
    /// keep the section forever). Defaults to no limit.
    pub fn max_hold(mut self, max_hold: Option<Duration>) -> Self {
        self.config.max_hold = max_hold;
        // Revoked permits cost nothing: never refuse to revoke one.
        self.config.max_orphans = usize::MAX / 2;
        self
    }

    /// Skip waiters with too little time left. Defaults to off.
    pub fn deadline_aware(mut self, deadline_aware: DeadlineAware) -> Self {
        self.config.deadline_aware = deadline_aware;
        self
    }

    /// The maintenance period while requests wait (drives the timer-based
    /// shedding). Defaults to 10 ms.
    pub fn maintenance_tick(mut self, tick: Duration) -> Self {
        self.config.maintenance_tick = tick;
        self
    }

    /// Validates the configuration and creates the gate.
    pub fn build(self) -> Result<Gate, ConfigError> {
        let pool = Pool::builder(PermitManager).config(self.config).build()?;
        Ok(Gate { pool })
    }
}
