//! Deadline propagation: a request's remaining time becomes the session's
//! statement bound (`statement_timeout` in PostgreSQL, `max_statement_time`
//! in MariaDB), sent before a tracked statement only when it changes.
//!
//! The remaining time is rounded down by the core's
//! [`statement_bound`](stormpool::statements::statement_bound), so similar
//! budgets share a value and a statement never outlives its deadline.
//!
//! # What the session carries
//!
//! PostgreSQL undoes a `SET` when its transaction rolls back, so a bound set
//! while the session may be inside a transaction is *tentative*: trusted
//! while the session may still be in that transaction, set again by the
//! first statement after it, and forgotten when a rollback is seen (the
//! adapter's own, or a statement that says `ROLLBACK`). MariaDB's `SET` is
//! not transactional, so there a bound set is always known.

use std::time::Duration;

use tokio::time::Instant;

/// What a session's statements are bounded by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// The session's default (or the value its settings gave).
    Default,
    /// This many milliseconds.
    Millis(u32),
}

impl Bound {
    /// The bound for a request holding the connection until `deadline`,
    /// at most `max_ms` (the server's range).
    pub(crate) fn at(deadline: Option<Instant>, max_ms: u32) -> Bound {
        deadline.map_or(Bound::Default, |deadline| {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let limit = Duration::from_millis(u64::from(max_ms));
            let bound = stormpool::statements::statement_bound(remaining.min(limit));
            Bound::Millis(bound.as_millis() as u32)
        })
    }
}

/// What the adapter knows of the bound a session carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SessionBound {
    /// The bound the adapter last set (or a fresh session's default).
    Known(Bound),
    /// Set inside what may be a transaction: a rollback undoes it.
    Tentative(Bound),
    /// A `SET` failed or was cut short, a reset or settings changed it, or
    /// a rollback undid it.
    Unknown,
    /// The server has no such variable (MySQL): never set.
    Unsupported,
}

impl SessionBound {
    /// The bound to set before the next statement, if it must change;
    /// `in_transaction` when the session may be inside a transaction.
    pub(crate) fn change(self, wanted: Bound, in_transaction: bool) -> Option<Bound> {
        match self {
            SessionBound::Known(current) if current == wanted => None,
            SessionBound::Tentative(current) if current == wanted && in_transaction => None,
            SessionBound::Unsupported => None,
            _ => Some(wanted),
        }
    }

    /// A `SET` of `bound` went through; `undone_by_rollback` when the
    /// server undoes it with a rollback (PostgreSQL, inside a transaction).
    pub(crate) fn set(&mut self, bound: Bound, undone_by_rollback: bool) {
        *self = if undone_by_rollback {
            SessionBound::Tentative(bound)
        } else {
            SessionBound::Known(bound)
        };
    }

    /// The session's bound is not known any more.
    pub(crate) fn forget(&mut self) {
        if *self != SessionBound::Unsupported {
            *self = SessionBound::Unknown;
        }
    }

    /// A rollback ran: a bound set inside the transaction is gone.
    pub(crate) fn rolled_back(&mut self) {
        if matches!(self, SessionBound::Tentative(_)) {
            *self = SessionBound::Unknown;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_sent_once() {
        let mut bound = SessionBound::Known(Bound::Default);
        assert_eq!(bound.change(Bound::Default, false), None);
        assert_eq!(
            bound.change(Bound::Millis(48), false),
            Some(Bound::Millis(48))
        );
        bound.set(Bound::Millis(48), false);
        assert_eq!(bound.change(Bound::Millis(48), true), None);
        bound.forget();
        assert_eq!(
            bound.change(Bound::Default, false),
            Some(Bound::Default),
            "an unknown default is set again"
        );
        let unsupported = SessionBound::Unsupported;
        assert_eq!(unsupported.change(Bound::Millis(8), false), None);
    }

    #[test]
    fn a_bound_set_in_a_transaction_is_set_again_after_it() {
        let mut bound = SessionBound::Known(Bound::Default);
        bound.set(Bound::Millis(40), true);
        assert_eq!(
            bound.change(Bound::Millis(40), true),
            None,
            "same transaction"
        );
        assert_eq!(
            bound.change(Bound::Millis(40), false),
            Some(Bound::Millis(40)),
            "maybe rolled back"
        );
        bound.rolled_back();
        assert_eq!(bound, SessionBound::Unknown);
        let mut known = SessionBound::Known(Bound::Millis(40));
        known.rolled_back();
        assert_eq!(known, SessionBound::Known(Bound::Millis(40)));
    }

    #[test]
    fn the_bound_stays_in_range() {
        let soon = Instant::now() + Duration::from_millis(50);
        assert!(
            matches!(Bound::at(Some(soon), 1000), Bound::Millis(ms) if (32..=50).contains(&ms))
        );
        let far = Instant::now() + Duration::from_secs(1 << 30);
        assert_eq!(Bound::at(Some(far), 1000), Bound::Millis(896));
        assert_eq!(Bound::at(None, 1000), Bound::Default);
    }
}
