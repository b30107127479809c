//! The parts every adapter's error type shares: what failed
//! ([`Operation`]), the driver's error, the `on_connect` hook's, the pool's
//! [`AcquireError`], and the server a connect was aimed at.

use std::error::Error as StdError;
use std::fmt;

use super::root_cause;
use crate::AcquireError;

/// What failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Opening a connection.
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
    /// Stopping a statement from elsewhere (a cancel request, or
    /// `KILL QUERY` over a side connection).
    Cancel,
    /// Reading the connection configuration (a URL, options).
    Config,
    /// Getting a connection from the pool.
    Acquire,
    /// A statement, sent through a pooled connection or a transaction.
    Statement,
    /// Starting, committing or rolling back a transaction or a savepoint.
    Transaction,
}

impl Operation {
    /// What failed, in words: how an error's `Display` begins.
    ///
    /// ```
    /// use stormpool::statements::Operation;
    ///
    /// assert_eq!(Operation::Acquire.describe(), "could not get a connection");
    /// ```
    pub fn describe(self) -> &'static str {
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
            Operation::Transaction => "transaction control statement failed",
        }
    }
}

/// An adapter's error type: a tuple struct around its [`ErrorParts`]
/// ([`adapter_error_impls!`](crate::adapter_error_impls) implements this
/// and the rest).
pub trait AdapterError: StdError + Sized + 'static {
    /// The driver's error type.
    type Driver: StdError + 'static;
    /// The failures only this adapter has.
    type Other: Failure<Self>;

    /// The error's parts.
    fn parts(&self) -> &ErrorParts<Self>;
}

/// An adapter's own failures, and how its error shows what only the
/// adapter knows.
pub trait Failure<E: AdapterError> {
    /// What failed, in words ([`Operation::describe`] unless the adapter
    /// names its server).
    fn describe(operation: Operation) -> &'static str {
        operation.describe()
    }

    /// Writes a driver's error: what failed (see
    /// [`fmt_what`](ErrorParts::fmt_what)), then the driver's root cause.
    fn fmt_driver(
        parts: &ErrorParts<E>,
        driver: &E::Driver,
        f: &mut fmt::Formatter<'_>,
    ) -> fmt::Result {
        parts.fmt_what(f)?;
        write!(f, ": {}", root_cause(driver))
    }

    /// The name of the driver's error in the error's `Debug`.
    const DRIVER_FIELD: &'static str = "driver";

    /// Writes this failure.
    fn fmt(&self, parts: &ErrorParts<E>, f: &mut fmt::Formatter<'_>) -> fmt::Result;

    /// Adds this failure to the error's `Debug`.
    fn debug(&self, d: &mut fmt::DebugStruct<'_, '_>);

    /// This failure's source.
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        None
    }
}

/// Why an adapter's operation failed.
pub enum ErrorKind<E: AdapterError> {
    /// The driver's error.
    Driver(E::Driver),
    /// The `on_connect` hook's error.
    Hook(Box<dyn StdError + Send + Sync>),
    /// The pool's error, when getting a connection failed.
    Acquire(Box<AcquireError<E>>),
    /// One of the adapter's own failures.
    Other(E::Other),
}

/// What an adapter's error holds: what failed, why, and the server a
/// connect was aimed at.
pub struct ErrorParts<E: AdapterError> {
    operation: Operation,
    kind: ErrorKind<E>,
    /// The server a connect was aimed at (`host:port`), for `Display`.
    target: Option<Box<str>>,
}

impl<E: AdapterError> ErrorParts<E> {
    /// `operation` failed for `kind`.
    pub fn new(operation: Operation, kind: ErrorKind<E>) -> Self {
        ErrorParts {
            operation,
            kind,
            target: None,
        }
    }

    /// Names the server a connect was aimed at (`host:port`).
    pub fn set_target(&mut self, target: Option<String>) {
        self.target = target.map(String::into_boxed_str);
    }

    /// Why the operation failed.
    pub fn kind(&self) -> &ErrorKind<E> {
        &self.kind
    }

