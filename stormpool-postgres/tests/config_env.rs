//! The environment builds a working pool: libpq's `PG*` variables alone,
//! and `DATABASE_URL` completed by them.
//!
//! One test in its own binary: it sets process-wide variables, which no
//! other thread may read meanwhile.

mod common;

use stormpool_postgres::tokio_postgres::config::Host;
use stormpool_postgres::{PgManager, Pool};

const VARIABLES: [&str; 7] = [
    "DATABASE_URL",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGAPPNAME",
];

async fn application_name(pool: &Pool) -> String {
    let conn = pool.get().await.expect("acquire");
    conn.query_one("SELECT current_setting('application_name')", &[])
        .await
        .expect("query")
        .get(0)
}

#[tokio::test]
async fn the_environment_builds_a_working_pool() {
    let Some(url) = common::url() else { return };
    let config: stormpool_postgres::tokio_postgres::Config = url.parse().expect("STORMPOOL_PG_URL");
    for variable in VARIABLES {
        std::env::remove_var(variable);
    }

    // libpq's variables alone, as psql would read them.
    match &config.get_hosts()[0] {
        Host::Tcp(host) => std::env::set_var("PGHOST", host),
        #[cfg(unix)]
        Host::Unix(path) => std::env::set_var("PGHOST", path),
    }
    if let Some(port) = config.get_ports().first() {
        std::env::set_var("PGPORT", port.to_string());
    }
    std::env::set_var(
        "PGUSER",
        config.get_user().expect("a user in STORMPOOL_PG_URL"),
    );
    if let Some(password) = config.get_password() {
        std::env::set_var("PGPASSWORD", String::from_utf8_lossy(password).as_ref());
    }
    if let Some(dbname) = config.get_dbname() {
        std::env::set_var("PGDATABASE", dbname);
    }
    std::env::set_var("PGAPPNAME", "stormpool_from_pg_vars");
    let pool: Pool = Pool::builder(PgManager::from_env().expect("PG* variables"))
        .max_size(2)
        .build()
        .expect("pool");
    assert_eq!(application_name(&pool).await, "stormpool_from_pg_vars");

    // DATABASE_URL names the server; PGAPPNAME fills in what it leaves out,
    // and PGHOST, now wrong, is not used.
    std::env::set_var("DATABASE_URL", &url);
    std::env::set_var("PGHOST", "no-such-host.invalid");
    std::env::set_var("PGAPPNAME", "stormpool_from_database_url");
    let pool: Pool = Pool::builder(PgManager::from_env().expect("DATABASE_URL"))
        .max_size(2)
        .build()
        .expect("pool");
    assert_eq!(application_name(&pool).await, "stormpool_from_database_url");

    // A bad variable is named, its value never shown.
    std::env::set_var("PGPORT", "54x32");
    std::env::remove_var("DATABASE_URL");
    let error = PgManager::from_env().expect_err("refused");
    assert_eq!(
        error.to_string(),
        "invalid PostgreSQL connection configuration: \
         PGPORT must hold port numbers, separated by commas"
    );

    for variable in VARIABLES {
        std::env::remove_var(variable);
    }
}
