//! The pool's state under its one mutex, and every transition of it.
//!
//! # Implementation details
//!
//! [`State`] composes parts that own their invariants: the [`Ledger`]
//! (where each connection is, counted through seats), the idle store, the
//! waitlist, the [`Connector`] (backoff and fail-fast), the
//! [`Admission`] detectors, the lease table and the counters. Its methods
//! are the transitions between them. Each takes `now` and an [`Effects`]
//! batch to fill; the caller performs the batch after releasing the lock, so
//! no user code (manager, waker, destructor) ever runs under it and the
//! critical sections stay a few dozen instructions long. Nothing here reads
//! the clock (but for the one lazy read `release` is given) or does I/O.
//!
//! The timer-driven transitions (maintenance, the lease watchdog, health)
//! are in `maintenance.rs`.

mod connector;
mod effects;
mod ledger;
mod maintenance;

use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use connector::Connector;
pub(crate) use effects::{Effects, Perform};
pub(crate) use ledger::{Ledger, Place, Seat};

use super::idle::{IdleEntry, IdleStore};
use super::lease::{Lease, LeaseId, Leases, NO_LEASE};
use super::options::{Priority, When};
use super::stats::{CloseCause, Counters, Status};
use super::waitlist::{Cell, WaiterId, Waitlist};
use crate::admission::{Admission, ClassQueue, Order, CLASSES};
use crate::clock::{Instant, Rng};
use crate::error::AcquireError;
use crate::manager::Manager;
use crate::pool::Config;
use crate::Settings;

/// A pooled connection and what the pool knows about it.
pub(crate) struct Entry<M: Manager> {
    pub(crate) conn: M::Connection,
    /// Its place in the ledger.
    seat: Seat,
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
    /// Closed with a statement still running: the close cancels it first.
    pub(crate) cancel_on_close: bool,
}

impl<M: Manager> Entry<M> {
    /// Records a use (or a successful round trip) at `now`.
    pub(crate) fn touch(&mut self, now: Instant, check_interval: Duration) {
        self.last_used = now;
        self.probe_after = now.checked_add(check_interval);
    }

