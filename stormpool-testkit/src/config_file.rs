//! A service's configuration file (TOML) read with serde: the database URL
//! and the pool's settings, as a service might keep them beside its own.

use std::time::Duration;

use serde::Deserialize;
use stormpool::{Manager, Pool};

/// The pool settings every adapter's file carries (a name, a size and an
/// acquire timeout), checked by [`pool_of`].
pub const COMMON_POOL_SETTINGS: &str =
    "name = \"orders\"\nmax_size = 3\nacquire_timeout = \"750ms\"\n";

/// What a service might keep in its own configuration file.
#[derive(Debug, Deserialize)]
pub struct ServiceConfig {
    /// The `[database]` table.
    pub database: DatabaseConfig,
}

/// The `[database]` table: the URL and the pool's settings.
#[derive(Debug, Deserialize)]
pub struct DatabaseConfig {
    /// The database's URL.
    pub url: String,
    /// The pool's settings (`[database.pool]`), the defaults if absent.
    #[serde(default)]
    pub pool: stormpool::Config,
}

/// Parses a configuration file's text; the error names what is wrong.
pub fn parse(text: &str) -> Result<ServiceConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// The configuration of a `[database]` table naming `url`, with the pool
/// settings [`COMMON_POOL_SETTINGS`] and `pool` (more TOML lines of
/// `[database.pool]`), written to a file of its own and read back from it,
/// as a service reads its file.
///
/// # Panics
///
/// When the file cannot be written or read, or does not parse.
pub fn through_a_file(url: &str, pool: &str) -> ServiceConfig {
    let text =
        format!("[database]\nurl = \"{url}\"\n\n[database.pool]\n{COMMON_POOL_SETTINGS}{pool}");
    let path = std::env::temp_dir().join(format!(
        "stormpool-config-{}-{:?}.toml",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&path, text).expect("write the file");
    let read = std::fs::read_to_string(&path).expect("read the file");
    std::fs::remove_file(&path).ok();
    parse(&read).expect("a valid file")
}

/// A pool of `manager` with the file's pool settings `config`: the common
/// ones ([`COMMON_POOL_SETTINGS`]) took effect.
///
/// # Panics
///
/// When the settings are not a valid pool configuration.
pub fn pool_of<M: Manager>(manager: M, config: stormpool::Config) -> Pool<M> {
    let pool = Pool::builder(manager)
        .config(config)
        .build()
        .expect("a valid pool configuration");
    assert_eq!(pool.config().name, "orders");
    assert_eq!(pool.config().acquire_timeout, Duration::from_millis(750));
    assert_eq!(pool.status().max_size, 3);
    pool
}
