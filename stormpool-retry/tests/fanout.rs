//! Bounded fan-out under paused time: the in-flight bound (counted on the
//! operations' own futures), per-target deadlines, completion rules,
//! cancellation, composition with the retry policy, and bad input.

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stormpool::clock::Instant;
use stormpool_retry::fanout::{Completion, FanOut, FanOutBuilder, FanOutError, Outcome};
use stormpool_retry::{CallOptions, Classification, RetryError, RetryPolicy, Stop};

/// Counts the operation futures alive at once: one is created when the
/// fan-out calls the operation (after taking a permit) and dies when it
/// finishes or is dropped.
#[derive(Default)]
struct Tracker {
    alive: AtomicUsize,
    peak: AtomicUsize,
    /// Futures dropped before they finished (cancelled or timed out).
    abandoned: AtomicUsize,
}

struct Alive {
    tracker: Arc<Tracker>,
    finished: bool,
}

impl Tracker {
    fn enter(self: &Arc<Self>) -> Alive {
        let now = self.alive.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Alive {
            tracker: Arc::clone(self),
            finished: false,
        }
    }

    fn alive(&self) -> usize {
        self.alive.load(Ordering::SeqCst)
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    fn abandoned(&self) -> usize {
        self.abandoned.load(Ordering::SeqCst)
    }
}

impl Alive {
    fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.tracker.alive.fetch_sub(1, Ordering::SeqCst);
        if !self.finished {
            self.tracker.abandoned.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// An operation that answers `Ok(target)` after `delay`, or never when
/// `delay` is `None`.
fn tracked(
    tracker: &Arc<Tracker>,
    target: usize,
    delay: Option<Duration>,
) -> impl std::future::Future<Output = Result<usize, String>> + Send + 'static {
    let mut alive = tracker.enter();
    async move {
        match delay {
            Some(delay) => tokio::time::sleep(delay).await,
            None => pending::<()>().await,
        }
        alive.finish();
        Ok(target)
    }
}

#[tokio::test(start_paused = true)]
async fn fanout_returns_within_the_deadline_when_one_of_200_targets_never_answers() {
    const TARGETS: usize = 200;
    const MAX_IN_FLIGHT: usize = 16;
    const HUNG: usize = 100;
    let step = Duration::from_millis(10);
    let deadline = Duration::from_secs(1);
    let fanout = FanOut::builder()
        .max_in_flight(MAX_IN_FLIGHT)
        .per_target_timeout(deadline)
        .build()
        .unwrap();
    let tracker = Arc::new(Tracker::default());

    let start = Instant::now();
    let report = fanout
        .run(0..TARGETS, |target, _deadline| {
            let delay = (target != HUNG).then_some(step);
            tracked(&tracker, target, delay)
        })
        .await
        .unwrap();
    let elapsed = start.elapsed();

    // The slack is the time the hung target waited for its permit: the
    // waves of answering targets before it.
    let slack = step * (HUNG / MAX_IN_FLIGHT + 1) as u32;
    println!(
        "200 targets, one hung: returned after {elapsed:?} (deadline {deadline:?}, slack {slack:?}); \
         peak in flight {}",
        tracker.peak()
    );
    assert!(elapsed >= deadline);
    assert!(elapsed <= deadline + slack, "{elapsed:?}");
    assert_eq!(
        tracker.peak(),
        MAX_IN_FLIGHT,
        "the bound is reached, never passed"
    );
    assert_eq!(report.successes(), TARGETS - 1);
    assert!(matches!(report.outcomes()[HUNG], Outcome::TimedOut));
    assert_eq!(
        report.outcomes()[7],
        Outcome::Ok(7),
        "results keep the targets' order"
    );
    assert_eq!(tracker.alive(), 0);
    assert_eq!(tracker.abandoned(), 1, "only the hung target was dropped");
    assert!(!report.is_satisfied());
}

#[tokio::test(start_paused = true)]
async fn fanout_bound_is_shared_by_concurrent_runs() {
    let fanout = FanOut::builder()
        .max_in_flight(5)
        .per_target_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let tracker = Arc::new(Tracker::default());
    let run = |offset: usize| {
        let tracker = Arc::clone(&tracker);
        let fanout = fanout.clone();
        async move {
            fanout
                .run(offset..offset + 40, |target, _| {
                    tracked(&tracker, target, Some(Duration::from_millis(3)))
                })
                .await
                .unwrap()
        }
    };
    let (a, b) = tokio::join!(run(0), run(100));
    assert_eq!(a.successes() + b.successes(), 80);
    assert_eq!(tracker.peak(), 5);
    assert_eq!(fanout.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn fanout_quorum_returns_as_soon_as_k_succeed_and_cancels_the_rest() {
    let fanout = FanOut::builder()
        .max_in_flight(10)
        .per_target_timeout(Duration::from_secs(5))
        .completion(Completion::Quorum(3))
        .build()
        .unwrap();
    let tracker = Arc::new(Tracker::default());
    let start = Instant::now();
    let report = fanout
        .run(0..10usize, |target, _| {
            let delay = Duration::from_millis(10 * (target as u64 + 1));
            tracked(&tracker, target, Some(delay))
        })
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(30));
    assert!(report.is_satisfied());
    assert_eq!(report.successes(), 3);
    let cancelled = report
        .outcomes()
        .iter()
        .filter(|o| matches!(o, Outcome::Cancelled))
        .count();
    assert_eq!(cancelled, 7);
    assert_eq!(tracker.abandoned(), 7, "the other seven were dropped");
    assert_eq!(tracker.alive(), 0, "nothing outlives the call");
    assert_eq!(fanout.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn fanout_quorum_does_not_start_targets_it_no_longer_needs() {
    let fanout = FanOut::builder()
        .max_in_flight(2)
        .per_target_timeout(Duration::from_secs(1))
        .completion(Completion::Quorum(3))
        .build()
        .unwrap();
    let tracker = Arc::new(Tracker::default());
    let report = fanout
        .run(0..20usize, |target, _| {
            tracked(&tracker, target, Some(Duration::from_millis(10)))
        })
        .await
        .unwrap();
    // Two targets finish at the same instant; the one recorded after the
    // quorum was reached keeps its real outcome.
    assert!((3..=4).contains(&report.successes()));
    let not_started = report
        .outcomes()
        .iter()
        .filter(|o| matches!(o, Outcome::NotStarted))
        .count();
    assert!(not_started >= 16, "{not_started} not started");
    assert_eq!(tracker.peak(), 2);
}

#[tokio::test(start_paused = true)]
async fn fanout_quorum_gives_up_once_it_cannot_be_reached() {
    let fanout = FanOut::builder()
        .max_in_flight(5)
        .completion(Completion::Quorum(3))
        .build()
        .unwrap();
    let start = Instant::now();
    let report = fanout
        .run(0..5usize, |target, _| async move {
            if target < 3 {
                Err(format!("{target} refused"))
            } else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(target)
            }
        })
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(!report.is_satisfied());
    assert_eq!(report.failures(), 3);
    assert_eq!(
        report.outcomes()[0].err().map(String::as_str),
        Some("0 refused")
    );
}

#[tokio::test(start_paused = true)]
async fn fanout_first_waits_for_the_first_success_not_the_first_answer() {
    let fanout = FanOut::builder()
        .max_in_flight(8)
        .completion(Completion::First)
        .build()
        .unwrap();
    let start = Instant::now();
    let report = fanout
        .run(0..5usize, |target, _| async move {
            match target {
                0 | 1 => Err("conflict"),
                2 => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(target)
                }
                _ => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Ok(target)
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(20));
    assert_eq!(report.outcomes()[2], Outcome::Ok(2));
    assert_eq!(report.successes(), 1);
    assert!(report.is_satisfied());
}

#[tokio::test(start_paused = true)]
async fn fanout_dropped_cancels_everything_it_started() {
    let fanout = FanOut::builder()
        .max_in_flight(8)
        .per_target_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let tracker = Arc::new(Tracker::default());
    let run = fanout.run(0..50usize, |target, _| tracked(&tracker, target, None));
    let outcome = tokio::time::timeout(Duration::from_millis(100), run).await;
    assert!(outcome.is_err(), "the hung fan-out was cut off");
    assert_eq!(tracker.peak(), 8);
    // Aborted tasks are dropped by the runtime when it next runs them.
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(tracker.alive(), 0);
    assert_eq!(tracker.abandoned(), 8);
    assert_eq!(fanout.in_flight(), 0, "every permit came back");
}

#[tokio::test(start_paused = true)]
async fn fanout_deadline_bounds_each_targets_whole_retry_sequence() {
    let target_deadline = Duration::from_millis(500);
    let fanout = FanOut::builder()
        .max_in_flight(4)
        .per_target_timeout(target_deadline)
        .build()
        .unwrap();
    let policy = Arc::new(
        RetryPolicy::builder(|_: &&str| Classification::Transient)
            .max_attempts(5)
            .attempt_timeout(Duration::from_millis(200))
            .backoff_base(Duration::from_millis(10))
            .backoff_cap(Duration::from_millis(40))
            .build()
            .unwrap(),
    );
    let attempts = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let report = fanout
        .run(["hung", "healthy"], |peer, deadline| {
            let (policy, attempts) = (Arc::clone(&policy), Arc::clone(&attempts));
            async move {
                let options = CallOptions::new().deadline(deadline);
                policy
                    .run(options, |_attempt| {
                        attempts.fetch_add(usize::from(peer == "hung"), Ordering::Relaxed);
                        async move {
                            if peer == "hung" {
                                pending::<()>().await;
                            }
                            Ok::<_, &str>(peer)
                        }
                    })
                    .await
            }
        })
        .await
        .unwrap();
    let elapsed = start.elapsed();
    assert!(elapsed < target_deadline, "{elapsed:?}");
    // 200 ms, a short sleep, 200 ms: a third attempt would not fit.
    assert_eq!(attempts.load(Ordering::Relaxed), 2);
    match &report.outcomes()[0] {
        Outcome::Err(RetryError::TimedOut { attempts: 2, stop }) => {
            assert_eq!(*stop, Stop::Deadline)
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(report.outcomes()[1].is_ok());
}

#[tokio::test(start_paused = true)]
async fn fanout_rejects_bad_input_with_typed_errors() {
    let field = |builder: FanOutBuilder| builder.build().unwrap_err().field();
    assert_eq!(field(FanOut::builder().max_in_flight(0)), "max_in_flight");
    assert_eq!(
        field(FanOut::builder().per_target_timeout(Duration::ZERO)),
        "per_target_timeout"
    );
    assert_eq!(
        field(FanOut::builder().completion(Completion::Quorum(0))),
        "completion"
    );

    let quorum = FanOut::builder()
        .completion(Completion::Quorum(4))
        .build()
        .unwrap();
    let error = quorum
        .run(0..3, |t, _| async move { Ok::<_, ()>(t) })
        .await
        .unwrap_err();
    assert_eq!(
        error,
        FanOutError::QuorumAboveTargets {
            quorum: 4,
            targets: 3
        }
    );
    let first = FanOut::builder()
        .completion(Completion::First)
        .build()
        .unwrap();
    let none: [u8; 0] = [];
    assert!(first
        .run(none, |t, _| async move { Ok::<_, ()>(t) })
        .await
        .is_err());
    let all = FanOut::builder().build().unwrap();
    let report = all
        .run(none, |t, _| async move { Ok::<_, ()>(t) })
        .await
        .unwrap();
    assert!(report.outcomes().is_empty() && report.is_satisfied());
}

#[tokio::test(start_paused = true)]
async fn fanout_resumes_an_operations_panic() {
    let fanout = FanOut::builder().build().unwrap();
    let run = tokio::spawn(async move {
        fanout
            .run(0..3, |target, _| async move {
                if target == 1 {
                    panic!("operation bug");
                }
                Ok::<_, ()>(target)
            })
            .await
    });
    assert!(run.await.unwrap_err().is_panic());
}
