//! Fairness keys and valves: one key's fan-out must not crowd out the others.

mod support;

use std::time::Duration;

use stormpool::{AcquireError, AcquireOptions, Priority};
use support::{phase, quantile, End, Record, Shape};

/// A 20 ms service time (1 s deadlines) keeps the 1 ms timer quantum of
/// paused time small next to the latencies compared.
const SERVICE: Duration = Duration::from_millis(20);

type Builder = stormpool::Builder<stormpool::sim::SimManager>;

/// 99 keys send single requests at 0.8x of capacity in total for 10 s; with
/// `fan_out`, key 1000 also sends 100 requests at once every 2.5 s.
async fn run(fan_out: bool, configure: fn(Builder) -> Builder) -> (Vec<Record>, Vec<Record>) {
    let pool = support::pool_with(SERVICE, configure);
    support::warm(&pool).await;
    let shape = Shape {
        service: SERVICE,
        deadline: Duration::from_secs(1),
        key: |rng| 1 + rng.next_u64() % 99,
        ..Shape::default()
    };
    let bursts = support::Load::new(&pool, &[], &shape);
    let fanning_out = {
        let bursts = bursts.clone();
        tokio::spawn(async move {
            if !fan_out {
                return;
            }
            for _ in 0..4 {
                for _ in 0..100 {
                    bursts.spawn(Priority::Normal, 1000);
                }
                tokio::time::sleep(Duration::from_millis(2_500)).await;
            }
        })
    };
    let others = support::run(&pool, &[phase(0.8, 10_000)], shape).await;
    fanning_out.await.unwrap();
    let burst = bursts.records().await;
    assert_eq!(pool.status().counters.dead_handoffs, 0);
    (others, burst)
}

fn configure_valve(b: Builder) -> Builder {
    b.max_in_flight_per_key(Some(1))
}

#[tokio::test(start_paused = true)]
async fn a_fan_out_does_not_crowd_out_other_keys() {
    let (alone, _) = run(false, configure_valve).await;
    let (beside, burst) = run(true, configure_valve).await;
    let base = quantile(&alone, 0.99);
    let with = quantile(&beside, 0.99);
    let burst_ok = burst.iter().filter(|r| r.outcome == End::Ok).count();
    println!(
        "other keys' p99: {base:?} alone, {with:?} beside a 100-wide fan-out ({burst_ok}/{} of its requests served)",
        burst.len()
    );
    assert!(
        with.as_secs_f64() <= base.as_secs_f64() * 1.10,
        "p99 {with:?} vs {base:?}"
    );
    // With one connection at a time, a 100-wide burst of 20 ms requests
    // needs 2 s: the key gets what its valve allows within its 1 s deadline.
    assert!(
        burst_ok * 10 >= burst.len() * 4,
        "the fanning-out key is served too"
    );
}

#[tokio::test(start_paused = true)]
async fn round_robin_alone_keeps_other_keys_served() {
    // Without a valve, round-robin across keys serves the single requests
    // between the fan-out's, so the others barely notice it either. The
    // fan-out fits its 1 s deadlines (100 requests of 20 ms on 16
    // connections take 125 ms): nothing of it is shed, all of it is served.
    let (alone, _) = run(false, |b| b).await;
    let (beside, burst) = run(true, |b| b).await;
    let base = quantile(&alone, 0.99);
    let with = quantile(&beside, 0.99);
    let burst_ok = burst.iter().filter(|r| r.outcome == End::Ok).count();
    let ends: std::collections::BTreeMap<String, usize> =
        burst.iter().fold(Default::default(), |mut m, r| {
            *m.entry(format!("{:?}", r.outcome)).or_default() += 1;
            m
        });
    println!(
        "without a valve: p99 {base:?} alone, {with:?} beside the fan-out \
         ({burst_ok}/{} of its requests served: {ends:?})",
        burst.len()
    );
    // At the 99th percentile, a request of another key waits at most one
    // service time more, behind one of the fan-out's.
    assert!(with <= base + SERVICE, "p99 {with:?} vs {base:?}");
    assert_eq!(burst_ok, burst.len(), "a fan-out that fits is served whole");
}

#[tokio::test(start_paused = true)]
async fn per_key_queue_cap_rejects_at_once() {
    let pool = support::pool(|b| b.max_size(1).min_idle(0).max_queued_per_key(Some(2)));
    let _held = pool.get().await.unwrap();
    let opts = || {
        AcquireOptions::new()
            .key("tenant")
            .timeout(Duration::from_secs(1))
    };
    let p = pool.clone();
    let queued: Vec<_> = (0..2)
        .map(|_| {
            let p = p.clone();
            let o = opts();
            tokio::spawn(async move { p.get_with(o).await.map(drop) })
        })
        .collect();
    tokio::task::yield_now().await;
    let err = pool.get_with(opts()).await.unwrap_err();
    assert!(matches!(err, AcquireError::KeyQueueFull), "{err:?}");
    // Another key is not affected.
    let other = tokio::spawn({
        let p = pool.clone();
        async move {
            p.get_with(
                AcquireOptions::new()
                    .key("other")
                    .timeout(Duration::from_millis(10)),
            )
            .await
            .map(drop)
        }
    });
    assert!(matches!(other.await.unwrap(), Err(AcquireError::Timeout)));
    assert_eq!(pool.status().counters.rejected_key_queue, 1);
    for q in queued {
        q.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn a_held_request_is_let_in_when_its_key_returns_a_connection() {
    let pool = support::pool(|b| b.max_size(4).min_idle(4).max_in_flight_per_key(Some(1)));
    support_warm_small(&pool, 4).await;
    let first = pool.get_with(AcquireOptions::new().key("k")).await.unwrap();
    let p = pool.clone();
    let second =
        tokio::spawn(async move { p.get_with(AcquireOptions::new().key("k")).await.map(drop) });
    tokio::task::yield_now().await;
    let status = pool.status();
    assert_eq!(
        (status.held, status.waiting, status.idle),
        (1, 0, 3),
        "held back although 3 are idle"
    );
    drop(first);
    second.await.unwrap().unwrap();
    assert_eq!(pool.status().held, 0);
}

async fn support_warm_small(pool: &stormpool::Pool<stormpool::sim::SimManager>, n: usize) {
    for _ in 0..100 {
        if pool.status().idle >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("pool did not warm up");
}
