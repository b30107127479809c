//! What the shared fault and statement scenarios need to know about
//! MariaDB, and helpers of the adapter's own tests.
#![allow(dead_code)]

use std::time::Duration;

use stormpool::{Conn, Pool};
use stormpool_mysql::mysql_async::prelude::Queryable;
use stormpool_mysql::mysql_async::{self, Opts, OptsBuilder};
use stormpool_mysql::{Classify, MySqlManager};
use stormpool_testkit::scenarios::{Harness, QueryError};
use stormpool_testkit::server::{mariadb_sql, Server};
use stormpool_testkit::statements::{StatementError, StatementHarness, StatementStats};
use stormpool_testkit::transactions::TransactionHarness;

/// The password of the users the tests create.
pub const TEST_PASSWORD: &str = "stormpool-test-Pw-4711";

/// The live database's URL, or `None` (skip) when unset outside CI.
pub fn url() -> Option<String> {
    stormpool_testkit::db::mysql_url()
}

/// Creates (once) a user `name` with [`TEST_PASSWORD`] and every right on
/// the test database.
pub fn ensure_user(name: &str) {
    let sql = format!(
        "CREATE USER IF NOT EXISTS '{name}'@'%' IDENTIFIED BY '{TEST_PASSWORD}'; \
         GRANT ALL ON test.* TO '{name}'@'%';"
    );
    mariadb_sql(&sql).expect("creating a test user");
}

/// `url`'s options, logging in as `user` with [`TEST_PASSWORD`], always
/// over TCP: by default mysql_async moves a connection to 127.0.0.1 onto
/// the server's Unix socket, which would bypass a fault proxy.
pub fn opts_as(url: &str, user: &str) -> Opts {
    let opts = Opts::from_url(url).expect("STORMPOOL_MYSQL_URL");
    OptsBuilder::from_opts(opts)
        .user(Some(user))
        .pass(Some(TEST_PASSWORD))
        .prefer_socket(false)
        .into()
}

pub fn pool(url: &str) -> Pool<MySqlManager> {
    Pool::builder(MySqlManager::from_url(url).expect("STORMPOOL_MYSQL_URL"))
        .max_size(4)
        .build()
        .expect("pool config")
}

/// A connection of the test's own, outside any pool.
pub async fn side(url: &str) -> mysql_async::Conn {
    mysql_async::Conn::from_url(url)
        .await
        .expect("side connection")
}

pub struct MariaDb;

impl Harness for MariaDb {
    type M = MySqlManager;
    const SERVER: Server = Server::MariaDb;

    /// Sessions are told apart by user: `tag` is a user of its own.
    fn manager(url: &str, tag: &str) -> MySqlManager {
        ensure_user(tag);
        MySqlManager::new(opts_as(url, tag))
    }

    async fn session(conn: &mut Conn<MySqlManager>) -> Result<u64, QueryError> {
        let id: Option<u64> = conn
            .query_first("SELECT CONNECTION_ID()")
            .await
            .map_err(|e| QueryError {
                message: stormpool_testkit::load::chain(&e),
                connection_error: e.is_connection_error(),
            })?;
        Ok(id.expect("CONNECTION_ID() returns a row"))
    }

