//! What the shared scenarios need to know about diesel-async's PostgreSQL
//! and MariaDB connections, and helpers of the adapter's own tests.
#![allow(dead_code)]

#[path = "../../../stormpool-testkit/sides/mysql_async.rs"]
mod maria_side;
#[path = "../../../stormpool-testkit/sides/tokio_postgres.rs"]
mod pg_side;

use diesel::sql_types::{Nullable, Text};
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, RunQueryDsl, SimpleAsyncConnection, TransactionManager,
};
use stormpool::{Conn, Pool};
use stormpool_diesel_async::{DieselConnection, Driver, Error, MysqlManager, PgManager};
use stormpool_testkit::errors::{Classified, ErrorHarness};
use stormpool_testkit::load::chain;
use stormpool_testkit::scenarios::{Failure, Harness};
pub use stormpool_testkit::server::ensure_mariadb_user as ensure_user;
use stormpool_testkit::server::Server;
use stormpool_testkit::statements::{StatementError, StatementHarness, StatementStats};
use stormpool_testkit::transactions::TransactionHarness;

pub use maria_side::{opts_as as mysql_opts_as, MariaSide};
pub use pg_side::{config as pg_config, PgSide};

/// A PostgreSQL connection of the test's own, outside any pool.
pub async fn pg_side(url: &str) -> tokio_postgres::Client {
    pg_side::connect(url).await
}

/// A MariaDB connection of the test's own, outside any pool.
pub async fn mysql_side(url: &str) -> mysql_async::Conn {
    maria_side::connect(url).await
}

pub fn pg_url() -> Option<String> {
    stormpool_testkit::db::pg_url()
}

pub fn mysql_url() -> Option<String> {
    stormpool_testkit::db::mysql_url()
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

/// How the adapter classifies an error, for the shared error scenarios.
fn classified(e: &Error) -> Classified {
    Classified {
        operation: format!("{:?}", e.operation()),
        code: e.sqlstate(),
        driver: e.as_driver().is_some(),
        connection_error: e.is_connection_error(),
        retryable: e.is_retryable(),
        timeout: e.is_timeout(),
    }
}

fn failure(e: diesel::result::Error) -> Failure {
    let e = Error::from(e);
    let text = e.to_string();
    Failure {
        timed_out: text.contains("statement timeout") || e.is_timeout(),
        connection_error: e.is_connection_error(),
        message: chain(&e),
    }
}

pub fn statement_error(e: diesel::result::Error) -> StatementError {
    failure(e).into()
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

/// The harness of one of diesel-async's backends: `$name` for `$manager`
/// on `$server`, its sessions told apart by `$manager_fn(url, tag)`,
/// `$side_sessions` cancel sessions beside the pool's, and `$extra` items
/// of its transaction harness.
macro_rules! diesel_harness {
    (
        $name:ident, $manager:ty, $server:expr, $side:ty, $manager_fn:expr,
        $side_sessions:expr, { $($extra:item)* }
    ) => {
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

            /// As a scalar subquery of diesel's `select`.
            async fn text(conn: &mut Conn<$manager>, sql: &str) -> Result<Option<String>, Failure> {
                scalar::<_, _, Nullable<Text>>(conn, &format!("({sql})"))
                    .await
                    .map_err(failure)
            }
        }

        impl StatementHarness for $name {
            async fn execute(conn: &mut Conn<$manager>, sql: &str) -> Result<(), StatementError> {
                conn.batch_execute(sql).await.map_err(statement_error)
            }

            const SIDE_SESSIONS: usize = $side_sessions;

            fn stats(manager: &$manager) -> StatementStats {
                manager.stats()
            }
        }

        impl TransactionHarness for $name {
            $($extra)*

            async fn insert_and_drop(conn: &mut Conn<$manager>, table: &str, tag: &str) {
                let insert = format!("INSERT INTO {table} (tag) VALUES ('{tag}')");
                insert_in_a_transaction_and_drop(&mut **conn, insert).await;
            }

            async fn nested_rollback(
                conn: &mut Conn<$manager>,
                table: &str,
                outer: &str,
                inner: &str,
            ) -> Result<(), StatementError> {
                nested(&mut **conn, table, outer, inner).await
            }
        }
    };
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

// A cancel request is no session: `pg_stat_activity` never lists it.
diesel_harness!(
    DieselPg,
    PgManager,
    Server::Postgres,
    PgSide,
    |url, tag| PgManager::new(pg_config(url, tag)),
    0,
    {
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
    }
);

/// MariaDB through diesel-async.
pub struct DieselMaria;

// Sessions are told apart by user: `tag` is a user of its own. `KILL
// QUERY` runs on side connections of the pool's user, at most
// `max_concurrent_cancels` (4 by default) at once.
diesel_harness!(
    DieselMaria,
    MysqlManager,
    Server::MariaDb,
    MariaSide,
    |url, tag| {
        ensure_user(tag);
        MysqlManager::new(mysql_opts_as(url, tag))
    },
    4,
    {}
);
