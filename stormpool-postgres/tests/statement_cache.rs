//! `prepare_cached`: statements are prepared once per session, the cache
//! keeps at most its capacity (evicted statements are closed on the
//! server), a reset empties it, and the manager counts hits and misses.

mod common;

use stormpool::{AcquireOptions, Pool, Settings};
use stormpool_postgres::{ManagerConfig, PgManager};

fn pool(url: &str, capacity: usize) -> Pool<PgManager> {
    let mut options = ManagerConfig::default();
    options.statement_cache_capacity = capacity;
    Pool::builder(PgManager::new(common::config(url, "stormpool_cache")).options(options))
        .max_size(1)
        .build()
        .expect("pool")
}

async fn server_prepared(conn: &stormpool_postgres::PgConnection) -> i64 {
    conn.query_one(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement NOT LIKE '%pg_prepared%'",
        &[],
    )
    .await
    .expect("pg_prepared_statements")
    .get(0)
}

#[tokio::test]
async fn the_bound_is_respected_and_the_hit_rate_reported() {
    let Some(url) = common::url() else { return };
    let pool = pool(&url, 3);
    let queries: Vec<String> = (0..5).map(|i| format!("SELECT {i}::int4 + $1")).collect();
    // Two hot statements, used over and over: prepared once each.
    for _ in 0..50 {
        let conn = pool.get().await.expect("acquire");
        for query in &queries[..2] {
            let statement = conn.prepare_cached(query).await.expect("prepare");
            conn.query_one(&statement, &[&1i32]).await.expect("query");
        }
    }
    let stats = pool.manager().stats();
    assert_eq!((stats.cache_hits, stats.cache_misses), (98, 2));
    // Five distinct statements through a cache of three.
    let conn = pool.get().await.expect("acquire");
    for query in &queries {
        conn.prepare_cached(query).await.expect("prepare");
    }
    assert_eq!(conn.cached_statements(), 3);
    // Evicted statements are closed on the server (the driver closes a
    // statement when its last handle drops).
    let prepared = server_prepared(&conn).await;
    assert!(
        prepared <= 3,
        "{prepared} statements prepared on the server"
    );
    let stats = pool.manager().stats();
    println!(
        "measured: statement cache: {} hits, {} misses, hit rate {:.3}, {} held of 3",
        stats.cache_hits,
        stats.cache_misses,
        stats.cache_hit_rate().unwrap_or_default(),
        conn.cached_statements()
    );
    drop(conn);

    // A reset (other settings) drops the server's statements: the cache
    // forgets them too, and the next use prepares again.
    let utc = Settings::new([("TimeZone", "UTC")]);
    let conn = pool
        .get_with(AcquireOptions::new().settings(utc))
        .await
        .expect("acquire");
    let conn = {
        drop(conn);
        pool.get().await.expect("acquire")
    };
    assert_eq!(conn.cached_statements(), 0, "emptied by the reset");
    let statement = conn.prepare_cached(&queries[0]).await.expect("prepare");
    conn.query_one(&statement, &[&1i32])
        .await
        .expect("works after the reset");
}

#[tokio::test]
async fn a_capacity_of_zero_caches_nothing() {
    let Some(url) = common::url() else { return };
    let pool = pool(&url, 0);
    let conn = pool.get().await.expect("acquire");
    for _ in 0..3 {
        conn.prepare_cached("SELECT 1").await.expect("prepare");
    }
    assert_eq!(conn.cached_statements(), 0);
    assert_eq!(pool.manager().stats().cache_misses, 3);
}
