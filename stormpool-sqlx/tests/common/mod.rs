//! What the shared scenarios need to know about sqlx's PostgreSQL and
//! MariaDB connections, and helpers of the adapter's own tests.
#![allow(dead_code)]

use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor};
use stormpool::{Conn, Pool};
use stormpool_sqlx::{Error, MySqlManager, PgManager};
use stormpool_testkit::load::chain;
use stormpool_testkit::scenarios::{Harness, QueryError};
use stormpool_testkit::server::{mariadb_sql, Server};
use stormpool_testkit::statements::{StatementError, StatementHarness, StatementStats};
use stormpool_testkit::transactions::TransactionHarness;

/// The password of the MariaDB users the tests create.
pub const TEST_PASSWORD: &str = "stormpool-test-Pw-4711";

pub fn pg_url() -> Option<String> {
    stormpool_testkit::db::pg_url()
}

pub fn mysql_url() -> Option<String> {
    stormpool_testkit::db::mysql_url()
}

pub fn pg_options(url: &str, application_name: &str) -> PgConnectOptions {
    url.parse::<PgConnectOptions>()
        .expect("STORMPOOL_PG_URL")
        .application_name(application_name)
}

/// Creates (once) a MariaDB user `name` with [`TEST_PASSWORD`] and every
/// right on the test database.
pub fn ensure_user(name: &str) {
    let sql = format!(
        "CREATE USER IF NOT EXISTS '{name}'@'%' IDENTIFIED BY '{TEST_PASSWORD}'; \
         GRANT ALL ON test.* TO '{name}'@'%';"
    );
    mariadb_sql(&sql).expect("creating a test user");
}

/// `url`'s options, logging in as `user` with [`TEST_PASSWORD`].
pub fn mysql_options_as(url: &str, user: &str) -> MySqlConnectOptions {
    url.parse::<MySqlConnectOptions>()
        .expect("STORMPOOL_MYSQL_URL")
        .username(user)
        .password(TEST_PASSWORD)
}

pub fn pg_pool(url: &str, application_name: &str) -> Pool<PgManager> {
    Pool::builder(PgManager::new(pg_options(url, application_name)))
        .max_size(4)
        .build()
        .expect("pool config")
}

pub fn mysql_pool(url: &str) -> Pool<MySqlManager> {
    Pool::builder(MySqlManager::from_url(url).expect("STORMPOOL_MYSQL_URL"))
        .max_size(4)
        .build()
        .expect("pool config")
}

/// A PostgreSQL connection of the test's own, outside any pool.
pub async fn pg_side(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("side connection")
}

/// A MariaDB connection of the test's own, outside any pool.
pub async fn mysql_side(url: &str) -> MySqlConnection {
    MySqlConnection::connect(url)
        .await
        .expect("side connection")
}

fn query_error(e: sqlx::Error) -> QueryError {
    let e = Error::from(e);
    QueryError {
        message: chain(&e),
        connection_error: e.is_connection_error(),
    }
}

fn statement_error(e: sqlx::Error) -> StatementError {
    let e = Error::from(e);
    let code = e.sqlstate().map(|c| c.into_owned());
    let number = e
        .database_error()
        .and_then(|d| d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
        .map(|d| d.number());
    StatementError {
        timed_out: code.as_deref() == Some("57014") || number == Some(1969),
        message: chain(&e),
    }
}

/// PostgreSQL through sqlx.
pub struct SqlxPg;

impl Harness for SqlxPg {
    type M = PgManager;
    const SERVER: Server = Server::Postgres;

    fn manager(url: &str, tag: &str) -> PgManager {
        PgManager::new(pg_options(url, tag))
    }

    async fn session(conn: &mut Conn<PgManager>) -> Result<u64, QueryError> {
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut **conn)
            .await
            .map_err(query_error)?;
        Ok(pid as u64)
    }

    async fn kill_sessions(url: &str, tag: &str) -> Vec<u64> {
        let mut side = pg_side(url).await;
        // The filter runs first (OFFSET 0 keeps the planner from calling
        // the function on other rows).
        let pids: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM \
             (SELECT pid FROM pg_stat_activity \
              WHERE application_name = $1 AND pid <> pg_backend_pid() OFFSET 0) s \
             WHERE pg_terminate_backend(pid)",
        )
        .bind(tag)
        .fetch_all(&mut side)
        .await
        .expect("pg_terminate_backend");
        for _ in 0..1000 {
            let left: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                    .bind(&pids)
                    .fetch_one(&mut side)
                    .await
                    .expect("pg_stat_activity");
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
        sqlx::query_scalar("SELECT current_setting($1)")
            .bind(name)
            .fetch_one(&mut **conn)
            .await
            .expect("current_setting")
    }
}

