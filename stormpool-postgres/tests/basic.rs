//! Basic use against the live server: acquire, query, release, reuse, the
//! checkout probe and a broken connection's removal.

mod common;

use std::time::Duration;

use stormpool::{Conn, Pool};
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
    let pool = common::pool(&url, "stormpool_basic_concurrent");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    let conn = pool.get().await.expect("acquire");
                    conn.simple_query("SELECT 1").await.expect("query");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let status = pool.status();
    assert!(status.open <= 4);
    assert!(status.counters.connects_ok <= 4);
    assert_eq!(
        status.counters.acquired_direct + status.counters.acquired_waited,
        320
    );
}

#[tokio::test]
async fn idle_connection_is_probed_after_check_interval() {
    let Some(url) = common::url() else { return };
    let pool = Pool::builder(PgManager::new(common::config(&url, "stormpool_probe")))
        .check_interval(Duration::from_millis(20))
        .build()
        .expect("pool");
    drop(pool.get().await.expect("acquire"));
    let hot = pool.get().await.expect("hot");
    drop(hot);
    assert_eq!(
        pool.status().counters.checks,
        0,
        "a hot connection is not probed"
    );
    tokio::time::sleep(Duration::from_millis(40)).await;
    drop(pool.get().await.expect("cold"));
    assert_eq!(pool.status().counters.checks, 1);
}

#[tokio::test]
async fn connection_killed_in_use_is_closed_on_return() {
    let Some(url) = common::url() else { return };
    let pool = common::pool(&url, "stormpool_basic_killed");
    let conn = pool.get().await.expect("acquire");
    let pid = backend_pid(&conn).await;
    let side = common::side(&url).await;
    side.execute("SELECT pg_terminate_backend($1, 5000)", &[&pid])
        .await
        .expect("terminate");
    let err = conn.simple_query("SELECT 1").await.expect_err("killed");
    use stormpool_postgres::Classify;
    assert!(err.is_connection_error(), "{err:?}");
    drop(conn);
    let status = pool.status();
    assert_eq!(status.counters.closed_broken, 1);
    assert_eq!(status.open, 0);
    let conn = pool.get().await.expect("a new connection");
    assert_ne!(backend_pid(&conn).await, pid);
}
