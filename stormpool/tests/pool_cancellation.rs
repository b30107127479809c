//! The cancellation matrix: every manager operation (connect, check, apply,
//! reset) succeeding, failing, slow or never finishing, with the acquire
//! dropped after every possible number of polls. Nothing may leak: afterwards
//! the ledger balances and the full capacity can be held at once.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use stormpool::sim::{Behavior, SimConfig, SimManager};
use stormpool::{AcquireOptions, Pool, Settings};

const SIZE: usize = 2;

#[derive(Clone, Copy, Debug)]
enum Op {
    Connect,
    Check,
    Apply,
    Reset,
}

fn set(pool: &Pool<SimManager>, op: Op, behavior: Behavior) {
    let db = pool.manager().db();
    match op {
        Op::Connect => db.set_connect(behavior),
        Op::Check => db.set_check(behavior),
        Op::Apply => db.set_apply(behavior),
        Op::Reset => db.set_reset(behavior),
    }
}

/// Returns (acquires cancelled while waiting, connections closed because the
/// acquire was dropped mid-probe or mid-configuration).
async fn case(op: Op, behavior: Behavior, polls: usize) -> (u64, u64) {
    let manager = SimManager::new(SimConfig {
        connect_latency: Duration::from_millis(2),
        round_trip: Duration::from_millis(2),
        ..SimConfig::default()
    });
    let pool = Pool::builder(manager)
        .max_size(SIZE)
        .connect_timeout(Duration::from_millis(20))
        .check_timeout(Duration::from_millis(20))
        .check_interval(Duration::from_millis(5))
        .connect_backoff_min(Duration::from_millis(1))
        .connect_backoff_max(Duration::from_millis(5))
        .build()
        .unwrap();
    let utc = Settings::new([("TimeZone", "UTC")]);
    let cet = Settings::new([("TimeZone", "CET")]);
    // Bring the pool to where `op` runs on the next acquire.
    let options = match op {
        Op::Connect => AcquireOptions::new(),
        Op::Check => {
            drop(pool.get().await.unwrap());
            tokio::time::advance(Duration::from_millis(10)).await;
            AcquireOptions::new()
        }
        Op::Apply => {
            drop(pool.get().await.unwrap());
            AcquireOptions::new().settings(utc.clone())
        }
        Op::Reset => {
            drop(
                pool.get_with(AcquireOptions::new().settings(utc.clone()))
                    .await
                    .unwrap(),
            );
            AcquireOptions::new().settings(cet.clone())
        }
    };
    set(&pool, op, behavior);

    {
        let mut acquire = pin!(pool.get_with(options.timeout(Duration::from_millis(200))));
        for _ in 0..polls {
            let polled = poll_fn(|cx| Poll::Ready(acquire.as_mut().poll(cx))).await;
            if polled.is_ready() {
                break;
            }
            tokio::time::advance(Duration::from_millis(1)).await;
            tokio::task::yield_now().await;
        }
        // Dropped here, at whatever point it reached.
    }

    set(&pool, op, Behavior::Ok);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let s = pool.status();
    let ctx = format!("{op:?} {behavior:?} after {polls} polls: {s:?}");
    assert_eq!(
        s.idle + s.in_use + s.connecting + s.draining,
        s.open,
        "{ctx}"
    );
    assert_eq!((s.in_use, s.waiting), (0, 0), "{ctx}");
    assert!(s.open <= SIZE, "{ctx}");
    assert_eq!(s.counters.dead_handoffs, 0, "{ctx}");

    let a = pool
        .get_with(AcquireOptions::new().timeout(Duration::from_secs(1)))
        .await;
    let b = pool
        .get_with(AcquireOptions::new().timeout(Duration::from_secs(1)))
        .await;
    assert!(
        a.is_ok() && b.is_ok(),
        "capacity not restored: {ctx}: {a:?} {b:?}"
    );
    drop((a, b));
    pool.close().await.unwrap();
    (s.counters.cancelled, s.counters.closed_tainted)
}

#[tokio::test(start_paused = true)]
async fn no_leak_whatever_the_manager_does_and_wherever_the_acquire_is_dropped() {
    let behaviors = [
        Behavior::Ok,
        Behavior::Err,
        Behavior::Slow(Duration::from_millis(30)),
        Behavior::Never,
    ];
    let (mut cases, mut cancelled, mut mid_prepare) = (0, 0, 0);
    for op in [Op::Connect, Op::Check, Op::Apply, Op::Reset] {
        for behavior in behaviors {
            for polls in 0..=8 {
                let (c, t) = case(op, behavior, polls).await;
                cancelled += c;
                mid_prepare += t;
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 4 * 4 * 9);
    // Both kinds of drop happened: while queued, and while the connection
    // was being probed or configured.
    assert!(
        cancelled > 0 && mid_prepare > 0,
        "cancelled {cancelled}, mid-prepare {mid_prepare}"
    );
    println!("{cases} cases: {cancelled} acquires dropped while queued, {mid_prepare} mid-prepare");
}