    /// The operation this error was made for (an acquire, for the pool's
    /// errors).
    pub fn own_operation(&self) -> Operation {
        self.operation
    }

    /// What failed: a failed acquire that failed because a connect did
    /// says so.
    pub fn operation(&self) -> Operation {
        match &self.kind {
            ErrorKind::Acquire(e) => match &**e {
                AcquireError::Connect(e) => e.parts().operation(),
                _ => self.operation,
            },
            _ => self.operation,
        }
    }

    /// The driver's error, if the failure came from it (through a failed
    /// acquire or the hook too).
    pub fn driver(&self) -> Option<&E::Driver> {
        match &self.kind {
            ErrorKind::Driver(e) => Some(e),
            ErrorKind::Acquire(e) => match &**e {
                AcquireError::Connect(e) => e.parts().driver(),
                AcquireError::Apply(e) => e.parts().driver(),
                _ => None,
            },
            ErrorKind::Hook(e) => e
                .downcast_ref::<E>()
                .and_then(|e| e.parts().driver())
                .or_else(|| e.downcast_ref::<E::Driver>()),
            ErrorKind::Other(_) => None,
        }
    }

    /// The pool's error, when getting a connection failed.
    pub fn acquire_error(&self) -> Option<&AcquireError<E>> {
        match &self.kind {
            ErrorKind::Acquire(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the pool gave up waiting, on a connection or a connect.
    pub fn acquire_timed_out(&self) -> bool {
        matches!(&self.kind, ErrorKind::Acquire(e)
            if matches!(**e, AcquireError::Timeout | AcquireError::ConnectTimeout))
    }

    /// What failed, in words.
    pub fn describe(&self) -> &'static str {
        E::Other::describe(self.operation)
    }

    /// Writes what failed: `could not connect to {target}` for a connect
    /// aimed at a known server, else [`describe`](Self::describe).
    pub fn fmt_what(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.operation, &self.target) {
            (Operation::Connect, Some(target)) => write!(f, "could not connect to {target}"),
            _ => f.write_str(self.describe()),
        }
    }

    /// The error's `Display`: what failed and its underlying cause, in one
    /// line.
    pub fn fmt_display(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Acquire(e) => match &**e {
                AcquireError::Connect(e) => fmt::Display::fmt(e, f),
                AcquireError::Apply(e) => fmt::Display::fmt(e, f),
                e => write!(f, "{}: {e}", self.describe()),
            },
            ErrorKind::Driver(e) => E::Other::fmt_driver(self, e, f),
            ErrorKind::Hook(e) => write!(f, "{}: {}", self.describe(), root_cause(&**e)),
            ErrorKind::Other(other) => other.fmt(self, f),
        }
    }

    /// The error's `Debug`.
    pub fn fmt_debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("operation", &self.operation);
        match &self.kind {
            ErrorKind::Driver(e) => {
                d.field(E::Other::DRIVER_FIELD, e);
            }
            ErrorKind::Hook(e) => {
                d.field("hook", e);
            }
            ErrorKind::Acquire(e) => {
                d.field("acquire", e);
            }
            ErrorKind::Other(other) => other.debug(&mut d),
        }
        if let Some(target) = &self.target {
            d.field("target", target);
        }
        d.finish()
    }

    /// The error's source. A failed connect's own error says what
    /// `Display` already said: the chain goes on with its cause.
    pub fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.kind {
            ErrorKind::Driver(e) => Some(e),
            ErrorKind::Hook(e) => Some(&**e),
            ErrorKind::Acquire(e) => match &**e {
                AcquireError::Connect(e) => e.source(),
                AcquireError::Apply(e) => e.source(),
                _ => None,
            },
            ErrorKind::Other(other) => other.source(),
        }
    }
}

/// Whether the pool's `error` leaves no connection: a connect that failed
/// or timed out, or settings whose failure `inner` says broke the
/// connection.
pub fn acquire_is_connection_error<E>(error: &AcquireError<E>, inner: impl Fn(&E) -> bool) -> bool {
    match error {
        AcquireError::Connect(_) | AcquireError::ConnectTimeout => true,
        AcquireError::Apply(e) => inner(e),
        _ => false,
    }
}

