//! Retries that cannot become a storm: a backoff whose sleeps stay below one
//! attempt's timeout, a classifier that retries only what may go
//! differently, a budget per destination, and a deadline over the whole
//! attempt sequence.
//!
//! # The failure this answers
//!
//! A service synchronised a route table to its peers on every change: one
//! task per peer, a fresh connection per request, and a retry schedule whose
//! sleeps alone were longer than its own request timeout, while the caller
//! waited for all of it. One slow replica added about a second to every
//! lifecycle operation of the fleet. Each piece of this module removes one
//! cause: [`RetryPolicy`] bounds each attempt and the sleeps, [`Classify`]
//! keeps permanent and overload failures from being retried, [`RetryBudget`]
//! keeps retries at a fraction of the traffic, and a deadline
//! ([`CallOptions::deadline`], or the per-target deadline of
//! [`FanOut`](crate::fanout::FanOut)) caps the whole sequence.
//!
//! # Why the sleep budget must stay below the attempt timeout
//!
//! A call's worst case is `max_attempts × attempt_timeout` plus its sleeps.
//! The attempts do useful work; the sleeps only wait. A schedule whose sleeps
//! add up to more than one attempt spends more of the caller's time waiting
//! than trying, and, worse, its worst case is dominated by a number nobody
//! looks at. [`RetryPolicyBuilder::build`] therefore refuses a policy whose
//! backoff could sleep, in total, as long as one attempt's timeout
//! ([`ConfigError::SleepBudget`](crate::ConfigError::SleepBudget)); [`RetryPolicy::run`] holds every
//! sequence to it at run time too, including delays a server asks for with
//! [`Classification::RetryAfter`].
//!
//! # Why full jitter, clamped to the cap
//!
//! Clients that failed together retry together unless their delays are
//! spread; full jitter draws each delay uniformly from `[0, ceiling]`, which
//! spreads them widest. The jitter stays inside the ceiling: schedules that
//! add jitter on top of the capped delay (as some crates do) can exceed
//! their own cap, and then the worst case above cannot be checked. See
//! [`Backoff`].
//!
//! # Why budgets and not max retries
//!
//! A maximum number of attempts bounds one request's latency but multiplies
//! the load exactly when the destination fails: three attempts triple it, and
//! three stacked layers of three make it 27-fold. A budget lets retries add at
//! most `retry_ratio` (10 %) of the requests to each destination, plus a small
//! floor, so sustained amplification stays near 1.1 per layer. See
//! [`budget`] for the design, after Finagle and tower.
//!
//! # Deadlines
//!
//! With an overall deadline ([`CallOptions::deadline`]), the first attempt
//! runs until the deadline or its own timeout, whichever is first, and a
//! retry is started only if its sleep *and a whole attempt* fit before the
//! deadline: an attempt that can only be cut short is work done for nobody.
//! Each [`Attempt`] carries its deadline, to be passed on to the destination.
//!
//! # With tower
//!
//! With the `tower` feature, `retry::tower::BudgetedRetry` is a
//! `tower::retry::Policy` that makes the same decisions from the same
//! [`RetryPolicy`] and spends the same [`RetryBudget`], for services built
//! from tower layers.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use stormpool::retry::{BudgetConfig, Budgets, CallOptions, PoolErrors, RetryPolicy};
//! use stormpool::AcquireError;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let policy = RetryPolicy::builder(PoolErrors)
//!     .attempt_timeout(Duration::from_millis(300))
//!     .backoff_base(Duration::from_millis(20))
//!     .backoff_cap(Duration::from_millis(100))
//!     .build()?;
//! let budgets: Budgets<String> = Budgets::new(BudgetConfig::default())?;
//! let budget = budgets.get("replica-1");
//!
//! let options = CallOptions::new().timeout(Duration::from_secs(1)).budget(&budget);
//! let result = policy
//!     .run(options, |_attempt| async {
//!         Err::<(), AcquireError<std::io::Error>>(AcquireError::Shed {
//!             retry_after: Duration::from_millis(10),
//!         })
//!     })
//!     .await;
//! let error = result.unwrap_err();
//! assert_eq!(error.attempts(), 1, "an overloaded answer is never retried");
//! # Ok(())
//! # }
//! ```

mod backoff;
pub mod budget;
pub mod classify;
mod config;
mod error;
mod policy;
mod sequence;
#[cfg(feature = "tower")]
pub mod tower;

pub use backoff::Backoff;
pub use budget::{BudgetConfig, BudgetStats, Budgets, RetryBudget};
pub use classify::{Classification, Classify, PoolErrors};
pub use config::RetryConfig;
pub use error::{RetryError, Stop};
pub use policy::{Attempt, CallOptions, RetryPolicy, RetryPolicyBuilder};
