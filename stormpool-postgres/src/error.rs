//! The manager's error and the error classifier.

use std::fmt;

use stormpool::AcquireError;
use tokio_postgres::error::{DbError, SqlState};

/// Which manager operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Opening a connection.
    Connect,
    /// The checkout probe (an empty query).
    Check,
    /// Applying session settings.
    Apply,
    /// Resetting the session.
    Reset,
    /// Sending a cancel request.
    Cancel,
    /// Reading the connection configuration (a URL or `key=value` string).
    Config,
}

impl Operation {
    fn describe(self) -> &'static str {
        match self {
            Operation::Connect => "could not connect to PostgreSQL",
            Operation::Check => "the connection check failed",
            Operation::Apply => "could not apply the session settings",
            Operation::Reset => "could not reset the session",
            Operation::Cancel => "could not send the cancel request",
            Operation::Config => "invalid PostgreSQL connection configuration",
        }
    }
}

/// An error of a [`PgManager`](crate::PgManager) operation.
///
/// `Display` says which operation failed; [`source`](std::error::Error::source)
/// is the driver's error, whose own source is the server's message
/// ([`db_error`](Error::db_error)) or the I/O error. Neither ever contains the
/// password: the driver does not echo its configuration.
#[derive(Debug)]
pub struct Error {
    operation: Operation,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Driver(tokio_postgres::Error),
    /// A socket of the manager's own (a cancel request's).
    Io(std::io::Error),
    InvalidSettingName(String),
}

impl Error {
    pub(crate) fn driver(operation: Operation) -> impl FnOnce(tokio_postgres::Error) -> Error {
        move |e| Error {
            operation,
            kind: Kind::Driver(e),
        }
    }

    pub(crate) fn io(operation: Operation) -> impl FnOnce(std::io::Error) -> Error {
        move |e| Error {
            operation,
            kind: Kind::Io(e),
        }
    }

    pub(crate) fn invalid_setting_name(name: &str) -> Error {
        Error {
            operation: Operation::Apply,
            kind: Kind::InvalidSettingName(name.to_owned()),
        }
    }

    /// The operation that failed.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// The driver's error, unless the failure was found before any I/O (an
    /// invalid setting name) or on a socket of the manager's own (a cancel
    /// request's, whose error is the [`source`](std::error::Error::source)).
    pub fn as_driver(&self) -> Option<&tokio_postgres::Error> {
        match &self.kind {
            Kind::Driver(e) => Some(e),
            Kind::Io(_) | Kind::InvalidSettingName(_) => None,
        }
    }

    /// The server's error report (severity, SQLSTATE, message, detail), if
    /// the server sent one.
    pub fn db_error(&self) -> Option<&DbError> {
        self.as_driver()
            .and_then(tokio_postgres::Error::as_db_error)
    }

    /// The server's message, if it sent one (`password authentication
    /// failed for user "app"`).
    pub fn server_message(&self) -> Option<&str> {
        self.db_error().map(DbError::message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Driver(_) | Kind::Io(_) => f.write_str(self.operation.describe()),
            Kind::InvalidSettingName(name) => write!(
                f,
                "invalid session setting name `{name}`: expected letters, digits, `_` and `.`"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Driver(e) => Some(e),
            Kind::Io(e) => Some(e),
            Kind::InvalidSettingName(_) => None,
        }
    }
}

/// Classifies a failure.
///
/// [`Classify`] answers the questions a caller asks of a failure: is the
/// connection gone ([`is_connection_error`](Classify::is_connection_error)),
/// may the same work succeed if tried again ([`is_retryable`](Classify::is_retryable)),
/// and which SQLSTATE did the server send ([`sqlstate`](Classify::sqlstate)).
/// It is implemented for this crate's [`Error`], for the driver's
/// [`tokio_postgres::Error`] (what queries return) and for
/// [`AcquireError<Error>`](stormpool::AcquireError) (what the pool returns).
///
/// # What counts as retryable
///
/// Transient conditions: a lost or refused connection, a serialization
/// failure (`40001`), a deadlock (`40P01`), a lock not available (`55P03`),
/// too many connections (`53300`), a server starting up or shutting down
/// (`57P01`, `57P02`, `57P03`). Not retryable: authentication and
/// authorization failures (class `28`), an unknown database (`3D000`),
/// statement errors, a cancelled statement (`57014`, which is what
/// [`cancel`](stormpool::Manager::cancel) and `statement_timeout` produce),
/// and the pool's own rejections (a request the pool timed out or shed
/// should not be sent straight back to it).
///
/// Whether re-running is *safe* is the caller's call: a statement whose
/// connection was lost in flight may have committed.
pub trait Classify {
    /// The SQLSTATE the server reported, if any.
    fn sqlstate(&self) -> Option<&SqlState>;

