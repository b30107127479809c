//! The adapter's one error type.
//!
//! A request handler acquires a connection (the pool's
//! [`AcquireError`](stormpool::AcquireError)) and runs statements on it
//! (sqlx's [`sqlx::Error`]): both convert into [`Error`], so one `?` serves
//! both, and its classifiers answer the same questions of each.
//!
//! `Display` says what failed and, when it helps, where and the underlying
//! cause, in one line: `could not connect to 127.0.0.1:5432: Connection
//! refused (os error 111)`. Never the password: connect options are never
//! printed, and the server's messages do not carry it.

use std::borrow::Cow;
use std::fmt;
use std::io;

use sqlx::error::DatabaseError;
use stormpool::statements::{
    acquire_is_connection_error, acquire_is_retryable, ErrorKind, ErrorParts, Failure,
};

pub use stormpool::statements::Operation;

/// An error of this crate: a manager operation, an acquire, or a statement.
///
/// Acquire errors (`AcquireError<Error>`) and [`sqlx::Error`] convert into
/// it, so `?` works on both in one handler. [`as_sqlx`](Error::as_sqlx)
/// gives sqlx's error, [`database_error`](Error::database_error) the
/// server's report, [`acquire_error`](Error::acquire_error) the pool's
/// rejection.
pub struct Error(ErrorParts<Error>);

/// This adapter's own failures (the parts of an [`Error`] the core's do
/// not cover).
#[derive(Debug)]
pub enum Kind {
    // Only MySQL names variables in SQL text; PostgreSQL binds them.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    InvalidSettingName(String),
    /// A manager operation (a cancel) took longer than its bound.
    TimedOut,
}

impl Error {
    pub(crate) fn driver(operation: Operation) -> impl FnOnce(sqlx::Error) -> Error {
        move |e| Error(ErrorParts::new(operation, ErrorKind::Driver(e)))
    }

    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) fn invalid_setting_name(name: &str) -> Error {
        Error::other(Operation::Apply, Kind::InvalidSettingName(name.to_owned()))
    }

    pub(crate) fn timed_out(operation: Operation) -> Error {
        Error::other(operation, Kind::TimedOut)
    }

    /// sqlx's error, if the failure came from it.
    pub fn as_sqlx(&self) -> Option<&sqlx::Error> {
        self.0.driver()
    }

    /// The server's error report, if it sent one; downcast it to sqlx's
    /// `PgDatabaseError` or `MySqlDatabaseError` for the details.
    pub fn database_error(&self) -> Option<&(dyn DatabaseError + 'static)> {
        match self.as_sqlx() {
            Some(sqlx::Error::Database(e)) => Some(&**e),
            _ => None,
        }
    }

    /// The SQLSTATE the server reported, if any (`28P01`, `40001`).
    pub fn sqlstate(&self) -> Option<Cow<'_, str>> {
        self.database_error().and_then(|e| e.code())
    }

    /// Whether something gave up waiting: the client on a statement the
    /// server did not answer by the request's deadline plus the grace (a
    /// frozen or unreachable server), a manager operation past its bound,
    /// or the pool on a connection or a connect. A statement the *server*
    /// stopped at its propagated bound is a database error instead
    /// (SQLSTATE `57014` in PostgreSQL, error 1969 in MariaDB).
    pub fn is_timeout(&self) -> bool {
        match self.0.kind() {
            ErrorKind::Other(Kind::TimedOut) => true,
            ErrorKind::Driver(sqlx::Error::Io(e)) => e.kind() == io::ErrorKind::TimedOut,
            _ => self.0.acquire_timed_out(),
        }
    }

    /// Whether the connection is gone or unusable (I/O, TLS or protocol
    /// error, a killed session, a connect that failed): the work may succeed
    /// on another connection, and this one will not serve again.
    pub fn is_connection_error(&self) -> bool {
        match self.0.kind() {
            ErrorKind::Driver(e) => {
                matches!(
                    self.0.own_operation(),
                    Operation::Connect | Operation::Cancel
                ) || is_connection_error(e)
            }
            ErrorKind::Other(Kind::TimedOut) => true,
            ErrorKind::Acquire(e) => acquire_is_connection_error(e, Error::is_connection_error),
            ErrorKind::Hook(_) => self.as_sqlx().is_some_and(is_connection_error),
            ErrorKind::Other(Kind::InvalidSettingName(_)) => false,
        }
    }

    /// Whether the condition is transient, so that trying again (on another
    /// connection, later) may succeed: a lost, refused or timed-out
    /// connection, a serialization failure or deadlock (SQLSTATE `40001`,
    /// `40P01`), a server shutting down or out of connections. Not: bad
    /// credentials, statement errors, a statement stopped by a cancel or
    /// its bound, the pool's own rejections (retrying straight away adds
    /// load to a pool that just said it has too much).
    ///
    /// Whether re-running is *safe* is the caller's call: a statement whose
    /// connection was lost in flight may have committed.
    pub fn is_retryable(&self) -> bool {
        match self.0.kind() {
            ErrorKind::Driver(e) => match self.0.own_operation() {
                Operation::Config | Operation::Apply => false,
                _ => is_connection_error(e) || is_transient(e),
            },
            ErrorKind::Other(Kind::TimedOut) => true,
            ErrorKind::Acquire(e) => acquire_is_retryable(e, Error::is_retryable),
            ErrorKind::Hook(_) => self
                .as_sqlx()
                .is_some_and(|e| is_connection_error(e) || is_transient(e)),
            ErrorKind::Other(Kind::InvalidSettingName(_)) => false,
        }
    }
}

