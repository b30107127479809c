//! The pool's side of admission control: the order each class is served in,
//! the hand-off guard, and feeding the per-class overload detectors, which
//! shed. The detector itself is [`Codel`](crate::admission::Codel); the
//! rationale is in [`admission`](crate::admission).

use std::time::Duration;

use super::options::Priority;
use super::state::{Effects, Failure, State};
use super::waitlist::{Order, CLASSES};
use crate::admission::{Codel, DeadlineAware};
use crate::clock::Instant;
use crate::manager::Manager;

impl<M: Manager> State<M> {
    /// The order a class is served in: FIFO while healthy, newest first
    /// (adaptive LIFO) while its own detector reports a standing queue.
    ///
    /// `Critical` waiters are never shed: their only way out is their own
    /// deadline, so serving them newest first would let the oldest expire
    /// even when the class alone fits in the pool. That class turns to LIFO
    /// only once FIFO would hand out connections too late to be useful: its
    /// oldest waiter has less than two mean hold times left.
    pub(crate) fn order(&self, class: usize, now: Instant) -> Order {
        let Some(codel) = &self.codel else {
            return Order::Fifo;
        };
        if !codel[class].is_overloaded() {
            return Order::Fifo;
        }
        if class == Priority::Critical.index() {
            let Some(head) = self.waitlist.oldest(class) else {
                return Order::Fifo;
            };
            let remaining = self
                .waitlist
                .get(head)
                .deadline
                .saturating_duration_since(now);
            if remaining >= 2 * Duration::from_nanos(self.mean_hold) {
                return Order::Fifo;
            }
        }
        Order::Lifo
    }

    /// The least time a waiter must have left to be handed a connection.
    pub(crate) fn min_remaining(&self) -> Duration {
        match self.deadline_aware {
            DeadlineAware::Off => Duration::ZERO,
            DeadlineAware::MinRemaining(d) => d,
            DeadlineAware::LearnedHold => Duration::from_nanos(self.mean_hold),
        }
    }

    /// Feeds each class's overload detector with the age of its oldest
    /// waiter and, in the overloaded classes, sheds up to `budget` waiters
    /// older than the slough age (lowest class first, never `Critical`).
    ///
    /// A waiter shed while nothing has been handed to anyone for a whole
    /// interval is told the truth: the pool is wedged
    /// ([`AcquireError::Wedged`](crate::AcquireError::Wedged)), not
    /// overloaded. While no connection is established the queue waits for
    /// a connect, not for service, and nothing is measured or shed: its
    /// waiters get the connect's outcome or time out.
    pub(crate) fn admission_tick(&mut self, now: Instant, budget: usize, fx: &mut Effects<M>) {
        let established = self.established();
        let Some(detectors) = self.codel.as_mut() else {
            return;
        };
        if self.waitlist.is_empty() || established == 0 {
            // The common case of a pool keeping up: nothing to measure.
            if self.codel_active {
                for codel in detectors.iter_mut() {
                    codel.observe(now, None);
                }
                self.codel_active = false;
            }
            return;
        }
        self.codel_active = true;
        let mut overloaded = [false; CLASSES];
        for (class, codel) in detectors.iter_mut().enumerate() {
            overloaded[class] = codel.observe(now, self.waitlist.class_head_age(class, now));
        }
        if !overloaded[1..].contains(&true) {
            return;
        }
        let retry_after = detectors[0].config().interval;
        let slough = detectors[0].slough_age();
        let stalled = self
            .starved_since
            .map(|since| now.saturating_duration_since(since))
            .filter(|stalled| *stalled >= retry_after);
        let shed = self.waitlist.shed(
            now,
            slough,
            budget,
            overloaded,
            || match stalled {
                Some(stalled) => Failure::Wedged { stalled },
                None => Failure::Shed { retry_after },
            },
            &mut fx.wakes,
        );
        if stalled.is_some() {
            self.counters.wedged += shed as u64;
        } else {
            self.counters.shed += shed as u64;
        }
        if shed > 0 {
            // A class emptied by shedding is no longer overloaded.
            for (class, codel) in detectors.iter_mut().enumerate() {
                if self.waitlist.class_len(class) == 0 {
                    codel.observe(now, None);
                }
            }
            self.serve_idle(now, fx);
        }
    }

    /// Whether any class's detector reports a standing queue.
    pub(crate) fn is_overloaded(&self) -> bool {
        self.codel
            .as_ref()
            .is_some_and(|d| d.iter().any(Codel::is_overloaded))
    }
}
