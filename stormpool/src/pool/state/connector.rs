//! The connector's memory of connect attempts: full-jitter backoff while
//! they fail, failing requests fast with the real error while the database
//! is known to be down, and noticing at once when it is back.
//!
//! The connects themselves run as tasks of their own (`shared.rs`), so a
//! cancelled acquire never aborts one half-way; the pool starts them only
//! for real demand, at most `max_concurrent_connects` at once.
//!
//! # Noticing that the database is back
//!
//! The backoff paces the attempts the pool makes on its own (refilling
//! `min_idle`, probing a database it knows to be down), up to
//! `connect_backoff_max` apart. Requests do not wait for it: once the last
//! failure is `connect_backoff_min` old, the next request that finds no
//! connection starts an attempt at once and waits for it, while the
//! requests arriving during that attempt fail fast with the last error. So
//! a database that is down costs at most one attempt per
//! `connect_backoff_min` and one request that waits for it, and a database
//! that is back serves the first request after that window.
//!
//! # Invariant
//!
//! `retry_at`, `failed_at` and `last_failure` are all set (after a failure)
//! or all unset (before any attempt, and after a success); `failures`
//! counts the failures since the last success.

use std::time::Duration;

use super::ConnectFailure;
use crate::clock::{Instant, Rng};

/// See the [module docs](self).
pub(crate) struct Connector<E> {
    failures: u32,
    /// When the backoff lets the pool try again on its own.
    retry_at: Option<Instant>,
    /// When the last attempt failed.
    failed_at: Option<Instant>,
    last_failure: Option<ConnectFailure<E>>,
    /// Since when connects have been under way with none finishing (reset
    /// by every connect that finishes): a database that does not answer.
    pending_since: Option<Instant>,
}

impl<E> Connector<E> {
    pub(crate) fn new() -> Self {
        Connector {
            failures: 0,
            retry_at: None,
            failed_at: None,
            last_failure: None,
            pending_since: None,
        }
    }

    /// Consecutive failed attempts (0 once one succeeds).
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// How the last attempt failed, when it did.
    pub(crate) fn last_failure(&self) -> Option<&ConnectFailure<E>> {
        self.last_failure.as_ref()
    }

    /// When the backoff lets the pool try again on its own.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// How long connects have been under way with none finishing.
    pub(crate) fn pending_for(&self, now: Instant) -> Option<Duration> {
        self.pending_since
            .map(|since| now.saturating_duration_since(since))
    }

    /// While the database is known to be down (`established` is 0, the
    /// last attempt failed), the error to fail a request with at once:
    /// within `window` of that failure, or while another attempt is under
    /// way. Past the window a request waits for an attempt of its own.
    pub(crate) fn fail_fast(
        &self,
        now: Instant,
        established: usize,
        connecting: usize,
        window: Duration,
    ) -> Option<ConnectFailure<E>> {
        if established > 0 {
            return None;
        }
        let failed_at = self.failed_at?;
        if connecting == 0 && now >= failed_at + window {
            return None;
        }
        self.last_failure.clone()
    }

    /// How many connects may run at once now: `max` outside the backoff;
    /// during it one, on behalf of waiting requests once the last failure is
    /// `window` old, else none.
    pub(crate) fn allowance(
        &self,
        now: Instant,
        waiting: bool,
        window: Duration,
        max: usize,
    ) -> usize {
        if self.retry_at.is_none_or(|at| at <= now) {
            return max;
        }
        let probe = waiting && self.failed_at.is_some_and(|at| now >= at + window);
        usize::from(probe)
    }

    /// A connect starts; `connecting` were already under way.
    pub(crate) fn started(&mut self, now: Instant, connecting: usize) {
        if connecting == 0 {
            self.pending_since = Some(now);
        }
    }

    /// A connect finished; `connecting` are still under way.
    fn finished(&mut self, now: Instant, connecting: usize) {
        self.pending_since = (connecting > 0).then_some(now);
    }

    /// A connect task was dropped before it finished (its runtime shut
    /// down); `connecting` are still under way.
    pub(crate) fn abandoned(&mut self, connecting: usize) {
        if connecting == 0 {
            self.pending_since = None;
        }
    }

    /// A connect succeeded: the backoff and the last error are forgotten.
    pub(crate) fn succeeded(&mut self, now: Instant, connecting: usize) {
        self.finished(now, connecting);
        self.failures = 0;
        self.retry_at = None;
        self.failed_at = None;
        self.last_failure = None;
    }

