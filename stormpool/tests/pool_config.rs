//! Bad input: every configuration error is typed and names its field;
//! rejections that need no waiting come at once; nothing panics.

use std::time::Duration;

use stormpool::admission::{CodelConfig, DeadlineAware};
use stormpool::gate::Gate;
use stormpool::pool::MAX_DURATION;
use stormpool::sim::{SimConfig, SimManager};
use stormpool::{AcquireError, AcquireOptions, Config, ConfigError, Pool};

fn build(config: Config) -> Result<Pool<SimManager>, ConfigError> {
    Pool::builder(SimManager::new(SimConfig::default()))
        .config(config)
        .build()
}

#[test]
fn every_bad_field_is_named() {
    type Breaker = Box<dyn Fn(&mut Config)>;
    let cases: Vec<(&str, Breaker)> = vec![
        ("max_size", Box::new(|c| c.max_size = 0)),
        ("max_waiters", Box::new(|c| c.max_waiters = 0)),
        (
            "max_concurrent_connects",
            Box::new(|c| c.max_concurrent_connects = 0),
        ),
        ("max_shed_per_tick", Box::new(|c| c.max_shed_per_tick = 0)),
        (
            "max_in_flight_per_key",
            Box::new(|c| c.max_in_flight_per_key = Some(0)),
        ),
        (
            "max_queued_per_key",
            Box::new(|c| c.max_queued_per_key = Some(0)),
        ),
        ("min_idle", Box::new(|c| c.min_idle = c.max_size + 1)),
        (
            "acquire_timeout",
            Box::new(|c| c.acquire_timeout = Duration::ZERO),
        ),
        (
            "connect_timeout",
            Box::new(|c| c.connect_timeout = Duration::ZERO),
        ),
        (
            "check_timeout",
            Box::new(|c| c.check_timeout = Duration::ZERO),
        ),
        (
            "connect_backoff_min",
            Box::new(|c| c.connect_backoff_min = Duration::ZERO),
        ),
        (
            "connect_backoff_max",
            Box::new(|c| c.connect_backoff_max = Duration::from_millis(1)),
        ),
        (
            "idle_timeout",
            Box::new(|c| c.idle_timeout = Some(Duration::ZERO)),
        ),
        (
            "max_lifetime",
            Box::new(|c| c.max_lifetime = Some(Duration::ZERO)),
        ),
        (
            "drain_timeout",
            Box::new(|c| c.drain_timeout = Duration::ZERO),
        ),
        (
            "maintenance_tick",
            Box::new(|c| c.maintenance_tick = Duration::ZERO),
        ),
        (
            "abandon_timeout",
            Box::new(|c| c.abandon_timeout = Duration::ZERO),
        ),
        ("max_hold", Box::new(|c| c.max_hold = Some(Duration::ZERO))),
        (
            "leak_threshold",
            Box::new(|c| c.leak_threshold = Some(Duration::ZERO)),
        ),
        (
            "deadline_aware",
            Box::new(|c| c.deadline_aware = DeadlineAware::MinRemaining(Duration::ZERO)),
        ),
        (
            "codel.target",
            Box::new(|c| {
                c.codel = Some(CodelConfig {
                    target: Duration::ZERO,
                    interval: Duration::from_millis(100),
                })
            }),
        ),
        ("max_hold", Box::new(|c| c.max_hold = Some(Duration::MAX))),
        (
            "check_interval",
            Box::new(|c| c.check_interval = Duration::MAX),
        ),
        ("max_waiters", Box::new(|c| c.max_waiters = usize::MAX)),
    ];
    for (field, break_it) in cases {
        let mut config = Config::default();
        break_it(&mut config);
        let err = build(config).expect_err(field);
        assert_eq!(err.field(), field, "{err}");
        assert!(
            err.to_string().contains(field),
            "the message names the field: {err}"
        );
    }
    // The limits themselves are fine.
    let mut config = Config::default();
    config.max_hold = Some(MAX_DURATION);
    config.check_interval = MAX_DURATION;
    build(config).unwrap();
}

#[test]
fn resize_rejects_zero_and_sizes_below_min_idle() {
    let mut config = Config::default();
    config.min_idle = 2;
    let pool = build(config).unwrap();
    assert_eq!(pool.resize(0).unwrap_err().field(), "max_size");
    assert_eq!(pool.resize(1).unwrap_err().field(), "min_idle");
    pool.resize(3).unwrap();
    assert_eq!(pool.status().max_size, 3);
}

#[test]
fn gate_rejects_zero_capacity() {
    assert_eq!(
        Gate::builder().capacity(0).build().unwrap_err().field(),
        "max_size"
    );
}

#[tokio::test(start_paused = true)]
async fn closed_and_full_pools_reject_at_once() {
    let mut config = Config::default();
    config.max_size = 1;
    config.max_waiters = 1;
    let pool = build(config).unwrap();
    let held = pool.get().await.unwrap();
    let queued = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get().await.map(drop) })
    };
    while pool.status().waiting < 1 {
        tokio::task::yield_now().await;
    }
    let start = tokio::time::Instant::now();
    assert!(matches!(
        pool.get().await,
        Err(AcquireError::TooManyWaiters)
    ));
    assert_eq!(start.elapsed(), Duration::ZERO, "rejected without waiting");
    pool.close().await.unwrap_err();
    assert!(matches!(queued.await.unwrap(), Err(AcquireError::Closed)));
    assert!(matches!(pool.get().await, Err(AcquireError::Closed)));
    // An acquire whose deadline has already passed never waits either.
    let past = tokio::time::Instant::now();
    let err = pool
        .get_with(AcquireOptions::new().deadline(past))
        .await
        .unwrap_err();
    assert!(matches!(err, AcquireError::Closed | AcquireError::Timeout));
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn extreme_options_do_not_panic() {
    let pool = build(Config::default()).unwrap();
    drop(
        pool.get_with(AcquireOptions::new().timeout(Duration::MAX))
            .await
            .unwrap(),
    );
    let past = tokio::time::Instant::now() - Duration::from_secs(1);
    let err = pool
        .get_with(AcquireOptions::new().deadline(past))
        .await
        .unwrap_err();
    assert!(matches!(err, AcquireError::Timeout));
    let err = pool
        .get_with(AcquireOptions::new().timeout(Duration::ZERO))
        .await
        .unwrap_err();
    assert!(matches!(err, AcquireError::Timeout));
}
