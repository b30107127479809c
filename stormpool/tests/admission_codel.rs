//! The overload detector inside the pool: entering and leaving overload,
//! timer-driven early rejection when no connection ever comes back (told
//! apart from overload: `Wedged`, not `Shed`), bounded drops.

mod support;

use std::time::Duration;

use stormpool::{AcquireError, AcquireOptions, Priority};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_wedged_pool_sheds_on_the_timer_within_a_bound_per_tick() {
    let tick = Duration::from_millis(10);
    let pool = support::pool(|b| b.max_shed_per_tick(5).maintenance_tick(tick));
    support::warm(&pool).await;
    // Every connection runs a query that never returns.
    pool.manager().db().set_hang(true);
    let mut holders = Vec::new();
    for _ in 0..support::CONNECTIONS {
        let mut conn = pool.get().await.unwrap();
        holders.push(tokio::spawn(async move { conn.query().await }));
    }
    tokio::task::yield_now().await;

    // 200 requests queue, with deadlines far away: only shedding can free them.
    let start = Instant::now();
    let mut waiters = Vec::new();
    for _ in 0..200 {
        let p = pool.clone();
        waiters.push(tokio::spawn(async move {
            let r = p
                .get_with(AcquireOptions::new().timeout(Duration::from_secs(30)))
                .await;
            (Instant::now(), r.map(drop))
        }));
    }

    // Sample the shed counter at every millisecond.
    let mut samples = Vec::new();
    while Instant::now() < start + Duration::from_millis(600) {
        let s = pool.status();
        samples.push((Instant::now(), s.counters.wedged, s.overloaded));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let first_shed = samples.iter().find(|s| s.1 > 0).map(|s| s.0 - start);
    let first_overloaded = samples.iter().find(|s| s.2).map(|s| s.0 - start);
    let interval = Duration::from_millis(100);
    println!("wedged: overloaded after {first_overloaded:?}, first shed after {first_shed:?}");
    let first_shed = first_shed.expect("a wedged pool must reject early");
    assert!(first_shed <= interval + Duration::from_millis(5) + tick + Duration::from_millis(2));
    // No hand-off ever happened: all of it is the maintenance timer's work,
    // at most 5 per tick.
    for window in samples.windows(10) {
        let shed = window[9].1 - window[0].1;
        assert!(shed <= 5, "{shed} shed within 9 ms");
    }
    assert_eq!(pool.status().counters.handoffs, 0);

    let mut shed = 0;
    for w in waiters {
        match w.await.unwrap() {
            (_, Err(e @ AcquireError::Wedged { stalled })) => {
                // Nothing was served: not overload, and the caller can tell.
                assert!(!e.is_overload());
                assert!(stalled >= interval, "{stalled:?}");
                shed += 1;
            }
            other => panic!("a waiter of a wedged pool got {other:?}"),
        }
    }
    assert_eq!(shed, 200, "every waiter is rejected in the end");
    assert_eq!(pool.status().counters.shed, 0, "none of it is overload");
    assert!(
        !pool.status().overloaded,
        "an empty queue is not overloaded"
    );
    pool.manager().db().set_hang(false);
    for h in holders {
        h.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn overload_ends_when_the_queue_drains() {
    let pool = support::pool(|b| b);
    support::warm(&pool).await;
    let records = support::run(
        &pool,
        &[support::phase(2.0, 1_000)],
        support::Shape::default(),
    )
    .await;
    assert!(support::count(&records, support::End::Shed) > 0);
    // The storm is over and every request has ended: the queue is empty and
    // the next sample clears the detector.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let status = pool.status();
    assert_eq!(status.waiting, 0);
    assert!(!status.overloaded, "{status:?}");
}

#[tokio::test(start_paused = true)]
async fn critical_waiters_are_never_shed_even_when_wedged() {
    let pool = support::pool(|b| b.max_size(1).min_idle(1));
    let mut held = pool.get().await.unwrap();
    pool.manager().db().set_hang(true);
    let holder = tokio::spawn(async move { held.query().await });
    let critical = {
        let p = pool.clone();
        tokio::spawn(async move {
            p.get_with(
                AcquireOptions::new()
                    .priority(Priority::Critical)
                    .timeout(Duration::from_secs(1)),
            )
            .await
            .map(drop)
        })
    };
    let normal = {
        let p = pool.clone();
        tokio::spawn(async move {
            p.get_with(AcquireOptions::new().timeout(Duration::from_secs(1)))
                .await
                .map(drop)
        })
    };
    assert!(matches!(
        normal.await.unwrap(),
        Err(AcquireError::Wedged { .. })
    ));
    assert!(matches!(
        critical.await.unwrap(),
        Err(AcquireError::Timeout)
    ));
    holder.abort();
}
