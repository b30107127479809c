//! Restarting the PgBouncer in front of the server under load: while it is
//! down requests fail fast with the real error (connection refused), none
//! runs past its deadline by more than the statement grace, and the pool
//! refills as soon as the pooler is back. Serialized, and the pooler is
//! always left running for the rest of the binary (its drop guard is the
//! shared handle).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stormpool::AcquireOptions;
use stormpool_postgres::{Classify, Pooler};

struct Outcome {
    started: Instant,
    ended: Instant,
    deadline: Instant,
    error: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_pooler_under_load_fails_fast_and_refills() {
    let Some((bouncer, _)) = common::pgbouncer() else {
        return;
    };
    let _serial = stormpool_testkit::serial().await;
    let pool = Arc::new(common::pooled(
        bouncer.url(),
        "stormpool_pooler_restart",
        Pooler::Transaction,
        8,
    ));
    let budget = Duration::from_millis(100);
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (pool, outcomes, stop) = (pool.clone(), outcomes.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let deadline = started + budget;
                    let result: Result<(), stormpool_postgres::Error> = async {
                        let conn = pool
                            .get_with(AcquireOptions::new().deadline(deadline.into()))
                            .await?;
                        conn.query_one("SELECT $1::int4", &[&1i32]).await?;
                        Ok(())
                    }
                    .await;
                    let ended = Instant::now();
                    let failed = result.is_err();
                    let error = result
                        .err()
                        .map(|e| format!("{e} (connection error: {})", e.is_connection_error()));
                    outcomes.lock().unwrap().push(Outcome {
                        started,
                        ended,
                        deadline,
                        error,
                    });
                    if failed {
                        // A failing caller backs off a little, as a service would.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopping = bouncer.clone();
    let down = tokio::task::spawn_blocking(move || stopping.stop().map(|()| Instant::now()))
        .await
        .expect("task")
        .expect("stop pgbouncer");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let starting = bouncer.clone();
    let restart = tokio::task::spawn_blocking(move || starting.restart())
        .await
        .expect("task")
        .expect("start pgbouncer");
    let up = restart.up;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("worker");
    }

    let outcomes = outcomes.lock().unwrap();
    let late: Vec<Duration> = outcomes
        .iter()
        .map(|o| o.ended.saturating_duration_since(o.deadline))
        .collect();
    let past_grace = late
        .iter()
        .filter(|d| **d > Duration::from_millis(50))
        .count();
    let worst = late.iter().max().copied().unwrap_or_default();
    let while_down: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.started > down + Duration::from_millis(50) && o.ended < up)
        .collect();
    let refused = while_down
        .iter()
        .filter(|o| o.error.as_deref().is_some_and(|e| e.contains("refused")))
        .count();
    let slowest_down = while_down
        .iter()
        .map(|o| o.ended - o.started)
        .max()
        .unwrap_or_default();
    let refilled = outcomes
        .iter()
        .filter(|o| o.started >= up && o.error.is_none())
        .map(|o| o.ended - up)
        .min();
    let ok = outcomes.iter().filter(|o| o.error.is_none()).count();
    let first_error = while_down.iter().find_map(|o| o.error.clone());
    println!(
        "measured: pgbouncer restart under 16 callers (100 ms deadlines): {} requests, {ok} ok; \
         while down {} requests, {refused} refused, slowest {slowest_down:?}; first served \
         {refilled:?} after it was back; {past_grace} past deadline + 50 ms (worst {worst:?}); \
         {} connects ok, {} failed",
        outcomes.len(),
        while_down.len(),
        pool.status().counters.connects_ok,
        pool.status().counters.connects_failed,
    );
    println!("measured: error while down: {first_error:?}");
    assert!(
        !while_down.is_empty(),
        "no request ran while the pooler was down"
    );
    assert!(
        refused > 0,
        "no request saw the real error: {first_error:?}"
    );
    assert!(
        refilled.is_some(),
        "no request was served after the restart"
    );
    // Generous: 50 ms is the promise, on an idle machine.
    assert!(
        worst < Duration::from_millis(500),
        "a request ran {worst:?} past its deadline"
    );
    drop(outcomes);
    assert!(bouncer.is_ready());
}
