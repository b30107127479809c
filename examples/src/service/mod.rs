//! An HTTP service (axum) whose health check tells the truth about its
//! connection pool, and which sheds load instead of queueing without bound.
//!
//! A server can run out of database connections (deadlocked queries hold
//! them, with no timeout) while its health check, which never looks at the
//! database, keeps saying "fine", and requests stall for hours. This
//! service is built so that cannot happen quietly:
//!
//! | endpoint | what it answers |
//! |---|---|
//! | `GET /healthz` | 200 `ok` while the process serves HTTP; never the pool |
//! | `GET /readyz` | 200 with the pool's health, or 503 with the reasons it is not ready |
//! | `GET /metrics` | the Prometheus text, with the pool's series |
//! | `GET /query` | one query through the pool, within the request's deadline |
//!
//! - **Every request has a deadline** ([`DEADLINE_HEADER`], 1 s by
//!   default), which bounds its wait for a connection and its query.
//! - **Stuck queries are revoked**: the pool's `max_hold` cancels a
//!   statement held past it on the server and replaces its connection.
//! - **Readiness reads [`Pool::health`]**: a wedged pool, revoked leases or
//!   an unreachable database turn `/readyz` to 503, so the load balancer
//!   stops sending traffic here; mere shedding does not.
//! - **Load is shed at the door**: a [`Gate`](stormpool::gate::Gate)
//!   with a few times the pool's capacity sits in front of `/query`
//!   ([`GateLayer`](stormpool::gate::GateLayer)), with the same
//!   deadline, priority class ([`PRIORITY_HEADER`]) and fairness key
//!   ([`TENANT_HEADER`]) as the pool: under overload, requests beyond what
//!   the pool can drain are answered 503 with `Retry-After` before they
//!   take memory or a place in the pool's queue.
//!
//! The service runs over any [`QueryBackend`]: the simulated database
//! ([`SimManager`](stormpool::sim::SimManager)) or PostgreSQL
//! ([`PgManager`](stormpool_postgres::PgManager)). Run it with
//! `cargo run -p stormpool-examples --example service`.
//!
#![doc = include_str!("../../README-health.md")]

mod options;
mod probes;
mod query;
mod rejection;

use std::fmt;
use std::future::IntoFuture;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::middleware;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{BuildError, PrometheusHandle};
use stormpool::gate::{Gate, GateLayer};
use stormpool::{AcquireOptions, ConfigError, Manager, Pool};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;

pub use options::{
    parse_priority, DeadlineLimits, HeaderError, RequestOptions, DEADLINE_HEADER, PRIORITY_HEADER,
    TENANT_HEADER,
};
pub use probes::prometheus;
pub use query::{QueryBackend, QueryError};

/// How the service is set up. Plain data; every field documents its default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// Where to listen. Default: `127.0.0.1:3000`; port 0 lets the system
    /// choose ([`Service::addr`] tells which).
    pub listen: SocketAddr,
    /// The pool's name: the `pool` label of its metrics. Default: `"service"`.
    pub pool_name: String,
    /// The most database connections. Default: 8.
    pub pool_size: usize,
    /// Connections the pool keeps open when idle, so that `/readyz` notices
    /// an unreachable database before the first request does. Default: 1.
    pub min_idle: usize,
    /// A connection held longer is revoked: its statement cancelled on the
    /// server, its slot given to a replacement. Default: 10 s.
    pub max_hold: Duration,
    /// The deadline of a request without [`DEADLINE_HEADER`]. Default: 1 s.
    pub default_deadline: Duration,
    /// The longest deadline a request may ask for. Default: 30 s.
    pub max_deadline: Duration,
    /// The requests admitted to `/query` at once. `None`: four times
    /// `pool_size`, enough to keep the pool's queue fed without letting it
    /// grow past what the pool drains within a deadline. Default: `None`.
    pub gate_capacity: Option<usize>,
    /// The pool's maintenance period while requests wait. Default: 10 ms.
    pub maintenance_tick: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 3000)),
            pool_name: "service".to_owned(),
            pool_size: 8,
            min_idle: 1,
            max_hold: Duration::from_secs(10),
            default_deadline: Duration::from_secs(1),
            max_deadline: Duration::from_secs(30),
            gate_capacity: None,
            maintenance_tick: Duration::from_millis(10),
        }
    }
}

