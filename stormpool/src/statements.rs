//! Helpers for managers that track the statements sent on their
//! connections, for [`Manager::statement_in_flight`](crate::Manager::statement_in_flight)
//! and [`Manager::on_checkout`](crate::Manager::on_checkout): the bound to
//! put on a request's statements, and the counters to report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The bound to put on a request's statements when it has `remaining` time:
/// rounded *down* to one of four steps per octave (1, 1.25, 1.5 and 1.75
/// times a power of two), in whole milliseconds, at least 1 ms.
///
/// # Why steps
///
/// Setting the bound on the server (`SET statement_timeout`,
/// `max_statement_time`) costs a statement, so a manager sends it only when
/// it changes. Consecutive requests with similar budgets land on the same
/// step and send nothing; since the step is never above the time left, a
/// statement never runs past its request's deadline (give or take the trip
/// to the server). The price is a bound up to 20% shorter than the time left.
///
/// ```
/// use std::time::Duration;
/// use stormpool::statements::statement_bound;
///
/// let ms = |m| Duration::from_millis(m);
/// assert_eq!(statement_bound(ms(50)), ms(48));
/// assert_eq!(statement_bound(ms(47)), ms(40));
/// assert_eq!(statement_bound(Duration::ZERO), ms(1));
/// ```
pub fn statement_bound(remaining: Duration) -> Duration {
    let ms = remaining.as_millis().clamp(1, u128::from(u64::MAX)) as u64;
    // Keep the leading bit and the two after it.
    let dropped = (63 - ms.leading_zeros()).saturating_sub(2);
    Duration::from_millis(ms >> dropped << dropped)
}

/// A manager's statement counters, shared by the manager and its
/// connections; [`snapshot`](StatementCounters::snapshot) reports them.
#[derive(Debug, Default)]
pub struct StatementCounters {
    stopped_by_deadline: AtomicU64,
    bound_changes: AtomicU64,
    abandoned: AtomicU64,
}

impl StatementCounters {
    /// A statement was stopped by the server at the bound propagated from
    /// its request's deadline.
    pub fn stopped_by_deadline(&self) {
        // Relaxed: independent counters, read for reporting only.
        self.stopped_by_deadline.fetch_add(1, Ordering::Relaxed);
    }

    /// The bound on a session was changed for a request.
    pub fn bound_changed(&self) {
        self.bound_changes.fetch_add(1, Ordering::Relaxed);
    }

    /// A statement's future was dropped before it completed.
    pub fn abandoned(&self) {
        self.abandoned.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> StatementStats {
        StatementStats {
            stopped_by_deadline: self.stopped_by_deadline.load(Ordering::Relaxed),
            bound_changes: self.bound_changes.load(Ordering::Relaxed),
            abandoned: self.abandoned.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of a manager's statement counters, since it was built, over
/// all its connections.
///
/// The pool counts the rest of the story in [`Counters`](crate::Counters):
/// `cancelled_on_return` (connections that came back with an abandoned
/// statement, which was cancelled on the server), `drained` (put back in
/// service once the server was idle on them) and `closed_drain_failed`
/// (closed because that took longer than `abandon_timeout`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatementStats {
    /// Statements the server stopped at the bound propagated from their
    /// request's deadline.
    pub stopped_by_deadline: u64,
    /// Bound changes sent because a request's bound differed from the one
    /// its session carried.
    pub bound_changes: u64,
    /// Statements whose future was dropped before they completed.
    pub abandoned: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_steps_per_octave_rounded_down() {
        let b = |ms| statement_bound(Duration::from_millis(ms)).as_millis() as u64;
        assert_eq!(
            [b(1), b(2), b(3), b(4), b(5), b(6), b(7)],
            [1, 2, 3, 4, 5, 6, 7]
        );
        assert_eq!(
            [b(8), b(9), b(10), b(11), b(12), b(15), b(16)],
            [8, 8, 10, 10, 12, 14, 16]
        );
        assert_eq!(b(1000), 896);
        assert_eq!(b(0), 1);
        for ms in 1..5_000 {
            let bound = b(ms);
            assert!(bound <= ms && bound * 5 >= ms * 4, "{ms} -> {bound}");
        }
    }
}
