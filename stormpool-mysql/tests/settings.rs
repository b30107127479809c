//! Session variables, verified by reading the server's session state: a
//! connection carrying settings is never handed to a request asking for
//! other ones without a reset.

mod common;

use stormpool::{AcquireOptions, Conn, Settings};
use stormpool_mysql::mysql_async::prelude::Queryable;
use stormpool_mysql::MySqlManager;
use stormpool_testkit::{errors, scenarios};

async fn time_zone(conn: &mut Conn<MySqlManager>) -> String {
    conn.query_first("SELECT @@session.time_zone")
        .await
        .expect("query")
        .expect("a row")
}

#[tokio::test]
async fn settings_are_applied_and_reset() {
    let Some(url) = common::url() else { return };
    let pool = common::pool(&url);
    let mut side = common::side(&url).await;
    let default_tz: String = side
        .query_first("SELECT @@session.time_zone")
        .await
        .expect("query")
        .expect("row");
    let utc = Settings::new([("time_zone", "+00:00"), ("wait_timeout", "600")]);
    let tokyo = Settings::new([("time_zone", "+09:00")]);

    let mut conn = pool
        .get_with(AcquireOptions::new().settings(utc))
        .await
        .expect("acquire");
    assert_eq!(time_zone(&mut conn).await, "+00:00");
    let wait: Option<u64> = conn
        .query_first("SELECT @@session.wait_timeout")
        .await
        .expect("query");
    assert_eq!(wait, Some(600), "a numeric value is set as a number");
    // State the request added on its own must not survive a reset either.
    conn.query_drop("SET @stormpool_marker = 1")
        .await
        .expect("SET");
    drop(conn);

    let mut conn = pool
        .get_with(AcquireOptions::new().settings(tokyo))
        .await
        .expect("acquire");
    assert_eq!(time_zone(&mut conn).await, "+09:00");
    let marker: Option<Option<i64>> = conn
        .query_first("SELECT @stormpool_marker")
        .await
        .expect("query");
    assert_eq!(marker, Some(None), "the reset cleared the session");
    drop(conn);

    let mut conn = pool.get().await.expect("acquire");
    assert_eq!(time_zone(&mut conn).await, default_tz);
    drop(conn);
    assert_eq!(
        pool.status().counters.connects_ok,
        1,
        "one connection served all"
    );
}

#[tokio::test]
async fn bad_settings_fail_the_request_with_apply() {
    let Some(url) = common::url() else { return };
    let injected = "time_zone = '+00:00'; DROP TABLE x; --";
    errors::bad_settings_fail_with_apply::<common::MariaDb>(
        &url,
        injected,
        "no_such_variable",
        "1193",
    )
    .await;
}

/// Requests asking for different time zones, at random, on few
/// connections: every one sees exactly the time zone it asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_settings_never_leak_between_requests() {
    let Some(url) = common::url() else { return };
    let zones = ["+00:00", "+09:00", "-05:00"];
    scenarios::mixed_settings::<common::MariaDb>(&url, "time_zone", &zones).await;
}
