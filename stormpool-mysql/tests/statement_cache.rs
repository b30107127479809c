//! `prepare_cached`: statements are prepared once per session, the cache
//! keeps at most its capacity, a reset empties it, and the manager counts
//! hits and misses.

mod common;

use common::MariaDb;
use stormpool::{Conn, Pool, Settings};
use stormpool_mysql::mysql_async::{Opts, Statement};
use stormpool_mysql::{ManagerConfig, MySqlManager};
use stormpool_testkit::statements::{self, CacheHarness};

impl CacheHarness for MariaDb {
    type Statement = Statement;

    fn cache_pool(url: &str, capacity: usize) -> Pool<MySqlManager> {
        let mut options = ManagerConfig::default();
        options.statement_cache_capacity = capacity;
        let opts = Opts::from_url(url).expect("STORMPOOL_MYSQL_URL");
        Pool::builder(MySqlManager::new(opts).options(options))
            .max_size(1)
            .build()
            .expect("pool")
    }

    fn numbered(i: usize) -> String {
        format!("SELECT {i} + ?")
    }

    async fn prepare_cached(conn: &mut Conn<MySqlManager>, sql: &str) -> Statement {
        conn.prepare_cached(sql).await.expect("prepare")
    }

    async fn run(conn: &mut Conn<MySqlManager>, statement: &Statement) -> i64 {
        let n: Option<i64> = conn
            .exec_first(statement.clone(), (1,))
            .await
            .expect("exec");
        n.expect("a row")
    }

    fn cached_statements(conn: &Conn<MySqlManager>) -> usize {
        conn.cached_statements()
    }

    async fn server_prepared(_conn: &mut Conn<MySqlManager>) -> Option<i64> {
        None
    }

    fn other_settings() -> Settings {
        Settings::new([("time_zone", "+00:00")])
    }
}

#[tokio::test]
async fn the_bound_is_respected_and_the_hit_rate_reported() {
    let Some(url) = common::url() else { return };
    statements::cache_bound_and_hit_rate::<MariaDb>(&url).await;
}
