//! The CoDel overload detector (RFC 8289, as adapted to RPC queues by folly's
//! `Codel` and Facebook's "Fail at Scale").
//!
//! # What it measures
//!
//! The **age of the oldest queued request**, sampled whenever the queue
//! changes hands (every hand-off) and on every maintenance tick. The queue is
//! *overloaded* when that age has stayed above `target` for a whole
//! `interval`: the queue never drained below the target delay in that time.
//! A queue that dips below target even once restarts the clock, however long
//! it was at its peak: bursts are what queues are for; a standing queue is
//! what CoDel detects. The moment the head crossed the target is derived from
//! its age, so a standing queue is detected one interval after it formed,
//! not one interval after the first sample.
//!
//! Sampling the head's age rather than the sojourn of the request just served
//! keeps the detector honest under adaptive LIFO: serving the newest request
//! first would otherwise report tiny sojourn times while old requests pile
//! up at the far end.
//!
//! Sampling on a timer as well as on hand-offs is what makes a wedged pool
//! (every connection stuck, no hand-off at all) detectable: a detector
//! that samples only when a request is served never samples when nothing
//! is served.
//!
//! # Leaving overload
//!
//! At once when the queue empties, or when the head's age has stayed at or
//! below target for a whole interval.
//!
//! # Defaults
//!
//! `target` 5 ms and `interval` 100 ms, the values of RFC 8289 and folly. A
//! queue at 90% of capacity with Poisson arrivals empties many times per
//! interval, so the detector does not fire under heavy but sustainable load
//! (see the `admission_codel` tests: at 0.9x, no request is shed).

use std::time::Duration;

use crate::clock::Instant;

/// The parameters of the overload detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodelConfig {
    /// The queueing delay the pool tolerates as a standing queue. Default: 5 ms.
    pub target: Duration,
    /// How long the delay must stay above `target` to count as overload.
    /// Default: 100 ms.
    pub interval: Duration,
}

impl Default for CodelConfig {
    fn default() -> Self {
        CodelConfig {
            target: Duration::from_millis(5),
            interval: Duration::from_millis(100),
        }
    }
}

/// The standing-queue detector's state machine. Pure: it is given `now` and
/// the head's age. The pool's admission state runs one per priority class.
#[derive(Clone, Debug)]
pub struct Codel {
    config: CodelConfig,
    overloaded: bool,
    /// Since when every sample has been above target.
    above_since: Option<Instant>,
    /// Since when every sample has been at or below target.
    below_since: Option<Instant>,
    /// When the detector last entered overload.
    since: Option<Instant>,
}

impl Codel {
    /// A detector in the healthy state.
    pub fn new(config: CodelConfig) -> Self {
        Codel {
            config,
            overloaded: false,
            above_since: None,
            below_since: None,
            since: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CodelConfig {
        &self.config
    }

    /// When the current overload began.
    #[cfg(test)]
    pub fn overloaded_since(&self) -> Option<Instant> {
        self.since.filter(|_| self.overloaded)
    }

    /// Records the age of the oldest queued request (`None`: the queue is
    /// empty). Returns whether the queue is overloaded afterwards.
    pub fn observe(&mut self, now: Instant, head_age: Option<Duration>) -> bool {
        let interval = self.config.interval;
        match head_age {
            None => {
                // An empty queue is the end of any standing queue.
                self.overloaded = false;
                self.above_since = None;
                self.below_since = None;
            }
            Some(age) if age > self.config.target => {
                self.below_since = None;
                // The head has been above target since it crossed it.
                let crossed = now.checked_sub(age - self.config.target).unwrap_or(now);
                let since = *self.above_since.get_or_insert(crossed);
                if !self.overloaded && now.saturating_duration_since(since) >= interval {
                    self.overloaded = true;
                    self.since = Some(now);
                }
            }
            Some(_) => {
                self.above_since = None;
                let since = *self.below_since.get_or_insert(now);
                if self.overloaded && now.saturating_duration_since(since) >= interval {
                    self.overloaded = false;
                }
            }
        }
        self.overloaded
    }

    /// Whether the queue has been calm for a whole interval: every sample
    /// at or below target since then (an empty queue is calm at once, and
    /// clears the detector).
    pub fn is_calm(&self, now: Instant) -> bool {
        self.below_since
            .is_some_and(|since| now.saturating_duration_since(since) >= self.config.interval)
    }

    /// How long a waiter may queue while the pool is overloaded before it is
    /// shed: twice the target, as folly's slough timeout.
    pub fn slough_age(&self) -> Duration {
        self.config.target * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn above_target_for_an_interval_is_overload() {
        let mut c = Codel::new(CodelConfig::default());
        let t0 = Instant::now();
        // The head is 20 ms old: it crossed the 5 ms target 15 ms ago.
        assert!(!c.observe(t0, Some(20 * MS)));
        assert!(!c.observe(t0 + 50 * MS, Some(30 * MS)));
        assert!(
            c.observe(t0 + 85 * MS, Some(40 * MS)),
            "above target since t0 - 15 ms"
        );
        assert_eq!(c.overloaded_since(), Some(t0 + 85 * MS));
    }

    #[test]
    fn one_dip_below_target_restarts_the_clock() {
        let mut c = Codel::new(CodelConfig::default());
        let t0 = Instant::now();
        c.observe(t0, Some(6 * MS));
        c.observe(t0 + 40 * MS, Some(MS));
        assert!(!c.observe(t0 + 100 * MS, Some(50 * MS)));
        assert!(!c.observe(t0 + 130 * MS, Some(80 * MS)));
        assert!(c.observe(t0 + 160 * MS, Some(110 * MS)));
    }

    #[test]
    fn an_empty_queue_ends_overload_at_once() {
        let mut c = Codel::new(CodelConfig::default());
        let t0 = Instant::now();
        c.observe(t0, Some(6 * MS));
        assert!(c.observe(t0 + 100 * MS, Some(50 * MS)));
        assert!(!c.observe(t0 + 101 * MS, None));
        assert!(c.overloaded_since().is_none());
        // And the clock starts from scratch.
        assert!(!c.observe(t0 + 150 * MS, Some(6 * MS)));
        assert!(c.observe(t0 + 250 * MS, Some(6 * MS)));
    }

    #[test]
    fn an_interval_below_target_leaves_overload() {
        let mut c = Codel::new(CodelConfig::default());
        let t0 = Instant::now();
        c.observe(t0, Some(6 * MS));
        assert!(c.observe(t0 + 100 * MS, Some(50 * MS)));
        assert!(
            c.observe(t0 + 150 * MS, Some(2 * MS)),
            "one sample below target is not enough"
        );
        assert!(c.observe(t0 + 200 * MS, Some(3 * MS)));
        assert!(!c.observe(t0 + 250 * MS, Some(4 * MS)));
    }
}
