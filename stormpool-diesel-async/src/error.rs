//! The adapter's one error type.
//!
//! A request handler acquires a connection (the pool's
//! [`AcquireError`](stormpool::AcquireError)) and runs diesel queries on it
//! ([`diesel::result::Error`]): both convert into [`Error`], so one `?`
//! serves both. `Display` says what failed and, when it helps, where and
//! the underlying cause, in one line; never the password.

use std::fmt;

use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind};
use stormpool::statements::{
    acquire_is_connection_error, root_cause, ErrorKind, ErrorParts, Failure,
};
use stormpool::AcquireError;

pub use stormpool::statements::Operation;

/// An error of this crate: a manager operation, an acquire, or a statement.
///
/// Acquire errors (`AcquireError<Error>`) and [`diesel::result::Error`]
/// convert into it, so `?` works on both in one handler.
pub struct Error(ErrorParts<Error>);

/// This adapter's own failures (the parts of an [`Error`] the core's do
/// not cover).
#[derive(Debug)]
pub enum Kind {
    /// The driver's own error (tokio-postgres, mysql_async), from a connect
    /// or a cancel.
    Driver(Box<dyn std::error::Error + Send + Sync>),
    /// What was wrong with the options, naming no value.
    Config(String),
    /// Settings were given, which this adapter does not apply.
    SettingsUnsupported,
    /// A manager operation (a cancel) took longer than its bound.
    TimedOut,
}

/// The message of the error a tracked statement fails with when the server
/// did not answer by the request's deadline plus the grace.
pub(crate) const NO_ANSWER: &str = "the server did not answer by the request's deadline";

/// The database error of a statement the client gave up on.
#[derive(Debug)]
struct NoAnswer {
    details: String,
}

impl DatabaseErrorInformation for NoAnswer {
    fn message(&self) -> &str {
        NO_ANSWER
    }
    fn details(&self) -> Option<&str> {
        Some(&self.details)
    }
    fn hint(&self) -> Option<&str> {
        None
    }
    fn table_name(&self) -> Option<&str> {
        None
    }
    fn column_name(&self) -> Option<&str> {
        None
    }
    fn constraint_name(&self) -> Option<&str> {
        None
    }
    fn statement_position(&self) -> Option<i32> {
        None
    }
}

/// The error a tracked statement fails with when the server did not answer
/// by the request's deadline plus `grace`: diesel's error type has no
/// variant for a client that stopped waiting, so it is a database error of
/// kind `UnableToSendCommand` with a message of its own.
pub(crate) fn no_answer(grace: std::time::Duration) -> diesel::result::Error {
    diesel::result::Error::DatabaseError(
        DatabaseErrorKind::UnableToSendCommand,
        Box::new(NoAnswer {
            details: format!("the client gave up {grace:?} past the deadline"),
        }),
    )
}

/// Whether diesel's error is the client giving up on the server.
fn is_no_answer(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(DatabaseErrorKind::UnableToSendCommand, info)
        if info.message() == NO_ANSWER)
}

/// Whether diesel's error leaves the connection unusable.
pub(crate) fn is_connection_error(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _
        ) | diesel::result::Error::BrokenTransactionManager
    )
}

impl Error {
    pub(crate) fn diesel(operation: Operation) -> impl FnOnce(diesel::result::Error) -> Error {
        move |e| Error(ErrorParts::new(operation, ErrorKind::Driver(e)))
    }

