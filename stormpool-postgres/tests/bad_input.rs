//! Bad connection input fails fast with the server's message, without
//! panics or retry storms.
//!
//! The test server trusts every connection from 127.0.0.1 (`pg_hba.conf`:
//! `host all all 127.0.0.1/32 trust`), so a wrong password is accepted and
//! cannot be tested here without editing the server's configuration: the
//! MySQL adapter's tests cover the wrong-password case, and these cover an
//! unknown role, a role that may not log in, an unknown database, a closed
//! port and a malformed URL.

mod common;

use std::sync::Arc;
use std::time::Duration;

use stormpool_postgres::{Classify, Operation, PgManager};
use stormpool_testkit::scenarios;

async fn connect_error(
    config: stormpool_postgres::tokio_postgres::Config,
) -> (Arc<stormpool_postgres::Error>, Duration) {
    scenarios::connect_error(PgManager::new(config)).await
}

#[tokio::test]
async fn unknown_role_and_database_carry_the_server_message() {
    let Some(url) = common::url() else { return };
    let mut config = common::config(&url, "stormpool_bad");
    config.user("stormpool_no_such_role");
    let (e, took) = connect_error(config).await;
    assert_eq!(e.operation(), Operation::Connect);
    assert!(
        e.server_message()
            .unwrap_or_default()
            .contains("does not exist"),
        "{e:?}"
    );
    assert_eq!(e.sqlstate().map(|s| s.code()), Some("28000"));
    assert!(!e.is_retryable());
    assert!(took < Duration::from_secs(2), "took {took:?}");

    let mut config = common::config(&url, "stormpool_bad");
    config.dbname("stormpool_no_such_db");
    let (e, took) = connect_error(config).await;
    assert_eq!(e.sqlstate().map(|s| s.code()), Some("3D000"));
    assert!(e
        .server_message()
        .unwrap_or_default()
        .contains("does not exist"));
    assert!(!e.is_retryable());
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn role_without_login_is_refused() {
    let Some(url) = common::url() else { return };
    let side = common::side(&url).await;
    side.batch_execute(
        "DO $$ BEGIN CREATE ROLE stormpool_nologin NOLOGIN; \
         EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    )
    .await
    .expect("create role");
    let mut config = common::config(&url, "stormpool_bad");
    config.user("stormpool_nologin");
    let (e, _) = connect_error(config).await;
    assert!(
        e.server_message()
            .unwrap_or_default()
            .contains("not permitted to log in"),
        "{e:?}"
    );
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn closed_port_fails_fast_without_a_retry_storm() {
    let Some(url) = common::url() else { return };
    scenarios::refused_port::<common::Pg>(&url).await;
}

#[test]
fn malformed_url_is_a_config_error() {
    let e = PgManager::from_url("postgres://app:pw@127.0.0.1:notaport/db").expect_err("bad port");
    assert_eq!(e.operation(), Operation::Config);
    assert!(!e.is_retryable());
}
