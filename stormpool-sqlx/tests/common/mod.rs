//! What the shared scenarios need to know about sqlx's PostgreSQL and
//! MariaDB connections, and helpers of the adapter's own tests.
#![allow(dead_code)]

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor};
use stormpool::{Conn, Pool};
use stormpool_sqlx::{Error, MySqlManager, PgManager};
use stormpool_testkit::errors::{Classified, ErrorHarness};
use stormpool_testkit::load::chain;
use stormpool_testkit::scenarios::{Harness, QueryError};
use stormpool_testkit::server::Server;
pub use stormpool_testkit::server::{ensure_mariadb_user as ensure_user, TEST_PASSWORD};
use stormpool_testkit::side::SideConnection;
use stormpool_testkit::statements::{StatementError, StatementHarness, StatementStats};
use stormpool_testkit::transactions::TransactionHarness;

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

/// Side connections through sqlx's simple protocol, one type per server.
macro_rules! sqlx_side {
    ($(#[$doc:meta])* $name:ident, $connection:ty) => {
        $(#[$doc])*
        pub struct $name(pub $connection);

        impl SideConnection for $name {
            async fn connect(url: &str) -> Self {
                $name(<$connection>::connect(url).await.expect("side connection"))
            }

            async fn query(&mut self, sql: &str) -> Result<Vec<i64>, String> {
                let rows = (&mut self.0)
                    .fetch_all(sql)
                    .await
                    .map_err(|e| chain(&e))?;
                rows.iter()
                    .map(|row| sqlx::Row::try_get::<i64, _>(row, 0).map_err(|e| chain(&e)))
                    .collect()
            }
        }
    };
}

sqlx_side!(
    /// A side connection to PostgreSQL.
    PgSide,
    PgConnection
);
sqlx_side!(
    /// A side connection to MariaDB.
    MariaSide,
    MySqlConnection
);

/// How the adapter classifies an error, for the shared error scenarios.
fn classified(e: &Error) -> Classified {
    Classified {
        operation: format!("{:?}", e.operation()),
        code: e.sqlstate().map(|c| c.into_owned()),
        driver: e.as_sqlx().is_some(),
        connection_error: e.is_connection_error(),
        retryable: e.is_retryable(),
    }
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

impl ErrorHarness for SqlxPg {
    fn classify(e: &Error) -> Classified {
        classified(e)
    }
}

impl Harness for SqlxPg {
    type M = PgManager;
    const SERVER: Server = Server::Postgres;
    type Side = PgSide;

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

    async fn read_setting(conn: &mut Conn<PgManager>, name: &str) -> String {
        sqlx::query_scalar("SELECT current_setting($1)")
            .bind(name)
            .fetch_one(&mut **conn)
            .await
            .expect("current_setting")
    }
}

impl StatementHarness for SqlxPg {
    async fn execute(conn: &mut Conn<PgManager>, sql: &str) -> Result<(), StatementError> {
        conn.execute(sql).await.map(drop).map_err(statement_error)
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

    fn stats(manager: &PgManager) -> StatementStats {
        manager.stats()
    }
}

impl TransactionHarness for SqlxPg {
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
}

/// MariaDB through sqlx.
pub struct SqlxMaria;

impl ErrorHarness for SqlxMaria {
    fn classify(e: &Error) -> Classified {
        classified(e)
    }
}

impl Harness for SqlxMaria {
    type M = MySqlManager;
    const SERVER: Server = Server::MariaDb;
    type Side = MariaSide;

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

    async fn read_setting(conn: &mut Conn<MySqlManager>, name: &str) -> String {
        let sql = format!("SELECT CAST(@@session.{name} AS CHAR)");
        sqlx::query_scalar(&sql)
            .fetch_one(&mut **conn)
            .await
            .expect("setting")
    }
}

impl StatementHarness for SqlxMaria {
    async fn execute(conn: &mut Conn<MySqlManager>, sql: &str) -> Result<(), StatementError> {
        conn.execute(sql).await.map(drop).map_err(statement_error)
    }

    /// `KILL QUERY` runs on side sessions of the pool's user, at most
    /// `max_concurrent_cancels` (4 by default) at once.
    const SIDE_SESSIONS: usize = 4;

    async fn statement_bound_ms(conn: &mut Conn<MySqlManager>) -> u64 {
        let seconds: f64 = sqlx::query_scalar("SELECT @@session.max_statement_time")
            .fetch_one(&mut **conn)
            .await
            .expect("max_statement_time");
        (seconds * 1000.0).round() as u64
    }

    fn stats(manager: &MySqlManager) -> StatementStats {
        manager.stats()
    }
}

impl TransactionHarness for SqlxMaria {
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
}
