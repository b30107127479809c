//! A request's deadline bounds its statements: on PostgreSQL on the server
//! (`statement_timeout`, pipelined ahead of the statement), so the session
//! stays usable; on MariaDB on the client, the statement then stopped on
//! the server by `KILL QUERY`.

mod common;

use std::time::Duration;

use common::{DieselMaria, DieselPg};
use diesel::sql_types::Integer;
use diesel_async::SimpleAsyncConnection;
use stormpool::Pool;
use stormpool_diesel_async::{Error, MysqlManager, PgManager};
use stormpool_testkit::load::wait_until;
use stormpool_testkit::scenarios::Harness;
use stormpool_testkit::statements::{self, StatementHarness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_over_the_remaining_budget_fails_on_the_server_postgres() {
    let Some(url) = common::pg_url() else { return };
    statements::statement_over_budget_is_stopped::<DieselPg>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bound_is_set_only_when_it_changes_postgres() {
    let Some(url) = common::pg_url() else { return };
    statements::bound_changes_only_when_it_must::<DieselPg>(&url).await;
}

/// Through the query builder's `load` (the extended protocol) and inside
/// diesel's transaction manager, too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loaded_statement_inside_a_transaction_is_bounded_postgres() {
    let Some(url) = common::pg_url() else { return };
    let pool = Pool::builder(PgManager::new(common::pg_config(
        &url,
        "diesel_tx_deadline",
    )))
    .max_size(1)
    .build()
    .expect("pool");
    let result = statements::bounded_by_deadline(&pool, "load", |mut conn| async move {
        let n: i32 = common::scalar::<_, _, Integer>(&mut conn, "1 FROM pg_sleep(2)").await?;
        Ok::<_, Error>(n)
    })
    .await;
    let e = result.expect_err("stopped");
    assert!(e.to_string().contains("statement timeout"), "{e}");
    let result = statements::bounded_by_deadline(&pool, "transaction", |mut conn| async move {
        use diesel_async::TransactionManager;
        diesel_async::AnsiTransactionManager::begin_transaction(&mut *conn).await?;
        conn.batch_execute("SELECT pg_sleep(2)").await?;
        Ok::<_, Error>(())
    })
    .await;
    let e = result.expect_err("stopped");
    assert!(e.to_string().contains("statement timeout"), "{e}");
    assert_eq!(pool.manager().stats().stopped_by_deadline, 2);
    // The transaction left open was rolled back on return.
    let mut conn = pool.get().await.expect("acquire");
    assert!(!DieselPg::in_transaction_now(&mut conn).await);
}

/// MariaDB: the client gives up at the deadline plus the grace, the
/// statement is stopped on the server, and the pool replaces the
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_over_budget_is_stopped_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    let pool: Pool<MysqlManager> =
        Pool::builder(DieselMaria::manager(&url, "stormpool_diesel_over"))
            .max_size(1)
            .build()
            .expect("pool");
    let result = statements::bounded_by_deadline(&pool, "batch_execute", |mut conn| async move {
        conn.batch_execute("SELECT SLEEP(2) /* stormpool_diesel_over */")
            .await
            .map_err(Error::from)
    })
    .await;
    let e = result.expect_err("stopped");
    assert!(e.is_timeout() && e.is_connection_error(), "{e}");
    let mut observer = DieselMaria::observer(&url).await;
    let gone = wait_until(Duration::from_secs(2), || pool.status().open == 0).await;
    assert!(gone.is_some(), "{:?}", pool.status());
    let sessions = DieselMaria::sessions(&mut observer, "stormpool_diesel_over").await;
    assert_eq!(sessions, 0, "the session was closed");
    assert_eq!(pool.status().counters.cancelled_on_return, 1);
}
