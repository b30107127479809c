//! Admission control under open-loop storms, deterministic under paused time:
//! 16 connections, 2 ms service time, 50 ms deadlines, Poisson arrivals.

mod support;

use std::time::Duration;

use stormpool::{AcquireOptions, Priority};
use support::{count, goodput, phase, quantile, End, Shape, SERVICE};

#[tokio::test(start_paused = true)]
async fn overload_2x_keeps_goodput_near_capacity() {
    let pool = support::pool(|b| b);
    support::warm(&pool).await;
    let records = support::run(&pool, &[phase(2.0, 5_000)], Shape::default()).await;
    let got = goodput(&records, Duration::from_secs(5));
    let granted =
        count(&records, End::Ok) + count(&records, End::Late) + count(&records, End::Dead);
    let late = count(&records, End::Late);
    let status = pool.status();
    println!(
        "2x: goodput {:.1}% of capacity, {} requests, ok {}, late {late}, shed {}, timeout {}, dead {}",
        got * 100.0,
        records.len(),
        count(&records, End::Ok),
        count(&records, End::Shed),
        count(&records, End::Timeout),
        count(&records, End::Dead),
    );
    assert!(got >= 0.95, "goodput {got}");
    assert_eq!(count(&records, End::Dead), 0);
    assert_eq!(status.counters.dead_handoffs, 0);
    assert!(
        (late as f64) <= 0.02 * granted as f64,
        "late {late} of {granted}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_storm_then_half_load_recovers_within_two_intervals() {
    let pool = support::pool(|b| b);
    support::warm(&pool).await;
    let start = tokio::time::Instant::now();
    let shape = Shape {
        retries: 3,
        ..Shape::default()
    };
    let records = support::run(&pool, &[phase(2.0, 5_000), phase(0.5, 2_000)], shape).await;
    let storm_end = start + Duration::from_secs(5);
    let storm = support::between(&records, start, storm_end);
    let got = goodput(&storm, Duration::from_secs(5));
    let interval = Duration::from_millis(100);
    let after = support::between(
        &records,
        storm_end + 2 * interval,
        storm_end + Duration::from_secs(2),
    );
    let p99 = quantile(&after, 0.99);
    println!(
        "retry storm: goodput {:.1}%, attempts {}, after the drop p99 {:?}",
        got * 100.0,
        storm.len(),
        p99
    );
    assert!(got >= 0.90, "goodput during the storm {got}");
    assert!(
        p99 < 2 * SERVICE,
        "p99 {p99:?} two intervals after the drop"
    );
    assert_eq!(pool.status().counters.dead_handoffs, 0);
}

#[tokio::test(start_paused = true)]
async fn heavy_but_sustainable_load_is_not_shed() {
    let pool = support::pool(|b| b);
    support::warm(&pool).await;
    let records = support::run(&pool, &[phase(0.9, 10_000)], Shape::default()).await;
    let shed = count(&records, End::Shed);
    println!(
        "0.9x: {} requests, shed {shed}, timeouts {}, p99 {:?}",
        records.len(),
        count(&records, End::Timeout),
        quantile(&records, 0.99)
    );
    assert!(
        shed as f64 <= 0.001 * records.len() as f64,
        "shed {shed} of {}",
        records.len()
    );
}

#[tokio::test(start_paused = true)]
async fn critical_requests_are_served_under_2x_overload() {
    let pool = support::pool(|b| b);
    support::warm(&pool).await;
    let shape = Shape {
        priority: |rng| {
            if rng.next_f64() < 0.5 {
                Priority::Critical
            } else {
                Priority::Sheddable
            }
        },
        ..Shape::default()
    };
    let records = support::run(&pool, &[phase(2.0, 5_000)], shape).await;
    let of = |class: Priority, outcome: End| {
        records
            .iter()
            .filter(|r| r.priority == class && r.outcome == outcome)
            .count()
    };
    let critical = records
        .iter()
        .filter(|r| r.priority == Priority::Critical)
        .count();
    let critical_ok = of(Priority::Critical, End::Ok);
    println!(
        "half critical: critical {critical_ok}/{critical} served, critical late {} timeout {} dead {}, sheddable ok {} shed {} late {} timeout {}",
        of(Priority::Critical, End::Late),
        of(Priority::Critical, End::Timeout),
        of(Priority::Critical, End::Dead),
        of(Priority::Sheddable, End::Ok),
        of(Priority::Sheddable, End::Shed),
        of(Priority::Sheddable, End::Late),
        of(Priority::Sheddable, End::Timeout),
    );
    assert!(
        critical_ok as f64 >= 0.995 * critical as f64,
        "{critical_ok} of {critical}"
    );
    assert_eq!(
        of(Priority::Critical, End::Shed),
        0,
        "critical is never shed"
    );
    assert!(
        of(Priority::Sheddable, End::Shed) > 0,
        "shedding falls on the sheddable class"
    );
}

#[tokio::test(start_paused = true)]
async fn without_admission_control_fifo_collapses() {
    // The control experiment: the same pool with the detector off serves
    // FIFO under overload and loses most of its goodput.
    let pool = support::pool(|b| b.codel(None));
    support::warm(&pool).await;
    let records = support::run(&pool, &[phase(2.0, 2_000)], Shape::default()).await;
    let got = goodput(&records, Duration::from_secs(2));
    println!("2x without admission control: goodput {:.1}%", got * 100.0);
    assert!(got < 0.5, "FIFO goodput {got}");
    assert_eq!(pool.status().counters.dead_handoffs, 0);
}

#[tokio::test(start_paused = true)]
async fn critical_alone_at_2x_still_keeps_goodput() {
    // Critical requests are never shed; when they alone overload the pool,
    // adaptive LIFO is what keeps their goodput from collapsing.
    let pool = support::pool(|b| b);
    support::warm(&pool).await;
    let shape = Shape {
        priority: |_| Priority::Critical,
        ..Shape::default()
    };
    let records = support::run(&pool, &[phase(2.0, 5_000)], shape).await;
    let got = goodput(&records, Duration::from_secs(5));
    println!("all critical at 2x: goodput {:.1}%", got * 100.0);
    assert!(got >= 0.95, "goodput {got}");
    assert_eq!(count(&records, End::Shed), 0);
}

#[tokio::test(start_paused = true)]
async fn a_saturated_pool_with_time_to_spare_queues_instead_of_shedding() {
    // A batch job's worker pool: 256 workers in a closed loop on 16
    // connections, with an hour to spare. The queue stands at about 30 ms
    // for good, but every waiter is served long before its deadline and the
    // queue does not grow: shedding would only throw work away.
    let pool = support::pool(|b| b);
    support::warm(&pool).await;
    let stop = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..256 {
        let pool = pool.clone();
        workers.spawn(async move {
            let (mut served, mut rejected) = (0u64, 0u64);
            while tokio::time::Instant::now() < stop {
                let options = AcquireOptions::new().timeout(Duration::from_secs(3600));
                match pool.get_with(options).await {
                    Ok(mut conn) => {
                        conn.query().await.unwrap();
                        served += 1;
                    }
                    Err(e) => {
                        assert!(e.is_overload(), "{e:?}");
                        rejected += 1;
                    }
                }
            }
            (served, rejected)
        });
    }
    let (mut served, mut rejected) = (0, 0);
    while let Some(done) = workers.join_next().await {
        let (s, r) = done.unwrap();
        served += s;
        rejected += r;
    }
    let throughput = served as f64 / 3.0 / support::capacity();
    let c = pool.status().counters;
    println!(
        "256 workers: {served} served ({:.1}% of capacity), {rejected} rejected, shed {}",
        throughput * 100.0,
        c.shed
    );
    assert_eq!((rejected, c.shed, c.wedged), (0, 0, 0));
    assert!(throughput >= 0.97, "throughput {throughput}");
}

/// A one-off burst: 200 requests at once on 4 connections, 5 ms queries,
/// 30 ms deadlines, nothing after. The queue is doomed (the pool cannot
/// serve 200 in 30 ms), so it is served newest first and its old waiters
/// are shed, but only those the connections could not serve in time
/// anyway: with no request arriving after them, shedding the rest would
/// leave connections idle that could serve them.
#[tokio::test(start_paused = true)]
async fn a_burst_is_shed_only_down_to_what_can_be_served() {
    let service = Duration::from_millis(5);
    let deadline = Duration::from_millis(30);
    let pool = support::pool_with(service, |b| b.max_size(4).min_idle(4));
    while pool.status().idle < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A few requests first, so the pool knows its hold time.
    for _ in 0..4 {
        let mut conn = pool.get().await.unwrap();
        conn.query().await.unwrap();
    }
    let start = tokio::time::Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let opts = AcquireOptions::new().deadline(start + deadline);
                let Ok(mut conn) = pool.get_with(opts).await else {
                    return false;
                };
                conn.query().await.is_ok() && tokio::time::Instant::now() <= start + deadline
            })
        })
        .collect();
    let mut served = 0;
    for task in tasks {
        served += usize::from(task.await.unwrap());
    }
    // The most that fit: 4 connections, 6 queries of 5 ms each in 30 ms.
    let most = 4 * (deadline.as_millis() / service.as_millis()) as usize;
    let status = pool.status();
    println!(
        "burst: {served} of at most {most} served in time, shed {}, timed out {}",
        status.counters.shed, status.counters.timed_out
    );
    assert!(
        served * 5 >= most * 4,
        "{served} served in time of the {most} that fit"
    );
    assert_eq!(status.counters.dead_handoffs, 0);
}
