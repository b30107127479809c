//! Retry amplification against a destination that fails every request,
//! under paused time: one layer stays under 1.15 attempts per request, three
//! stacked layers (each with its own budget) under 1.35.
//!
//! Load: 1 000 requests per second for 10 s, every attempt failing at once
//! with a transient error, policies allowing 3 attempts. Without a budget
//! that is 3 attempts per request for one layer and 27 for three. With the
//! default budget (10 % of requests, a floor of 10 retries per second,
//! 10 s TTL), a layer sending `n` requests makes at most
//! `1.1 n + 10/s × 10 s` attempts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stormpool_retry::{
    BudgetConfig, CallOptions, Classification, RetryBudget, RetryError, RetryPolicy, Rng,
};

const REQUESTS_PER_SEC: u64 = 1_000;
const SECONDS: u64 = 10;

#[derive(Debug)]
struct Refused;

/// A layer: a policy and its own budget for the one destination beneath it.
struct Layer {
    policy: RetryPolicy<fn(&Failure) -> Classification>,
    budget: RetryBudget,
}

/// What every layer sees from beneath: the bottom's error or a lower
/// layer's give-up. Both transient: the layers above retry them.
#[derive(Debug)]
enum Failure {
    Bottom(#[allow(dead_code)] Refused),
    Layer(#[allow(dead_code)] Box<RetryError<Failure>>),
}

fn transient(_: &Failure) -> Classification {
    Classification::Transient
}

fn layer(seed: u64, budget: BudgetConfig) -> Layer {
    let policy = RetryPolicy::builder(transient as fn(&Failure) -> Classification)
        .max_attempts(3)
        .attempt_timeout(Duration::from_secs(1))
        .backoff_base(Duration::from_millis(10))
        .backoff_cap(Duration::from_millis(100))
        .rng(Rng::with_seed(seed))
        .build()
        .unwrap();
    Layer {
        policy,
        budget: RetryBudget::new(budget).unwrap(),
    }
}

/// One top-level request through `layers` (outermost first) to a bottom that
/// always fails; counts the attempts that reach the bottom.
async fn call(layers: &[Layer], bottom: &AtomicU64) -> Result<(), Failure> {
    match layers.split_first() {
        None => {
            bottom.fetch_add(1, Ordering::Relaxed);
            Err(Failure::Bottom(Refused))
        }
        Some((layer, below)) => {
            let options = CallOptions::new().budget(&layer.budget);
            layer
                .policy
                .run(options, |_attempt| Box::pin(call(below, bottom)))
                .await
                .map_err(|e| Failure::Layer(Box::new(e)))
        }
    }
}

/// Sends `REQUESTS_PER_SEC` requests a second for `SECONDS` through the
/// stack and returns the attempts at the bottom per top-level request.
async fn amplification(layers: Vec<Layer>) -> f64 {
    let layers = Arc::new(layers);
    let bottom = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let requests = REQUESTS_PER_SEC * SECONDS;
    let gap = Duration::from_secs(1) / REQUESTS_PER_SEC as u32;
    for _ in 0..requests {
        let (layers, bottom) = (Arc::clone(&layers), Arc::clone(&bottom));
        tasks.spawn(async move {
            let result = call(&layers, &bottom).await;
            assert!(result.is_err(), "the destination fails every request");
        });
        tokio::time::sleep(gap).await;
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
    bottom.load(Ordering::Relaxed) as f64 / requests as f64
}

#[tokio::test(start_paused = true)]
async fn retry_budget_keeps_one_layer_under_1_15_attempts_per_request() {
    let ratio = amplification(vec![layer(1, BudgetConfig::default())]).await;
    println!("one layer: {ratio:.4} attempts per request");
    assert!(ratio <= 1.15, "one layer: {ratio:.4} attempts per request");
    assert!(ratio >= 1.05, "the budget still allows retries: {ratio:.4}");
}

#[tokio::test(start_paused = true)]
async fn retry_budget_keeps_three_stacked_layers_under_1_35_attempts_per_request() {
    let layers = (1..=3)
        .map(|seed| layer(seed, BudgetConfig::default()))
        .collect();
    let ratio = amplification(layers).await;
    println!("three layers: {ratio:.4} attempts per request at the bottom");
    assert!(
        ratio <= 1.35,
        "three layers: {ratio:.4} attempts per request"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_without_budget_multiplies_the_load() {
    // The control: the same stack without budgets, to show what the
    // budget prevents (and that the harness counts what it should).
    let mut unbudgeted = BudgetConfig::default();
    unbudgeted.min_retries_per_sec = 1_000_000;
    let layers = (1..=3).map(|seed| layer(seed, unbudgeted)).collect();
    let ratio = amplification(layers).await;
    println!("three layers, no effective budget: {ratio:.2} attempts per request");
    assert_eq!(ratio, 27.0);
}
