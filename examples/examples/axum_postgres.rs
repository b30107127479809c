//! A small HTTP service on stormpool-postgres and axum, in one file you can
//! copy: configuration from the environment (`DATABASE_URL`, or libpq's
//! `PG*` variables), a request deadline that bounds
//! everything the request does (waiting for a connection, and each
//! statement, on the server and on the client), a transaction, a cached
//! prepared statement, one error type for `?`, and a readiness probe. The
//! MySQL twin is `axum_mysql.rs`.
//!
//! ```text
//! DATABASE_URL=postgres://root@127.0.0.1:5432/test \
//!     cargo run -p stormpool-examples --example axum-postgres
//! curl localhost:3000/accounts/1
//! curl -X POST 'localhost:3000/transfer?from=1&to=2&amount=5'
//! curl -X POST -H 'x-deadline-ms: 100' 'localhost:3000/transfer?from=1&to=2&amount=5&think_ms=500'
//! curl localhost:3000/readyz
//! ```
//!
//! Behind a PgBouncer in transaction mode, say so:
//! `DATABASE_POOLER=transaction DATABASE_URL=postgres://root@127.0.0.1:6432/test`
//! (statements then run unnamed, and the deadline's bound is set per
//! transaction: see stormpool-postgres's "Behind PgBouncer").
//!
//! The last transfer gives up at its 100 ms deadline in the middle of its
//! transaction. Its connection goes back to the pool with the transaction
//! open and a statement running: the pool cancels the statement and rolls
//! the transaction back before the connection serves anyone else, so the
//! next requests never run inside it.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use stormpool::AcquireOptions;
use stormpool_postgres::tokio_postgres::error::SqlState;
use stormpool_postgres::{AcquireError, Error, ManagerConfig, PgManager, Pool, Pooler};
use tokio::time::Instant;

/// The header a caller sets its budget with, in milliseconds.
pub const DEADLINE_HEADER: &str = "x-deadline-ms";
/// The budget of a request that sets none.
const DEFAULT_BUDGET: Duration = Duration::from_secs(1);

/// Builds the pool: 16 connections, each named after the service. Behind a
/// PgBouncer in transaction mode, pass a manager with
/// [`Pooler::Transaction`] (see `main`).
pub fn pool(manager: PgManager) -> Result<Pool, Box<dyn std::error::Error>> {
    // PgBouncer keeps `application_name` per client, whichever server
    // session serves it, so the hook's `SET` is safe behind it too.
    let manager = manager.on_connect(|conn| {
        Box::pin(async move {
            conn.batch_execute("SET application_name = 'axum-postgres'")
                .await?;
            Ok(())
        })
    });
    Ok(Pool::builder(manager).max_size(16).build()?)
}

/// Creates the accounts table and two accounts, if missing.
pub async fn setup(pool: &Pool) -> Result<(), Error> {
    let conn = pool.get().await?;
    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS accounts (id int PRIMARY KEY, balance bigint NOT NULL);
         INSERT INTO accounts VALUES (1, 1000), (2, 1000) ON CONFLICT DO NOTHING",
    )
    .await
}

/// The service's routes.
pub fn router(pool: Pool) -> Router {
    Router::new()
        .route("/accounts/{id}", get(account))
        .route("/transfer", post(transfer))
        .route("/readyz", get(ready))
        .with_state(pool)
}

/// The request's deadline, from its header or the default budget.
fn deadline(headers: &HeaderMap) -> Instant {
    let budget = headers
        .get(DEADLINE_HEADER)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .map_or(DEFAULT_BUDGET, Duration::from_millis);
    Instant::now() + budget
}

/// Runs `work` until `deadline`: past it the work is dropped wherever it
/// is (the pool cleans up after it) and the caller gets 504.
async fn within<T>(
    deadline: Instant,
    work: impl std::future::Future<Output = Result<T, AppError>>,
) -> Result<T, AppError> {
    tokio::time::timeout_at(deadline, work)
        .await
        .unwrap_or(Err(AppError::DeadlinePassed))
}

