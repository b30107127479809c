//! The adapter's one error type, and the error classifier.
//!
//! # One type for a handler's `?`
//!
//! A request handler acquires a connection (the pool's
//! [`AcquireError`](stormpool::AcquireError)) and runs statements on it (the
//! driver's errors, or the client giving up on a silent server): all of
//! them convert into [`Error`], so one `?` serves both, and the classifiers
//! ([`Classify`]) answer the same questions of each.
//!
//! `Display` says what failed and, when it helps, where and the underlying
//! cause, in one line: `could not connect to 127.0.0.1:3306: Connection
//! refused (os error 111)`. Never the password, and never a value from the
//! connection URL's query string (which may carry secrets): URL errors name
//! the parameter only.

use std::fmt;
use std::time::Duration;

use mysql_async::{DriverError, ServerError, UrlError};
use stormpool::statements::{
    acquire_is_connection_error, acquire_is_retryable, ErrorKind, ErrorParts, Failure,
};
use stormpool::AcquireError;

pub use stormpool::statements::Operation;

/// An error of this crate: a manager operation, an acquire, or a statement.
///
/// Acquire errors (`AcquireError<Error>`) and the driver's
/// [`mysql_async::Error`] convert into it, so `?` works on both in one
/// handler. Classify it with [`Classify`]; [`server_error`](Error::server_error)
/// gives the server's report, [`acquire_error`](Error::acquire_error) the
/// pool's rejection.
///
/// `Display` says what failed and its underlying cause; it never contains
/// the password, nor a value from the URL.
pub struct Error(ErrorParts<Error>);

/// This adapter's own failures (the parts of an [`Error`] the core's do
/// not cover).
#[derive(Debug)]
pub enum Kind {
    /// A URL the driver refused, or an environment variable this crate
    /// refused, told without the values it carried.
    Url(String),
    /// A session variable name that cannot be spliced into SQL.
    InvalidSettingName(String),
    /// A manager operation (a cancel) took longer than its bound.
    TimedOut,
    /// The client gave up: the server did not answer by the request's
    /// deadline plus this grace.
    NoAnswer(Duration),
    /// The server cannot reset a session (MySQL before 5.7.3, MariaDB
    /// before 10.2.4).
    ResetUnsupported,
}

/// What was wrong with a URL, naming parameters but never their values.
fn describe_url_error(e: &UrlError) -> String {
    match e {
        UrlError::FeatureRequired { feature, param } => {
            format!("URL parameter `{param}` requires the driver's feature `{feature}`")
        }
        UrlError::Invalid => "invalid or incomplete URL".to_owned(),
        UrlError::InvalidParamValue { param, .. } => {
            format!("invalid value for URL parameter `{param}`")
        }
        UrlError::InvalidPoolConstraints { .. } => "invalid pool_min/pool_max".to_owned(),
        UrlError::Parse(e) => format!("URL parse error: {e}"),
        UrlError::UnknownParameter { param } => format!("unknown URL parameter `{param}`"),
        UrlError::UnsupportedScheme { scheme } => format!("unsupported URL scheme `{scheme}`"),
    }
}

impl Error {
    pub(crate) fn driver(operation: Operation) -> impl FnOnce(mysql_async::Error) -> Error {
        move |e| match e {
            // A URL error's own Display and Debug show the values.
            mysql_async::Error::Url(e) => {
                Error::other(operation, Kind::Url(describe_url_error(&e)))
            }
            e => Error(ErrorParts::new(operation, ErrorKind::Driver(e))),
        }
    }

    pub(crate) fn url(e: UrlError) -> Error {
        Error::other(Operation::Config, Kind::Url(describe_url_error(&e)))
    }

    /// A configuration this crate refused: `problem` names what, never a
    /// value.
    pub(crate) fn config(problem: String) -> Error {
        Error::other(Operation::Config, Kind::Url(problem))
    }

    pub(crate) fn invalid_setting_name(name: &str) -> Error {
        Error::other(Operation::Apply, Kind::InvalidSettingName(name.to_owned()))
    }

    pub(crate) fn timed_out(operation: Operation) -> Error {
        Error::other(operation, Kind::TimedOut)
    }

    pub(crate) fn no_answer(operation: Operation, grace: Duration) -> Error {
        Error::other(operation, Kind::NoAnswer(grace))
    }

    pub(crate) fn reset_unsupported() -> Error {
        Error::other(Operation::Reset, Kind::ResetUnsupported)
    }

    /// The driver's error, if the failure came from it.
    pub fn as_driver(&self) -> Option<&mysql_async::Error> {
        self.0.driver()
    }

