//! A stormpool [`Manager`](stormpool::Manager) for
//! [mysql_async] (MySQL and MariaDB): [`MySqlManager`].
//!
//! ```no_run
//! use std::time::Duration;
//! use mysql_async::prelude::Queryable;
//! use stormpool::{AcquireOptions, Pool, Settings};
//! use stormpool_mysql::{Classify, MySqlManager};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = MySqlManager::from_url("mysql://app@127.0.0.1:3306/app")?;
//! let pool = Pool::builder(manager)
//!     .max_size(16)
//!     .acquire_timeout(Duration::from_secs(1))
//!     .build()?;
//!
//! // The guard dereferences to a `mysql_async::Conn`.
//! let mut conn = pool.get().await?;
//! let one: Option<i64> = conn.query_first("SELECT 1").await?;
//! assert_eq!(one, Some(1));
//! drop(conn);
//!
//! // A request may ask for session variables; the pool hands it a connection
//! // carrying them, resetting another one's first if need be.
//! let utc = Settings::new([("time_zone", "+00:00")]);
//! let mut conn = pool.get_with(AcquireOptions::new().settings(utc)).await?;
//! match conn.query_drop("UPDATE t SET n = n + 1").await {
//!     Ok(()) => {}
//!     Err(e) if e.is_retryable() => { /* try again, on another connection */ }
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok(())
//! # }
//! ```
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
mod error;
mod manager;
mod session;

pub use config::ManagerConfig;
pub use error::{Classify, Error, Operation};
pub use manager::{MySqlCancelToken, MySqlConnection, MySqlManager};
pub use mysql_async;
