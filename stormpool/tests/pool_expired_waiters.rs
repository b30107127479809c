//! A pool stall as tests: when a timeout storm leaves a backlog of waiters
//! whose deadlines pass while they are queued ahead of live ones, the
//! expired waiters must never be handed a connection, and must not stand
//! between the live waiters and the returned connections.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stormpool::sim::{SimConfig, SimManager};
use stormpool::{AcquireError, AcquireOptions, Conn, Pool};
use tokio::time::Instant;

/// Lets the spawned requests run until `n` of them are queued.
async fn wait_for_waiters(pool: &Pool<SimManager>, n: usize) {
    while pool.status().waiting < n {
        tokio::task::yield_now().await;
    }
}

fn pool(size: usize) -> Pool<SimManager> {
    Pool::builder(SimManager::new(SimConfig::default()))
        .max_size(size)
        .max_waiters(100_000)
        .build()
        .unwrap()
}

/// The stall's recipe, deterministically: capacity 4, all held; a backlog
/// whose deadlines pass while queued ahead of 8 live waiters; time moves past
/// the backlog's deadlines and the connections are returned *before* any
/// expired waiter has run (as when they are stuck behind a contended mutex).
#[tokio::test(start_paused = true)]
async fn returned_connections_skip_the_expired_backlog() {
    let pool = pool(4);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.get().await.unwrap());
    }
    let dead_handoffs = Arc::new(AtomicUsize::new(0));
    let mut backlog = Vec::new();
    for _ in 0..200 {
        let p = pool.clone();
        let dead = dead_handoffs.clone();
        backlog.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_millis(10);
            match p.get_with(AcquireOptions::new().deadline(deadline)).await {
                Ok(_) if Instant::now() >= deadline => {
                    dead.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
                other => other.map(drop),
            }
        }));
    }
    let served = Arc::new(AtomicUsize::new(0));
    let mut live = Vec::new();
    for _ in 0..8 {
        let p = pool.clone();
        let served = served.clone();
        live.push(tokio::spawn(async move {
            let mut conn = p
                .get_with(AcquireOptions::new().timeout(Duration::from_secs(5)))
                .await?;
            conn.query().await.unwrap();
            served.fetch_add(1, Ordering::SeqCst);
            Ok::<_, AcquireError<_>>(())
        }));
    }
    wait_for_waiters(&pool, 208).await;

    // The backlog's deadlines pass; their timers fire, but none of them
    // runs before the returners do.
    tokio::time::advance(Duration::from_millis(11)).await;
    drop(held);
    let status = pool.status();
    assert_eq!(
        status.counters.handoffs - 4,
        4,
        "all four went to live waiters"
    );
    assert_eq!(
        status.counters.evicted_expired, 200,
        "the returners evicted the backlog on their way"
    );

    for task in backlog {
        assert!(matches!(task.await.unwrap(), Err(AcquireError::Timeout)));
    }
    for task in live {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        served.load(Ordering::SeqCst),
        8,
        "every live request is served"
    );
    assert_eq!(dead_handoffs.load(Ordering::SeqCst), 0);
    assert_eq!(pool.status().counters.dead_handoffs, 0);
}

