//! `prepare_cached`: statements are prepared once per session, the cache
//! keeps at most its capacity, a reset empties it, and the manager counts
//! hits and misses.

mod common;

use stormpool::{AcquireOptions, Pool, Settings};
use stormpool_mysql::mysql_async::Opts;
use stormpool_mysql::{ManagerConfig, MySqlManager};

fn pool(url: &str, capacity: usize) -> Pool<MySqlManager> {
    let mut options = ManagerConfig::default();
    options.statement_cache_capacity = capacity;
    let opts = Opts::from_url(url).expect("STORMPOOL_MYSQL_URL");
    Pool::builder(MySqlManager::new(opts).options(options))
        .max_size(1)
        .build()
        .expect("pool")
}

#[tokio::test]
async fn the_bound_is_respected_and_the_hit_rate_reported() {
    let Some(url) = common::url() else { return };
    let pool = pool(&url, 3);
    let queries: Vec<String> = (0..5).map(|i| format!("SELECT {i} + ?")).collect();
    for _ in 0..50 {
        let mut conn = pool.get().await.expect("acquire");
        for query in &queries[..2] {
            let statement = conn.prepare_cached(query).await.expect("prepare");
            let n: Option<i64> = conn.exec_first(statement, (1,)).await.expect("exec");
            assert!(n.is_some());
        }
    }
    let stats = pool.manager().stats();
    assert_eq!((stats.cache_hits, stats.cache_misses), (98, 2));
    let mut conn = pool.get().await.expect("acquire");
    for query in &queries {
        conn.prepare_cached(query).await.expect("prepare");
    }
    assert_eq!(conn.cached_statements(), 3);
    let stats = pool.manager().stats();
    println!(
        "measured: statement cache: {} hits, {} misses, hit rate {:.3}, {} held of 3",
        stats.cache_hits,
        stats.cache_misses,
        stats.cache_hit_rate().unwrap_or_default(),
        conn.cached_statements()
    );
    drop(conn);

    // A reset (other settings than the session carries) empties it, and
    // statements work after it.
    let utc = Settings::new([("time_zone", "+00:00")]);
    let conn = pool
        .get_with(AcquireOptions::new().settings(utc))
        .await
        .expect("acquire");
    drop(conn);
    let mut conn = pool.get().await.expect("acquire");
    assert_eq!(conn.cached_statements(), 0, "emptied by the reset");
    let statement = conn.prepare_cached(&queries[0]).await.expect("prepare");
    let n: Option<i64> = conn
        .exec_first(statement, (1,))
        .await
        .expect("after the reset");
    assert_eq!(n, Some(1));
}
