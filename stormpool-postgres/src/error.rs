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

use stormpool::statements::root_cause;
use stormpool::AcquireError;
use tokio_postgres::error::{DbError, SqlState};

/// What failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Opening a connection.
    Connect,
    /// The manager's `on_connect` hook, run on a new connection.
    OnConnect,
    /// The checkout probe (an empty query).
    Check,
    /// Applying session settings.
    Apply,
    /// Resetting the session.
    Reset,
    /// Bringing a returned session back to a clean state (a rollback).
    Recycle,
    /// Sending a cancel request.
    Cancel,
    /// Reading the connection configuration (a URL or `key=value` string).
    Config,
    /// Getting a connection from the pool.
    Acquire,
    /// A statement sent through the pooled connection or a transaction.
    Statement,
    /// Starting, committing or rolling back a transaction or a savepoint.
    Transaction,
}

impl Operation {
    fn describe(self) -> &'static str {
        match self {
            Operation::Connect => "could not connect to PostgreSQL",
            Operation::OnConnect => "the on_connect hook failed",
            Operation::Check => "the connection check failed",
            Operation::Apply => "could not apply the session settings",
            Operation::Reset => "could not reset the session",
            Operation::Recycle => "could not clean up the returned session",
            Operation::Cancel => "could not send the cancel request",
            Operation::Config => "invalid PostgreSQL connection configuration",
            Operation::Acquire => "could not get a connection",
            Operation::Statement => "statement failed",
            Operation::Transaction => "transaction control statement failed",
        }
    }
}

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
pub struct Error {
    operation: Operation,
    kind: Kind,
    /// The server a connect was aimed at (`host:port`), for `Display`.
    target: Option<Box<str>>,
}

enum Kind {
    Driver(tokio_postgres::Error),
    /// A socket of the manager's own (a connect's, a cancel request's).
    Io(std::io::Error),
    InvalidSettingName(String),
    /// The client gave up: the server did not answer by the request's
    /// deadline plus this grace.
    TimedOut(Duration),
    Hook(Box<dyn std::error::Error + Send + Sync>),
    Acquire(Box<AcquireError<Error>>),
    /// Behind a transaction pooler, what cannot run there.
    Pooler(PoolerMisuse),
    /// A statement given the wrong number of parameters.
    ParameterCount {
        expected: usize,
        got: usize,
    },
}

/// What a connection behind a transaction pooler refuses.
#[derive(Clone, Copy, Debug)]
enum PoolerMisuse {
    /// A prepared statement the connection did not describe.
    UnknownStatement,
    /// `COPY` outside a transaction.
    CopyOutsideTransaction,
}

impl Error {
    pub(crate) fn driver(operation: Operation) -> impl FnOnce(tokio_postgres::Error) -> Error {
        move |e| Error::new(operation, Kind::Driver(e))
    }

    pub(crate) fn io(operation: Operation) -> impl FnOnce(std::io::Error) -> Error {
        move |e| Error::new(operation, Kind::Io(e))
    }

    pub(crate) fn invalid_setting_name(name: &str) -> Error {
        Error::new(Operation::Apply, Kind::InvalidSettingName(name.to_owned()))
    }

    pub(crate) fn timed_out(operation: Operation, grace: Duration) -> Error {
        Error::new(operation, Kind::TimedOut(grace))
    }

    pub(crate) fn hook(e: Box<dyn std::error::Error + Send + Sync>) -> Error {
        Error::new(Operation::OnConnect, Kind::Hook(e))
    }

    pub(crate) fn unknown_statement() -> Error {
        Error::new(
            Operation::Statement,
            Kind::Pooler(PoolerMisuse::UnknownStatement),
        )
    }

    pub(crate) fn copy_outside_transaction() -> Error {
        Error::new(
            Operation::Statement,
            Kind::Pooler(PoolerMisuse::CopyOutsideTransaction),
        )
    }

    pub(crate) fn parameter_count(expected: usize, got: usize) -> Error {
        Error::new(Operation::Statement, Kind::ParameterCount { expected, got })
    }

    fn new(operation: Operation, kind: Kind) -> Error {
        Error {
            operation,
            kind,
            target: None,
        }
    }

    /// Names the server a connect was aimed at.
    pub(crate) fn at(mut self, target: Option<String>) -> Error {
        self.target = target.map(String::into_boxed_str);
        self
    }

    /// What failed.
    pub fn operation(&self) -> Operation {
        match &self.kind {
            // The acquire failed because a connect did: say so.
            Kind::Acquire(e) => match &**e {
                AcquireError::Connect(e) => e.operation(),
                _ => self.operation,
            },
            _ => self.operation,
        }
    }

    /// The driver's error, if the failure came from it.
    pub fn as_driver(&self) -> Option<&tokio_postgres::Error> {
        match &self.kind {
            Kind::Driver(e) => Some(e),
            Kind::Acquire(e) => match &**e {
                AcquireError::Connect(e) => e.as_driver(),
                AcquireError::Apply(e) => e.as_driver(),
                _ => None,
            },
            Kind::Hook(e) => e
                .downcast_ref::<Error>()
                .and_then(Error::as_driver)
                .or_else(|| e.downcast_ref::<tokio_postgres::Error>()),
            _ => None,
        }
    }

