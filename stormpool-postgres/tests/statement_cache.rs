//! `prepare_cached`: statements are prepared once per session, the cache
//! keeps at most its capacity (evicted statements are closed on the
//! server), a reset empties it, and the manager counts hits and misses.

mod common;

use common::Pg;
use stormpool::{Conn, Pool, Settings};
use stormpool_postgres::tokio_postgres::Statement;
use stormpool_postgres::{ManagerConfig, PgManager};
use stormpool_testkit::statements::{self, CacheHarness};

impl CacheHarness for Pg {
    type Statement = Statement;

    fn cache_pool(url: &str, capacity: usize) -> Pool<PgManager> {
        let mut options = ManagerConfig::default();
        options.statement_cache_capacity = capacity;
        Pool::builder(PgManager::new(common::config(url, "stormpool_cache")).options(options))
            .max_size(1)
            .build()
            .expect("pool")
    }

    fn numbered(i: usize) -> String {
        format!("SELECT {i}::int4 + $1")
    }

    async fn prepare_cached(conn: &mut Conn<PgManager>, sql: &str) -> Statement {
        conn.prepare_cached(sql).await.expect("prepare")
    }

    async fn run(conn: &mut Conn<PgManager>, statement: &Statement) -> i64 {
        let row = conn.query_one(statement, &[&1i32]).await.expect("query");
        row.get::<_, i32>(0).into()
    }

    fn cached_statements(conn: &Conn<PgManager>) -> usize {
        conn.cached_statements()
    }

    /// The driver closes a statement when its last handle drops.
    async fn server_prepared(conn: &mut Conn<PgManager>) -> Option<i64> {
        let row = conn
            .query_one(
                "SELECT count(*) FROM pg_prepared_statements \
                 WHERE statement NOT LIKE '%pg_prepared%'",
                &[],
            )
            .await
            .expect("pg_prepared_statements");
        Some(row.get(0))
    }

    fn other_settings() -> Settings {
        Settings::new([("TimeZone", "UTC")])
    }
}

#[tokio::test]
async fn the_bound_is_respected_and_the_hit_rate_reported() {
    let Some(url) = common::url() else { return };
    statements::cache_bound_and_hit_rate::<Pg>(&url).await;
}

#[tokio::test]
async fn a_capacity_of_zero_caches_nothing() {
    let Some(url) = common::url() else { return };
    statements::zero_capacity_caches_nothing::<Pg>(&url).await;
}
