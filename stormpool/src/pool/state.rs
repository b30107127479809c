//! The pool's state under its one mutex: the ledger, the idle store, the
//! waitlist, the connector's backoff and the counters, with every transition
//! between them.
//!
//! # Implementation details
//!
//! Each method takes `now` and an [`Effects`] to fill: wakers to wake,
//! connections to close and connects to start. The caller performs them after
//! releasing the lock, so no user code (manager, waker, destructor) ever runs
//! under it and the critical sections stay a few dozen instructions long.
//!
//! # Invariant (the ledger)
//!
//! `idle + in_use + handing_over + connecting + draining + closing == open`,
//! checked by [`State::check_ledger`] in debug builds after every
//! transition. `open` never grows beyond `max_size`; after a shrink it may
//! exceed the new size until enough connections come back, and then only
//! decreases. A connection being closed stays in `open` (as `closing`) until
//! [`Manager::close`] has returned, and a revoked one stays in `orphans`
//! until then, so the server never sees more than `max_size + max_orphans`
//! sessions of the pool: a replacement waits for the close.

use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use super::idle::{IdleEntry, IdleStore};
use super::lease::{Lease, LeaseId, Leases, NO_LEASE};
use super::options::{Priority, When};
use super::stats::Counters;
use super::waitlist::{Slot, WaiterId, Waitlist, CLASSES};
use super::wake::WakeList;
use crate::admission::{Codel, DeadlineAware};
use crate::clock::{Instant, Rng};
use crate::error::AcquireError;
use crate::manager::Manager;
use crate::pool::Config;
use crate::Settings;

/// A pooled connection and what the pool knows about it.
pub(crate) struct Entry<M: Manager> {
    pub(crate) conn: M::Connection,
    /// Shared with the lease watchdog, which cancels through it.
    pub(crate) cancel: Arc<M::CancelToken>,
    /// The lease of the request holding it, when leases are tracked.
    pub(crate) lease: LeaseId,
    pub(crate) id: u64,
    pub(crate) created: Instant,
    pub(crate) last_used: Instant,
    /// When the checkout probe becomes due: `last_used + check_interval`
    /// (`None`: never), computed once per return rather than per checkout.
    pub(crate) probe_after: Option<Instant>,
    /// When the last hand-off to a waiter was made.
    pub(crate) handed_at: Instant,
    /// `created + max_lifetime - jitter`.
    pub(crate) expires: Option<Instant>,
    pub(crate) settings: Option<Settings>,
    /// The fairness key of the request holding it (0: none).
    pub(crate) key: u64,
}

impl<M: Manager> Entry<M> {
    /// Records a use (or a successful round trip) at `now`.
    pub(crate) fn touch(&mut self, now: Instant, check_interval: Duration) {
        self.last_used = now;
        self.probe_after = now.checked_add(check_interval);
    }
}

impl<M: Manager> IdleEntry for Box<Entry<M>> {
    fn settings(&self) -> u32 {
        settings_id(self.settings.as_ref())
    }
    fn last_used(&self) -> Instant {
        self.last_used
    }
}

pub(crate) fn settings_id(settings: Option<&Settings>) -> u32 {
    settings.map_or(0, |s| s.id().get())
}

/// Why a waiter was removed from the waitlist without a connection.
pub(crate) enum Failure<E> {
    Timeout,
    Closed,
    Shed { retry_after: Duration },
    Wedged { stalled: Duration },
    Connect(ConnectFailure<E>),
}

/// How the last connect attempt failed.
pub(crate) enum ConnectFailure<E> {
    Error(Arc<E>),
    TimedOut,
}

impl<E> Clone for ConnectFailure<E> {
    fn clone(&self) -> Self {
        match self {
            ConnectFailure::Error(e) => ConnectFailure::Error(e.clone()),
            ConnectFailure::TimedOut => ConnectFailure::TimedOut,
        }
    }
}

impl<E> From<Failure<E>> for AcquireError<E> {
    fn from(failure: Failure<E>) -> Self {
        match failure {
            Failure::Timeout => AcquireError::Timeout,
            Failure::Closed => AcquireError::Closed,
            Failure::Shed { retry_after } => AcquireError::Shed { retry_after },
            Failure::Wedged { stalled } => AcquireError::Wedged { stalled },
            Failure::Connect(c) => c.into(),
        }
    }
}

