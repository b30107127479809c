//! stormpool [`Manager`](stormpool::Manager)s for
//! [diesel-async](diesel_async)'s connections: [`PgManager`] for
//! `AsyncPgConnection` (feature `postgres`) and [`MysqlManager`] for
//! `AsyncMysqlConnection` (feature `mysql`, MySQL and MariaDB), both on by
//! default.
//!
//! ```no_run
//! use std::time::Duration;
//! use diesel::sql_types::Integer;
//! use diesel_async::{AsyncConnection, RunQueryDsl};
//! use stormpool::{AcquireOptions, Pool};
//! use stormpool_diesel_async::{Error, PgManager};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! let manager = PgManager::from_url("postgres://app@127.0.0.1:5432/app")?;
//! let pool = Pool::builder(manager)
//!     .max_size(16)
//!     .build()
//!     .expect("a valid pool configuration");
//!
//! // A request with a deadline: its statements are bounded by it, on the
//! // server (`statement_timeout`) and on the client.
//! let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
//! let mut conn = pool.get_with(AcquireOptions::new().deadline(deadline)).await?;
//!
//! // The guard is an `AsyncConnection`: diesel takes it as it is.
//! let one: i32 = diesel::select(diesel::dsl::sql::<Integer>("1"))
//!     .get_result(&mut conn)
//!     .await?;
//! assert_eq!(one, 1);
//!
//! // diesel's transactions work as on a bare connection; one left open by
//! // a request that gave up is rolled back before the connection serves
//! // anyone else.
//! conn.transaction::<_, Error, _>(async |conn| {
//!     diesel::sql_query("UPDATE counters SET n = n + 1").execute(conn).await?;
//!     Ok(())
//! })
//! .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Tracked statements
//!
//! The pool's guard dereferences to a [`DieselConnection`], an
//! `AsyncConnection` of its own whose statements (queries, `execute`,
//! `batch_execute`, and the transaction manager's `BEGIN`/`COMMIT`) are
//! *tracked*: bounded by the request's deadline and stopped on the server
//! when abandoned. A statement counts as answered at its first row.
//!
//! # Cancel
//!
//! - **PostgreSQL**: the protocol's cancel request, with diesel-async's
//!   cancel token, sent by the manager itself so that it returns only once
//!   the server has acted on it (it hangs up then): a statement sent after
//!   it is never hit. With several hosts or `sslmode=require`, the
//!   driver's own call, which returns as soon as the request is written.
//! - **MySQL, MariaDB**: `KILL QUERY <connection id>` from a side connection.
//!
//! # Abandoned statements
//!
//! A request that gives up in the middle of a statement leaves it running
//! on the server. When its connection comes back, the pool cancels it, and
//!
//! - on PostgreSQL keeps the connection out of circulation until the
//!   server is idle on it (tokio-postgres keeps the connection in step),
//!   then serves the next request with it;
//! - on MySQL closes it: mysql_async cannot finish a statement whose future
//!   was dropped, and diesel-async's connection cannot be taken apart to
//!   do it later (diesel-async itself says such a connection must not be
//!   reused).
//!
//! # Deadline propagation
//!
//! When a request acquires a connection with a deadline and the pool's
//! `propagate_deadline` is on (the default), its tracked statements are
//! bounded
//!
//! - on the server, on PostgreSQL: `statement_timeout`, set to the time left
//!   rounded down to one of four steps per octave, only when it changes, and
//!   pipelined ahead of the statement through diesel-async's shared-reference
//!   pipelining (no extra round trip). A statement over its bound fails
//!   with the server's timeout error and the connection stays usable.
//!   Nothing is set on MySQL: `max_statement_time` would need a round trip
//!   before a statement diesel-async has already been handed with the
//!   connection, and mysql_async does not pipeline;
//! - on the client, on both: at the deadline plus
//!   [`ManagerConfig::statement_grace`] (25 ms by default) the statement
//!   fails with an error for which [`Error::is_timeout`] holds, and the
//!   pool stops it on the server as an abandoned one (on MySQL, this is
//!   how a statement over its budget is stopped).
//!
//! # Transaction hygiene
//!
//! diesel-async's pools close a connection whose transaction manager is
//! broken or has a transaction open. This adapter carries that check over
//! and narrows it: a connection is closed when a transaction-control
//! statement (`BEGIN`, `COMMIT`, `ROLLBACK`) was cut short, since diesel's
//! manager cannot know the session's state then; a transaction merely left
//! open (a request dropped between two statements of a `transaction`
//! closure) is rolled back, level by level through diesel's own manager,
//! before the connection serves anyone else. A test transaction
//! (`begin_test_transaction`) stays open, as diesel-async means it to.
//!
//! A hand-written transaction (`sql_query("BEGIN")`, `batch_execute`) is
//! found by the statement's text, for statements diesel's query builder did
//! not make (the builder cannot open one): `BEGIN` or `START` (PostgreSQL);
//! those and `XA`, `AUTOCOMMIT`, `CALL`, `EXECUTE` (MySQL). A bare
//! `COMMIT` or `ROLLBACK` that succeeds lifts the suspicion, so diesel's own
//! `transaction`, whose `BEGIN` looks the same, costs nothing on return once
//! it has ended; a change of `autocommit` keeps the connection suspect for
//! the rest of its life. A suspect connection is asked, when it comes back,
//! whether it is in a transaction, and rolled back if so, counted in
//! [`StatementStats::rolled_back_on_return`](stormpool::statements::StatementStats::rolled_back_on_return).
//!
//! # Errors
//!
//! One [`Error`] for acquires and statements (`?` works on both), with
//! [`Error::is_retryable`], [`Error::is_connection_error`],
//! [`Error::is_timeout`] and [`Error::sqlstate`] (of a refused connect).
//! Never the password: the manager prints chosen fields of its options,
//! and URL errors name the parameter, not its value.
//!
//! # What this adapter does not do
//!
//! Session settings (`AcquireOptions::settings`) fail with
//! [`Operation::Apply`]; there is no `on_connect` hook. diesel-async's
//! `UpdateAndFetchResults` is implemented by diesel-async for its own
//! connections only.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod connection;
mod deadline;
mod driver;
mod error;
mod manager;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod pg;
mod tracked;

pub use config::ManagerConfig;
pub use connection::DieselConnection;
pub use diesel_async;
pub use driver::Driver;
pub use error::{Error, Operation};
pub use manager::DieselManager;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use mysql::MySqlSession;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use pg::PgSession;
pub use tracked::{Flight, TrackedRows};

/// A manager for diesel-async's PostgreSQL connections.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub type PgManager = DieselManager<diesel_async::AsyncPgConnection>;

/// A manager for diesel-async's MySQL and MariaDB connections.
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub type MysqlManager = DieselManager<diesel_async::AsyncMysqlConnection>;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
