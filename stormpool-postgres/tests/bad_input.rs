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

use stormpool_postgres::tokio_postgres::Config;
use stormpool_postgres::{Classify, Operation, PgManager};
use stormpool_testkit::{errors, scenarios};

/// The server refuses `config`'s connect with `code`; returns the error.
async fn refused(config: Config, code: &str) -> Arc<stormpool_postgres::Error> {
    errors::refused_by_the_server::<common::Pg>(PgManager::new(config), code, None).await
}

#[tokio::test]
async fn unknown_role_and_database_carry_the_server_message() {
    let Some(url) = common::url() else { return };
    let mut config = common::config(&url, "stormpool_bad");
    config.user("stormpool_no_such_role");
    let e = refused(config, "28000").await;
    let message = e.server_message().unwrap_or_default();
    assert!(message.contains("does not exist"), "{e:?}");

    let mut config = common::config(&url, "stormpool_bad");
    config.dbname("stormpool_no_such_db");
    let e = refused(config, "3D000").await;
    let message = e.server_message().unwrap_or_default();
    assert!(message.contains("does not exist"), "{e:?}");
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
    let (e, _) = scenarios::connect_error(PgManager::new(config)).await;
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