#[derive(Serialize)]
struct Account {
    id: i32,
    balance: i64,
}

async fn account(
    State(pool): State<Pool>,
    Path(id): Path<i32>,
    headers: HeaderMap,
) -> Result<Json<Account>, AppError> {
    let deadline = deadline(&headers);
    within(deadline, async {
        let conn = pool
            .get_with(AcquireOptions::new().deadline(deadline))
            .await?;
        let statement = conn
            .prepare_cached("SELECT balance FROM accounts WHERE id = $1")
            .await?;
        let row = conn
            .query_opt(&statement, &[&id])
            .await?
            .ok_or(AppError::NotFound)?;
        Ok(Json(Account {
            id,
            balance: row.try_get(0).map_err(Error::from)?,
        }))
    })
    .await
}

#[derive(Deserialize)]
struct Transfer {
    from: i32,
    to: i32,
    amount: i64,
    /// Work between the two updates (to show a request giving up in the
    /// middle of its transaction).
    #[serde(default)]
    think_ms: u64,
}

async fn transfer(
    State(pool): State<Pool>,
    Query(t): Query<Transfer>,
    headers: HeaderMap,
) -> Result<StatusCode, AppError> {
    let deadline = deadline(&headers);
    within(deadline, async {
        let mut conn = pool
            .get_with(AcquireOptions::new().deadline(deadline))
            .await?;
        let tx = conn.transaction().await?;
        tx.execute(
            "UPDATE accounts SET balance = balance - $2 WHERE id = $1",
            &[&t.from, &t.amount],
        )
        .await?;
        if t.think_ms > 0 {
            let seconds = t.think_ms as f64 / 1000.0;
            tx.execute("SELECT pg_sleep($1)", &[&seconds]).await?;
        }
        tx.execute(
            "UPDATE accounts SET balance = balance + $2 WHERE id = $1",
            &[&t.to, &t.amount],
        )
        .await?;
        tx.commit().await?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

async fn ready(State(pool): State<Pool>) -> Response {
    let health = pool.health();
    let status = if health.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, format!("{health:?}\n")).into_response()
}

/// What a handler can fail with.
#[derive(Debug)]
pub enum AppError {
    /// The database or the pool: one type for every `?`.
    Db(Error),
    /// No such account.
    NotFound,
    /// The request's deadline passed.
    DeadlinePassed,
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Db(e)
    }
}

impl From<AcquireError> for AppError {
    fn from(e: AcquireError) -> Self {
        AppError::Db(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            AppError::NotFound => (StatusCode::NOT_FOUND, "no such account".to_owned()),
            AppError::DeadlinePassed => (
                StatusCode::GATEWAY_TIMEOUT,
                "the request's deadline passed".to_owned(),
            ),
            AppError::Db(e) => {
                let status = match e.acquire_error() {
                    // Overloaded: the caller should back off, not retry now.
                    Some(a) if a.is_overload() => StatusCode::SERVICE_UNAVAILABLE,
                    // The client gave up on the server, or the server
                    // stopped the statement at the request's deadline.
                    _ if e.is_timeout() || e.code() == Some(&SqlState::QUERY_CANCELED) => {
                        StatusCode::GATEWAY_TIMEOUT
                    }
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                // Display carries the cause and never the password.
                (status, e.to_string())
            }
        };
        (status, message + "\n").into_response()
    }
}

#[tokio::main]
async fn main() {
    // Display, not Debug: the message says what failed and why.
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // DATABASE_URL, completed by libpq's PGHOST, PGUSER, PGPASSWORD...;
    // DATABASE_POOLER=transaction behind a PgBouncer in transaction mode.
    let mut options = ManagerConfig::default();
    if std::env::var("DATABASE_POOLER").as_deref() == Ok("transaction") {
        options.pooler = Pooler::Transaction;
    }
    let pool = pool(PgManager::from_env()?.options(options))?;
    setup(&pool).await?;
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router(pool)).await?;
    Ok(())
}
