//! The `tower::retry::Policy` adapter: the same rules as `RetryPolicy::run`,
//! and three stacked retry layers held under 1.35 attempts per request.
#![cfg(feature = "tower")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stormpool::clock::Instant;
use stormpool_retry::tower::BudgetedRetry;
use stormpool_retry::{BudgetConfig, Classification, RetryBudget, RetryPolicy, Rng};
use tower::{service_fn, Layer, Service, ServiceExt};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Failure {
    Reset,
    Conflict,
}

type Classifier = fn(&Failure) -> Classification;

fn classify(failure: &Failure) -> Classification {
    match failure {
        Failure::Reset => Classification::Transient,
        Failure::Conflict => Classification::Permanent,
    }
}

fn retry(seed: u64, budget: BudgetConfig) -> BudgetedRetry<Classifier> {
    let policy = RetryPolicy::builder(classify as Classifier)
        .max_attempts(3)
        .attempt_timeout(Duration::from_millis(100))
        .backoff_base(Duration::from_millis(5))
        .backoff_cap(Duration::from_millis(40))
        .rng(Rng::with_seed(seed))
        .build()
        .unwrap();
    BudgetedRetry::new(
        Arc::new(policy),
        Arc::new(RetryBudget::new(budget).unwrap()),
    )
}

/// A service answering `answers[n]` to its n-th call (the last one after
/// that), counting calls.
fn scripted(
    answers: Vec<Result<u32, Failure>>,
    calls: Arc<AtomicU64>,
) -> impl Service<u32, Response = u32, Error = Failure, Future: Send> + Clone {
    let answers = Arc::new(answers);
    service_fn(move |_request: u32| {
        let n = calls.fetch_add(1, Ordering::Relaxed) as usize;
        let answer = answers[n.min(answers.len() - 1)];
        async move { answer }
    })
}

#[tokio::test(start_paused = true)]
async fn tower_retry_repeats_transient_failures_only() {
    let calls = Arc::new(AtomicU64::new(0));
    let service = retry(1, BudgetConfig::default())
        .layer()
        .layer(scripted(vec![Err(Failure::Reset), Ok(7)], calls.clone()));
    assert_eq!(service.oneshot(1).await, Ok(7));
    assert_eq!(calls.load(Ordering::Relaxed), 2);

    let calls = Arc::new(AtomicU64::new(0));
    let service = retry(1, BudgetConfig::default())
        .layer()
        .layer(scripted(vec![Err(Failure::Conflict)], calls.clone()));
    assert_eq!(service.oneshot(1).await, Err(Failure::Conflict));
    assert_eq!(
        calls.load(Ordering::Relaxed),
        1,
        "a permanent failure is not retried"
    );

    let calls = Arc::new(AtomicU64::new(0));
    let service = retry(1, BudgetConfig::default())
        .layer()
        .layer(scripted(vec![Err(Failure::Reset)], calls.clone()));
    assert_eq!(service.oneshot(1).await, Err(Failure::Reset));
    assert_eq!(calls.load(Ordering::Relaxed), 3, "max_attempts");
}

#[tokio::test(start_paused = true)]
async fn tower_retry_starts_no_attempt_past_the_overall_deadline() {
    let calls = Arc::new(AtomicU64::new(0));
    let counted = calls.clone();
    // Each attempt takes a whole attempt timeout (100 ms) and fails.
    let slow = service_fn(move |_request: u32| {
        counted.fetch_add(1, Ordering::Relaxed);
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err::<u32, _>(Failure::Reset)
        }
    });
    let start = Instant::now();
    let service = retry(1, BudgetConfig::default())
        .overall_timeout(Duration::from_millis(250))
        .layer()
        .layer(slow);
    assert_eq!(service.oneshot(1).await, Err(Failure::Reset));
    // The second attempt fits (ends by about 140 ms); a third would not.
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    assert!(start.elapsed() <= Duration::from_millis(250));
}

/// 1 000 requests a second for 10 s through three stacked retry layers, each
/// with its own budget, to a bottom that always fails.
#[tokio::test(start_paused = true)]
async fn tower_retry_keeps_three_stacked_layers_under_1_35_attempts_per_request() {
    let bottom = Arc::new(AtomicU64::new(0));
    let failing = scripted(vec![Err(Failure::Reset)], bottom.clone());
    let stack = retry(1, BudgetConfig::default()).layer().layer(
        retry(2, BudgetConfig::default())
            .layer()
            .layer(retry(3, BudgetConfig::default()).layer().layer(failing)),
    );
    let requests = 10_000u64;
    let mut tasks = tokio::task::JoinSet::new();
    for request in 0..requests {
        let service = stack.clone();
        tasks.spawn(async move { service.oneshot(request as u32).await });
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    while let Some(joined) = tasks.join_next().await {
        assert_eq!(joined.unwrap(), Err(Failure::Reset));
    }
    let ratio = bottom.load(Ordering::Relaxed) as f64 / requests as f64;
    println!("three tower layers: {ratio:.4} attempts per request at the bottom");
    assert!(ratio <= 1.35, "{ratio:.4}");
    assert!(ratio >= 1.2, "the budgets still allow retries: {ratio:.4}");
}
