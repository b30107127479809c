//! The retry policy: the builder that validates its configuration, and
//! [`RetryPolicy::run`], which drives one call's attempt sequence.

use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use crate::ConfigError;
use stormpool::clock::{Instant, Rng};

use crate::backoff::Backoff;
use crate::budget::RetryBudget;
use crate::classify::{Classification, Classify};
use crate::config::RetryConfig;
use crate::error::RetryError;
use crate::sequence::{Next, Sequence};

/// Builds a [`RetryPolicy`]: `RetryPolicy::builder(classifier).max_attempts(3).build()?`.
///
/// Each setter documents its default; [`build`](RetryPolicyBuilder::build)
/// validates the whole configuration and names the first bad field.
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RetryPolicyBuilder<C> {
    config: RetryConfig,
    classifier: C,
    rng: Option<Rng>,
}

impl<C> RetryPolicyBuilder<C> {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: RetryConfig) -> Self {
        self.config = config;
        self
    }

    /// The most attempts per call, the first included. Defaults to 3.
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.config.max_attempts = max_attempts;
        self
    }

    /// The bound of one attempt, and of all sleeps together. Defaults to 1 s.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.config.attempt_timeout = timeout;
        self
    }

    /// The ceiling of the first retry's delay. Defaults to 50 ms.
    pub fn backoff_base(mut self, base: Duration) -> Self {
        self.config.backoff_base = base;
        self
    }

    /// The largest delay between attempts. Defaults to 500 ms.
    pub fn backoff_cap(mut self, cap: Duration) -> Self {
        self.config.backoff_cap = cap;
        self
    }

    /// The growth of the delay's ceiling per retry. Defaults to 2.
    pub fn backoff_factor(mut self, factor: f64) -> Self {
        self.config.backoff_factor = factor;
        self
    }

    /// The generator of the jitter; seed it for deterministic tests.
    /// Defaults to [`Rng::new`].
    pub fn rng(mut self, rng: Rng) -> Self {
        self.rng = Some(rng);
        self
    }

    /// Validates the configuration and creates the policy.
    ///
    /// # Errors
    ///
    /// A field out of range, named by the error; in particular
    /// [`ConfigError::SleepBudget`] when the backoff's worst-case total
    /// sleep is not strictly below `attempt_timeout`.
    pub fn build(self) -> Result<RetryPolicy<C>, ConfigError> {
        let backoff = self.config.checked_backoff()?;
        Ok(RetryPolicy {
            config: self.config,
            backoff,
            rng: Mutex::new(self.rng.unwrap_or_default()),
            classifier: self.classifier,
        })
    }
}

/// Where and by when one call may run: its overall deadline and its
/// destination's [`RetryBudget`]. Both optional; the default has neither.
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct CallOptions<'a> {
    deadline: Option<Instant>,
    budget: Option<&'a RetryBudget>,
}

impl<'a> CallOptions<'a> {
    /// No deadline and no budget: the call is bounded by `max_attempts`
    /// attempts of `attempt_timeout` and the sleeps between them.
    pub fn new() -> Self {
        CallOptions::default()
    }

    /// Nothing is started that cannot finish before `deadline`.
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The deadline `timeout` from now. A zero timeout means the call fails
    /// at once with [`RetryError::TimedOut`] and no attempt.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        // An overflowing deadline is no deadline.
        self.deadline = Instant::now().checked_add(timeout);
        self
    }

    /// Each call deposits into `budget`, and each retry withdraws from it.
    pub fn budget(mut self, budget: &'a RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }
}

/// What the operation is told about the attempt it is asked to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    number: u32,
    deadline: Instant,
}

impl Attempt {
    /// 1 for the first attempt, 2 for the first retry, and so on.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// When this attempt will be abandoned: pass it on (as a request
    /// timeout header, a statement timeout) so that the destination can
    /// abandon the work too.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether this attempt is a retry.
    pub fn is_retry(&self) -> bool {
        self.number > 1
    }
}

