//! No password appears in any `Debug` or `Display` output of the manager,
//! its connections, the pool's guard or the errors.

mod common;

use std::time::Duration;

use stormpool::{AcquireError, Pool};
use stormpool_postgres::PgManager;
use stormpool_testkit::load::chain;

const PASSWORD: &str = "Sup3r-Secret-Pg-Pw";

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD),
        "{what} shows the password: {text}"
    );
}

fn with_password(url: &str) -> String {
    // Trust authentication accepts any password: enough to carry one.
    url.replacen("://root@", &format!("://root:{PASSWORD}@"), 1)
}

#[tokio::test]
async fn manager_connection_guard_and_errors_hide_the_password() {
    let Some(url) = common::url() else { return };
    let url = with_password(&url);
    assert!(
        url.contains(PASSWORD),
        "the test URL must carry the password"
    );
    let manager = PgManager::from_url(&url).expect("url");
    assert_clean("PgManager Debug", &format!("{manager:?}"));
    assert_clean("Config Debug", &format!("{:?}", manager.pg_config()));

    let pool = Pool::builder(manager).build().expect("pool");
    let conn = pool.get().await.expect("connect");
    assert_clean("Conn Debug", &format!("{conn:?}"));
    assert_clean("PgConnection Debug", &format!("{:?}", *conn));
    assert_clean("Pool Debug", &format!("{pool:?}"));
    drop(conn);

    let bad_db = format!("{}_no_such_db", url.trim_end_matches('/'));
    let pool = Pool::builder(PgManager::from_url(&bad_db).expect("url"))
        .acquire_timeout(Duration::from_secs(5))
        .build()
        .expect("pool");
    let err: AcquireError<_> = pool.get().await.expect_err("unknown database");
    assert_clean("error Display", &chain(&err));
    assert_clean("error Debug", &format!("{err:?}"));
}

#[test]
fn config_errors_hide_the_url() {
    let err = PgManager::from_url(&format!("postgres://app:{PASSWORD}@127.0.0.1:x/db"))
        .expect_err("bad port");
    assert_clean("config error Display", &chain(&err));
    assert_clean("config error Debug", &format!("{err:?}"));
}
