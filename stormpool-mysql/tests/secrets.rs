//! No password appears in any `Debug` or `Display` output of the manager,
//! its connections, the pool's guard or the errors, although the driver's
//! own `Debug` of its options and connection shows it.

mod common;

use stormpool::Pool;
use stormpool_mysql::mysql_async::OptsBuilder;
use stormpool_mysql::MySqlManager;
use stormpool_testkit::load::chain;

const WRONG: &str = "Wr0ng-Secret-MySql-Pw";

fn assert_clean(what: &str, text: &str, secret: &str) {
    assert!(!text.contains(secret), "{what} shows the password: {text}");
}

#[tokio::test]
async fn manager_connection_guard_and_errors_hide_the_password() {
    let Some(url) = common::url() else { return };
    common::ensure_user("stormpool_secret");
    let opts = common::opts_as(&url, "stormpool_secret");
    let secret = common::TEST_PASSWORD;
    assert!(
        format!("{opts:?}").contains(secret),
        "the driver's Debug shows it: what this crate must not pass on"
    );
    let manager = MySqlManager::new(opts.clone());
    assert_clean("MySqlManager Debug", &format!("{manager:?}"), secret);

    let pool = Pool::builder(manager).build().expect("pool");
    let conn = pool.get().await.expect("connect");
    assert_clean("Conn Debug", &format!("{conn:?}"), secret);
    assert_clean("MySqlConnection Debug", &format!("{:?}", *conn), secret);
    assert_clean("Pool Debug", &format!("{pool:?}"), secret);
    drop(conn);

    let wrong = OptsBuilder::from_opts(opts).pass(Some(WRONG));
    let pool = Pool::builder(MySqlManager::new(wrong))
        .build()
        .expect("pool");
    let err = pool.get().await.expect_err("wrong password");
    assert_clean("error Display", &chain(&err), WRONG);
    assert_clean("error Debug", &format!("{err:?}"), WRONG);
}

#[test]
fn config_errors_hide_the_url() {
    let err = MySqlManager::from_url(&format!("mysql://app:{WRONG}@127.0.0.1:x/db"))
        .expect_err("bad port");
    assert_clean("config error Display", &chain(&err), WRONG);
    assert_clean("config error Debug", &format!("{err:?}"), WRONG);
}

/// A URL's query string can carry secrets: an invalid parameter value is
/// never echoed, whichever parameter it is.
#[test]
fn url_errors_name_the_parameter_never_its_value() {
    for (param, value) in [
        ("pool_min", "Wr0ng-Secret-In-Query-1"),
        ("stmt_cache_size", "Wr0ng-Secret-In-Query-2"),
        ("tcp_keepalive", "Wr0ng-Secret-In-Query-3"),
        ("prefer_socket", "Wr0ng-Secret-In-Query-4"),
    ] {
        let url = format!("mysql://app@127.0.0.1:3306/db?{param}={value}");
        let err = MySqlManager::from_url(&url).expect_err("an invalid value");
        let shown = chain(&err);
        assert_clean("URL error Display", &shown, value);
        assert_clean("URL error Debug", &format!("{err:?}"), value);
        assert!(shown.contains(param), "names the parameter: {shown}");
        assert_eq!(err.operation(), stormpool_mysql::Operation::Config);
    }
}
