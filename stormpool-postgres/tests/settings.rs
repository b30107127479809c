//! Session settings, verified by reading the server's session state: a
//! connection carrying settings is never handed to a request asking for
//! other ones without a reset.

mod common;

use stormpool::{AcquireOptions, Conn, Settings};
use stormpool_postgres::{ManagerConfig, PgManager};
use stormpool_testkit::{errors, scenarios};

async fn show(conn: &Conn<PgManager>, name: &str) -> String {
    common::tracked_scalar(conn, &format!("SHOW {name}"))
        .await
        .expect("SHOW returns a row")
}

#[tokio::test]
async fn settings_are_applied_and_reset() {
    let Some(url) = common::url() else { return };
    let pool = common::pool(&url, "stormpool_settings");
    let default_tz = common::scalar(&common::side(&url).await, "SHOW TimeZone")
        .await
        .expect("default time zone");
    let utc = Settings::new([("TimeZone", "UTC")]);
    let tokyo = Settings::new([("TimeZone", "Asia/Tokyo")]);

    let conn = pool
        .get_with(AcquireOptions::new().settings(utc.clone()))
        .await
        .expect("acquire");
    assert_eq!(show(&conn, "TimeZone").await, "UTC");
    // State the request added on its own must not survive a reset either.
    conn.batch_execute("SET statement_timeout = 1234")
        .await
        .expect("SET");
    drop(conn);

    let conn = pool
        .get_with(AcquireOptions::new().settings(tokyo))
        .await
        .expect("acquire");
    assert_eq!(show(&conn, "TimeZone").await, "Asia/Tokyo");
    assert_eq!(show(&conn, "statement_timeout").await, "0");
    drop(conn);

    let conn = pool.get().await.expect("acquire");
    assert_eq!(show(&conn, "TimeZone").await, default_tz);
    drop(conn);
    assert_eq!(
        pool.status().counters.connects_ok,
        1,
        "one connection served all: {:?}",
        pool.status()
    );
}

#[tokio::test]
async fn the_reset_statement_is_configurable() {
    let Some(url) = common::url() else { return };
    let mut options = ManagerConfig::default();
    options.reset_statement = "RESET ALL".to_owned();
    let manager = PgManager::new(common::config(&url, "stormpool_settings_reset")).options(options);
    let pool = stormpool::Pool::builder(manager).build().expect("pool");
    let utc = Settings::new([("TimeZone", "UTC")]);
    let conn = pool
        .get_with(AcquireOptions::new().settings(utc))
        .await
        .expect("acquire");
    conn.batch_execute("PREPARE kept AS SELECT 1")
        .await
        .expect("PREPARE");
    drop(conn);
    let conn = pool.get().await.expect("acquire");
    assert_ne!(show(&conn, "TimeZone").await, "UTC");
    // RESET ALL, unlike DISCARD ALL, keeps prepared statements.
    conn.batch_execute("EXECUTE kept")
        .await
        .expect("still prepared");
}

#[tokio::test]
async fn list_values_keep_their_meaning() {
    let Some(url) = common::url() else { return };
    let pool = common::pool(&url, "stormpool_settings_list");
    let path = Settings::new([("search_path", "pg_catalog, public")]);
    let conn = pool
        .get_with(AcquireOptions::new().settings(path))
        .await
        .expect("acquire");
    assert_eq!(show(&conn, "search_path").await, "pg_catalog, public");
}

#[tokio::test]
async fn bad_settings_fail_the_request_with_apply() {
    let Some(url) = common::url() else { return };
    let injected = "TimeZone = 'UTC'; DROP TABLE x; --";
    errors::bad_settings_fail_with_apply::<common::Pg>(
        &url,
        injected,
        "no_such_parameter",
        "42704",
    )
    .await;
}

/// Requests asking for different time zones, at random, on few
/// connections: every one sees exactly the time zone it asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_settings_never_leak_between_requests() {
    let Some(url) = common::url() else { return };
    let zones = ["UTC", "Asia/Tokyo", "Europe/Paris"];
    scenarios::mixed_settings::<common::Pg>(&url, "TimeZone", &zones).await;
}
