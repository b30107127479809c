//! Bounded fan-out: run one async operation over many targets, at most
//! `max_in_flight` at once, each under a deadline over its whole attempt
//! sequence, until a [`Completion`] is reached.
//!
//! # The failure this answers
//!
//! A route sync that spawned one task per peer per change turned every change
//! into a burst of tasks and fresh connections, and its caller waited for the
//! slowest peer's whole retry schedule. [`FanOut`] answers each part:
//!
//! - **A permit before a spawn.** A target's task is spawned only once it
//!   holds one of `max_in_flight` permits, so the bound is on tasks that
//!   exist, not just on tasks that do I/O: a fan-out over 10 000 targets
//!   holds `max_in_flight` futures, not 10 000. The permits belong to the
//!   [`FanOut`] (and its clones), so concurrent runs share the bound, as the
//!   syncs triggered by concurrent changes should.
//! - **A deadline over the whole sequence.** Each target gets
//!   `per_target_timeout` from the moment it starts, and its operation is
//!   told that deadline: give it to [`CallOptions::deadline`] and the retry
//!   policy plans its attempts and sleeps to finish before it. A hung target
//!   costs its deadline and no more.
//! - **Completion.** [`Completion::All`] waits for every target;
//!   [`Completion::Quorum`] and [`Completion::First`] return as soon as
//!   enough targets succeeded (or too many failed for that to happen), and
//!   cancel the rest.
//! - **Cancellation.** The tasks live in a [`JoinSet`] owned by the run's
//!   future: dropping that future aborts every task it started. So an overall
//!   bound is one `tokio::time::timeout` around [`FanOut::run`].
//!
//! # Bounds
//!
//! With at least as many permits as targets, a run takes at most
//! `per_target_timeout` (plus scheduling). With fewer, a target waits for a
//! permit before its own deadline starts, and the run may take up to
//! `⌈targets / max_in_flight⌉ × per_target_timeout` when every target hangs.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use stormpool_retry::fanout::{Completion, FanOut};
//! use stormpool_retry::{CallOptions, Classification, RetryPolicy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fanout = FanOut::builder()
//!     .max_in_flight(4)
//!     .per_target_timeout(Duration::from_millis(500))
//!     .completion(Completion::Quorum(3))
//!     .build()?;
//! let policy = std::sync::Arc::new(
//!     RetryPolicy::builder(|_: &String| Classification::Transient)
//!         .attempt_timeout(Duration::from_millis(100))
//!         .backoff_base(Duration::from_millis(5))
//!         .backoff_cap(Duration::from_millis(20))
//!         .build()?,
//! );
//!
//! let peers = ["a", "b", "c", "d", "e"];
//! let report = fanout
//!     .run(peers, |peer, deadline| {
//!         let policy = policy.clone();
//!         async move {
//!             let options = CallOptions::new().deadline(deadline);
//!             policy
//!                 .run(options, |_attempt| async move { Ok::<_, String>(peer.len()) })
//!                 .await
//!         }
//!     })
//!     .await?;
//! assert!(report.is_satisfied());
//! assert!(report.successes() >= 3);
//! # Ok(())
//! # }
//! ```
//!
//! [`CallOptions::deadline`]: crate::CallOptions::deadline

mod config;
mod report;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};

use stormpool::clock::Instant;

pub use config::{Completion, FanOutBuilder, FanOutConfig};
pub use report::{FanOutError, FanOutReport, Outcome};

/// Runs an operation over many targets with bounded concurrency, per-target
/// deadlines and a completion rule. See the [module docs](self).
///
/// Cheap to clone; clones share the `max_in_flight` permits.
#[derive(Debug, Clone)]
pub struct FanOut {
    config: FanOutConfig,
    permits: Arc<Semaphore>,
}

/// What the run loop waits for.
enum Event<R, E> {
    Finished(Result<(usize, Outcome<R, E>), JoinError>),
    Permit(Result<OwnedSemaphorePermit, AcquireError>),
}

/// The results so far, in the targets' order.
struct Ledger<R, E> {
    outcomes: Vec<Option<Outcome<R, E>>>,
    started: Vec<bool>,
    successes: usize,
    failures: usize,
}

impl<R, E> Ledger<R, E> {
    fn new(targets: usize) -> Self {
        Ledger {
            outcomes: std::iter::repeat_with(|| None).take(targets).collect(),
            started: vec![false; targets],
            successes: 0,
            failures: 0,
        }
    }

    /// Records a finished task. A task's panic is the run's panic.
    fn record(&mut self, joined: Result<(usize, Outcome<R, E>), JoinError>) {
        let (index, outcome) = match joined {
            Ok(finished) => finished,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Cancelled by this run: reported as `Cancelled` at the end.
            Err(_) => return,
        };
        if outcome.is_ok() {
            self.successes += 1;
        } else if outcome.is_failure() {
            self.failures += 1;
        }
        self.outcomes[index] = Some(outcome);
    }

