//! The statement bound a session carries (PostgreSQL's
//! `statement_timeout`), sent before a tracked statement only when it
//! changes.
//!
//! A bound set while the session may be inside a transaction is
//! *tentative*, since a rollback undoes the `SET`: trusted while the session
//! may still be in that transaction, set again by the first statement
//! after it, forgotten when a rollback is seen.

use std::time::Duration;

use tokio::time::Instant;

/// What a session's statements are bounded by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bound {
    /// The session's default.
    Default,
    /// This many milliseconds.
    Millis(u32),
}

/// The longest bound PostgreSQL accepts, in milliseconds (`INT_MAX`).
const MAX_MS: u64 = i32::MAX as u64;

impl Bound {
    /// The bound for a request holding the connection until `deadline`:
    /// the core's [`statement_bound`](stormpool::statements::statement_bound)
    /// of the time left, within the server's range.
    pub(crate) fn at(deadline: Option<Instant>) -> Bound {
        deadline.map_or(Bound::Default, |deadline| {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let bound = stormpool::statements::statement_bound(
                remaining.min(Duration::from_millis(MAX_MS)),
            );
            Bound::Millis(bound.as_millis() as u32)
        })
    }

    /// The statement putting this bound on the session.
    // Only PostgreSQL's statements are bounded on the server.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn statement(self) -> String {
        match self {
            Bound::Millis(ms) => format!("SET statement_timeout = {ms}"),
            Bound::Default => "SET statement_timeout TO DEFAULT".to_owned(),
        }
    }
}

/// What the adapter knows of the bound a session carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SessionBound {
    /// The bound the adapter last set (or a fresh session's default).
    Known(Bound),
    /// Set inside what may be a transaction: a rollback undoes it.
    Tentative(Bound),
    /// A `SET` failed or was cut short, or a rollback undid it.
    Unknown,
}

impl SessionBound {
    /// The bound to set before the next statement, if it must change.
    pub(crate) fn change(self, wanted: Bound, in_transaction: bool) -> Option<Bound> {
        match self {
            SessionBound::Known(current) if current == wanted => None,
            SessionBound::Tentative(current) if current == wanted && in_transaction => None,
            _ => Some(wanted),
        }
    }

    /// A `SET` of `bound` went through.
    pub(crate) fn set(&mut self, bound: Bound, in_transaction: bool) {
        *self = if in_transaction {
            SessionBound::Tentative(bound)
        } else {
            SessionBound::Known(bound)
        };
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
    fn a_change_is_sent_once_and_again_after_a_transaction() {
        let mut bound = SessionBound::Known(Bound::Default);
        assert_eq!(bound.change(Bound::Default, false), None);
        assert_eq!(
            bound.change(Bound::Millis(48), false),
            Some(Bound::Millis(48))
        );
        bound.set(Bound::Millis(48), true);
        assert_eq!(
            bound.change(Bound::Millis(48), true),
            None,
            "same transaction"
        );
        assert_eq!(
            bound.change(Bound::Millis(48), false),
            Some(Bound::Millis(48))
        );
        bound.rolled_back();
        assert_eq!(bound, SessionBound::Unknown);
        assert_eq!(Bound::Millis(40).statement(), "SET statement_timeout = 40");
        assert_eq!(
            Bound::Default.statement(),
            "SET statement_timeout TO DEFAULT"
        );
    }
}
