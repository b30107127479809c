//! What a single request asks of the pool: its deadline, priority class,
//! fairness key and session settings.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use crate::clock::Instant;
use crate::Settings;

/// A request's priority class, after Google SRE's criticality levels.
///
/// Between classes the priority is strict: a waiting request of a higher
/// class is always served first. Load shedding takes the lowest class first;
/// [`Critical`](Priority::Critical) requests are never shed and only leave by
/// their own deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Serving this request is part of the service's purpose: never shed.
    Critical,
    /// The default class.
    #[default]
    Normal,
    /// Requests the service can afford to refuse first when overloaded.
    Sheddable,
    /// Work nobody waits for (batch jobs, cache warming): served last, shed first.
    Background,
}

impl Priority {
    /// Every class, highest first.
    pub const ALL: [Priority; 4] = [
        Priority::Critical,
        Priority::Normal,
        Priority::Sheddable,
        Priority::Background,
    ];

    /// The class's position in [`Priority::ALL`] (0 is `Critical`).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The class's name in lower case, as used in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::Normal => "normal",
            Priority::Sheddable => "sheddable",
            Priority::Background => "background",
        }
    }
}

/// How long a request may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The pool's `acquire_timeout`.
    Default,
    Timeout(Duration),
    Deadline(Instant),
}

/// Options of one acquire: `pool.get_with(AcquireOptions::new().timeout(..))`.
///
/// ```
/// use std::time::Duration;
/// use stormpool::{AcquireOptions, Priority};
///
/// let opts = AcquireOptions::new()
///     .timeout(Duration::from_millis(50))
///     .priority(Priority::Critical)
///     .key("tenant-42");
/// # let _ = opts;
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct AcquireOptions {
    pub(crate) wait: Wait,
    pub(crate) priority: Priority,
    pub(crate) key: u64,
    pub(crate) settings: Option<Settings>,
}

impl Default for AcquireOptions {
    fn default() -> Self {
        AcquireOptions::new()
    }
}

impl AcquireOptions {
    /// The defaults: the pool's `acquire_timeout`, [`Priority::Normal`], no
    /// fairness key, no settings.
    pub fn new() -> Self {
        AcquireOptions {
            wait: Wait::Default,
            priority: Priority::Normal,
            key: 0,
            settings: None,
        }
    }

    /// Waits at most `timeout` from the call to `get_with` for a
    /// connection. Bounds the wait only: what the request then does with
    /// the connection is not limited by it (see [`deadline`](Self::deadline)).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.wait = Wait::Timeout(timeout);
        self
    }

    /// The request's deadline (tokio's clock): the pool waits until then at
    /// the latest, never hands the request a connection after it, and (with
    /// `propagate_deadline`, the default) passes it to the manager so its
    /// statements can be bounded on the server by the time left.
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.wait = Wait::Deadline(deadline);
        self
    }

    /// The request's priority class. Defaults to [`Priority::Normal`].
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// A fairness key (a tenant, a user, an upstream request id): within a
    /// class, waiting requests are served round-robin across keys, so one
    /// key's fan-out cannot crowd out the others. Defaults to no key (all
    /// keyless requests share one queue).
    pub fn key(mut self, key: impl Hash) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        // 0 is reserved for "no key".
        self.key = hasher.finish().max(1);
        self
    }

    /// The session settings the connection must carry.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// The deadline to pass to the manager: the request's own deadline only.
    pub(crate) fn own_deadline(&self) -> Option<Instant> {
        match self.wait {
            Wait::Deadline(at) => Some(at),
            _ => None,
        }
    }

    /// The request's deadline, relative to its `start`, without computing
    /// it yet: the fast path never needs it.
    pub(crate) fn when(&self, start: Instant, default: Duration) -> When {
        match self.wait {
            Wait::Default => When::After {
                start,
                timeout: default,
            },
            Wait::Timeout(timeout) => When::After { start, timeout },
            Wait::Deadline(at) => When::At(at),
        }
    }
}

/// A deadline, either fixed or a timeout from a start.
#[derive(Clone, Copy, Debug)]
pub(crate) enum When {
    At(Instant),
    After { start: Instant, timeout: Duration },
}

impl When {
    /// The deadline as an instant (far in the future if it overflows).
    pub(crate) fn resolve(self) -> Instant {
        match self {
            When::At(at) => at,
            When::After { start, timeout } => start
                .checked_add(timeout)
                .unwrap_or_else(|| start + Duration::from_secs(86_400 * 365 * 30)),
        }
    }

    /// Whether the deadline has passed at `now`.
    pub(crate) fn passed(self, now: Instant) -> bool {
        match self {
            When::At(at) => at <= now,
            // At the start only a zero timeout has passed: no arithmetic.
            When::After { start, timeout } => {
                timeout.is_zero() || (now != start && self.resolve() <= now)
            }
        }
    }
}