/// Why the service did not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The Prometheus recorder could not be installed.
    Metrics(BuildError),
    /// The pool's settings were refused.
    Pool(ConfigError),
    /// The gate's settings were refused.
    Gate(ConfigError),
    /// The listener could not be bound.
    Bind(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Metrics(_) => f.write_str("could not install the metrics recorder"),
            StartError::Pool(_) => f.write_str("invalid pool settings"),
            StartError::Gate(_) => f.write_str("invalid gate settings"),
            StartError::Bind(_) => f.write_str("could not bind the listener"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Metrics(error) => Some(error),
            StartError::Pool(error) | StartError::Gate(error) => Some(error),
            StartError::Bind(error) => Some(error),
        }
    }
}

/// What the handlers share.
struct App<M: Manager> {
    pool: Pool<M>,
    metrics: PrometheusHandle,
}

/// The service's routes over `pool`, with `gate` in front of `/query`.
///
/// `metrics` must come from a recorder installed before `pool` was built
/// (see [`prometheus`]).
pub fn router<M: QueryBackend>(
    pool: Pool<M>,
    metrics: PrometheusHandle,
    gate: Gate,
    limits: DeadlineLimits,
) -> Router {
    let app = Arc::new(App { pool, metrics });
    let gate = GateLayer::new(gate).options(|request: &Request| {
        request
            .extensions()
            .get::<RequestOptions>()
            .map_or_else(AcquireOptions::new, RequestOptions::acquire_options)
    });
    let pooled = Router::new()
        .route("/query", get(query::query::<M>))
        .route_layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(rejection::gate_rejected))
                .layer(gate),
        )
        // Outermost: the headers are read before the gate needs them.
        .route_layer(middleware::map_request_with_state(limits, options::attach));
    Router::new()
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz::<M>))
        .route("/metrics", get(probes::metrics::<M>))
        .merge(pooled)
        .with_state(app)
}

/// A running service. Dropping it stops the server at once; call
/// [`shutdown`](Service::shutdown) to let requests in flight finish.
#[derive(Debug)]
pub struct Service<M: Manager> {
    addr: SocketAddr,
    pool: Pool<M>,
    max_deadline: Duration,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<io::Result<()>>,
    upkeep: JoinHandle<()>,
}

impl<M: QueryBackend> Service<M> {
    /// Installs the Prometheus recorder (once per process), builds the pool
    /// around `manager` and the gate, and starts serving on
    /// `config.listen`.
    ///
    /// # Errors
    ///
    /// The recorder, the pool or the gate refused their settings, or the
    /// listener could not be bound.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes leaves no server running.
    pub async fn start(manager: M, config: ServiceConfig) -> Result<Self, StartError> {
        // The recorder first: the pool creates its histogram handles when it
        // is built.
        let metrics = prometheus().map_err(StartError::Metrics)?;
        let pool = Pool::builder(manager)
            .name(config.pool_name.clone())
            .max_size(config.pool_size)
            .min_idle(config.min_idle)
            .max_hold(Some(config.max_hold))
            .acquire_timeout(config.default_deadline)
            .maintenance_tick(config.maintenance_tick)
            .build()
            .map_err(StartError::Pool)?;
        let capacity = config
            .gate_capacity
            .unwrap_or(config.pool_size.saturating_mul(4));
        let gate = Gate::builder()
            .capacity(capacity)
            .default_timeout(config.default_deadline)
            .build()
            .map_err(StartError::Gate)?;
        let limits = DeadlineLimits {
            default: config.default_deadline,
            max: config.max_deadline,
        };
        let routes = router(pool.clone(), metrics.clone(), gate, limits);

        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(StartError::Bind)?;
        let addr = listener.local_addr().map_err(StartError::Bind)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let serve = axum::serve(listener, routes).with_graceful_shutdown(async move {
            // A dropped sender stops the server as well.
            let _ = stopped.await;
        });
        Ok(Service {
            addr,
            pool,
            max_deadline: config.max_deadline,
            stop: Some(stop),
            server: tokio::spawn(serve.into_future()),
            upkeep: tokio::spawn(probes::upkeep(metrics)),
        })
    }
}

impl<M: Manager> Service<M> {
    /// Where the service listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The service's pool.
    pub fn pool(&self) -> &Pool<M> {
        &self.pool
    }

    /// Stops accepting connections, lets the requests in flight finish (at
    /// most the longest deadline a request may have), then closes the pool.
    ///
    /// # Errors
    ///
    /// The server failed while it ran.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the server at once, as dropping the
    /// service does.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = tokio::time::timeout(self.max_deadline, &mut self.server).await;
        // Requests still running past their longest deadline are cut off
        // when the server task is aborted on drop.
        let _ = self.pool.close().await;
        match served {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(io::Error::other(join)),
            Err(_elapsed) => Ok(()),
        }
    }
}

impl<M: Manager> Drop for Service<M> {
    fn drop(&mut self) {
        self.server.abort();
        self.upkeep.abort();
    }
}