    async fn kill_sessions(url: &str, tag: &str) -> Vec<u64> {
        let mut side = side(url).await;
        let ids: Vec<u64> = side
            .exec(
                "SELECT id FROM information_schema.processlist WHERE user = ?",
                (tag,),
            )
            .await
            .expect("processlist");
        for id in &ids {
            // A session may end by itself meanwhile: ignore "unknown thread".
            let _ = side.query_drop(format!("KILL CONNECTION {id}")).await;
        }
        for _ in 0..1000 {
            let left: Vec<u64> = side
                .exec(
                    "SELECT id FROM information_schema.processlist WHERE user = ?",
                    (tag,),
                )
                .await
                .expect("processlist");
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

    async fn read_setting(conn: &mut Conn<MySqlManager>, name: &str) -> String {
        conn.query_first(format!("SELECT @@session.{name}"))
            .await
            .expect("query")
            .expect("a row")
    }
}

impl StatementHarness for MariaDb {
    type Observer = mysql_async::Conn;

    async fn observer(url: &str) -> mysql_async::Conn {
        side(url).await
    }

    /// `KILL QUERY` runs on side connections of the pool's user, at most
    /// `max_concurrent_cancels` (4 by default) at once.
    const SIDE_SESSIONS: usize = 4;

    /// `GET_LOCK` on a lock the observer holds: `KILL QUERY` stops it at
    /// once, where it can take seconds to reach many `SLEEP()`s.
    async fn block(
        conn: &mut Conn<MySqlManager>,
        seconds: f64,
        marker: &str,
    ) -> Result<(), StatementError> {
        conn.query_drop(format!(
            "SELECT GET_LOCK('stormpool_block', {seconds}) /* {marker} */"
        ))
        .await
        .map_err(|e| StatementError {
            message: stormpool_testkit::load::chain(&e),
            timed_out: e.server_code() == Some(1969),
        })
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
        conn: &mut Conn<MySqlManager>,
        seconds: f64,
        marker: &str,
    ) -> Result<(), StatementError> {
        conn.query_drop(format!("SELECT SLEEP({seconds}) /* {marker} */"))
            .await
            .map_err(|e| StatementError {
                message: stormpool_testkit::load::chain(&e),
                timed_out: e.server_code() == Some(1969),
            })
    }

    async fn statement_bound_ms(conn: &mut Conn<MySqlManager>) -> u64 {
        let seconds: Option<f64> = conn
            .query_first("SELECT @@session.max_statement_time")
            .await
            .expect("max_statement_time");
        (seconds.expect("a row") * 1000.0).round() as u64
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

fn statement_error(e: stormpool_mysql::Error) -> StatementError {
    StatementError {
        timed_out: e.server_code() == Some(1969),
        message: stormpool_testkit::load::chain(&e),
    }
}

impl TransactionHarness for MariaDb {
    async fn create_table(url: &str, table: &str) {
        let mut side = side(url).await;
        side.query_drop(format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (tag TEXT) ENGINE = InnoDB"
        ))
        .await
        .expect("create table");
        let _ = side.disconnect().await;
    }

    async fn committed(url: &str, table: &str, tag: &str) -> i64 {
        let mut side = side(url).await;
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

    async fn execute(conn: &mut Conn<MySqlManager>, sql: &str) -> Result<(), StatementError> {
        conn.query_drop(sql.to_owned())
            .await
            .map_err(statement_error)
    }

    async fn count(
        conn: &mut Conn<MySqlManager>,
        table: &str,
        tag: &str,
    ) -> Result<i64, StatementError> {
        let n: Option<i64> = conn
            .exec_first(
                format!("SELECT COUNT(*) FROM {table} WHERE tag = ?"),
                (tag.to_owned(),),
            )
            .await
            .map_err(statement_error)?;
        Ok(n.unwrap_or(0))
    }

    async fn in_transaction(conn: &mut Conn<MySqlManager>) -> Result<bool, StatementError> {
        let in_tx: Option<i64> = conn
            .query_first("SELECT @@in_transaction")
            .await
            .map_err(statement_error)?;
        Ok(in_tx == Some(1))
    }

    async fn insert_and_drop(conn: &mut Conn<MySqlManager>, table: &str, tag: &str) {
        let mut tx = conn.transaction().await.expect("START TRANSACTION");
        tx.exec_drop(
            format!("INSERT INTO {table} (tag) VALUES (?)"),
            (tag.to_owned(),),
        )
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
        let mut tx = conn.transaction().await.map_err(statement_error)?;
        tx.exec_drop(insert.clone(), (outer.to_owned(),))
            .await
            .map_err(statement_error)?;
        let mut savepoint = tx.transaction().await.map_err(statement_error)?;
        savepoint
            .exec_drop(insert, (inner.to_owned(),))
            .await
            .map_err(statement_error)?;
        savepoint.rollback().await.map_err(statement_error)?;
        tx.commit().await.map_err(statement_error)
    }

    fn rolled_back_on_return(manager: &MySqlManager) -> u64 {
        manager.stats().rolled_back_on_return
    }
}
