//! A service's configuration file (TOML) builds a working pool: the
//! database URL and the pool's settings, read with serde (feature `serde`).

mod common;

use std::time::Duration;

use serde::Deserialize;
use stormpool_postgres::{PgManager, Pool};

/// What a service might keep in its own configuration file.
#[derive(Deserialize)]
struct ServiceConfig {
    database: DatabaseConfig,
}

#[derive(Deserialize)]
struct DatabaseConfig {
    url: String,
    #[serde(default)]
    pool: stormpool::Config,
}

#[tokio::test]
async fn a_toml_file_builds_a_working_pool() {
    let Some(url) = common::url() else { return };
    let text = format!(
        r#"
[database]
url = "{url}"

[database.pool]
name = "orders"
max_size = 3
acquire_timeout = "750ms"
max_hold = "30s"
idle_timeout = "none"
codel = {{ target = "10ms" }}
"#
    );
    let path = std::env::temp_dir().join(format!("stormpool-config-{}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write the file");
    let read = std::fs::read_to_string(&path).expect("read the file");
    std::fs::remove_file(&path).ok();
    let config: ServiceConfig = toml::from_str(&read).expect("a valid file");

    let manager = PgManager::from_url(&config.database.url).expect("the URL");
    let pool: Pool = Pool::builder(manager)
        .config(config.database.pool)
        .build()
        .expect("a valid pool configuration");
    assert_eq!(pool.config().name, "orders");
    assert_eq!(pool.config().acquire_timeout, Duration::from_millis(750));
    assert_eq!(pool.config().max_hold, Some(Duration::from_secs(30)));
    assert_eq!(pool.config().idle_timeout, None);
    assert_eq!(pool.status().max_size, 3);

    let conn = pool.get().await.expect("acquire");
    let row = conn.query_one("SELECT 40 + 2", &[]).await.expect("query");
    assert_eq!(row.get::<_, i32>(0), 42);
}

#[test]
fn a_bad_value_in_the_file_is_named() {
    let text =
        "[database]\nurl = \"postgres://app@db/app\"\n[database.pool]\nmax_hold = \"30 seconds\"\n";
    let error = toml::from_str::<ServiceConfig>(text)
        .err()
        .expect("refused");
    let error = error.to_string();
    assert!(error.contains("max_hold"), "{error}");
    assert!(error.contains("a duration with its unit"), "{error}");
}