    pub(crate) fn driver<E: std::error::Error + Send + Sync + 'static>(
        operation: Operation,
    ) -> impl FnOnce(E) -> Error {
        move |e| Error::other(operation, Kind::Driver(Box::new(e)))
    }

    pub(crate) fn config(problem: String) -> Error {
        Error::other(Operation::Config, Kind::Config(problem))
    }

    pub(crate) fn settings_unsupported() -> Error {
        Error::other(Operation::Apply, Kind::SettingsUnsupported)
    }

    pub(crate) fn timed_out(operation: Operation) -> Error {
        Error::other(operation, Kind::TimedOut)
    }

    /// diesel's error, if the failure came from a statement.
    pub fn as_diesel(&self) -> Option<&diesel::result::Error> {
        match self.0.kind() {
            ErrorKind::Driver(e) => Some(e),
            _ => None,
        }
    }

    /// The driver's error (tokio-postgres, mysql_async) of a connect or a
    /// cancel, also through the pool's `AcquireError::Connect`: downcast it
    /// for the server's report (`tokio_postgres::Error::code`,
    /// `mysql_async::Error::Server`).
    pub fn as_driver(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self.0.kind() {
            ErrorKind::Other(Kind::Driver(e)) => Some(&**e),
            ErrorKind::Acquire(e) => match &**e {
                AcquireError::Connect(e) => e.as_driver(),
                _ => None,
            },
            _ => None,
        }
    }

    /// The SQLSTATE of a refused connect (`28P01`, `3D000`; MySQL's
    /// `28000`), if the server sent one.
    pub fn sqlstate(&self) -> Option<String> {
        let driver = self.as_driver()?;
        #[cfg(feature = "postgres")]
        if let Some(e) = driver.downcast_ref::<tokio_postgres::Error>() {
            return e.code().map(|c| c.code().to_owned());
        }
        #[cfg(feature = "mysql")]
        if let Some(mysql_async::Error::Server(e)) = driver.downcast_ref::<mysql_async::Error>() {
            return Some(e.state.clone());
        }
        let _ = driver;
        None
    }

    /// Whether something gave up waiting: the client on a statement the
    /// server did not answer by the request's deadline plus the grace, a
    /// cancel past its bound, or the pool on a connection or a connect. A
    /// statement the *server* stopped at its propagated bound is a
    /// database error instead.
    pub fn is_timeout(&self) -> bool {
        match self.0.kind() {
            ErrorKind::Other(Kind::TimedOut) => true,
            ErrorKind::Driver(e) => is_no_answer(e),
            _ => self.0.acquire_timed_out(),
        }
    }

    /// Whether the connection is gone or unusable: a connect that failed, a
    /// closed connection, a broken transaction manager, a server that did
    /// not answer.
    pub fn is_connection_error(&self) -> bool {
        match self.0.kind() {
            ErrorKind::Driver(e) => is_connection_error(e),
            ErrorKind::Other(Kind::Driver(_)) => {
                matches!(
                    self.0.own_operation(),
                    Operation::Connect | Operation::Cancel
                )
            }
            ErrorKind::Other(Kind::TimedOut) => true,
            ErrorKind::Acquire(e) => acquire_is_connection_error(e, |_| false),
            ErrorKind::Other(Kind::Config(_) | Kind::SettingsUnsupported) | ErrorKind::Hook(_) => {
                false
            }
        }
    }

    /// Whether the condition is transient, so that trying again (on another
    /// connection, later) may succeed: a lost or timed-out connection, a
    /// serialization failure. Not: bad credentials or options, statement
    /// errors, the pool's own rejections.
    pub fn is_retryable(&self) -> bool {
        match self.0.kind() {
            ErrorKind::Driver(e) => {
                is_connection_error(e)
                    || matches!(
                        e,
                        diesel::result::Error::DatabaseError(
                            DatabaseErrorKind::SerializationFailure,
                            _
                        )
                    )
            }
            ErrorKind::Other(Kind::Driver(_)) => {
                self.0.own_operation() == Operation::Connect
                    && !matches!(self.sqlstate().as_deref(), Some(s) if s.starts_with("28") || s == "3D000")
            }
            ErrorKind::Other(Kind::TimedOut) => true,
            ErrorKind::Acquire(e) => match &**e {
                AcquireError::Connect(e) => e.is_retryable(),
                AcquireError::ConnectTimeout => true,
                _ => false,
            },
            ErrorKind::Other(Kind::Config(_) | Kind::SettingsUnsupported) | ErrorKind::Hook(_) => {
                false
            }
        }
    }
}

stormpool::adapter_error_impls!(Error, diesel::result::Error, Kind, Error::diesel);

impl Failure<Error> for Kind {
    const DRIVER_FIELD: &'static str = "diesel";

    fn fmt_driver(
        parts: &ErrorParts<Error>,
        e: &diesel::result::Error,
        f: &mut fmt::Formatter<'_>,
    ) -> fmt::Result {
        write!(f, "{}: {}", parts.describe(), root_cause(e))
    }

    fn fmt(&self, parts: &ErrorParts<Error>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let describe = parts.describe();
        match self {
            Kind::Driver(e) => {
                parts.fmt_what(f)?;
                write!(f, ": {}", root_cause(&**e))
            }
            Kind::Config(problem) => write!(f, "{describe}: {problem}"),
            Kind::SettingsUnsupported => write!(
                f,
                "{describe}: the diesel-async adapter does not apply settings; use a connect hook"
            ),
            Kind::TimedOut => write!(f, "{describe}: timed out"),
        }
    }

    fn debug(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        match self {
            Kind::Driver(e) => d.field("driver", e),
            Kind::Config(problem) => d.field("config", problem),
            Kind::SettingsUnsupported => d.field("settings_unsupported", &true),
            Kind::TimedOut => d.field("timed_out", &true),
        };
    }

    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Kind::Driver(e) => Some(&**e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_giving_up_is_a_timeout_and_a_connection_error() {
        let late = Error::from(no_answer(std::time::Duration::from_millis(25)));
        assert!(late.is_timeout() && late.is_connection_error() && late.is_retryable());
        assert!(late.to_string().contains(NO_ANSWER), "{late}");
        let missing = Error::from(diesel::result::Error::NotFound);
        assert!(!missing.is_timeout() && !missing.is_retryable());
        let shed: Error = AcquireError::Shed {
            retry_after: std::time::Duration::from_millis(100),
        }
        .into();
        assert!(!shed.is_retryable() && shed.operation() == Operation::Acquire);
    }
}
