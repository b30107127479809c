//! One error type for a handler: acquire errors and statement errors both
//! convert into `stormpool_postgres::Error`, keep their classifiers, and
//! say what failed with its cause, never the password.

mod common;

use std::time::Duration;

use stormpool::{AcquireError, Pool};
use stormpool_postgres::{Classify, Error, Operation, PgManager};

/// A handler as a service writes it: `?` on the acquire and on the
/// statements alike.
async fn handler(pool: &Pool<PgManager>, sql: &str) -> Result<i32, Error> {
    let conn = pool.get().await?;
    let row = conn.query_one(sql, &[]).await?;
    Ok(row.try_get(0)?)
}

#[tokio::test]
async fn acquire_and_statement_errors_compose_with_question_mark() {
    let Some(url) = common::url() else { return };
    let pool = common::pool(&url, "stormpool_errors");
    assert_eq!(handler(&pool, "SELECT 7").await.expect("7"), 7);

    let e = handler(&pool, "SELECT * FROM stormpool_no_such_table")
        .await
        .expect_err("unknown table");
    assert_eq!(e.operation(), Operation::Statement);
    assert_eq!(e.sqlstate().map(|c| c.code()), Some("42P01"));
    assert!(!e.is_retryable() && !e.is_connection_error());
    let shown = e.to_string();
    assert!(shown.starts_with("statement failed: "), "{shown}");
    assert!(shown.contains("stormpool_no_such_table"), "{shown}");

    let e = handler(&pool, "SELECT 'x'")
        .await
        .expect_err("a text as i32");
    assert_eq!(e.operation(), Operation::Statement);

    pool.close().await.expect("close");
    let e = handler(&pool, "SELECT 1").await.expect_err("closed pool");
    assert_eq!(e.operation(), Operation::Acquire);
    assert!(matches!(e.acquire_error(), Some(AcquireError::Closed)));
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn a_refused_connect_says_where_and_why_without_the_password() {
    let mut config: stormpool_postgres::tokio_postgres::Config =
        "postgres://app:hunter2secret@127.0.0.1:1/app"
            .parse()
            .expect("config");
    config.connect_timeout(Duration::from_secs(2));
    let pool = Pool::builder(PgManager::new(config))
        .acquire_timeout(Duration::from_secs(2))
        .build()
        .expect("pool");
    let e: Error = pool
        .get()
        .await
        .map(drop)
        .map_err(Error::from)
        .expect_err("refused");
    let shown = e.to_string();
    stormpool_testkit::errors::assert_refused(&shown, "127.0.0.1:1");
    assert_eq!(e.operation(), Operation::Connect);
    assert!(e.is_connection_error() && e.is_retryable());
    let chain = stormpool_testkit::load::chain(&e);
    let debug = format!("{e:?}");
    for text in [&shown, &chain, &debug] {
        assert!(!text.contains("hunter2secret"), "{text}");
    }
}
