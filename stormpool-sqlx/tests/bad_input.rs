//! Bad connection input fails fast with a typed error and the server's
//! message, never showing the password: a malformed URL, a wrong password
//! (MariaDB; the PostgreSQL test server trusts every local login), an
//! unknown database, a closed port.

mod common;

use common::{SqlxMaria, SqlxPg};
use stormpool_sqlx::{MySqlManager, Operation, PgManager};
use stormpool_testkit::errors;
use stormpool_testkit::load::chain;

const SECRET: &str = "Sekr3t-Pw-In-Url";

#[test]
fn a_malformed_url_is_a_config_error_without_the_password() {
    for url in [
        format!("postgres://app:{SECRET}@127.0.0.1:notaport/db"),
        format!("postgres://app:{SECRET}@127.0.0.1/db?sslmode=sometimes"),
    ] {
        let e = PgManager::from_url(&url).expect_err("a malformed URL");
        assert_eq!(e.operation(), Operation::Config);
        let text = chain(&e);
        assert!(!text.contains(SECRET), "{text}");
        assert!(!format!("{e:?}").contains(SECRET), "{e:?}");
        println!("measured: {text}");
    }
    let e = MySqlManager::from_url(&format!("mysql://app:{SECRET}@127.0.0.1:x/db"))
        .expect_err("a malformed URL");
    assert_eq!(e.operation(), Operation::Config);
    assert!(!chain(&e).contains(SECRET));
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn a_wrong_password_carries_the_server_message_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    common::ensure_user("stormpool_sqlx_pw");
    let options = common::mysql_options_as(&url, "stormpool_sqlx_pw").password(SECRET);
    let manager = MySqlManager::new(options);
    assert!(!format!("{manager:?}").contains(SECRET));
    let e = errors::refused_by_the_server::<SqlxMaria>(manager, "28000", Some(SECRET)).await;
    assert!(e.to_string().contains("Access denied"), "{e}");
    // The right password works, so the refusal was about the password.
    errors::connects(MySqlManager::new(common::mysql_options_as(
        &url,
        "stormpool_sqlx_pw",
    )))
    .await;
}

#[tokio::test]
async fn an_unknown_database_is_a_typed_connect_error_postgres() {
    let Some(url) = common::pg_url() else { return };
    let options = common::pg_options(&url, "sqlx_bad_db").database("no_such_database_x");
    errors::refused_by_the_server::<SqlxPg>(PgManager::new(options), "3D000", None).await;
}

#[tokio::test]
async fn a_closed_port_fails_fast_with_the_cause_postgres() {
    let Some(url) = common::pg_url() else { return };
    stormpool_testkit::errors::closed_port::<common::SqlxPg>(&url).await;
}
