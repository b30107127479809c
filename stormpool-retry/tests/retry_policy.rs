//! The retry policy's rules, one per test, under paused time: what is
//! retried, how long each attempt and the whole sequence may take, and the
//! typed errors for bad configurations.

use std::future::pending;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stormpool::clock::Instant;
use stormpool::AcquireError;
use stormpool_retry::{
    BudgetConfig, CallOptions, Classification, ConfigError, PoolErrors, RetryBudget, RetryError,
    RetryPolicy, Rng, Stop,
};

const ATTEMPT: Duration = Duration::from_millis(200);

#[derive(Debug, PartialEq)]
enum PushError {
    Reset,
    Conflict,
    Busy(Duration),
}

fn classify(error: &PushError) -> Classification {
    match error {
        PushError::Reset => Classification::Transient,
        PushError::Conflict => Classification::Permanent,
        PushError::Busy(after) => Classification::RetryAfter(*after),
    }
}

type Classifier = fn(&PushError) -> Classification;

fn policy(max_attempts: u32) -> RetryPolicy<Classifier> {
    RetryPolicy::builder(classify as Classifier)
        .max_attempts(max_attempts)
        .attempt_timeout(ATTEMPT)
        .backoff_base(Duration::from_millis(10))
        .backoff_cap(Duration::from_millis(40))
        .rng(Rng::with_seed(3))
        .build()
        .unwrap()
}

#[test]
fn retry_builder_rejects_bad_input_with_the_field() {
    let field = |result: Result<RetryPolicy<Classifier>, ConfigError>| result.unwrap_err().field();
    let builder = || RetryPolicy::builder(classify as Classifier);
    assert_eq!(field(builder().max_attempts(0).build()), "max_attempts");
    assert_eq!(field(builder().max_attempts(101).build()), "max_attempts");
    assert_eq!(
        field(builder().attempt_timeout(Duration::ZERO).build()),
        "attempt_timeout"
    );
    assert_eq!(
        field(builder().backoff_base(Duration::ZERO).build()),
        "backoff_base"
    );
    assert_eq!(
        field(builder().backoff_factor(f64::NAN).build()),
        "backoff_factor"
    );
}

#[test]
fn retry_builder_rejects_sleeps_not_strictly_below_the_attempt_timeout() {
    // 100 + 200 + 400 + 800 ms of worst-case sleep against a 500 ms attempt.
    let error = RetryPolicy::builder(classify as Classifier)
        .max_attempts(5)
        .attempt_timeout(Duration::from_millis(500))
        .backoff_base(Duration::from_millis(100))
        .backoff_cap(Duration::from_secs(1))
        .build()
        .unwrap_err();
    assert_eq!(
        error,
        ConfigError::SleepBudget {
            worst_case_sleep: Duration::from_millis(1_500),
            attempt_timeout: Duration::from_millis(500),
        }
    );
    assert_eq!(error.field(), "backoff_cap");
    assert!(error.to_string().contains("attempt_timeout"));

    // Equal is not below: 100 + 100 against 200 ms is refused, 199 ms of
    // sleep is accepted.
    let at_limit = |base_ms| {
        RetryPolicy::builder(classify as Classifier)
            .max_attempts(3)
            .attempt_timeout(Duration::from_millis(200))
            .backoff_base(Duration::from_millis(base_ms))
            .backoff_cap(Duration::from_millis(100))
            .backoff_factor(1.0)
            .build()
    };
    assert!(matches!(
        at_limit(100),
        Err(ConfigError::SleepBudget { .. })
    ));
    let accepted = at_limit(99).unwrap();
    assert_eq!(accepted.worst_case_sleep(), Duration::from_millis(198));
}

