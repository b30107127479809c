//! What the shared fault and statement scenarios need to know about
//! PostgreSQL, and helpers of the adapter's own tests.
#![allow(dead_code)]

use std::time::Duration;

use stormpool::{Conn, Pool};
use stormpool_postgres::tokio_postgres::error::SqlState;
use stormpool_postgres::tokio_postgres::{self, NoTls, SimpleQueryMessage};
use stormpool_postgres::{Classify, PgConnection, PgManager};
use stormpool_testkit::scenarios::{Harness, QueryError};
use stormpool_testkit::server::Server;
use stormpool_testkit::statements::{StatementError, StatementHarness, StatementStats};
use stormpool_testkit::transactions::TransactionHarness;

/// The live database's URL, or `None` (skip) when unset outside CI.
pub fn url() -> Option<String> {
    stormpool_testkit::db::pg_url()
}

pub fn config(url: &str, application_name: &str) -> tokio_postgres::Config {
    let mut config: tokio_postgres::Config = url.parse().expect("STORMPOOL_PG_URL");
    config.application_name(application_name);
    config
}

pub fn pool(url: &str, application_name: &str) -> Pool<PgManager> {
    Pool::builder(PgManager::new(config(url, application_name)))
        .max_size(4)
        .build()
        .expect("pool config")
}

/// A connection of the test's own, outside any pool.
pub async fn side(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("side connection");
    tokio::spawn(connection);
    client
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

pub struct Pg;

impl Harness for Pg {
    type M = PgManager;
    const SERVER: Server = Server::Postgres;

    fn manager(url: &str, tag: &str) -> PgManager {
        PgManager::new(config(url, tag))
    }

    async fn session(conn: &mut Conn<PgManager>) -> Result<u64, QueryError> {
        let messages = conn
            .simple_query("SELECT pg_backend_pid()")
            .await
            .map_err(|e| QueryError {
                message: stormpool_testkit::load::chain(&e),
                connection_error: e.is_connection_error(),
            })?;
        let pid = messages.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).and_then(|v| v.parse().ok()),
            _ => None,
        });
        Ok(pid.expect("pg_backend_pid() returns a row"))
    }

    async fn kill_sessions(url: &str, tag: &str) -> Vec<u64> {
        let client = side(url).await;
        // The filter runs first (OFFSET 0 keeps the planner from merging
        // the subquery and calling the function on other rows).
        let rows = client
            .query(
                "SELECT pid FROM \
                 (SELECT pid FROM pg_stat_activity \
                  WHERE application_name = $1 AND pid <> pg_backend_pid() OFFSET 0) s \
                 WHERE pg_terminate_backend(pid)",
                &[&tag],
            )
            .await
            .expect("pg_terminate_backend");
        let pids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
        // Signalled all at once; now wait until every one is gone.
        for _ in 0..1000 {
            let left: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
                    &[&pids],
                )
                .await
                .expect("pg_stat_activity")
                .get(0);
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        pids.into_iter().map(|pid| pid as u64).collect()
    }

    fn freeze_target(session: u64) -> Option<u32> {
        u32::try_from(session).ok()
    }

    async fn read_setting(conn: &mut Conn<PgManager>, name: &str) -> String {
        tracked_scalar(conn, &format!("SHOW {name}"))
            .await
            .expect("SHOW returns a row")
    }
}

impl StatementHarness for Pg {
    type Observer = tokio_postgres::Client;

    async fn observer(url: &str) -> tokio_postgres::Client {
        side(url).await
    }

    async fn is_running(observer: &mut tokio_postgres::Client, session: u64, marker: &str) -> bool {
        let pid = i32::try_from(session).expect("a backend pid");
        let running: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE pid = $1 AND state = 'active' AND strpos(query, $2) > 0",
                &[&pid, &marker],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        running > 0
    }

    async fn sleep(
        conn: &mut Conn<PgManager>,
        seconds: f64,
        marker: &str,
    ) -> Result<(), StatementError> {
        conn.simple_query(&format!("SELECT pg_sleep({seconds}) /* {marker} */"))
            .await
            .map(drop)
            .map_err(|e| StatementError {
                message: stormpool_testkit::load::chain(&e),
                timed_out: e.code() == Some(&SqlState::QUERY_CANCELED),
            })
    }

    async fn statement_bound_ms(conn: &mut Conn<PgManager>) -> u64 {
        let ms: i64 = conn
            .query_one(
                "SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout'",
                &[],
            )
            .await
            .expect("pg_settings")
            .get(0);
        u64::try_from(ms).expect("a bound of 0 or more")
    }

    /// A cancel request is no session: `pg_stat_activity` never lists it.
    const SIDE_SESSIONS: usize = 0;

    async fn sessions(observer: &mut tokio_postgres::Client, tag: &str) -> usize {
        let n: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&tag],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        usize::try_from(n).expect("a count")
    }

    fn stats(manager: &PgManager) -> StatementStats {
        let stats = manager.stats();
        StatementStats {
            stopped_by_deadline: stats.stopped_by_deadline,
            bound_changes: stats.bound_changes,
            abandoned: stats.abandoned,
        }
    }
}

fn statement_error(e: stormpool_postgres::Error) -> StatementError {
    StatementError {
        timed_out: e.code() == Some(&SqlState::QUERY_CANCELED),
        message: stormpool_testkit::load::chain(&e),
    }
}

impl TransactionHarness for Pg {
    async fn create_table(url: &str, table: &str) {
        side(url)
            .await
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (tag text)"
            ))
            .await
            .expect("create table");
    }

    async fn committed(url: &str, table: &str, tag: &str) -> i64 {
        side(url)
            .await
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE tag = $1"),
                &[&tag],
            )
            .await
            .expect("count")
            .get(0)
    }

    async fn execute(conn: &mut Conn<PgManager>, sql: &str) -> Result<(), StatementError> {
        conn.batch_execute(sql).await.map_err(statement_error)
    }

    async fn count(
        conn: &mut Conn<PgManager>,
        table: &str,
        tag: &str,
    ) -> Result<i64, StatementError> {
        conn.query_one(
            &format!("SELECT count(*) FROM {table} WHERE tag = $1"),
            &[&tag],
        )
        .await
        .map(|row| row.get(0))
        .map_err(statement_error)
    }

    async fn in_transaction(conn: &mut Conn<PgManager>) -> Result<bool, StatementError> {
        // Inside a transaction block, the transaction started before this
        // statement did (in the simple protocol; the extended one starts a
        // statement's clock at its Bind).
        let messages = conn
            .simple_query("SELECT transaction_timestamp() <> statement_timestamp()")
            .await
            .map_err(statement_error)?;
        Ok(messages
            .iter()
            .any(|m| matches!(m, SimpleQueryMessage::Row(row) if row.get(0) == Some("t"))))
    }

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

    fn rolled_back_on_return(manager: &PgManager) -> u64 {
        manager.stats().rolled_back_on_return
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
