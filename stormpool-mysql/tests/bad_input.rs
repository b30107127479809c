//! Bad connection input fails fast with the server's message, without
//! panics or retry storms: a wrong password, an unknown database, a closed
//! port and a malformed URL.

mod common;

use std::sync::Arc;
use std::time::Duration;

use stormpool::Pool;
use stormpool_mysql::mysql_async::{Opts, OptsBuilder};
use stormpool_mysql::{Classify, MySqlManager, Operation};
use stormpool_testkit::scenarios;

async fn connect_error(opts: Opts) -> (Arc<stormpool_mysql::Error>, Duration) {
    scenarios::connect_error(MySqlManager::new(opts)).await
}

#[tokio::test]
async fn wrong_password_carries_the_server_message() {
    let Some(url) = common::url() else { return };
    common::ensure_user("stormpool_pw");
    let opts = OptsBuilder::from_opts(common::opts_as(&url, "stormpool_pw"))
        .pass(Some("not-the-password"));
    let (e, took) = connect_error(opts.into()).await;
    assert_eq!(e.operation(), Operation::Connect);
    assert_eq!(e.server_code(), Some(1045), "{e:?}");
    assert!(e
        .server_message()
        .unwrap_or_default()
        .contains("Access denied"));
    assert!(!e.is_retryable());
    assert!(took < Duration::from_secs(2), "took {took:?}");

    // The right password works, so the refusal was about the password.
    let pool = Pool::builder(MySqlManager::new(common::opts_as(&url, "stormpool_pw")))
        .build()
        .expect("pool");
    pool.get().await.expect("the right password connects");
}

#[tokio::test]
async fn unknown_database_carries_the_server_message() {
    let Some(url) = common::url() else { return };
    let opts = OptsBuilder::from_opts(Opts::from_url(&url).expect("url"))
        .db_name(Some("stormpool_no_such_db"));
    let (e, took) = connect_error(opts.into()).await;
    assert_eq!(e.server_code(), Some(1049), "{e:?}");
    assert!(e
        .server_message()
        .unwrap_or_default()
        .contains("Unknown database"));
    assert!(!e.is_retryable());
    assert!(took < Duration::from_secs(2), "took {took:?}");
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