impl<E> From<ConnectFailure<E>> for AcquireError<E> {
    fn from(failure: ConnectFailure<E>) -> Self {
        match failure {
            ConnectFailure::Error(e) => AcquireError::Connect(e),
            ConnectFailure::TimedOut => AcquireError::ConnectTimeout,
        }
    }
}

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

/// How many overdue waiters a hand-off may shed on its way; the maintenance
/// tick sheds the rest. Keeps the hand-off's work bounded.
const HANDOFF_SHED_BUDGET: usize = 8;

/// What a connection being closed still counts against, until its close
/// has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Closing {
    /// `open` (as `closing`).
    Pooled,
    /// `orphans`: a revoked connection its holder let go.
    Orphan,
}

/// Work to do once the lock is released.
pub(crate) struct Effects<M: Manager> {
    pub(crate) wakes: WakeList,
    /// Connections to close, each reported back with
    /// [`State::closed`] once [`Manager::close`] has returned.
    pub(crate) close: Vec<(Box<Entry<M>>, Closing)>,
    pub(crate) connects: usize,
    /// The maintenance task should run now (first waiter queued, closed).
    pub(crate) kick_maintenance: bool,
    /// Statements to cancel on the server (revoked leases).
    pub(crate) cancels: Vec<Arc<M::CancelToken>>,
    /// Leases held past the leak threshold: where they were acquired, and
    /// for how long.
    pub(crate) leaks: Vec<(&'static Location<'static>, Duration)>,
}

impl<M: Manager> Effects<M> {
    pub(crate) fn new() -> Self {
        Effects {
            wakes: WakeList::new(),
            close: Vec::new(),
            connects: 0,
            kick_maintenance: false,
            cancels: Vec::new(),
            leaks: Vec::new(),
        }
    }
}

/// The outcome of a checkout attempt.
pub(crate) enum Checkout<M: Manager> {
    /// An idle connection, now counted in use.
    Ready(Box<Entry<M>>),
    /// Queued as this waiter.
    Wait(WaiterId),
    Reject(AcquireError<M::Error>),
}

/// The connector's memory of failures, for backoff and fail-fast.
pub(crate) struct Connector<E> {
    pub(crate) failures: u32,
    /// When the backoff lets the pool try again on its own.
    pub(crate) retry_at: Option<Instant>,
    /// When the last attempt failed (`None` after a success).
    pub(crate) failed_at: Option<Instant>,
    pub(crate) last_failure: Option<ConnectFailure<E>>,
}

pub(crate) type Grant<M> = Box<Entry<M>>;
/// What a waiter collects: its connection, or why it has none.
pub(crate) type Collected<M> = Result<Box<Entry<M>>, Failure<<M as Manager>::Error>>;
/// What a connect task reports.
pub(crate) type Connected<M> = Result<
    (<M as Manager>::Connection, <M as Manager>::CancelToken),
    ConnectFailure<<M as Manager>::Error>,
>;
pub(crate) type Waiters<M> = Waitlist<Grant<M>, Failure<<M as Manager>::Error>>;

