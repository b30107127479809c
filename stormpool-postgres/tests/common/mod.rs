//! What the shared fault and statement scenarios need to know about
//! PostgreSQL, and helpers of the adapter's own tests.
#![allow(dead_code)]

#[path = "../../../stormpool-testkit/sides/tokio_postgres.rs"]
mod pg_side;

use std::time::Duration;

use stormpool::{Conn, Pool};
use stormpool_postgres::tokio_postgres::error::SqlState;
use stormpool_postgres::tokio_postgres::{self, SimpleQueryMessage};
use stormpool_postgres::{Classify, PgConnection, PgManager};
use stormpool_testkit::errors::{Classified, ErrorHarness};
use stormpool_testkit::load::chain;
use stormpool_testkit::scenarios::{Failure, Harness};
use stormpool_testkit::server::Server;
use stormpool_testkit::statements::{StatementError, StatementHarness, StatementStats};
use stormpool_testkit::transactions::TransactionHarness;

pub use pg_side::{config, PgSide};

/// A connection of the test's own, outside any pool.
pub async fn side(url: &str) -> tokio_postgres::Client {
    pg_side::connect(url).await
}

/// The live database's URL, or `None` (skip) when unset outside CI.
pub fn url() -> Option<String> {
    stormpool_testkit::db::pg_url()
}

pub fn pool(url: &str, application_name: &str) -> Pool<PgManager> {
    Pool::builder(PgManager::new(config(url, application_name)))
        .max_size(4)
        .build()
        .expect("pool config")
}

/// The first column of the first row of a simple query.
pub async fn scalar(client: &tokio_postgres::Client, sql: &str) -> Option<String> {
    let messages = client.simple_query(sql).await.expect(sql);
    messages.into_iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
        _ => None,
    })
}

/// [`scalar`], through the pooled connection's tracked statements.
pub async fn tracked_scalar(conn: &PgConnection, sql: &str) -> Option<String> {
    let messages = conn.simple_query(sql).await.expect(sql);
    messages.into_iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
        _ => None,
    })
}

/// The rows of `sql`, with its one parameter `n`, through `query_raw`,
/// asserted to be `n`.
pub async fn raw_rows(conn: &PgConnection, sql: &str, n: i32) -> Vec<tokio_postgres::Row> {
    let rows = conn.query_raw(sql, [n]).await.expect("query_raw");
    let rows: Vec<_> = futures_util::TryStreamExt::try_collect(rows)
        .await
        .expect("rows");
    assert_eq!(rows.len(), usize::try_from(n).expect("a count"), "{sql}");
    rows
}

pub struct Pg;

fn failure(e: stormpool_postgres::Error) -> Failure {
    Failure {
        timed_out: e.code() == Some(&SqlState::QUERY_CANCELED),
        connection_error: e.is_connection_error(),
        message: chain(&e),
    }
}

fn statement_error(e: stormpool_postgres::Error) -> StatementError {
    failure(e).into()
}

impl Harness for Pg {
    type M = PgManager;
    const SERVER: Server = Server::Postgres;
    type Side = PgSide;

    fn manager(url: &str, tag: &str) -> PgManager {
        PgManager::new(config(url, tag))
    }

    async fn text(conn: &mut Conn<PgManager>, sql: &str) -> Result<Option<String>, Failure> {
        let messages = conn.simple_query(sql).await.map_err(failure)?;
        Ok(messages.into_iter().find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        }))
    }
}

impl StatementHarness for Pg {
    async fn execute(conn: &mut Conn<PgManager>, sql: &str) -> Result<(), StatementError> {
        conn.batch_execute(sql).await.map_err(statement_error)
    }

    /// A cancel request is no session: `pg_stat_activity` never lists it.
    const SIDE_SESSIONS: usize = 0;

    fn stats(manager: &PgManager) -> StatementStats {
        manager.stats()
    }
}

impl TransactionHarness for Pg {
    async fn insert_and_drop(conn: &mut Conn<PgManager>, table: &str, tag: &str) {
        let tx = conn.transaction().await.expect("BEGIN");
        tx.execute(&format!("INSERT INTO {table} (tag) VALUES ($1)"), &[&tag])
            .await
            .expect("INSERT");
    }

    async fn nested_rollback(
        conn: &mut Conn<PgManager>,
        table: &str,
        outer: &str,
        inner: &str,
    ) -> Result<(), StatementError> {
        let insert = format!("INSERT INTO {table} (tag) VALUES ($1)");
        let mut tx = conn.transaction().await.map_err(statement_error)?;
        tx.execute(&insert, &[&outer])
            .await
            .map_err(statement_error)?;
        let savepoint = tx.transaction().await.map_err(statement_error)?;
        savepoint
            .execute(&insert, &[&inner])
            .await
            .map_err(statement_error)?;
        savepoint.rollback().await.map_err(statement_error)?;
        tx.commit().await.map_err(statement_error)
    }
}

impl ErrorHarness for Pg {
    fn classify(e: &stormpool_postgres::Error) -> Classified {
        Classified {
            operation: format!("{:?}", e.operation()),
            code: e.sqlstate().map(|s| s.code().to_owned()),
            driver: e.as_driver().is_some(),
            connection_error: e.is_connection_error(),
            retryable: e.is_retryable(),
            timeout: e.is_timeout(),
        }
    }
}

/// The tests' PgBouncer (transaction mode, in front of the test database)
/// and the database's own URL, or `None` (skip) outside CI.
pub fn pgbouncer() -> Option<(
    std::sync::Arc<stormpool_testkit::pgbouncer::PgBouncer>,
    String,
)> {
    let bouncer = stormpool_testkit::pgbouncer::shared()?;
    Some((bouncer, url()?))
}

/// A manager for a connection through the pooler, in `pooler` mode.
pub fn pooled_manager(
    url: &str,
    application_name: &str,
    pooler: stormpool_postgres::Pooler,
) -> PgManager {
    let mut options = stormpool_postgres::ManagerConfig::default();
    options.pooler = pooler;
    PgManager::new(config(url, application_name)).options(options)
}

/// A pool of `size` through the pooler, in `pooler` mode.
pub fn pooled(
    url: &str,
    application_name: &str,
    pooler: stormpool_postgres::Pooler,
    size: usize,
) -> Pool<PgManager> {
    Pool::builder(pooled_manager(url, application_name, pooler))
        .max_size(size)
        .acquire_timeout(Duration::from_secs(10))
        .build()
        .expect("pool config")
}
