//! Deadline propagation: a request's remaining time becomes the session's
//! `max_statement_time` (MariaDB), so the server stops work whose client
//! has left.
//!
//! The bound is the core's [`Bound`] (the time left, rounded *down* to one
//! of four steps per octave, so similar budgets share one value and the
//! `SET` is sent only when it changes, and a statement never outlives its
//! request's deadline), what the session carries the core's
//! [`SessionBound`](stormpool::statements::SessionBound). MySQL has no
//! `max_statement_time` (its `max_execution_time` covers `SELECT` only):
//! the first `SET` fails there with `ER_UNKNOWN_SYSTEM_VARIABLE` and the
//! connection stops trying.
//! MariaDB's `SET` is not transactional, so a rollback does not undo it.

use mysql_async::Value;
use stormpool::statements::Bound;

/// `ER_UNKNOWN_SYSTEM_VARIABLE`: the server has no `max_statement_time`.
pub(crate) const UNKNOWN_VARIABLE: u16 = 1193;
/// `ER_STATEMENT_TIMEOUT`: the statement ran past `max_statement_time`.
pub(crate) const STATEMENT_TIMEOUT: u16 = 1969;
/// The variable deadline propagation sets.
pub(crate) const MAX_STATEMENT_TIME: &str = "max_statement_time";

/// The statement putting `bound` on the session: text, and the value of
/// its one parameter if it has one. `restore` is the value the session's
/// settings gave `max_statement_time`, if they did.
pub(crate) fn statement(bound: Bound, restore: Option<&Value>) -> (&'static str, Option<Value>) {
    const SET: &str = "SET SESSION max_statement_time = ?";
    match (bound, restore) {
        (Bound::Millis(ms), _) => (SET, Some(Value::Double(f64::from(ms) / 1000.0))),
        (Bound::Default, None) => ("SET SESSION max_statement_time = DEFAULT", None),
        (Bound::Default, Some(value)) => (SET, Some(value.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_carry_seconds() {
        let (sql, value) = statement(Bound::Millis(48), None);
        assert_eq!(sql, "SET SESSION max_statement_time = ?");
        assert_eq!(value, Some(Value::Double(0.048)));
        let (sql, value) = statement(Bound::Default, None);
        assert_eq!(
            (sql, value),
            ("SET SESSION max_statement_time = DEFAULT", None)
        );
        let restore = Value::Int(5);
        assert_eq!(
            statement(Bound::Default, Some(&restore)).1,
            Some(Value::Int(5))
        );
    }
}