    /// A connect failed: the next attempt of the pool's own waits a full
    /// jitter backoff, `min` doubling per consecutive failure up to `max`,
    /// and never below `min`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn failed(
        &mut self,
        now: Instant,
        failure: ConnectFailure<E>,
        connecting: usize,
        min: Duration,
        max: Duration,
        rng: &mut Rng,
    ) {
        self.finished(now, connecting);
        self.failures = self.failures.saturating_add(1);
        let exp = (self.failures - 1).min(20);
        let ceiling = min.saturating_mul(1 << exp).min(max);
        // Full jitter, but never below the minimum: a retry storm against a
        // database that refuses is what backoff prevents.
        let delay = min.max(rng.jitter(ceiling));
        self.retry_at = Some(now + delay);
        self.failed_at = Some(now);
        self.last_failure = Some(failure);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const WINDOW: Duration = Duration::from_millis(50);

    fn failed(c: &mut Connector<&'static str>, now: Instant, rng: &mut Rng) {
        let failure = ConnectFailure::Error(std::sync::Arc::new("refused"));
        c.failed(now, failure, 0, WINDOW, 2000 * MS, rng);
    }

    #[test]
    fn down_fails_fast_within_the_window_then_lets_one_request_try() {
        let mut c = Connector::new();
        let mut rng = Rng::with_seed(1);
        let t0 = Instant::now();
        assert!(c.fail_fast(t0, 0, 0, WINDOW).is_none(), "never failed");
        for _ in 0..10 {
            failed(&mut c, t0, &mut rng);
        }
        assert_eq!(c.failures(), 10);
        assert!(c.fail_fast(t0 + 10 * MS, 0, 0, WINDOW).is_some());
        assert!(
            c.fail_fast(t0 + 10 * MS, 1, 0, WINDOW).is_none(),
            "one is established"
        );
        // Past the window a request waits for an attempt of its own,
        // although the backoff is far from over...
        assert!(c.retry_at().unwrap() > t0 + WINDOW);
        assert!(c.fail_fast(t0 + WINDOW, 0, 0, WINDOW).is_none());
        assert_eq!(c.allowance(t0 + WINDOW, true, WINDOW, 4), 1);
        assert_eq!(c.allowance(t0 + WINDOW, false, WINDOW, 4), 0);
        assert_eq!(c.allowance(t0 + 10 * MS, true, WINDOW, 4), 0);
        // ...while the others fail fast during it.
        assert!(c.fail_fast(t0 + WINDOW, 0, 1, WINDOW).is_some());
        // Past the backoff, the pool tries on its own.
        let after = c.retry_at().unwrap();
        assert_eq!(c.allowance(after, false, WINDOW, 4), 4);
    }

    #[test]
    fn a_success_forgets_the_failures() {
        let mut c = Connector::new();
        let mut rng = Rng::with_seed(2);
        let t0 = Instant::now();
        failed(&mut c, t0, &mut rng);
        c.started(t0 + MS, 0);
        c.succeeded(t0 + 2 * MS, 0);
        assert_eq!(c.failures(), 0);
        assert!(c.last_failure().is_none() && c.retry_at().is_none());
        assert!(c.fail_fast(t0 + 2 * MS, 0, 0, WINDOW).is_none());
        assert_eq!(c.allowance(t0 + 2 * MS, false, WINDOW, 4), 4);
    }

    #[test]
    fn the_backoff_doubles_with_full_jitter_within_its_bounds() {
        let mut c = Connector::new();
        let mut rng = Rng::with_seed(3);
        let t0 = Instant::now();
        for n in 1..=12u32 {
            failed(&mut c, t0, &mut rng);
            let delay = c.retry_at().unwrap() - t0;
            let ceiling = (WINDOW * 2u32.pow(n - 1)).min(2000 * MS);
            assert!(delay >= WINDOW && delay <= ceiling, "{n}: {delay:?}");
        }
    }

    #[test]
    fn pending_connects_are_timed_from_the_last_one_that_finished() {
        let mut c: Connector<&str> = Connector::new();
        let t0 = Instant::now();
        assert!(c.pending_for(t0).is_none());
        c.started(t0, 0);
        c.started(t0 + MS, 1);
        assert_eq!(c.pending_for(t0 + 10 * MS), Some(10 * MS));
        c.succeeded(t0 + 10 * MS, 1);
        assert_eq!(c.pending_for(t0 + 15 * MS), Some(5 * MS));
        c.abandoned(0);
        assert!(c.pending_for(t0 + 15 * MS).is_none());
    }
}