pub(crate) struct State<M: Manager> {
    pub(crate) max_size: usize,
    pub(crate) open: usize,
    pub(crate) in_use: usize,
    pub(crate) handing_over: usize,
    pub(crate) connecting: usize,
    pub(crate) draining: usize,
    /// Connections being closed, still in `open`.
    pub(crate) closing: usize,
    pub(crate) idle: IdleStore<Box<Entry<M>>>,
    pub(crate) waitlist: Waiters<M>,
    pub(crate) closed: bool,
    pub(crate) paused: bool,
    pub(crate) connector: Connector<M::Error>,
    pub(crate) counters: Counters,
    /// The connections in use, when `max_hold` or `leak_threshold` is set.
    pub(crate) leases: Leases<M::CancelToken>,
    track_leases: bool,
    /// Revoked connections whose holders have not let go yet, or whose
    /// close is not done yet; not in `open`.
    pub(crate) orphans: usize,
    /// Of `orphans`, those let go and being closed.
    pub(crate) orphans_closing: usize,
    pub(crate) last_revoke: Option<Instant>,
    /// Leases past `max_hold` that the watchdog's last pass left alone
    /// because `max_orphans` revoked connections were still held.
    pub(crate) stuck_leases: usize,
    /// Since when connects have been under way with none finishing (reset
    /// by every connect that finishes): a database that does not answer.
    pub(crate) connect_pending_since: Option<Instant>,
    /// How long connects may be under way before a waiter that times out
    /// meanwhile is told the database does not answer: the maintenance tick.
    connect_patience: Duration,
    /// Since when requests have been waiting (or turned away) without any
    /// request being served: taking an idle connection or giving one back
    /// in good order clears it; a hand-off alone does not, since a
    /// replacement handed to a request that gets stuck too serves nobody.
    /// The health check's and the shedding's measure of a wedged pool.
    pub(crate) starved_since: Option<Instant>,
    /// The last time a request had to wait or was turned away for lack of
    /// a connection.
    pub(crate) last_starved: Instant,
    /// One overload detector per priority class, each watching its class's
    /// own queue; `None` when admission control is off.
    pub(crate) codel: Option<[Codel; CLASSES]>,
    /// The moving average of hold times, in nanoseconds, for
    /// `DeadlineAware::LearnedHold` and the Critical class's LIFO switch.
    pub(crate) mean_hold: u64,
    /// The latest time any transition read from the clock.
    pub(crate) latest_now: Instant,
    /// Whether any detector has seen a non-empty queue since it was last
    /// reset: lets a pool that keeps up skip the detectors on its hot path.
    pub(crate) codel_active: bool,
    pub(crate) deadline_aware: DeadlineAware,
    pub(crate) next_conn_id: u64,
    pub(crate) rng: Rng,
}

impl<M: Manager> State<M> {
    pub(crate) fn new(config: &Config) -> Self {
        State {
            max_size: config.max_size,
            open: 0,
            in_use: 0,
            handing_over: 0,
            connecting: 0,
            draining: 0,
            closing: 0,
            idle: IdleStore::new(),
            waitlist: Waitlist::new(),
            closed: false,
            paused: false,
            connector: Connector {
                failures: 0,
                retry_at: None,
                failed_at: None,
                last_failure: None,
            },
            counters: Counters::default(),
            leases: Leases::new(),
            track_leases: config.max_hold.is_some() || config.leak_threshold.is_some(),
            orphans: 0,
            orphans_closing: 0,
            last_revoke: None,
            stuck_leases: 0,
            connect_pending_since: None,
            connect_patience: config.maintenance_tick,
            starved_since: None,
            last_starved: crate::clock::now(),
            codel: config.codel.map(|c| std::array::from_fn(|_| Codel::new(c))),
            mean_hold: 0,
            latest_now: crate::clock::now(),
            codel_active: false,
            deadline_aware: config.deadline_aware,
            next_conn_id: 1,
            rng: config.jitter_seed.map_or_else(Rng::new, Rng::with_seed),
        }
        .with_valves(config.max_in_flight_per_key)
    }

    fn with_valves(mut self, cap: Option<usize>) -> Self {
        self.waitlist.set_valve_cap(cap);
        self
    }

    /// Connections that exist and could serve a request eventually (not
    /// being opened or closed).
    pub(crate) fn established(&self) -> usize {
        self.open - self.connecting - self.closing
    }

    /// Connections counted against `max_size` that are not being closed.
    fn live(&self) -> usize {
        self.open - self.closing
    }

