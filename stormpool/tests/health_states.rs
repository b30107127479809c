//! Health for each state: healthy, database down (unhealthy), shedding
//! (degraded, still ready), and back to healthy.

mod support;

use std::time::Duration;

use stormpool::sim::Behavior;
use stormpool::{Health, Reason};

#[tokio::test(start_paused = true)]
async fn database_down_is_unhealthy_and_recovery_is_healthy() {
    let pool = support::pool(|b| {
        b.min_idle(0)
            .connect_backoff_max(Duration::from_millis(100))
    });
    assert!(pool.health().is_healthy());
    pool.manager().db().set_connect(Behavior::Err);
    assert!(pool.get().await.is_err());
    let health = pool.health();
    assert!(
        matches!(&health, Health::Unhealthy(r) if r.iter().any(|r| matches!(r, Reason::DatabaseUnreachable { .. }))),
        "{health}"
    );
    assert!(!health.is_ready());
    pool.manager().db().set_connect(Behavior::Ok);
    tokio::time::sleep(Duration::from_millis(150)).await;
    pool.get().await.unwrap();
    assert!(pool.health().is_healthy(), "{}", pool.health());
}

#[tokio::test(start_paused = true)]
async fn shedding_is_degraded_but_ready() {
    let pool = support::pool(|b| b);
    support::warm(&pool).await;
    let watcher = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut degraded = 0;
            let mut unready = 0;
            for _ in 0..1_000 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let health = pool.health();
                if matches!(&health, Health::Degraded(r) if r.iter().any(|r| matches!(r, Reason::Overloaded { .. })))
                {
                    degraded += 1;
                }
                if !health.is_ready() {
                    unready += 1;
                }
            }
            (degraded, unready)
        })
    };
    let records = support::run(
        &pool,
        &[support::phase(2.0, 1_000)],
        support::Shape::default(),
    )
    .await;
    let (degraded, unready) = watcher.await.unwrap();
    assert!(support::count(&records, support::End::Shed) > 0);
    println!("degraded in {degraded} of 1000 samples, unready in {unready}");
    assert!(degraded > 500, "overload shows as degraded");
    assert_eq!(unready, 0, "shedding alone never fails readiness");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(pool.health().is_healthy(), "{}", pool.health());
}

#[tokio::test(start_paused = true)]
async fn closed_and_paused() {
    let pool = support::pool(|b| b.min_idle(0));
    pool.pause();
    assert!(matches!(pool.health(), Health::Degraded(ref r) if r == &[Reason::Paused]));
    pool.resume();
    assert!(pool.health().is_healthy());
    pool.close().await.unwrap();
    assert!(matches!(pool.health(), Health::Unhealthy(ref r) if r.contains(&Reason::Closed)));
}
