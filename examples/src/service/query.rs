//! `GET /query`: one query through the pool, within the request's deadline.
//!
//! The deadline bounds the whole request: the wait for a connection (passed
//! to the pool as [`AcquireOptions::deadline`](stormpool::AcquireOptions::deadline),
//! which also hands it to the manager to bound the statement on the server:
//! the simulated database and the PostgreSQL adapter's tracked statements
//! both stop it there) and the query itself.
//!
//! | outcome | status |
//! |---|---|
//! | the query ran | 200, a small JSON body |
//! | no connection: shed, too many waiting, closed | 503 (see [`rejection`](super::rejection)) |
//! | no connection before the deadline | 504 |
//! | the statement ran into the deadline, or past `max_hold` (revoked) | 504 |
//! | the database failed (connect, query) | 502 |

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use stormpool::clock::Instant;
use stormpool::sim::{SimConnection, SimError, SimManager};
use stormpool::{Conn, Manager};
use stormpool_postgres::tokio_postgres::error::SqlState;
use stormpool_postgres::{PgConnection, PgManager};

use super::options::RequestOptions;
use super::rejection::{self, Chain, Step};
use super::App;

/// A [`Manager`] whose connections can run the service's one query.
pub trait QueryBackend: Manager {
    /// Runs the query on `conn` and describes its result in a few words.
    ///
    /// # Cancel safety
    ///
    /// The service drops the future at the request's deadline and returns
    /// the connection to the pool; implement
    /// [`Manager::statement_in_flight`] so that the pool cancels a
    /// statement left running and drains the connection before reuse.
    fn run_query(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<String, QueryError>> + Send;
}

/// Why the query failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum QueryError {
    /// The server stopped the statement at the request's deadline, which
    /// the pool passed on at checkout (PostgreSQL: SQLSTATE `57014`,
    /// `query_canceled`).
    StoppedAtDeadline,
    /// The database failed the query.
    Failed(Box<dyn Error + Send + Sync>),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::StoppedAtDeadline => {
                f.write_str("the statement was stopped at the request's deadline")
            }
            QueryError::Failed(_) => f.write_str("the query failed"),
        }
    }
}

impl Error for QueryError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            QueryError::StoppedAtDeadline => None,
            QueryError::Failed(error) => Some(&**error),
        }
    }
}

impl QueryBackend for SimManager {
    async fn run_query(&self, conn: &mut SimConnection) -> Result<String, QueryError> {
        match conn.query().await {
            Ok(()) => Ok(format!("simulated query on session {}", conn.id())),
            Err(SimError::StatementTimeout) => Err(QueryError::StoppedAtDeadline),
            Err(error) => Err(QueryError::Failed(Box::new(error))),
        }
    }
}

impl QueryBackend for PgManager {
    async fn run_query(&self, conn: &mut PgConnection) -> Result<String, QueryError> {
        let failed = |error: stormpool_postgres::Error| match error.code() {
            Some(&SqlState::QUERY_CANCELED) => QueryError::StoppedAtDeadline,
            _ if error.is_timeout() => QueryError::StoppedAtDeadline,
            _ => QueryError::Failed(Box::new(error)),
        };
        let row = conn
            .query_one("SELECT 1::int4", &[])
            .await
            .map_err(failed)?;
        let one: i32 = row
            .try_get(0)
            .map_err(|e| failed(stormpool_postgres::Error::from(e)))?;
        Ok(format!("SELECT 1 returned {one}"))
    }
}

/// The body of a served query.
#[derive(Debug, Serialize)]
struct Answer {
    pool: String,
    connection: u64,
    priority: &'static str,
    waited_ms: f64,
    result: String,
}

/// The `/query` handler.
pub(crate) async fn query<M: QueryBackend>(
    State(app): State<Arc<App<M>>>,
    Extension(options): Extension<RequestOptions>,
) -> Response {
    let start = Instant::now();
    let mut conn = match app.pool.get_with(options.acquire_options()).await {
        Ok(conn) => conn,
        Err(error) => return rejection::acquire_error(Step::Pool, &error),
    };
    let waited = start.elapsed();
    let ran = tokio::time::timeout_at(options.deadline, app.pool.manager().run_query(&mut conn));
    match ran.await {
        Ok(Ok(result)) => Json(Answer {
            pool: app.pool.config().name.clone(),
            connection: Conn::id(&conn),
            priority: options.priority.as_str(),
            waited_ms: waited.as_secs_f64() * 1e3,
            result,
        })
        .into_response(),
        // Checked first: a revoked lease fails its query with whatever the
        // server's cancel looks like to the driver.
        Ok(Err(_)) if Conn::is_revoked(&conn) => (
            StatusCode::GATEWAY_TIMEOUT,
            "query: held the connection past max_hold; the pool revoked it and cancelled the statement",
        )
            .into_response(),
        Ok(Err(QueryError::StoppedAtDeadline)) => (
            StatusCode::GATEWAY_TIMEOUT,
            format!("query: {}", QueryError::StoppedAtDeadline),
        )
            .into_response(),
        Ok(Err(error)) => {
            // The cause goes to the log, not to the client.
            tracing::warn!(pool = %app.pool.config().name, error = %Chain(&error), "query failed");
            (StatusCode::BAD_GATEWAY, format!("query: {error}")).into_response()
        }
        // Dropping the connection with its statement still running hands
        // it back to the pool, which cancels the statement and keeps the
        // connection from the next request until the server is idle on it,
        // when the manager can tell (`Manager::statement_in_flight`).
        Err(_elapsed) => (
            StatusCode::GATEWAY_TIMEOUT,
            "query: the request's deadline passed while the query ran",
        )
            .into_response(),
    }
}
