//! What every request of a live run runs ([`Workload`]): a statement
//! tagged with its attempt, so that the server's view of its sessions tells
//! whose work it is; and the counts of how the statements ended.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::base::PoolError;
use crate::database::Hang;
use crate::metrics::ServerStats;
use crate::pools::Request;

/// The tag in front of an attempt's number in a statement's text.
const TAG: &str = "stormlab req=";

/// How a statement of the lab's pools ended on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statement {
    /// It ran its time.
    Completed,
    /// The server stopped it: at its time bound (a propagated deadline),
    /// or cancelled.
    Stopped,
    /// It failed otherwise (a broken connection, say).
    Failed,
}

/// The statement every request of a run sends, and the counts of what
/// became of them. Clones share the counts and the hang switch.
#[derive(Clone)]
pub struct Workload {
    /// The statement that keeps the server busy for so many seconds.
    sleep: fn(f64) -> String,
    service: Duration,
    /// Set during a scenario's `hang` phase: statements sleep for an hour.
    hang: Arc<AtomicBool>,
    counts: Arc<StatementCounts>,
}

impl Workload {
    /// Statements made by `sleep`, for `service` each.
    pub fn new(sleep: fn(f64) -> String, service: Duration) -> Self {
        Workload {
            sleep,
            service,
            hang: Arc::default(),
            counts: Arc::default(),
        }
    }

    /// The switch that makes the statements sent from now on hang.
    pub fn hang(&self) -> Hang {
        let hang = self.hang.clone();
        Arc::new(move |on| hang.store(on, Ordering::SeqCst))
    }

    /// The request's statement, tagged with its attempt; counted as sent.
    pub fn statement(&self, req: &Request) -> String {
        let seconds = if self.hang.load(Ordering::SeqCst) {
            3600.0
        } else {
            self.service.as_secs_f64()
        };
        self.counts.sent();
        format!("{} {}", (self.sleep)(seconds), tag(req.id))
    }

    /// Counts how a statement ended; the request's result.
    pub fn ended(&self, statement: Statement) -> Result<(), PoolError> {
        self.counts.ended(statement);
        match statement {
            Statement::Completed => Ok(()),
            Statement::Stopped | Statement::Failed => Err(PoolError::Query),
        }
    }

    /// Forgets the statements sent so far (a warm-up's).
    pub fn forget(&self) {
        self.counts.clear();
    }

    /// The server's side of the run: the statements sent and how they
    /// ended, and `dead_work`, sampled.
    pub fn server_stats(&self, dead_work: Duration) -> ServerStats {
        let counts = &self.counts;
        // Relaxed: independent counters, read after the run.
        ServerStats {
            connects: 0,
            queries: counts.sent.load(Ordering::Relaxed),
            completed: counts.completed.load(Ordering::Relaxed),
            cancelled: counts.stopped.load(Ordering::Relaxed),
            abandoned_ms: dead_work.as_secs_f64() * 1000.0,
        }
    }
}

/// What the live pools count about the statements they send.
#[derive(Debug, Default)]
struct StatementCounts {
    sent: AtomicU64,
    completed: AtomicU64,
    stopped: AtomicU64,
}

impl StatementCounts {
    fn sent(&self) {
        // Relaxed: independent counters, read after the run.
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    fn ended(&self, statement: Statement) {
        let counter = match statement {
            Statement::Completed => &self.completed,
            Statement::Stopped => &self.stopped,
            Statement::Failed => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn clear(&self) {
        for counter in [&self.sent, &self.completed, &self.stopped] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// The comment that tags attempt `id`'s statement.
pub fn tag(id: u64) -> String {
    format!("/* {TAG}{id} */")
}

/// The attempt a statement's text is tagged with, if any.
pub fn tagged(text: &str) -> Option<u64> {
    let rest = &text[text.find(TAG)? + TAG.len()..];
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
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
}
