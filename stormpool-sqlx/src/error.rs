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
use stormpool::statements::root_cause;
use stormpool::AcquireError;

/// What failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Opening a connection (and reading its session's id).
    Connect,
    /// The manager's `on_connect` hook, run on a new connection.
    OnConnect,
    /// The checkout probe.
    Check,
    /// Applying session settings.
    Apply,
    /// Resetting the session.
    Reset,
    /// Bringing a returned session back to a clean state (a rollback).
    Recycle,
    /// Stopping a statement from a side connection.
    Cancel,
    /// Reading the connect options (a URL).
    Config,
    /// Getting a connection from the pool.
    Acquire,
    /// A statement, sent through a pooled connection or a transaction.
    Statement,
}

impl Operation {
    fn describe(self) -> &'static str {
        match self {
            Operation::Connect => "could not connect",
            Operation::OnConnect => "the on_connect hook failed",
            Operation::Check => "the connection check failed",
            Operation::Apply => "could not apply the session settings",
            Operation::Reset => "could not reset the session",
            Operation::Recycle => "could not clean up the returned session",
            Operation::Cancel => "could not cancel the statement",
            Operation::Config => "invalid connection options",
            Operation::Acquire => "could not get a connection",
            Operation::Statement => "statement failed",
        }
    }
}

/// An error of this crate: a manager operation, an acquire, or a statement.
///
/// Acquire errors (`AcquireError<Error>`) and [`sqlx::Error`] convert into
/// it, so `?` works on both in one handler. [`as_sqlx`](Error::as_sqlx)
/// gives sqlx's error, [`database_error`](Error::database_error) the
/// server's report, [`acquire_error`](Error::acquire_error) the pool's
/// rejection.
pub struct Error {
    operation: Operation,
    kind: Kind,
    /// The server a connect was aimed at (`host:port`), for `Display`.
    target: Option<Box<str>>,
}

enum Kind {
    Driver(sqlx::Error),
    // Only MySQL names variables in SQL text; PostgreSQL binds them.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    InvalidSettingName(String),
    /// A manager operation (a cancel) took longer than its bound.
    TimedOut,
    Hook(Box<dyn std::error::Error + Send + Sync>),
    Acquire(Box<AcquireError<Error>>),
}

