//! What a fan-out returns: one [`Outcome`] per target, in the targets'
//! order, in a [`FanOutReport`].

use std::fmt;

use super::config::Completion;

/// How one target of a fan-out ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome<R, E> {
    /// The operation returned a value.
    Ok(R),
    /// The operation returned an error.
    Err(E),
    /// The per-target deadline passed first; the operation was dropped.
    TimedOut,
    /// The operation was running when the run's completion was reached, and
    /// was cancelled.
    Cancelled,
    /// The completion was reached before the target was started.
    NotStarted,
}

impl<R, E> Outcome<R, E> {
    /// Whether the operation returned a value.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }

    /// Whether the operation failed: an error or a timeout (not a
    /// cancellation, which says nothing about the target).
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Err(_) | Outcome::TimedOut)
    }

    /// The value, if the operation returned one.
    pub fn ok(&self) -> Option<&R> {
        match self {
            Outcome::Ok(value) => Some(value),
            _ => None,
        }
    }

    /// The error, if the operation returned one.
    pub fn err(&self) -> Option<&E> {
        match self {
            Outcome::Err(error) => Some(error),
            _ => None,
        }
    }
}

/// The outcomes of one fan-out run, in the order the targets were given.
#[derive(Debug, Clone)]
pub struct FanOutReport<R, E> {
    pub(crate) outcomes: Vec<Outcome<R, E>>,
    pub(crate) completion: Completion,
}

impl<R, E> FanOutReport<R, E> {
    /// The outcome of each target, in the targets' order.
    pub fn outcomes(&self) -> &[Outcome<R, E>] {
        &self.outcomes
    }

    /// The outcome of each target, in the targets' order.
    pub fn into_outcomes(self) -> Vec<Outcome<R, E>> {
        self.outcomes
    }

    /// How many targets succeeded.
    pub fn successes(&self) -> usize {
        self.outcomes.iter().filter(|o| o.is_ok()).count()
    }

    /// How many targets failed or timed out.
    pub fn failures(&self) -> usize {
        self.outcomes.iter().filter(|o| o.is_failure()).count()
    }

    /// Whether enough targets succeeded for the run's [`Completion`]: all of
    /// them for `All`, `k` for `Quorum(k)`, one for `First`.
    pub fn is_satisfied(&self) -> bool {
        self.successes() >= self.completion.needed(self.outcomes.len())
    }
}

/// A fan-out run that could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FanOutError {
    /// The completion asks for more successes than there are targets.
    QuorumAboveTargets {
        /// The successes asked for.
        quorum: usize,
        /// The targets given.
        targets: usize,
    },
}

impl fmt::Display for FanOutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FanOutError::QuorumAboveTargets { quorum, targets } => write!(
                f,
                "the completion needs {quorum} successes but only {targets} targets were given"
            ),
        }
    }
}

impl std::error::Error for FanOutError {}