/// The same race with real threads: returners on a multi-thread runtime,
/// expired waiters and live ones interleaved, repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_returners_never_hand_to_expired_waiters() {
    let pool = pool(4);
    let mut served = 0;
    let mut dead = 0;
    for _round in 0..20 {
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(pool.get().await.unwrap());
        }
        let mut tasks = Vec::new();
        for i in 0..64 {
            let p = pool.clone();
            // Every other waiter gives up after 1 ms; the rest wait.
            let timeout = if i % 2 == 0 {
                Duration::from_millis(1)
            } else {
                Duration::from_secs(5)
            };
            tasks.push(tokio::spawn(async move {
                let deadline = Instant::now() + timeout;
                match p.get_with(AcquireOptions::new().deadline(deadline)).await {
                    Ok(conn) => {
                        let late = Instant::now() >= deadline;
                        drop(conn);
                        Some(late)
                    }
                    Err(_) => None,
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
        // Return the connections from other tasks, all at once.
        let returners: Vec<_> = held
            .into_iter()
            .map(|c| tokio::spawn(async move { drop(c) }))
            .collect();
        for r in returners {
            r.await.unwrap();
        }
        for t in tasks {
            match t.await.unwrap() {
                Some(true) => dead += 1,
                Some(false) => served += 1,
                None => {}
            }
        }
    }
    assert_eq!(dead, 0, "a request got its connection after its deadline");
    assert!(served >= 20 * 32, "every live request is served: {served}");
    assert_eq!(pool.status().counters.dead_handoffs, 0);
}

/// A backlog of 10,000 expired waiters is cleared by the first returner in
/// one pass, not re-scanned by every later one (skipping expired waiters
/// without removing them only moves the convoy onto every later returner).
#[tokio::test(start_paused = true)]
async fn an_expired_prefix_is_evicted_once() {
    let pool = pool(1);
    let held = pool.get().await.unwrap();
    let mut backlog = Vec::new();
    for _ in 0..10_000 {
        let p = pool.clone();
        backlog.push(tokio::spawn(async move {
            p.get_with(AcquireOptions::new().timeout(Duration::from_millis(5)))
                .await
                .map(drop)
        }));
    }
    let p = pool.clone();
    let live = tokio::spawn(async move {
        p.get_with(AcquireOptions::new().timeout(Duration::from_secs(1)))
            .await
            .map(|c| Conn::id(&c))
    });
    wait_for_waiters(&pool, 10_001).await;
    tokio::time::advance(Duration::from_millis(6)).await;
    let id = Conn::id(&held);
    drop(held);
    assert_eq!(pool.status().counters.evicted_expired, 10_000);
    assert_eq!(pool.status().waiting, 0);
    assert_eq!(live.await.unwrap().unwrap(), id);
    for task in backlog {
        assert!(task.await.unwrap().is_err());
    }
}

/// The pool's one timer fails each waiter at its own deadline: a waiter
/// queued behind one with a long deadline, with a short deadline of its
/// own, times out at its deadline, and the long one still gets the
/// connection when it comes back.
#[tokio::test(start_paused = true)]
async fn each_waiter_times_out_at_its_own_deadline() {
    let pool = pool(1);
    let held = pool.get().await.unwrap();
    let patient = {
        let p = pool.clone();
        tokio::spawn(async move {
            let opts = AcquireOptions::new().timeout(Duration::from_secs(10));
            p.get_with(opts).await.map(drop)
        })
    };
    wait_for_waiters(&pool, 1).await;
    let start = Instant::now();
    let hasty = pool
        .get_with(AcquireOptions::new().timeout(Duration::from_millis(3)))
        .await;
    let waited = start.elapsed();
    assert!(matches!(hasty, Err(AcquireError::Timeout)), "{hasty:?}");
    // Shorter than the time to the next maintenance pass (every 10 ms
    // while requests wait): only a timer re-armed for it is on time.
    assert!(
        waited >= Duration::from_millis(3) && waited <= Duration::from_millis(4),
        "timed out after {waited:?}, deadline 3 ms"
    );
    assert_eq!(pool.status().waiting, 1, "the patient waiter still waits");
    drop(held);
    patient
        .await
        .unwrap()
        .expect("the patient waiter is served");
    let status = pool.status();
    assert_eq!((status.waiting, status.counters.timed_out), (0, 1));
}

/// A waiter held back by its key's in-flight cap times out at its deadline
/// too.
#[tokio::test(start_paused = true)]
async fn a_waiter_held_back_by_its_key_times_out() {
    let pool: Pool<SimManager> = Pool::builder(SimManager::new(SimConfig::default()))
        .max_size(4)
        .max_in_flight_per_key(Some(1))
        .build()
        .unwrap();
    let first = pool.get_with(AcquireOptions::new().key(7)).await.unwrap();
    let start = Instant::now();
    let second = pool
        .get_with(
            AcquireOptions::new()
                .key(7)
                .timeout(Duration::from_millis(30)),
        )
        .await;
    assert!(matches!(second, Err(AcquireError::Timeout)), "{second:?}");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(30) && waited <= Duration::from_millis(32),
        "timed out after {waited:?}, deadline 30 ms"
    );
    assert_eq!(pool.status().held, 0);
    drop(first);
}

/// A paused runtime, after `pool` served a request on another one that has
/// shut down since: the pool outlives the runtime its task started on.
fn second_runtime(pool: &Pool<SimManager>) -> tokio::runtime::Runtime {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    };
    runtime().block_on(async { drop(pool.get().await.unwrap()) });
    runtime()
}

/// A pool that outlives the runtime its background task ran on starts the
/// task again on the next request's runtime: waiters there still time out.
#[test]
fn the_timer_restarts_on_a_new_runtime() {
    let pool = pool(1);
    second_runtime(&pool).block_on(async {
        let held = pool.get().await.unwrap();
        let start = Instant::now();
        let waiting = pool.get_with(AcquireOptions::new().timeout(Duration::from_millis(20)));
        // Polled again when this timer fires, the waiter would notice its
        // deadline itself: what is checked is that it did not wait for that.
        let outcome = tokio::time::timeout(Duration::from_secs(10), waiting).await;
        let waited = start.elapsed();
        assert!(
            matches!(outcome, Ok(Err(AcquireError::Timeout))),
            "{outcome:?}"
        );
        assert!(
            waited <= Duration::from_millis(22),
            "timed out after {waited:?}, deadline 20 ms"
        );
        drop(held);
    });
}

/// The pool's connects, too, run on the runtime of the request that
/// started the pool's task again, not on the one that shut down.
#[test]
fn connects_run_on_the_new_runtime() {
    let pool: Pool<SimManager> = Pool::builder(SimManager::new(SimConfig::default()))
        .max_size(2)
        .build()
        .unwrap();
    second_runtime(&pool).block_on(async {
        let held = pool.get().await.unwrap();
        // The second connection has to be opened, on this runtime.
        let second = pool
            .get_with(AcquireOptions::new().timeout(Duration::from_secs(1)))
            .await;
        assert!(second.is_ok(), "{:?}", second.err());
        drop(held);
    });
}
