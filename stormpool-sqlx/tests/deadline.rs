//! A request's deadline bounds its statements on the server
//! (`statement_timeout`, `max_statement_time`): a statement over the
//! remaining budget fails there, the session serves the next request with
//! that request's own deadline, and the bound is set only when it changes.
//! Inside a tracked transaction too.

mod common;

use std::time::{Duration, Instant};

use common::{SqlxMaria, SqlxPg};
use sqlx::Executor;
use stormpool::{AcquireOptions, Pool};
use stormpool_sqlx::{Error, MySqlManager, PgManager};
use stormpool_testkit::statements;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_over_the_remaining_budget_fails_on_the_server_postgres() {
    let Some(url) = common::pg_url() else { return };
    statements::statement_over_budget_is_stopped::<SqlxPg>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_over_the_remaining_budget_fails_on_the_server_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    statements::statement_over_budget_is_stopped::<SqlxMaria>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bound_is_set_only_when_it_changes_postgres() {
    let Some(url) = common::pg_url() else { return };
    statements::bound_changes_only_when_it_must::<SqlxPg>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bound_is_set_only_when_it_changes_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    statements::bound_changes_only_when_it_must::<SqlxMaria>(&url).await;
}

fn within(budget: Duration) -> AcquireOptions {
    AcquireOptions::new().deadline((Instant::now() + budget).into())
}

/// Inside a tracked transaction, a 2 s statement under a 300 ms deadline
/// is stopped well before its end; after the transaction (rolled back by
/// its drop, which undoes the `SET` in PostgreSQL), the next request's
/// statements carry that request's own bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_inside_a_transaction_is_bounded_too_postgres() {
    let Some(url) = common::pg_url() else { return };
    let pool = Pool::builder(PgManager::new(common::pg_options(&url, "sqlx_tx_deadline")))
        .max_size(1)
        .build()
        .expect("pool");
    let result = statements::bounded_by_deadline(&pool, "transaction", |mut conn| async move {
        let mut tx = conn.begin().await?;
        (&mut tx).execute("SELECT pg_sleep(2)").await?;
        Ok::<_, Error>(())
    })
    .await;
    let e = result.expect_err("stopped");
    assert_eq!(e.sqlstate().as_deref(), Some("57014"), "{e}");
    assert_eq!(pool.manager().stats().stopped_by_deadline, 1);

    let mut conn = pool
        .get_with(within(Duration::from_secs(60)))
        .await
        .expect("acquire");
    let bound: i64 = sqlx::query_scalar(
        "SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout'",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("bound");
    assert!((30_000..=60_000).contains(&bound), "bound {bound} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_inside_a_transaction_is_bounded_too_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    let pool = Pool::builder(MySqlManager::from_url(&url).expect("url"))
        .max_size(1)
        .build()
        .expect("pool");
    // `SLEEP()` stopped by `max_statement_time` returns 1 instead of
    // failing in a plain `SELECT`; in a subquery the stop is an error.
    let sleep = "SELECT (SELECT SLEEP(2) FROM DUAL WHERE 1 = 1) AS s FROM DUAL";
    let result = statements::bounded_by_deadline(&pool, "transaction", |mut conn| async move {
        let mut tx = conn.begin().await?;
        (&mut tx).execute(sleep).await?;
        Ok::<_, Error>(())
    })
    .await;
    if let Err(e) = result {
        println!("measured: stopped with: {e}");
    }
    let mut conn = pool.get().await.expect("acquire");
    let in_transaction: i64 = sqlx::query_scalar("SELECT CAST(@@in_transaction AS SIGNED)")
        .fetch_one(&mut *conn)
        .await
        .expect("in transaction");
    assert_eq!(in_transaction, 0);
}
