//! Outbound calls that cannot become a storm: retries whose sleeps stay
//! below one attempt's timeout, that retry only what may go differently,
//! within a budget per destination and a deadline over the whole attempt
//! sequence; and a bounded fan-out of such calls over many targets.
//!
//! The `stormpool` pool decides which requests a service admits under
//! overload; this crate keeps the service's own calls, to its peers or to
//! a pool, from multiplying the load when they fail. It builds on the
//! `stormpool` core (tokio's clock and the jitter generator of
//! `stormpool::clock`, and [`PoolErrors`] to classify the pool's
//! `AcquireError`); the core does not depend on it.
//!
//! # The failure this answers
//!
//! A service synchronised a route table to its peers on every change: one
//! task per peer, a fresh connection per request, and a retry schedule whose
//! sleeps alone were longer than its own request timeout, while the caller
//! waited for all of it. One slow replica added about a second to every
//! lifecycle operation of the fleet. Each piece of this crate removes one
//! cause: [`RetryPolicy`] bounds each attempt and the sleeps, [`Classify`]
//! keeps permanent and overload failures from being retried, [`RetryBudget`]
//! keeps retries at a fraction of the traffic, a deadline
//! ([`CallOptions::deadline`], or the per-target deadline of
//! [`FanOut`](fanout::FanOut)) caps the whole sequence, and
//! [`fanout`] bounds how many calls are in flight at once.
//!
//! # Why the sleep budget must stay below the attempt timeout
//!
//! A call's worst case is `max_attempts × attempt_timeout` plus its sleeps.
//! The attempts do useful work; the sleeps only wait. A schedule whose sleeps
//! add up to more than one attempt spends more of the caller's time waiting
//! than trying, and, worse, its worst case is dominated by a number nobody
//! looks at. [`RetryPolicyBuilder::build`] therefore refuses a policy whose
//! backoff could sleep, in total, as long as one attempt's timeout
//! ([`ConfigError::SleepBudget`]); [`RetryPolicy::run`] holds every
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
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use stormpool_retry::{BudgetConfig, Budgets, CallOptions, PoolErrors, RetryPolicy};
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

//! # Fan-out
//!
//! [`fanout::FanOut`] runs one operation over many targets: at most
//! `max_in_flight` at once (a permit before a spawn, so the bound is on the
//! tasks that exist), each under a deadline over its whole attempt sequence,
//! until `All`, `Quorum(k)` or `First` is reached; dropping the run cancels
//! it. See the [`fanout`] module docs.
//!
//! # With tower
//!
//! With the `tower` feature, `tower::BudgetedRetry` is a
//! `tower::retry::Policy` that makes the same decisions from the same
//! [`RetryPolicy`] and spends the same [`RetryBudget`], for services built
//! from tower layers.
//!
//! # Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `tower` | no | `tower::BudgetedRetry`, a `tower::retry::Policy` spending a retry budget |
//!
//! # Map
//!
//! [`RetryPolicy`] and its [`RetryConfig`] (the builder validates the sleep
//! budget), [`Backoff`] (full jitter inside the cap), [`classify`]
//! ([`Classification`], [`Classify`], [`PoolErrors`], HTTP statuses),
//! [`budget`] ([`RetryBudget`], [`Budgets`]), [`RetryError`] and [`Stop`],
//! [`ConfigError`], [`fanout`], and `tower` (feature `tower`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backoff;
pub mod budget;
pub mod classify;
mod config;
mod error;
pub mod fanout;
mod policy;
mod sequence;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

pub use backoff::Backoff;
pub use budget::{BudgetConfig, BudgetStats, Budgets, RetryBudget};
pub use classify::{Classification, Classify, PoolErrors};
pub use config::RetryConfig;
pub use error::{ConfigError, RetryError, Stop};
pub use policy::{Attempt, CallOptions, RetryPolicy, RetryPolicyBuilder};
/// The jitter generator, shared with the pool: seed it
/// ([`RetryPolicyBuilder::rng`]) for a reproducible schedule.
pub use stormpool::clock::Rng;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
