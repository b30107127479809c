//! Admission control: deciding, under overload, which requests to serve, in
//! which order, and which to reject early.
//!
//! The pool's waitlist *is* its admission controller; there is no second
//! queue. This module is the layer below the pool: pure state machines fed
//! with queue ages and the time, which the pool applies to its waitlist.
//! It holds the pieces admission is built from:
//!
//! * [`Codel`]: detects a standing queue (overload) from the age of the
//!   oldest waiter, sampled on hand-offs and on a timer.
//! * While overloaded the pool serves each class **newest first** (adaptive
//!   LIFO): under sustained overload the oldest waiter is always the one
//!   about to expire, so serving it first (FIFO) spends every connection on
//!   requests that will not finish in time and goodput falls to a few
//!   percent; serving the newest first keeps goodput near capacity.
//! * Waiters that have queued longer than the slough age (twice the target)
//!   are **shed** with [`AcquireError::Shed`](crate::AcquireError::Shed),
//!   lowest class first, a bounded number per tick; `Critical` requests are
//!   never shed.
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

pub use codel::{Codel, CodelConfig};
pub(crate) use control::{Admission, Order, CLASSES};

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