/// Whether trying again may get past the pool's `error`: a connect that
/// timed out, or a connect or settings whose failure `inner` says is
/// transient. Not the pool's own rejections: retrying straight away adds
/// load to a pool that just said it has too much.
pub fn acquire_is_retryable<E>(error: &AcquireError<E>, inner: impl Fn(&E) -> bool) -> bool {
    match error {
        AcquireError::Connect(e) => inner(e),
        AcquireError::ConnectTimeout => true,
        AcquireError::Apply(e) => inner(e),
        _ => false,
    }
}

/// Implements an adapter's error type `$error`, a tuple struct around its
/// [`ErrorParts`] whose own failures are `$other` ([`Failure`]) and whose
/// driver's error is `$driver`: [`AdapterError`], `Display`, `Debug`,
/// [`std::error::Error`], `From<AcquireError<$error>>`, `From<$driver>` (a
/// statement's error, made by `$statement`), and the methods every
/// adapter's error has: `operation`, `acquire_error`, and for the adapter
/// `at` (the server a connect was aimed at), `hook` (the `on_connect`
/// hook's error) and `other` (one of its own failures).
#[macro_export]
macro_rules! adapter_error_impls {
    ($error:ident, $driver:ty, $other:ty, $statement:path) => {
        impl $crate::statements::AdapterError for $error {
            type Driver = $driver;
            type Other = $other;

            fn parts(&self) -> &$crate::statements::ErrorParts<$error> {
                &self.0
            }
        }

        #[allow(dead_code)] // not every adapter has a hook or a target
        impl $error {
            /// What failed.
            pub fn operation(&self) -> $crate::statements::Operation {
                self.0.operation()
            }

            /// The pool's error, when getting a connection failed: match it
            /// for [`Shed`](stormpool::AcquireError::Shed),
            /// [`Timeout`](stormpool::AcquireError::Timeout) and the other
            /// rejections.
            pub fn acquire_error(&self) -> ::std::option::Option<&$crate::AcquireError<$error>> {
                self.0.acquire_error()
            }

            /// `operation` failed for one of the adapter's own reasons.
            fn other(operation: $crate::statements::Operation, other: $other) -> $error {
                $error($crate::statements::ErrorParts::new(
                    operation,
                    $crate::statements::ErrorKind::Other(other),
                ))
            }

            /// The `on_connect` hook failed.
            pub(crate) fn hook(
                e: ::std::boxed::Box<
                    dyn ::std::error::Error + ::std::marker::Send + ::std::marker::Sync,
                >,
            ) -> $error {
                $error($crate::statements::ErrorParts::new(
                    $crate::statements::Operation::OnConnect,
                    $crate::statements::ErrorKind::Hook(e),
                ))
            }

            /// Names the server a connect was aimed at.
            pub(crate) fn at(
                mut self,
                target: impl ::std::convert::Into<::std::option::Option<::std::string::String>>,
            ) -> $error {
                self.0.set_target(target.into());
                self
            }
        }

        impl ::std::convert::From<$driver> for $error {
            /// A statement's error, from a statement sent through the
            /// driver.
            fn from(e: $driver) -> $error {
                $statement($crate::statements::Operation::Statement)(e)
            }
        }

        impl ::std::fmt::Display for $error {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.fmt_display(f)
            }
        }

        impl ::std::fmt::Debug for $error {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.fmt_debug(f)
            }
        }

        impl ::std::error::Error for $error {
            fn source(&self) -> ::std::option::Option<&(dyn ::std::error::Error + 'static)> {
                self.0.source()
            }
        }

        impl ::std::convert::From<$crate::AcquireError<$error>> for $error {
            /// The pool's error, when getting a connection failed.
            fn from(e: $crate::AcquireError<$error>) -> $error {
                $error($crate::statements::ErrorParts::new(
                    $crate::statements::Operation::Acquire,
                    $crate::statements::ErrorKind::Acquire(::std::boxed::Box::new(e)),
                ))
            }
        }
    };
}
