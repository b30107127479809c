//! Basic use against the live server: acquire, query, release, reuse, the
//! checkout probe and a broken connection's removal.

mod common;

use stormpool_testkit::scenarios;

#[tokio::test]
async fn acquire_query_release_and_reuse() {
    let Some(url) = common::url() else { return };
    let pool = common::pool(&url);
    let mut conn = pool.get().await.expect("acquire");
    let sum: Option<i64> = conn.exec_first("SELECT 1 + ?", (41,)).await.expect("query");
    assert_eq!(sum, Some(42));
    scenarios::released_and_reused::<common::MariaDb>(&pool, conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_stay_within_max_size() {
    let Some(url) = common::url() else { return };
    scenarios::concurrent_within_max_size::<common::MariaDb>(&url).await;
}

#[tokio::test]
async fn idle_connection_is_probed_after_check_interval() {
    let Some(url) = common::url() else { return };
    scenarios::probed_after_check_interval::<common::MariaDb>(&url).await;
}

#[tokio::test]
async fn connection_killed_in_use_is_closed_on_return() {
    let Some(url) = common::url() else { return };
    scenarios::killed_in_use::<common::MariaDb>(&url).await;
}
