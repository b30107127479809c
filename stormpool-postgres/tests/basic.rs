//! Basic use against the live server: acquire, query, release, reuse, the
//! checkout probe and a broken connection's removal.

mod common;

use stormpool_testkit::scenarios;

#[tokio::test]
async fn acquire_query_release_and_reuse() {
    let Some(url) = common::url() else { return };
    let pool = common::pool(&url, "stormpool_basic");
    let conn = pool.get().await.expect("acquire");
    let row = conn
        .query_one("SELECT 1::int4 + $1", &[&41i32])
        .await
        .expect("query");
    assert_eq!(row.get::<_, i32>(0), 42);
    scenarios::released_and_reused::<common::Pg>(&pool, conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_stay_within_max_size() {
    let Some(url) = common::url() else { return };
    scenarios::concurrent_within_max_size::<common::Pg>(&url).await;
}

#[tokio::test]
async fn idle_connection_is_probed_after_check_interval() {
    let Some(url) = common::url() else { return };
    scenarios::probed_after_check_interval::<common::Pg>(&url).await;
}

#[tokio::test]
async fn connection_killed_in_use_is_closed_on_return() {
    let Some(url) = common::url() else { return };
    scenarios::killed_in_use::<common::Pg>(&url).await;
}
