//! Bad connection input fails fast with a typed error and the server's
//! report, never showing the password: a malformed URL, a wrong password
//! (MariaDB; the PostgreSQL test server trusts every local login), an
//! unknown database, a closed port.

mod common;

use common::{DieselMaria, DieselPg};
use stormpool_diesel_async::{MysqlManager, Operation, PgManager};
use stormpool_testkit::errors;
use stormpool_testkit::load::chain;

const SECRET: &str = "Sekr3t-Pw-In-Url";

#[test]
fn a_malformed_url_is_a_config_error_without_the_password() {
    for e in [
        PgManager::from_url(&format!("postgres://app:{SECRET}@127.0.0.1:notaport/db"))
            .expect_err("a malformed URL"),
        PgManager::from_url(&format!("postgres://app:{SECRET}@h/db?sslmode=sometimes"))
            .expect_err("a malformed URL"),
        MysqlManager::from_url(&format!("mysql://app:{SECRET}@127.0.0.1/db?nope={SECRET}"))
            .expect_err("a malformed URL"),
    ] {
        assert_eq!(e.operation(), Operation::Config);
        let text = chain(&e);
        println!("measured: {text}");
        assert!(
            !text.contains(SECRET) && !format!("{e:?}").contains(SECRET),
            "{text}"
        );
        assert!(!e.is_retryable());
    }
}

#[tokio::test]
async fn a_wrong_password_carries_the_server_report_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    common::ensure_user("stormpool_diesel_pw");
    let opts =
        mysql_async::OptsBuilder::from_opts(common::mysql_opts_as(&url, "stormpool_diesel_pw"))
            .pass(Some(SECRET));
    let manager = MysqlManager::new(opts.into());
    assert!(!format!("{manager:?}").contains(SECRET));
    let e = errors::refused_by_the_server::<DieselMaria>(manager, "28000", Some(SECRET)).await;
    assert!(e.to_string().contains("Access denied"), "{e}");
}

#[tokio::test]
async fn an_unknown_database_is_a_typed_connect_error_postgres() {
    let Some(url) = common::pg_url() else { return };
    let mut config = common::pg_config(&url, "diesel_bad_db");
    config.dbname("no_such_database_x");
    errors::refused_by_the_server::<DieselPg>(PgManager::new(config), "3D000", None).await;
}

#[tokio::test]
async fn a_closed_port_fails_fast_with_the_cause_postgres() {
    let Some(url) = common::pg_url() else { return };
    stormpool_testkit::errors::closed_port::<common::DieselPg>(&url).await;
}