    /// The server's error report (code, SQLSTATE, message), if it sent one.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self.as_driver() {
            Some(mysql_async::Error::Server(e)) => Some(e),
            _ => None,
        }
    }

    /// The server's message, if it sent one (`Access denied for user ..`).
    pub fn server_message(&self) -> Option<&str> {
        self.server_error().map(|e| e.message.as_str())
    }

    /// Whether something gave up waiting: the client on a statement the
    /// server did not answer by the request's deadline plus the grace (a
    /// frozen or unreachable server), a manager operation past its bound,
    /// or the pool on a connection or a connect. A statement the *server*
    /// stopped at its propagated bound is a SQL error instead (error 1969).
    pub fn is_timeout(&self) -> bool {
        match self.0.kind() {
            ErrorKind::Other(Kind::NoAnswer(_) | Kind::TimedOut) => true,
            _ => self.0.acquire_timed_out(),
        }
    }
}

stormpool::adapter_error_impls!(Error, mysql_async::Error, Kind, Error::driver);

impl Failure<Error> for Kind {
    fn describe(operation: Operation) -> &'static str {
        match operation {
            Operation::Connect => "could not connect to MySQL",
            Operation::Config => "invalid MySQL connection configuration",
            operation => operation.describe(),
        }
    }

    fn fmt(&self, parts: &ErrorParts<Error>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let describe = parts.describe();
        match self {
            Kind::Url(problem) => write!(f, "{describe}: {problem}"),
            Kind::InvalidSettingName(name) => write!(
                f,
                "invalid session variable name `{name}`: expected letters, digits, `_` and `.`"
            ),
            Kind::TimedOut => write!(f, "{describe}: timed out"),
            Kind::NoAnswer(grace) => write!(
                f,
                "{describe}: the server did not answer by the request's deadline \
                 (plus a grace of {grace:?})"
            ),
            Kind::ResetUnsupported => {
                f.write_str("the server does not support resetting a session")
            }
        }
    }

    fn debug(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        match self {
            Kind::Url(problem) => d.field("url", problem),
            Kind::InvalidSettingName(name) => d.field("invalid_setting_name", name),
            Kind::TimedOut => d.field("timed_out", &true),
            Kind::NoAnswer(grace) => d.field("no_answer_after_grace", grace),
            Kind::ResetUnsupported => d.field("reset_unsupported", &true),
        };
    }
}

/// Classifies a failure.
///
/// [`Classify`] answers the questions a caller asks of a failure: is the
/// connection gone ([`is_connection_error`](Classify::is_connection_error)),
/// may the same work succeed if tried again ([`is_retryable`](Classify::is_retryable)),
/// and what did the server report ([`sqlstate`](Classify::sqlstate),
/// [`server_code`](Classify::server_code)). It is implemented for this
/// crate's [`Error`], for the driver's [`mysql_async::Error`] (what queries
/// return) and for [`AcquireError<Error>`](stormpool::AcquireError) (what the
/// pool returns).
///
/// # What counts as retryable
///
/// Transient conditions: a lost, killed or refused connection (I/O errors,
/// a server that did not answer by the deadline,
/// `ER_CONNECTION_KILLED` 1927, `ER_SERVER_SHUTDOWN` 1053), a deadlock
/// (1213), a lock wait timeout (1205), too many connections (1040, 1203).
/// Not retryable: access denied (1044, 1045, 1698), an unknown database
/// (1049), statement errors, an interrupted statement (1317, what
/// [`cancel`](stormpool::Manager::cancel) produces) and the pool's own
/// rejections.
///
/// Whether re-running is *safe* is the caller's call: a statement whose
/// connection was lost in flight may have committed.
pub trait Classify {
    /// The SQLSTATE the server reported, if any.
    fn sqlstate(&self) -> Option<&str>;

    /// The server's error code (`1045`), if it reported one.
    fn server_code(&self) -> Option<u16>;

    /// Whether the connection is gone or unusable (I/O error, closed,
    /// protocol error, killed): the work may succeed on another connection,
    /// and this one will not serve again.
    fn is_connection_error(&self) -> bool;

    /// Whether the condition is transient, so that trying again (on another
    /// connection, later) may succeed.
    fn is_retryable(&self) -> bool;
}

/// Server codes meaning the session is over.
const SESSION_ENDED: [u16; 4] = [
    1053, // ER_SERVER_SHUTDOWN
    1152, // ER_ABORTING_CONNECTION
    1927, // ER_CONNECTION_KILLED (MariaDB)
    4031, // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
];

/// Server codes of transient conditions that leave the connection usable.
const TRANSIENT: [u16; 4] = [
    1040, // ER_CON_COUNT_ERROR
    1203, // ER_TOO_MANY_USER_CONNECTIONS
    1205, // ER_LOCK_WAIT_TIMEOUT
    1213, // ER_LOCK_DEADLOCK
];

impl Classify for mysql_async::Error {
    fn sqlstate(&self) -> Option<&str> {
        match self {
            mysql_async::Error::Server(e) => Some(&e.state),
            _ => None,
        }
    }

    fn server_code(&self) -> Option<u16> {
        match self {
            mysql_async::Error::Server(e) => Some(e.code),
            _ => None,
        }
    }

