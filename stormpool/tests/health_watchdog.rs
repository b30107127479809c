//! Every connection runs a query that never returns (deadlocked queries
//! pinning an exhausted pool). With `max_hold` the pool reclaims the slots
//! and keeps serving, and its health says so; without it, health reports
//! the wedge.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use stormpool::sim::{SimConfig, SimManager};
use stormpool::{AcquireOptions, Conn, Health, Pool, Reason};
use tokio::time::Instant;

const SIZE: usize = 4;

fn pool(max_hold: Option<Duration>, max_orphans: usize) -> Pool<SimManager> {
    Pool::builder(SimManager::new(SimConfig::default()))
        .max_size(SIZE)
        .min_idle(SIZE)
        .max_hold(max_hold)
        .max_orphans(max_orphans)
        .build()
        .unwrap()
}

async fn warm(pool: &Pool<SimManager>) {
    while pool.status().idle < SIZE {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Every connection starts a query that hangs (a deadlock on the server).
async fn wedge(pool: &Pool<SimManager>) -> Vec<tokio::task::JoinHandle<bool>> {
    pool.manager().db().set_hang(true);
    let mut holders = Vec::new();
    for _ in 0..SIZE {
        let mut conn = pool.get().await.unwrap();
        holders.push(tokio::spawn(async move {
            let failed = conn.query().await.is_err();
            // The holder learns why its query stopped, and lets go.
            assert!(
                Conn::is_revoked(&conn),
                "a cancelled stuck query belongs to a revoked lease"
            );
            failed
        }));
    }
    holders
}

#[tokio::test(start_paused = true)]
async fn max_hold_reclaims_every_slot_and_health_recovers() {
    let max_hold = Duration::from_millis(200);
    let tick = Duration::from_millis(10);
    let pool = pool(Some(max_hold), SIZE);
    warm(&pool).await;
    let start = Instant::now();
    let holders = wedge(&pool).await;
    assert!(pool.health().is_healthy(), "{}", pool.health());

    // New requests keep arriving while the queries hang.
    let mut requests = Vec::new();
    for i in 0..20u64 {
        let p = pool.clone();
        requests.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20 * i)).await;
            let started = Instant::now();
            let conn = p
                .get_with(AcquireOptions::new().timeout(Duration::from_secs(2)))
                .await;
            (started, conn.map(|c| Conn::id(&c)))
        }));
    }

    // Sample the revocations and the health every millisecond.
    let mut revoked_all_at = None;
    let mut revocations_reported = false;
    while Instant::now() < start + Duration::from_millis(600) {
        let s = pool.status();
        if s.counters.revoked == SIZE as u64 && revoked_all_at.is_none() {
            revoked_all_at = Some(Instant::now() - start);
        }
        let health = pool.health();
        if health
            .reasons()
            .iter()
            .any(|r| matches!(r, Reason::LeasesRevoked { .. }))
        {
            // The slots were replaced and requests are served: degraded,
            // still ready.
            assert!(matches!(health, Health::Degraded(_)), "{health}");
            revocations_reported = true;
        }
        assert!(s.orphans <= SIZE);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let revoked_at = revoked_all_at.expect("every stuck lease is revoked");
    println!("all {SIZE} stuck leases revoked after {revoked_at:?} (max_hold {max_hold:?})");
    assert!(revoked_at <= max_hold + tick + Duration::from_millis(1));
    assert!(revocations_reported, "health reports the revocations");
    assert_eq!(
        pool.manager().db().stats().cancels.load(Relaxed),
        SIZE as u64,
        "cancel sent for each"
    );

    for h in holders {
        assert!(
            h.await.unwrap(),
            "the stuck query was cancelled on the server"
        );
    }
    pool.manager().db().set_hang(false);
    // Requests arriving while every slot was stuck may be rejected early,
    // as `Wedged` (nothing was being served, so not as overload); every one
    // arriving once the slots were reclaimed is served.
    let (mut served, mut shed) = (0, 0);
    for r in requests {
        let (started, result) = r.await.unwrap();
        match result {
            Ok(_) => served += 1,
            Err(stormpool::AcquireError::Wedged { .. }) if started < start + revoked_at => {
                shed += 1
            }
            Err(e) => panic!("a request arriving after the reclaim failed: {e:?}"),
        }
    }
    println!("{served} served, {shed} rejected while wedged");
    assert!(served >= 10, "{served}");
    let s = pool.status();
    assert_eq!((s.orphans, s.counters.closed_revoked), (0, SIZE as u64));
    assert!(s.open <= SIZE);

    // Once the revocations are a few intervals old, health is back.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(pool.health().is_healthy(), "{}", pool.health());
}

