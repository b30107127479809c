//! A [`tower::retry::Policy`] that follows a [`RetryPolicy`] and spends a
//! [`RetryBudget`] (feature `tower`).
//!
//! [`BudgetedRetry`] makes the same decisions as [`RetryPolicy::run`]: never
//! retry a permanent or overloaded failure, stop at `max_attempts`, keep the
//! sleeps below `attempt_timeout`, never start a retry that cannot finish
//! before the deadline, and ask the budget last. What `run` does itself is
//! left to the stack here:
//!
//! - **The per-attempt timeout.** tower's `Retry` does not bound attempts;
//!   put a timeout layer (`tower::timeout::TimeoutLayer` with the policy's
//!   `attempt_timeout`) *beneath* the retry layer, and classify its elapsed
//!   error as [`Transient`](crate::Classification::Transient).
//! - **Responses that are failures.** Only `Err` results are classified; an
//!   `Ok` response ends the call. Turn failed responses (an HTTP 503) into
//!   errors beneath the retry layer.
//!
//! The request must be `Clone`. Each request deposits into the budget once,
//! when its first attempt's result comes back.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Sleep;

use stormpool::clock::Instant;

use crate::budget::RetryBudget;
use crate::classify::Classify;
use crate::policy::RetryPolicy;
use crate::sequence::{Next, Sequence};

/// A [`tower::retry::Policy`] driven by a shared [`RetryPolicy`] and the
/// destination's [`RetryBudget`].
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use stormpool_retry::tower::BudgetedRetry;
/// use stormpool_retry::{Classification, RetryBudget, RetryPolicy};
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let policy = RetryPolicy::builder(|_: &&str| Classification::Transient)
///     .attempt_timeout(Duration::from_millis(100))
///     .backoff_base(Duration::from_millis(5))
///     .backoff_cap(Duration::from_millis(20))
///     .build()?;
/// let budget = RetryBudget::new(Default::default())?;
/// let retry = BudgetedRetry::new(Arc::new(policy), Arc::new(budget));
///
/// let service = retry.layer().layer(service_fn(|request: u32| async move {
///     if request == 0 { Err("refused") } else { Ok(request) }
/// }));
/// assert_eq!(service.oneshot(7).await?, 7);
/// # Ok(())
/// # }
/// ```
pub struct BudgetedRetry<C> {
    policy: Arc<RetryPolicy<C>>,
    budget: Arc<RetryBudget>,
    overall_timeout: Option<Duration>,
    /// The state of the request this clone follows. tower clones the
    /// policy into each response future, so every request gets its own.
    sequence: Sequence,
}

impl<C> BudgetedRetry<C> {
    /// A policy following `policy`, spending `budget` (the budget of the
    /// destination the wrapped service calls).
    pub fn new(policy: Arc<RetryPolicy<C>>, budget: Arc<RetryBudget>) -> Self {
        BudgetedRetry {
            policy,
            budget,
            overall_timeout: None,
            sequence: Sequence::default(),
        }
    }

    /// A deadline for each request, `timeout` after its first attempt
    /// starts: no retry is started that cannot finish before it. Defaults
    /// to none (the sequence is still bounded by `max_attempts` and the
    /// sleep budget).
    pub fn overall_timeout(mut self, timeout: Duration) -> Self {
        self.overall_timeout = Some(timeout);
        self
    }

    /// The retry layer applying this policy.
    pub fn layer(self) -> tower::retry::RetryLayer<Self> {
        tower::retry::RetryLayer::new(self)
    }
}

impl<C> Clone for BudgetedRetry<C> {
    fn clone(&self) -> Self {
        BudgetedRetry {
            policy: Arc::clone(&self.policy),
            budget: Arc::clone(&self.budget),
            overall_timeout: self.overall_timeout,
            sequence: self.sequence,
        }
    }
}

impl<C> fmt::Debug for BudgetedRetry<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BudgetedRetry")
            .field("policy", &self.policy)
            .field("budget", &self.budget)
            .field("overall_timeout", &self.overall_timeout)
            .field("attempts", &self.sequence.attempts())
            .finish()
    }
}

impl<Req, Res, E, C> tower::retry::Policy<Req, Res, E> for BudgetedRetry<C>
where
    Req: Clone,
    C: Classify<E>,
{
    type Future = Sleep;

    fn retry(&mut self, _request: &mut Req, result: &mut Result<Res, E>) -> Option<Sleep> {
        if self.sequence.attempts() == 0 {
            self.budget.deposit();
        }
        let error = match result {
            Ok(_) => return None,
            Err(error) => error,
        };
        let class = self.policy.classifier().classify(error);
        match self.policy.after_failure(
            &mut self.sequence,
            class,
            Instant::now(),
            Some(&self.budget),
        ) {
            Next::Retry(delay) => Some(tokio::time::sleep(delay)),
            Next::Stop(_) => None,
        }
    }

    fn clone_request(&mut self, request: &Req) -> Option<Req> {
        // tower calls this on the service's own policy before the first
        // attempt, then copies the policy into the response future: the
        // deadline set here travels with the request.
        if self.sequence.attempts() == 0 {
            let deadline = self
                .overall_timeout
                .and_then(|timeout| Instant::now().checked_add(timeout));
            self.sequence = Sequence::new(deadline);
        }
        Some(request.clone())
    }
}
