//! A service's configuration file (TOML) builds a working pool: the
//! database URL and the pool's settings, read with serde (feature `serde`).

mod common;

use std::time::Duration;

use stormpool_postgres::{PgManager, Pool};
use stormpool_testkit::config_file;

#[tokio::test]
async fn a_toml_file_builds_a_working_pool() {
    let Some(url) = common::url() else { return };
    let pool_settings = r#"
max_hold = "30s"
idle_timeout = "none"
codel = { target = "10ms" }
"#;
    let config = config_file::through_a_file(&url, pool_settings);

    let manager = PgManager::from_url(&config.database.url).expect("the URL");
    let pool: Pool = config_file::pool_of(manager, config.database.pool);
    assert_eq!(pool.config().max_hold, Some(Duration::from_secs(30)));
    assert_eq!(pool.config().idle_timeout, None);

    let conn = pool.get().await.expect("acquire");
    let row = conn.query_one("SELECT 40 + 2", &[]).await.expect("query");
    assert_eq!(row.get::<_, i32>(0), 42);
}

#[test]
fn a_bad_value_in_the_file_is_named() {
    let text =
        "[database]\nurl = \"postgres://app@db/app\"\n[database.pool]\nmax_hold = \"30 seconds\"\n";
    let error = config_file::parse(text).expect_err("refused");
    assert!(error.contains("max_hold"), "{error}");
    assert!(error.contains("a duration with its unit"), "{error}");
}
