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
//! // The guard dereferences to a `tokio_postgres::Client`.
//! let conn = pool.get().await?;
//! let row = conn.query_one("SELECT 1::int4", &[]).await?;
//! assert_eq!(row.get::<_, i32>(0), 1);
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
//!   protocol's cancel request, which stops it as `pg_cancel_backend` would.
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

mod config;
mod error;
mod manager;
mod session;

pub use config::ManagerConfig;
pub use error::{Classify, Error, Operation};
pub use manager::{PgConnection, PgManager};
pub use tokio_postgres;
