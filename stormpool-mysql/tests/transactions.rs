//! Transactions and the hygiene of returned sessions on MariaDB: whatever
//! a request did (a hand-written `BEGIN`, a statement dropped inside a
//! transaction, an error, the adapter's own transaction dropped without
//! commit), the next requests on the same session are not in a
//! transaction and see none of its uncommitted work. The scenarios are
//! shared with the PostgreSQL adapter.

mod common;

use common::MariaDb;
use stormpool_mysql::mysql_async::IsolationLevel;
use stormpool_testkit::transactions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_between_statements_of_a_hand_written_transaction() {
    let Some(url) = common::url() else { return };
    transactions::dropped_between_statements::<MariaDb>(&url, "stormpool_tx_between").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_mid_statement_inside_a_transaction() {
    let Some(url) = common::url() else { return };
    transactions::dropped_mid_statement::<MariaDb>(&url, "stormpool_tx_mid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_inside_a_transaction() {
    let Some(url) = common::url() else { return };
    transactions::error_inside_transaction::<MariaDb>(&url, "stormpool_tx_error").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_transaction_dropped_without_commit_is_rolled_back() {
    let Some(url) = common::url() else { return };
    transactions::tracked_transaction_dropped::<MariaDb>(&url, "stormpool_tx_tracked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_savepoint_rollback_keeps_the_outer_work() {
    let Some(url) = common::url() else { return };
    transactions::nested_savepoint_rollback::<MariaDb>(&url, "stormpool_tx_nested").await;
}

/// The builder's options reach the server, and a read-only transaction
/// refuses writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builder_sets_isolation_read_only_and_snapshot() {
    let Some(url) = common::url() else { return };
    let pool = common::pool(&url);
    let mut conn = pool.get().await.expect("acquire");
    conn.query_drop("CREATE TABLE IF NOT EXISTS stormpool_tx_ro (x INT) ENGINE = InnoDB")
        .await
        .expect("create");
    let mut tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::Serializable)
        .read_only(true)
        .consistent_snapshot(true)
        .start()
        .await
        .expect("START TRANSACTION");
    // The consistent snapshot started the transaction in InnoDB at once.
    let isolation: Option<String> = tx
        .query_first(
            "SELECT trx_isolation_level FROM information_schema.innodb_trx \
             WHERE trx_mysql_thread_id = CONNECTION_ID()",
        )
        .await
        .expect("isolation");
    assert_eq!(isolation.as_deref(), Some("SERIALIZABLE"));
    let write = tx
        .query_drop("INSERT INTO stormpool_tx_ro VALUES (1)")
        .await;
    let err = write.expect_err("a write in a read-only transaction");
    assert_eq!(
        stormpool_mysql::Classify::server_code(&err),
        Some(1792),
        "{err}"
    );
    tx.rollback().await.expect("ROLLBACK");
}
