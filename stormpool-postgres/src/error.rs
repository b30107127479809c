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
//! # What `Display` says
//!
//! What failed and, when it helps, where and the underlying cause, in one
//! line a log can carry: `could not connect to 127.0.0.1:5432: Connection
//! refused (os error 111)`, `statement failed: ERROR: relation "nope" does
//! not exist`. The driver's error stays the
//! [`source`](std::error::Error::source) for code that walks the chain.
//! Never the password: the driver does not echo its configuration, and
//! neither does this crate.

use std::fmt;
use std::time::Duration;

use stormpool::statements::{
    acquire_is_connection_error, acquire_is_retryable, root_cause, ErrorKind, ErrorParts, Failure,
};
use stormpool::AcquireError;
use tokio_postgres::error::{DbError, SqlState};

pub use stormpool::statements::Operation;

/// An error of this crate: a manager operation, an acquire, or a statement.
///
/// Acquire errors (`AcquireError<Error>`) and the driver's
/// [`tokio_postgres::Error`] convert into it, so `?` works on both in one
/// handler. Classify it with [`Classify`]; [`code`](Error::code) and
/// [`db_error`](Error::db_error) give the server's report,
/// [`acquire_error`](Error::acquire_error) the pool's rejection.
///
/// `Display` says what failed and its underlying cause (see the module's
/// docs); it never contains the password.
pub struct Error(ErrorParts<Error>);

/// This adapter's own failures (the parts of an [`Error`] the core's do
/// not cover).
#[derive(Debug)]
pub enum Kind {
    /// A socket of the manager's own (a connect's, a cancel request's).
    Io(std::io::Error),
    /// A session setting name that cannot be spliced into SQL.
    InvalidSettingName(String),
    /// The client gave up: the server did not answer by the request's
    /// deadline plus this grace.
    TimedOut(Duration),
    /// Behind a transaction pooler, what cannot run there.
    Pooler(PoolerMisuse),
    /// A statement given the wrong number of parameters.
    ParameterCount {
        /// The parameters the statement takes.
        expected: usize,
        /// The parameters it was given.
        got: usize,
    },
}

/// What a connection behind a transaction pooler refuses.
#[derive(Clone, Copy, Debug)]
pub enum PoolerMisuse {
    /// A prepared statement the connection did not describe.
    UnknownStatement,
    /// `COPY` outside a transaction.
    CopyOutsideTransaction,
}

impl Error {
    pub(crate) fn driver(operation: Operation) -> impl FnOnce(tokio_postgres::Error) -> Error {
        move |e| Error(ErrorParts::new(operation, ErrorKind::Driver(e)))
    }

    pub(crate) fn io(operation: Operation) -> impl FnOnce(std::io::Error) -> Error {
        move |e| Error::other(operation, Kind::Io(e))
    }

    pub(crate) fn invalid_setting_name(name: &str) -> Error {
        Error::other(Operation::Apply, Kind::InvalidSettingName(name.to_owned()))
    }

    pub(crate) fn timed_out(operation: Operation, grace: Duration) -> Error {
        Error::other(operation, Kind::TimedOut(grace))
    }

    pub(crate) fn unknown_statement() -> Error {
        Error::other(
            Operation::Statement,
            Kind::Pooler(PoolerMisuse::UnknownStatement),
        )
    }

    pub(crate) fn copy_outside_transaction() -> Error {
        Error::other(
            Operation::Statement,
            Kind::Pooler(PoolerMisuse::CopyOutsideTransaction),
        )
    }

    pub(crate) fn parameter_count(expected: usize, got: usize) -> Error {
        Error::other(Operation::Statement, Kind::ParameterCount { expected, got })
    }

    /// The driver's error, if the failure came from it.
    pub fn as_driver(&self) -> Option<&tokio_postgres::Error> {
        self.0.driver()
    }

    /// The server's error report (severity, SQLSTATE, message, detail), if
    /// the server sent one.
    pub fn db_error(&self) -> Option<&DbError> {
        self.as_driver()
            .and_then(tokio_postgres::Error::as_db_error)
    }

    /// The SQLSTATE the server reported, if any (as
    /// [`tokio_postgres::Error::code`]).
    pub fn code(&self) -> Option<&SqlState> {
        self.as_driver().and_then(tokio_postgres::Error::code)
    }

    /// The server's message, if it sent one (`password authentication
    /// failed for user "app"`).
    pub fn server_message(&self) -> Option<&str> {
        self.db_error().map(DbError::message)
    }

    /// Whether something gave up waiting: the client on a statement the
    /// server did not answer by the request's deadline plus the grace
    /// (a frozen or unreachable server), or the pool on a connection or a
    /// connect. A statement the *server* stopped at its propagated bound is
    /// a SQL error instead (SQLSTATE `57014`, see [`code`](Error::code)).
    pub fn is_timeout(&self) -> bool {
        match self.0.kind() {
            ErrorKind::Other(Kind::TimedOut(_)) => true,
            _ => self.0.acquire_timed_out(),
        }
    }

    /// Whether the statement cannot run behind a transaction pooler as it
    /// was sent ([`Pooler::Transaction`](crate::Pooler::Transaction)): a
    /// prepared statement that did not come from the connection's
    /// [`prepare`](crate::PgConnection::prepare) or
    /// [`prepare_cached`](crate::PgConnection::prepare_cached), or a `COPY`
    /// outside a transaction. Nothing was sent to the server.
    pub fn is_pooler_misuse(&self) -> bool {
        matches!(self.0.kind(), ErrorKind::Other(Kind::Pooler(_)))
    }
}

