//! The admission state of a queue with priority classes: one CoDel
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

/// What to shed, when a class is overloaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shedding {
    /// The overloaded classes (never class 0).
    pub(crate) classes: [bool; CLASSES],
    /// Waiters older than this are shed (the slough age).
    pub(crate) older_than: Duration,
    /// The hint given to a shed request: one detector interval.
    pub(crate) retry_after: Duration,
}

/// What the pool reports of one class's queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClassQueue {
    /// The age of its oldest waiter (`None`: empty).
    pub(crate) head_age: Option<Duration>,
    /// Its eligible waiters.
    pub(crate) len: usize,
    /// Whether serving it oldest first would hand its newest waiter a
    /// connection too late to use: the waiters ahead of it (in its class
    /// and the classes above), at the measured service rate, take more than
    /// four fifths of the time it has left.
    pub(crate) doomed: bool,
    /// How many of its newest waiters the connections can still serve in
    /// time (within four fifths of the newest's time left, after the
    /// classes above and the requests arriving meanwhile at the current
    /// rate): shedding them would not help anyone.
    pub(crate) servable: usize,
}

/// How many timer samples in a row must find no hand-off before a queue
/// counts as unserved.
const STALL_SAMPLES: u32 = 3;

/// The window the arrival rate is measured over: short, so that the end of
/// a burst shows within a few milliseconds, long enough to hold several
/// arrivals at the rates where shedding matters.
const ARRIVAL_WINDOW: Duration = Duration::from_millis(5);

/// One class's detector and overload state.
#[derive(Clone, Debug)]
struct Class {
    codel: Codel,
    overloaded: bool,
    /// The queue's length at the start of the current growth interval.
    mark: Option<(Instant, usize)>,
    /// How many intervals in a row ended with a longer queue than they
    /// began with.
    grew: u8,
}

impl Class {
    fn new(config: CodelConfig) -> Self {
        Class {
            codel: Codel::new(config),
            overloaded: false,
            mark: None,
            grew: 0,
        }
    }

    fn clear(&mut self, now: Instant) {
        self.codel.observe(now, None);
        self.overloaded = false;
        self.mark = None;
        self.grew = 0;
    }

    /// Enters overload when shedding helps: at once when the queue is
    /// doomed, or when a standing queue (CoDel) keeps growing (two
    /// intervals in a row: a burst is a step, not growth) or is not served
    /// at all (`stalled`); leaves it when the queue empties or stays under
    /// target for an interval (and is not doomed).
    fn observe(&mut self, now: Instant, queue: ClassQueue, stalled: bool) -> bool {
        if queue.len == 0 {
            self.clear(now);
            return false;
        }
        let standing = self.codel.observe(now, queue.head_age);
        let interval = self.codel.config().interval;
        match self.mark {
            Some((at, len)) if now.saturating_duration_since(at) >= interval => {
                let grew = queue.len > len + (len / 16).max(1);
                self.grew = if grew { self.grew.saturating_add(1) } else { 0 };
                self.mark = Some((now, queue.len));
            }
            Some(_) => {}
            None => self.mark = Some((now, queue.len)),
        }
        if !self.overloaded {
            let growing = self.grew >= 2;
            self.overloaded = queue.doomed || (standing && (growing || stalled));
        } else if self.codel.is_calm(now) && !queue.doomed {
            self.overloaded = false;
        }
        self.overloaded
    }
}

/// The per-class overload state, the measured service rate and the learned
/// hold time; see the [module docs](self) and [`admission`](super).
#[derive(Debug)]
pub(crate) struct Admission {
    /// One per class; `None` when admission control is off.
    classes: Option<[Class; CLASSES]>,
    /// Whether a class has seen a non-empty queue since they were last
    /// cleared: lets a pool that keeps up skip them on its hot path.
    active: bool,
    /// The moving average of hold times, in nanoseconds.
    mean_hold: u64,
    /// The moving average of the time between hand-offs to waiters while
    /// requests wait, in nanoseconds: the inverse of the service rate.
    service_gap: u64,
    /// The last hand-off to a waiter since the queue formed.
    last_handoff: Option<Instant>,
    /// Since when requests have been waiting (`None`: nobody waits).
    waiting_since: Option<Instant>,
    /// Timer samples since the last hand-off: a queue nobody serves is one
    /// the timer keeps finding unserved, not one a stalled process (the
    /// machine's, not the pool's) failed to look at.
    timer_samples: u32,
    /// Requests that found no idle connection (queued, or turned away
    /// because the queue was full) since `arrivals_since`.
    arrivals: u32,
    arrivals_since: Option<Instant>,
    /// Such requests per second, over the last whole window.
    arrival_rate: f64,
    deadline_aware: DeadlineAware,
}