#[tokio::test(start_paused = true)]
async fn without_max_hold_health_reports_the_wedge() {
    let pool = pool(None, SIZE);
    warm(&pool).await;
    let start = Instant::now();
    let _holders = wedge(&pool).await;
    // Requests keep arriving, every 10 ms.
    let arrivals = {
        let pool = pool.clone();
        tokio::spawn(async move {
            loop {
                let p = pool.clone();
                tokio::spawn(async move {
                    p.get_with(AcquireOptions::new().timeout(Duration::from_secs(30)))
                        .await
                        .map(drop)
                });
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let reported = loop {
        if let Health::Unhealthy(reasons) = pool.health() {
            if reasons.iter().any(|r| matches!(r, Reason::Wedged { .. })) {
                break Instant::now() - start;
            }
        }
        assert!(
            Instant::now() - start < Duration::from_secs(2),
            "the wedge was never reported"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    arrivals.abort();
    println!("wedge reported after {reported:?}");
    assert!(
        reported <= Duration::from_millis(350),
        "within a few intervals: {reported:?}"
    );
    assert_eq!(pool.status().counters.revoked, 0);
}

#[tokio::test(start_paused = true)]
async fn orphans_never_exceed_max_orphans() {
    let pool = pool(Some(Duration::from_millis(50)), 2);
    warm(&pool).await;
    // Holders that ignore the cancel and never let go.
    let mut held = Vec::new();
    for _ in 0..SIZE {
        held.push(pool.get().await.unwrap());
    }
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let s = pool.status();
        assert!(s.orphans <= 2, "{s:?}");
        // Replacements of the revoked ones get stuck too.
        if let Ok(c) = pool
            .get_with(AcquireOptions::new().timeout(Duration::from_millis(1)))
            .await
        {
            held.push(c);
        }
    }
    let s = pool.status();
    assert_eq!(s.orphans, 2);
    assert!(s.counters.revocations_skipped > 0);
    assert!(s.open <= SIZE);
    let stuck = |health: &Health| {
        health.reasons().iter().any(|r| {
            matches!(
                r,
                Reason::StuckLeases {
                    stuck: 4,
                    orphans: 2
                }
            )
        })
    };
    let health = pool.health();
    assert!(stuck(&health), "{health}");
    // Requests keep coming and none is served: within a few detector
    // intervals that makes the pool unhealthy, stuck leases or not.
    let mut wedged = None;
    for _ in 0..40 {
        let _ = pool
            .get_with(AcquireOptions::new().timeout(Duration::from_millis(1)))
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let health = pool.health();
        if !health.is_ready() {
            wedged = Some(health);
            break;
        }
    }
    let health = wedged.expect("a pool that serves nobody is not ready");
    assert!(stuck(&health), "{health}");
    assert!(
        health
            .reasons()
            .iter()
            .any(|r| matches!(r, Reason::Wedged { .. })),
        "{health}"
    );
    let revoked = held.iter().filter(|c| Conn::is_revoked(c)).count();
    assert_eq!(revoked, 2);
    drop(held);
    // Orphans count until their close is done.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let s = pool.status();
    assert_eq!(s.orphans, 0);
}

/// The smallest stuck lease: the defaults (no `min_idle`), one holder,
/// nobody waiting. The watchdog's pass then produces nothing but the cancel,
/// and that cancel must still be sent: the stuck statement stops on the
/// server within `max_hold` and a tick, and its holder learns why.
#[tokio::test(start_paused = true)]
async fn a_lone_stuck_lease_is_cancelled_with_nobody_waiting() {
    let max_hold = Duration::from_millis(200);
    let tick = Duration::from_millis(10);
    let pool = Pool::builder(SimManager::new(SimConfig::default()))
        .max_hold(Some(max_hold))
        .build()
        .unwrap();
    pool.manager().db().set_hang(true);
    let mut conn = pool.get().await.unwrap();
    let start = Instant::now();
    let stuck = tokio::spawn(async move {
        let result = conn.query().await;
        (Instant::now(), result.is_err(), Conn::is_revoked(&conn))
    });
    let (ended, failed, revoked) = tokio::time::timeout(max_hold * 10, stuck)
        .await
        .expect("the stuck statement was never cancelled")
        .unwrap();
    let stats = pool.manager().db().stats();
    println!("stuck statement stopped after {:?}", ended - start);
    assert!(failed && revoked, "the holder sees a revoked lease");
    assert_eq!(stats.cancels.load(Relaxed), 1, "one cancel sent");
    assert_eq!(stats.cancelled.load(Relaxed), 1, "the statement stopped");
    assert!(ended - start <= max_hold + tick + Duration::from_millis(1));
    let s = pool.status();
    assert_eq!((s.waiting, s.counters.revoked), (0, 1));
}

/// A revoked connection gives its fairness key's place back when its holder
/// lets go, as any connection does: the key is not left capped.
#[tokio::test(start_paused = true)]
async fn a_revoked_connection_frees_its_keys_place() {
    let pool: Pool<SimManager> = Pool::builder(SimManager::new(SimConfig::default()))
        .max_size(4)
        .max_in_flight_per_key(Some(1))
        .max_hold(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    let stuck = pool.get_with(AcquireOptions::new().key(7)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pool.status().counters.revoked, 1, "the lease was revoked");
    drop(stuck);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let next = pool
        .get_with(
            AcquireOptions::new()
                .key(7)
                .timeout(Duration::from_millis(50)),
        )
        .await;
    assert!(next.is_ok(), "the key's place came back: {:?}", next.err());
}
