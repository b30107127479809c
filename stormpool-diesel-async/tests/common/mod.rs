//! What the shared scenarios need to know about diesel-async's PostgreSQL
//! and MariaDB connections, and helpers of the adapter's own tests.
#![allow(dead_code)]

use std::time::Duration;

use diesel::sql_types::{BigInt, Integer, Text};
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, RunQueryDsl, SimpleAsyncConnection, TransactionManager,
};
use mysql_async::prelude::Queryable;
use mysql_async::{Opts, OptsBuilder};
use stormpool::{Conn, Pool};
use stormpool_diesel_async::{DieselConnection, Driver, Error, MysqlManager, PgManager};
use stormpool_testkit::load::chain;
use stormpool_testkit::scenarios::{Harness, QueryError};
use stormpool_testkit::server::{mariadb_sql, Server};
use stormpool_testkit::statements::{StatementError, StatementHarness, StatementStats};
use stormpool_testkit::transactions::TransactionHarness;
use tokio_postgres::NoTls;

/// The password of the MariaDB users the tests create.
pub const TEST_PASSWORD: &str = "stormpool-test-Pw-4711";

pub fn pg_url() -> Option<String> {
    stormpool_testkit::db::pg_url()
}

pub fn mysql_url() -> Option<String> {
    stormpool_testkit::db::mysql_url()
}

