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
use stormpool_testkit::scenarios::{Failure, Harness};
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
        timeout: e.is_timeout(),
    }
}

fn failure(e: sqlx::Error) -> Failure {
    let e = Error::from(e);
    let code = e.sqlstate().map(|c| c.into_owned());
    let number = e
        .database_error()
        .and_then(|d| d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
        .map(|d| d.number());
    Failure {
        timed_out: code.as_deref() == Some("57014") || number == Some(1969),
        connection_error: e.is_connection_error(),
        message: chain(&e),
    }
}

fn statement_error(e: sqlx::Error) -> StatementError {
    failure(e).into()
}

/// The harness of one of sqlx's backends: `$name` for `$manager` on
/// `$server`, its sessions told apart by `$manager_fn(url, tag)`, its
/// statements' parameters written `$param`.
macro_rules! sqlx_harness {
    ($name:ident, $manager:ty, $server:expr, $side:ty, $manager_fn:expr, $param:literal) => {
        impl ErrorHarness for $name {
            fn classify(e: &Error) -> Classified {
                classified(e)
            }
        }

        impl Harness for $name {
            type M = $manager;
            const SERVER: Server = $server;
            type Side = $side;

            fn manager(url: &str, tag: &str) -> $manager {
                $manager_fn(url, tag)
            }

            /// By the simple protocol: no arguments.
            async fn text(conn: &mut Conn<$manager>, sql: &str) -> Result<Option<String>, Failure> {
                let row = (&mut **conn).fetch_optional(sql).await.map_err(failure)?;
                row.map(|row| sqlx::Row::try_get::<Option<String>, _>(&row, 0))
                    .transpose()
                    .map(Option::flatten)
                    .map_err(failure)
            }
        }

        impl StatementHarness for $name {
            async fn execute(conn: &mut Conn<$manager>, sql: &str) -> Result<(), StatementError> {
                conn.execute(sql).await.map(drop).map_err(statement_error)
            }

            /// Each cancel opens a side session of the pool's options (and
            /// so its application name, or user), at most
            /// `max_concurrent_cancels` (4 by default) at once.
            const SIDE_SESSIONS: usize = 4;

            fn stats(manager: &$manager) -> StatementStats {
                manager.stats()
            }
        }

        impl TransactionHarness for $name {
            async fn insert_and_drop(conn: &mut Conn<$manager>, table: &str, tag: &str) {
                let mut tx = conn.begin().await.expect("BEGIN");
                sqlx::query(&format!("INSERT INTO {table} (tag) VALUES ({})", $param))
                    .bind(tag)
                    .execute(&mut tx)
                    .await
                    .expect("INSERT");
            }

            async fn nested_rollback(
                conn: &mut Conn<$manager>,
                table: &str,
                outer: &str,
                inner: &str,
            ) -> Result<(), StatementError> {
                let insert = format!("INSERT INTO {table} (tag) VALUES ({})", $param);
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
    };
}

/// PostgreSQL through sqlx.
pub struct SqlxPg;

sqlx_harness!(
    SqlxPg,
    PgManager,
    Server::Postgres,
    PgSide,
    |url, tag| PgManager::new(pg_options(url, tag)),
    "$1"
);

/// MariaDB through sqlx.
pub struct SqlxMaria;

// Sessions are told apart by user: `tag` is a user of its own.
sqlx_harness!(
    SqlxMaria,
    MySqlManager,
    Server::MariaDb,
    MariaSide,
    |url, tag| {
        ensure_user(tag);
        MySqlManager::new(mysql_options_as(url, tag))
    },
    "?"
);
