//! The request's deadline bounds statements through every tracked method,
//! one test per family: a 2 s statement under a 300 ms deadline is stopped
//! (by the server, error 1969, or by the client past the grace) well
//! before it would end, and the connection serves the next statement.

mod common;

use std::future::Future;

use stormpool::{Conn, Pool};
use stormpool_mysql::mysql_async::prelude::Queryable;
use stormpool_mysql::{Error, MySqlManager};
use stormpool_testkit::statements;

/// `SLEEP()` stopped by `max_statement_time` returns 1 instead of failing
/// in a plain `SELECT`; inside a subquery the stop is an error.
const SLEEP: &str =
    "SELECT (SELECT SLEEP(2) FROM DUAL WHERE 1 = 1) AS s FROM DUAL WHERE 1 / 0 IS NULL OR 1";

fn pool(url: &str) -> Pool<MySqlManager> {
    let pool = common::pool(url);
    pool.resize(1).expect("resize");
    pool
}

/// The statement was stopped (an error, by the server or the client; or
/// the sleep cut short) well before its 2 s, and the connection serves the
/// next request.
async fn stopped<T, F, Fut>(pool: &Pool<MySqlManager>, name: &str, statement: F)
where
    T: std::fmt::Debug,
    F: FnOnce(Conn<MySqlManager>) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    statements::stopped_and_served::<common::MariaDb, _, _, _>(pool, name, false, statement).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_protocol_family() {
    let Some(url) = common::url() else { return };
    let pool = pool(&url);
    stopped(&pool, "query", |mut c| async move {
        c.query::<Option<i64>, _>(SLEEP).await
    })
    .await;
    stopped(&pool, "query_first", |mut c| async move {
        c.query_first::<Option<i64>, _>(SLEEP).await
    })
    .await;
    stopped(&pool, "query_map", |mut c| async move {
        c.query_map(SLEEP, |s: Option<i64>| s).await
    })
    .await;
    stopped(&pool, "query_fold", |mut c| async move {
        c.query_fold(SLEEP, 0, |n, _: Option<i64>| n + 1).await
    })
    .await;
    stopped(&pool, "query_drop", |mut c| async move {
        c.query_drop(SLEEP).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_family() {
    let Some(url) = common::url() else { return };
    let pool = pool(&url);
    let sleep = "SELECT SLEEP(?) FROM DUAL";
    stopped(&pool, "exec", |mut c| async move {
        c.exec::<Option<i64>, _, _>(sleep, (2,)).await
    })
    .await;
    stopped(&pool, "exec_first", |mut c| async move {
        c.exec_first::<Option<i64>, _, _>(sleep, (2,)).await
    })
    .await;
    stopped(&pool, "exec_map", |mut c| async move {
        c.exec_map(sleep, (2,), |s: Option<i64>| s).await
    })
    .await;
    stopped(&pool, "exec_fold", |mut c| async move {
        c.exec_fold(sleep, (2,), 0, |n, _: Option<i64>| n + 1).await
    })
    .await;
    stopped(&pool, "exec_drop", |mut c| async move {
        c.exec_drop(sleep, (2,)).await
    })
    .await;
    // MariaDB runs a batch in bulk, which takes writes only.
    let mut side = common::side(&url).await;
    side.query_drop(
        "CREATE TABLE IF NOT EXISTS stormpool_batch (x DOUBLE) ENGINE = InnoDB; \
         DELETE FROM stormpool_batch; INSERT INTO stormpool_batch VALUES (0)",
    )
    .await
    .expect("batch table");
    stopped(&pool, "exec_batch", |mut c| async move {
        c.exec_batch("UPDATE stormpool_batch SET x = SLEEP(?)", vec![(2,), (2,)])
            .await
    })
    .await;
    stopped(&pool, "prepare_cached", |mut c| async move {
        let statement = c.prepare_cached(sleep).await?;
        c.exec_drop(statement, (2,)).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_family() {
    let Some(url) = common::url() else { return };
    let pool = pool(&url);
    stopped(&pool, "transaction query", |mut c| async move {
        let mut tx = c.transaction().await?;
        tx.query_drop(SLEEP).await?;
        tx.commit().await
    })
    .await;
    stopped(&pool, "savepoint query", |mut c| async move {
        let mut tx = c.transaction().await?;
        let mut savepoint = tx.transaction().await?;
        savepoint.exec_drop("SELECT SLEEP(?)", (2,)).await
    })
    .await;
}
