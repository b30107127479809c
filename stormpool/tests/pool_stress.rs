//! A stress test after Vitess's smartconnpool stress test: a multi-thread
//! runtime, many more tasks than connections, resize churn, tainted
//! connections, cancelled and timed-out requests, and a close in the middle
//! of the traffic. An owner token on each connection, swapped on every
//! checkout and return, catches any double ownership.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stormpool::clock::Rng;
use stormpool::sim::{SimConfig, SimManager};
use stormpool::{AcquireError, AcquireOptions, Conn, Pool, Priority};

#[derive(Default)]
struct Tally {
    acquired: AtomicU64,
    tainted: AtomicU64,
    timed_out: AtomicU64,
    cancelled: AtomicU64,
    shed: AtomicU64,
    closed: AtomicU64,
    resizes: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_resize_churn_taints_and_a_close_in_the_middle() {
    let manager = SimManager::new(SimConfig {
        connect_latency: Duration::from_micros(200),
        ..SimConfig::default()
    });
    let pool = Pool::builder(manager)
        .max_size(8)
        .max_waiters(10_000)
        .check_interval(Duration::from_millis(2))
        .build()
        .unwrap();
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));

    let mut workers = Vec::new();
    for task in 1..=64u64 {
        let (pool, tally) = (pool.clone(), tally.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = Rng::with_seed(task);
            // Each worker runs until the pool tells it the pool is closed.
            loop {
                let priority = Priority::ALL[(rng.next_u64() % 4) as usize];
                let timeout = Duration::from_micros(200 + rng.next_u64() % 5_000);
                let options = AcquireOptions::new().priority(priority).timeout(timeout);
                let acquire = pool.get_with(options);
                // One request in ten is abandoned by its caller early.
                let result = if rng.next_u64() % 10 == 0 {
                    match tokio::time::timeout(
                        Duration::from_micros(rng.next_u64() % 1_000),
                        acquire,
                    )
                    .await
                    {
                        Ok(r) => r,
                        Err(_) => {
                            tally.cancelled.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                } else {
                    acquire.await
                };
                match result {
                    Ok(conn) => {
                        let prev = conn.owner.swap(task, Ordering::SeqCst);
                        assert_eq!(
                            prev,
                            0,
                            "connection {} held by {prev} and {task}",
                            Conn::id(&conn)
                        );
                        tally.acquired.fetch_add(1, Ordering::Relaxed);
                        if rng.next_u64() % 4 == 0 {
                            tokio::task::yield_now().await;
                        }
                        let mine = conn.owner.swap(0, Ordering::SeqCst);
                        assert_eq!(
                            mine,
                            task,
                            "connection {} changed hands while held",
                            Conn::id(&conn)
                        );
                        if rng.next_u64() % 50 == 0 {
                            tally.tainted.fetch_add(1, Ordering::Relaxed);
                            Conn::taint(conn);
                        }
                    }
                    // While churn and taints leave nothing established, a
                    // deadline that passes behind a slow connect says so.
                    Err(AcquireError::Timeout | AcquireError::ConnectTimeout) => {
                        tally.timed_out.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(AcquireError::Shed { .. }) => {
                        tally.shed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(AcquireError::Closed) => {
                        tally.closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Err(e) => panic!("unexpected error {e:?}"),
                }
            }
        }));
    }

    let churn = {
        let (pool, tally, stop) = (pool.clone(), tally.clone(), stop.clone());
        tokio::spawn(async move {
            let mut rng = Rng::with_seed(99);
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(2)).await;
                pool.resize(4 + (rng.next_u64() % 9) as usize).unwrap();
                tally.resizes.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // Close in the middle of the traffic: every worker must see `Closed`.
    let closed = pool.close().await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    churn.await.unwrap();
    assert!(closed.is_ok(), "connections were drained: {closed:?}");

    let status = pool.status();
    let t = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "acquired {}, tainted {}, timed out {}, cancelled {}, shed {}, closed {}, resizes {}; {status:?}",
        t(&tally.acquired),
        t(&tally.tainted),
        t(&tally.timed_out),
        t(&tally.cancelled),
        t(&tally.shed),
        t(&tally.closed),
        t(&tally.resizes)
    );
    // The test did what it claims to.
    assert!(t(&tally.acquired) > 10_000);
    assert!(t(&tally.tainted) > 100);
    assert!(t(&tally.cancelled) > 100);
    assert!(t(&tally.resizes) > 100);
    assert_eq!(t(&tally.closed), 64, "every worker saw the close");
    assert_eq!(status.open, 0);
    assert_eq!(status.counters.dead_handoffs, 0);
    // The pool handed out at least what the workers received (a caller's
    // own timeout may drop a connection the pool had just handed over).
    assert!(
        status.counters.acquired_direct + status.counters.acquired_waited >= t(&tally.acquired)
    );
}