    /// The pool's error, when getting a connection failed: match it for
    /// [`Shed`](AcquireError::Shed), [`Timeout`](AcquireError::Timeout) and
    /// the other rejections.
    pub fn acquire_error(&self) -> Option<&AcquireError<Error>> {
        match &self.kind {
            Kind::Acquire(e) => Some(e),
            _ => None,
        }
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
        match &self.kind {
            Kind::TimedOut(_) => true,
            Kind::Acquire(e) => matches!(**e, AcquireError::Timeout | AcquireError::ConnectTimeout),
            _ => false,
        }
    }

    /// Whether the statement cannot run behind a transaction pooler as it
    /// was sent ([`Pooler::Transaction`](crate::Pooler::Transaction)): a
    /// prepared statement that did not come from the connection's
    /// [`prepare`](crate::PgConnection::prepare) or
    /// [`prepare_cached`](crate::PgConnection::prepare_cached), or a `COPY`
    /// outside a transaction. Nothing was sent to the server.
    pub fn is_pooler_misuse(&self) -> bool {
        matches!(self.kind, Kind::Pooler(_))
    }
}

impl From<AcquireError<Error>> for Error {
    fn from(e: AcquireError<Error>) -> Error {
        Error::new(Operation::Acquire, Kind::Acquire(Box::new(e)))
    }
}

impl From<tokio_postgres::Error> for Error {
    /// A statement's error, from a statement sent through the driver's
    /// client.
    fn from(e: tokio_postgres::Error) -> Error {
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
                // A configuration error's cause may quote the string it
                // came from: keep it to the chain.
                if self.operation != Operation::Config {
                    write!(f, ": {}", root_cause(e))?;
                }
                Ok(())
            }
            Kind::Io(e) => match (self.operation, &self.target) {
                (Operation::Connect, Some(target)) => {
                    write!(f, "could not connect to {target}: {e}")
                }
                _ => write!(f, "{describe}: {e}"),
            },
            Kind::InvalidSettingName(name) => write!(
                f,
                "invalid session setting name `{name}`: expected letters, digits, `_` and `.`"
            ),
            Kind::TimedOut(grace) => write!(
                f,
                "{describe}: the server did not answer by the request's deadline \
                 (plus a grace of {grace:?})"
            ),
            Kind::Hook(e) => write!(f, "{describe}: {}", root_cause(&**e)),
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
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("operation", &self.operation);
        match &self.kind {
            Kind::Driver(e) => d.field("driver", e),
            Kind::Io(e) => d.field("io", e),
            Kind::InvalidSettingName(name) => d.field("invalid_setting_name", name),
            Kind::TimedOut(grace) => d.field("timed_out_after_grace", grace),
            Kind::Hook(e) => d.field("hook", e),
            Kind::Acquire(e) => d.field("acquire", e),
            Kind::Pooler(misuse) => d.field("pooler", misuse),
            Kind::ParameterCount { expected, got } => {
                d.field("expected_parameters", expected);
                d.field("got_parameters", got)
            }
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
            Kind::Io(e) => Some(e),
            Kind::Hook(e) => Some(&**e),
            // The connect's own error says what `Display` already said:
            // go on with its cause.
            Kind::Acquire(e) => match &**e {
                AcquireError::Connect(e) => e.source(),
                AcquireError::Apply(e) => e.source(),
                _ => None,
            },
            Kind::InvalidSettingName(_)
            | Kind::TimedOut(_)
            | Kind::Pooler(_)
            | Kind::ParameterCount { .. } => None,
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
        match &self.kind {
            // A connect that failed never made a connection; any other
            // failing operation left its connection unusable only if the
            // driver says so.
            Kind::Driver(e) => self.operation == Operation::Connect || e.is_connection_error(),
            Kind::Io(_) | Kind::TimedOut(_) => true,
            Kind::Acquire(e) => e.is_connection_error(),
            Kind::Hook(_) => self.as_driver().is_some_and(Classify::is_connection_error),
            Kind::InvalidSettingName(_) | Kind::Pooler(_) | Kind::ParameterCount { .. } => false,
        }
    }

    fn is_retryable(&self) -> bool {
        match &self.kind {
            Kind::Acquire(e) => e.is_retryable(),
            Kind::TimedOut(_) => true,
            Kind::Io(_) => self.operation != Operation::Config,
            Kind::InvalidSettingName(_) | Kind::Pooler(_) | Kind::ParameterCount { .. } => false,
            Kind::Hook(_) => self.as_driver().is_some_and(Classify::is_retryable),
            Kind::Driver(e) => match self.operation {
                Operation::Config | Operation::Apply => false,
                _ => {
                    e.is_retryable()
                        || (self.operation == Operation::Connect && e.code().is_none() && {
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
