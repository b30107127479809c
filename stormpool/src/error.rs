//! The errors of the pool's operations: one small enum per operation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why [`Pool::get`](crate::Pool::get) did not return a connection.
///
/// Every variant is a distinct, counted outcome. The rejections
/// ([`TooManyWaiters`](AcquireError::TooManyWaiters),
/// [`Closed`](AcquireError::Closed), [`Shed`](AcquireError::Shed),
/// [`KeyQueueFull`](AcquireError::KeyQueueFull)) are returned before any
/// connection work is done, so they are cheap to produce and safe to retry
/// elsewhere.
#[derive(Debug)]
#[non_exhaustive]
pub enum AcquireError<E> {
    /// The request's deadline passed before a connection could be handed to it.
    Timeout,
    /// The waitlist already holds `max_waiters` requests; returned at once.
    TooManyWaiters,
    /// The pool is closed (or closing); returned at once.
    Closed,
    /// The request was rejected by load shedding: the pool has been
    /// overloaded (queueing delay above its target) for longer than an
    /// interval. Try again after `retry_after`, preferably elsewhere.
    Shed {
        /// A hint for when the pool expects to have drained its queue.
        retry_after: Duration,
    },
    /// The request was rejected early because the pool is wedged: no
    /// connection has come free for anyone for `stalled`, since every
    /// connection is held by requests that do not finish (queries stuck on
    /// locks, a frozen server). Not overload: the database, or its
    /// holders, are stuck, and the pool's health says so. With `max_hold`
    /// the stuck connections are revoked and replaced.
    Wedged {
        /// How long nothing has been handed to anyone.
        stalled: Duration,
    },
    /// The request's fairness key already has as many requests queued as the
    /// per-key queue cap allows; returned at once.
    KeyQueueFull,
    /// The database cannot be reached: the connect attempts fail with this
    /// error, and no connection is open that could come back. Returned fast
    /// instead of letting requests wait for a database that is down.
    Connect(Arc<E>),
    /// The database does not answer connects: opening a connection took
    /// longer than `connect_timeout`, or was still under way (for longer
    /// than a maintenance tick) when the request's deadline passed, and no
    /// connection is open that could come back.
    ConnectTimeout,
    /// The connection could not be given the requested settings
    /// ([`Manager::apply`](crate::Manager::apply) failed). The connection
    /// was closed.
    Apply(E),
}

impl<E> AcquireError<E> {
    /// Whether the pool rejected the request without waiting or was
    /// overloaded: a caller should not retry against this pool right away.
    pub fn is_overload(&self) -> bool {
        matches!(
            self,
            AcquireError::TooManyWaiters | AcquireError::Shed { .. } | AcquireError::KeyQueueFull
        )
    }

    /// Whether the error comes from the database rather than the pool.
    pub fn is_database(&self) -> bool {
        matches!(
            self,
            AcquireError::Connect(_) | AcquireError::ConnectTimeout | AcquireError::Apply(_)
        )
    }
}

impl<E> fmt::Display for AcquireError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::Timeout => f.write_str("timed out waiting for a connection"),
            AcquireError::TooManyWaiters => {
                f.write_str("too many requests are waiting for a connection")
            }
            AcquireError::Closed => f.write_str("the pool is closed"),
            AcquireError::Shed { retry_after } => {
                write!(
                    f,
                    "request shed: the pool is overloaded (retry after {retry_after:?})"
                )
            }
            AcquireError::Wedged { stalled } => write!(
                f,
                "the pool is wedged: no connection has come free for {stalled:?} \
                 (every connection is held by requests that do not finish)"
            ),
            AcquireError::KeyQueueFull => {
                f.write_str("too many requests are waiting for this fairness key")
            }
            AcquireError::Connect(_) => f.write_str("could not connect to the database"),
            AcquireError::ConnectTimeout => f.write_str("connecting to the database timed out"),
            AcquireError::Apply(_) => f.write_str("could not apply the requested session settings"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for AcquireError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AcquireError::Connect(e) => Some(&**e),
            AcquireError::Apply(e) => Some(e),
            _ => None,
        }
    }
}

/// A configuration value that a builder ([`Builder`](crate::Builder), the
/// gate's) or [`Pool::resize`](crate::Pool::resize) refused. Names the
/// field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A size or count that must be at least 1 was 0.
    Zero {
        /// The configuration field.
        field: &'static str,
    },
    /// A duration that must be positive was zero.
    ZeroDuration {
        /// The configuration field.
        field: &'static str,
    },
    /// `min_idle` is larger than `max_size`.
    MinIdleAboveMaxSize {
        /// The requested `min_idle`.
        min_idle: usize,
        /// The requested `max_size`.
        max_size: usize,
    },
    /// A value is outside the range the field accepts.
    OutOfRange {
        /// The configuration field.
        field: &'static str,
        /// What the field accepts.
        expected: &'static str,
    },
}

impl ConfigError {
    /// The configuration field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            ConfigError::Zero { field }
            | ConfigError::ZeroDuration { field }
            | ConfigError::OutOfRange { field, .. } => field,
            ConfigError::MinIdleAboveMaxSize { .. } => "min_idle",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Zero { field } => write!(f, "`{field}` must be at least 1"),
            ConfigError::ZeroDuration { field } => {
                write!(f, "`{field}` must be a positive duration")
            }
            ConfigError::MinIdleAboveMaxSize { min_idle, max_size } => {
                write!(
                    f,
                    "`min_idle` ({min_idle}) must not exceed `max_size` ({max_size})"
                )
            }
            ConfigError::OutOfRange { field, expected } => {
                write!(f, "`{field}` must be {expected}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// [`Pool::close`](crate::Pool::close) stopped waiting for connections still
/// in use when its drain timeout passed. They are closed when returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseError {
    /// How many connections were still in use or being handed over.
    pub still_open: usize,
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool closed, but {} connections were still in use when the drain timeout passed",
            self.still_open
        )
    }
}

impl std::error::Error for CloseError {}