impl Error {
    pub(crate) fn driver(operation: Operation) -> impl FnOnce(sqlx::Error) -> Error {
        move |e| Error::new(operation, Kind::Driver(e))
    }

    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) fn invalid_setting_name(name: &str) -> Error {
        Error::new(Operation::Apply, Kind::InvalidSettingName(name.to_owned()))
    }

    pub(crate) fn timed_out(operation: Operation) -> Error {
        Error::new(operation, Kind::TimedOut)
    }

    pub(crate) fn hook(e: Box<dyn std::error::Error + Send + Sync>) -> Error {
        Error::new(Operation::OnConnect, Kind::Hook(e))
    }

    fn new(operation: Operation, kind: Kind) -> Error {
        Error {
            operation,
            kind,
            target: None,
        }
    }

    /// Names the server a connect was aimed at.
    pub(crate) fn at(mut self, target: String) -> Error {
        self.target = Some(target.into_boxed_str());
        self
    }

    /// What failed.
    pub fn operation(&self) -> Operation {
        match &self.kind {
            Kind::Acquire(e) => match &**e {
                AcquireError::Connect(e) => e.operation(),
                _ => self.operation,
            },
            _ => self.operation,
        }
    }

    /// sqlx's error, if the failure came from it.
    pub fn as_sqlx(&self) -> Option<&sqlx::Error> {
        match &self.kind {
            Kind::Driver(e) => Some(e),
            Kind::Acquire(e) => match &**e {
                AcquireError::Connect(e) => e.as_sqlx(),
                AcquireError::Apply(e) => e.as_sqlx(),
                _ => None,
            },
            Kind::Hook(e) => e
                .downcast_ref::<Error>()
                .and_then(Error::as_sqlx)
                .or_else(|| e.downcast_ref::<sqlx::Error>()),
            _ => None,
        }
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

    /// The pool's error, when getting a connection failed.
    pub fn acquire_error(&self) -> Option<&AcquireError<Error>> {
        match &self.kind {
            Kind::Acquire(e) => Some(e),
            _ => None,
        }
    }

    /// Whether something gave up waiting: the client on a statement the
    /// server did not answer by the request's deadline plus the grace (a
    /// frozen or unreachable server), a manager operation past its bound,
    /// or the pool on a connection or a connect. A statement the *server*
    /// stopped at its propagated bound is a database error instead
    /// (SQLSTATE `57014` in PostgreSQL, error 1969 in MariaDB).
    pub fn is_timeout(&self) -> bool {
        match &self.kind {
            Kind::TimedOut => true,
            Kind::Driver(sqlx::Error::Io(e)) => e.kind() == io::ErrorKind::TimedOut,
            Kind::Acquire(e) => matches!(**e, AcquireError::Timeout | AcquireError::ConnectTimeout),
            _ => false,
        }
    }

    /// Whether the connection is gone or unusable (I/O, TLS or protocol
    /// error, a killed session, a connect that failed): the work may succeed
    /// on another connection, and this one will not serve again.
    pub fn is_connection_error(&self) -> bool {
        match &self.kind {
            Kind::Driver(e) => {
                matches!(self.operation, Operation::Connect | Operation::Cancel)
                    || is_connection_error(e)
            }
            Kind::TimedOut => true,
            Kind::Acquire(e) => match &**e {
                AcquireError::Connect(_) | AcquireError::ConnectTimeout => true,
                AcquireError::Apply(e) => e.is_connection_error(),
                _ => false,
            },
            Kind::Hook(_) => self.as_sqlx().is_some_and(is_connection_error),
            Kind::InvalidSettingName(_) => false,
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
        match &self.kind {
            Kind::Driver(e) => match self.operation {
                Operation::Config | Operation::Apply => false,
                _ => is_connection_error(e) || is_transient(e),
            },
            Kind::TimedOut => true,
            Kind::Acquire(e) => match &**e {
                AcquireError::Connect(e) => e.is_retryable(),
                AcquireError::Apply(e) => e.is_retryable(),
                AcquireError::ConnectTimeout => true,
                _ => false,
            },
            Kind::Hook(_) => self
                .as_sqlx()
                .is_some_and(|e| is_connection_error(e) || is_transient(e)),
            Kind::InvalidSettingName(_) => false,
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

impl From<AcquireError<Error>> for Error {
    fn from(e: AcquireError<Error>) -> Error {
        Error::new(Operation::Acquire, Kind::Acquire(Box::new(e)))
    }
}

impl From<sqlx::Error> for Error {
    /// A statement's error.
    fn from(e: sqlx::Error) -> Error {
        Error::driver(Operation::Statement)(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let describe = self.operation.describe();
        match &self.kind {
            Kind::Acquire(e) => match &**e {
                AcquireError::Connect(e) => fmt::Display::fmt(e, f),
                AcquireError::Apply(e) => fmt::Display::fmt(e, f),
                e => write!(f, "{describe}: {e}"),
            },
            Kind::Driver(e) => {
                match (self.operation, &self.target) {
                    (Operation::Connect, Some(target)) => {
                        write!(f, "could not connect to {target}")?
                    }
                    _ => f.write_str(describe)?,
                }
                write!(f, ": {}", root_cause(e))
            }
            Kind::InvalidSettingName(name) => write!(
                f,
                "invalid session variable name `{name}`: expected letters, digits, `_` and `.`"
            ),
            Kind::TimedOut => write!(f, "{describe}: timed out"),
            Kind::Hook(e) => write!(f, "{describe}: {}", root_cause(&**e)),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("operation", &self.operation);
        match &self.kind {
            Kind::Driver(e) => d.field("driver", e),
            Kind::InvalidSettingName(name) => d.field("invalid_setting_name", name),
            Kind::TimedOut => d.field("timed_out", &true),
            Kind::Hook(e) => d.field("hook", e),
            Kind::Acquire(e) => d.field("acquire", e),
        };
        if let Some(target) = &self.target {
            d.field("target", target);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Driver(e) => Some(e),
            Kind::Hook(e) => Some(&**e),
            Kind::Acquire(e) => match &**e {
                AcquireError::Connect(e) => e.source(),
                AcquireError::Apply(e) => e.source(),
                _ => None,
            },
            _ => None,
        }
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
        let shed: Error = AcquireError::Shed {
            retry_after: std::time::Duration::from_millis(100),
        }
        .into();
        assert!(!shed.is_retryable() && !shed.is_connection_error());
        assert_eq!(shed.operation(), Operation::Acquire);
        let missing = Error::from(sqlx::Error::RowNotFound);
        assert!(!missing.is_retryable() && !missing.is_connection_error());
    }
}
