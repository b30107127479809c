//! Basic use against the live server: acquire, query, release, reuse, the
//! checkout probe and a broken connection's removal.

mod common;

use stormpool::Conn;
use stormpool_postgres::PgManager;

async fn backend_pid(conn: &Conn<PgManager>) -> i32 {
    conn.query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("query")
        .get(0)
}

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
    let pid = backend_pid(&conn).await;
    drop(conn);
    let status = pool.status();
    assert_eq!((status.open, status.idle, status.in_use), (1, 1, 0));

    let conn = pool.get().await.expect("acquire again");
    assert_eq!(
        backend_pid(&conn).await,
        pid,
        "the idle connection is reused"
    );
    assert_eq!(pool.status().counters.connects_ok, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_stay_within_max_size() {
    let Some(url) = common::url() else { return };
    stormpool_testkit::scenarios::concurrent_within_max_size::<common::Pg>(&url).await;
}

#[tokio::test]
async fn idle_connection_is_probed_after_check_interval() {
    let Some(url) = common::url() else { return };
    stormpool_testkit::scenarios::probed_after_check_interval::<common::Pg>(&url).await;
}

#[tokio::test]
async fn connection_killed_in_use_is_closed_on_return() {
    let Some(url) = common::url() else { return };
    stormpool_testkit::scenarios::killed_in_use::<common::Pg>(&url).await;
}
