//! The decision after a failed attempt, shared by [`RetryPolicy::run`] and
//! the tower adapter so that both follow the same rules. It takes the
//! configuration and a source of backoff delays, not the policy: the policy
//! is built on it.
//!
//! The rules, in order: never retry what is permanent or overloaded; stop at
//! `max_attempts`; never let the total sleep reach the per-attempt timeout;
//! never start a sleep and an attempt that together cannot finish before
//! the deadline; and only then ask the budget, so that a retry that will not
//! be made spends nothing.
//!
//! [`RetryPolicy::run`]: crate::RetryPolicy::run

use std::time::Duration;

use stormpool::clock::Instant;

use crate::budget::RetryBudget;
use crate::classify::Classification;
use crate::config::RetryConfig;
use crate::error::Stop;

/// The state of one request's attempt sequence. Plain data: the tower
/// adapter keeps it in the per-request clone of its policy.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sequence {
    /// Attempts that have finished.
    attempts: u32,
    /// The sleeps taken between them.
    slept: Duration,
    /// Nothing may be started that cannot finish before this.
    deadline: Option<Instant>,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Sleep this long, then make the next attempt.
    Retry(Duration),
    /// Give up.
    Stop(Stop),
}

impl Sequence {
    pub(crate) fn new(deadline: Option<Instant>) -> Self {
        Sequence {
            attempts: 0,
            slept: Duration::ZERO,
            deadline,
        }
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The deadline of an attempt starting at `now`: its own timeout, cut
    /// short by the overall deadline; `None` once the deadline has passed.
    pub(crate) fn attempt_deadline(
        &self,
        now: Instant,
        attempt_timeout: Duration,
    ) -> Option<Instant> {
        if self.deadline.is_some_and(|deadline| now >= deadline) {
            return None;
        }
        // `attempt_timeout` is bounded by validation: no overflow.
        let own = now + attempt_timeout;
        Some(self.deadline.map_or(own, |deadline| own.min(deadline)))
    }

    /// Records a failed attempt of class `class`, finished at `now`, and
    /// decides whether and when to make the next one under `config`.
    /// `backoff` draws the delay before a given retry of a transient
    /// failure; it is called only for those. A `Retry` has already taken
    /// its retry from `budget`.
    pub(crate) fn after_failure(
        &mut self,
        class: Classification,
        now: Instant,
        config: &RetryConfig,
        backoff: impl FnOnce(u32) -> Duration,
        budget: Option<&RetryBudget>,
    ) -> Next {
        self.attempts = self.attempts.saturating_add(1);
        let delay = match class {
            Classification::Permanent => return Next::Stop(Stop::Permanent),
            Classification::Overloaded => return Next::Stop(Stop::Overloaded),
            Classification::Transient => backoff(self.attempts),
            Classification::RetryAfter(delay) => delay,
        };
        if self.attempts >= config.max_attempts {
            return Next::Stop(Stop::AttemptsExhausted);
        }
        // Backoff delays can never reach this (`build` checked their worst
        // case); a server's `RetryAfter` can.
        let slept = self.slept.saturating_add(delay);
        if slept >= config.attempt_timeout {
            return Next::Stop(Stop::SleepBudget);
        }
        if let Some(deadline) = self.deadline {
            // Both terms are below `attempt_timeout`, itself bounded by
            // validation, so the sum cannot overflow an `Instant`.
            let finish = now + delay + config.attempt_timeout;
            if finish > deadline {
                return Next::Stop(Stop::Deadline);
            }
        }
        if let Some(budget) = budget {
            if !budget.try_withdraw() {
                return Next::Stop(Stop::BudgetExhausted);
            }
        }
        self.slept = slept;
        Next::Retry(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConfigError;
    use crate::RetryPolicy;
    use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest};
    use stormpool::clock::Rng;

    fn policy(config: RetryConfig, seed: u64) -> Result<RetryPolicy<()>, ConfigError> {
        RetryPolicy::builder(())
            .config(config)
            .rng(Rng::with_seed(seed))
            .build()
    }

    /// One step of `policy`'s decision, as `RetryPolicy::run` takes it.
    fn after_failure(
        sequence: &mut Sequence,
        class: Classification,
        now: Instant,
        policy: &RetryPolicy<()>,
    ) -> Next {
        policy.after_failure(sequence, class, now, None)
    }

    proptest! {
        /// Over any configuration `build` accepts, and any mix of transient
        /// failures and server-requested delays, every backoff delay lies in
        /// `[0, cap]` and the sleeps of a whole sequence add up to strictly
        /// less than the per-attempt timeout. `build` refuses exactly the
        /// configurations whose worst case would not.
        #[test]
        fn retry_sleeps_stay_within_cap_and_below_the_attempt_timeout(
            max_attempts in 1u32..20,
            timeout_ms in 1u64..5_000,
            base_us in 1u64..500_000,
            cap_extra_us in 0u64..2_000_000,
            factor in 1.0f64..4.0,
            hints in proptest::collection::vec(proptest::option::of(0u64..2_000), 20),
            seed in any::<u64>(),
        ) {
            let mut config = RetryConfig::default();
            config.max_attempts = max_attempts;
            config.attempt_timeout = Duration::from_millis(timeout_ms);
            config.backoff_base = Duration::from_micros(base_us);
            config.backoff_cap = config.backoff_base + Duration::from_micros(cap_extra_us);
            config.backoff_factor = factor;
            let worst = config.worst_case_sleep().unwrap();
            let policy = match policy(config, seed) {
                Ok(policy) => policy,
                Err(ConfigError::SleepBudget { worst_case_sleep, .. }) => {
                    prop_assert!(worst_case_sleep >= config.attempt_timeout);
                    return Ok(());
                }
                Err(other) => panic!("unexpected {other}"),
            };
            prop_assert!(worst < config.attempt_timeout);

            // Backoff only: every retry is made, within the cap.
            let now = Instant::now();
            let mut sequence = Sequence::new(None);
            let mut slept = Duration::ZERO;
            let stop = loop {
                match after_failure(&mut sequence, Classification::Transient, now, &policy) {
                    Next::Retry(delay) => {
                        prop_assert!(delay <= config.backoff_cap);
                        slept += delay;
                    }
                    Next::Stop(stop) => break stop,
                }
            };
            prop_assert_eq!(stop, Stop::AttemptsExhausted);
            prop_assert_eq!(sequence.attempts(), max_attempts);
            prop_assert!(slept <= worst && slept < config.attempt_timeout);

            // Mixed with server hints: the sleep budget still holds.
            let mut sequence = Sequence::new(None);
            let mut slept = Duration::ZERO;
            for hint in &hints {
                let class = match hint {
                    Some(ms) => Classification::RetryAfter(Duration::from_millis(*ms)),
                    None => Classification::Transient,
                };
                match after_failure(&mut sequence, class, now, &policy) {
                    Next::Retry(delay) => slept += delay,
                    Next::Stop(_) => break,
                }
            }
            prop_assert!(slept < config.attempt_timeout);
        }
    }

    #[test]
    fn permanent_and_overloaded_stop_at_once() {
        let policy = policy(RetryConfig::default(), 1).unwrap();
        let now = Instant::now();
        for (class, stop) in [
            (Classification::Permanent, Stop::Permanent),
            (Classification::Overloaded, Stop::Overloaded),
        ] {
            let mut sequence = Sequence::new(None);
            assert_eq!(
                after_failure(&mut sequence, class, now, &policy),
                Next::Stop(stop)
            );
        }
    }

    #[test]
    fn no_retry_that_cannot_finish_before_the_deadline() {
        // 1 s attempts: a retry needs its sleep plus a whole second.
        let policy = policy(RetryConfig::default(), 1).unwrap();
        let now = Instant::now();
        let mut sequence = Sequence::new(Some(now + Duration::from_millis(999)));
        assert_eq!(
            after_failure(
                &mut sequence,
                Classification::RetryAfter(Duration::ZERO),
                now,
                &policy
            ),
            Next::Stop(Stop::Deadline)
        );
        let mut sequence = Sequence::new(Some(now + Duration::from_millis(1_100)));
        assert_eq!(
            after_failure(
                &mut sequence,
                Classification::RetryAfter(Duration::from_millis(50)),
                now,
                &policy
            ),
            Next::Retry(Duration::from_millis(50))
        );
        assert_eq!(
            sequence.attempt_deadline(now, Duration::from_secs(1)),
            Some(now + Duration::from_secs(1))
        );
        let late = now + Duration::from_millis(1_100);
        assert_eq!(
            sequence.attempt_deadline(late, Duration::from_secs(1)),
            None
        );
    }
}
