//! The endpoints a platform polls: liveness, readiness and metrics.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use stormpool::Manager;

use super::App;

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Histogram buckets for the pool's `_seconds` histograms (acquire wait,
/// hold, connect): from a fast checkout to a query stuck for a while.
const SECONDS_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The process's Prometheus recorder, installed as the global `metrics`
/// recorder by the first call; later calls return the same handle.
///
/// Call it before building a pool: the pool creates its histogram handles
/// when it is built, and a handle made before a recorder exists records
/// nothing.
///
/// # Errors
///
/// The first call found another global recorder already installed.
pub fn prometheus() -> Result<PrometheusHandle, BuildError> {
    static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut handle = HANDLE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = &*handle {
        return Ok(handle.clone());
    }
    let installed = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &SECONDS_BUCKETS)?
        .install_recorder()?;
    *handle = Some(installed.clone());
    Ok(installed)
}

/// Drains the recorder's histogram samples every few seconds. A scrape
/// drains them too; this bounds their memory when nothing scrapes. The
/// exporter's builder only spawns this task along with its own HTTP
/// listener, which the service does not use.
pub(crate) async fn upkeep(metrics: PrometheusHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        metrics.run_upkeep();
    }
}

/// `GET /healthz`: the process is alive and serving HTTP. Never looks at
/// the pool: restarting the process cures no database, and an orchestrator
/// that restarts every instance whose database is slow turns a slow
/// database into an outage.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: whether this instance should receive traffic, from the
/// pool's own view of what its requests experience.
///
/// 503 while the pool is unhealthy: wedged (requests arrive and none is
/// served), revoking leases stuck past `max_hold`, cut off from its
/// database, or closed. `Degraded` stays 200: an instance that sheds load
/// under overload is doing its job, and taking it out of rotation would
/// move its load onto the others until they shed too.
pub(crate) async fn readyz<M: Manager>(State(app): State<Arc<App<M>>>) -> Response {
    let health = app.pool.health();
    let status = if health.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, health.to_string()).into_response()
}

/// `GET /metrics`: the Prometheus text of every series the process records,
/// the pool's among them.
pub(crate) async fn metrics<M: Manager>(State(app): State<Arc<App<M>>>) -> Response {
    ([(CONTENT_TYPE, PROMETHEUS_TEXT)], app.metrics.render()).into_response()
}