    fn is_connection_error(&self) -> bool {
        match self {
            mysql_async::Error::Io(_) => true,
            mysql_async::Error::Driver(e) => matches!(
                e,
                DriverError::ConnectionClosed
                    | DriverError::PacketOutOfOrder
                    | DriverError::UnexpectedPacket { .. }
                    | DriverError::PacketTooLarge
            ),
            mysql_async::Error::Server(e) => SESSION_ENDED.contains(&e.code),
            mysql_async::Error::Other(_) | mysql_async::Error::Url(_) => false,
        }
    }

    fn is_retryable(&self) -> bool {
        match self {
            mysql_async::Error::Server(e) => {
                TRANSIENT.contains(&e.code) || SESSION_ENDED.contains(&e.code)
            }
            _ => self.is_connection_error(),
        }
    }
}

impl Classify for Error {
    fn sqlstate(&self) -> Option<&str> {
        self.as_driver().and_then(Classify::sqlstate)
    }

    fn server_code(&self) -> Option<u16> {
        self.as_driver().and_then(Classify::server_code)
    }

    fn is_connection_error(&self) -> bool {
        match self.0.kind() {
            // A connect that failed never made a connection; any other
            // failing operation left its connection unusable only if the
            // driver says so.
            ErrorKind::Driver(e) => {
                self.0.own_operation() == Operation::Connect || e.is_connection_error()
            }
            ErrorKind::Other(Kind::TimedOut | Kind::NoAnswer(_)) => true,
            ErrorKind::Acquire(e) => e.is_connection_error(),
            ErrorKind::Hook(_) => self.as_driver().is_some_and(Classify::is_connection_error),
            ErrorKind::Other(
                Kind::Url(_) | Kind::InvalidSettingName(_) | Kind::ResetUnsupported,
            ) => false,
        }
    }

    fn is_retryable(&self) -> bool {
        match self.0.kind() {
            ErrorKind::Driver(e) => match self.0.own_operation() {
                Operation::Config | Operation::Apply => false,
                _ => e.is_retryable(),
            },
            ErrorKind::Other(Kind::TimedOut | Kind::NoAnswer(_)) => true,
            ErrorKind::Acquire(e) => e.is_retryable(),
            ErrorKind::Hook(_) => self.as_driver().is_some_and(Classify::is_retryable),
            ErrorKind::Other(
                Kind::Url(_) | Kind::InvalidSettingName(_) | Kind::ResetUnsupported,
            ) => false,
        }
    }
}

impl Classify for AcquireError<Error> {
    fn sqlstate(&self) -> Option<&str> {
        match self {
            AcquireError::Connect(e) => e.sqlstate(),
            AcquireError::Apply(e) => e.sqlstate(),
            _ => None,
        }
    }

    fn server_code(&self) -> Option<u16> {
        match self {
            AcquireError::Connect(e) => e.server_code(),
            AcquireError::Apply(e) => e.server_code(),
            _ => None,
        }
    }

    fn is_connection_error(&self) -> bool {
        acquire_is_connection_error(self, Classify::is_connection_error)
    }

    fn is_retryable(&self) -> bool {
        acquire_is_retryable(self, Classify::is_retryable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16, state: &str) -> mysql_async::Error {
        mysql_async::Error::Server(ServerError {
            code,
            message: "m".into(),
            state: state.into(),
        })
    }

    #[test]
    fn classifies_server_codes_and_io() {
        let killed = server(1927, "70100");
        assert!(killed.is_connection_error() && killed.is_retryable());
        let deadlock = server(1213, "40001");
        assert!(!deadlock.is_connection_error() && deadlock.is_retryable());
        assert_eq!(deadlock.sqlstate(), Some("40001"));
        let denied = server(1045, "28000");
        assert!(!denied.is_connection_error() && !denied.is_retryable());
        let interrupted = server(1317, "70100");
        assert!(!interrupted.is_retryable());
        let io = mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(io.is_connection_error() && io.is_retryable());
        let closed = mysql_async::Error::Driver(DriverError::ConnectionClosed);
        assert!(closed.is_connection_error());
    }

    #[test]
    fn the_pools_own_rejections_are_not_retryable() {
        let shed: AcquireError<Error> = AcquireError::Shed {
            retry_after: std::time::Duration::from_millis(100),
        };
        assert!(!shed.is_retryable() && !shed.is_connection_error());
        let timed_out: AcquireError<Error> = AcquireError::ConnectTimeout;
        assert!(timed_out.is_retryable() && timed_out.is_connection_error());
        let denied = Error::driver(Operation::Connect)(server(1045, "28000"));
        let denied: AcquireError<Error> = AcquireError::Connect(std::sync::Arc::new(denied));
        assert_eq!(denied.server_code(), Some(1045));
        assert!(!denied.is_retryable());
    }
}
