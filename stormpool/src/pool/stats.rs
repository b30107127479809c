//! What the pool can tell about itself: a cheap [`Status`] snapshot and the
//! cumulative [`Counters`].

/// Why a connection was closed; each cause has its counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseCause {
    /// `is_broken` said so on return or checkout.
    Broken,
    /// The holder called `Conn::taint`, or dropped the request mid-checkout.
    Tainted,
    /// The checkout probe, reset or apply failed or timed out.
    CheckFailed,
    /// Past `max_lifetime`.
    Lifetime,
    /// Idle for longer than `idle_timeout`.
    IdleTimeout,
    /// The pool was shrunk below its open connections.
    Resize,
    /// The pool was closed.
    PoolClosed,
    /// An abandoned statement did not drain in time.
    DrainFailed,
}

/// Cumulative counts of everything the pool did, since it was built.
///
/// Read them with [`Pool::status`](crate::Pool::status); each acquire ends in
/// exactly one of `acquired_direct`, `acquired_waited`, `timed_out`,
/// `rejected_*`, `shed`, `connect_errors`, `apply_errors` or `cancelled`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Acquires served from the idle store without waiting.
    pub acquired_direct: u64,
    /// Acquires served after waiting in the waitlist.
    pub acquired_waited: u64,
    /// Acquires whose deadline passed before a connection reached them.
    pub timed_out: u64,
    /// Acquires rejected because `max_waiters` requests were waiting.
    pub rejected_waiters: u64,
    /// Acquires rejected because the pool was closed.
    pub rejected_closed: u64,
    /// Acquires rejected by load shedding ([`AcquireError::Shed`](crate::AcquireError::Shed)).
    pub shed: u64,
    /// Acquires rejected early because nothing had been handed to anyone
    /// for an interval ([`AcquireError::Wedged`](crate::AcquireError::Wedged)).
    pub wedged: u64,
    /// Acquires rejected because their fairness key's queue was full.
    pub rejected_key_queue: u64,
    /// Acquires failed with the connect error while the database was down.
    pub connect_errors: u64,
    /// Acquires failed because the requested settings could not be applied.
    pub apply_errors: u64,
    /// Acquires whose future was dropped by the caller while waiting.
    pub cancelled: u64,
    /// Expired waiters a returner found in its way and removed (the rest
    /// are failed by the pool's timer at their deadline).
    pub evicted_expired: u64,
    /// Connections handed from a returner or connect to a waiting request.
    pub handoffs: u64,
    /// Connections handed to a request that had already given up. The pool
    /// is built so that this stays 0; it is counted to prove it.
    pub dead_handoffs: u64,
    /// Connects that succeeded.
    pub connects_ok: u64,
    /// Connects that failed (errors and timeouts).
    pub connects_failed: u64,
    /// Connects that took longer than `connect_timeout`.
    pub connect_timeouts: u64,
    /// Checkout probes run.
    pub checks: u64,
    /// Connections taken out of the pool with `Conn::detach`.
    pub detached: u64,
    /// Connections closed because `is_broken` reported them.
    pub closed_broken: u64,
    /// Connections closed because their holder tainted them, or dropped
    /// the request while the connection was being prepared.
    pub closed_tainted: u64,
    /// Connections closed because the checkout probe, reset or apply failed.
    pub closed_check_failed: u64,
    /// Connections closed at the end of their lifetime.
    pub closed_lifetime: u64,
    /// Idle connections closed by the idle timeout.
    pub closed_idle: u64,
    /// Connections closed because the pool was shrunk.
    pub closed_resize: u64,
    /// Connections closed because the pool was closed.
    pub closed_pool: u64,
    /// Revoked connections closed when their holder let go.
    pub closed_revoked: u64,
    /// Connections closed because an abandoned statement did not drain, or
    /// [`Manager::recycle`](crate::Manager::recycle) did not succeed, within
    /// `abandon_timeout`.
    pub closed_drain_failed: u64,
    /// Connections returned with a statement still running, whose statement
    /// was cancelled on the server (broken or tainted ones included, which
    /// are closed after the cancel).
    pub cancelled_on_return: u64,
    /// Connections returned with session state to undo
    /// ([`Manager::needs_recycle`](crate::Manager::needs_recycle)), recycled
    /// before reuse.
    pub recycled_on_return: u64,
    /// Connections drained (abandoned statement or recycle) and put back in
    /// service.
    pub drained: u64,
    /// Leases revoked by the watchdog (held past `max_hold`).
    pub revoked: u64,
    /// Leases past `max_hold` left alone because `max_orphans` were out.
    pub revocations_skipped: u64,
    /// Leases reported held past `leak_threshold`.
    pub leaks: u64,
}

impl Counters {
    pub(crate) fn count_close(&mut self, cause: CloseCause) {
        let counter = match cause {
            CloseCause::Broken => &mut self.closed_broken,
            CloseCause::Tainted => &mut self.closed_tainted,
            CloseCause::CheckFailed => &mut self.closed_check_failed,
            CloseCause::Lifetime => &mut self.closed_lifetime,
            CloseCause::IdleTimeout => &mut self.closed_idle,
            CloseCause::Resize => &mut self.closed_resize,
            CloseCause::PoolClosed => &mut self.closed_pool,
            CloseCause::DrainFailed => &mut self.closed_drain_failed,
        };
        *counter += 1;
    }

    /// Every connection closed, whatever the cause.
    pub fn closed(&self) -> u64 {
        self.closed_broken
            + self.closed_tainted
            + self.closed_check_failed
            + self.closed_lifetime
            + self.closed_idle
            + self.closed_resize
            + self.closed_pool
            + self.closed_revoked
            + self.closed_drain_failed
    }
}

/// A snapshot of the pool, taken under its lock in O(1).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// The current `max_size`.
    pub max_size: usize,
    /// Connections open or being opened: the sum of the five below.
    pub open: usize,
    /// Connections in the idle store.
    pub idle: usize,
    /// Connections held by requests (counted from the moment one is handed
    /// to a waiting request, which picks it up without the pool lock).
    pub in_use: usize,
    /// Connects in flight.
    pub connecting: usize,
    /// Connections returned with a statement still running, being drained.
    pub draining: usize,
    /// Connections being closed ([`Manager::close`](crate::Manager::close)
    /// under way): still counted against `max_size`, so that a replacement
    /// never runs beside a session the server still holds.
    pub closing: usize,
    /// Requests waiting, in total.
    pub waiting: usize,
    /// Requests waiting, per priority class (`Priority::ALL` order).
    pub waiting_by_class: [usize; 4],
    /// Consecutive failed connects (0 once one succeeds).
    pub connect_failures: u32,
    /// Revoked connections whose holders have not let go yet; counted apart
    /// from `open`, at most `max_orphans`.
    pub orphans: usize,
    /// Requests held back by their fairness key's in-flight cap.
    pub held: usize,
    /// Whether the overload detector reports a standing queue.
    pub overloaded: bool,
    /// The age of the oldest waiting request (zero when nobody waits).
    pub queue_delay: std::time::Duration,
    /// Whether the pool is paused.
    pub paused: bool,
    /// Whether the pool is closed.
    pub closed: bool,
    /// The cumulative counters.
    pub counters: Counters,
}
