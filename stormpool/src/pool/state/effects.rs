//! What a transition leaves to do once the pool lock is released: wakers
//! to wake, connections to close, connects to start, the timer to re-arm,
//! statements to cancel, leaks to report.
//!
//! A batch is private data: transitions add to it through its methods, and
//! [`Effects::perform`] is the one place that carries it out. Wakers, the
//! hot path's only effect, sit inline; everything else is one list of
//! [`Effect`]s that `perform` drains with an exhaustive `match`, so a new
//! kind of effect does not compile until it is performed, and no batch can
//! be skipped or half-run because some emptiness test forgot a kind. A
//! batch with nothing in it costs a check of each of its two parts.

use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use super::ledger::Seat;
use super::Entry;
use crate::manager::Manager;
use crate::pool::wake::WakeList;

/// Who performs a batch: the pool's shared part (and the loom models'
/// stand-in).
pub(crate) trait Perform<M: Manager> {
    /// Closes a connection whose seat is in `Closing` (or `Orphan`) and
    /// reports it closed once done.
    fn close(&self, entry: Box<Entry<M>>);
    /// Starts a connect for a seat in `Connecting`.
    fn connect(&self, seat: Seat);
    /// Runs the maintenance task now.
    fn kick_maintenance(&self);
    /// Tells the pool's timer that the earliest waiter deadline moved
    /// earlier.
    fn arm_expiry(&self);
    /// Cancels the statement of a revoked lease on the server.
    fn cancel_revoked(&self, statement: Arc<M::CancelToken>);
    /// Reports a lease held past the leak threshold.
    fn leak(&self, site: &'static Location<'static>, held: Duration);
}

/// One thing to do after the lock, other than a wake.
enum Effect<M: Manager> {
    Close(Box<Entry<M>>),
    Connect(Seat),
    KickMaintenance,
    ArmExpiry,
    CancelRevoked(Arc<M::CancelToken>),
    Leak(&'static Location<'static>, Duration),
}

/// A batch of work for after the lock; see the [module docs](self).
#[must_use = "a batch of effects must be performed"]
pub(crate) struct Effects<M: Manager> {
    wakes: WakeList,
    rest: Vec<Effect<M>>,
}

impl<M: Manager> Effects<M> {
    pub(crate) fn new() -> Self {
        Effects {
            wakes: WakeList::new(),
            rest: Vec::new(),
        }
    }

    /// The wakers to wake, for the waitlist to add to.
    pub(crate) fn wakes(&mut self) -> &mut WakeList {
        &mut self.wakes
    }

    /// Closes a connection whose seat is in `Closing` or `Orphan`.
    pub(crate) fn close(&mut self, entry: Box<Entry<M>>) {
        self.rest.push(Effect::Close(entry));
    }

    /// Starts a connect for a reserved seat.
    pub(crate) fn connect(&mut self, seat: Seat) {
        self.rest.push(Effect::Connect(seat));
    }

    /// Wakes the maintenance task (first waiter queued, pool closed).
    pub(crate) fn kick_maintenance(&mut self) {
        self.rest.push(Effect::KickMaintenance);
    }

    /// Re-arms the pool's timer for an earlier waiter deadline.
    pub(crate) fn arm_expiry(&mut self) {
        self.rest.push(Effect::ArmExpiry);
    }

    /// Cancels the statement of a revoked lease.
    pub(crate) fn cancel_revoked(&mut self, statement: Arc<M::CancelToken>) {
        self.rest.push(Effect::CancelRevoked(statement));
    }

    /// Reports a lease held past the leak threshold.
    pub(crate) fn leak(&mut self, site: &'static Location<'static>, held: Duration) {
        self.rest.push(Effect::Leak(site, held));
    }

    /// Does everything in the batch, leaving it empty: wakes first, so a
    /// woken task never waits on the rest. Taken by reference so the batch
    /// is not moved on the hot path.
    #[inline]
    pub(crate) fn perform(&mut self, to: &impl Perform<M>) {
        self.wakes.wake_all();
        if !self.rest.is_empty() {
            self.perform_rest(to);
        }
    }

    fn perform_rest(&mut self, to: &impl Perform<M>) {
        for effect in self.rest.drain(..) {
            match effect {
                Effect::Close(entry) => to.close(entry),
                Effect::Connect(seat) => to.connect(seat),
                Effect::KickMaintenance => to.kick_maintenance(),
                Effect::ArmExpiry => to.arm_expiry(),
                Effect::CancelRevoked(statement) => to.cancel_revoked(statement),
                Effect::Leak(site, held) => to.leak(site, held),
            }
        }
    }
}
