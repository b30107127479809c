//! Abandoned statements: a request that gives up mid-query leaves its
//! statement running on the server. The pool cancels it and drains the
//! connection before anyone else gets it; a request's own deadline bounds
//! its statements on the server.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use stormpool::sim::{Behavior, SimConfig, SimError, SimManager};
use stormpool::{AcquireOptions, Conn, Pool};
use tokio::time::Instant;

fn pool() -> Pool<SimManager> {
    Pool::builder(SimManager::new(SimConfig::default()))
        .max_size(1)
        .abandon_timeout(Duration::from_millis(100))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_dropped_query_is_cancelled_and_the_connection_drained() {
    let pool = pool();
    let mut conn = pool.get().await.unwrap();
    let id = Conn::id(&conn);
    // The request gives up 5 ms into a 10 s statement.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(5),
        conn.query_for(Duration::from_secs(10)),
    )
    .await;
    assert!(gave_up.is_err());
    drop(conn);
    assert_eq!(
        pool.status().draining,
        1,
        "out of circulation while the statement runs"
    );

    let start = Instant::now();
    let mut next = pool.get().await.unwrap();
    let waited = start.elapsed();
    assert_eq!(
        Conn::id(&next),
        id,
        "the same connection, drained and back in service"
    );
    assert!(
        waited < Duration::from_millis(5),
        "the next request did not queue behind dead work: {waited:?}"
    );
    next.query().await.unwrap();
    let stats = pool.manager().db().stats();
    assert_eq!(stats.cancels.load(Relaxed), 1);
    assert!(
        stats.abandoned_micros.load(Relaxed) < 1_000,
        "the dead work was cut short"
    );
    let s = pool.status();
    assert_eq!(
        (
            s.counters.cancelled_on_return,
            s.counters.drained,
            s.draining
        ),
        (1, 1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_statement_that_will_not_drain_is_closed_and_replaced() {
    let pool = pool();
    let mut conn = pool.get().await.unwrap();
    let id = Conn::id(&conn);
    let _ = tokio::time::timeout(
        Duration::from_millis(5),
        conn.query_for(Duration::from_secs(10)),
    )
    .await;
    // The server does not answer the probe.
    pool.manager().db().set_check(Behavior::Never);
    drop(conn);
    let next = pool
        .get_with(AcquireOptions::new().timeout(Duration::from_secs(1)))
        .await
        .unwrap();
    assert_ne!(
        Conn::id(&next),
        id,
        "a fresh connection replaced the stuck one"
    );
    let s = pool.status();
    assert_eq!((s.counters.closed_drain_failed, s.draining), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn the_request_deadline_bounds_its_statements() {
    let pool = pool();
    let deadline = Instant::now() + Duration::from_millis(50);
    let mut conn = pool
        .get_with(AcquireOptions::new().deadline(deadline))
        .await
        .unwrap();
    assert_eq!(conn.statement_deadline(), Some(deadline));
    let err = conn.query_for(Duration::from_secs(3)).await.unwrap_err();
    assert_eq!(err, SimError::StatementTimeout);
    assert_eq!(
        Instant::now(),
        deadline,
        "stopped on the server at the deadline"
    );
    drop(conn);
    // The next request, with a later deadline, is bounded by its own.
    let later = Instant::now() + Duration::from_secs(10);
    let mut conn = pool
        .get_with(AcquireOptions::new().deadline(later))
        .await
        .unwrap();
    assert_eq!(conn.statement_deadline(), Some(later));
    conn.query().await.unwrap();
    drop(conn);
    // A timeout bounds the wait only: nothing is propagated.
    let conn = pool
        .get_with(AcquireOptions::new().timeout(Duration::from_millis(10)))
        .await
        .unwrap();
    assert_eq!(conn.statement_deadline(), None);
    assert_eq!(pool.manager().db().stats().deadline_stops.load(Relaxed), 1);
}
