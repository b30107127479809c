//! What a failure means for the next attempt: [`Classification`] and the
//! [`Classify`] trait, with classifiers for the pool's own errors and for
//! HTTP status codes.
//!
//! A retry helps only when the next attempt may go differently. A rejected
//! argument will be rejected again ([`Permanent`](Classification::Permanent));
//! a destination that says it is overloaded gets worse with every retry
//! ([`Overloaded`](Classification::Overloaded)), and its own clients are the
//! only ones who can give it room. Those two are never retried, whatever the
//! budget holds.

use std::time::Duration;

use stormpool::AcquireError;

/// What one failed attempt says about the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Classification {
    /// The failure may not happen again (a reset connection, a timeout, a
    /// replica restarting): retry after a backoff, if the budget allows.
    Transient,
    /// The next attempt would fail the same way (a bad request, a conflict,
    /// a closed pool): never retried.
    Permanent,
    /// The destination asked to be called again after this delay (an HTTP
    /// `Retry-After`): retried after exactly this delay, if it fits in the
    /// sleep budget and before the deadline, and if the budget allows.
    RetryAfter(Duration),
    /// The destination, or a layer beneath, is shedding load (stormpool's
    /// [`AcquireError::Shed`], an HTTP 429 without a hint): never retried,
    /// because a retry is exactly the extra load it is refusing.
    Overloaded,
}

impl Classification {
    /// Whether a failure of this class may ever be retried.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Classification::Transient | Classification::RetryAfter(_)
        )
    }
}

/// Decides what a failed attempt's error means for the next attempt.
///
/// Implemented for every `Fn(&E) -> Classification`, so a closure is a
/// classifier:
///
/// ```
/// use stormpool_retry::{Classification, Classify};
///
/// #[derive(Debug)]
/// enum PushError {
///     Refused,
///     Conflict,
/// }
///
/// let classify = |error: &PushError| match error {
///     PushError::Refused => Classification::Transient,
///     PushError::Conflict => Classification::Permanent,
/// };
/// assert_eq!(classify.classify(&PushError::Conflict), Classification::Permanent);
/// ```
///
/// An error type that wraps stormpool's [`AcquireError`] should delegate to
/// [`Classification::from`] for it, so that the pool's overload rejections
/// stay [`Overloaded`](Classification::Overloaded).
pub trait Classify<E> {
    /// The class of `error`.
    fn classify(&self, error: &E) -> Classification;
}

impl<E, F> Classify<E> for F
where
    F: Fn(&E) -> Classification,
{
    fn classify(&self, error: &E) -> Classification {
        self(error)
    }
}

/// The classifier for stormpool's own [`AcquireError`]: the overload
/// rejections ([`Shed`](AcquireError::Shed),
/// [`TooManyWaiters`](AcquireError::TooManyWaiters),
/// [`KeyQueueFull`](AcquireError::KeyQueueFull)) are
/// [`Overloaded`](Classification::Overloaded); see
/// [`Classification::from`] for the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolErrors;

impl<E> Classify<AcquireError<E>> for PoolErrors {
    fn classify(&self, error: &AcquireError<E>) -> Classification {
        Classification::from(error)
    }
}

impl<E> From<&AcquireError<E>> for Classification {
    /// Classifies a pool error.
    ///
    /// - Overload rejections ([`is_overload`](AcquireError::is_overload)):
    ///   [`Overloaded`](Classification::Overloaded). A `Shed` carries a
    ///   `retry_after`, but it is a hint for *other* work, not an invitation
    ///   to this request: it is never retried.
    /// - [`Closed`](AcquireError::Closed) and [`Apply`](AcquireError::Apply)
    ///   (the settings were refused): [`Permanent`](Classification::Permanent).
    /// - Everything else ([`Timeout`](AcquireError::Timeout), connect
    ///   failures): [`Transient`](Classification::Transient), left to the
    ///   budget and the deadline.
    fn from(error: &AcquireError<E>) -> Self {
        if error.is_overload() {
            return Classification::Overloaded;
        }
        match error {
            AcquireError::Closed | AcquireError::Apply(_) => Classification::Permanent,
            _ => Classification::Transient,
        }
    }
}

/// Classifies an HTTP status code; `None` for a status that is not an error
/// (below 400).
///
/// - 408 Request Timeout, 500, 502, 504: [`Transient`](Classification::Transient).
/// - 429 Too Many Requests and 503 Service Unavailable:
///   [`RetryAfter`](Classification::RetryAfter) when the response carried a
///   `Retry-After` (pass it as `retry_after`); otherwise 429 is
///   [`Overloaded`](Classification::Overloaded) and 503
///   [`Transient`](Classification::Transient) (a replica restarting).
/// - Every other 4xx (400, 404, 409 Conflict, …) and 501, 505:
///   [`Permanent`](Classification::Permanent): the same request gets the
///   same answer. Other 5xx: transient.
///
/// ```
/// use stormpool_retry::{classify, Classification};
///
/// assert_eq!(classify::http_status(409, None), Some(Classification::Permanent));
/// assert_eq!(classify::http_status(502, None), Some(Classification::Transient));
/// assert_eq!(classify::http_status(204, None), None);
/// ```
pub fn http_status(status: u16, retry_after: Option<Duration>) -> Option<Classification> {
    let class = match status {
        0..=399 => return None,
        429 => match retry_after {
            Some(delay) => Classification::RetryAfter(delay),
            None => Classification::Overloaded,
        },
        503 => match retry_after {
            Some(delay) => Classification::RetryAfter(delay),
            None => Classification::Transient,
        },
        408 => Classification::Transient,
        400..=499 | 501 | 505 => Classification::Permanent,
        _ => Classification::Transient,
    };
    Some(class)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    type PoolError = AcquireError<std::io::Error>;

    #[test]
    fn pool_overload_is_never_retryable() {
        let overloads: [PoolError; 3] = [
            AcquireError::Shed {
                retry_after: Duration::from_millis(5),
            },
            AcquireError::TooManyWaiters,
            AcquireError::KeyQueueFull,
        ];
        for error in &overloads {
            assert_eq!(PoolErrors.classify(error), Classification::Overloaded);
            assert!(!PoolErrors.classify(error).is_retryable());
        }
    }

    #[test]
    fn pool_errors_split_into_permanent_and_transient() {
        let closed: PoolError = AcquireError::Closed;
        assert_eq!(Classification::from(&closed), Classification::Permanent);
        let timeout: PoolError = AcquireError::Timeout;
        assert_eq!(Classification::from(&timeout), Classification::Transient);
        let connect: PoolError = AcquireError::Connect(Arc::new(std::io::Error::other("refused")));
        assert_eq!(Classification::from(&connect), Classification::Transient);
    }

    #[test]
    fn http_statuses() {
        let hint = Some(Duration::from_millis(100));
        assert_eq!(http_status(200, None), None);
        assert_eq!(http_status(409, None), Some(Classification::Permanent));
        assert_eq!(http_status(404, hint), Some(Classification::Permanent));
        assert_eq!(http_status(408, None), Some(Classification::Transient));
        assert_eq!(http_status(429, None), Some(Classification::Overloaded));
        assert_eq!(
            http_status(429, hint),
            Some(Classification::RetryAfter(Duration::from_millis(100)))
        );
        assert_eq!(http_status(503, None), Some(Classification::Transient));
        assert_eq!(http_status(501, None), Some(Classification::Permanent));
        assert_eq!(http_status(502, None), Some(Classification::Transient));
    }
}
