//! Deadline propagation: a request's remaining time becomes the session's
//! `max_statement_time` (MariaDB), so the server stops work whose client
//! has left.
//!
//! As in the PostgreSQL adapter, the remaining time is rounded *down* to
//! one of four steps per octave, so similar budgets share one value and the
//! `SET` is sent only when it changes, and a statement never outlives its
//! request's deadline. MySQL has no `max_statement_time` (its
//! `max_execution_time` covers `SELECT` only): the first `SET` fails there
//! with `ER_UNKNOWN_SYSTEM_VARIABLE` and the connection stops trying.
//! MariaDB's `SET` is not transactional, so a rollback does not undo it.

use std::time::Duration;

use mysql_async::Value;
use tokio::time::Instant;

/// `ER_UNKNOWN_SYSTEM_VARIABLE`: the server has no `max_statement_time`.
pub(crate) const UNKNOWN_VARIABLE: u16 = 1193;
/// `ER_STATEMENT_TIMEOUT`: the statement ran past `max_statement_time`.
pub(crate) const STATEMENT_TIMEOUT: u16 = 1969;
/// The variable deadline propagation sets.
pub(crate) const MAX_STATEMENT_TIME: &str = "max_statement_time";

/// `remaining` rounded down to four steps per octave, in whole
/// milliseconds, at least 1 ms (0 would mean "no limit" to the server):
/// [`statement_bound`](stormpool::statements::statement_bound), within the
/// server's range.
fn quantize(remaining: Duration) -> u32 {
    let limit = Duration::from_millis(u64::from(u32::MAX >> 1));
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
    /// The bound for a request holding the connection until `deadline`.
    pub(crate) fn at(deadline: Option<Instant>) -> Bound {
        deadline.map_or(Bound::Default, |deadline| {
            Bound::Millis(quantize(deadline.saturating_duration_since(Instant::now())))
        })
    }

    /// The statement putting this bound on the session: text, and the
    /// value of its one parameter if it has one. `restore` is the value the
    /// session's settings gave `max_statement_time`, if they did.
    pub(crate) fn statement(self, restore: Option<&Value>) -> (&'static str, Option<Value>) {
        const SET: &str = "SET SESSION max_statement_time = ?";
        match (self, restore) {
            (Bound::Millis(ms), _) => (SET, Some(Value::Double(f64::from(ms) / 1000.0))),
            (Bound::Default, None) => ("SET SESSION max_statement_time = DEFAULT", None),
            (Bound::Default, Some(value)) => (SET, Some(value.clone())),
        }
    }
}

/// What the adapter knows of the bound a session carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SessionBound {
    /// The bound the adapter last set (or the default of a fresh session).
    Known(Bound),
    /// A `SET` failed or was cut short, or a reset or settings changed it.
    Unknown,
    /// The server has no `max_statement_time`: never set.
    Unsupported,
}

impl SessionBound {
    /// The bound to set before the next statement, if it must change.
    pub(crate) fn change(self, wanted: Bound) -> Option<Bound> {
        match self {
            SessionBound::Known(current) if current == wanted => None,
            SessionBound::Unsupported => None,
            _ => Some(wanted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantizes_down_to_four_steps_per_octave() {
        let q = |ms| quantize(Duration::from_millis(ms));
        assert_eq!(
            (q(0), q(7), q(9), q(47), q(50), q(1000)),
            (1, 7, 8, 40, 48, 896)
        );
    }

    #[test]
    fn sets_only_changes_and_never_an_unsupported_bound() {
        let fresh = SessionBound::Known(Bound::Default);
        assert_eq!(fresh.change(Bound::Default), None);
        assert_eq!(fresh.change(Bound::Millis(48)), Some(Bound::Millis(48)));
        let set = SessionBound::Known(Bound::Millis(48));
        assert_eq!(set.change(Bound::Millis(48)), None);
        assert_eq!(set.change(Bound::Default), Some(Bound::Default));
        assert_eq!(
            SessionBound::Unknown.change(Bound::Default),
            Some(Bound::Default)
        );
        assert_eq!(SessionBound::Unsupported.change(Bound::Millis(8)), None);
    }

    #[test]
    fn statements_carry_seconds() {
        let (sql, value) = Bound::Millis(48).statement(None);
        assert_eq!(sql, "SET SESSION max_statement_time = ?");
        assert_eq!(value, Some(Value::Double(0.048)));
        let (sql, value) = Bound::Default.statement(None);
        assert_eq!(
            (sql, value),
            ("SET SESSION max_statement_time = DEFAULT", None)
        );
        let restore = Value::Int(5);
        assert_eq!(
            Bound::Default.statement(Some(&restore)).1,
            Some(Value::Int(5))
        );
    }
}
