//! The manager's error and the error classifier.

use std::fmt;

use mysql_async::{DriverError, ServerError};
use stormpool::AcquireError;

/// Which manager operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Opening a connection.
    Connect,
    /// The checkout probe (`COM_PING`).
    Check,
    /// Applying session settings.
    Apply,
    /// Resetting the session.
    Reset,
    /// Sending `KILL QUERY` over a side connection.
    Cancel,
    /// Reading the connection configuration (a URL).
    Config,
}

impl Operation {
    fn describe(self) -> &'static str {
        match self {
            Operation::Connect => "could not connect to MySQL",
            Operation::Check => "the connection check failed",
            Operation::Apply => "could not apply the session settings",
            Operation::Reset => "could not reset the session",
            Operation::Cancel => "could not cancel the statement",
            Operation::Config => "invalid MySQL connection configuration",
        }
    }
}

/// An error of a [`MySqlManager`](crate::MySqlManager) operation.
///
/// `Display` says which operation failed; [`source`](std::error::Error::source)
/// is the driver's error, which carries the server's message
/// ([`server_error`](Error::server_error)) or the I/O error. Neither contains
/// the password.
#[derive(Debug)]
pub struct Error {
    operation: Operation,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Driver(mysql_async::Error),
    InvalidSettingName(String),
    TimedOut,
    /// The server cannot reset a session (MySQL before 5.7.3, MariaDB
    /// before 10.2.4).
    ResetUnsupported,
}

impl Error {
    pub(crate) fn driver(operation: Operation) -> impl FnOnce(mysql_async::Error) -> Error {
        move |e| Error {
            operation,
            kind: Kind::Driver(e),
        }
    }

    pub(crate) fn url(e: mysql_async::UrlError) -> Error {
        Error::driver(Operation::Config)(e.into())
    }

    pub(crate) fn invalid_setting_name(name: &str) -> Error {
        Error {
            operation: Operation::Apply,
            kind: Kind::InvalidSettingName(name.to_owned()),
        }
    }

    pub(crate) fn timed_out(operation: Operation) -> Error {
        Error {
            operation,
            kind: Kind::TimedOut,
        }
    }

    pub(crate) fn reset_unsupported() -> Error {
        Error {
            operation: Operation::Reset,
            kind: Kind::ResetUnsupported,
        }
    }

    /// The operation that failed.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// The driver's error, unless the failure was found without one (an
    /// invalid setting name, a timeout).
    pub fn as_driver(&self) -> Option<&mysql_async::Error> {
        match &self.kind {
            Kind::Driver(e) => Some(e),
            _ => None,
        }
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Driver(_) => f.write_str(self.operation.describe()),
            Kind::InvalidSettingName(name) => write!(
                f,
                "invalid session variable name `{name}`: expected letters, digits, `_` and `.`"
            ),
            Kind::TimedOut => write!(f, "{}: timed out", self.operation.describe()),
            Kind::ResetUnsupported => {
                f.write_str("the server does not support resetting a session")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.as_driver().map(|e| e as _)
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
        match &self.kind {
            // A connect that failed never made a connection; any other
            // failing operation left its connection unusable only if the
            // driver says so.
            Kind::Driver(e) => self.operation == Operation::Connect || e.is_connection_error(),
            Kind::TimedOut => true,
            Kind::InvalidSettingName(_) | Kind::ResetUnsupported => false,
        }
    }

    fn is_retryable(&self) -> bool {
        match &self.kind {
            Kind::Driver(e) => match self.operation {
                Operation::Config | Operation::Apply => false,
                _ => e.is_retryable(),
            },
            Kind::TimedOut => true,
            Kind::InvalidSettingName(_) | Kind::ResetUnsupported => false,
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
