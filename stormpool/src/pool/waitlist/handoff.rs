//! A waiter's hand-off cell: where a returner leaves the waiter its
//! connection (or the reason it has none), and where the waiter finds it
//! without taking the pool lock.
//!
//! # Implementation details
//!
//! The cell is shared by the waiter's future and its waitlist record. The
//! pool writes it once, under the pool lock, when it removes the record
//! from the queue (a grant or a failure), and takes the waker out in the
//! same step to wake it after the pool lock is released. The waiter
//! registers its waker and reads the outcome under the cell's own lock
//! only, which nobody else holds but for the moment of that one write:
//! collecting a hand-off costs one uncontended lock instead of a round on
//! the pool lock, which every request and every returner contend for. The
//! waiter's first look follows its queueing in the same poll, so an
//! outcome written before it registered any waker is found there.
//!
//! The cell's lock is always taken after the pool lock, never the other
//! way round, so the two cannot deadlock.

use std::sync::atomic::Ordering;
use std::task::Waker;

use crate::sync::{fence, lock, Arc, Mutex};

/// See the [module docs](self).
pub(crate) struct Handoff<T> {
    inner: Mutex<Inner<T>>,
}

struct Inner<T> {
    /// Written once, by the pool, when the waiter leaves the queue.
    outcome: Option<T>,
    /// The task to wake when it is written.
    waker: Option<Waker>,
}

impl<T> Handoff<T> {
    /// A fresh, empty cell.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Handoff {
            inner: Mutex::new(Inner {
                outcome: None,
                waker: None,
            }),
        })
    }

    /// The cell for the next waiter of a record: the record's own when
    /// only the record still refers to it (its last waiter took what was
    /// written and let go, leaving it empty), else a fresh one.
    pub(crate) fn renew(cell: &mut Arc<Self>) {
        // Only the record (under the pool lock) can hand out a clone, so a
        // count of one cannot grow under our feet.
        if Arc::strong_count(cell) != 1 {
            *cell = Handoff::new();
            return;
        }
        // Pairs with the release of the waiter's drop of its clone: all it
        // did with the cell happened before what follows.
        fence(Ordering::Acquire);
        #[cfg(debug_assertions)]
        {
            let inner = lock(&cell.inner);
            debug_assert!(inner.outcome.is_none() && inner.waker.is_none());
        }
    }

    /// The pool's write: the outcome, and the waker to wake once the pool
    /// lock is released.
    pub(crate) fn complete(&self, outcome: T) -> Option<Waker> {
        let mut inner = lock(&self.inner);
        debug_assert!(inner.outcome.is_none(), "a hand-off is written once");
        inner.outcome = Some(outcome);
        inner.waker.take()
    }

    /// The waiter's read: the outcome if it has been written, else `None`
    /// with `waker` registered to be woken when it is.
    pub(crate) fn poll(&self, waker: &Waker) -> Option<T> {
        let mut inner = lock(&self.inner);
        if let Some(outcome) = inner.outcome.take() {
            return Some(outcome);
        }
        match &inner.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => inner.waker = Some(waker.clone()),
        }
        None
    }

    /// Takes the outcome if it has been written, leaving the waker: under
    /// the pool lock, for a waiter that stays queued if nothing was.
    pub(crate) fn take_outcome(&self) -> Option<T> {
        lock(&self.inner).outcome.take()
    }

    /// Takes the outcome if it has been written, and forgets the waker:
    /// the waiter is going away. Under the pool lock: whether the waiter
    /// is still queued.
    pub(crate) fn take(&self) -> Option<T> {
        let mut inner = lock(&self.inner);
        inner.waker = None;
        inner.outcome.take()
    }
}