    /// Whether the connection is gone or unusable (closed, reset, timed
    /// out, protocol error, a `FATAL` report, class `08`): the work may
    /// succeed on another connection, and this one will not serve again.
    fn is_connection_error(&self) -> bool;

    /// Whether the condition is transient, so that trying again (on another
    /// connection, later) may succeed.
    fn is_retryable(&self) -> bool;
}

/// SQLSTATEs of transient conditions that leave the connection usable.
const TRANSIENT: [SqlState; 4] = [
    SqlState::T_R_SERIALIZATION_FAILURE,
    SqlState::T_R_DEADLOCK_DETECTED,
    SqlState::LOCK_NOT_AVAILABLE,
    SqlState::TOO_MANY_CONNECTIONS,
];

/// SQLSTATEs that mean the server ended (or would not start) the session
/// for a reason that goes away: a restart, a failover.
const SERVER_GOING_AWAY: [SqlState; 3] = [
    SqlState::ADMIN_SHUTDOWN,
    SqlState::CRASH_SHUTDOWN,
    SqlState::CANNOT_CONNECT_NOW,
];

/// Whether the code's condition lasts until someone changes something.
fn is_permanent(code: &SqlState) -> bool {
    let code = code.code();
    // 28: invalid authorization; 3D000: unknown database.
    code.starts_with("28") || code == "3D000"
}

impl Classify for tokio_postgres::Error {
    fn sqlstate(&self) -> Option<&SqlState> {
        self.code()
    }

    fn is_connection_error(&self) -> bool {
        if self.is_closed() {
            return true;
        }
        if let Some(db) = self.as_db_error() {
            return matches!(db.severity(), "FATAL" | "PANIC")
                || db.code().code().starts_with("08")
                || SERVER_GOING_AWAY.contains(db.code());
        }
        // The driver exposes its error kind only through `Display`, which
        // prints just the kind (the cause is the source). These kinds leave
        // the connection unusable.
        matches!(
            self.to_string().as_str(),
            "error communicating with the server"
                | "error connecting to server"
                | "timeout waiting for server"
                | "error performing TLS handshake"
                | "unexpected message from server"
                | "error parsing response from server"
                | "authentication error"
        )
    }

    fn is_retryable(&self) -> bool {
        match self.code() {
            Some(code) if is_permanent(code) => false,
            Some(code) if TRANSIENT.contains(code) => true,
            _ => self.is_connection_error() && self.to_string() != "authentication error",
        }
    }
}

impl Classify for Error {
    fn sqlstate(&self) -> Option<&SqlState> {
        self.as_driver().and_then(Classify::sqlstate)
    }

    fn is_connection_error(&self) -> bool {
        match self.as_driver() {
            // A connect that failed never made a connection; any other
            // failing operation left its connection unusable only if the
            // driver says so.
            Some(e) => self.operation == Operation::Connect || e.is_connection_error(),
            None => false,
        }
    }

    fn is_retryable(&self) -> bool {
        match self.operation {
            Operation::Config | Operation::Apply => false,
            _ => self.as_driver().is_some_and(|e| {
                e.is_retryable()
                    || (self.operation == Operation::Connect && e.code().is_none() && {
                        // Refused, unreachable, reset: the server may come back.
                        e.to_string() != "authentication error"
                    })
            }),
        }
    }
}

impl Classify for AcquireError<Error> {
    fn sqlstate(&self) -> Option<&SqlState> {
        match self {
            AcquireError::Connect(e) => e.sqlstate(),
            AcquireError::Apply(e) => e.sqlstate(),
            _ => None,
        }
    }

    fn is_connection_error(&self) -> bool {
        match self {
            AcquireError::Connect(_) | AcquireError::ConnectTimeout => true,
            AcquireError::Apply(e) => e.is_connection_error(),
            _ => false,
        }
    }

    fn is_retryable(&self) -> bool {
        match self {
            AcquireError::Connect(e) => e.is_retryable(),
            AcquireError::ConnectTimeout => true,
            AcquireError::Apply(e) => e.is_retryable(),
            // The pool's own rejections: retrying straight away adds load
            // to a pool that just said it has too much.
            _ => false,
        }
    }
}