    /// Whether `completion` is decided: enough successes, or too many
    /// failures for enough. `All` is decided only when everything finished.
    fn decided(&self, completion: Completion) -> bool {
        let targets = self.outcomes.len();
        let needed = completion.needed(targets);
        match completion {
            Completion::All => false,
            Completion::Quorum(_) | Completion::First => {
                self.successes >= needed || self.failures > targets - needed
            }
        }
    }

    fn into_report(self, completion: Completion) -> FanOutReport<R, E> {
        let outcomes = self
            .outcomes
            .into_iter()
            .zip(self.started)
            .map(|(outcome, started)| match (outcome, started) {
                (Some(outcome), _) => outcome,
                (None, true) => Outcome::Cancelled,
                (None, false) => Outcome::NotStarted,
            })
            .collect();
        FanOutReport {
            outcomes,
            completion,
        }
    }
}

type PermitFuture =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

impl FanOut {
    /// A builder with the default configuration.
    pub fn builder() -> FanOutBuilder {
        FanOutBuilder::default()
    }

    pub(crate) fn from_config(config: FanOutConfig) -> Self {
        FanOut {
            permits: Arc::new(Semaphore::new(config.max_in_flight)),
            config,
        }
    }

    /// The validated configuration.
    pub fn config(&self) -> &FanOutConfig {
        &self.config
    }

    /// How many targets are in flight now, over all runs sharing the permits.
    pub fn in_flight(&self) -> usize {
        self.config.max_in_flight - self.permits.available_permits()
    }

    fn acquire(&self) -> PermitFuture {
        Box::pin(Arc::clone(&self.permits).acquire_owned())
    }

    /// Runs `op` over `targets`: at most `max_in_flight` at once, each under
    /// `per_target_timeout`, until the configured [`Completion`].
    ///
    /// `op` is called with each target and its deadline, when the target
    /// has its permit; the future it returns is spawned and dropped at the
    /// deadline. Pass the deadline on (to
    /// [`CallOptions::deadline`](crate::CallOptions::deadline)) so that
    /// the attempts are planned to finish before it.
    ///
    /// When the completion is reached, the targets still running are
    /// cancelled (and awaited, so that none of them outlives the call) and
    /// the rest are not started. Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`FanOutError::QuorumAboveTargets`] when the completion needs more
    /// successes than there are targets (`First` over no targets included);
    /// nothing is started then.
    ///
    /// # Panics
    ///
    /// Resumes the panic of an operation that panicked; its siblings are
    /// aborted as the panic unwinds through the run.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future aborts every task it started and starts no more;
    /// their permits come back as the runtime drops them. The outcomes of
    /// targets that had finished are lost with it.
    pub async fn run<T, R, E, F, Fut>(
        &self,
        targets: impl IntoIterator<Item = T>,
        mut op: F,
    ) -> Result<FanOutReport<R, E>, FanOutError>
    where
        F: FnMut(T, Instant) -> Fut,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        let targets: Vec<T> = targets.into_iter().collect();
        let completion = self.config.completion;
        let needed = completion.needed(targets.len());
        if needed > targets.len() {
            return Err(FanOutError::QuorumAboveTargets {
                quorum: needed,
                targets: targets.len(),
            });
        }
        let mut ledger = Ledger::new(targets.len());
        let mut tasks = JoinSet::new();
        let mut pending = targets.into_iter().enumerate();
        let mut next = pending.next();
        // Kept across iterations, so the run keeps its place in the
        // semaphore's queue while it handles finished tasks.
        let mut permit = next.is_some().then(|| self.acquire());

        while !ledger.decided(completion) {
            let event = match permit.as_mut() {
                Some(permit) => tokio::select! {
                    // Finished tasks first: a quorum is noticed before
                    // another target is started.
                    biased;
                    Some(joined) = tasks.join_next(), if !tasks.is_empty() => Event::Finished(joined),
                    granted = permit => Event::Permit(granted),
                },
                None => match tasks.join_next().await {
                    Some(joined) => Event::Finished(joined),
                    None => break,
                },
            };
            match event {
                Event::Finished(joined) => ledger.record(joined),
                Event::Permit(granted) => {
                    // The semaphore is never closed; if it were, nothing
                    // more could start.
                    let (Ok(granted), Some((index, target))) = (granted, next.take()) else {
                        permit = None;
                        continue;
                    };
                    let deadline = Instant::now() + self.config.per_target_timeout;
                    let work = op(target, deadline);
                    tasks.spawn(async move {
                        let _permit = granted;
                        let outcome = match tokio::time::timeout_at(deadline, work).await {
                            Ok(Ok(value)) => Outcome::Ok(value),
                            Ok(Err(error)) => Outcome::Err(error),
                            Err(_elapsed) => Outcome::TimedOut,
                        };
                        (index, outcome)
                    });
                    ledger.started[index] = true;
                    next = pending.next();
                    permit = next.is_some().then(|| self.acquire());
                }
            }
        }

        drop(permit);
        tasks.abort_all();
        // Tasks that finished before the abort keep their outcome.
        while let Some(joined) = tasks.join_next().await {
            ledger.record(joined);
        }
        Ok(ledger.into_report(completion))
    }
}