    /// Takes the driver's connection out, for closing; the seat goes back
    /// to the ledger with [`State::closed`].
    pub(crate) fn into_parts(self) -> (M::Connection, Seat) {
        (self.conn, self.seat)
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

/// How many overdue waiters a hand-off may shed on its way; the maintenance
/// tick sheds the rest. Keeps the hand-off's work bounded.
const HANDOFF_SHED_BUDGET: usize = 8;

/// How often hand-offs sample the queue for the admission state, at most.
/// Its decisions take a detector's target (5 ms) or an interval (100 ms) to
/// form, so a sample per millisecond loses nothing, and a pool handing off
/// a million connections a second does not pay for a million samples.
const SAMPLE_EVERY: Duration = Duration::from_millis(1);

/// What a request asks for.
pub(crate) struct Ask<'a> {
    pub(crate) deadline: When,
    pub(crate) priority: Priority,
    pub(crate) key: u64,
    pub(crate) settings: Option<&'a Settings>,
    /// Where it was made, for the leak report.
    pub(crate) site: &'static Location<'static>,
}

/// The outcome of a checkout attempt.
pub(crate) enum Checkout<M: Manager> {
    /// An idle connection, now in use.
    Ready(Box<Entry<M>>),
    /// Queued: wait for the hand-off.
    Wait(Ticket<M>),
    Reject(AcquireError<M::Error>),
}

/// A queued request's claim on its hand-off: its place in the waitlist
/// while it is queued, and the cell its connection (or failure) is
/// written into, which it reads without the pool lock.
pub(crate) struct Ticket<M: Manager> {
    pub(crate) id: WaiterId,
    pub(crate) cell: Cell<Box<Entry<M>>, Failure<M::Error>>,
    pub(crate) deadline: Instant,
}

/// What a waiter collects: its connection, or why it has none.
pub(crate) type Collected<M> = Result<Box<Entry<M>>, Failure<<M as Manager>::Error>>;
/// What a connect task reports.
pub(crate) type Connected<M> = Result<
    (<M as Manager>::Connection, <M as Manager>::CancelToken),
    ConnectFailure<<M as Manager>::Error>,
>;
type Waiters<M> = Waitlist<Box<Entry<M>>, Failure<<M as Manager>::Error>>;

/// See the [module docs](self).
pub(crate) struct State<M: Manager> {
    ledger: Ledger,
    idle: IdleStore<Box<Entry<M>>>,
    waitlist: Waiters<M>,
    connector: Connector<M::Error>,
    admission: Admission,
    /// The connections in use, when `max_hold` or `leak_threshold` is set.
    leases: Leases<M::CancelToken>,
    track_leases: bool,
    counters: Counters,
    closed: bool,
    paused: bool,
    /// When the watchdog last revoked a lease.
    last_revoke: Option<Instant>,
    /// Leases past `max_hold` that the watchdog's last pass left alone
    /// because `max_orphans` revoked connections were still held.
    stuck_leases: usize,
    /// Since when requests have been waiting (or turned away) without any
    /// request being served: taking an idle connection or giving one back
    /// in good order clears it; a hand-off alone does not, since a
    /// replacement handed to a request that gets stuck too serves nobody.
    /// The health check's and the shedding's measure of a wedged pool.
    starved_since: Option<Instant>,
    /// The last time a request had to wait or was turned away for lack of
    /// a connection.
    last_starved: Instant,
    /// How long connects may be under way before a waiter that times out
    /// meanwhile is told the database does not answer: the maintenance tick.
    connect_patience: Duration,
    /// The latest time any transition read from the clock.
    latest_now: Instant,
    /// When a hand-off may sample the queue for the admission state again.
    next_sample: Instant,
    /// When the pool's timer next expires waiters: never later than the
    /// earliest deadline of a queued one (it may be earlier: that waiter
    /// may have been served since). `None`: nobody has queued since the
    /// last expiry found the queue empty.
    expiry_at: Option<Instant>,
    next_conn_id: u64,
    rng: Rng,
}

impl<M: Manager> State<M> {
    pub(crate) fn new(config: &Config) -> Self {
        let mut waitlist = Waitlist::new();
        waitlist.set_valve_cap(config.max_in_flight_per_key);
        State {
            ledger: Ledger::new(config.max_size),
            idle: IdleStore::new(),
            waitlist,
            connector: Connector::new(),
            admission: Admission::new(config.codel, config.deadline_aware),
            leases: Leases::new(),
            track_leases: config.max_hold.is_some() || config.leak_threshold.is_some(),
            counters: Counters::default(),
            closed: false,
            paused: false,
            last_revoke: None,
            stuck_leases: 0,
            starved_since: None,
            last_starved: crate::clock::now(),
            connect_patience: config.maintenance_tick,
            latest_now: crate::clock::now(),
            next_sample: crate::clock::now(),
            expiry_at: None,
            next_conn_id: 1,
            rng: config.jitter_seed.map_or_else(Rng::new, Rng::with_seed),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Connections counted against `max_size` (being closed included).
    pub(crate) fn open(&self) -> usize {
        self.ledger.open()
    }

    /// Consecutive failed connects (0 once one succeeds).
    pub(crate) fn connect_failures(&self) -> u32 {
        self.connector.failures()
    }

    /// Counts an acquire that ran out of time outside the lock (its round
    /// trip finished at its deadline).
    pub(crate) fn count_timeout(&mut self) {
        self.counters.timed_out += 1;
    }

    /// Whether the lease of a connection in use was revoked.
    pub(crate) fn is_revoked(&self, lease: LeaseId) -> bool {
        lease != NO_LEASE && self.leases.is_revoked(lease)
    }

    /// Whether any class's detector reports a standing queue.
    pub(crate) fn is_overloaded(&self) -> bool {
        self.admission.is_overloaded()
    }

    /// A snapshot of sizes, waiters and the state's counters.
    pub(crate) fn status(&self, now: Instant) -> Status {
        let l = &self.ledger;
        Status {
            max_size: l.max_size(),
            open: l.open(),
            idle: l.idle(),
            in_use: l.in_use(),
            connecting: l.connecting(),
            draining: l.draining(),
            closing: l.closing(),
            waiting: self.waitlist.len(),
            waiting_by_class: std::array::from_fn(|c| self.waitlist.class_len(c)),
            orphans: l.orphans_held(),
            held: self.waitlist.held_len(),
            overloaded: self.is_overloaded(),
            queue_delay: self.waitlist.head_age(now).unwrap_or_default(),
            connect_failures: self.connector.failures(),
            paused: self.paused,
            closed: self.closed,
            counters: self.counters.clone(),
        }
    }

    /// Takes an idle connection, or queues the request, or rejects it.
    pub(crate) fn checkout(
        &mut self,
        now: Instant,
        ask: &Ask<'_>,
        config: &Config,
        fx: &mut Effects<M>,
    ) -> Checkout<M> {
        if self.closed {
            self.counters.rejected_closed += 1;
            return Checkout::Reject(AcquireError::Closed);
        }
        if ask.deadline.passed(now) {
            // A request out of time is never handed a connection.
            self.counters.timed_out += 1;
            return Checkout::Reject(AcquireError::Timeout);
        }
        self.latest_now = self.latest_now.max(now);
        let wanted = settings_id(ask.settings);
        if !self.paused && !self.waitlist.is_capped(ask.key) {
            while let Some((mut entry, _)) = self.idle.pop(wanted) {
                if entry.expires.is_some_and(|at| at <= now) {
                    // Past its lifetime since it was returned.
                    self.close(entry, CloseCause::Lifetime, fx);
                    continue;
                }
                self.ledger.moved(&mut entry.seat, Place::InUse);
                self.counters.acquired_direct += 1;
                self.waitlist.admit(ask.key);
                entry.key = ask.key;
                self.starved_since = None;
                self.take_lease(&mut entry, now, ask.site);
                return Checkout::Ready(entry);
            }
        }
        let established = self.ledger.established();
        let fail_fast = self.connector.fail_fast(
            now,
            established,
            self.ledger.connecting(),
            config.connect_backoff_min,
        );
        if let Some(failure) = fail_fast {
            self.counters.connect_errors += 1;
            return Checkout::Reject(failure.into());
        }
        // Demand the idle store could not meet, whether it queues or not:
        // what the shedding floor weighs against the connections.
        self.admission.arrived();
        if self.waitlist.len() + self.waitlist.held_len() >= config.max_waiters {
            self.counters.rejected_waiters += 1;
            self.starved(now);
            return Checkout::Reject(AcquireError::TooManyWaiters);
        }
        if let Some(cap) = config.max_queued_per_key.filter(|_| ask.key != 0) {
            if self.waitlist.key_len(ask.key) >= cap {
                self.counters.rejected_key_queue += 1;
                return Checkout::Reject(AcquireError::KeyQueueFull);
            }
        }
        if self.waitlist.is_empty() {
            fx.kick_maintenance();
        }
        self.starved(now);
        let deadline = ask.deadline.resolve();
        let id = self.waitlist.push(
            now,
            deadline,
            ask.priority.index() as u8,
            ask.key,
            wanted,
            ask.site,
        );
        let cell = self.waitlist.cell(id);
        if self.expiry_at.is_none_or(|at| deadline < at) {
            // Deadlines mostly arrive in order, so the timer rarely moves.
            self.expiry_at = Some(deadline);
            fx.arm_expiry();
        }
        self.start_connects(now, config, fx);
        Checkout::Wait(Ticket { id, cell, deadline })
    }

    /// When the pool's timer must next run [`expire`](Self::expire).
    pub(crate) fn expiry_at(&self) -> Option<Instant> {
        self.expiry_at
    }

    /// Fails the waiters whose deadline has come, if any can have: the
    /// pool's one timer for every waiter, instead of a timer each. Each
    /// gets the failure its own timer would have given it.
    pub(crate) fn expire(&mut self, now: Instant, fx: &mut Effects<M>) {
        if self.expiry_at.is_none_or(|at| at > now) {
            return;
        }
        let failure = self.timeout_failure(now);
        let (expired, next) = self.waitlist.expire(
            now,
            || match &failure {
                Failure::Connect(c) => Failure::Connect(c.clone()),
                _ => Failure::Timeout,
            },
            fx.wakes(),
        );
        self.expiry_at = next;
        if expired > 0 {
            self.counters.timed_out += expired as u64;
            self.serve_idle(now, fx);
        }
    }

    /// Hands a connection that is free to the next live waiter, or to the
    /// idle store. Never blocks and never hands to an expired waiter.
    fn dispatch(&mut self, now: Instant, mut entry: Box<Entry<M>>, fx: &mut Effects<M>) {
        if self.closed {
            return self.close(entry, CloseCause::PoolClosed, fx);
        }
        if self.ledger.live() > self.ledger.max_size() {
            return self.close(entry, CloseCause::Resize, fx);
        }
        if !self.paused && !self.waitlist.is_empty() {
            let settings = settings_id(entry.settings.as_ref());
            let order = self.orders(now);
            // Waiters whose deadline falls before `horizon` are treated as
            // expired: they could not use the connection in time.
            let horizon = now + self.admission.min_remaining();
            let mut evicted = 0;
            let chosen = self.waitlist.pick(
                horizon,
                settings,
                order,
                &mut || Failure::Timeout,
                fx.wakes(),
                &mut evicted,
            );
            self.counters.evicted_expired += evicted;
            self.counters.timed_out += evicted;
            if let Some(id) = chosen {
                // The waiter takes the connection out of its cell without
                // the lock: it is in use from now on.
                entry.handed_at = now;
                entry.key = self.waitlist.key_of(id);
                let (deadline, site) = {
                    let record = self.waitlist.get(id);
                    (record.deadline, record.site)
                };
                if deadline <= now {
                    // Impossible by construction (`pick` skips expired
                    // waiters); counted so tests and dashboards can prove it.
                    self.counters.dead_handoffs += 1;
                }
                self.ledger.moved(&mut entry.seat, Place::InUse);
                self.counters.acquired_waited += 1;
                self.take_lease(&mut entry, now, site);
                self.counters.handoffs += 1;
                self.admission.handed_off(now);
                self.waitlist.grant(id, entry, fx.wakes());
                self.admission_sample(now, fx);
                return;
            }
        }
        self.ledger.moved(&mut entry.seat, Place::Idle);
        self.idle.push(entry);
        self.admission_sample(now, fx);
    }

    /// A hand-off's sample of the queue for the admission state, at most
    /// every [`SAMPLE_EVERY`].
    fn admission_sample(&mut self, now: Instant, fx: &mut Effects<M>) {
        if now < self.next_sample {
            return;
        }
        self.next_sample = now + SAMPLE_EVERY;
        self.admission_tick(now, HANDOFF_SHED_BUDGET, fx);
    }

    /// The order each class is served in now.
    fn orders(&self, now: Instant) -> [Order; CLASSES] {
        let critical = Priority::Critical.index();
        let critical_head_left = self.waitlist.oldest(critical).map(|head| {
            self.waitlist
                .get(head)
                .deadline
                .saturating_duration_since(now)
        });
        std::array::from_fn(|class| self.admission.order(class, critical_head_left))
    }

    /// Feeds the overload detectors and, in the overloaded classes, sheds
    /// up to `budget` waiters older than the slough age (lowest class
    /// first, never `Critical`).
    ///
    /// A waiter shed while nothing has been served for a whole interval is
    /// told the truth: the pool is wedged
    /// ([`AcquireError::Wedged`](crate::AcquireError::Wedged)), not
    /// overloaded. While no connection is established the queue waits for
    /// a connect, not for service, and nothing is measured or shed: its
    /// waiters get the connect's outcome or time out.
    fn admission_tick(&mut self, now: Instant, budget: usize, fx: &mut Effects<M>) {
        let queues = (!self.waitlist.is_empty() && self.ledger.established() > 0)
            .then(|| self.class_queues(now));
        let servable = queues.map(|q| q.map(|class| class.servable));
        let returning = self.ledger.draining() > 0;
        let Some(shedding) = self.admission.observe(now, queues, returning) else {
            return;
        };
        let retry_after = shedding.retry_after;
        let stalled = self
            .starved_since
            .map(|since| now.saturating_duration_since(since))
            .filter(|stalled| *stalled >= retry_after);
        // The newest waiters the connections can still serve in time are
        // not shed: with nobody arriving to take their place, shedding them
        // would only leave connections idle. A wedged pool serves nobody.
        let keep = match (stalled, servable) {
            (None, Some(servable)) => servable,
            _ => [0; CLASSES],
        };
        let shed = self.waitlist.shed(
            now,
            shedding.older_than,
            budget,
            shedding.classes,
            keep,
            || match stalled {
                Some(stalled) => Failure::Wedged { stalled },
                None => Failure::Shed { retry_after },
            },
            fx.wakes(),
        );
        if stalled.is_some() {
            self.counters.wedged += shed as u64;
        } else {
            self.counters.shed += shed as u64;
        }
        if shed > 0 {
            for class in 0..CLASSES {
                if self.waitlist.class_len(class) == 0 {
                    self.admission.emptied(now, class);
                }
            }
            self.serve_idle(now, fx);
        }
    }

    /// What the admission state needs to know of each class's queue:
    /// its head's age, its length, and whether FIFO would serve its newest
    /// waiter too late (the waiters ahead, in its class and those above, at
    /// the measured service rate of the connections that serve, would take
    /// more than four fifths of the time it has left).
    fn class_queues(&self, now: Instant) -> [ClassQueue; CLASSES] {
        // A lease stuck past `max_hold` that could not be revoked serves
        // nobody: counted, it would make the queue look faster than it is.
        let serving = self.ledger.established().saturating_sub(self.stuck_leases);
        let gap = self.admission.service_gap(serving);
        let arrival_rate = self.admission.arrival_rate();
        let mut ahead = 0usize;
        std::array::from_fn(|class| {
            let above = ahead;
            let len = self.waitlist.class_len(class);
            ahead += len;
            let (doomed, servable) = match (gap, self.waitlist.newest(class)) {
                (Some(gap), Some(newest)) => {
                    let left = self
                        .waitlist
                        .get(newest)
                        .deadline
                        .saturating_duration_since(now);
                    let wait = gap.saturating_mul(u32::try_from(ahead).unwrap_or(u32::MAX));
                    let doomed = wait.saturating_mul(5) > left.saturating_mul(4);
                    // Connections coming free in the time the newest has,
                    // less those the classes above and the requests
                    // arriving meanwhile take first.
                    let usable = left.mul_f64(0.8).as_secs_f64();
                    let free = usable / gap.as_secs_f64();
                    let taken = arrival_rate * usable + above as f64;
                    (doomed, (free - taken).max(0.0) as usize)
                }
                _ => (false, 0),
            };
            ClassQueue {
                head_age: self.waitlist.class_head_age(class, now),
                len,
                doomed,
                servable,
            }
        })
    }

    /// Hands idle connections to eligible waiters. Normally there are none
    /// while a connection is idle (no lost wake-up), but a waiter let in by
    /// its key's valve, or a resume, can make one eligible.
    fn serve_idle(&mut self, now: Instant, fx: &mut Effects<M>) {
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
            // Revoked: already out of the ledger; never reused. Its key's
            // place is free all the same.
            let now = self.latest_now.max(acquired);
            self.waitlist.key_done(std::mem::take(&mut entry.key), now);
            return self.close_orphan(entry, fx);
        }
        // The clock is read only when the time matters to someone: waiters
        // (deadlines), the detectors, the learned hand-off guard. A pool
        // that keeps up stamps the connection with the latest time it has
        // seen, which is never later than now: at worst the connection
        // looks older than it is and is probed once more or closed by the
        // idle timeout a little early, never the other way round.
        let exact = !self.waitlist.is_empty() || self.admission.needs_hold_times();
        let now = if exact {
            let now = clock();
            self.latest_now = self.latest_now.max(now);
            self.admission.held(now.saturating_duration_since(acquired));
            now
        } else {
            self.latest_now.max(acquired)
        };
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
    /// counted as draining, until the drain task reports. A revoked one is
    /// closed as the orphan it is instead (`false`).
    pub(crate) fn release_to_drain(
        &mut self,
        mut entry: Box<Entry<M>>,
        abandoned: bool,
        now: Instant,
        fx: &mut Effects<M>,
    ) -> Option<Box<Entry<M>>> {
        if self.end_lease(&mut entry) {
            self.waitlist.key_done(std::mem::take(&mut entry.key), now);
            self.close_orphan(entry, fx);
            return None;
        }
        if abandoned {
            self.counters.cancelled_on_return += 1;
        } else {
            self.counters.recycled_on_return += 1;
        }
        self.ledger.moved(&mut entry.seat, Place::Draining);
        self.waitlist.key_done(std::mem::take(&mut entry.key), now);
        Some(entry)
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
        if ok && entry.expires.is_none_or(|at| at > now) {
            self.counters.drained += 1;
            entry.touch(now, config.check_interval);
            self.dispatch(now, entry, fx);
            self.serve_idle(now, fx);
        } else {
            let cause = if ok {
                CloseCause::Lifetime
            } else {
                CloseCause::DrainFailed
            };
            self.close(entry, cause, fx);
            self.start_connects(now, config, fx);
        }
    }

    /// A holder took the connection out of the pool for good.
    pub(crate) fn detach(
        &mut self,
        now: Instant,
        mut entry: Entry<M>,
        config: &Config,
        fx: &mut Effects<M>,
    ) -> M::Connection {
        self.counters.detached += 1;
        let key = std::mem::take(&mut entry.key);
        let revoked = self.end_lease(&mut entry);
        let (conn, seat) = entry.into_parts();
        self.waitlist.key_done(key, now);
        if revoked {
            // Already out of the ledger; taken out of the pool, it is no
            // orphan of the pool's either.
            self.ledger.revoked_detached(seat);
            return conn;
        }
        self.ledger.release(seat);
        self.serve_idle(now, fx);
        self.start_connects(now, config, fx);
        conn
    }

    /// Closes a pooled connection: it keeps its slot, as `closing`, until
    /// [`closed`](Self::closed) reports the close done.
    fn close(&mut self, mut entry: Box<Entry<M>>, cause: CloseCause, fx: &mut Effects<M>) {
        self.ledger.moved(&mut entry.seat, Place::Closing);
        self.counters.count_close(cause);
        fx.close(entry);
    }

    /// Closes a revoked connection its holder let go: it stays an orphan
    /// until the close is done.
    fn close_orphan(&mut self, mut entry: Box<Entry<M>>, fx: &mut Effects<M>) {
        self.ledger.revoked_returned(&mut entry.seat);
        self.counters.closed_revoked += 1;
        fx.close(entry);
    }

    /// A close finished: the session is gone from the server, and its slot
    /// may be refilled.
    pub(crate) fn closed(
        &mut self,
        now: Instant,
        seat: Seat,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        let pooled = seat.place() == Place::Closing;
        self.ledger.release(seat);
        if pooled {
            self.start_connects(now, config, fx);
        }
    }

    /// Starts as many connects as real demand calls for, within
    /// `max_size`, `max_concurrent_connects` and the connector's backoff.
    fn start_connects(&mut self, now: Instant, config: &Config, fx: &mut Effects<M>) {
        if self.closed || self.paused {
            return;
        }
        let mut wanted = self.waitlist.len() + config.min_idle.saturating_sub(self.idle.len());
        if self.ledger.established() == 0 && self.connector.failures() > 0 {
            // Find out when the database is back even when nobody asks, so
            // that health does not report it unreachable for ever.
            wanted = wanted.max(1);
        }
        let allowed = self.connector.allowance(
            now,
            !self.waitlist.is_empty(),
            config.connect_backoff_min,
            config.max_concurrent_connects,
        );
        while self.ledger.connecting() < wanted.min(allowed) {
            let connecting = self.ledger.connecting();
            let Some(seat) = self.ledger.reserve() else {
                break;
            };
            self.connector.started(now, connecting);
            fx.connect(seat);
        }
    }

    /// A connect task finished, for the seat it was started with.
    pub(crate) fn connected(
        &mut self,
        now: Instant,
        seat: Seat,
        result: Connected<M>,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        match result {
            Ok((conn, cancel)) => {
                self.counters.connects_ok += 1;
                let expires = config.max_lifetime.map(|life| {
                    let jitter = self.rng.jitter(life / 8);
                    now + (life - jitter)
                });
                let entry = Box::new(Entry {
                    conn,
                    seat,
                    cancel: Arc::new(cancel),
                    lease: NO_LEASE,
                    id: self.next_conn_id,
                    created: now,
                    last_used: now,
                    probe_after: now.checked_add(config.check_interval),
                    handed_at: now,
                    expires,
                    settings: None,
                    key: 0,
                    cancel_on_close: false,
                });
                self.next_conn_id += 1;
                // The new connection is counted before it is placed, so the
                // connector sees the remaining connects.
                self.connector.succeeded(now, self.ledger.connecting() - 1);
                self.dispatch(now, entry, fx);
            }
            Err(failure) => {
                self.ledger.release(seat);
                self.counters.connects_failed += 1;
                if matches!(failure, ConnectFailure::TimedOut) {
                    self.counters.connect_timeouts += 1;
                }
                if self.ledger.established() == 0 {
                    // Nothing open could ever come back to the waiters: they
                    // were waiting for this very attempt. Tell them why.
                    self.counters.connect_errors += self.waitlist.len() as u64;
                    self.waitlist
                        .fail_all(now, || Failure::Connect(failure.clone()), fx.wakes());
                }
                self.connector.failed(
                    now,
                    failure,
                    self.ledger.connecting(),
                    config.connect_backoff_min,
                    config.connect_backoff_max,
                    &mut self.rng,
                );
            }
        }
        self.start_connects(now, config, fx);
    }

    /// A connect task was dropped before it finished (its runtime shut down).
    pub(crate) fn connect_abandoned(&mut self, seat: Seat) {
        self.ledger.release(seat);
        self.connector.abandoned(self.ledger.connecting());
    }

    /// A waiter's own timer fired (the pool's timer is not running): its
    /// outcome if one was written meanwhile, else a timeout if its deadline
    /// has passed, else nothing yet.
    pub(crate) fn waiter_timer_fired(
        &mut self,
        ticket: &Ticket<M>,
        now: Instant,
        fx: &mut Effects<M>,
    ) -> Option<Collected<M>> {
        if let Some(outcome) = ticket.cell.take_outcome() {
            return Some(outcome);
        }
        if now < ticket.deadline {
            // Still queued, still to be woken by its cell.
            return None;
        }
        // Nothing written: the waiter is still queued under its id, and
        // leaves; its waker goes with it.
        let _ = ticket.cell.take();
        self.waitlist.remove(ticket.id, now);
        self.counters.timed_out += 1;
        self.serve_idle(now, fx);
        Some(Err(self.timeout_failure(now)))
    }

    /// A waiter found its connection in its cell past its deadline: it has
    /// given up, so the connection moves on. Returns the waiter's failure.
    pub(crate) fn collected_late(
        &mut self,
        now: Instant,
        entry: Box<Entry<M>>,
        fx: &mut Effects<M>,
    ) -> Failure<M::Error> {
        self.counters.timed_out += 1;
        self.ungrant(now, entry, fx);
        self.timeout_failure(now)
    }

    /// A waiter's future was dropped: leave the queue in O(1), or pass on a
    /// connection that was already handed to it.
    pub(crate) fn drop_waiter(&mut self, ticket: &Ticket<M>, now: Instant, fx: &mut Effects<M>) {
        match ticket.cell.take() {
            None => {
                // Nothing written (writes happen under this lock): still
                // queued under its id.
                self.waitlist.remove(ticket.id, now);
                self.counters.cancelled += 1;
                self.serve_idle(now, fx);
            }
            Some(Ok(entry)) => {
                self.counters.cancelled += 1;
                self.ungrant(now, entry, fx);
            }
            Some(Err(_)) => {}
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
    /// the next one (or, revoked meanwhile, is closed); the waiter's valve
    /// place is freed, and the grant is not counted as an acquire.
    fn ungrant(&mut self, now: Instant, mut entry: Box<Entry<M>>, fx: &mut Effects<M>) {
        self.counters.acquired_waited -= 1;
        self.waitlist.key_done(std::mem::take(&mut entry.key), now);
        // As a return: a revoked connection is closed, not reused.
        if self.end_lease(&mut entry) {
            return self.close_orphan(entry, fx);
        }
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
    fn timeout_failure(&self, now: Instant) -> Failure<M::Error> {
        if self.ledger.established() > 0 {
            return Failure::Timeout;
        }
        let stalled_connect = self
            .connector
            .pending_for(now)
            .is_some_and(|pending| pending >= self.connect_patience);
        match self.connector.last_failure() {
            Some(failure) => Failure::Connect(failure.clone()),
            None if stalled_connect => Failure::Connect(ConnectFailure::TimedOut),
            None => Failure::Timeout,
        }
    }

    /// Stops admissions, fails every waiter with `Closed`, closes the idle
    /// connections. Connections in use are closed when they come back.
    pub(crate) fn shut(&mut self, now: Instant, fx: &mut Effects<M>) {
        self.closed = true;
        self.waitlist.fail_all(now, || Failure::Closed, fx.wakes());
        for entry in self.idle.drain() {
            self.close(entry, CloseCause::PoolClosed, fx);
        }
        fx.kick_maintenance();
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
        self.ledger.set_max_size(max_size);
        while self.ledger.live() > max_size {
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
        self.serve_idle(now, fx);
        self.start_connects(now, config, fx);
    }

    /// Panics (debug builds) when the ledger does not balance or disagrees
    /// with the idle store, or a connection is idle while an eligible
    /// request waits (a lost wake-up).
    #[inline]
    pub(crate) fn check_ledger(&self) {
        debug_assert!(
            self.paused || self.idle.len() == 0 || self.waitlist.is_empty(),
            "lost wake-up: {} idle connections and {} eligible waiters",
            self.idle.len(),
            self.waitlist.len()
        );
        debug_assert!(self.ledger.balances(), "ledger: {:?}", self.ledger);
        debug_assert_eq!(
            self.idle.len(),
            self.ledger.idle(),
            "idle store and ledger disagree"
        );
    }
}
