#![doc = include_str!("../README.md")]
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
//! # Behind PgBouncer
//!
//! A pooler in *transaction* mode (PgBouncer's `pool_mode = transaction`,
//! PgCat, Supavisor, Odyssey) gives each transaction of a client session
//! whichever server session is free. Whatever a client leaves on a server
//! session outlives its transaction and reaches the next client there:
//! named prepared statements (tokio-postgres prepares every text statement
//! under a name, binds it in a later exchange and closes it in another),
//! `SET`s, the deadline's `statement_timeout`. Measured through PgBouncer
//! 1.18 with 4 server sessions, 32 tasks x 50 parameterized queries on a
//! pool of 8: 575 of 1,600 answered without pooler mode (the others failed
//! with `26000` or `42P05`, or could have run another client's statement),
//! 1,600 with it; in 240 rounds of requests with a deadline and a setting,
//! a plain client through the same pooler saw their bound or setting 172
//! times without it, 0 times with it (`tests/pooler_*.rs`).
//!
//! Set [`ManagerConfig::pooler`] to [`Pooler::Transaction`]:
//!
//! ```no_run
//! # fn f() -> Result<(), stormpool_postgres::Error> {
//! use stormpool_postgres::{ManagerConfig, PgManager, Pooler};
//!
//! let mut options = ManagerConfig::default();
//! options.pooler = Pooler::Transaction;
//! let manager = PgManager::from_url("postgres://app@127.0.0.1:6432/app")?.options(options);
//! # Ok(())
//! # }
//! ```
//!
//! What changes, and what it costs:
//!
//! - **Statements run unnamed**, parsed, bound and executed in one exchange
//!   as [`query_typed`](PgConnection::query_typed) sends them, so no server
//!   session keeps one. The parameter types come from a *description*
//!   asked once per text and connection (prepared inside a transaction of
//!   its own, which holds one server session, and deallocated before its
//!   `COMMIT`), kept in the statement cache. The first use of a text costs
//!   two round trips; after that one, as before, but the server parses and
//!   plans every execution. [`prepare`](PgConnection::prepare) and
//!   [`prepare_cached`](PgConnection::prepare_cached) return such a
//!   description, which the connection's methods run by its text; a
//!   statement prepared through the raw client is refused
//!   ([`Error::is_pooler_misuse`]), and so is `COPY` outside a transaction.
//!   With PgBouncer 1.21 or later and `max_prepared_statements`, the pooler
//!   could keep named statements per server session itself; this mode does
//!   not rely on it (and does not get its saved parses).
//! - **Settings and the deadline's bound last one transaction.**
//!   [`apply`](stormpool::Manager::apply) keeps a request's settings on the
//!   connection; each of its transactions sets them, and the bound left
//!   of its deadline, with `set_config(name, value, true)` (as `SET
//!   LOCAL`). Inside a transaction that prelude is pipelined before its
//!   first statement (and again when the bound shrinks); a statement
//!   outside one is pipelined between `BEGIN; <prelude>` and `COMMIT` (an
//!   extended-protocol statement: one write, no extra round trip, three
//!   short statements of server work; `COMMIT`'s own error, a deferred
//!   constraint say, is the statement's) or prefixed by the prelude in its
//!   own text (the simple protocol, one implicit transaction), and a
//!   stream's `COMMIT` follows its last row. A statement without settings
//!   and deadline goes alone. Measured: a 300 ms deadline stopped a
//!   `pg_sleep(0.6)` 257 ms after it was sent (`57014`), by either
//!   protocol and in a transaction. Statements that cannot run in a
//!   transaction block (`VACUUM`, `CREATE INDEX CONCURRENTLY`) must then
//!   be sent without a deadline or settings; a transaction begun by hand
//!   goes through [`simple_query`](PgConnection::simple_query) or
//!   [`batch_execute`](PgConnection::batch_execute) (the prelude joins it),
//!   not `execute("BEGIN")`, whose statement's own `COMMIT` would end it.
//!   Since no statement runs at checkout, a setting's bad *value* fails
//!   the request's first statement rather than its acquire (a bad name is
//!   still refused there). Settings an [`on_connect`](PgManager::on_connect)
//!   hook sets stay on one server session: don't.
//! - **The reset sends nothing**: the settings lived on the connection, and
//!   [`ManagerConfig::reset_statement`] would reach whichever server session
//!   the pooler picks (`DISCARD ALL` there drops other clients' statements).
//!   The `ROLLBACK` of a transaction left open, and the empty query that
//!   proves a session idle, go through the pooler unchanged: a client in a
//!   transaction, or with a statement running, keeps its server session.
//! - **The cancel reaches the statement.** PgBouncer forwards a cancel
//!   request to the server session running the client's statement, but
//!   drops it when the client half-closes its socket first, as the
//!   driver's [`CancelToken::cancel_query`](tokio_postgres::CancelToken::cancel_query)
//!   does (PgBouncer 1.18 even exited on it twice in this crate's tests:
//!   `bad client state`). [`cancel`](stormpool::Manager::cancel) keeps its
//!   socket open until the pooler hangs up, as libpq does, whatever the
//!   mode; behind a transaction pooler it refuses the driver's fallback
//!   (TLS or several hosts). The hang-up means *forwarded*; the drain's
//!   empty query, queued behind the statement on the same server session,
//!   says when it stopped. Measured: an abandoned `pg_sleep(5)` was gone
//!   from `pg_stat_activity` 3 to 6 ms after its connection's return, and
//!   the same connection served the next request;
//!   [`PgManager::cancel_failures`] counts requests that could not be sent,
//!   the pool's `closed_drain_failed` statements that did not stop.
//! - **Restarts**: a stopped pooler refuses connections, and the pool fails
//!   requests fast with that error and refills when it is back (measured:
//!   1,107 requests while it was down, all refused within a millisecond,
//!   the first one served 29 ms after it was back, none past its deadline
//!   by more than 15 ms).
//!
//! **Detection.** A pooler hands out cancel keys of its own, so the
//! manager compares the first session's key with its backend's process id
//! (one `SELECT pg_backend_pid()` per manager) and reports it in
//! [`PgManager::pooler_detected`]; found with the mode off, it logs one
//! warning through `tracing`. It does not switch the mode on: a pooler in
//! session mode looks the same and needs nothing, and a mode that changes
//! how statements run should be chosen, not guessed. Over TLS (the driver
//! connects) nothing is detected.
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
mod env;
mod error;
mod handle;
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
pub use env::config_from_env;
pub use error::{Classify, Error, Operation};
pub use handle::{Scope, Tracked};
pub use manager::{HookError, HookFuture, PgManager};
pub use statements::{CopyOutStream, RowStream, SimpleQueryStream};
pub use tracked::{CopyInSink, TrackedStream};
pub use transaction::{PgTransaction, TransactionBuilder};
pub use unnamed::ToPgStatement;
/// What [`stats`](PgManager::stats) reports: the core's statement counters.
pub type PgStats = stormpool::statements::StatementStats;
/// A pool of PostgreSQL connections: `stormpool::Pool<PgManager<T>>`,
/// without TLS unless `T` says otherwise.
pub type Pool<T = tokio_postgres::NoTls> = stormpool::Pool<PgManager<T>>;
/// A connection checked out of a [`Pool`]: `stormpool::Conn<PgManager<T>>`,
/// which dereferences to a [`PgConnection`] and goes back to the pool when
/// dropped.
pub type Conn<T = tokio_postgres::NoTls> = stormpool::Conn<PgManager<T>>;
/// What getting a connection from a [`Pool`] fails with
/// (`stormpool::AcquireError<Error>`); it converts into [`Error`].
pub type AcquireError = stormpool::AcquireError<Error>;
pub use stormpool;
pub use tokio_postgres;
