//! Transaction hygiene, on PostgreSQL and MariaDB: whatever a request did
//! (a hand-written `BEGIN`, a statement dropped inside a transaction, an
//! error, diesel's transaction dropped half-way with its connection), the
//! next requests on the same session are not in a transaction and see none
//! of its uncommitted work. The scenarios are shared with the other
//! adapters.

mod common;

use common::{DieselMaria, DieselPg};
use stormpool_testkit::transactions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_between_statements_postgres() {
    let Some(url) = common::pg_url() else { return };
    transactions::dropped_between_statements::<DieselPg>(&url, "diesel_pg_tx_between").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_between_statements_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    transactions::dropped_between_statements::<DieselMaria>(&url, "diesel_my_tx_between").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_mid_statement_postgres() {
    let Some(url) = common::pg_url() else { return };
    transactions::dropped_mid_statement::<DieselPg>(&url, "diesel_pg_tx_mid").await;
}

/// The connection is closed (mysql_async cannot finish the statement), the
/// statement stopped, and the next requests, on a new session, are clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_mid_statement_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    transactions::dropped_mid_statement::<DieselMaria>(&url, "diesel_my_tx_mid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_inside_a_transaction_postgres() {
    let Some(url) = common::pg_url() else { return };
    transactions::error_inside_transaction::<DieselPg>(&url, "diesel_pg_tx_error").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_inside_a_transaction_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    transactions::error_inside_transaction::<DieselMaria>(&url, "diesel_my_tx_error").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diesel_transaction_dropped_half_way_postgres() {
    let Some(url) = common::pg_url() else { return };
    transactions::transaction_dropped_with_its_connection::<DieselPg>(&url, "diesel_pg_tx_dropped")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diesel_transaction_dropped_half_way_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    transactions::transaction_dropped_with_its_connection::<DieselMaria>(
        &url,
        "diesel_my_tx_dropped",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_savepoint_rollback_postgres() {
    let Some(url) = common::pg_url() else { return };
    transactions::nested_savepoint_rollback::<DieselPg>(&url, "diesel_pg_tx_nested").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_savepoint_rollback_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    transactions::nested_savepoint_rollback::<DieselMaria>(&url, "diesel_my_tx_nested").await;
}
