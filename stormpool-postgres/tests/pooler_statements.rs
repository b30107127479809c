//! Statements through a PgBouncer in transaction mode: each transaction of
//! a client session may run on another server session, so a statement
//! prepared in one exchange and bound in the next finds another session's
//! statement, or none. Behind `Pooler::Transaction` every statement runs
//! unnamed, and nothing is left on a server session.

mod common;

use std::sync::Arc;

use stormpool::Pool;
use stormpool_postgres::{PgManager, Pooler};

const TASKS: usize = 32;
const QUERIES: usize = 50;

#[derive(Clone, Copy, Debug)]
enum Way {
    Query,
    PrepareCached,
    InTransaction,
}

/// 32 tasks x 50 parameterized statements on a pool of 8 through the
/// pooler (4 server sessions): how many answered right, and the first
/// error.
async fn storm(pool: Arc<Pool<PgManager>>, way: Way) -> (usize, Option<String>) {
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let (mut ok, mut first) = (0, None);
                for i in 0..QUERIES {
                    let (a, b) = (task as i32, i as i32);
                    let sql = "SELECT $1::int4 * 1000 + $2::int4";
                    let answer: Result<i32, stormpool_postgres::Error> = async {
                        let mut conn = pool.get().await?;
                        let row = match way {
                            Way::Query => conn.query_one(sql, &[&a, &b]).await?,
                            Way::PrepareCached => {
                                let statement = conn.prepare_cached(sql).await?;
                                conn.query_one(&statement, &[&a, &b]).await?
                            }
                            Way::InTransaction => {
                                let tx = conn.transaction().await?;
                                let statement = tx.prepare_cached(sql).await?;
                                let row = tx.query_one(&statement, &[&a, &b]).await?;
                                tx.execute("SELECT $1::text", &[&"x"]).await?;
                                tx.commit().await?;
                                row
                            }
                        };
                        Ok(row.get(0))
                    }
                    .await;
                    match answer {
                        Ok(v) if v == a * 1000 + b => ok += 1,
                        Ok(v) => {
                            first.get_or_insert(format!("wrong answer {v} for ({a}, {b})"));
                        }
                        Err(e) => {
                            first.get_or_insert(e.to_string());
                        }
                    }
                }
                (ok, first)
            })
        })
        .collect();
    let (mut ok, mut first) = (0, None);
    for task in tasks {
        let (n, e) = task.await.expect("task");
        ok += n;
        first = first.or(e);
    }
    (ok, first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_parameterized_statement_answers_right_in_pooler_mode() {
    let Some((bouncer, _)) = common::pgbouncer() else {
        return;
    };
    for way in [Way::Query, Way::PrepareCached, Way::InTransaction] {
        let pool = Arc::new(common::pooled(
            bouncer.url(),
            "stormpool_pooler_statements",
            Pooler::Transaction,
            8,
        ));
        let (ok, first) = storm(pool.clone(), way).await;
        let stats = pool.manager().stats();
        println!(
            "measured: {way:?} through pgbouncer in pooler mode: {ok} of {} ({} descriptions, {} cache hits)",
            TASKS * QUERIES,
            stats.cache_misses,
            stats.cache_hits
        );
        assert_eq!(ok, TASKS * QUERIES, "{way:?}: first error: {first:?}");
    }
}

/// The failure the mode exists for, so the test above can fail: without it
/// named statements meet other server sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pooler_mode_named_statements_go_astray() {
    let Some((bouncer, _)) = common::pgbouncer() else {
        return;
    };
    let pool = Arc::new(common::pooled(
        bouncer.url(),
        "stormpool_pooler_statements_off",
        Pooler::None,
        8,
    ));
    let (ok, first) = storm(pool, Way::Query).await;
    println!(
        "measured: Query through pgbouncer without pooler mode: {ok} of {}; first error: {first:?}",
        TASKS * QUERIES
    );
    assert!(ok < TASKS * QUERIES, "no statement went astray");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_the_connection_did_not_describe_are_refused() {
    let Some((bouncer, _)) = common::pgbouncer() else {
        return;
    };
    let pool = common::pooled(
        bouncer.url(),
        "stormpool_pooler_refusals",
        Pooler::Transaction,
        2,
    );
    let mut conn = pool.get().await.expect("acquire");

    let wrong = conn
        .query_one("SELECT $1::int4", &[&1i32, &2i32])
        .await
        .expect_err("two parameters for one");
    assert!(
        wrong
            .to_string()
            .contains("expected 1 parameters but got 2"),
        "{wrong}"
    );

    // Prepared through the raw client: a name the connection does not know.
    let raw = conn.client().prepare("SELECT 1").await;
    if let Ok(raw) = raw {
        let refused = conn.query(&raw, &[]).await.expect_err("refused");
        assert!(refused.is_pooler_misuse(), "{refused}");
    }

    let copy = conn
        .copy_out("COPY (SELECT 1) TO STDOUT")
        .await
        .err()
        .expect("COPY outside a transaction is refused");
    assert!(copy.is_pooler_misuse(), "{copy}");

    // Inside a transaction COPY runs, the prepared handle too.
    let tx = conn.transaction().await.expect("begin");
    let data = tx
        .copy_out("COPY (SELECT 7) TO STDOUT")
        .await
        .expect("copy");
    let chunks: Vec<_> = futures_util::TryStreamExt::try_collect(data)
        .await
        .expect("rows");
    assert_eq!(chunks.concat(), b"7\n");
    let statement = tx
        .prepare("SELECT $1::text || 'b'")
        .await
        .expect("describe");
    let row = tx
        .query_one(&statement, &[&"a"])
        .await
        .expect("run by text");
    assert_eq!(row.get::<_, String>(0), "ab");
    tx.commit().await.expect("commit");

    // Streams and row counts, outside a transaction.
    let n = conn
        .execute_raw("SELECT generate_series(1, $1::int4)", [5i32])
        .await
        .expect("execute_raw");
    assert_eq!(n, 5);
    let rows = common::raw_rows(&conn, "SELECT generate_series(1, $1::int4)", 3).await;
    assert_eq!(rows.len(), 3);
}