    /// Takes an idle connection, or queues the request, or rejects it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn checkout(
        &mut self,
        now: Instant,
        deadline: When,
        priority: Priority,
        key: u64,
        settings: Option<&Settings>,
        site: &'static Location<'static>,
        config: &Config,
        fx: &mut Effects<M>,
    ) -> Checkout<M> {
        if self.closed {
            self.counters.rejected_closed += 1;
            return Checkout::Reject(AcquireError::Closed);
        }
        if deadline.passed(now) {
            // A request out of time is never handed a connection.
            self.counters.timed_out += 1;
            return Checkout::Reject(AcquireError::Timeout);
        }
        self.latest_now = self.latest_now.max(now);
        let wanted = settings_id(settings);
        if !self.paused && !self.waitlist.is_capped(key) {
            while let Some((mut entry, _)) = self.idle.pop(wanted) {
                if entry.expires.is_some_and(|at| at <= now) {
                    // Past its lifetime since it was returned.
                    self.close(entry, CloseCause::Lifetime, fx);
                    continue;
                }
                self.in_use += 1;
                self.counters.acquired_direct += 1;
                self.waitlist.admit(key);
                entry.key = key;
                self.starved_since = None;
                self.take_lease(&mut entry, now, site);
                return Checkout::Ready(entry);
            }
        }
        if let Some(failure) = self.fail_fast(now, config) {
            self.counters.connect_errors += 1;
            return Checkout::Reject(failure.into());
        }
        if self.waitlist.len() + self.waitlist.held_len() >= config.max_waiters {
            self.counters.rejected_waiters += 1;
            self.starved(now);
            return Checkout::Reject(AcquireError::TooManyWaiters);
        }
        if let Some(cap) = config.max_queued_per_key.filter(|_| key != 0) {
            if self.waitlist.key_len(key) >= cap {
                self.counters.rejected_key_queue += 1;
                return Checkout::Reject(AcquireError::KeyQueueFull);
            }
        }
        fx.kick_maintenance = self.waitlist.is_empty();
        self.starved(now);
        let id = self.waitlist.push(
            now,
            deadline.resolve(),
            priority.index() as u8,
            key,
            wanted,
            None,
        );
        self.start_connects(now, config, fx);
        Checkout::Wait(id)
    }

    /// Hands a connection that is free to the next live waiter, or to the
    /// idle store. Never blocks and never hands to an expired waiter.
    pub(crate) fn dispatch(&mut self, now: Instant, mut entry: Box<Entry<M>>, fx: &mut Effects<M>) {
        if self.closed {
            return self.close(entry, CloseCause::PoolClosed, fx);
        }
        if self.live() > self.max_size {
            return self.close(entry, CloseCause::Resize, fx);
        }
        if !self.paused && !self.waitlist.is_empty() {
            let settings = settings_id(entry.settings.as_ref());
            let order = std::array::from_fn(|class| self.order(class, now));
            // Waiters whose deadline falls before `horizon` are treated as
            // expired: they could not use the connection in time.
            let horizon = now + self.min_remaining();
            let mut evicted = 0;
            let chosen = self.waitlist.pick(
                horizon,
                settings,
                order,
                &mut || Failure::Timeout,
                &mut fx.wakes,
                &mut evicted,
            );
            self.counters.evicted_expired += evicted;
            self.counters.timed_out += evicted;
            if let Some(id) = chosen {
                entry.handed_at = now;
                entry.key = self.waitlist.key_of(id);
                self.handing_over += 1;
                self.counters.handoffs += 1;
                self.waitlist.grant(id, entry, &mut fx.wakes);
                self.admission_tick(now, HANDOFF_SHED_BUDGET, fx);
                return;
            }
        }
        self.idle.push(entry);
        self.admission_tick(now, HANDOFF_SHED_BUDGET, fx);
    }

    /// Hands idle connections to eligible waiters. Normally there are none
    /// while a connection is idle (no lost wake-up), but a waiter let in by
    /// its key's valve, or a resume, can make one eligible.
    pub(crate) fn serve_idle(&mut self, now: Instant, fx: &mut Effects<M>) {
        while !self.paused && !self.waitlist.is_empty() {
            let Some((entry, _)) = self.idle.pop(0) else {
                break;
            };
            self.dispatch(now, entry, fx);
        }
    }

    /// A holder gave a connection back; it got it at `acquired`.
    /// `clock` is read only if the time matters (see below). `abandoned`:
    /// it is closed with a statement still running, which the caller
    /// cancels on the server.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn release(
        &mut self,
        mut entry: Box<Entry<M>>,
        acquired: Instant,
        close: Option<CloseCause>,
        abandoned: bool,
        config: &Config,
        fx: &mut Effects<M>,
        clock: impl FnOnce() -> Instant,
    ) {
        self.counters.cancelled_on_return += u64::from(abandoned);
        if self.end_lease(&mut entry) {
            // Revoked: already out of the ledger; never reused.
            return self.close_orphan(entry, fx);
        }
        self.in_use -= 1;
        // The clock is read only when the time matters to someone: waiters
        // (deadlines), the detectors, the learned hand-off guard. A pool
        // that keeps up stamps the connection with the latest time it has
        // seen, which is never later than now: at worst the connection
        // looks older than it is and is probed once more or closed by the
        // idle timeout a little early, never the other way round.
        let exact = !self.waitlist.is_empty()
            || self.codel_active
            || self.deadline_aware == DeadlineAware::LearnedHold;
        let now = if exact {
            let now = clock();
            self.latest_now = self.latest_now.max(now);
            now
        } else {
            self.latest_now.max(acquired)
        };
        if exact {
            // The mean hold time feeds the Critical class's LIFO switch and
            // the learned hand-off guard.
            let held = now.saturating_duration_since(acquired);
            let held = held.as_nanos().min(u64::MAX as u128) as u64;
            // An exponentially weighted average with weight 1/16.
            self.mean_hold = self.mean_hold - self.mean_hold / 16 + held / 16;
        }
        self.waitlist.key_done(std::mem::take(&mut entry.key), now);
        let cause = close.or_else(|| {
            entry
                .expires
                .is_some_and(|at| at <= now)
                .then_some(CloseCause::Lifetime)
        });
        match cause {
            Some(cause) => {
                self.close(entry, cause, fx);
                self.serve_idle(now, fx);
                self.start_connects(now, config, fx);
            }
            None => {
                // A request finished with its connection in good order:
                // the pool is serving (a revoked, abandoned or broken one
                // proves nothing of the kind).
                self.starved_since = None;
                entry.touch(now, config.check_interval);
                self.dispatch(now, entry, fx);
                self.serve_idle(now, fx);
            }
        }
    }

    /// A holder gave back a connection with a statement still running
    /// (`abandoned`) or with session state to undo: it leaves circulation,
    /// counted as draining, until the drain task reports.
    pub(crate) fn release_to_drain(
        &mut self,
        entry: &mut Entry<M>,
        abandoned: bool,
        now: Instant,
    ) -> bool {
        if self.end_lease(entry) {
            // Revoked: the caller closes it with `close_orphan`.
            return false;
        }
        if abandoned {
            self.counters.cancelled_on_return += 1;
        } else {
            self.counters.recycled_on_return += 1;
        }
        self.in_use -= 1;
        self.draining += 1;
        self.waitlist.key_done(std::mem::take(&mut entry.key), now);
        true
    }

    /// The drain task finished: back in service, or closed.
    pub(crate) fn drained(
        &mut self,
        now: Instant,
        mut entry: Box<Entry<M>>,
        ok: bool,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        self.draining -= 1;
        if ok && entry.expires.is_none_or(|at| at > now) {
            self.counters.drained += 1;
            entry.touch(now, config.check_interval);
            self.dispatch(now, entry, fx);
            self.serve_idle(now, fx);
        } else {
            self.close(
                entry,
                if ok {
                    CloseCause::Lifetime
                } else {
                    CloseCause::DrainFailed
                },
                fx,
            );
            self.start_connects(now, config, fx);
        }
    }

    /// A holder took the connection out of the pool for good.
    pub(crate) fn detach(
        &mut self,
        now: Instant,
        entry: &mut Entry<M>,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        let key = std::mem::take(&mut entry.key);
        if self.end_lease(entry) {
            // A revoked connection is already out of the ledger; taken out
            // of the pool, it is no orphan of the pool's either.
            self.orphans -= 1;
            self.counters.detached += 1;
            return;
        }
        self.in_use -= 1;
        self.open -= 1;
        self.counters.detached += 1;
        self.waitlist.key_done(key, now);
        self.serve_idle(now, fx);
        self.start_connects(now, config, fx);
    }

    /// Closes a pooled connection: it counts as `closing` until
    /// [`closed`](Self::closed) reports the close done.
    pub(crate) fn close(&mut self, entry: Box<Entry<M>>, cause: CloseCause, fx: &mut Effects<M>) {
        self.closing += 1;
        self.counters.count_close(cause);
        fx.close.push((entry, Closing::Pooled));
    }

    /// Closes a revoked connection its holder let go: it stays an orphan
    /// until the close is done.
    pub(crate) fn close_orphan(&mut self, entry: Box<Entry<M>>, fx: &mut Effects<M>) {
        self.counters.closed_revoked += 1;
        self.orphans_closing += 1;
        fx.close.push((entry, Closing::Orphan));
    }

    /// A close finished: the session is gone from the server, and its slot
    /// may be refilled.
    pub(crate) fn closed(
        &mut self,
        now: Instant,
        what: Closing,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        match what {
            Closing::Pooled => {
                self.closing -= 1;
                self.open -= 1;
                self.start_connects(now, config, fx);
            }
            Closing::Orphan => {
                self.orphans_closing -= 1;
                self.orphans -= 1;
            }
        }
    }

    /// A waiter's future is polled: collect its hand-off, or notice its
    /// deadline, or keep waiting.
    pub(crate) fn poll_waiter(
        &mut self,
        id: WaiterId,
        now: Instant,
        waker: &std::task::Waker,
        site: &'static Location<'static>,
        fx: &mut Effects<M>,
    ) -> Option<Collected<M>> {
        let record = self.waitlist.get_mut(id);
        let deadline = record.deadline;
        if let Slot::Queued = record.slot {
            if now < deadline {
                match &record.waker {
                    Some(w) if w.will_wake(waker) => {}
                    _ => record.waker = Some(waker.clone()),
                }
                return None;
            }
            self.waitlist.remove(id, now);
            self.counters.timed_out += 1;
            self.serve_idle(now, fx);
            return Some(Err(self.timeout_failure(now)));
        }
        match self.waitlist.release(id) {
            Slot::Granted(mut entry) => {
                self.handing_over -= 1;
                if entry.handed_at >= deadline {
                    // Impossible by construction (`pick` skips expired
                    // waiters); counted so tests and dashboards can prove it.
                    self.counters.dead_handoffs += 1;
                }
                if now >= deadline {
                    // Granted in time, but the request is past its deadline
                    // now: it has given up, so the connection moves on.
                    self.counters.timed_out += 1;
                    self.pass_on(now, entry, fx);
                    return Some(Err(self.timeout_failure(now)));
                }
                self.in_use += 1;
                self.counters.acquired_waited += 1;
                self.take_lease(&mut entry, now, site);
                Some(Ok(entry))
            }
            Slot::Failed(failure) => Some(Err(failure)),
            Slot::Queued | Slot::Vacant { .. } => Some(Err(Failure::Closed)),
        }
    }

    /// A waiter's future was dropped: leave the queue in O(1), or pass on a
    /// connection that was already handed to it.
    pub(crate) fn drop_waiter(&mut self, id: WaiterId, now: Instant, fx: &mut Effects<M>) {
        if let Slot::Queued = self.waitlist.get(id).slot {
            self.waitlist.remove(id, now);
            self.counters.cancelled += 1;
            self.serve_idle(now, fx);
            return;
        }
        if let Slot::Granted(entry) = self.waitlist.release(id) {
            self.handing_over -= 1;
            self.counters.cancelled += 1;
            self.pass_on(now, entry, fx);
        }
    }

    /// A request had to wait, or was turned away, for lack of a connection.
    fn starved(&mut self, now: Instant) {
        self.last_starved = now;
        self.starved_since.get_or_insert(now);
    }

    /// Starts a lease for a connection a request takes, if leases are tracked.
    fn take_lease(&mut self, entry: &mut Entry<M>, now: Instant, site: &'static Location<'static>) {
        if self.track_leases {
            entry.lease = self.leases.open(Lease {
                acquired: now,
                cancel: entry.cancel.clone(),
                site,
                revoked: false,
                reported: false,
            });
        }
    }

    /// Ends the lease of a connection coming back; whether it was revoked
    /// (an orphan, until closed or detached).
    fn end_lease(&mut self, entry: &mut Entry<M>) -> bool {
        let lease = std::mem::replace(&mut entry.lease, NO_LEASE);
        lease != NO_LEASE && self.leases.close(lease)
    }

    /// A connection granted to a waiter that will not take it goes on to
    /// the next one; the waiter's valve place is freed.
    fn pass_on(&mut self, now: Instant, mut entry: Box<Entry<M>>, fx: &mut Effects<M>) {
        self.waitlist.key_done(std::mem::take(&mut entry.key), now);
        self.dispatch(now, entry, fx);
        self.serve_idle(now, fx);
    }

    /// The failure of a waiter whose deadline passed: while no connection
    /// is established, what kept it from getting one (the last connect
    /// error, or a connect that has not finished), else a plain timeout.
    ///
    /// A connect counts as the cause once it has been under way, with none
    /// finishing, for longer than a maintenance tick (when health starts
    /// reporting it): a deadline shorter than an ordinary connect is the
    /// request's own timeout.
    pub(crate) fn timeout_failure(&self, now: Instant) -> Failure<M::Error> {
        if self.established() > 0 {
            return Failure::Timeout;
        }
        let stalled_connect = self
            .connect_pending_since
            .is_some_and(|since| now.saturating_duration_since(since) >= self.connect_patience);
        match &self.connector.last_failure {
            Some(failure) => Failure::Connect(failure.clone()),
            None if stalled_connect => Failure::Connect(ConnectFailure::TimedOut),
            None => Failure::Timeout,
        }
    }

    /// Stops admissions, fails every waiter with `Closed`, closes the idle
    /// connections. Connections in use are closed when they come back.
    pub(crate) fn shut(&mut self, now: Instant, fx: &mut Effects<M>) {
        self.closed = true;
        self.waitlist
            .fail_all(now, || Failure::Closed, &mut fx.wakes);
        for entry in self.idle.drain() {
            self.close(entry, CloseCause::PoolClosed, fx);
        }
    }

    /// Sets a new `max_size`; a shrink closes idle connections at once and
    /// the rest as they come back.
    pub(crate) fn resize(
        &mut self,
        now: Instant,
        max_size: usize,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        self.max_size = max_size;
        while self.live() > self.max_size {
            let Some((entry, _)) = self.idle.pop(0) else {
                break;
            };
            self.close(entry, CloseCause::Resize, fx);
        }
        self.start_connects(now, config, fx);
    }

    /// Stops serving requests: they queue until `resume` or their deadline.
    pub(crate) fn pause(&mut self) {
        self.paused = true;
    }

    /// Serves the queued requests from the idle store again.
    pub(crate) fn resume(&mut self, now: Instant, config: &Config, fx: &mut Effects<M>) {
        if !self.paused {
            return;
        }
        self.paused = false;
        while !self.waitlist.is_empty() {
            let Some((entry, _)) = self.idle.pop(0) else {
                break;
            };
            self.dispatch(now, entry, fx);
        }
        self.start_connects(now, config, fx);
    }

    /// Panics (debug builds) when the ledger does not balance, or a
    /// connection is idle while an eligible request waits (a lost wake-up).
    #[inline]
    pub(crate) fn check_ledger(&self) {
        debug_assert!(
            self.paused || self.idle.len() == 0 || self.waitlist.is_empty(),
            "lost wake-up: {} idle connections and {} eligible waiters",
            self.idle.len(),
            self.waitlist.len()
        );
        debug_assert_eq!(
            self.idle.len()
                + self.in_use
                + self.handing_over
                + self.connecting
                + self.draining
                + self.closing,
            self.open,
            "ledger: idle {} + in_use {} + handing_over {} + connecting {} + draining {} \
             + closing {} != open {}",
            self.idle.len(),
            self.in_use,
            self.handing_over,
            self.connecting,
            self.draining,
            self.closing,
            self.open
        );
    }
}
