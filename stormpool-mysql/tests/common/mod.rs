//! What the shared fault and statement scenarios need to know about
//! MariaDB, and helpers of the adapter's own tests.
#![allow(dead_code)]

#[path = "../../../stormpool-testkit/sides/mysql_async.rs"]
mod maria_side;

use stormpool::{Conn, Pool};
use stormpool_mysql::mysql_async;
use stormpool_mysql::{Classify, MySqlManager};
use stormpool_testkit::errors::{Classified, ErrorHarness};
use stormpool_testkit::load::chain;
use stormpool_testkit::scenarios::{Failure, Harness};
pub use stormpool_testkit::server::ensure_mariadb_user as ensure_user;
use stormpool_testkit::server::Server;
use stormpool_testkit::statements::{StatementError, StatementHarness, StatementStats};
use stormpool_testkit::transactions::TransactionHarness;

pub use maria_side::{opts_as, MariaSide};

/// A connection of the test's own, outside any pool.
pub async fn side(url: &str) -> mysql_async::Conn {
    maria_side::connect(url).await
}

/// The password of the users the tests create.
pub const TEST_PASSWORD: &str = stormpool_testkit::server::TEST_PASSWORD;

/// The live database's URL, or `None` (skip) when unset outside CI.
pub fn url() -> Option<String> {
    stormpool_testkit::db::mysql_url()
}

pub fn pool(url: &str) -> Pool<MySqlManager> {
    Pool::builder(MySqlManager::from_url(url).expect("STORMPOOL_MYSQL_URL"))
        .max_size(4)
        .build()
        .expect("pool config")
}

pub struct MariaDb;

fn failure(e: stormpool_mysql::Error) -> Failure {
    Failure {
        timed_out: e.server_code() == Some(1969),
        connection_error: e.is_connection_error(),
        message: chain(&e),
    }
}

fn statement_error(e: stormpool_mysql::Error) -> StatementError {
    failure(e).into()
}

impl Harness for MariaDb {
    type M = MySqlManager;
    const SERVER: Server = Server::MariaDb;
    type Side = MariaSide;

    /// Sessions are told apart by user: `tag` is a user of its own.
    fn manager(url: &str, tag: &str) -> MySqlManager {
        ensure_user(tag);
        MySqlManager::new(opts_as(url, tag))
    }

    async fn text(conn: &mut Conn<MySqlManager>, sql: &str) -> Result<Option<String>, Failure> {
        let value: Option<Option<String>> =
            conn.query_first(sql.to_owned()).await.map_err(failure)?;
        Ok(value.flatten())
    }
}

impl StatementHarness for MariaDb {
    async fn execute(conn: &mut Conn<MySqlManager>, sql: &str) -> Result<(), StatementError> {
        conn.query_drop(sql.to_owned())
            .await
            .map_err(statement_error)
    }

    /// `KILL QUERY` runs on side connections of the pool's user, at most
    /// `max_concurrent_cancels` (4 by default) at once.
    const SIDE_SESSIONS: usize = 4;

    fn stats(manager: &MySqlManager) -> StatementStats {
        manager.stats()
    }
}

impl TransactionHarness for MariaDb {
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
}

impl ErrorHarness for MariaDb {
    fn classify(e: &stormpool_mysql::Error) -> Classified {
        Classified {
            operation: format!("{:?}", e.operation()),
            code: e.server_code().map(|c| c.to_string()),
            driver: e.as_driver().is_some(),
            connection_error: e.is_connection_error(),
            retryable: e.is_retryable(),
            timeout: e.is_timeout(),
        }
    }
}
