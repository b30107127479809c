//! Basic use against the live servers: acquire, query, release, reuse;
//! concurrent requests within `max_size`; a test transaction that stays
//! open across checkouts; settings refused with a typed error.

mod common;

use common::{DieselMaria, DieselPg};
use diesel::sql_types::{BigInt, Integer};
use diesel_async::AsyncConnection;
use stormpool::{AcquireError, AcquireOptions, Pool, Settings};
use stormpool_diesel_async::{Operation, PgManager};
use stormpool_testkit::scenarios;

#[tokio::test]
async fn acquire_query_release_and_reuse_postgres() {
    let Some(url) = common::pg_url() else { return };
    let pool = common::pg_pool(&url, "diesel_basic");
    let mut conn = pool.get().await.expect("acquire");
    let sum: i32 = common::scalar::<_, _, Integer>(&mut conn, "1 + 41")
        .await
        .expect("query");
    assert_eq!(sum, 42);
    scenarios::released_and_reused::<DieselPg>(&pool, conn).await;
    assert_eq!(pool.manager().stats().rolled_back_on_return, 0);
}

#[tokio::test]
async fn acquire_query_release_and_reuse_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    let pool = common::mysql_pool(&url);
    let mut conn = pool.get().await.expect("acquire");
    let sum: i64 = common::scalar::<_, _, BigInt>(&mut conn, "CAST(1 + 41 AS SIGNED)")
        .await
        .expect("query");
    assert_eq!(sum, 42);
    scenarios::released_and_reused::<DieselMaria>(&pool, conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_stay_within_max_size_postgres() {
    let Some(url) = common::pg_url() else { return };
    scenarios::concurrent_within_max_size::<DieselPg>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_stay_within_max_size_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    scenarios::concurrent_within_max_size::<DieselMaria>(&url).await;
}

/// diesel-async keeps a test transaction open on a pooled connection (its
/// pools do too): the pool does not roll it back.
#[tokio::test]
async fn a_test_transaction_stays_open_postgres() {
    let Some(url) = common::pg_url() else { return };
    let pool = Pool::builder(PgManager::new(common::pg_config(&url, "diesel_test_tx")))
        .max_size(1)
        .build()
        .expect("pool");
    let mut conn = pool.get().await.expect("acquire");
    conn.begin_test_transaction()
        .await
        .expect("test transaction");
    drop(conn);
    let mut conn = pool.get().await.expect("acquire");
    assert!(DieselPg::in_transaction_now(&mut conn).await);
}

/// diesel's own transaction, committed or rolled back, leaves nothing to
/// clean up: the connection goes back to the pool with no round trip.
#[tokio::test]
async fn an_ended_transaction_costs_nothing_on_return_postgres() {
    let Some(url) = common::pg_url() else { return };
    let pool = Pool::builder(PgManager::new(common::pg_config(&url, "diesel_tx_ended")))
        .max_size(1)
        .build()
        .expect("pool");
    for commit in [true, false] {
        let mut conn = pool.get().await.expect("acquire");
        let outcome = conn
            .transaction::<i32, diesel::result::Error, _>(async |conn| {
                let one = common::scalar::<_, _, Integer>(conn, "1").await?;
                if commit {
                    Ok(one)
                } else {
                    Err(diesel::result::Error::RollbackTransaction)
                }
            })
            .await;
        assert_eq!(outcome.is_ok(), commit);
    }
    let counters = pool.status().counters;
    assert_eq!(
        (counters.recycled_on_return, counters.drained),
        (0, 0),
        "{counters:?}"
    );
}

#[tokio::test]
async fn settings_are_refused_with_a_typed_error() {
    let Some(url) = common::pg_url() else { return };
    let pool = common::pg_pool(&url, "diesel_settings");
    let utc = Settings::new([("TimeZone", "UTC")]);
    match pool.get_with(AcquireOptions::new().settings(utc)).await {
        Err(AcquireError::Apply(e)) => assert_eq!(e.operation(), Operation::Apply),
        other => panic!("expected an apply error, got {:?}", other.map(drop)),
    }
}
