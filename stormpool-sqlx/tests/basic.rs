//! Basic use against the live servers: acquire, query, release, reuse;
//! concurrent requests within `max_size`; session settings never leaking
//! to a request that asked for others.

mod common;

use common::{SqlxMaria, SqlxPg};
use stormpool::Manager;
use stormpool_testkit::scenarios;

#[tokio::test]
async fn acquire_query_release_and_reuse_postgres() {
    let Some(url) = common::pg_url() else { return };
    let pool = common::pg_pool(&url, "sqlx_basic");
    let mut conn = pool.get().await.expect("acquire");
    let sum: i32 = sqlx::query_scalar("SELECT 1 + $1")
        .bind(41_i32)
        .fetch_one(&mut *conn)
        .await
        .expect("query");
    assert_eq!(sum, 42);
    let pid = conn.session().pid();
    let token = pool.manager().cancel_token(&conn);
    assert_eq!(token.pid(), pid);
    scenarios::released_and_reused::<SqlxPg>(&pool, conn).await;
    assert_eq!(pool.manager().stats().rolled_back_on_return, 0);
}

#[tokio::test]
async fn acquire_query_release_and_reuse_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    let pool = common::mysql_pool(&url);
    let mut conn = pool.get().await.expect("acquire");
    let sum: i64 = sqlx::query_scalar("SELECT 1 + ?")
        .bind(41_i64)
        .fetch_one(&mut *conn)
        .await
        .expect("query");
    assert_eq!(sum, 42);
    scenarios::released_and_reused::<SqlxMaria>(&pool, conn).await;
}

/// A hand-written transaction ended by a bare `COMMIT`, and a tracked one
/// committed, leave nothing to clean up: no round trip on return.
#[tokio::test]
async fn an_ended_transaction_costs_nothing_on_return_postgres() {
    let Some(url) = common::pg_url() else { return };
    let pool = stormpool::Pool::builder(stormpool_sqlx::PgManager::new(common::pg_options(
        &url,
        "sqlx_tx_ended",
    )))
    .max_size(1)
    .build()
    .expect("pool");
    let mut conn = pool.get().await.expect("acquire");
    sqlx::Executor::execute(&mut *conn, "BEGIN")
        .await
        .expect("BEGIN");
    sqlx::Executor::execute(&mut *conn, "COMMIT")
        .await
        .expect("COMMIT");
    drop(conn);
    let mut conn = pool.get().await.expect("acquire");
    let tx = conn.begin().await.expect("BEGIN");
    tx.commit().await.expect("COMMIT");
    drop(conn);
    let counters = pool.status().counters;
    assert_eq!(
        (counters.recycled_on_return, counters.drained),
        (0, 0),
        "{counters:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_stay_within_max_size_postgres() {
    let Some(url) = common::pg_url() else { return };
    scenarios::concurrent_within_max_size::<SqlxPg>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_stay_within_max_size_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    scenarios::concurrent_within_max_size::<SqlxMaria>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_never_reach_a_request_that_asked_for_others_postgres() {
    let Some(url) = common::pg_url() else { return };
    scenarios::mixed_settings::<SqlxPg>(&url, "TimeZone", &["UTC", "Asia/Tokyo"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_never_reach_a_request_that_asked_for_others_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    scenarios::mixed_settings::<SqlxMaria>(&url, "time_zone", &["+00:00", "+09:00"]).await;
}
