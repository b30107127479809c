//! Deadline propagation: a request's remaining time becomes the session's
//! `statement_timeout`, so the server stops work whose client has left.
//!
//! The bound is the core's [`Bound`] (the time left, rounded down to four
//! steps per octave, so `SET statement_timeout` is sent only when it
//! changes), and what the session carries is the core's
//! [`SessionBound`](stormpool::statements::SessionBound), behind a lock so
//! the connection's statements can run concurrently (`&self`, as
//! tokio-postgres pipelines them). A `SET` that failed (in an aborted
//! transaction, say) leaves it unknown, and the next statement sets it
//! again. A bound set inside a transaction block is tentative: a rollback
//! to a savepoint can leave the session with a longer bound than the
//! adapter believes, never a shorter one, so a later statement may run past
//! its deadline on the server by up to the difference, never be stopped
//! early, and the client's own bound still stops waiting for it.

use std::sync::{Mutex, PoisonError};

pub(crate) use stormpool::statements::Bound;

/// The statement that puts `bound` on the session; `restore` is the
/// session's own `statement_timeout` when its settings carry one.
pub(crate) fn statement(bound: Bound, restore: Option<&str>) -> String {
    match (bound, restore) {
        (Bound::Millis(ms), _) => format!("SET statement_timeout = {ms}"),
        (Bound::Default, None) => "SET statement_timeout TO DEFAULT".to_owned(),
        (Bound::Default, Some(value)) => format!(
            "SET statement_timeout = {}",
            crate::session::quote_literal(value)
        ),
    }
}

/// The bound the adapter last put on a session, shared by its concurrent
/// statements.
#[derive(Debug, Default)]
pub(crate) struct SessionBound(Mutex<stormpool::statements::SessionBound>);

impl SessionBound {
    /// A fresh session: its default.
    pub(crate) fn new() -> Self {
        SessionBound::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut stormpool::statements::SessionBound) -> T) -> T {
        // Nothing panics while holding the lock; a poisoned one still
        // holds a consistent value.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Claims the change to `wanted` for a statement sent inside a
    /// transaction block or not: `true` when the session carries something
    /// else, or a bound set inside a transaction that has ended since (it
    /// may have been rolled back), and the caller must now send the `SET`.
    pub(crate) fn claim(&self, wanted: Bound, in_transaction: bool) -> bool {
        self.with(|bound| bound.claim(wanted, in_transaction))
    }

    /// A bound was set inside the transaction block the session is in now
    /// (behind a pooler: by a prelude a hand-written `BEGIN` took in).
    pub(crate) fn set_tentative(&self, bound: Bound) {
        self.with(|session| session.set(bound, true));
    }

    /// The session's `statement_timeout` is not known any more (a `SET`
    /// failed, a reset or settings changed it): the next statement sets its
    /// bound again, whatever it is.
    pub(crate) fn forget(&self) {
        self.with(|bound| bound.forget());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_set_restore_or_reset() {
        assert_eq!(
            statement(Bound::Millis(40), None),
            "SET statement_timeout = 40"
        );
        assert_eq!(
            statement(Bound::Default, None),
            "SET statement_timeout TO DEFAULT"
        );
        assert_eq!(
            statement(Bound::Default, Some("5s")),
            "SET statement_timeout = '5s'"
        );
    }
}