#[tokio::test(start_paused = true)]
async fn retry_transient_failures_until_success() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let value = policy(3)
        .run(CallOptions::new(), move |attempt| {
            log.lock()
                .unwrap()
                .push((attempt.number(), attempt.is_retry()));
            async move {
                match attempt.number() {
                    1 | 2 => Err(PushError::Reset),
                    n => Ok(n),
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(value, 3);
    assert_eq!(*seen.lock().unwrap(), [(1, false), (2, true), (3, true)]);
}

#[tokio::test(start_paused = true)]
async fn retry_never_repeats_a_permanent_failure() {
    let calls = AtomicU32::new(0);
    let error = policy(5)
        .run(CallOptions::new(), |_| {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Err::<(), _>(PushError::Conflict) }
        })
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert_eq!(error.stop(), Stop::Permanent);
    assert_eq!(error.into_error(), Some(PushError::Conflict));
}

#[tokio::test(start_paused = true)]
async fn retry_never_repeats_the_pools_overload_rejections() {
    let policy = RetryPolicy::builder(PoolErrors)
        .attempt_timeout(ATTEMPT)
        .backoff_base(Duration::from_millis(10))
        .backoff_cap(Duration::from_millis(40))
        .build()
        .unwrap();
    let overloads: [fn() -> AcquireError<std::io::Error>; 3] = [
        || AcquireError::Shed {
            retry_after: Duration::from_millis(1),
        },
        || AcquireError::TooManyWaiters,
        || AcquireError::KeyQueueFull,
    ];
    for make in overloads {
        let calls = AtomicU32::new(0);
        let error = policy
            .run(CallOptions::new(), |_| {
                calls.fetch_add(1, Ordering::Relaxed);
                async move { Err::<(), _>(make()) }
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(error.stop(), Stop::Overloaded);
    }
    // A pool timeout is transient: retried up to the attempts.
    let error = policy
        .run(CallOptions::new(), |_| async {
            Err::<(), AcquireError<std::io::Error>>(AcquireError::Timeout)
        })
        .await
        .unwrap_err();
    assert_eq!(
        (error.attempts(), error.stop()),
        (3, Stop::AttemptsExhausted)
    );
}

#[tokio::test(start_paused = true)]
async fn retry_bounds_each_attempt_by_its_timeout() {
    let start = Instant::now();
    let policy = policy(3);
    let error = policy
        .run(CallOptions::new(), |_| pending::<Result<(), PushError>>())
        .await
        .unwrap_err();
    assert!(error.is_timeout());
    assert_eq!(
        (error.attempts(), error.stop()),
        (3, Stop::AttemptsExhausted)
    );
    let elapsed = start.elapsed();
    assert!(elapsed >= ATTEMPT * 3);
    assert!(elapsed <= ATTEMPT * 3 + policy.worst_case_sleep() + Duration::from_millis(3));
}

#[tokio::test(start_paused = true)]
async fn retry_starts_nothing_that_cannot_finish_before_the_deadline() {
    // Room for one whole attempt and a half: the second would be cut short,
    // so it is not made.
    let start = Instant::now();
    let deadline = start + ATTEMPT * 3 / 2;
    let calls = AtomicU32::new(0);
    let error = policy(5)
        .run(CallOptions::new().deadline(deadline), |attempt| {
            calls.fetch_add(1, Ordering::Relaxed);
            assert_eq!(attempt.deadline(), Instant::now() + ATTEMPT);
            pending::<Result<(), PushError>>()
        })
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert_eq!(error.stop(), Stop::Deadline);
    assert_eq!(start.elapsed(), ATTEMPT);

    // A deadline shorter than one attempt cuts the first one short.
    let start = Instant::now();
    let error = policy(5)
        .run(CallOptions::new().timeout(ATTEMPT / 2), |attempt| {
            assert_eq!(attempt.deadline(), start + ATTEMPT / 2);
            pending::<Result<(), PushError>>()
        })
        .await
        .unwrap_err();
    assert_eq!((error.attempts(), error.stop()), (1, Stop::Deadline));
    assert_eq!(start.elapsed(), ATTEMPT / 2);
}

#[tokio::test(start_paused = true)]
async fn retry_with_a_zero_timeout_fails_at_once_without_an_attempt() {
    let calls = AtomicU32::new(0);
    let error = policy(3)
        .run(CallOptions::new().timeout(Duration::ZERO), |_| {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Ok::<(), PushError>(()) }
        })
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::Relaxed), 0);
    assert!(matches!(
        error,
        RetryError::TimedOut {
            attempts: 0,
            stop: Stop::Deadline
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn retry_stops_when_the_budget_is_empty() {
    let mut config = BudgetConfig::default();
    config.min_retries_per_sec = 0;
    let budget = RetryBudget::new(config).unwrap();
    let error = policy(3)
        .run(CallOptions::new().budget(&budget), |_| async {
            Err::<(), _>(PushError::Reset)
        })
        .await
        .unwrap_err();
    assert_eq!((error.attempts(), error.stop()), (1, Stop::BudgetExhausted));
    let stats = budget.stats();
    assert_eq!((stats.requests, stats.retries, stats.refused), (1, 0, 1));
}

#[tokio::test(start_paused = true)]
async fn retry_honours_a_server_delay_only_within_the_sleep_budget() {
    let start = Instant::now();
    let value = policy(3)
        .run(CallOptions::new(), |attempt| async move {
            match attempt.number() {
                1 => Err(PushError::Busy(Duration::from_millis(150))),
                n => Ok(n),
            }
        })
        .await
        .unwrap();
    assert_eq!(value, 2);
    assert_eq!(start.elapsed(), Duration::from_millis(150));

    // 150 ms then another 150 ms would reach the 200 ms attempt timeout.
    let error = policy(3)
        .run(CallOptions::new(), |_| async {
            Err::<(), _>(PushError::Busy(Duration::from_millis(150)))
        })
        .await
        .unwrap_err();
    assert_eq!((error.attempts(), error.stop()), (2, Stop::SleepBudget));
}

#[tokio::test(start_paused = true)]
async fn retry_dropped_makes_no_further_attempt() {
    let calls = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    let task = tokio::spawn(async move {
        policy(5)
            .run(CallOptions::new(), move |_| {
                counted.fetch_add(1, Ordering::Relaxed);
                pending::<Result<(), PushError>>()
            })
            .await
    });
    tokio::time::sleep(ATTEMPT / 2).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    tokio::time::sleep(ATTEMPT * 10).await;
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}