impl StatementHarness for SqlxPg {
    type Observer = PgConnection;

    async fn observer(url: &str) -> PgConnection {
        pg_side(url).await
    }

    async fn is_running(observer: &mut PgConnection, session: u64, marker: &str) -> bool {
        let pid = i32::try_from(session).expect("a backend pid");
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE pid = $1 AND state = 'active' AND strpos(query, $2) > 0",
        )
        .bind(pid)
        .bind(marker)
        .fetch_one(observer)
        .await
        .expect("pg_stat_activity");
        running > 0
    }

    async fn sleep(
        conn: &mut Conn<PgManager>,
        seconds: f64,
        marker: &str,
    ) -> Result<(), StatementError> {
        let sql = format!("SELECT pg_sleep({seconds}) /* {marker} */");
        conn.execute(sql.as_str())
            .await
            .map(drop)
            .map_err(statement_error)
    }

    async fn statement_bound_ms(conn: &mut Conn<PgManager>) -> u64 {
        let ms: i64 = sqlx::query_scalar(
            "SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout'",
        )
        .fetch_one(&mut **conn)
        .await
        .expect("pg_settings");
        u64::try_from(ms).expect("a bound of 0 or more")
    }

    /// Each cancel opens a side session of the pool's options (and so its
    /// application name), at most `max_concurrent_cancels` at once.
    const SIDE_SESSIONS: usize = 4;

    async fn sessions(observer: &mut PgConnection, tag: &str) -> usize {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
                .bind(tag)
                .fetch_one(observer)
                .await
                .expect("pg_stat_activity");
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

impl TransactionHarness for SqlxPg {
    async fn create_table(url: &str, table: &str) {
        pg_side(url)
            .await
            .execute(sqlx::raw_sql(&format!(
                "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (tag text)"
            )))
            .await
            .expect("create table");
    }

    async fn committed(url: &str, table: &str, tag: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE tag = $1"))
            .bind(tag)
            .fetch_one(&mut pg_side(url).await)
            .await
            .expect("count")
    }

    async fn execute(conn: &mut Conn<PgManager>, sql: &str) -> Result<(), StatementError> {
        conn.execute(sql).await.map(drop).map_err(statement_error)
    }

    async fn count(
        conn: &mut Conn<PgManager>,
        table: &str,
        tag: &str,
    ) -> Result<i64, StatementError> {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE tag = $1"))
            .bind(tag)
            .fetch_one(&mut **conn)
            .await
            .map_err(statement_error)
    }

    async fn in_transaction(conn: &mut Conn<PgManager>) -> Result<bool, StatementError> {
        // The simple protocol (no arguments): a statement's clock starts
        // when it arrives, after the transaction's.
        let sql = "SELECT transaction_timestamp() <> statement_timestamp()";
        let row = (&mut **conn)
            .fetch_one(sql)
            .await
            .map_err(statement_error)?;
        Ok(sqlx::Row::get::<bool, _>(&row, 0))
    }

    async fn insert_and_drop(conn: &mut Conn<PgManager>, table: &str, tag: &str) {
        let mut tx = conn.begin().await.expect("BEGIN");
        sqlx::query(&format!("INSERT INTO {table} (tag) VALUES ($1)"))
            .bind(tag)
            .execute(&mut tx)
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
        let mut tx = conn.begin().await.map_err(statement_error)?;
        sqlx::query(&insert)
            .bind(outer)
            .execute(&mut tx)
            .await
            .map_err(statement_error)?;
        let mut savepoint = tx.begin().await.map_err(statement_error)?;
        sqlx::query(&insert)
            .bind(inner)
            .execute(&mut savepoint)
            .await
            .map_err(statement_error)?;
        savepoint.rollback().await.map_err(statement_error)?;
        tx.commit().await.map_err(statement_error)
    }

    fn rolled_back_on_return(manager: &PgManager) -> u64 {
        manager.stats().rolled_back_on_return
    }
}

/// MariaDB through sqlx.
pub struct SqlxMaria;

impl Harness for SqlxMaria {
    type M = MySqlManager;
    const SERVER: Server = Server::MariaDb;

    /// Sessions are told apart by user: `tag` is a user of its own.
    fn manager(url: &str, tag: &str) -> MySqlManager {
        ensure_user(tag);
        MySqlManager::new(mysql_options_as(url, tag))
    }

    async fn session(conn: &mut Conn<MySqlManager>) -> Result<u64, QueryError> {
        sqlx::query_scalar("SELECT CONNECTION_ID()")
            .fetch_one(&mut **conn)
            .await
            .map_err(query_error)
    }

    async fn kill_sessions(url: &str, tag: &str) -> Vec<u64> {
        let mut side = mysql_side(url).await;
        let list = "SELECT id FROM information_schema.processlist WHERE user = ?";
        let ids: Vec<i64> = sqlx::query_scalar(list)
            .bind(tag)
            .fetch_all(&mut side)
            .await
            .expect("processlist");
        for id in &ids {
            // A session may end by itself meanwhile: ignore "unknown thread".
            let _ = side
                .execute(sqlx::raw_sql(&format!("KILL CONNECTION {id}")))
                .await;
        }
        for _ in 0..1000 {
            let left: Vec<i64> = sqlx::query_scalar(list)
                .bind(tag)
                .fetch_all(&mut side)
                .await
                .expect("processlist");
            if !left.iter().any(|id| ids.contains(id)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        ids.into_iter().map(|id| id as u64).collect()
    }

    /// MariaDB runs sessions as threads: freezing one means freezing all.
    fn freeze_target(_session: u64) -> Option<u32> {
        Server::MariaDb.main_pid()
    }

    async fn read_setting(conn: &mut Conn<MySqlManager>, name: &str) -> String {
        let sql = format!("SELECT CAST(@@session.{name} AS CHAR)");
        sqlx::query_scalar(&sql)
            .fetch_one(&mut **conn)
            .await
            .expect("setting")
    }
}

impl StatementHarness for SqlxMaria {
    type Observer = MySqlConnection;

    async fn observer(url: &str) -> MySqlConnection {
        mysql_side(url).await
    }

    /// `KILL QUERY` runs on side sessions of the pool's user, at most
    /// `max_concurrent_cancels` (4 by default) at once.
    const SIDE_SESSIONS: usize = 4;

    /// `GET_LOCK` on a lock the observer holds: `KILL QUERY` stops it at
    /// once, where it can take seconds to reach many `SLEEP()`s.
    async fn block(
        conn: &mut Conn<MySqlManager>,
        seconds: f64,
        marker: &str,
    ) -> Result<(), StatementError> {
        let sql = format!("SELECT GET_LOCK('stormpool_block', {seconds}) /* {marker} */");
        conn.execute(sql.as_str())
            .await
            .map(drop)
            .map_err(statement_error)
    }

    async fn hold_for(observer: &mut MySqlConnection) {
        observer
            .execute("SELECT GET_LOCK('stormpool_block', 10)")
            .await
            .expect("GET_LOCK");
    }

    async fn sessions(observer: &mut MySqlConnection, tag: &str) -> usize {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.processlist WHERE user = ?",
        )
        .bind(tag)
        .fetch_one(observer)
        .await
        .expect("processlist");
        usize::try_from(n).expect("a count")
    }

    async fn is_running(observer: &mut MySqlConnection, session: u64, marker: &str) -> bool {
        let running: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.processlist \
             WHERE id = ? AND command = 'Query' AND INSTR(info, ?) > 0",
        )
        .bind(session)
        .bind(marker)
        .fetch_one(observer)
        .await
        .expect("processlist");
        running > 0
    }

    async fn sleep(
        conn: &mut Conn<MySqlManager>,
        seconds: f64,
        marker: &str,
    ) -> Result<(), StatementError> {
        let sql = format!("SELECT SLEEP({seconds}) /* {marker} */");
        conn.execute(sql.as_str())
            .await
            .map(drop)
            .map_err(statement_error)
    }

    async fn statement_bound_ms(conn: &mut Conn<MySqlManager>) -> u64 {
        let seconds: f64 = sqlx::query_scalar("SELECT @@session.max_statement_time")
            .fetch_one(&mut **conn)
            .await
            .expect("max_statement_time");
        (seconds * 1000.0).round() as u64
    }

    fn stats(manager: &MySqlManager) -> StatementStats {
        let stats = manager.stats();
        StatementStats {
            stopped_by_deadline: stats.stopped_by_deadline,
            bound_changes: stats.bound_changes,
            abandoned: stats.abandoned,
        }
    }
}

impl TransactionHarness for SqlxMaria {
    async fn create_table(url: &str, table: &str) {
        mysql_side(url)
            .await
            .execute(sqlx::raw_sql(&format!(
                "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (tag TEXT) ENGINE = InnoDB"
            )))
            .await
            .expect("create table");
    }

    async fn committed(url: &str, table: &str, tag: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE tag = ?"))
            .bind(tag)
            .fetch_one(&mut mysql_side(url).await)
            .await
            .expect("count")
    }

    async fn execute(conn: &mut Conn<MySqlManager>, sql: &str) -> Result<(), StatementError> {
        conn.execute(sql).await.map(drop).map_err(statement_error)
    }

    async fn count(
        conn: &mut Conn<MySqlManager>,
        table: &str,
        tag: &str,
    ) -> Result<i64, StatementError> {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE tag = ?"))
            .bind(tag)
            .fetch_one(&mut **conn)
            .await
            .map_err(statement_error)
    }

    async fn in_transaction(conn: &mut Conn<MySqlManager>) -> Result<bool, StatementError> {
        let n: i64 = sqlx::query_scalar("SELECT CAST(@@in_transaction AS SIGNED)")
            .fetch_one(&mut **conn)
            .await
            .map_err(statement_error)?;
        Ok(n == 1)
    }

    async fn insert_and_drop(conn: &mut Conn<MySqlManager>, table: &str, tag: &str) {
        let mut tx = conn.begin().await.expect("START TRANSACTION");
        sqlx::query(&format!("INSERT INTO {table} (tag) VALUES (?)"))
            .bind(tag)
            .execute(&mut tx)
            .await
            .expect("INSERT");
    }

    async fn nested_rollback(
        conn: &mut Conn<MySqlManager>,
        table: &str,
        outer: &str,
        inner: &str,
    ) -> Result<(), StatementError> {
        let insert = format!("INSERT INTO {table} (tag) VALUES (?)");
        let mut tx = conn.begin().await.map_err(statement_error)?;
        sqlx::query(&insert)
            .bind(outer)
            .execute(&mut tx)
            .await
            .map_err(statement_error)?;
        let mut savepoint = tx.begin().await.map_err(statement_error)?;
        sqlx::query(&insert)
            .bind(inner)
            .execute(&mut savepoint)
            .await
            .map_err(statement_error)?;
        savepoint.rollback().await.map_err(statement_error)?;
        tx.commit().await.map_err(statement_error)
    }

    fn rolled_back_on_return(manager: &MySqlManager) -> u64 {
        manager.stats().rolled_back_on_return
    }
}
