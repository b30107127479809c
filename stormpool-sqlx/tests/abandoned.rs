//! A statement abandoned by its request (its future dropped half-way) is
//! stopped on the server when the connection comes back
//! (`pg_cancel_backend` from a side session; `KILL QUERY`), and the same
//! session serves the next request once the server has answered it.
//! Checked in `pg_stat_activity` and the process list.

mod common;

use std::time::Duration;

use common::{SqlxMaria, SqlxPg};
use sqlx::Executor;
use stormpool::Pool;
use stormpool_sqlx::{Backend, SqlxManager};
use stormpool_testkit::scenarios::Harness;
use stormpool_testkit::statements;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_statement_is_stopped_and_the_session_served_again_postgres() {
    let Some(url) = common::pg_url() else { return };
    statements::abandoned_statement_is_stopped::<SqlxPg>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_statement_is_stopped_and_the_session_served_again_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    statements::abandoned_statement_is_stopped::<SqlxMaria>(&url).await;
}

/// A holder that gives up on a statement and goes on with the connection
/// gets its own results: sqlx reads the rest of the abandoned reply first.
/// The pool still stops the abandoned statement when the connection comes
/// back, if it is still running by then.
async fn a_holder_that_goes_on_gets_its_own_results<DB, H>(url: &str, sleep: &str, two: &str)
where
    DB: Backend,
    H: Harness<M = SqlxManager<DB>>,
    for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> &'r str: sqlx::ColumnIndex<DB::Row>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let pool = Pool::builder(H::manager(url, "stormpool_sqlx_goes_on"))
        .max_size(1)
        .build()
        .expect("pool");
    let mut conn = pool.get().await.expect("acquire");
    let gave_up =
        tokio::time::timeout(Duration::from_millis(50), (&mut *conn).execute(sleep)).await;
    assert!(gave_up.is_err(), "the statement outlived the timeout");
    let row = (&mut *conn).fetch_one(two).await.expect("next statement");
    assert_eq!(sqlx::Row::get::<i64, _>(&row, 0), 2);
    drop(conn);
    assert_eq!(pool.manager().stats().abandoned, 1);
    let mut conn = pool.get().await.expect("acquire again");
    (&mut *conn).execute(two).await.expect("served again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_goes_on_gets_its_own_results_postgres() {
    let Some(url) = common::pg_url() else { return };
    a_holder_that_goes_on_gets_its_own_results::<_, SqlxPg>(
        &url,
        "SELECT pg_sleep(0.3)",
        "SELECT 2::int8",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_goes_on_gets_its_own_results_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    a_holder_that_goes_on_gets_its_own_results::<_, SqlxMaria>(
        &url,
        "SELECT SLEEP(0.3)",
        "SELECT CAST(2 AS SIGNED)",
    )
    .await;
}