/// Whether sqlx's error leaves the connection unusable.
pub(crate) fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(e) => {
            // Admin shutdown, crash shutdown, cannot connect now (PostgreSQL);
            // the MySQL states of a killed or shut-down session.
            matches!(
                e.code().as_deref(),
                Some("57P01" | "57P02" | "57P03" | "08S01" | "70100")
            ) && !is_interrupted_statement(&**e)
        }
        _ => false,
    }
}

/// MariaDB reports a killed *statement* (`KILL QUERY`, error 1317) with the
/// SQLSTATE of a killed session (`70100`): only the session's end counts.
fn is_interrupted_statement(e: &dyn DatabaseError) -> bool {
    e.message().contains("interrupted")
}

fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(e) => matches!(
            e.code().as_deref(),
            // Serialization failure, deadlock, too many connections.
            Some("40001" | "40P01" | "53300" | "08004")
        ),
        _ => false,
    }
}

stormpool::adapter_error_impls!(Error, sqlx::Error, Kind, Error::driver);

impl Failure<Error> for Kind {
    fn fmt(&self, parts: &ErrorParts<Error>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::InvalidSettingName(name) => write!(
                f,
                "invalid session variable name `{name}`: expected letters, digits, `_` and `.`"
            ),
            Kind::TimedOut => write!(f, "{}: timed out", parts.describe()),
        }
    }

    fn debug(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        match self {
            Kind::InvalidSettingName(name) => d.field("invalid_setting_name", name),
            Kind::TimedOut => d.field("timed_out", &true),
        };
    }
}

/// The error a tracked statement fails with when the server did not answer
/// by the request's deadline plus the grace: an I/O error of kind
/// `TimedOut`, since sqlx's `Executor` can only return sqlx's errors.
pub(crate) fn no_answer(grace: std::time::Duration) -> sqlx::Error {
    sqlx::Error::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("the server did not answer by the request's deadline (plus a grace of {grace:?})"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_io_timeouts_and_the_pools_rejections() {
        let refused = Error::driver(Operation::Connect)(sqlx::Error::Io(io::Error::from(
            io::ErrorKind::ConnectionRefused,
        )))
        .at("127.0.0.1:1".to_owned());
        assert!(refused.is_connection_error() && refused.is_retryable());
        assert!(refused
            .to_string()
            .starts_with("could not connect to 127.0.0.1:1: "));
        let late = Error::from(no_answer(std::time::Duration::from_millis(25)));
        assert!(late.is_timeout() && late.is_connection_error());
        let shed: Error = stormpool::AcquireError::Shed {
            retry_after: std::time::Duration::from_millis(100),
        }
        .into();
        assert!(!shed.is_retryable() && !shed.is_connection_error());
        assert_eq!(shed.operation(), Operation::Acquire);
        let missing = Error::from(sqlx::Error::RowNotFound);
        assert!(!missing.is_retryable() && !missing.is_connection_error());
    }
}
