//! Exponential backoff with full jitter, clamped to its cap.
//!
//! The delay before retry `n` is drawn uniformly from `[0, ceiling(n)]`, where
//! `ceiling(n) = min(cap, base × factor^(n-1))` ("full jitter", after the AWS
//! architecture blog's comparison of jitter schemes). The jitter is taken
//! *inside* the ceiling, never added on top of it: a schedule whose jitter can
//! push a delay past its cap has no worst case one can reason about, and the
//! worst case is what [`RetryPolicy`](crate::RetryPolicy) checks against the
//! per-attempt timeout. Full jitter (rather than "equal" or "decorrelated"
//! jitter) spreads a herd of clients that failed together over the whole
//! window, which is what breaks the synchronised retry waves.

use std::time::Duration;

use stormpool::clock::Rng;

use crate::error::{ensure, ConfigError};

/// An exponential backoff schedule with full jitter: every delay lies in
/// `[0, cap]`.
///
/// ```
/// use std::time::Duration;
/// use stormpool_retry::{Backoff, Rng};
///
/// let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(50), 2.0)?;
/// assert_eq!(backoff.ceiling(1), Duration::from_millis(10));
/// assert_eq!(backoff.ceiling(3), Duration::from_millis(40));
/// assert_eq!(backoff.ceiling(9), Duration::from_millis(50));
/// // 10 + 20 + 40: the most three retries can sleep in total.
/// assert_eq!(backoff.worst_case_total(3), Duration::from_millis(70));
///
/// let mut rng = Rng::with_seed(1);
/// assert!(backoff.delay(5, &mut rng) <= Duration::from_millis(50));
/// # Ok::<(), stormpool_retry::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    factor: f64,
}

impl Backoff {
    /// A schedule starting at `base` and multiplied by `factor` after every
    /// retry, never above `cap`.
    ///
    /// # Errors
    ///
    /// [`OutOfRange`](ConfigError::OutOfRange), naming the field:
    /// `backoff_base` when `base` is zero, `backoff_cap` when `cap` is below
    /// `base`, `backoff_factor` when `factor` is below 1 or not finite.
    pub fn new(base: Duration, cap: Duration, factor: f64) -> Result<Self, ConfigError> {
        ensure(!base.is_zero(), "backoff_base", "a positive duration")?;
        ensure(cap >= base, "backoff_cap", "at least `backoff_base`")?;
        // `is_finite` also rejects NaN.
        ensure(
            factor.is_finite() && factor >= 1.0,
            "backoff_factor",
            "a finite number of at least 1",
        )?;
        Ok(Backoff { base, cap, factor })
    }

    /// The ceiling of the first retry's delay.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The largest delay the schedule ever produces.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// The growth of the ceiling from one retry to the next.
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// The largest delay before retry `retry` (1 for the first retry, that
    /// is the second attempt): `min(cap, base × factor^(retry-1))`. Retry 0
    /// has no delay.
    pub fn ceiling(&self, retry: u32) -> Duration {
        if retry == 0 {
            return Duration::ZERO;
        }
        let exponent = i32::try_from(retry - 1).unwrap_or(i32::MAX);
        // An overflow gives infinity, which the comparison clamps to `cap`.
        let secs = self.base.as_secs_f64() * self.factor.powi(exponent);
        if secs >= self.cap.as_secs_f64() {
            return self.cap;
        }
        Duration::try_from_secs_f64(secs)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// The delay before retry `retry`: uniform in `[0, ceiling(retry)]`.
    pub fn delay(&self, retry: u32, rng: &mut Rng) -> Duration {
        rng.jitter(self.ceiling(retry))
    }

    /// The most that `retries` retries can sleep in total: the sum of their
    /// ceilings (saturating at [`Duration::MAX`]).
    ///
    /// Takes at most `retries` steps, fewer once the ceiling reaches the cap.
    pub fn worst_case_total(&self, retries: u32) -> Duration {
        let mut total = Duration::ZERO;
        for retry in 1..=retries {
            let ceiling = self.ceiling(retry);
            if ceiling == self.cap {
                let remaining = retries - retry + 1;
                let rest = self.cap.checked_mul(remaining).unwrap_or(Duration::MAX);
                return total.saturating_add(rest);
            }
            total = total.saturating_add(ceiling);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop_assert, proptest};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rejects_bad_schedules_with_the_field() {
        let field = |r: Result<Backoff, ConfigError>| r.unwrap_err().field();
        assert_eq!(field(Backoff::new(ms(0), ms(10), 2.0)), "backoff_base");
        assert_eq!(field(Backoff::new(ms(10), ms(5), 2.0)), "backoff_cap");
        assert_eq!(field(Backoff::new(ms(1), ms(5), 0.5)), "backoff_factor");
        assert_eq!(
            field(Backoff::new(ms(1), ms(5), f64::NAN)),
            "backoff_factor"
        );
        assert_eq!(
            field(Backoff::new(ms(1), ms(5), f64::INFINITY)),
            "backoff_factor"
        );
    }

    #[test]
    fn ceiling_grows_then_stays_at_the_cap() {
        let backoff = Backoff::new(ms(10), ms(100), 2.0).unwrap();
        let ceilings: Vec<_> = (0..7).map(|n| backoff.ceiling(n)).collect();
        assert_eq!(
            ceilings,
            [ms(0), ms(10), ms(20), ms(40), ms(80), ms(100), ms(100)]
        );
        assert_eq!(backoff.ceiling(u32::MAX), ms(100));
        assert_eq!(backoff.worst_case_total(6), ms(350));
        assert_eq!(
            backoff.worst_case_total(u32::MAX),
            ms(150) + ms(100) * (u32::MAX - 4)
        );
        let huge = Backoff::new(Duration::MAX / 2, Duration::MAX, 2.0).unwrap();
        assert_eq!(huge.worst_case_total(3), Duration::MAX, "saturates");
    }

    proptest! {
        /// Every delay of every schedule lies in `[0, cap]`, and a sequence
        /// of delays never sleeps more than the schedule's worst case.
        #[test]
        fn retry_backoff_delays_stay_within_cap_and_worst_case(
            base_us in 1u64..1_000_000,
            cap_extra_us in 0u64..5_000_000,
            factor in 1.0f64..8.0,
            retries in 0u32..40,
            seed in any::<u64>(),
        ) {
            let base = Duration::from_micros(base_us);
            let cap = base + Duration::from_micros(cap_extra_us);
            let backoff = Backoff::new(base, cap, factor).unwrap();
            let mut rng = Rng::with_seed(seed);
            let mut total = Duration::ZERO;
            for retry in 1..=retries {
                let delay = backoff.delay(retry, &mut rng);
                prop_assert!(delay <= backoff.ceiling(retry));
                prop_assert!(delay <= cap);
                total += delay;
            }
            prop_assert!(total <= backoff.worst_case_total(retries));
        }
    }
}
