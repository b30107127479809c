//! What a client asks of one request, in headers: its deadline, its
//! priority class and its fairness key.
//!
//! The headers are read once, by a middleware in front of the gate, into a
//! [`RequestOptions`] request extension: the gate and the pool then wait on
//! the same absolute deadline, instead of each starting its own clock.

use std::fmt;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use stormpool::clock::Instant;
use stormpool::{AcquireOptions, Priority};

/// The request's deadline, in milliseconds from its arrival.
pub const DEADLINE_HEADER: &str = "x-deadline-ms";
/// The request's priority class: `critical`, `normal`, `sheddable` or
/// `background`.
pub const PRIORITY_HEADER: &str = "x-priority";
/// The request's fairness key (a tenant, a user): within a class, waiting
/// requests are served round-robin across keys.
pub const TENANT_HEADER: &str = "x-tenant";

/// The deadlines a request may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineLimits {
    /// The deadline of a request without [`DEADLINE_HEADER`].
    pub default: Duration,
    /// The longest deadline a request may ask for; longer ones are cut to it.
    pub max: Duration,
}

/// One request's options, read from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOptions {
    /// When the request must be answered.
    pub deadline: Instant,
    /// The priority class; [`Priority::Normal`] without [`PRIORITY_HEADER`].
    pub priority: Priority,
    /// The fairness key, if [`TENANT_HEADER`] was given and is not empty.
    pub tenant: Option<String>,
}

impl RequestOptions {
    /// Reads the options from `headers` for a request that arrived at `now`.
    ///
    /// # Errors
    ///
    /// A header is present but malformed; the error names it.
    pub fn from_headers(
        headers: &HeaderMap,
        limits: DeadlineLimits,
        now: Instant,
    ) -> Result<Self, HeaderError> {
        let text = |name: &'static str| {
            headers
                .get(name)
                .map(|value| value.to_str().map_err(|_| HeaderError { header: name }))
                .transpose()
        };
        let timeout = match text(DEADLINE_HEADER)? {
            None => limits.default,
            Some(ms) => ms
                .trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| HeaderError {
                    header: DEADLINE_HEADER,
                })?
                .min(limits.max),
        };
        let priority = match text(PRIORITY_HEADER)? {
            None => Priority::Normal,
            Some(name) => parse_priority(name.trim()).ok_or(HeaderError {
                header: PRIORITY_HEADER,
            })?,
        };
        let tenant = text(TENANT_HEADER)?
            .map(str::trim)
            .filter(|tenant| !tenant.is_empty())
            .map(str::to_owned);
        Ok(RequestOptions {
            deadline: now + timeout,
            priority,
            tenant,
        })
    }

    /// The options of the request's acquires, from the gate and from the
    /// pool.
    pub fn acquire_options(&self) -> AcquireOptions {
        let options = AcquireOptions::new()
            .deadline(self.deadline)
            .priority(self.priority);
        match &self.tenant {
            Some(tenant) => options.key(tenant),
            None => options,
        }
    }
}

/// A priority class by its name in [`Priority::as_str`].
pub fn parse_priority(name: &str) -> Option<Priority> {
    Priority::ALL
        .into_iter()
        .find(|class| class.as_str().eq_ignore_ascii_case(name))
}

/// A request header that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError {
    header: &'static str,
}

impl HeaderError {
    /// The header at fault.
    pub fn header(&self) -> &'static str {
        self.header
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expected = match self.header {
            DEADLINE_HEADER => "milliseconds, a whole number",
            PRIORITY_HEADER => "critical, normal, sheddable or background",
            _ => "visible ASCII",
        };
        write!(f, "invalid `{}` header: expected {expected}", self.header)
    }
}

impl std::error::Error for HeaderError {}

/// The middleware that reads the options into a request extension, or
/// answers `400 Bad Request` naming the malformed header.
pub(crate) async fn attach(
    State(limits): State<DeadlineLimits>,
    mut request: Request,
) -> Result<Request, Response> {
    match RequestOptions::from_headers(request.headers(), limits, Instant::now()) {
        Ok(options) => {
            request.extensions_mut().insert(options);
            Ok(request)
        }
        Err(error) => Err((StatusCode::BAD_REQUEST, error.to_string()).into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DeadlineLimits = DeadlineLimits {
        default: Duration::from_secs(1),
        max: Duration::from_secs(30),
    };

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn defaults_without_headers() {
        let now = Instant::now();
        let options = RequestOptions::from_headers(&HeaderMap::new(), LIMITS, now).unwrap();
        assert_eq!(options.deadline, now + LIMITS.default);
        assert_eq!(options.priority, Priority::Normal);
        assert_eq!(options.tenant, None);
    }

    #[test]
    fn reads_and_caps_the_headers() {
        let now = Instant::now();
        let pairs = [
            (DEADLINE_HEADER, "250"),
            (PRIORITY_HEADER, "Sheddable"),
            (TENANT_HEADER, " acme "),
        ];
        let options = RequestOptions::from_headers(&headers(&pairs), LIMITS, now).unwrap();
        assert_eq!(options.deadline, now + Duration::from_millis(250));
        assert_eq!(options.priority, Priority::Sheddable);
        assert_eq!(options.tenant.as_deref(), Some("acme"));

        let long = headers(&[(DEADLINE_HEADER, "3600000"), (TENANT_HEADER, "")]);
        let options = RequestOptions::from_headers(&long, LIMITS, now).unwrap();
        assert_eq!(options.deadline, now + LIMITS.max);
        assert_eq!(options.tenant, None);
    }

    #[test]
    fn names_the_malformed_header() {
        let now = Instant::now();
        for (name, value) in [
            (DEADLINE_HEADER, "-5"),
            (DEADLINE_HEADER, "1.5"),
            (PRIORITY_HEADER, "urgent"),
        ] {
            let error = RequestOptions::from_headers(&headers(&[(name, value)]), LIMITS, now)
                .expect_err(value);
            assert_eq!(error.header(), name);
            assert!(error.to_string().contains(name), "{error}");
        }
    }
}
