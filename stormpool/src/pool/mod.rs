//! The connection pool: [`Pool`], its [`Builder`] and [`Config`], the
//! [`Conn`] guard, and the waitlist, idle store and connector behind them.
//!
//! # The life of a request
//!
//! `get` takes the pool lock once. If a connection is idle (one carrying the
//! requested settings first, then a clean one, then any), the request takes it
//! and leaves. Otherwise it is rejected at once when the pool is closed, the
//! database is known to be down, or `max_waiters` requests already wait; else
//! it joins the waitlist, and a connect is started if demand calls for one.
//!
//! A connection that becomes free (returned, or just opened) goes to the
//! next live waiter: the highest class, round-robin across fairness keys, the
//! oldest within a key, preferring a waiter that asked for the settings the
//! connection carries. Waiters whose deadline has passed are evicted on the
//! way and never receive it. If nobody waits, it goes to the idle store.
//!
//! Before the request gets the connection, a connection idle for longer than
//! `check_interval` is probed, and its session is reset or configured when
//! the settings differ. A connection failing any of that is closed and the
//! request tries the next one, within its deadline.

mod acquire;
mod config;
mod conn;
mod idle;
mod lease;
#[cfg(all(test, stormpool_loom))]
mod loom_models;
pub mod observe;
mod options;
mod shared;
mod state;
mod stats;
mod waitlist;
mod wake;

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;

pub use config::{Builder, Config, MAX_DURATION};
pub use conn::Conn;
pub use options::{AcquireOptions, Priority};
pub use stats::{Counters, Status};

use crate::error::{AcquireError, CloseError, ConfigError};
use crate::manager::Manager;
use shared::Shared;

/// An async pool of connections made by a [`Manager`].
///
/// Cheap to clone: clones share the same connections. The pool closes its
/// idle connections when the last clone and the last [`Conn`] are dropped;
/// call [`close`](Pool::close) for an orderly shutdown.
///
/// ```
/// use std::time::Duration;
/// use stormpool::sim::{SimConfig, SimManager};
/// use stormpool::{AcquireOptions, Pool};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(SimManager::new(SimConfig::default()))
///     .max_size(16)
///     .acquire_timeout(Duration::from_secs(1))
///     .build()?;
///
/// let mut conn = pool.get().await?;
/// conn.query().await?;
/// drop(conn); // back to the pool
///
/// let conn = pool
///     .get_with(AcquireOptions::new().timeout(Duration::from_millis(50)))
///     .await?;
/// # drop(conn);
/// # Ok(())
/// # }
/// ```
pub struct Pool<M: Manager> {
    shared: Arc<Shared<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            shared: self.shared.clone(),
        }
    }
}

impl<M: Manager> fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl<M: Manager> Pool<M> {
    /// Starts building a pool around `manager`.
    pub fn builder(manager: M) -> Builder<M> {
        Builder::new(manager)
    }

    pub(crate) fn from_parts(manager: M, config: Config) -> Self {
        let pool = Pool {
            shared: Arc::new(Shared::new(manager, config)),
        };
        // Inside a runtime the maintenance task starts now (and with it
        // `min_idle`); outside, with the first request.
        pool.shared.ensure_started();
        pool
    }

    /// Gets a connection with the default options: the pool's
    /// `acquire_timeout`, [`Priority::Normal`], no fairness key, no settings.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future at any await point loses nothing. A
    /// waiting request leaves the queue in O(1); a connection already handed
    /// to it goes to the next live waiter or the idle store; a connection
    /// dropped while being probed or configured is closed (its session state
    /// is unknown) and its slot freed. A connect started for the request runs
    /// on as its own task and its connection serves the next request.
    #[track_caller]
    pub fn get(&self) -> impl Future<Output = Result<Conn<M>, AcquireError<M::Error>>> + Send + '_ {
        let site = Location::caller();
        async move { self.shared.acquire(&AcquireOptions::new(), site).await }
    }

    /// Gets a connection with per-request options: deadline, priority class,
    /// fairness key and session settings.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`get`](Pool::get).
    #[track_caller]
    pub fn get_with(
        &self,
        options: AcquireOptions,
    ) -> impl Future<Output = Result<Conn<M>, AcquireError<M::Error>>> + Send + '_ {
        let site = Location::caller();
        async move { self.shared.acquire(&options, site).await }
    }

    /// A snapshot of sizes, waiters and counters, taken in O(1).
    pub fn status(&self) -> Status {
        self.shared.status()
    }

    /// Publishes the pool's counters and gauges through the `metrics`
    /// facade now (the maintenance task does so at least once a second);
    /// call it from a scrape handler for numbers that are fresh to the
    /// moment. See [`observe`] for the series.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn publish_metrics(&self) {
        self.shared.publish_metrics();
    }

    /// The pool's health and readiness; see [`health`](crate::health).
    /// O(1), under the pool lock.
    pub fn health(&self) -> crate::Health {
        self.shared.health()
    }

    /// Changes `max_size` at run time. Growing serves waiting requests at
    /// once; shrinking closes idle connections first and the others as they
    /// come back (never one in use).
    pub fn resize(&self, max_size: usize) -> Result<(), ConfigError> {
        if max_size == 0 {
            return Err(ConfigError::Zero { field: "max_size" });
        }
        let min_idle = self.shared.config.min_idle;
        if min_idle > max_size {
            return Err(ConfigError::MinIdleAboveMaxSize { min_idle, max_size });
        }
        let config = &self.shared.config;
        self.shared
            .transition(|state, now, fx| state.resize(now, max_size, config, fx));
        Ok(())
    }

    /// Stops handing out connections: requests queue (and time out by their
    /// deadlines) until [`resume`](Pool::resume). Connections in use are
    /// unaffected. Use it to fence the database during a failover.
    pub fn pause(&self) {
        self.shared.transition(|state, _, _| state.pause());
    }

    /// Serves requests again after [`pause`](Pool::pause).
    pub fn resume(&self) {
        let config = &self.shared.config;
        self.shared
            .transition(|state, now, fx| state.resume(now, config, fx));
    }

    /// Closes the pool: new requests fail with [`AcquireError::Closed`] at
    /// once, every waiting request is woken with `Closed`, idle connections
    /// are closed, and the connections in use are closed as they come back.
    /// Waits at most `drain_timeout` for them.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the pool is closed by the first poll; dropping the future
    /// only stops the waiting for the drain.
    pub async fn close(&self) -> Result<(), CloseError> {
        self.shared.close().await
    }

    /// Whether [`close`](Pool::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().is_closed()
    }

    /// The manager.
    pub fn manager(&self) -> &M {
        &self.shared.manager
    }

    /// The configuration the pool was built with (`max_size` as built;
    /// [`status`](Pool::status) shows the current one).
    pub fn config(&self) -> &Config {
        &self.shared.config
    }
}
