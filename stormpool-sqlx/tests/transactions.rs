//! Transaction hygiene, on PostgreSQL and MariaDB: whatever a request did
//! (a hand-written `BEGIN`, a statement dropped inside a transaction, an
//! error, a tracked transaction dropped without commit, sqlx's own
//! transaction on the driver's connection), the next requests on the same
//! session are not in a transaction and see none of its uncommitted work.
//! The scenarios are shared with the other adapters.

mod common;

use std::time::Duration;

use common::{SqlxMaria, SqlxPg};
use sqlx::Connection;
use stormpool::{AcquireOptions, Pool};
use stormpool_sqlx::{Backend, SqlxManager};
use stormpool_testkit::transactions::{self, TransactionHarness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_between_statements_postgres() {
    let Some(url) = common::pg_url() else { return };
    transactions::dropped_between_statements::<SqlxPg>(&url, "sqlx_pg_tx_between").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_between_statements_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    transactions::dropped_between_statements::<SqlxMaria>(&url, "sqlx_my_tx_between").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_mid_statement_postgres() {
    let Some(url) = common::pg_url() else { return };
    transactions::dropped_mid_statement::<SqlxPg>(&url, "sqlx_pg_tx_mid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_mid_statement_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    transactions::dropped_mid_statement::<SqlxMaria>(&url, "sqlx_my_tx_mid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_inside_a_transaction_postgres() {
    let Some(url) = common::pg_url() else { return };
    transactions::error_inside_transaction::<SqlxPg>(&url, "sqlx_pg_tx_error").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_inside_a_transaction_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    transactions::error_inside_transaction::<SqlxMaria>(&url, "sqlx_my_tx_error").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_transaction_dropped_without_commit_postgres() {
    let Some(url) = common::pg_url() else { return };
    transactions::tracked_transaction_dropped::<SqlxPg>(&url, "sqlx_pg_tx_tracked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_transaction_dropped_without_commit_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    transactions::tracked_transaction_dropped::<SqlxMaria>(&url, "sqlx_my_tx_tracked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_savepoint_rollback_postgres() {
    let Some(url) = common::pg_url() else { return };
    transactions::nested_savepoint_rollback::<SqlxPg>(&url, "sqlx_pg_tx_nested").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_savepoint_rollback_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    transactions::nested_savepoint_rollback::<SqlxMaria>(&url, "sqlx_my_tx_nested").await;
}

/// sqlx's own transaction, begun on the driver's connection (`&mut **conn`,
/// untracked) and dropped half-way: the next request is not inside it.
async fn sqlx_transaction_on_the_raw_connection<DB, H>(url: &str, table: &str)
where
    DB: Backend,
    H: TransactionHarness<M = SqlxManager<DB>>,
{
    H::create_table(url, table).await;
    let pool = Pool::builder(H::manager(url, "stormpool_sqlx_raw_tx"))
        .max_size(1)
        .build()
        .expect("pool");
    let within = || AcquireOptions::new().timeout(Duration::from_secs(10));
    let mut conn = pool.get_with(within()).await.expect("acquire");
    {
        let tx = Connection::begin(&mut **conn).await.expect("BEGIN");
        drop(tx);
    }
    drop(conn);
    let mut conn = pool.get_with(within()).await.expect("acquire");
    assert!(!H::in_transaction(&mut conn).await.expect("in transaction"));
    drop(conn);
    assert_eq!(pool.status().counters.connects_ok, 1, "the same session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_transaction_on_the_driver_connection_postgres() {
    let Some(url) = common::pg_url() else { return };
    sqlx_transaction_on_the_raw_connection::<_, SqlxPg>(&url, "sqlx_pg_raw_tx").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_transaction_on_the_driver_connection_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    sqlx_transaction_on_the_raw_connection::<_, SqlxMaria>(&url, "sqlx_my_raw_tx").await;
}
