//! The admission state of a queue with priority classes: one [`Codel`]
//! detector per class, the order each class is served in, and when to shed.
//!
//! Pure like the detector: it reads no clock and owns no queue. The pool
//! feeds it the age of each class's oldest waiter and applies what it
//! decides to its own waitlist.

use std::time::Duration;

use super::{Codel, CodelConfig, DeadlineAware};
use crate::clock::Instant;

/// The number of priority classes; class 0 is the critical one, which is
/// never shed.
pub(crate) const CLASSES: usize = 4;

/// Which end of a queue to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// Oldest first (healthy).
    Fifo,
    /// Newest first (overloaded: fresh requests meet fresh deadlines).
    Lifo,
}

/// What to shed, when a detector reports a standing queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shedding {
    /// The overloaded classes (never class 0).
    pub(crate) classes: [bool; CLASSES],
    /// Waiters older than this are shed (the slough age).
    pub(crate) older_than: Duration,
    /// The hint given to a shed request: one detector interval.
    pub(crate) retry_after: Duration,
}

/// The detectors and the learned hold time; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Admission {
    /// One per class; `None` when admission control is off.
    detectors: Option<[Codel; CLASSES]>,
    /// Whether a detector has seen a non-empty queue since it was last
    /// cleared: lets a pool that keeps up skip them on its hot path.
    active: bool,
    /// The moving average of hold times, in nanoseconds.
    mean_hold: u64,
    deadline_aware: DeadlineAware,
}

impl Admission {
    pub(crate) fn new(codel: Option<CodelConfig>, deadline_aware: DeadlineAware) -> Self {
        Admission {
            detectors: codel.map(|c| std::array::from_fn(|_| Codel::new(c))),
            active: false,
            mean_hold: 0,
            deadline_aware,
        }
    }

    /// Whether a returned connection's hold time matters (and so the clock
    /// must be read): the detectors are watching a queue, or the hand-off
    /// guard learns from hold times.
    pub(crate) fn needs_hold_times(&self) -> bool {
        self.active || self.deadline_aware == DeadlineAware::LearnedHold
    }

    /// A connection was held for `held`: feeds the moving average (weight
    /// 1/16) behind the critical class's LIFO switch and the learned guard.
    pub(crate) fn held(&mut self, held: Duration) {
        let held = held.as_nanos().min(u64::MAX as u128) as u64;
        self.mean_hold = self.mean_hold - self.mean_hold / 16 + held / 16;
    }

    /// The order a class is served in: FIFO while healthy, newest first
    /// (adaptive LIFO) while its own detector reports a standing queue.
    ///
    /// Critical waiters are never shed: their only way out is their own
    /// deadline, so serving them newest first would let the oldest expire
    /// even when the class alone fits in the pool. That class turns to LIFO
    /// only once FIFO would hand out connections too late to be useful: its
    /// oldest waiter (`critical_head_left` to its deadline) has less than two
    /// mean hold times left.
    pub(crate) fn order(&self, class: usize, critical_head_left: Option<Duration>) -> Order {
        let Some(detectors) = &self.detectors else {
            return Order::Fifo;
        };
        if !detectors[class].is_overloaded() {
            return Order::Fifo;
        }
        if class == 0 {
            let Some(left) = critical_head_left else {
                return Order::Fifo;
            };
            if left >= 2 * Duration::from_nanos(self.mean_hold) {
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

    /// Feeds each class's detector the age of its oldest waiter. `None`:
    /// nothing to measure (no waiter, or a queue waiting for a connect
    /// rather than for service), which clears them. Returns what to shed
    /// when a class other than the critical one is overloaded.
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        heads: Option<[Option<Duration>; CLASSES]>,
    ) -> Option<Shedding> {
        let detectors = self.detectors.as_mut()?;
        let Some(heads) = heads else {
            // The common case of a pool keeping up: nothing to measure.
            if self.active {
                for codel in detectors.iter_mut() {
                    codel.observe(now, None);
                }
                self.active = false;
            }
            return None;
        };
        self.active = true;
        let mut classes = [false; CLASSES];
        for ((class, codel), head) in detectors.iter_mut().enumerate().zip(heads) {
            classes[class] = codel.observe(now, head);
        }
        classes[0] = false;
        classes.contains(&true).then(|| Shedding {
            classes,
            older_than: detectors[0].slough_age(),
            retry_after: detectors[0].config().interval,
        })
    }

    /// A class's queue emptied (its waiters were shed): it is no longer
    /// overloaded.
    pub(crate) fn emptied(&mut self, now: Instant, class: usize) {
        if let Some(detectors) = &mut self.detectors {
            detectors[class].observe(now, None);
        }
    }

    /// Whether any class's detector reports a standing queue.
    pub(crate) fn is_overloaded(&self) -> bool {
        self.detectors
            .as_ref()
            .is_some_and(|d| d.iter().any(Codel::is_overloaded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn standing(age: Duration) -> Option<[Option<Duration>; CLASSES]> {
        Some([Some(age); CLASSES])
    }

    #[test]
    fn a_standing_queue_sheds_every_class_but_the_critical_one() {
        let mut a = Admission::new(Some(CodelConfig::default()), DeadlineAware::Off);
        let t0 = Instant::now();
        assert_eq!(a.observe(t0, standing(6 * MS)), None);
        let shedding = a
            .observe(t0 + 100 * MS, standing(50 * MS))
            .expect("overloaded after an interval");
        assert_eq!(shedding.classes, [false, true, true, true]);
        assert_eq!(
            (shedding.older_than, shedding.retry_after),
            (10 * MS, 100 * MS)
        );
        assert!(a.is_overloaded() && a.needs_hold_times());
        assert_eq!(a.order(1, None), Order::Lifo);
        // Nothing to measure clears the detectors.
        assert_eq!(a.observe(t0 + 101 * MS, None), None);
        assert!(!a.is_overloaded() && !a.needs_hold_times());
        assert_eq!(a.order(1, None), Order::Fifo);
    }

    #[test]
    fn the_critical_class_turns_lifo_only_when_fifo_is_too_late() {
        let mut a = Admission::new(Some(CodelConfig::default()), DeadlineAware::Off);
        let t0 = Instant::now();
        a.observe(t0, standing(6 * MS));
        a.observe(t0 + 100 * MS, standing(50 * MS));
        for _ in 0..64 {
            a.held(2 * MS);
        }
        assert_eq!(a.order(0, Some(10 * MS)), Order::Fifo);
        assert_eq!(a.order(0, Some(3 * MS)), Order::Lifo);
        assert_eq!(a.order(0, None), Order::Fifo, "no critical waiter");
    }

    #[test]
    fn off_serves_fifo_and_never_sheds() {
        let mut a = Admission::new(None, DeadlineAware::MinRemaining(3 * MS));
        let t0 = Instant::now();
        assert_eq!(a.observe(t0 + 500 * MS, standing(400 * MS)), None);
        assert_eq!(a.order(2, None), Order::Fifo);
        assert_eq!(a.min_remaining(), 3 * MS);
    }

    #[test]
    fn the_learned_guard_follows_hold_times() {
        let mut a = Admission::new(None, DeadlineAware::LearnedHold);
        assert!(a.needs_hold_times());
        for _ in 0..200 {
            a.held(4 * MS);
        }
        let learned = a.min_remaining();
        assert!(learned > 3 * MS && learned <= 4 * MS, "{learned:?}");
    }
}
