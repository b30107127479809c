//! The statement that puts a session's bound (PostgreSQL's
//! `statement_timeout`) on it; the core's
//! [`SessionBound`](stormpool::statements::SessionBound) decides when it
//! must change.

use stormpool::statements::Bound;

/// The statement putting `bound` on the session.
// Only PostgreSQL's statements are bounded on the server.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn statement(bound: Bound) -> String {
    match bound {
        Bound::Millis(ms) => format!("SET statement_timeout = {ms}"),
        Bound::Default => "SET statement_timeout TO DEFAULT".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_set_or_reset() {
        assert_eq!(statement(Bound::Millis(40)), "SET statement_timeout = 40");
        assert_eq!(
            statement(Bound::Default),
            "SET statement_timeout TO DEFAULT"
        );
    }
}
