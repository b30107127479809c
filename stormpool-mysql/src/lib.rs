#![doc = include_str!("../README.md")]
//!
//! # Behaviour under faults
//!
//! Measured against a live MariaDB by this crate's tests (`tests/`):
//!
//! - **A killed session** (`KILL CONNECTION`, `wait_timeout`): the driver
//!   only learns of it at the next I/O, so the pool's checkout probe
//!   (`COM_PING`, run when a connection was idle past `check_interval`) is
//!   what keeps a dead idle connection from a request; one killed in use
//!   fails its statement with a [connection error](Classify::is_connection_error)
//!   and is closed on return ([`is_broken`]).
//! - **A hung server**: only the probe finds it; the pool bounds it by its
//!   `check_timeout` and closes the connection, whose socket is cut after
//!   [`ManagerConfig::close_grace`].
//! - **A restart**: connects fail fast with the real error while the server
//!   is down, and the pool refills when it is back.
//! - **A stuck statement**: [`cancel`](stormpool::Manager::cancel) sends
//!   `KILL QUERY` over a side connection; the statement fails with
//!   `ER_QUERY_INTERRUPTED` (1317) and its connection stays usable.
//!
//! # Abandoned statements
//!
//! A request that gives up in the middle of a statement (its future is
//! dropped at its deadline) leaves the statement running on the server, and
//! mysql_async marks the connection disconnected, so a plain client loses
//! the connection and the server finishes the work for nobody.
//! [`MySqlConnection`]'s statement methods are tracked: an abandoned
//! statement stays with the connection, and when the connection comes back
//! the pool sends `KILL QUERY` over a side connection and keeps the
//! connection out of circulation (counted as draining) until the killed
//! statement's reply has been read and a ping answers; past
//! `abandon_timeout` it closes it. The returner never waits for any of
//! this. Statements sent through the driver's connection (`Deref`) are not
//! tracked.
//!
//! # Transactions and hygiene
//!
//! [`MySqlConnection::transaction`] and [`build_transaction`](MySqlConnection::build_transaction)
//! (isolation level, read-only, consistent snapshot) begin a
//! [`MySqlTransaction`], whose statements are tracked like the
//! connection's; [`MySqlTransaction::transaction`] nests a savepoint.
//! Dropped without [`commit`](MySqlTransaction::commit), a transaction
//! leaves its rollback owed: sent before the connection's next tracked
//! statement, or by the pool on return. The dropper never waits.
//!
//! Whatever the holder did, a connection is never handed out inside a
//! transaction. The server reports the session's state in every OK packet
//! (`SERVER_STATUS_IN_TRANS`), which the driver keeps, for statements sent
//! through the raw connection too; after an error the driver forgets it,
//! and the session counts as possibly in a transaction. Such a connection
//! is drained off the returner's path with a `ROLLBACK` (a no-op outside a
//! transaction), counted in
//! [`MySqlStats::rolled_back_on_return`](stormpool::statements::StatementStats::rolled_back_on_return);
//! a clean one costs a flag test on return.
//!
//! # Prepared statements and the connect hook
//!
//! [`MySqlConnection::prepare_cached`] keeps prepared statements per
//! connection in a bounded LRU cache
//! ([`ManagerConfig::statement_cache_capacity`], 100 by default), emptied
//! when the session is reset; [`MySqlManager::stats`] counts hits and
//! misses. [`MySqlManager::on_connect`] runs an async hook once per new
//! connection; its failure fails the connect with [`Operation::OnConnect`].
//!
//! # Errors
//!
//! One [`Error`] for everything a handler does: acquire errors and
//! statement errors convert into it, so `?` works on both, and [`Classify`]
//! answers for each. Its `Display` says what failed, where and why
//! (`could not connect to 127.0.0.1:3306: Connection refused (os error
//! 111)`), never the password, and never a value from the URL's query
//! string.
//!
//! # Deadline propagation
//!
//! When a request acquires a connection with a deadline
//! ([`AcquireOptions::deadline`](stormpool::AcquireOptions::deadline); a
//! wait `timeout` is never propagated) and the pool's `propagate_deadline`
//! is on (the default), its tracked statements are bounded on the server
//! (MariaDB) by the time left: `max_statement_time` is set to the remaining
//! time, rounded down to one of four steps per octave (so similar requests
//! share a value, and a statement never outlives its deadline; the bound
//! is at most 20% shorter than the time left). The `SET` is sent only when
//! the value changes, as one round trip before the statement (mysql_async
//! does not pipeline). A request without a deadline puts the session back
//! to its default (or the value its settings gave). A statement over its
//! bound fails with error 1969 (`ER_STATEMENT_TIMEOUT`) and the connection
//! stays usable; [`MySqlManager::stats`] counts these. MySQL has no
//! `max_statement_time`: there the first `SET` fails and the connection
//! stops trying. Turn it off with the pool's `propagate_deadline(false)` (on
//! by default).
//!
//! A server that does not answer (frozen, partitioned) cannot stop the
//! statement itself, so tracked statements are bounded on the client too:
//! at the deadline plus [`ManagerConfig::statement_grace`] (25 ms by
//! default) the client gives up, the caller gets an [`Error`] that
//! [`is_timeout`](Error::is_timeout) and is a connection error, and the pool
//! stops the statement (`KILL QUERY`) and drains the connection, or closes
//! it past `abandon_timeout`. Measured against a frozen server
//! (`tests/faults.rs`): the statement failed 27 ms past its deadline.
//!
//! What it costs a checkout, measured on a live MariaDB 10.11 (one request
//! at a time, `SELECT 1`, medians of 2,800): nothing measurable when the
//! bound stays in its step (48 to 52 µs per request, against 53 to 74 µs
//! with propagation off), one round trip when it changes (120 to 145 µs).
//!
//! Tracked statements cost one allocation each beyond the driver's own
//! (see [`MySqlConnection`]).
//!
//! # TLS
//!
//! TLS is the driver's business: enable one of mysql_async's TLS features in
//! your own `Cargo.toml` and set `ssl_opts` in the [`Opts`](mysql_async::Opts).
//! This crate itself depends on no TLS stack.
//!
//! # Secrets
//!
//! No `Debug` or `Display` output of this crate shows a password. Beware
//! that the driver's own `Debug` of `mysql_async::Conn` and `Opts` does:
//! print the pooled connection ([`MySqlConnection`]), not what it
//! dereferences to.
//!
//! [`is_broken`]: stormpool::Manager::is_broken
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod connection;
mod deadline;
mod env;
mod error;
mod manager;
mod session;
mod stats;
mod transaction;

pub use config::ManagerConfig;
pub use connection::MySqlConnection;
pub use env::opts_from_env;
pub use error::{Classify, Error, Operation};
pub use manager::{HookError, HookFuture, MySqlCancelToken, MySqlManager};
pub use mysql_async;
pub use stormpool;
pub use transaction::{MySqlTransaction, TransactionBuilder};
/// What [`stats`](MySqlManager::stats) reports: the core's statement counters.
pub type MySqlStats = stormpool::statements::StatementStats;
/// A pool of MySQL or MariaDB connections: `stormpool::Pool<MySqlManager>`.
pub type Pool = stormpool::Pool<MySqlManager>;
/// A connection checked out of a [`Pool`]: `stormpool::Conn<MySqlManager>`,
/// which dereferences to a [`MySqlConnection`] and goes back to the pool
/// when dropped.
pub type Conn = stormpool::Conn<MySqlManager>;
/// What getting a connection from a [`Pool`] fails with
/// (`stormpool::AcquireError<Error>`); it converts into [`Error`].
pub type AcquireError = stormpool::AcquireError<Error>;
