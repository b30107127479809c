//! Live backends: the same scenarios against a real server, whose
//! statements sleep for the service time, with the database adapters as
//! pools (`postgres.rs`: stormpool-postgres with and without deadline
//! propagation, deadpool-postgres, bb8-postgres; `mysql.rs`:
//! stormpool-mysql with and without, and mysql_async's own pool).
//!
//! # A live run
//!
//! 1. The pool is built and warmed up: twice its size of requests at once,
//!    so every pool starts with its connections open.
//! 2. The driver offers the scenario's load, in real time.
//! 3. Meanwhile a side connection samples the server's sessions every
//!    [`SAMPLE_EVERY`]: which tagged statements are running.
//! 4. After the load, sampling goes on until no statement of the run is
//!    left on the server (at most [`TAIL_LIMIT`]): the dead work a pool left
//!    behind is part of its bill. Then the pool is dropped and any session
//!    of the lab still open is terminated, so the next run starts clean.
//!
//! # Dead work: server time spent on statements nobody waited for
//!
//! Every statement carries its attempt's number in a comment
//! (`/* stormlab req=N */`). The driver records when each attempt was
//! abandoned by its client (at its deadline). A statement seen running in a
//! sample taken after its attempt was abandoned is dead work for the time
//! that sample stands for: the time to the next sample, at most four
//! sampling periods. Summed over samples and sessions this estimates, without
//! bias, the server time spent on statements nobody waited for; its
//! resolution is the sampling period per statement, and a statement shorter
//! than that is counted in proportion to its chance of being seen.

pub(crate) mod mysql;
pub(crate) mod postgres;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stormpool::Priority;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::driver::{Hang, Run};
use crate::metrics::{Attempt, AttemptResult, RawRun, ServerStats};
use crate::pools::{LabPool, PoolError, PoolKind, Request};

/// How often the server's sessions are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// How long after the load the lab waits for the server to finish the
/// run's statements.
pub const TAIL_LIMIT: Duration = Duration::from_secs(15);

/// The tag in front of an attempt's number in a statement's text.
const TAG: &str = "stormlab req=";

/// The name the lab's pools give their sessions, where the server keeps one.
pub(crate) const APPLICATION: &str = "stormlab";

/// A connection of the lab's own that reads the server's sessions.
pub(crate) trait Observer: Send + 'static {
    /// The attempts whose tagged statements are running on the server now
    /// (any session of the lab's pools); `None` if the connection failed.
    fn running(&mut self) -> impl Future<Output = Option<Vec<u64>>> + Send;
}

/// Warm-up, the run, the tail; see the module docs. The caller ends the
/// pool's sessions on the server afterwards.
pub(crate) async fn live_run<P: LabPool, O: Observer>(
    run: &Run<'_>,
    kind: PoolKind,
    pool: Arc<P>,
    observer: O,
    work: &Workload,
) -> RawRun {
    warm(&pool, run.params.connections).await;
    work.counts.clear();
    let sampler = Sampler::start(observer);
    let t0 = Instant::now();
    let mut raw = run.drive(kind, pool.clone(), t0, &work.hang()).await;
    sampler.wait_idle(TAIL_LIMIT).await;
    let samples = sampler.stop().await;
    raw.notes = pool.notes();
    drop(pool);
    raw.server = server_stats(&work.counts, &samples, t0, &raw.attempts);
    raw
}