stormpool::adapter_error_impls!(Error, tokio_postgres::Error, Kind, Error::driver);

impl Failure<Error> for Kind {
    fn describe(operation: Operation) -> &'static str {
        match operation {
            Operation::Connect => "could not connect to PostgreSQL",
            Operation::Cancel => "could not send the cancel request",
            Operation::Config => "invalid PostgreSQL connection configuration",
            operation => operation.describe(),
        }
    }

    fn fmt_driver(
        parts: &ErrorParts<Error>,
        e: &tokio_postgres::Error,
        f: &mut fmt::Formatter<'_>,
    ) -> fmt::Result {
        parts.fmt_what(f)?;
        // A configuration error's cause may quote the string it came from:
        // keep it to the chain.
        if parts.own_operation() != Operation::Config {
            write!(f, ": {}", root_cause(e))?;
        }
        Ok(())
    }

    fn fmt(&self, parts: &ErrorParts<Error>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let describe = parts.describe();
        match self {
            Kind::Io(e) => {
                parts.fmt_what(f)?;
                write!(f, ": {e}")
            }
            Kind::InvalidSettingName(name) => write!(
                f,
                "invalid session setting name `{name}`: expected letters, digits, `_` and `.`"
            ),
            Kind::TimedOut(grace) => write!(
                f,
                "{describe}: the server did not answer by the request's deadline \
                 (plus a grace of {grace:?})"
            ),
            Kind::Pooler(PoolerMisuse::UnknownStatement) => write!(
                f,
                "{describe}: behind a transaction pooler a prepared statement runs by its \
                 text, and this one was not prepared by the connection's prepare or \
                 prepare_cached"
            ),
            Kind::Pooler(PoolerMisuse::CopyOutsideTransaction) => write!(
                f,
                "{describe}: behind a transaction pooler COPY runs inside a transaction, \
                 which keeps its data on one server session"
            ),
            Kind::ParameterCount { expected, got } => write!(
                f,
                "{describe}: expected {expected} parameters but got {got}"
            ),
        }
    }

    fn debug(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        match self {
            Kind::Io(e) => d.field("io", e),
            Kind::InvalidSettingName(name) => d.field("invalid_setting_name", name),
            Kind::TimedOut(grace) => d.field("timed_out_after_grace", grace),
            Kind::Pooler(misuse) => d.field("pooler", misuse),
            Kind::ParameterCount { expected, got } => {
                d.field("expected_parameters", expected);
                d.field("got_parameters", got)
            }
        };
    }

    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Kind::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Classifies a failure.
///
/// [`Classify`] answers the questions a caller asks of a failure: is the
/// connection gone ([`is_connection_error`](Classify::is_connection_error)),
/// may the same work succeed if tried again ([`is_retryable`](Classify::is_retryable)),
/// and which SQLSTATE did the server send ([`sqlstate`](Classify::sqlstate)).
/// It is implemented for this crate's [`Error`] (what the pooled
/// connection's statements return, and what an acquire error converts
/// into), for the driver's [`tokio_postgres::Error`] (what the raw client
/// returns) and for [`AcquireError<Error>`](stormpool::AcquireError) (what
/// the pool returns).
///
/// # What counts as retryable
///
/// Transient conditions: a lost or refused connection, a server that did
/// not answer by the deadline, a serialization failure (`40001`), a
/// deadlock (`40P01`), a lock not available (`55P03`), too many connections
/// (`53300`), a server starting up or shutting down (`57P01`, `57P02`,
/// `57P03`). Not retryable: authentication and authorization failures
/// (class `28`), an unknown database (`3D000`), statement errors, a
/// cancelled statement (`57014`, which is what
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
        self.code()
    }

    fn is_connection_error(&self) -> bool {
        let operation = self.0.own_operation();
        match self.0.kind() {
            // A connect that failed never made a connection; any other
            // failing operation left its connection unusable only if the
            // driver says so.
            ErrorKind::Driver(e) => operation == Operation::Connect || e.is_connection_error(),
            ErrorKind::Other(Kind::Io(_) | Kind::TimedOut(_)) => true,
            ErrorKind::Acquire(e) => e.is_connection_error(),
            ErrorKind::Hook(_) => self.as_driver().is_some_and(Classify::is_connection_error),
            ErrorKind::Other(
                Kind::InvalidSettingName(_) | Kind::Pooler(_) | Kind::ParameterCount { .. },
            ) => false,
        }
    }

    fn is_retryable(&self) -> bool {
        let operation = self.0.own_operation();
        match self.0.kind() {
            ErrorKind::Acquire(e) => e.is_retryable(),
            ErrorKind::Other(Kind::TimedOut(_)) => true,
            ErrorKind::Other(Kind::Io(_)) => operation != Operation::Config,
            ErrorKind::Other(
                Kind::InvalidSettingName(_) | Kind::Pooler(_) | Kind::ParameterCount { .. },
            ) => false,
            ErrorKind::Hook(_) => self.as_driver().is_some_and(Classify::is_retryable),
            ErrorKind::Driver(e) => match operation {
                Operation::Config | Operation::Apply => false,
                _ => {
                    e.is_retryable()
                        || (operation == Operation::Connect && e.code().is_none() && {
                            // Refused, unreachable, reset: the server may come back.
                            e.to_string() != "authentication error"
                        })
                }
            },
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
        acquire_is_connection_error(self, Classify::is_connection_error)
    }

    fn is_retryable(&self) -> bool {
        acquire_is_retryable(self, Classify::is_retryable)
    }
}
