//! Cancelling through a PgBouncer: the pooler forwards a cancel request to
//! the server session running the client's statement, but drops it if the
//! client half-closes its socket first, as the driver's own cancel does
//! (PgBouncer 1.18 may even exit on it: `bad client state`, so no test here
//! sends one). The manager keeps the socket open until the pooler hangs
//! up, as libpq does, and the pool's drain proves the statement stopped.

mod common;

use std::time::{Duration, Instant};

use stormpool::{Conn, Manager};
use stormpool_postgres::tokio_postgres;
use stormpool_postgres::Pooler;

/// How many statements whose text contains `tag` run on the server.
async fn running(side: &tokio_postgres::Client, tag: &str) -> i64 {
    side.query_one(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE state = 'active' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
        &[&tag],
    )
    .await
    .expect("pg_stat_activity")
    .get(0)
}

async fn wait_running(side: &tokio_postgres::Client, tag: &str) {
    let until = Instant::now() + Duration::from_secs(5);
    while running(side, tag).await == 0 {
        assert!(Instant::now() < until, "the statement never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How long after `since` the statement tagged `tag` was gone from the
/// server (polled every 2 ms), or `None` within `limit`.
async fn stopped_after(
    side: &tokio_postgres::Client,
    tag: &str,
    since: Instant,
    limit: Duration,
) -> Option<Duration> {
    while since.elapsed() < limit {
        if running(side, tag).await == 0 {
            return Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_statement_stops_on_the_server_and_the_connection_is_reused() {
    let Some((bouncer, direct)) = common::pgbouncer() else {
        return;
    };
    let side = common::side(&direct).await;
    let pool = common::pooled(
        bouncer.url(),
        "stormpool_pooler_abandon",
        Pooler::Transaction,
        1,
    );
    let mut stopped = Vec::new();
    for round in 0..5 {
        let tag = format!("stormpool_abandoned_{round}");
        let conn = pool.get().await.expect("acquire");
        let sql = format!("SELECT pg_sleep(5) /* {tag} */");
        let abandoned =
            tokio::time::timeout(Duration::from_millis(150), conn.simple_query(&sql)).await;
        assert!(
            abandoned.is_err(),
            "the sleep ended by itself: {abandoned:?}"
        );
        wait_running(&side, &tag).await;
        let returned = Instant::now();
        drop(conn);
        let after = stopped_after(&side, &tag, returned, Duration::from_secs(3)).await;
        let after = after.expect("the abandoned statement still runs on the server");
        stopped.push(after);
        // The same connection serves the next request.
        let conn = pool.get().await.expect("acquire after the drain");
        assert_eq!(
            common::tracked_scalar(&conn, "SELECT 1").await.as_deref(),
            Some("1")
        );
    }
    let counters = pool.status().counters;
    println!(
        "measured: abandoned pg_sleep(5) through pgbouncer gone from pg_stat_activity {stopped:?} \
         after the connection's return; {} connect(s), {} drained, {} cancel failures",
        counters.connects_ok,
        counters.drained,
        pool.manager().cancel_failures()
    );
    assert_eq!(counters.connects_ok, 1, "the connection was replaced");
    assert_eq!(counters.drained, 5);
    assert_eq!(pool.manager().cancel_failures(), 0);
    // Generous: the target is 200 ms on an idle machine.
    assert!(
        stopped.iter().all(|d| *d < Duration::from_secs(2)),
        "{stopped:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_managers_cancel_reaches_the_server_through_the_pooler() {
    let Some((bouncer, direct)) = common::pgbouncer() else {
        return;
    };
    let side = common::side(&direct).await;
    let pool = common::pooled(
        bouncer.url(),
        "stormpool_pooler_cancel",
        Pooler::Transaction,
        1,
    );

    // The manager's cancel, a few times.
    let mut took = Vec::new();
    for round in 0..5 {
        let conn = pool.get().await.expect("acquire");
        let token = Conn::cancel_token(&conn).expect("token").clone();
        let tag = format!("stormpool_pooler_cancel_manager_{round}");
        let sql = format!("SELECT pg_sleep(30) /* {tag} */");
        let stuck = tokio::spawn(async move {
            let result = conn.simple_query(&sql).await.map(drop);
            (result, conn)
        });
        wait_running(&side, &tag).await;
        let sent = Instant::now();
        pool.manager().cancel(&token).await.expect("cancel");
        let (result, conn) = tokio::time::timeout(Duration::from_secs(5), stuck)
            .await
            .expect("the statement stopped")
            .expect("task");
        took.push(sent.elapsed());
        assert!(result.is_err(), "cancelled");
        conn.simple_query("SELECT 1")
            .await
            .expect("usable after the cancel");
    }
    println!("measured: the manager's cancel through pgbouncer stopped the statement in {took:?}");
}
