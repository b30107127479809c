//! [`RetryConfig`]: what a retry policy is configured with, and the checks
//! that keep its sleeps below one attempt's timeout.

use std::time::Duration;

use crate::error::{ensure, ConfigError};

use crate::backoff::Backoff;

/// The most attempts a policy may make. Far more than a budgeted policy
/// needs; it keeps the worst-case computation small.
const MAX_ATTEMPTS: u32 = 100;
/// The longest per-attempt timeout; keeps deadline arithmetic in range.
const MAX_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Everything a [`RetryPolicy`](crate::RetryPolicy) is configured with.
/// Plain data; checked by [`validate`](RetryConfig::validate) and by
/// [`RetryPolicyBuilder::build`](crate::RetryPolicyBuilder::build).
///
/// The defaults make at most 3 attempts of at most 1 s each, sleeping at
/// most 50 ms + 100 ms between them.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// The most attempts per call, the first included. Default: 3. Between
    /// 1 and 100.
    pub max_attempts: u32,
    /// The longest one attempt may take; it is also the sleep budget: the
    /// backoff's worst-case total sleep must stay strictly below it.
    /// Default: 1 s. Positive, at most 24 h.
    pub attempt_timeout: Duration,
    /// The ceiling of the first retry's delay. Default: 50 ms. Positive.
    pub backoff_base: Duration,
    /// The largest delay between two attempts. Default: 500 ms. At least
    /// `backoff_base`.
    pub backoff_cap: Duration,
    /// The growth of the delay's ceiling per retry. Default: 2. Finite, at
    /// least 1.
    pub backoff_factor: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            attempt_timeout: Duration::from_secs(1),
            backoff_base: Duration::from_millis(50),
            backoff_cap: Duration::from_millis(500),
            backoff_factor: 2.0,
        }
    }
}

impl RetryConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.checked_backoff().map(drop)
    }

    /// The worst-case total sleep of a call: the sum of the backoff's
    /// ceilings over `max_attempts - 1` retries.
    ///
    /// # Errors
    ///
    /// The backoff fields are invalid.
    pub fn worst_case_sleep(&self) -> Result<Duration, ConfigError> {
        let backoff = Backoff::new(self.backoff_base, self.backoff_cap, self.backoff_factor)?;
        Ok(backoff.worst_case_total(self.max_attempts.saturating_sub(1)))
    }

    /// The backoff schedule of a valid configuration; the error names the
    /// first bad field.
    pub(super) fn checked_backoff(&self) -> Result<Backoff, ConfigError> {
        ensure(self.max_attempts >= 1, "max_attempts", "at least 1")?;
        ensure(
            self.max_attempts <= MAX_ATTEMPTS,
            "max_attempts",
            "at most 100",
        )?;
        let timeout = self.attempt_timeout;
        ensure(!timeout.is_zero(), "attempt_timeout", "a positive duration")?;
        ensure(
            timeout <= MAX_ATTEMPT_TIMEOUT,
            "attempt_timeout",
            "at most 24 h",
        )?;
        let backoff = Backoff::new(self.backoff_base, self.backoff_cap, self.backoff_factor)?;
        let worst_case_sleep = backoff.worst_case_total(self.max_attempts - 1);
        if worst_case_sleep >= self.attempt_timeout {
            return Err(ConfigError::SleepBudget {
                worst_case_sleep,
                attempt_timeout: self.attempt_timeout,
            });
        }
        Ok(backoff)
    }
}
