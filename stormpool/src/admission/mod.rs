//! Admission control: deciding, under overload, which requests to serve, in
//! which order, and which to reject early.
//!
//! The pool's waitlist *is* its admission controller; there is no second
//! queue. This module is the layer below the pool: pure state machines fed
//! with queue ages, lengths and the time, which the pool applies to its
//! waitlist.
//!
//! # When to shed: only when it helps
//!
//! A queue is not overload. 256 workers on 16 connections stand in a queue
//! of some 30 ms for good, and every one of them is served long before its
//! deadline: rejecting any would throw work away that the pool was about to
//! do. Shedding helps in exactly two cases, and a class of waiters is
//! *overloaded* in exactly those:
//!
//! * **The queue is doomed**: served oldest first, its newest waiter would
//!   get a connection too late to use it. The waiters ahead of it (in its
//!   class and the classes above) times the expected gap between two
//!   connections coming free exceed four fifths of the time it has left.
//!   The gap is the mean hold time spread over the connections, or the
//!   measured gap between hand-offs when that is shorter (each estimate errs
//!   long in its own way: the first in a mixed workload, the second while
//!   the queue comes and goes). This needs no interval to elapse: an
//!   open-loop storm is cut as soon as FIFO would start serving requests too
//!   late, and until then FIFO serves every one of them in time.
//! * **The queue grows without bound, or nobody is served**: a standing
//!   queue (CoDel: the oldest waiter above `target`, 5 ms, for a whole
//!   `interval`, 100 ms) that has grown in two intervals in a row (a burst
//!   is a step, not growth), or that has seen no hand-off for an interval
//!   (every connection stuck: the timer keeps sampling when no connection
//!   comes back). Deadlines far away do not make an unbounded queue
//!   harmless.
//!
//! A class leaves overload when its queue empties, or stays under target
//! for an interval while no longer doomed.
//!
//! # What overload changes
//!
//! * The class is served **newest first** (adaptive LIFO): under sustained
//!   overload the oldest waiter is always the one about to expire, so
//!   serving it first spends every connection on requests that will not
//!   finish in time; serving the newest first keeps goodput near capacity.
//! * Its waiters that have queued longer than the slough age (twice the
//!   target) are **shed** with [`AcquireError::Shed`](crate::AcquireError::Shed)
//!   (or [`Wedged`](crate::AcquireError::Wedged) when nothing has been
//!   served for an interval), lowest class first, a bounded number per
//!   tick. `Critical` requests are never shed by the detector: they leave
//!   only by their own deadline, and turn LIFO only once FIFO would serve
//!   them too late.
//! * Shedding stops short of the waiters the connections can still serve
//!   in time: as many as come free within four fifths of the newest
//!   waiter's time left, less those the classes above and the requests
//!   arriving meanwhile (at the rate measured over the last 5 ms) take
//!   first. While a storm goes on, arrivals outrun the connections and
//!   every old waiter is shed, since newer ones take its place; once a
//!   burst is over, the old waiters are the only ones left, and shedding
//!   them would only leave connections idle. A burst of 200 requests on 4
//!   connections (5 ms queries, 30 ms deadlines) is served 24 of the 24
//!   that fit, where shedding down to nothing served 16.
//!
//! Measured on the simulated database under paused time (16 connections,
//! 2 ms queries, 50 ms deadlines, the `admission_*` tests): 256 workers in
//! a closed loop with an hour to spare, 0 shed at 101% of nominal capacity
//! (CoDel alone shed 57,887 of them); an open-loop storm at 2x, 100.1% of
//! capacity as goodput; Poisson arrivals at 0.9x, nothing shed.
//!
//! # The other pieces
//!
//! * **Valves** (per-key fairness): `max_in_flight_per_key` holds a key's
//!   extra requests back in a list of their own, outside the queue and
//!   outside the detector's view, so a fan-out from one key neither crowds
//!   out the others nor makes the pool look overloaded.
//! * [`DeadlineAware`] hand-off optionally refuses to hand a connection to a
//!   waiter whose remaining time is too short to use it.
//!
//! [`Gate`](crate::gate::Gate), above the pool, offers the same queue and
//! detector as a standalone admission controller for any critical section
//! or downstream call.

mod codel;
mod control;

use std::time::Duration;

pub(crate) use codel::Codel;
pub use codel::CodelConfig;
pub(crate) use control::{Admission, ClassQueue, Order, CLASSES};

/// Whether the pool refuses to hand a connection to a waiter that has too
/// little time left to use it.
///
/// A request that gets a connection 1 ms before its deadline holds the
/// connection for its query and gives up half-way: the connection did no
/// useful work, and with a real database the abandoned statement keeps
/// running. With this guard such a waiter fails early with
/// [`AcquireError::Timeout`](crate::AcquireError::Timeout) and the
/// connection goes to a waiter that can finish.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum DeadlineAware {
    /// Hand to any waiter whose deadline has not passed. The default.
    #[default]
    Off,
    /// Skip waiters with less than this much time left.
    MinRemaining(Duration),
    /// Skip waiters with less time left than the recent mean hold time
    /// (an exponentially weighted moving average of how long requests
    /// keep their connection).
    LearnedHold,
}
