//! The `on_connect` hook runs once per new connection; its failure is a
//! typed connect error. Errors of acquires and statements compose into one
//! type with `?`, and say where a connect failed.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stormpool::{AcquireError, Pool};
use stormpool_mysql::mysql_async::{Opts, OptsBuilder};
use stormpool_mysql::{Classify, Error, MySqlManager, Operation};
use stormpool_testkit::errors;

#[tokio::test]
async fn runs_once_per_connection() {
    let Some(url) = common::url() else { return };
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let opts = Opts::from_url(&url).expect("url");
    let manager = MySqlManager::new(opts).on_connect(move |conn| {
        let counted = counted.clone();
        Box::pin(async move {
            counted.fetch_add(1, Ordering::Relaxed);
            conn.query_drop("SET SESSION sql_mode = 'STRICT_ALL_TABLES'")
                .await?;
            Ok(())
        })
    });
    let pool = Pool::builder(manager).max_size(2).build().expect("pool");
    for _ in 0..10 {
        let mut conn = pool.get().await.expect("acquire");
        let mode: Option<String> = conn.query_first("SELECT @@sql_mode").await.expect("mode");
        assert_eq!(mode.as_deref(), Some("STRICT_ALL_TABLES"));
    }
    let (a, b) = (pool.get().await.expect("a"), pool.get().await.expect("b"));
    drop((a, b));
    assert_eq!(runs.load(Ordering::Relaxed), 2, "once per connection");
}

#[tokio::test]
async fn a_failing_hook_is_a_typed_connect_error() {
    let Some(url) = common::url() else { return };
    let opts = Opts::from_url(&url).expect("url");
    let manager = MySqlManager::new(opts).on_connect(|conn| {
        Box::pin(async move {
            conn.query_drop("SELECT no_such_function()").await?;
            Ok(())
        })
    });
    let e = Error::from(errors::failing_hook::<common::MariaDb>(manager, "1305").await);
    assert!(
        e.to_string().starts_with("the on_connect hook failed: "),
        "{e}"
    );
}

async fn handler(pool: &Pool<MySqlManager>, sql: &'static str) -> Result<i64, Error> {
    let mut conn = pool.get().await?;
    let n: Option<i64> = conn.query_first(sql).await?;
    Ok(n.unwrap_or_default())
}

#[tokio::test]
async fn acquire_and_statement_errors_compose_with_question_mark() {
    let Some(url) = common::url() else { return };
    let pool = common::pool(&url);
    assert_eq!(handler(&pool, "SELECT 7").await.expect("7"), 7);
    let e = handler(&pool, "SELECT * FROM stormpool_no_such_table")
        .await
        .expect_err("unknown table");
    assert_eq!(e.operation(), Operation::Statement);
    assert_eq!(e.server_code(), Some(1146));
    assert!(e.to_string().starts_with("statement failed: "), "{e}");
    pool.close().await.expect("close");
    let e = handler(&pool, "SELECT 1").await.expect_err("closed");
    assert!(matches!(e.acquire_error(), Some(AcquireError::Closed)));
}

#[tokio::test]
async fn a_refused_connect_says_where_and_why() {
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(1)
        .user(Some("app"))
        .pass(Some("hunter2secret"));
    let pool = Pool::builder(MySqlManager::new(opts))
        .acquire_timeout(Duration::from_secs(2))
        .build()
        .expect("pool");
    let e = Error::from(pool.get().await.map(drop).expect_err("refused"));
    let shown = e.to_string();
    errors::assert_refused(&shown, "127.0.0.1:1");
    assert!(e.is_connection_error() && e.is_retryable());
    for text in [shown, format!("{e:?}"), stormpool_testkit::load::chain(&e)] {
        assert!(!text.contains("hunter2secret"), "{text}");
    }
}
