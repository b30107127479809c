//! The fan-out's configuration: plain data, validated by
//! [`FanOutBuilder::build`].

use std::time::Duration;

use crate::error::{ensure, ConfigError};

use tokio::sync::Semaphore;

use super::FanOut;

/// When a fan-out has its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Completion {
    /// Every target has finished (succeeded, failed or timed out). The
    /// default.
    #[default]
    All,
    /// `k` targets have succeeded, or so many have failed that `k` no longer
    /// can: the targets still running are cancelled and the rest are not
    /// started. `k` must be at least 1 and at most the number of targets.
    Quorum(usize),
    /// The first success; the same as `Quorum(1)`.
    First,
}

impl Completion {
    /// The successes that satisfy this completion among `targets` targets.
    pub(crate) fn needed(self, targets: usize) -> usize {
        match self {
            Completion::All => targets,
            Completion::Quorum(k) => k,
            Completion::First => 1,
        }
    }
}

/// Everything a [`FanOut`] is configured with. Plain data; checked by
/// [`validate`](FanOutConfig::validate) and by [`FanOutBuilder::build`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FanOutConfig {
    /// The most targets in flight at once, over all the runs of one
    /// [`FanOut`] and its clones. Default: 16. Between 1 and
    /// [`Semaphore::MAX_PERMITS`].
    pub max_in_flight: usize,
    /// The deadline over one target's whole attempt sequence, counted from
    /// the moment it starts (has its permit). Default: 5 s. Positive, at
    /// most 24 h.
    pub per_target_timeout: Duration,
    /// When a run has its answer. Default: [`Completion::All`].
    pub completion: Completion,
}

impl Default for FanOutConfig {
    fn default() -> Self {
        FanOutConfig {
            max_in_flight: 16,
            per_target_timeout: Duration::from_secs(5),
            completion: Completion::All,
        }
    }
}

impl FanOutConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (in_flight, timeout) = (self.max_in_flight, self.per_target_timeout);
        ensure(in_flight >= 1, "max_in_flight", "at least 1")?;
        ensure(
            in_flight <= Semaphore::MAX_PERMITS,
            "max_in_flight",
            "at most `tokio::sync::Semaphore::MAX_PERMITS`",
        )?;
        ensure(
            !timeout.is_zero(),
            "per_target_timeout",
            "a positive duration",
        )?;
        ensure(
            timeout <= Duration::from_secs(24 * 3600),
            "per_target_timeout",
            "at most 24 h",
        )?;
        ensure(
            self.completion != Completion::Quorum(0),
            "completion",
            "a quorum of at least 1",
        )
    }
}

/// Builds a [`FanOut`]: `FanOut::builder().max_in_flight(8).build()?`.
///
/// Each setter documents its default; [`build`](FanOutBuilder::build)
/// validates the whole configuration and names the first bad field.
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct FanOutBuilder {
    config: FanOutConfig,
}

impl FanOutBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: FanOutConfig) -> Self {
        self.config = config;
        self
    }

    /// The most targets in flight at once. Defaults to 16.
    pub fn max_in_flight(mut self, max_in_flight: usize) -> Self {
        self.config.max_in_flight = max_in_flight;
        self
    }

    /// The deadline over one target's whole attempt sequence. Defaults to 5 s.
    pub fn per_target_timeout(mut self, timeout: Duration) -> Self {
        self.config.per_target_timeout = timeout;
        self
    }

    /// When a run has its answer. Defaults to [`Completion::All`].
    pub fn completion(mut self, completion: Completion) -> Self {
        self.config.completion = completion;
        self
    }

    /// Validates the configuration and creates the fan-out.
    ///
    /// # Errors
    ///
    /// A field out of range, named by the error.
    pub fn build(self) -> Result<FanOut, ConfigError> {
        self.config.validate()?;
        Ok(FanOut::from_config(self.config))
    }
}
