//! stormpool [`Manager`](stormpool::Manager)s for [sqlx]'s
//! connections: [`PgManager`] for PostgreSQL (feature `postgres`) and
//! [`MySqlManager`] for MySQL and MariaDB (feature `mysql`), both on by
//! default.
//!
//! ```no_run
//! use std::time::Duration;
//! use stormpool::{AcquireOptions, Pool};
//! use stormpool_sqlx::{Error, PgManager};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! let manager = PgManager::from_url("postgres://app@127.0.0.1:5432/app")?;
//! let pool = Pool::builder(manager)
//!     .max_size(16)
//!     .acquire_timeout(Duration::from_secs(1))
//!     .build()
//!     .expect("a valid pool configuration");
//!
//! // A request with a deadline: its statements are bounded by it, on the
//! // server (`statement_timeout`) and on the client.
//! let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
//! let mut conn = pool.get_with(AcquireOptions::new().deadline(deadline)).await?;
//!
//! // `&mut *conn` is an sqlx executor whose statements are tracked.
//! let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut *conn).await?;
//! assert_eq!(one, 1);
//!
//! // A transaction, tracked too; dropped without `commit`, it is rolled
//! // back before the connection serves anyone else.
//! let mut tx = conn.begin().await?;
//! sqlx::query("UPDATE counters SET n = n + 1 WHERE id = $1")
//!     .bind(1_i32)
//!     .execute(&mut tx)
//!     .await?;
//! tx.commit().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Tracked statements
//!
//! The pool's guard dereferences to a [`SqlxConnection`]; `&mut *conn` is
//! an sqlx [`Executor`](sqlx::Executor), so every sqlx query function takes
//! it. Statements sent that way, and through a [`SqlxTransaction`], are
//! *tracked*: bounded by the request's deadline and stopped on the server
//! when abandoned (below). The driver's own connection is reachable
//! (`&mut **conn`, [`SqlxConnection::raw_mut`]) for what sqlx offers
//! beyond an executor, untracked.
//!
//! # Cancel
//!
//! sqlx keeps the PostgreSQL cancel key to itself, so
//! [`cancel`](stormpool::Manager::cancel) does without it, from a side
//! session opened with the pool's own options:
//!
//! - **PostgreSQL**: `pg_cancel_backend(pid)`, for the backend whose pid and
//!   start time were read at connect (so a pid the system has reused is
//!   never signalled). The statement fails with SQLSTATE `57014` and the
//!   session stays usable. It needs the same role as the pool's sessions
//!   (or `pg_signal_backend`), which the side session has, and costs an
//!   authenticated connect per cancel. `pg_terminate_backend` would lose
//!   the connection; a `statement_timeout` alone would not reach
//!   statements abandoned without a deadline. Not for use through a
//!   pooler in transaction mode, where the pid read at connect names no
//!   particular session.
//! - **MySQL, MariaDB**: `KILL QUERY <connection id>`; the statement fails
//!   with `ER_QUERY_INTERRUPTED` (1317), the session stays usable.
//!
//! At most [`ManagerConfig::max_concurrent_cancels`] side sessions are open
//! at once, each bounded by [`ManagerConfig::cancel_timeout`].
//!
//! # Abandoned statements
//!
//! A request that gives up in the middle of a statement (its future
//! dropped at its deadline) leaves the statement running on the server;
//! sqlx keeps the connection in step (its next use reads what is left of
//! the reply), so with a plain pool the next request waits behind work
//! nobody will read. A tracked statement dropped before its end marks the
//! connection: when it comes back, the pool cancels the statement and
//! keeps the connection out of circulation (counted as draining) until the
//! rest of the reply has been read and a ping answered; past
//! `abandon_timeout` it closes it. The returner never waits. A row stream
//! (`fetch`, `fetch_many`) dropped before its end counts as abandoned too
//! (the server may still be producing rows): the price of stopping
//! early is one cancel and one round trip, off the returner's path.
//!
//! # Deadline propagation
//!
//! When a request acquires a connection with a deadline
//! ([`AcquireOptions::deadline`](stormpool::AcquireOptions::deadline); a
//! wait `timeout` is never propagated) and the pool's
//! `propagate_deadline` is on (the default), its tracked statements are
//! bounded on the server by the time left: `statement_timeout`
//! (PostgreSQL) or `max_statement_time` (MariaDB), rounded down to one of
//! four steps per octave, so similar requests share a value and a
//! statement never outlives its deadline. The `SET` is sent only when the
//! value changes, as one round trip before the statement (sqlx offers no
//! way to pipeline it). A request without a deadline puts the session back
//! to its default. MySQL has no `max_statement_time`: there the first
//! `SET` fails and the connection stops trying. A statement over its bound
//! fails on the server (SQLSTATE `57014`; error 1969) and the connection
//! stays usable; [`SqlxManager::stats`] counts these.
//!
//! A server that does not answer cannot send that error, so tracked
//! statements are bounded on the client too, at the deadline plus
//! [`ManagerConfig::statement_grace`] (25 ms by default): the statement
//! fails with an I/O error of kind `TimedOut`
//! ([`Error::is_timeout`]), and the pool cancels it and drains the
//! connection, or closes it.
//!
//! # Transaction hygiene
//!
//! A connection is never handed out inside a transaction. sqlx reads the
//! session's transaction status off the protocol but keeps it private, so
//! the adapter watches what could open one:
//!
//! - a [`SqlxTransaction`] dropped without commit (sqlx queues its
//!   `ROLLBACK` for the connection's next use): the pool makes that use, a
//!   ping, before anyone else gets the connection;
//! - a tracked statement whose text may open a transaction, found by whole
//!   words: `BEGIN`, `START` (PostgreSQL, where nothing else can); those
//!   and `XA`, `AUTOCOMMIT`, `CALL`, `EXECUTE` (MySQL, where a procedure or
//!   a prepared statement may start one out of sight). A word in a string
//!   or a column name also counts: suspicion costs one round trip;
//! - the driver's connection reached through `DerefMut` (a transaction
//!   begun with sqlx's own `begin`, a hand-written `BEGIN` through it).
//!
//! A bare `COMMIT` or `ROLLBACK` that succeeds lifts the suspicion (a
//! hand-written `BEGIN` .. `COMMIT` costs nothing on return); a change of
//! `autocommit` keeps the connection suspect for the rest of its life.
//!
//! Such a connection is drained off the returner's path: the server is
//! asked whether the session is in a transaction
//! (`transaction_timestamp() < statement_timestamp()`, which fails in a
//! failed transaction; MariaDB's `@@in_transaction`), and rolled back if
//! it is, counted in
//! [`StatementStats::rolled_back_on_return`](stormpool::statements::StatementStats::rolled_back_on_return).
//! A clean connection costs three flag tests on return.
//!
//! # Errors
//!
//! One [`Error`] for everything a handler does: acquire errors
//! (`AcquireError<Error>`) and [`sqlx::Error`] convert into it, so `?`
//! works on both; [`Error::is_retryable`], [`Error::is_connection_error`],
//! [`Error::is_timeout`] and [`Error::sqlstate`] answer for each. Its
//! `Display` says what failed, where and why (`could not connect to
//! 127.0.0.1:5432: Connection refused (os error 111)`), never the
//! password: sqlx's own `Debug` of its connect options prints it, the
//! manager's does not.
//!
//! # Prepared statements
//!
//! sqlx caches prepared statements per connection itself
//! (`statement_cache_capacity` in its connect options); the adapter adds no
//! cache of its own.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backend;
mod config;
mod connection;
mod error;
mod manager;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
mod tracked;
mod transaction;

pub use backend::{Backend, Options};
pub use config::ManagerConfig;
pub use connection::SqlxConnection;
pub use error::{Error, Operation};
pub use manager::{HookError, HookFuture, SqlxManager};
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use mysql::MySqlSession;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PgSession;
pub use sqlx;
pub use transaction::SqlxTransaction;

/// A manager for sqlx's PostgreSQL connections.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub type PgManager = SqlxManager<sqlx::Postgres>;

/// A manager for sqlx's MySQL and MariaDB connections.
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub type MySqlManager = SqlxManager<sqlx::MySql>;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
