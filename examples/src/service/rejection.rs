//! How a request the gate or the pool did not serve is answered.
//!
//! | error | status | `Retry-After` |
//! |---|---|---|
//! | `Shed { retry_after }` | 503 | `retry_after`, rounded up to whole seconds |
//! | `TooManyWaiters`, `KeyQueueFull`, `Wedged` | 503 | 1 s |
//! | `Closed` | 503 | none: this instance is going away |
//! | `Timeout` | 504 | none |
//! | `Connect`, `ConnectTimeout`, `Apply` | 502 | none |
//!
//! A rejection costs the service nothing, so a client told to come back
//! later (with `Retry-After`) is best retried on another instance.

use std::convert::Infallible;
use std::error::Error;
use std::fmt;
use std::time::Duration;

use axum::http::header::RETRY_AFTER;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use stormpool::gate::GateServiceError;
use stormpool::AcquireError;

/// Which admission step refused the request, named in the answer's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Gate,
    Pool,
}

impl Step {
    fn as_str(self) -> &'static str {
        match self {
            Step::Gate => "gate",
            Step::Pool => "pool",
        }
    }
}

/// The answer to a request that `step` did not serve.
pub(crate) fn acquire_error<E>(step: Step, error: &AcquireError<E>) -> Response
where
    E: Error + 'static,
{
    const ONE_SECOND: Duration = Duration::from_secs(1);
    let (status, retry_after) = match error {
        AcquireError::Shed { retry_after } => (StatusCode::SERVICE_UNAVAILABLE, Some(*retry_after)),
        AcquireError::TooManyWaiters | AcquireError::KeyQueueFull => {
            (StatusCode::SERVICE_UNAVAILABLE, Some(ONE_SECOND))
        }
        // Nothing is being served here: another instance may do better.
        AcquireError::Wedged { .. } => (StatusCode::SERVICE_UNAVAILABLE, Some(ONE_SECOND)),
        AcquireError::Closed => (StatusCode::SERVICE_UNAVAILABLE, None),
        AcquireError::Timeout => (StatusCode::GATEWAY_TIMEOUT, None),
        error if error.is_database() => {
            // The cause goes to the log, not to the client.
            tracing::warn!(step = step.as_str(), error = %Chain(error), "no connection");
            (StatusCode::BAD_GATEWAY, None)
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
    };
    let body = format!("{}: {error}", step.as_str());
    match retry_after {
        Some(after) => (status, [(RETRY_AFTER, whole_seconds(after))], body).into_response(),
        None => (status, body).into_response(),
    }
}

/// The answer to a request the [`GateLayer`](stormpool::gate::GateLayer)
/// did not admit.
pub(crate) async fn gate_rejected(error: GateServiceError<Infallible>) -> Response {
    match error {
        GateServiceError::Rejected(error) => acquire_error(Step::Gate, &error),
        GateServiceError::Service(never) => match never {},
        // The enum may grow; an unknown failure is the service's own.
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `Retry-After` takes whole seconds: round up, and never answer 0, which
/// invites an immediate retry.
fn whole_seconds(after: Duration) -> String {
    let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    seconds.max(1).to_string()
}

/// An error and its sources, `: `-separated, for the log.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::ZERO), "1");
        assert_eq!(whole_seconds(Duration::from_millis(120)), "1");
        assert_eq!(whole_seconds(Duration::from_secs(2)), "2");
        assert_eq!(whole_seconds(Duration::from_millis(2001)), "3");
    }

    #[test]
    fn maps_each_error_to_its_status() {
        type E = AcquireError<std::io::Error>;
        let cases: [(E, StatusCode, bool); 7] = [
            (
                AcquireError::Shed {
                    retry_after: Duration::from_millis(300),
                },
                StatusCode::SERVICE_UNAVAILABLE,
                true,
            ),
            (
                AcquireError::TooManyWaiters,
                StatusCode::SERVICE_UNAVAILABLE,
                true,
            ),
            (
                AcquireError::KeyQueueFull,
                StatusCode::SERVICE_UNAVAILABLE,
                true,
            ),
            (
                AcquireError::Wedged {
                    stalled: Duration::from_millis(300),
                },
                StatusCode::SERVICE_UNAVAILABLE,
                true,
            ),
            (AcquireError::Closed, StatusCode::SERVICE_UNAVAILABLE, false),
            (AcquireError::Timeout, StatusCode::GATEWAY_TIMEOUT, false),
            (AcquireError::ConnectTimeout, StatusCode::BAD_GATEWAY, false),
        ];
        for (error, status, retry_after) in cases {
            let response = acquire_error(Step::Pool, &error);
            assert_eq!(response.status(), status, "{error}");
            assert_eq!(
                response.headers().contains_key(RETRY_AFTER),
                retry_after,
                "{error}"
            );
        }
    }
}
