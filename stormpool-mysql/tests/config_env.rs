//! The environment builds a working pool: `DATABASE_URL` with the password
//! from `MYSQL_PWD`, and the `mysql` client's variables alone.
//!
//! One test in its own binary: it sets process-wide variables, which no
//! other thread may read meanwhile.

mod common;

use stormpool_mysql::mysql_async::Opts;
use stormpool_mysql::{MySqlManager, Pool};

const VARIABLES: [&str; 4] = ["DATABASE_URL", "MYSQL_PWD", "MYSQL_HOST", "MYSQL_TCP_PORT"];

async fn current_user(pool: &Pool) -> String {
    let mut conn = pool.get().await.expect("acquire");
    let user: Option<String> = conn
        .query_first("SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)")
        .await
        .expect("query");
    user.expect("a row")
}

#[tokio::test]
async fn the_environment_builds_a_working_pool() {
    let Some(url) = common::url() else { return };
    common::ensure_user("stormpool_env");
    let opts = Opts::from_url(&url).expect("STORMPOOL_MYSQL_URL");
    for variable in VARIABLES {
        std::env::remove_var(variable);
    }

    // The URL without its password, the password from a secret apart.
    let without_password = format!(
        "mysql://stormpool_env@{}:{}/{}",
        opts.ip_or_hostname(),
        opts.tcp_port(),
        opts.db_name().unwrap_or("test"),
    );
    std::env::set_var("DATABASE_URL", &without_password);
    std::env::set_var("MYSQL_PWD", common::TEST_PASSWORD);
    let pool: Pool = Pool::builder(MySqlManager::from_env().expect("DATABASE_URL"))
        .max_size(2)
        .build()
        .expect("pool");
    assert_eq!(current_user(&pool).await, "stormpool_env");

    // The client's variables alone, the user being the login name.
    std::env::remove_var("DATABASE_URL");
    std::env::remove_var("MYSQL_PWD");
    std::env::set_var("MYSQL_HOST", opts.ip_or_hostname());
    std::env::set_var("MYSQL_TCP_PORT", opts.tcp_port().to_string());
    let user = opts
        .user()
        .expect("a user in STORMPOOL_MYSQL_URL")
        .to_owned();
    let saved_user = std::env::var_os("USER");
    std::env::set_var("USER", &user);
    if let Some(password) = opts.pass() {
        std::env::set_var("MYSQL_PWD", password);
    }
    let pool: Pool = Pool::builder(MySqlManager::from_env().expect("MYSQL_* variables"))
        .max_size(2)
        .build()
        .expect("pool");
    assert_eq!(current_user(&pool).await, user);

    for variable in VARIABLES {
        std::env::remove_var(variable);
    }
    match saved_user {
        Some(saved) => std::env::set_var("USER", saved),
        None => std::env::remove_var("USER"),
    }
}
