//! A service's configuration file (TOML) builds a working pool: the
//! database URL and the pool's settings, read with serde (feature `serde`).

mod common;

use std::time::Duration;

use stormpool_mysql::{MySqlManager, Pool};
use stormpool_testkit::config_file;

#[tokio::test]
async fn a_toml_file_builds_a_working_pool() {
    let Some(url) = common::url() else { return };
    let pool_settings = r#"
max_lifetime = "10min"
deadline_aware = "learned_hold"
"#;
    let config = config_file::through_a_file(&url, pool_settings);

    let manager = MySqlManager::from_url(&config.database.url).expect("the URL");
    let pool: Pool = config_file::pool_of(manager, config.database.pool);
    assert_eq!(pool.config().max_lifetime, Some(Duration::from_secs(600)));

    let mut conn = pool.get().await.expect("acquire");
    let answer: Option<i64> = conn.query_first("SELECT 40 + 2").await.expect("query");
    assert_eq!(answer, Some(42));
}
