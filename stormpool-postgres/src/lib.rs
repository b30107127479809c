//! A stormpool [`Manager`](stormpool::Manager) for
//! [tokio-postgres](tokio_postgres): [`PgManager`].
//!
//! ```no_run
//! use std::time::Duration;
//! use stormpool::{AcquireOptions, Pool, Settings};
//! use stormpool_postgres::{Classify, PgManager};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = PgManager::from_url("postgres://app@127.0.0.1:5432/app")?;
//! let pool = Pool::builder(manager)
//!     .max_size(16)
//!     .acquire_timeout(Duration::from_secs(1))
//!     .build()?;
//!
//! // The guard dereferences to a `PgConnection`, whose statement methods
//! // are those of a `tokio_postgres::Client`, tracked (see below).
//! let mut conn = pool.get().await?;
//! let row = conn.query_one("SELECT 1::int4", &[]).await?;
//! assert_eq!(row.get::<_, i32>(0), 1);
//!
//! // A transaction; dropped without `commit`, it is rolled back.
//! let tx = conn.transaction().await?;
//! tx.execute("UPDATE counters SET n = n + 1 WHERE id = $1", &[&1i32]).await?;
//! tx.commit().await?;
//! drop(conn);
//!
//! // A request may ask for session settings; the pool hands it a connection
//! // carrying them, resetting another one's first if need be.
//! let utc = Settings::new([("TimeZone", "UTC")]);
//! let conn = pool.get_with(AcquireOptions::new().settings(utc)).await?;
//! match conn.simple_query("SELECT now()").await {
//!     Ok(_) => {}
//!     Err(e) if e.is_retryable() => { /* try again, on another connection */ }
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Behaviour under faults
//!
//! Measured against a live server by this crate's tests (`tests/`):
//!
//! - **A killed session** (`pg_terminate_backend`, an idle-session timeout):
//!   the driver notices within milliseconds and [`is_broken`] reports it, so
//!   an idle killed connection is never handed out; one killed in use fails
//!   its statement with a [connection error](Classify::is_connection_error)
//!   and is closed on return.
//! - **A hung server** (frozen process, partitioned network): the socket
//!   looks open, so only the checkout probe finds it. The pool bounds the
//!   probe by its `check_timeout` and closes the connection; closing cuts
//!   the socket after [`ManagerConfig::close_grace`], so nothing leaks.
//! - **A restart**: connects fail fast with the real error while the server
//!   is down ([`AcquireError::Connect`](stormpool::AcquireError::Connect)),
//!   and the pool refills as soon as it accepts connections again.
//! - **A stuck statement**: [`cancel`](stormpool::Manager::cancel) sends the
//!   protocol's cancel request, which stops it as `pg_cancel_backend` would,
//!   and returns once the server has acted on it: a cancel that arrives
//!   after the statement ended never hits the session's next statement.
//!
//! # Abandoned statements
//!
//! A request that gives up in the middle of a statement (its future is
//! dropped at its deadline) leaves the statement running on the server, and
//! with a plain client the next request on that connection queues behind
//! work nobody will read; under a timeout storm seconds of it pile up per
//! connection. [`PgConnection`]'s statement methods are tracked: when a
//! connection comes back with one abandoned, the pool sends the protocol's
//! cancel request and keeps the connection out of circulation (counted as
//! draining) until an empty query answers, which happens once the server is
//! idle on the session; past `abandon_timeout` it closes it. The returner
//! never waits for any of this. Statements sent through the raw
//! [`Client`](tokio_postgres::Client) (`Deref`, [`PgConnection::client`]) are
//! not tracked.
//!
//! # Transactions and hygiene
//!
//! [`PgConnection::transaction`] and [`build_transaction`](PgConnection::build_transaction)
//! (isolation level, read-only, deferrable) begin a [`PgTransaction`], whose
//! statements are tracked like the connection's; [`PgTransaction::transaction`]
//! nests a savepoint. Dropped without [`commit`](PgTransaction::commit), a
//! transaction queues its `ROLLBACK` at once, without waiting.
//!
//! Whatever the holder did, a connection is never handed out inside an open
//! or failed transaction: a hand-written `BEGIN`, a request dropped between
//! two statements or in the middle of one, an error inside a transaction,
//! the raw client. The server reports the session's transaction state with
//! every ReadyForQuery message; the manager opens the socket itself and
//! reads that status byte off the stream as the driver receives it (a few
//! comparisons per message). A connection that comes back with its session
//! in a transaction, in a failed one, or busy is drained off the returner's
//! path: an empty query (which answers once the server is idle), then
//! `ROLLBACK` if the session is still in a transaction, counted in
//! [`PgStats::rolled_back_on_return`](stormpool::statements::StatementStats::rolled_back_on_return).
//! A clean connection costs one atomic load on return. A connection whose
//! raw client was reached is drained too (a statement sent through it may
//! still be in flight).
//!
//! The status byte is read only when the manager can open the socket itself:
//! one server (host name, address or Unix socket), no TLS (`sslmode=disable`,
//! or `prefer` with [`NoTls`](tokio_postgres::NoTls)), and
//! `target_session_attrs=any`. Otherwise (TLS, several hosts) the driver
//! connects, and every connection that ran a statement is drained before
//! its next checkout with a probe that tells whether the session is inside
//! a transaction block (`transaction_timestamp() = statement_timestamp()`),
//! then `ROLLBACK` if it is: correct, at the price of a round trip (and a
//! connection out of circulation for it) per checkout.
//!
//! Measured on a live PostgreSQL 15, one request at a time on a pool of one
//! (checkout, `SELECT 1`, return; `cargo bench -p stormpool-postgres --bench
//! live -- checkout_select`): within a few percent of deadpool-postgres,
//! which checks nothing on return (see BENCHMARKS.md for the run's
//! figures); the fallback without the status byte about 2.3 times slower.
//!
//! # Prepared statements and the connect hook
//!
//! [`PgConnection::prepare_cached`] keeps prepared statements per
//! connection in a bounded LRU cache
//! ([`ManagerConfig::statement_cache_capacity`], 100 by default), emptied
//! when the session is reset; [`PgManager::stats`] counts hits and misses.
//! [`PgManager::on_connect`] runs an async hook once per new connection
//! (search path, type registration, session defaults); its failure fails the
//! connect with [`Operation::OnConnect`].
//!
//! # Errors
//!
//! One [`Error`] for everything a handler does: acquire errors
//! (`AcquireError<Error>`) and statement errors convert into it, so `?`
//! works on both, and [`Classify`] (`is_retryable`, `is_connection_error`,
//! `sqlstate`) answers for each. Its `Display` says what failed, where and
//! why (`could not connect to 127.0.0.1:5432: Connection refused (os error
//! 111)`), never the password.
//!
//! # Deadline propagation
//!
//! When a request acquires a connection with a deadline
//! ([`AcquireOptions::deadline`](stormpool::AcquireOptions::deadline); a
//! wait `timeout` is never propagated) and the pool's `propagate_deadline`
//! is on (the default), its tracked statements are bounded on the server by
//! the time left: `statement_timeout` is set to the remaining time, rounded
//! down to one of four steps per octave (so similar requests share a value,
//! and a statement never outlives its deadline; the bound is at most 20%
//! shorter than the time left). The `SET` is sent only when the value
//! changes, pipelined with the statement (one write, no extra round trip).
//! A request without a deadline puts the session back to its default
//! (`SET statement_timeout TO DEFAULT`, or the value its settings gave).
//! A statement over its bound fails on the server with SQLSTATE `57014`
//! and the connection stays usable; [`PgManager::stats`] counts these.
//! Turn it off with the pool's `propagate_deadline(false)` (on by default).
//!
//! A server that does not answer (frozen, partitioned) cannot send that
//! error, so tracked statements are bounded on the client too: at the
//! deadline plus [`ManagerConfig::statement_grace`] (25 ms by default) the
//! client gives up, the caller gets an [`Error`] that
//! [`is_timeout`](Error::is_timeout) and is a connection error, and the pool
//! cancels the statement and drains the connection, or closes it when the
//! server stays silent past `abandon_timeout`. Measured against a frozen
//! backend (`tests/faults.rs`): the statement failed 26 ms past its
//! deadline.
//!
//! What it costs a checkout, measured on a live PostgreSQL 15 (one request
//! at a time, `SELECT 1`, BENCHMARKS.md): about 2 µs when the bound stays in
//! its step (a clock read and a comparison; 96.8 µs against 98.6 µs per
//! request, within the noise), about 41 µs of server work when it changes
//! (137.4 µs), with no extra round trip. Under a steady 0.8x load about one
//! checkout in ten changed it.
//!
//! # TLS
//!
//! [`PgManager`] is generic over the driver's
//! [`MakeTlsConnect`](tokio_postgres::tls::MakeTlsConnect): bring the TLS
//! crate of your choice (`postgres-native-tls`, `tokio-postgres-rustls`) and
//! build the manager with [`PgManager::with_tls`]. This crate itself depends
//! on no TLS stack.
//!
//! # Secrets
//!
//! No `Debug` or `Display` output of this crate shows a password: the
//! manager and connection print chosen fields only, and errors carry the
//! server's message, never the configuration.
//!
//! [`is_broken`]: stormpool::Manager::is_broken
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cancel;
mod config;
mod connect;
mod connection;
mod deadline;
mod error;
mod manager;
mod session;
mod statements;
mod stats;
mod status;
mod tracked;
mod transaction;
mod unnamed;

pub use config::{ManagerConfig, Pooler};
pub use connection::PgConnection;
pub use error::{Classify, Error, Operation};
pub use manager::{HookError, HookFuture, PgManager};
pub use statements::{CopyOutStream, RowStream, SimpleQueryStream};
pub use tracked::{CopyInSink, TrackedStream};
pub use transaction::{PgTransaction, TransactionBuilder};
pub use unnamed::ToPgStatement;
/// What [`stats`](PgManager::stats) reports: the core's statement counters.
pub type PgStats = stormpool::statements::StatementStats;
pub use tokio_postgres;
