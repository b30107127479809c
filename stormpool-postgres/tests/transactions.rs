//! Transactions and the hygiene of returned sessions: whatever a request
//! did (a hand-written `BEGIN`, a statement dropped inside a transaction,
//! an error, the adapter's own transaction dropped without commit, the raw
//! client), the next requests on the same session are not in a
//! transaction and see none of its uncommitted work. Checked against the
//! server; the scenarios are shared with the MySQL adapter.

mod common;

use std::time::Duration;

use common::Pg;
use stormpool::AcquireOptions;
use stormpool_postgres::tokio_postgres::IsolationLevel;
use stormpool_testkit::transactions::{self, TransactionHarness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_between_statements_of_a_hand_written_transaction() {
    let Some(url) = common::url() else { return };
    transactions::dropped_between_statements::<Pg>(&url, "stormpool_tx_between").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_mid_statement_inside_a_transaction() {
    let Some(url) = common::url() else { return };
    transactions::dropped_mid_statement::<Pg>(&url, "stormpool_tx_mid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_inside_a_transaction() {
    let Some(url) = common::url() else { return };
    transactions::error_inside_transaction::<Pg>(&url, "stormpool_tx_error").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_transaction_dropped_without_commit_is_rolled_back() {
    let Some(url) = common::url() else { return };
    transactions::tracked_transaction_dropped::<Pg>(&url, "stormpool_tx_tracked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_savepoint_rollback_keeps_the_outer_work() {
    let Some(url) = common::url() else { return };
    transactions::nested_savepoint_rollback::<Pg>(&url, "stormpool_tx_nested").await;
}

/// `BEGIN` through the raw client, bypassing tracking: the status the
/// server reports still sends the connection through a rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_written_begin_through_the_raw_client() {
    let Some(url) = common::url() else { return };
    let pool = common::pool(&url, "stormpool_tx_raw");
    pool.resize(1).expect("resize");
    let conn = pool.get().await.expect("acquire");
    conn.client().batch_execute("BEGIN").await.expect("BEGIN");
    drop(conn);
    let mut conn = pool.get().await.expect("acquire");
    let in_tx = <Pg as TransactionHarness>::in_transaction(&mut conn).await;
    assert!(!in_tx.expect("probe"), "handed out inside a transaction");
}

/// The builder's options reach the server, and a read-only transaction
/// refuses writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builder_sets_isolation_read_only_and_deferrable() {
    let Some(url) = common::url() else { return };
    let pool = common::pool(&url, "stormpool_tx_builder");
    let mut conn = pool
        .get_with(
            AcquireOptions::new()
                .deadline((std::time::Instant::now() + Duration::from_secs(10)).into()),
        )
        .await
        .expect("acquire");
    let tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::Serializable)
        .read_only(true)
        .deferrable(true)
        .start()
        .await
        .expect("BEGIN");
    let show = |name: &'static str| {
        let tx = &tx;
        async move {
            tx.query_one(&format!("SELECT current_setting('{name}')"), &[])
                .await
                .expect("current_setting")
                .get::<_, String>(0)
        }
    };
    assert_eq!(show("transaction_isolation").await, "serializable");
    assert_eq!(show("transaction_read_only").await, "on");
    assert_eq!(show("transaction_deferrable").await, "on");
    let write = tx.batch_execute("CREATE TEMP TABLE t (x int)").await;
    let err = write.expect_err("a write in a read-only transaction");
    assert_eq!(err.code().map(|c| c.code()), Some("25006"), "{err}");
    tx.rollback().await.expect("ROLLBACK");
}

/// Hygiene costs a clean connection nothing but a load on return: every
/// tracked method family, 50 checkouts each, and none is drained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_connections_are_never_drained() {
    let Some(url) = common::url() else { return };
    let pool = common::pool(&url, "stormpool_tx_clean");
    pool.resize(1).expect("resize");
    for i in 0..50i32 {
        let mut conn = pool.get().await.expect("acquire");
        conn.simple_query("SELECT 1").await.expect("simple_query");
        conn.batch_execute("SELECT 1").await.expect("batch_execute");
        conn.query_one("SELECT $1::int4", &[&i])
            .await
            .expect("query_one");
        conn.execute("SELECT $1::int4", &[&i])
            .await
            .expect("execute");
        let statement = conn
            .prepare_cached("SELECT $1::int4")
            .await
            .expect("prepare");
        conn.query(&statement, &[&i]).await.expect("query");
        let tx = conn.transaction().await.expect("BEGIN");
        tx.execute("SELECT 1", &[])
            .await
            .expect("in the transaction");
        tx.commit().await.expect("COMMIT");
    }
    let counters = pool.status().counters;
    assert_eq!(
        (
            counters.recycled_on_return,
            counters.cancelled_on_return,
            counters.drained
        ),
        (0, 0, 0),
        "{counters:?}"
    );
}

/// Where the status byte cannot be read (here: the configuration names the
/// server twice, so the driver connects), the fallback still never hands
/// out a session inside a transaction, open or failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_status_byte_the_fallback_still_rolls_back() {
    let Some(url) = common::url() else { return };
    let mut config = common::config(&url, "stormpool_tx_unseen");
    let hosts = config.get_hosts().to_vec();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    for host in hosts {
        if let stormpool_postgres::tokio_postgres::config::Host::Tcp(host) = host {
            config.host(&host).port(port);
        }
    }
    let pool = stormpool::Pool::builder(stormpool_postgres::PgManager::new(config))
        .max_size(1)
        .build()
        .expect("pool");
    for dirty in ["BEGIN", "BEGIN; SELECT 1/0"] {
        let conn = pool.get().await.expect("acquire");
        let _ = conn.batch_execute(dirty).await;
        drop(conn);
        let mut conn = pool.get().await.expect("acquire");
        let in_tx = <Pg as TransactionHarness>::in_transaction(&mut conn).await;
        assert!(
            !in_tx.expect("probe"),
            "{dirty}: handed out inside a transaction"
        );
    }
    assert_eq!(pool.manager().stats().rolled_back_on_return, 2);
}