/// A validated retry policy: how many attempts, how long each, how long to
/// sleep between them, and which failures to retry at all.
///
/// Share one policy (in an `Arc`) between all the calls it governs; the
/// per-call state lives in [`run`](RetryPolicy::run)'s future, and the
/// per-destination state in a [`RetryBudget`].
///
/// ```
/// use std::io::{Error, ErrorKind};
/// use std::time::Duration;
/// use stormpool_retry::{CallOptions, Classification, RetryBudget, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let policy = RetryPolicy::builder(|error: &Error| match error.kind() {
///     ErrorKind::InvalidInput => Classification::Permanent,
///     _ => Classification::Transient,
/// })
/// .max_attempts(3)
/// .attempt_timeout(Duration::from_millis(200))
/// .backoff_base(Duration::from_millis(10))
/// .backoff_cap(Duration::from_millis(50))
/// .build()?;
/// let budget = RetryBudget::new(Default::default())?;
///
/// let options = CallOptions::new().timeout(Duration::from_secs(1)).budget(&budget);
/// let value = policy
///     .run(options, |attempt| async move {
///         match attempt.number() {
///             1 => Err(Error::from(ErrorKind::ConnectionReset)),
///             n => Ok(n),
///         }
///     })
///     .await?;
/// assert_eq!(value, 2);
/// # Ok(())
/// # }
/// ```
pub struct RetryPolicy<C> {
    config: RetryConfig,
    backoff: Backoff,
    /// Locked only to draw one delay.
    rng: Mutex<Rng>,
    classifier: C,
}

impl<C> fmt::Debug for RetryPolicy<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<C> RetryPolicy<C> {
    /// A builder with the default configuration and `classifier`, which
    /// decides which failures may be retried at all.
    pub fn builder(classifier: C) -> RetryPolicyBuilder<C> {
        RetryPolicyBuilder {
            config: RetryConfig::default(),
            classifier,
            rng: None,
        }
    }

    /// The validated configuration.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// The backoff schedule.
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// The most a call sleeps in total (always below `attempt_timeout`).
    pub fn worst_case_sleep(&self) -> Duration {
        self.backoff
            .worst_case_total(self.config.max_attempts.saturating_sub(1))
    }

    /// The classifier.
    pub fn classifier(&self) -> &C {
        &self.classifier
    }

    /// A delay for retry `retry` drawn from the backoff.
    fn jittered_delay(&self, retry: u32) -> Duration {
        // The generator's state is always valid, even after a panic elsewhere.
        let mut rng = match self.rng.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        self.backoff.delay(retry, &mut rng)
    }

    /// Records a failed attempt of `sequence` and decides on the next one
    /// under this policy (see [`Sequence::after_failure`]).
    pub(crate) fn after_failure(
        &self,
        sequence: &mut Sequence,
        class: Classification,
        now: Instant,
        budget: Option<&RetryBudget>,
    ) -> Next {
        sequence.after_failure(
            class,
            now,
            &self.config,
            |retry| self.jittered_delay(retry),
            budget,
        )
    }

    /// Runs `op` until it succeeds or the policy gives up.
    ///
    /// Each attempt is bounded by `attempt_timeout` (and the deadline); a
    /// timed-out attempt is [`Transient`](Classification::Transient). After
    /// a failure, the call gives up when the failure is permanent or
    /// overloaded, when `max_attempts` were made, when the next sleep plus a
    /// whole attempt would not finish before the deadline, or when the
    /// budget has no retry left; otherwise it sleeps and tries again. The
    /// call deposits into the budget once, at its start.
    ///
    /// # Errors
    ///
    /// [`RetryError::Failed`] with the last error, or
    /// [`RetryError::TimedOut`]; either says how many attempts were made and
    /// why no further one was.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the attempt in progress (or the sleep) and
    /// makes no further attempt. A retry already withdrawn from the budget
    /// stays spent.
    pub async fn run<T, E, F, Fut>(
        &self,
        options: CallOptions<'_>,
        mut op: F,
    ) -> Result<T, RetryError<E>>
    where
        C: Classify<E>,
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(budget) = options.budget {
            budget.deposit();
        }
        let mut sequence = Sequence::new(options.deadline);
        loop {
            let attempts = sequence.attempts();
            let Some(deadline) =
                sequence.attempt_deadline(Instant::now(), self.config.attempt_timeout)
            else {
                return Err(RetryError::TimedOut {
                    attempts,
                    stop: crate::Stop::Deadline,
                });
            };
            let attempt = Attempt {
                number: attempts + 1,
                deadline,
            };
            let (class, error) = match tokio::time::timeout_at(deadline, op(attempt)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => (self.classifier.classify(&error), Some(error)),
                Err(_elapsed) => (Classification::Transient, None),
            };
            match self.after_failure(&mut sequence, class, Instant::now(), options.budget) {
                Next::Retry(delay) => tokio::time::sleep(delay).await,
                Next::Stop(stop) => {
                    let attempts = sequence.attempts();
                    return Err(match error {
                        Some(error) => RetryError::Failed {
                            error,
                            attempts,
                            stop,
                        },
                        None => RetryError::TimedOut { attempts, stop },
                    });
                }
            }
        }
    }
}
