//! Deadline propagation: a request's remaining time becomes the session's
//! `statement_timeout`, so the server stops work whose client has left.
//!
//! # Why buckets
//!
//! `SET statement_timeout` costs a statement of its own, so it is sent only
//! when the value changes. The remaining time is rounded *down* to one of
//! four steps per octave (1, 1.25, 1.5 and 1.75 times a power of two, in
//! milliseconds): consecutive requests with similar budgets land on the same
//! step and send nothing, and since the step is never above the remaining
//! time, a statement never runs past its request's deadline (give or take
//! the trip to the server). The cost is a bound up to 20% shorter than the
//! time left.
//!
//! # What the session carries
//!
//! [`SessionBound`] is what the adapter last set on the session, kept in one
//! atomic so the connection's statements can run concurrently (`&self`, as
//! tokio-postgres pipelines them). A `SET` that failed (in an aborted
//! transaction, say) leaves it unknown, and the next statement sets it again.
//!
//! A `SET` sent inside a transaction block is undone if the transaction
//! rolls back, so the bound set there is *tentative*: trusted by later
//! statements of the transaction, and set again by the first statement
//! after it. A rollback to a savepoint can still leave the session with a
//! longer bound than the adapter believes (within one request the bound
//! only ever shrinks), never a shorter one: a later statement may run past
//! its deadline on the server by up to the difference, never be stopped
//! early, and the client's own bound still stops waiting for it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The session's `statement_timeout` is its default (as it was at connect,
/// or what the request's settings said).
const DEFAULT: u32 = 0;
/// The adapter does not know what the session carries.
const UNKNOWN: u32 = u32::MAX;
/// Marks a bound set inside a transaction block.
const TENTATIVE: u32 = 1 << 31;
/// The longest bound PostgreSQL accepts, in milliseconds (`INT_MAX`).
const MAX_MS: u32 = i32::MAX as u32;

/// `remaining` rounded down to four steps per octave, in whole
/// milliseconds, at least 1 ms (0 would mean "no limit" to the server):
/// [`statement_bound`](stormpool::statements::statement_bound), within the
/// server's range.
pub(crate) fn quantize(remaining: Duration) -> u32 {
    let limit = Duration::from_millis(u64::from(MAX_MS));
    stormpool::statements::statement_bound(remaining.min(limit)).as_millis() as u32
}

/// What a session's statements are bounded by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bound {
    /// The session's default.
    Default,
    /// This many milliseconds.
    Millis(u32),
}

impl Bound {
    /// The bound for a request with `deadline`, at `now`.
    pub(crate) fn until(deadline: Instant, now: Instant) -> Bound {
        Bound::Millis(quantize(deadline.saturating_duration_since(now)))
    }

    fn encode(self) -> u32 {
        match self {
            Bound::Default => DEFAULT,
            Bound::Millis(ms) => ms,
        }
    }

    /// The statement that puts this bound on the session; `restore` is the
    /// session's own `statement_timeout` when its settings carry one.
    pub(crate) fn statement(self, restore: Option<&str>) -> String {
        match (self, restore) {
            (Bound::Millis(ms), _) => format!("SET statement_timeout = {ms}"),
            (Bound::Default, None) => "SET statement_timeout TO DEFAULT".to_owned(),
            (Bound::Default, Some(value)) => format!(
                "SET statement_timeout = {}",
                crate::session::quote_literal(value)
            ),
        }
    }
}

/// The bound the adapter last put on a session.
#[derive(Debug)]
pub(crate) struct SessionBound(AtomicU32);

impl SessionBound {
    /// A fresh session: its default.
    pub(crate) fn new() -> Self {
        SessionBound(AtomicU32::new(DEFAULT))
    }

    /// Claims the change to `wanted` for a statement sent inside a
    /// transaction block or not: `true` when the session carries something
    /// else, or a bound set inside a transaction that has ended since (it
    /// may have been rolled back), and the caller must now send the `SET`.
    pub(crate) fn claim(&self, wanted: Bound, in_transaction: bool) -> bool {
        // Relaxed: the value orders nothing else; concurrent statements on
        // one session at worst both send the same SET.
        let current = self.0.load(Ordering::Relaxed);
        let trusted = current != UNKNOWN && (current & TENTATIVE == 0 || in_transaction);
        if trusted && current & !TENTATIVE == wanted.encode() {
            return false;
        }
        let tentative = if in_transaction { TENTATIVE } else { 0 };
        self.0.store(wanted.encode() | tentative, Ordering::Relaxed);
        true
    }

    /// A bound was set inside the transaction block the session is in now
    /// (behind a pooler: by a prelude a hand-written `BEGIN` took in).
    pub(crate) fn set_tentative(&self, bound: Bound) {
        self.0.store(bound.encode() | TENTATIVE, Ordering::Relaxed);
    }

    /// The session's `statement_timeout` is not known any more (a `SET`
    /// failed, a reset or settings changed it): the next statement sets its
    /// bound again, whatever it is.
    pub(crate) fn forget(&self) {
        self.0.store(UNKNOWN, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantizes_down_to_four_steps_per_octave() {
        let q = |ms| quantize(Duration::from_millis(ms));
        assert_eq!(q(0), 1);
        for ms in 1..=7 {
            assert_eq!(q(ms), ms as u32, "small values are exact");
        }
        assert_eq!((q(8), q(9), q(10), q(11)), (8, 8, 10, 10));
        assert_eq!((q(47), q(48), q(50), q(55), q(56)), (40, 48, 48, 48, 56));
        assert_eq!(q(1000), 896);
        assert_eq!(quantize(Duration::from_secs(1 << 40)), 0x7000_0000);
        for ms in 1..5000u64 {
            let step = u64::from(q(ms));
            assert!(step <= ms.max(1), "{ms} rounds down");
            assert!(step * 5 >= ms * 4 - 4, "{ms}: at most 20% below");
        }
    }

    #[test]
    fn a_change_is_claimed_once() {
        let bound = SessionBound::new();
        assert!(
            !bound.claim(Bound::Default, false),
            "a fresh session is at its default"
        );
        assert!(bound.claim(Bound::Millis(48), false));
        assert!(!bound.claim(Bound::Millis(48), false));
        assert!(
            !bound.claim(Bound::Millis(48), true),
            "trusted in a transaction"
        );
        bound.forget();
        assert!(
            bound.claim(Bound::Millis(48), false),
            "an unknown bound is set again"
        );
        bound.forget();
        assert!(
            bound.claim(Bound::Default, false),
            "so is an unknown default"
        );
        assert!(!bound.claim(Bound::Default, false));
    }

    #[test]
    fn a_bound_set_in_a_transaction_is_set_again_after_it() {
        let bound = SessionBound::new();
        assert!(bound.claim(Bound::Millis(40), true));
        assert!(!bound.claim(Bound::Millis(40), true), "same transaction");
        assert!(bound.claim(Bound::Millis(40), false), "maybe rolled back");
        assert!(!bound.claim(Bound::Millis(40), false));
    }

    #[test]
    fn statements_set_restore_or_reset() {
        assert_eq!(
            Bound::Millis(40).statement(None),
            "SET statement_timeout = 40"
        );
        assert_eq!(
            Bound::Default.statement(None),
            "SET statement_timeout TO DEFAULT"
        );
        assert_eq!(
            Bound::Default.statement(Some("5s")),
            "SET statement_timeout = '5s'"
        );
    }
}