impl Admission {
    pub(crate) fn new(codel: Option<CodelConfig>, deadline_aware: DeadlineAware) -> Self {
        Admission {
            classes: codel.map(|c| std::array::from_fn(|_| Class::new(c))),
            active: false,
            mean_hold: 0,
            service_gap: 0,
            last_handoff: None,
            waiting_since: None,
            timer_samples: 0,
            arrivals: 0,
            arrivals_since: None,
            arrival_rate: 0.0,
            deadline_aware,
        }
    }

    /// A request found no idle connection: it queues, or is turned away
    /// because the queue is full.
    pub(crate) fn arrived(&mut self) {
        self.arrivals = self.arrivals.saturating_add(1);
    }

    /// Requests finding no idle connection per second, over the last whole
    /// [`ARRIVAL_WINDOW`] the detectors saw.
    pub(crate) fn arrival_rate(&self) -> f64 {
        self.arrival_rate
    }

    /// Closes the arrival window if it is over.
    fn count_arrivals(&mut self, now: Instant) {
        let Some(since) = self.arrivals_since else {
            self.arrivals_since = Some(now);
            self.arrivals = 0;
            return;
        };
        let window = now.saturating_duration_since(since);
        if window >= ARRIVAL_WINDOW {
            self.arrival_rate = f64::from(self.arrivals) / window.as_secs_f64();
            self.arrivals = 0;
            self.arrivals_since = Some(now);
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

    /// A connection was handed to a waiter at `now`: feeds the measured
    /// service rate (the moving average of the gaps, weight 1/16).
    pub(crate) fn handed_off(&mut self, now: Instant) {
        if let Some(last) = self.last_handoff {
            let gap = now.saturating_duration_since(last).as_nanos();
            let gap = gap.min(u64::MAX as u128) as u64;
            self.service_gap = if self.service_gap == 0 {
                gap
            } else {
                self.service_gap - self.service_gap / 16 + gap / 16
            };
        }
        self.last_handoff = Some(now);
        self.timer_samples = 0;
    }

    /// The maintenance timer is about to sample the queue.
    pub(crate) fn timer_sample(&mut self) {
        self.timer_samples = self.timer_samples.saturating_add(1);
    }

    /// The expected time between two connections coming free while
    /// requests wait, with `connections` open: the mean hold time spread
    /// over the connections, or the measured gap between hand-offs when
    /// that is shorter. Each errs long in its own way: the mean hold in a
    /// mixed workload, where a few long holds inflate it; the measured gap
    /// while the queue comes and goes and some returns go to the idle store
    /// instead. `None` until hold times are known. A pool that stops
    /// serving altogether is the `stalled` rule's, not this estimate's.
    pub(crate) fn service_gap(&self, connections: usize) -> Option<Duration> {
        if self.mean_hold == 0 || connections == 0 {
            return None;
        }
        let by_hold = self.mean_hold / connections as u64;
        let gap = match self.service_gap {
            0 => by_hold,
            measured => by_hold.min(measured),
        };
        (gap > 0).then(|| Duration::from_nanos(gap))
    }

    /// The order a class is served in: FIFO while healthy, newest first
    /// (adaptive LIFO) while it is overloaded.
    ///
    /// Critical waiters are never shed: their only way out is their own
    /// deadline, so serving them newest first would let the oldest expire
    /// even when the class alone fits in the pool. That class turns to LIFO
    /// only once FIFO would hand out connections too late to be useful: its
    /// oldest waiter (`critical_head_left` to its deadline) has less than two
    /// mean hold times left.
    pub(crate) fn order(&self, class: usize, critical_head_left: Option<Duration>) -> Order {
        let Some(classes) = &self.classes else {
            return Order::Fifo;
        };
        if !classes[class].overloaded {
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

    /// Feeds each class's state with its queue. `None`: nothing to measure
    /// (no waiter, or a queue waiting for a connect rather than for
    /// service), which clears them. Returns what to shed when a class other
    /// than the critical one is overloaded.
    ///
    /// `returning`: a connection is on its way back to the queue (a drain
    /// under way, which the pool bounds by its abandon timeout), so a queue
    /// without hand-offs meanwhile is waiting for it, not unserved.
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        queues: Option<[ClassQueue; CLASSES]>,
        returning: bool,
    ) -> Option<Shedding> {
        self.count_arrivals(now);
        let classes = self.classes.as_mut()?;
        let Some(queues) = queues else {
            // The common case of a pool keeping up: nothing to measure.
            if self.active {
                for class in classes.iter_mut() {
                    class.clear(now);
                }
                self.active = false;
            }
            self.last_handoff = None;
            self.waiting_since = None;
            self.timer_samples = 0;
            return None;
        };
        self.active = true;
        let since = *self.waiting_since.get_or_insert(now);
        let interval = classes[0].codel.config().interval;
        // Nobody served: no hand-off for an interval, or for two mean holds
        // when holds are that long (slow queries are not a wedge), while
        // the timer kept sampling (a machine that did not run the pool for
        // a while is not a wedge either).
        let patience = interval.max(2 * Duration::from_nanos(self.mean_hold));
        let unserved = now.saturating_duration_since(self.last_handoff.unwrap_or(since));
        let stalled = !returning && unserved >= patience && self.timer_samples >= STALL_SAMPLES;
        let mut overloaded = [false; CLASSES];
        for ((i, class), queue) in classes.iter_mut().enumerate().zip(queues) {
            overloaded[i] = class.observe(now, queue, stalled);
        }
        overloaded[0] = false;
        let codel = &classes[0].codel;
        overloaded.contains(&true).then(|| Shedding {
            classes: overloaded,
            older_than: codel.slough_age(),
            retry_after: codel.config().interval,
        })
    }

    /// A class's queue emptied (its waiters were shed): it is no longer
    /// overloaded.
    pub(crate) fn emptied(&mut self, now: Instant, class: usize) {
        if let Some(classes) = &mut self.classes {
            classes[class].clear(now);
        }
    }

    /// Whether any class is overloaded.
    pub(crate) fn is_overloaded(&self) -> bool {
        self.classes
            .as_ref()
            .is_some_and(|c| c.iter().any(|class| class.overloaded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn queues(age: Duration, len: usize, doomed: bool) -> Option<[ClassQueue; CLASSES]> {
        Some(
            [ClassQueue {
                head_age: Some(age),
                len,
                doomed,
                servable: 0,
            }; CLASSES],
        )
    }

    fn admission() -> Admission {
        Admission::new(Some(CodelConfig::default()), DeadlineAware::Off)
    }

    #[test]
    fn a_growing_standing_queue_sheds_every_class_but_the_critical_one() {
        let mut a = admission();
        let t0 = Instant::now();
        assert_eq!(a.observe(t0, queues(6 * MS, 100, false), false), None);
        a.handed_off(t0 + 99 * MS);
        assert_eq!(
            a.observe(t0 + 100 * MS, queues(50 * MS, 200, false), false),
            None,
            "a step is not growth"
        );
        a.handed_off(t0 + 199 * MS);
        let shedding = a
            .observe(t0 + 200 * MS, queues(50 * MS, 300, false), false)
            .expect("standing, and growing for two intervals");
        assert_eq!(shedding.classes, [false, true, true, true]);
        assert_eq!(
            (shedding.older_than, shedding.retry_after),
            (10 * MS, 100 * MS)
        );
        assert!(a.is_overloaded() && a.needs_hold_times());
        assert_eq!(a.order(1, None), Order::Lifo);
        // Nothing to measure clears the detectors.
        assert_eq!(a.observe(t0 + 201 * MS, None, false), None);
        assert!(!a.is_overloaded() && !a.needs_hold_times());
        assert_eq!(a.order(1, None), Order::Fifo);
    }

    #[test]
    fn a_standing_queue_that_does_not_grow_is_served_not_shed() {
        // Many workers on few connections: a long queue, every waiter
        // served well within its deadline. Shedding would only cost work.
        let mut a = admission();
        let t0 = Instant::now();
        for step in 0..50u32 {
            let now = t0 + 10 * MS * step;
            a.handed_off(now);
            let len = 240 + (step as usize % 3);
            assert_eq!(a.observe(now, queues(32 * MS, len, false), false), None);
        }
        assert!(!a.is_overloaded());
        assert_eq!(a.order(2, None), Order::Fifo);
    }

    #[test]
    fn a_doomed_queue_is_overloaded_at_once_and_stays_so_until_calm() {
        let mut a = admission();
        let t0 = Instant::now();
        // The first sample that shows FIFO would serve too late.
        let shedding = a.observe(t0, queues(8 * MS, 400, true), false);
        assert!(
            shedding.is_some(),
            "no interval to wait: the storm is cut at once"
        );
        // Served newest first and shed, the queue is short and no longer
        // doomed, but its head is still above target: still overloaded.
        assert!(a
            .observe(t0 + 50 * MS, queues(10 * MS, 80, false), false)
            .is_some());
        // Under target for a whole interval: overload ends.
        a.observe(t0 + 60 * MS, queues(2 * MS, 4, false), false);
        assert!(a.is_overloaded());
        assert_eq!(
            a.observe(t0 + 160 * MS, queues(3 * MS, 4, false), false),
            None
        );
        assert!(!a.is_overloaded());
    }

    #[test]
    fn a_standing_queue_nobody_serves_is_overloaded() {
        // Every connection stuck: no hand-off at all for an interval.
        let mut a = admission();
        let t0 = Instant::now();
        assert_eq!(a.observe(t0, queues(6 * MS, 200, false), false), None);
        // A process that was not run for 100 ms is no wedge: one sample.
        a.timer_sample();
        let at = |ms: u32| t0 + ms * MS;
        assert_eq!(
            a.observe(at(100), queues(106 * MS, 200, false), false),
            None
        );
        // The timer keeps finding it unserved.
        for i in 1..=3u32 {
            a.timer_sample();
            let shed = a.observe(
                at(100 + 10 * i),
                queues((106 + 10 * i) * MS, 200, false),
                false,
            );
            assert_eq!(shed.is_some(), i >= 2, "sample {i}");
        }
    }

    #[test]
    fn a_queue_waiting_for_a_drain_is_not_unserved() {
        // No hand-off while a connection goes through the drain path (its
        // statement finished or rolled back on the server, bounded by the
        // abandon timeout): the waiters wait for it, they are not stuck.
        // Once no drain is under way and still nothing comes free, the
        // queue is unserved as in the test above.
        let mut a = admission();
        let t0 = Instant::now();
        let at = |ms: u32| t0 + ms * MS;
        assert_eq!(a.observe(t0, queues(6 * MS, 200, false), true), None);
        for i in 1..=40u32 {
            a.timer_sample();
            let age = (6 + 10 * i) * MS;
            assert_eq!(
                a.observe(at(10 * i), queues(age, 200, false), true),
                None,
                "at {i}"
            );
        }
        a.timer_sample();
        assert!(a
            .observe(at(410), queues(416 * MS, 200, false), false)
            .is_some());
    }

    #[test]
    fn slow_holds_are_not_a_wedge() {
        // Every connection busy with a 500 ms query: a hand-off every half
        // second, no more; the queue is served.
        let mut a = admission();
        let t0 = Instant::now();
        for _ in 0..64 {
            a.held(500 * MS);
        }
        a.handed_off(t0);
        for i in 1..=40u32 {
            a.timer_sample();
            let now = t0 + 10 * MS * i;
            assert_eq!(
                a.observe(now, queues(10 * MS * i, 20, false), false),
                None,
                "at {i}"
            );
        }
    }

    #[test]
    fn the_critical_class_turns_lifo_only_when_fifo_is_too_late() {
        let mut a = admission();
        let t0 = Instant::now();
        a.observe(t0, queues(8 * MS, 400, true), false);
        for _ in 0..64 {
            a.held(2 * MS);
        }
        assert_eq!(a.order(0, Some(10 * MS)), Order::Fifo);
        assert_eq!(a.order(0, Some(3 * MS)), Order::Lifo);
        assert_eq!(a.order(0, None), Order::Fifo, "no critical waiter");
    }

    #[test]
    fn the_service_rate_is_the_faster_of_two_estimates() {
        let mut a = admission();
        let t0 = Instant::now();
        for i in 0..100u32 {
            a.handed_off(t0 + MS * i / 8);
        }
        assert_eq!(a.service_gap(16), None, "no hold time known yet");
        // Holds of 4 ms over 16 connections: one free every 250 us; the
        // hand-offs came every 125 us, which wins.
        for _ in 0..200 {
            a.held(4 * MS);
        }
        let gap = a.service_gap(16).unwrap();
        assert!(gap >= MS / 9 && gap <= MS / 7, "{gap:?}");
        // A queue that empties forgets the last hand-off: the idle time
        // before the next queue is not service time.
        a.observe(t0, queues(MS, 1, false), false);
        a.observe(t0 + 20 * MS, None, false);
        a.handed_off(t0 + 500 * MS);
        a.handed_off(t0 + 500 * MS + MS / 8);
        let again = a.service_gap(16).unwrap();
        assert!(again >= MS / 9 && again <= MS / 7, "{again:?}");
        // With slow hand-offs, the hold time bounds the estimate.
        for i in 0..100u32 {
            a.handed_off(t0 + 600 * MS + 10 * MS * i);
        }
        let bounded = a.service_gap(16).unwrap();
        assert!(bounded > MS / 5 && bounded <= MS / 4, "{bounded:?}");
    }

    #[test]
    fn off_serves_fifo_and_never_sheds() {
        let mut a = Admission::new(None, DeadlineAware::MinRemaining(3 * MS));
        let t0 = Instant::now();
        assert_eq!(
            a.observe(t0 + 500 * MS, queues(400 * MS, 900, true), false),
            None
        );
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
