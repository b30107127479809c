//! Dead work: server time spent on statements nobody waited for, sampled
//! from the server's sessions.
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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::server::LabConnection;
use crate::metrics::{Attempt, AttemptResult};

/// How often the server's sessions are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// Samples the server's sessions every [`SAMPLE_EVERY`] through an
/// connection of the lab's own, from its start until stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    /// Consecutive samples that found no statement of the run.
    quiet: Arc<AtomicUsize>,
    task: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Starts sampling through `observer`.
    pub fn start<O: LabConnection>(observer: O) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let quiet = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(sample(observer, stop.clone(), quiet.clone()));
        Sampler { stop, quiet, task }
    }

    /// Waits until two samples in a row found no statement of the run on
    /// the server, or `limit` passed.
    pub async fn wait_idle(&self, limit: Duration) {
        let until = Instant::now() + limit;
        while Instant::now() < until && self.quiet.load(Ordering::Relaxed) < 2 {
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
    }

    /// Stops sampling; the samples taken, in order.
    pub async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

async fn sample<O: LabConnection>(
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

/// The attempts whose statements one sample found running.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When the sample was asked for.
    pub at: Instant,
    /// The tagged statements running then, by attempt.
    pub attempts: Vec<u64>,
}

/// Server time spent on statements whose attempt had been abandoned when
/// they were seen running (see the module docs).
pub fn dead_work(samples: &[Sample], t0: Instant, attempts: &[Attempt]) -> Duration {
    let mut abandoned_at = HashMap::new();
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
