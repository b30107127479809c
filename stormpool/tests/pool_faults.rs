//! What the pool says and does when the database is down, comes back, or
//! accepts connections and never answers: failing fast with the real error
//! while it is down, serving again as soon as it is back (not when the
//! backoff happens to expire), and telling a silent database apart from
//! overload, in its errors and in its health.

use std::time::Duration;

use stormpool::sim::{Behavior, SimConfig, SimManager};
use stormpool::{AcquireError, AcquireOptions, Health, Pool, Reason};
use tokio::time::Instant;

fn pool(
    configure: impl FnOnce(stormpool::Builder<SimManager>) -> stormpool::Builder<SimManager>,
) -> Pool<SimManager> {
    configure(Pool::builder(SimManager::new(SimConfig::default())).max_size(4))
        .build()
        .unwrap()
}

/// The database refuses connections for a while, long enough for the
/// backoff to reach its 2 s cap, then accepts again. Requests meanwhile fail
/// fast with the connect error; once it is back, the first request after
/// `connect_backoff_min` is served, although the backoff would wait seconds.
#[tokio::test(start_paused = true)]
async fn a_database_that_comes_back_serves_the_next_request() {
    let pool = pool(|b| b);
    let db = pool.manager().db().clone();
    db.set_connect(Behavior::Err);
    let down_until = Instant::now() + Duration::from_secs(10);
    let mut attempts_while_down = 0;
    while Instant::now() < down_until {
        let started = Instant::now();
        let err = pool.get().await.unwrap_err();
        assert!(matches!(err, AcquireError::Connect(_)), "{err:?}");
        assert!(started.elapsed() <= Duration::from_millis(2), "failed fast");
        attempts_while_down += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let failed = pool.status().counters.connects_failed;
    // At most one attempt per `connect_backoff_min` (50 ms) on the
    // requests' behalf, plus the backoff's own.
    assert!(failed <= 10_000 / 50 + 10, "{failed} connects while down");
    assert!(attempts_while_down > 1_000);
    assert!(!pool.health().is_ready(), "{}", pool.health());

    db.set_connect(Behavior::Ok);
    let up = Instant::now();
    let mut connect_errors_after_success = 0;
    let mut first_success = None;
    while Instant::now() < up + Duration::from_millis(500) {
        match pool.get().await {
            Ok(_) => {
                first_success.get_or_insert(Instant::now() - up);
            }
            Err(AcquireError::Connect(_)) if first_success.is_some() => {
                connect_errors_after_success += 1
            }
            Err(AcquireError::Connect(_)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let first = first_success.expect("served once the database is back");
    println!("first success {first:?} after the database came back");
    assert!(first <= Duration::from_millis(50 + 5), "{first:?}");
    assert_eq!(connect_errors_after_success, 0);
    assert!(pool.health().is_healthy(), "{}", pool.health());
}

/// With nobody asking, the pool still finds out that the database is back
/// (paced by the backoff), so health does not stay unhealthy for ever and
/// keep the instance out of rotation.
#[tokio::test(start_paused = true)]
async fn health_recovers_without_traffic() {
    let pool = pool(|b| b);
    let db = pool.manager().db().clone();
    db.set_connect(Behavior::Err);
    assert!(pool.get().await.is_err());
    assert!(!pool.health().is_ready());
    db.set_connect(Behavior::Ok);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(pool.health().is_healthy(), "{}", pool.health());
    assert_eq!(pool.status().open, 1, "one connection proved it");
}

/// A server that accepts connections and never answers: requests are not
/// shed as overload but fail with `ConnectTimeout` at their deadline, health
/// is not healthy within two maintenance ticks and unhealthy after a few
/// detector intervals; once the connect times out, requests fail fast.
#[tokio::test(start_paused = true)]
async fn a_silent_database_is_not_overload() {
    let tick = Duration::from_millis(10);
    let pool = pool(|b| b.maintenance_tick(tick));
    pool.manager().db().set_connect(Behavior::Never);
    let start = Instant::now();
    let mut requests = Vec::new();
    for i in 0..200u64 {
        let pool = pool.clone();
        requests.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 2)).await;
            let deadline = Instant::now() + Duration::from_millis(50);
            let r = pool
                .get_with(AcquireOptions::new().deadline(deadline))
                .await
                .map(drop);
            (Instant::now().saturating_duration_since(deadline), r)
        }));
    }
    let mut not_healthy_at = None;
    let mut unhealthy_at = None;
    while Instant::now() < start + Duration::from_millis(600) {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let health = pool.health();
        if !health.is_healthy() {
            not_healthy_at.get_or_insert(start.elapsed());
        }
        if let Health::Unhealthy(reasons) = &health {
            if reasons
                .iter()
                .any(|r| matches!(r, Reason::DatabaseNotResponding { .. }))
            {
                unhealthy_at.get_or_insert(start.elapsed());
            }
        }
    }
    let not_healthy_at = not_healthy_at.expect("health noticed");
    println!("not healthy after {not_healthy_at:?}, unhealthy after {unhealthy_at:?}");
    assert!(not_healthy_at <= 2 * tick, "{not_healthy_at:?}");
    assert!(unhealthy_at.expect("unhealthy") <= Duration::from_millis(320));
    for r in requests {
        let (late, result) = r.await.unwrap();
        match result {
            Err(e @ AcquireError::ConnectTimeout) => assert!(!e.is_overload() && e.is_database()),
            other => panic!("a request to a silent database got {other:?}"),
        }
        assert!(
            late <= Duration::from_millis(1),
            "{late:?} past its deadline"
        );
    }
    let c = pool.status().counters;
    assert_eq!((c.shed, c.wedged), (0, 0), "nothing was called overload");
}
