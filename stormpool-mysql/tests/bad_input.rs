//! Bad connection input fails fast with the server's message, without
//! panics or retry storms: a wrong password, an unknown database, a closed
//! port and a malformed URL.

mod common;

use std::sync::Arc;

use stormpool_mysql::mysql_async::{Opts, OptsBuilder};
use stormpool_mysql::{Classify, MySqlManager, Operation};
use stormpool_testkit::{errors, scenarios};

/// The server refuses `opts`' connect with `code`; returns the error.
async fn refused(opts: Opts, code: &str) -> Arc<stormpool_mysql::Error> {
    errors::refused_by_the_server::<common::MariaDb>(MySqlManager::new(opts), code, None).await
}

#[tokio::test]
async fn wrong_password_carries_the_server_message() {
    let Some(url) = common::url() else { return };
    common::ensure_user("stormpool_pw");
    let opts = OptsBuilder::from_opts(common::opts_as(&url, "stormpool_pw"))
        .pass(Some("not-the-password"));
    let e = refused(opts.into(), "1045").await;
    let message = e.server_message().unwrap_or_default();
    assert!(message.contains("Access denied"), "{e:?}");
    // The right password works, so the refusal was about the password.
    errors::connects(MySqlManager::new(common::opts_as(&url, "stormpool_pw"))).await;
}

#[tokio::test]
async fn unknown_database_carries_the_server_message() {
    let Some(url) = common::url() else { return };
    let opts = OptsBuilder::from_opts(Opts::from_url(&url).expect("url"))
        .db_name(Some("stormpool_no_such_db"));
    let e = refused(opts.into(), "1049").await;
    let message = e.server_message().unwrap_or_default();
    assert!(message.contains("Unknown database"), "{e:?}");
}

#[tokio::test]
async fn closed_port_fails_fast_without_a_retry_storm() {
    let Some(url) = common::url() else { return };
    scenarios::refused_port::<common::MariaDb>(&url).await;
}

#[test]
fn malformed_url_is_a_config_error() {
    let e = MySqlManager::from_url("mysql://app:pw@127.0.0.1:notaport/db").expect_err("bad port");
    assert_eq!(e.operation(), Operation::Config);
    assert!(!e.is_retryable());
}
