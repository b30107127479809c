//! What a transition leaves to do once the pool lock is released: wakers
//! to wake, connections to close, connects to start, statements to cancel,
//! leaks to report.
//!
//! The fields are private: transitions add to a batch through its methods,
//! and [`Effects::perform`] is the one place that takes a batch apart, field
//! by field, without `..`. A new kind of effect therefore does not compile
//! until `perform` hands it on, and no batch can be skipped or half-run
//! because some emptiness test forgot a field.

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
    /// Cancels the statements of revoked leases on the server.
    fn cancel_revoked(&self, statements: Vec<Arc<M::CancelToken>>);
    /// Reports a lease held past the leak threshold.
    fn leak(&self, site: &'static Location<'static>, held: Duration);
}

/// A batch of work for after the lock; see the [module docs](self).
#[must_use = "a batch of effects must be performed"]
pub(crate) struct Effects<M: Manager> {
    wakes: WakeList,
    close: Vec<Box<Entry<M>>>,
    connects: Vec<Seat>,
    kick_maintenance: bool,
    revoked: Vec<Arc<M::CancelToken>>,
    leaks: Vec<(&'static Location<'static>, Duration)>,
}

impl<M: Manager> Effects<M> {
    pub(crate) fn new() -> Self {
        Effects {
            wakes: WakeList::new(),
            close: Vec::new(),
            connects: Vec::new(),
            kick_maintenance: false,
            revoked: Vec::new(),
            leaks: Vec::new(),
        }
    }

    /// The wakers to wake, for the waitlist to add to.
    pub(crate) fn wakes(&mut self) -> &mut WakeList {
        &mut self.wakes
    }

    /// Closes a connection whose seat is in `Closing` or `Orphan`.
    pub(crate) fn close(&mut self, entry: Box<Entry<M>>) {
        self.close.push(entry);
    }

    /// Starts a connect for a reserved seat.
    pub(crate) fn connect(&mut self, seat: Seat) {
        self.connects.push(seat);
    }

    /// Wakes the maintenance task (first waiter queued, pool closed).
    pub(crate) fn kick_maintenance(&mut self) {
        self.kick_maintenance = true;
    }

    /// Cancels the statement of a revoked lease.
    pub(crate) fn cancel_revoked(&mut self, statement: Arc<M::CancelToken>) {
        self.revoked.push(statement);
    }

    /// Reports a lease held past the leak threshold.
    pub(crate) fn leak(&mut self, site: &'static Location<'static>, held: Duration) {
        self.leaks.push((site, held));
    }

    /// Does everything in the batch, leaving it empty: wakes first, so a
    /// woken task never waits on the rest. Taken by reference so the batch
    /// is not moved (it is a few cache lines) on the hot path.
    pub(crate) fn perform(&mut self, to: &impl Perform<M>) {
        let Effects {
            wakes,
            close,
            connects,
            kick_maintenance,
            revoked,
            leaks,
        } = self;
        wakes.wake_all();
        for entry in close.drain(..) {
            to.close(entry);
        }
        for seat in connects.drain(..) {
            to.connect(seat);
        }
        if std::mem::take(kick_maintenance) {
            to.kick_maintenance();
        }
        if !revoked.is_empty() {
            to.cancel_revoked(std::mem::take(revoked));
        }
        for (site, held) in leaks.drain(..) {
            to.leak(site, held);
        }
    }
}
