//! The request's deadline bounds statements through every tracked method,
//! one test per family: a 2 s statement under a 300 ms deadline is stopped
//! (by the server, SQLSTATE 57014, or by the client past the grace) well
//! before it would end, and the connection serves the next statement.

mod common;

use std::future::Future;

use futures_util::{SinkExt, StreamExt};
use stormpool::{Conn, Pool};
use stormpool_postgres::tokio_postgres::types::Type;
use stormpool_postgres::{Error, PgManager};
use stormpool_testkit::statements;

const SLEEP: &str = "SELECT pg_sleep(2)";

fn pool(url: &str, tag: &str) -> Pool<PgManager> {
    let pool = common::pool(url, tag);
    pool.resize(1).expect("resize");
    pool
}

/// Reads a stream to its end: every item, then the first error if any.
async fn drain<T, E>(stream: impl futures_util::Stream<Item = Result<T, E>>) -> Result<Vec<T>, E> {
    stream
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
}

/// The statement failed with a bound (the server's or the client's), well
/// before its 2 s, and the connection serves the next request.
async fn stopped<T, F, Fut>(pool: &Pool<PgManager>, name: &str, statement: F)
where
    T: std::fmt::Debug,
    F: FnOnce(Conn<PgManager>) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    statements::stopped_and_served::<common::Pg, _, _, _>(pool, name, true, statement).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_family() {
    let Some(url) = common::url() else { return };
    let pool = pool(&url, "stormpool_bound_query");
    stopped(&pool, "query", |c| async move { c.query(SLEEP, &[]).await }).await;
    stopped(&pool, "query_one", |c| async move {
        c.query_one(SLEEP, &[]).await
    })
    .await;
    stopped(&pool, "query_opt", |c| async move {
        c.query_opt(SLEEP, &[]).await
    })
    .await;
    stopped(&pool, "query_raw", |c| async move {
        let none: [i32; 0] = [];
        let rows = c.query_raw(SLEEP, none).await?;
        drain(rows).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_typed_family() {
    let Some(url) = common::url() else { return };
    let pool = pool(&url, "stormpool_bound_typed");
    let sleep = "SELECT pg_sleep($1)";
    stopped(&pool, "query_typed", |c| async move {
        c.query_typed(sleep, &[(&2.0f64, Type::FLOAT8)]).await
    })
    .await;
    stopped(&pool, "query_typed_one", |c| async move {
        c.query_typed_one(sleep, &[(&2.0f64, Type::FLOAT8)]).await
    })
    .await;
    stopped(&pool, "execute_typed", |c| async move {
        c.execute_typed(sleep, &[(&2.0f64, Type::FLOAT8)]).await
    })
    .await;
    stopped(&pool, "query_typed_raw", |c| async move {
        let rows = c.query_typed_raw(sleep, [(2.0f64, Type::FLOAT8)]).await?;
        drain(rows).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_family() {
    let Some(url) = common::url() else { return };
    let pool = pool(&url, "stormpool_bound_execute");
    stopped(
        &pool,
        "execute",
        |c| async move { c.execute(SLEEP, &[]).await },
    )
    .await;
    stopped(&pool, "execute_raw", |c| async move {
        let none: [i32; 0] = [];
        c.execute_raw(SLEEP, none).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_family() {
    let Some(url) = common::url() else { return };
    let pool = pool(&url, "stormpool_bound_simple");
    stopped(&pool, "simple_query", |c| async move {
        c.simple_query(SLEEP).await
    })
    .await;
    stopped(&pool, "batch_execute", |c| async move {
        c.batch_execute(SLEEP).await
    })
    .await;
    stopped(&pool, "simple_query_raw", |c| async move {
        let messages = c.simple_query_raw(SLEEP).await?;
        drain(messages).await
    })
    .await;
}

/// Preparing takes the table's lock: held elsewhere, the prepare waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_family() {
    let Some(url) = common::url() else { return };
    let pool = pool(&url, "stormpool_bound_prepare");
    let mut side = common::side(&url).await;
    side.batch_execute("CREATE TABLE IF NOT EXISTS stormpool_locked (x int)")
        .await
        .expect("create");
    let lock = side.transaction().await.expect("BEGIN");
    lock.batch_execute("LOCK TABLE stormpool_locked IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("LOCK");
    let select = "SELECT x FROM stormpool_locked";
    stopped(&pool, "prepare", |c| async move { c.prepare(select).await }).await;
    stopped(&pool, "prepare_typed", |c| async move {
        c.prepare_typed(select, &[]).await
    })
    .await;
    stopped(&pool, "prepare_cached", |c| async move {
        c.prepare_cached(select).await
    })
    .await;
    lock.rollback().await.expect("ROLLBACK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_family() {
    let Some(url) = common::url() else { return };
    let pool = pool(&url, "stormpool_bound_copy");
    stopped(&pool, "copy_out", |c| async move {
        let data = c.copy_out("COPY (SELECT pg_sleep(2)) TO STDOUT").await?;
        drain(data).await
    })
    .await;
    // Each row copied in sleeps in a trigger.
    common::side(&url)
        .await
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS stormpool_slow_copy (x int);
             CREATE OR REPLACE FUNCTION stormpool_slow() RETURNS trigger
                 LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(2); RETURN NEW; END $$;
             DROP TRIGGER IF EXISTS stormpool_slow ON stormpool_slow_copy;
             CREATE TRIGGER stormpool_slow BEFORE INSERT ON stormpool_slow_copy
                 FOR EACH ROW EXECUTE FUNCTION stormpool_slow();",
        )
        .await
        .expect("slow table");
    stopped(&pool, "copy_in", |c| async move {
        let mut sink = c.copy_in("COPY stormpool_slow_copy FROM STDIN").await?;
        sink.send(bytes::Bytes::from_static(b"1\n")).await?;
        sink.finish().await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_family() {
    let Some(url) = common::url() else { return };
    let pool = pool(&url, "stormpool_bound_transaction");
    stopped(&pool, "transaction query", |mut c| async move {
        let tx = c.transaction().await?;
        let rows = tx.query(SLEEP, &[]).await?;
        tx.commit().await?;
        Ok(rows)
    })
    .await;
    stopped(&pool, "savepoint query", |mut c| async move {
        let mut tx = c.transaction().await?;
        let savepoint = tx.transaction().await?;
        savepoint.execute(SLEEP, &[]).await
    })
    .await;
}