pub fn pg_config(url: &str, application_name: &str) -> tokio_postgres::Config {
    let mut config: tokio_postgres::Config = url.parse().expect("STORMPOOL_PG_URL");
    config.application_name(application_name);
    config
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

/// `url`'s options, logging in as `user` with [`TEST_PASSWORD`], over TCP.
pub fn mysql_opts_as(url: &str, user: &str) -> Opts {
    let opts = Opts::from_url(url).expect("STORMPOOL_MYSQL_URL");
    OptsBuilder::from_opts(opts)
        .user(Some(user))
        .pass(Some(TEST_PASSWORD))
        .prefer_socket(false)
        .into()
}

pub fn pg_pool(url: &str, application_name: &str) -> Pool<PgManager> {
    Pool::builder(PgManager::new(pg_config(url, application_name)))
        .max_size(4)
        .build()
        .expect("pool config")
}

pub fn mysql_pool(url: &str) -> Pool<MysqlManager> {
    Pool::builder(MysqlManager::from_url(url).expect("STORMPOOL_MYSQL_URL"))
        .max_size(4)
        .build()
        .expect("pool config")
}

/// A PostgreSQL connection of the test's own, outside any pool.
pub async fn pg_side(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("side connection");
    tokio::spawn(connection);
    client
}

/// A MariaDB connection of the test's own, outside any pool.
pub async fn mysql_side(url: &str) -> mysql_async::Conn {
    mysql_async::Conn::from_url(url)
        .await
        .expect("side connection")
}

fn query_error(e: diesel::result::Error) -> QueryError {
    let e = Error::from(e);
    QueryError {
        message: chain(&e),
        connection_error: e.is_connection_error(),
    }
}

pub fn statement_error(e: diesel::result::Error) -> StatementError {
    let e = Error::from(e);
    let text = e.to_string();
    StatementError {
        timed_out: text.contains("statement timeout") || e.is_timeout(),
        message: chain(&e),
    }
}

/// The one value of a one-row, one-column query written in SQL.
pub async fn scalar<C, T, ST>(conn: &mut C, sql: &str) -> Result<T, diesel::result::Error>
where
    C: AsyncConnection + Send,
    ST: diesel::sql_types::SingleValue + 'static,
    T: Send + 'static,
    diesel::dsl::select<diesel::expression::SqlLiteral<ST>>:
        diesel_async::methods::LoadQuery<'static, C, T>,
{
    let query = diesel::select(diesel::dsl::sql::<ST>(sql));
    // `'static`: the query owns its SQL.
    let query: diesel::dsl::select<diesel::expression::SqlLiteral<ST>> = query;
    query.get_result::<T>(conn).await
}

/// PostgreSQL through diesel-async.
pub struct DieselPg;

impl DieselPg {
    /// Whether the session is in a transaction, for a test's own checks.
    pub async fn in_transaction_now(conn: &mut Conn<PgManager>) -> bool {
        <DieselPg as TransactionHarness>::in_transaction(conn)
            .await
            .expect("in transaction")
    }
}

impl Harness for DieselPg {
    type M = PgManager;
    const SERVER: Server = Server::Postgres;

    fn manager(url: &str, tag: &str) -> PgManager {
        PgManager::new(pg_config(url, tag))
    }

    async fn session(conn: &mut Conn<PgManager>) -> Result<u64, QueryError> {
        let pid: i32 = scalar::<_, _, Integer>(conn, "pg_backend_pid()")
            .await
            .map_err(query_error)?;
        Ok(pid as u64)
    }

    async fn kill_sessions(url: &str, tag: &str) -> Vec<u64> {
        let client = pg_side(url).await;
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
        scalar::<_, _, Text>(conn, &format!("current_setting('{name}')"))
            .await
            .expect("current_setting")
    }
}

impl StatementHarness for DieselPg {
    type Observer = tokio_postgres::Client;

    async fn observer(url: &str) -> tokio_postgres::Client {
        pg_side(url).await
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
        conn.batch_execute(&format!("SELECT pg_sleep({seconds}) /* {marker} */"))
            .await
            .map_err(statement_error)
    }

    async fn statement_bound_ms(conn: &mut Conn<PgManager>) -> u64 {
        let ms: i64 = scalar::<_, _, BigInt>(
            conn,
            "(SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout')",
        )
        .await
        .expect("pg_settings");
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

/// Begins diesel's transaction (its manager's `begin_transaction`, what
/// `transaction` runs first), inserts, and leaves it open: as a
/// `transaction` closure dropped between two statements does.
async fn insert_in_a_transaction_and_drop<C: Driver>(
    conn: &mut DieselConnection<C>,
    insert: String,
) {
    AnsiTransactionManager::begin_transaction(conn)
        .await
        .expect("BEGIN");
    conn.batch_execute(&insert).await.expect("INSERT");
}

/// Inserts `outer`, then in a savepoint inserts `inner` and rolls the
/// savepoint back, then commits: through diesel's transaction manager, as
/// nested `transaction` closures do.
async fn nested<C: Driver>(
    conn: &mut DieselConnection<C>,
    table: &str,
    outer: &str,
    inner: &str,
) -> Result<(), StatementError> {
    AnsiTransactionManager::begin_transaction(conn)
        .await
        .map_err(statement_error)?;
    conn.batch_execute(&format!("INSERT INTO {table} (tag) VALUES ('{outer}')"))
        .await
        .map_err(statement_error)?;
    AnsiTransactionManager::begin_transaction(conn)
        .await
        .map_err(statement_error)?;
    conn.batch_execute(&format!("INSERT INTO {table} (tag) VALUES ('{inner}')"))
        .await
        .map_err(statement_error)?;
    AnsiTransactionManager::rollback_transaction(conn)
        .await
        .map_err(statement_error)?;
    AnsiTransactionManager::commit_transaction(conn)
        .await
        .map_err(statement_error)
}

impl TransactionHarness for DieselPg {
    async fn create_table(url: &str, table: &str) {
        pg_side(url)
            .await
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (tag text)"
            ))
            .await
            .expect("create table");
    }

    async fn committed(url: &str, table: &str, tag: &str) -> i64 {
        pg_side(url)
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
        let sql = format!("(SELECT count(*) FROM {table} WHERE tag = '{tag}')");
        scalar::<_, _, BigInt>(conn, &sql)
            .await
            .map_err(statement_error)
    }

    /// By the simple protocol (diesel's query builder uses the extended one,
    /// which restarts a statement's clock at `Execute`): an error raised
    /// inside a transaction block only. Inside one, it aborts it.
    async fn in_transaction(conn: &mut Conn<PgManager>) -> Result<bool, StatementError> {
        let probe = conn
            .batch_execute(
                "DO $$BEGIN IF transaction_timestamp() < statement_timestamp() \
                 THEN RAISE EXCEPTION 'probe: in a transaction block'; END IF; END$$",
            )
            .await;
        match probe {
            Ok(()) => Ok(false),
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("in a transaction block") =>
            {
                Ok(true)
            }
            Err(e) => Err(statement_error(e)),
        }
    }

    async fn insert_and_drop(conn: &mut Conn<PgManager>, table: &str, tag: &str) {
        let insert = format!("INSERT INTO {table} (tag) VALUES ('{tag}')");
        insert_in_a_transaction_and_drop(&mut **conn, insert).await;
    }

    async fn nested_rollback(
        conn: &mut Conn<PgManager>,
        table: &str,
        outer: &str,
        inner: &str,
    ) -> Result<(), StatementError> {
        nested(&mut **conn, table, outer, inner).await
    }

    fn rolled_back_on_return(manager: &PgManager) -> u64 {
        manager.stats().rolled_back_on_return
    }
}

/// MariaDB through diesel-async.
pub struct DieselMaria;

impl Harness for DieselMaria {
    type M = MysqlManager;
    const SERVER: Server = Server::MariaDb;

    /// Sessions are told apart by user: `tag` is a user of its own.
    fn manager(url: &str, tag: &str) -> MysqlManager {
        ensure_user(tag);
        MysqlManager::new(mysql_opts_as(url, tag))
    }

    async fn session(conn: &mut Conn<MysqlManager>) -> Result<u64, QueryError> {
        let id: i64 = scalar::<_, _, BigInt>(conn, "CAST(CONNECTION_ID() AS SIGNED)")
            .await
            .map_err(query_error)?;
        Ok(id as u64)
    }

    async fn kill_sessions(url: &str, tag: &str) -> Vec<u64> {
        let mut side = mysql_side(url).await;
        let list = "SELECT id FROM information_schema.processlist WHERE user = ?";
        let ids: Vec<u64> = side.exec(list, (tag,)).await.expect("processlist");
        for id in &ids {
            let _ = side.query_drop(format!("KILL CONNECTION {id}")).await;
        }
        for _ in 0..1000 {
            let left: Vec<u64> = side.exec(list, (tag,)).await.expect("processlist");
            if !left.iter().any(|id| ids.contains(id)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let _ = side.disconnect().await;
        ids
    }

    /// MariaDB runs sessions as threads: freezing one means freezing all.
    fn freeze_target(_session: u64) -> Option<u32> {
        Server::MariaDb.main_pid()
    }

    async fn read_setting(conn: &mut Conn<MysqlManager>, name: &str) -> String {
        scalar::<_, _, Text>(conn, &format!("CAST(@@session.{name} AS CHAR)"))
            .await
            .expect("setting")
    }
}

impl StatementHarness for DieselMaria {
    type Observer = mysql_async::Conn;

    async fn observer(url: &str) -> mysql_async::Conn {
        mysql_side(url).await
    }

    /// `KILL QUERY` runs on side connections of the pool's user, at most
    /// `max_concurrent_cancels` (4 by default) at once.
    const SIDE_SESSIONS: usize = 4;

    /// `GET_LOCK` on a lock the observer holds: `KILL QUERY` stops it at
    /// once.
    async fn block(
        conn: &mut Conn<MysqlManager>,
        seconds: f64,
        marker: &str,
    ) -> Result<(), StatementError> {
        conn.batch_execute(&format!(
            "SELECT GET_LOCK('stormpool_block', {seconds}) /* {marker} */"
        ))
        .await
        .map_err(statement_error)
    }

    async fn hold_for(observer: &mut mysql_async::Conn) {
        let _: Option<i64> = observer
            .query_first("SELECT GET_LOCK('stormpool_block', 10)")
            .await
            .expect("GET_LOCK");
    }

    async fn sessions(observer: &mut mysql_async::Conn, tag: &str) -> usize {
        let n: Option<i64> = observer
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.processlist WHERE user = ?",
                (tag,),
            )
            .await
            .expect("processlist");
        usize::try_from(n.unwrap_or(0)).expect("a count")
    }

    async fn is_running(observer: &mut mysql_async::Conn, session: u64, marker: &str) -> bool {
        let running: Option<i64> = observer
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.processlist \
                 WHERE id = ? AND command = 'Query' AND INSTR(info, ?) > 0",
                (session, marker),
            )
            .await
            .expect("processlist");
        running.unwrap_or(0) > 0
    }

    async fn sleep(
        conn: &mut Conn<MysqlManager>,
        seconds: f64,
        marker: &str,
    ) -> Result<(), StatementError> {
        conn.batch_execute(&format!("SELECT SLEEP({seconds}) /* {marker} */"))
            .await
            .map_err(statement_error)
    }

    async fn statement_bound_ms(conn: &mut Conn<MysqlManager>) -> u64 {
        let ms: i64 =
            scalar::<_, _, BigInt>(conn, "CAST(@@session.max_statement_time * 1000 AS SIGNED)")
                .await
                .expect("max_statement_time");
        u64::try_from(ms).expect("a bound of 0 or more")
    }

    fn stats(manager: &MysqlManager) -> StatementStats {
        let stats = manager.stats();
        StatementStats {
            stopped_by_deadline: stats.stopped_by_deadline,
            bound_changes: stats.bound_changes,
            abandoned: stats.abandoned,
        }
    }
}

impl TransactionHarness for DieselMaria {
    async fn create_table(url: &str, table: &str) {
        let mut side = mysql_side(url).await;
        side.query_drop(format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (tag TEXT) ENGINE = InnoDB"
        ))
        .await
        .expect("create table");
        let _ = side.disconnect().await;
    }

    async fn committed(url: &str, table: &str, tag: &str) -> i64 {
        let mut side = mysql_side(url).await;
        let n: Option<i64> = side
            .exec_first(
                format!("SELECT COUNT(*) FROM {table} WHERE tag = ?"),
                (tag,),
            )
            .await
            .expect("count");
        let _ = side.disconnect().await;
        n.unwrap_or(0)
    }

    async fn execute(conn: &mut Conn<MysqlManager>, sql: &str) -> Result<(), StatementError> {
        conn.batch_execute(sql).await.map_err(statement_error)
    }

    async fn count(
        conn: &mut Conn<MysqlManager>,
        table: &str,
        tag: &str,
    ) -> Result<i64, StatementError> {
        let sql = format!("(SELECT COUNT(*) FROM {table} WHERE tag = '{tag}')");
        scalar::<_, _, BigInt>(conn, &sql)
            .await
            .map_err(statement_error)
    }

    async fn in_transaction(conn: &mut Conn<MysqlManager>) -> Result<bool, StatementError> {
        let n: i64 = scalar::<_, _, BigInt>(conn, "CAST(@@in_transaction AS SIGNED)")
            .await
            .map_err(statement_error)?;
        Ok(n == 1)
    }

    async fn insert_and_drop(conn: &mut Conn<MysqlManager>, table: &str, tag: &str) {
        let insert = format!("INSERT INTO {table} (tag) VALUES ('{tag}')");
        insert_in_a_transaction_and_drop(&mut **conn, insert).await;
    }

    async fn nested_rollback(
        conn: &mut Conn<MysqlManager>,
        table: &str,
        outer: &str,
        inner: &str,
    ) -> Result<(), StatementError> {
        nested(&mut **conn, table, outer, inner).await
    }

    fn rolled_back_on_return(manager: &MysqlManager) -> u64 {
        manager.stats().rolled_back_on_return
    }
}