/// Twice the pool's size of requests at once, so that it opens its
/// connections before the run.
async fn warm<P: LabPool>(pool: &Arc<P>, size: usize) {
    let waiting = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(5);
    let tasks: Vec<_> = (0..2 * size as u64)
        .map(|i| {
            let req = Request::new(
                u64::MAX - i,
                Priority::Normal,
                None,
                Some(deadline),
                waiting.clone(),
            );
            let pool = pool.clone();
            tokio::spawn(async move { pool.serve(&req).await })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// What every request of a live run runs, and the counts of what became
/// of it.
#[derive(Clone)]
pub(crate) struct Workload {
    /// The statement that keeps the server busy for so many seconds.
    sleep: fn(f64) -> String,
    service: Duration,
    /// Set during a scenario's `hang` phase: statements sleep for an hour.
    hang: Arc<AtomicBool>,
    counts: Arc<StatementCounts>,
}

impl Workload {
    pub(crate) fn new(sleep: fn(f64) -> String, service: Duration) -> Self {
        Workload {
            sleep,
            service,
            hang: Arc::default(),
            counts: Arc::default(),
        }
    }

    fn hang(&self) -> Hang {
        let hang = self.hang.clone();
        Arc::new(move |on| hang.store(on, Ordering::SeqCst))
    }

    /// The request's statement, tagged with its attempt; counted as sent.
    pub(crate) fn statement(&self, req: &Request) -> String {
        let seconds = if self.hang.load(Ordering::SeqCst) {
            3600.0
        } else {
            self.service.as_secs_f64()
        };
        self.counts.sent();
        format!("{} {}", (self.sleep)(seconds), tag(req.id))
    }

    /// Counts how the statement ended: completed, or failed (`timed_out`:
    /// stopped by the server at its time bound, or cancelled).
    pub(crate) fn ended<T, E>(
        &self,
        result: Result<T, E>,
        timed_out: impl FnOnce(&E) -> bool,
    ) -> Result<(), PoolError> {
        match result {
            Ok(_) => {
                self.counts.ended(true, false);
                Ok(())
            }
            Err(e) => {
                self.counts.ended(false, timed_out(&e));
                Err(PoolError::Query)
            }
        }
    }
}

/// The note of a stormpool run on a live server: what its pool and its
/// adapter counted. `stopped`: how the adapter counts statements stopped by
/// the propagated deadline; `bound`: the server's variable.
pub(crate) fn stormpool_note(
    counters: &stormpool::Counters,
    stopped_by_deadline: u64,
    bound_changes: u64,
    stopped: &str,
    bound: &str,
) -> String {
    format!(
        "statements stopped by the propagated deadline{stopped} {stopped_by_deadline}; \
         abandoned statements stopped on return {}, connections drained {}, closed after a \
         failed drain {}; {bound} changes {bound_changes}",
        counters.cancelled_on_return, counters.drained, counters.closed_drain_failed,
    )
}

/// Samples the server's sessions every [`SAMPLE_EVERY`] through an
/// [`Observer`], from its start until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    /// Consecutive samples that found no statement of the run.
    quiet: Arc<AtomicUsize>,
    task: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    fn start<O: Observer>(observer: O) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let quiet = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(sample(observer, stop.clone(), quiet.clone()));
        Sampler { stop, quiet, task }
    }

    /// Waits until two samples in a row found no statement of the run on
    /// the server, or `limit` passed.
    async fn wait_idle(&self, limit: Duration) {
        let until = Instant::now() + limit;
        while Instant::now() < until && self.quiet.load(Ordering::Relaxed) < 2 {
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
    }

    async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

async fn sample<O: Observer>(
    mut observer: O,
    stop: Arc<AtomicBool>,
    quiet: Arc<AtomicUsize>,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let at = Instant::now();
        let Some(attempts) = observer.running().await else {
            break;
        };
        // Relaxed: a gauge for `wait_idle`.
        if attempts.is_empty() {
            quiet.fetch_add(1, Ordering::Relaxed);
        } else {
            quiet.store(0, Ordering::Relaxed);
        }
        samples.push(Sample { at, attempts });
    }
    samples
}

/// The comment that tags attempt `id`'s statement.
fn tag(id: u64) -> String {
    format!("/* {TAG}{id} */")
}

/// The attempt a statement's text is tagged with, if any.
pub(crate) fn tagged(text: &str) -> Option<u64> {
    let rest = &text[text.find(TAG)? + TAG.len()..];
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// The attempts whose statements one sample found running.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    /// When the sample was asked for.
    pub(crate) at: Instant,
    /// The tagged statements running then, by attempt.
    pub(crate) attempts: Vec<u64>,
}

/// What the live pools count about the statements they send.
#[derive(Debug, Default)]
pub(crate) struct StatementCounts {
    sent: AtomicU64,
    completed: AtomicU64,
    timed_out: AtomicU64,
}

impl StatementCounts {
    /// A statement goes to the server.
    pub(crate) fn sent(&self) {
        // Relaxed: independent counters, read after the run.
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// A statement completed; `timed_out`: or the server stopped it at its
    /// time bound (a propagated deadline) or cancelled it.
    pub(crate) fn ended(&self, ok: bool, timed_out: bool) {
        if ok {
            self.completed.fetch_add(1, Ordering::Relaxed);
        } else if timed_out {
            self.timed_out.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forgets the warm-up.
    pub(crate) fn clear(&self) {
        for counter in [&self.sent, &self.completed, &self.timed_out] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// The server's side of a live run: the statement counts, and the dead
/// work integrated over the samples taken from `t0` on.
fn server_stats(
    counts: &StatementCounts,
    samples: &[Sample],
    t0: Instant,
    attempts: &[Attempt],
) -> ServerStats {
    ServerStats {
        connects: 0,
        queries: counts.sent.load(Ordering::Relaxed),
        completed: counts.completed.load(Ordering::Relaxed),
        cancelled: counts.timed_out.load(Ordering::Relaxed),
        abandoned_ms: dead_work(samples, t0, attempts).as_secs_f64() * 1000.0,
    }
}

/// Server time spent on statements whose attempt had been abandoned when
/// they were seen running (see the module docs).
fn dead_work(samples: &[Sample], t0: Instant, attempts: &[Attempt]) -> Duration {
    let mut abandoned_at = std::collections::HashMap::new();
    for a in attempts {
        if a.result == AttemptResult::Abandoned {
            abandoned_at.insert(a.id, t0 + Duration::from_micros(a.end_us));
        }
    }
    let longest = SAMPLE_EVERY * 4;
    let mut total = Duration::ZERO;
    for (i, sample) in samples.iter().enumerate() {
        let at = sample.at;
        let stands_for = samples
            .get(i + 1)
            .map_or(SAMPLE_EVERY, |next| next.at.saturating_duration_since(at))
            .min(longest);
        for id in &sample.attempts {
            if abandoned_at.get(id).is_some_and(|gone| *gone <= at) {
                total += stands_for;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        let sql = format!("SELECT pg_sleep(0.002) {}", tag(42));
        assert_eq!(tagged(&sql), Some(42));
        assert_eq!(tagged("SELECT 1"), None);
        assert_eq!(tagged("/* stormlab req= */"), None);
    }

    fn attempt(id: u64, result: AttemptResult, end_ms: u64) -> Attempt {
        Attempt {
            id,
            request: id,
            retry: 0,
            critical: false,
            key: None,
            start_us: 0,
            deadline_us: end_ms * 1000,
            end_us: end_ms * 1000,
            granted_us: Some(0),
            result,
        }
    }

    #[test]
    fn dead_work_counts_statements_seen_after_their_client_left() {
        let t0 = Instant::now();
        let ms = |m: u64| t0 + Duration::from_millis(m);
        let samples = vec![
            // Attempt 1 is still waited for at 10 ms, abandoned at 50 ms.
            Sample {
                at: ms(10),
                attempts: vec![1, 2],
            },
            Sample {
                at: ms(60),
                attempts: vec![1, 3],
            },
            Sample {
                at: ms(65),
                attempts: vec![1],
            },
            Sample {
                at: ms(70),
                attempts: vec![],
            },
        ];
        let attempts = [
            attempt(1, AttemptResult::Abandoned, 50),
            attempt(2, AttemptResult::Completed, 12),
            attempt(3, AttemptResult::Abandoned, 61),
        ];
        // Attempt 1 at 60 ms and 65 ms, 5 ms each; attempt 3 was still
        // waited for at 60 ms.
        assert_eq!(
            dead_work(&samples, t0, &attempts),
            Duration::from_millis(10)
        );
        // A long gap stands for four sampling periods at most.
        let gap = [
            Sample {
                at: ms(60),
                attempts: vec![1],
            },
            Sample {
                at: ms(900),
                attempts: vec![],
            },
        ];
        assert_eq!(dead_work(&gap, t0, &attempts), SAMPLE_EVERY * 4);
    }
}
