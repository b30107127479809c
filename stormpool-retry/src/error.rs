//! The errors: [`ConfigError`] for a configuration a builder refused, and
//! [`RetryError`], with the [`Stop`] that says why no further attempt was
//! made, for a call that ends without a value.

use std::fmt;
use std::time::Duration;

/// A configuration value that a builder (the retry policy's, the
/// fan-out's) or a [`RetryBudget`](crate::RetryBudget) refused. Names the
/// field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value is outside the range the field accepts (a zero count or
    /// duration included).
    OutOfRange {
        /// The configuration field.
        field: &'static str,
        /// What the field accepts.
        expected: &'static str,
    },
    /// The backoff could sleep, over `max_attempts - 1` retries, as long as
    /// one attempt's timeout or longer.
    SleepBudget {
        /// The sum of the backoff's ceilings over all retries.
        worst_case_sleep: Duration,
        /// The per-attempt timeout the sleeps must stay below.
        attempt_timeout: Duration,
    },
}

impl ConfigError {
    /// The configuration field at fault (`backoff_cap` for a sleep budget
    /// the backoff exceeds).
    pub fn field(&self) -> &'static str {
        match self {
            ConfigError::OutOfRange { field, .. } => field,
            ConfigError::SleepBudget { .. } => "backoff_cap",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::OutOfRange { field, expected } => {
                write!(f, "`{field}` must be {expected}")
            }
            ConfigError::SleepBudget {
                worst_case_sleep,
                attempt_timeout,
            } => write!(
                f,
                "the backoff may sleep {worst_case_sleep:?} in total, which must be below \
                 `attempt_timeout` ({attempt_timeout:?}): lower `backoff_cap`, \
                 `backoff_base` or `max_attempts`"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// `Ok` when `holds`, else [`ConfigError::OutOfRange`] for `field`: one
/// line per rule in the validations.
pub(crate) fn ensure(
    holds: bool,
    field: &'static str,
    expected: &'static str,
) -> Result<(), ConfigError> {
    if holds {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange { field, expected })
    }
}

/// Why a call made no further attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stop {
    /// The last failure was [`Permanent`](crate::Classification::Permanent).
    Permanent,
    /// The destination said it was overloaded
    /// ([`Overloaded`](crate::Classification::Overloaded)).
    Overloaded,
    /// `max_attempts` attempts were made.
    AttemptsExhausted,
    /// The destination's [`RetryBudget`](crate::RetryBudget) had no retry left.
    BudgetExhausted,
    /// The overall deadline would pass before another attempt could run for
    /// its whole per-attempt timeout (or had passed before the first one).
    Deadline,
    /// The delay asked for by a [`RetryAfter`](crate::Classification::RetryAfter)
    /// would take the total sleep to the per-attempt timeout or beyond.
    SleepBudget,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stop::Permanent => "the failure is permanent",
            Stop::Overloaded => "the destination is overloaded",
            Stop::AttemptsExhausted => "no attempts left",
            Stop::BudgetExhausted => "the destination's retry budget is exhausted",
            Stop::Deadline => "another attempt would not finish before the deadline",
            Stop::SleepBudget => "the requested retry delay exceeds the sleep budget",
        })
    }
}

/// A call that [`RetryPolicy::run`](crate::RetryPolicy::run) gave up on.
#[derive(Debug)]
#[non_exhaustive]
pub enum RetryError<E> {
    /// The last attempt failed with `error`.
    Failed {
        /// The last attempt's error.
        error: E,
        /// How many attempts were made.
        attempts: u32,
        /// Why no further attempt was made.
        stop: Stop,
    },
    /// The last attempt did not finish within its per-attempt timeout or the
    /// overall deadline, or the deadline had passed before the first
    /// attempt (`attempts` is then 0).
    TimedOut {
        /// How many attempts were made.
        attempts: u32,
        /// Why no further attempt was made.
        stop: Stop,
    },
}

impl<E> RetryError<E> {
    /// How many attempts were made.
    pub fn attempts(&self) -> u32 {
        match self {
            RetryError::Failed { attempts, .. } | RetryError::TimedOut { attempts, .. } => {
                *attempts
            }
        }
    }

    /// Why no further attempt was made.
    pub fn stop(&self) -> Stop {
        match self {
            RetryError::Failed { stop, .. } | RetryError::TimedOut { stop, .. } => *stop,
        }
    }

    /// Whether the last attempt timed out (or none could start).
    pub fn is_timeout(&self) -> bool {
        matches!(self, RetryError::TimedOut { .. })
    }

    /// The last attempt's error, if it returned one.
    pub fn error(&self) -> Option<&E> {
        match self {
            RetryError::Failed { error, .. } => Some(error),
            RetryError::TimedOut { .. } => None,
        }
    }

    /// The last attempt's error, if it returned one.
    pub fn into_error(self) -> Option<E> {
        match self {
            RetryError::Failed { error, .. } => Some(error),
            RetryError::TimedOut { .. } => None,
        }
    }
}

impl<E> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            RetryError::Failed { .. } => "failed",
            RetryError::TimedOut { .. } => "timed out",
        };
        write!(
            f,
            "{what} after {} attempt(s): {}",
            self.attempts(),
            self.stop()
        )
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RetryError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error().map(|error| error as _)
    }
}
