//! The bookkeeping around a tracked statement, for managers whose driver
//! runs one statement at a time on a connection (`&mut`): what the manager
//! knows of the session ([`SessionTracking`]) and what one statement
//! changes in it ([`StatementFlight`]).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use std::future::Future;
use tokio::time::Sleep;

use super::{ends_transaction, mentions_keyword, Bound, SessionBound, StatementCounters};
use crate::clock::Instant;

/// What a manager knows of a session and its tracked statements, and
/// `extra`, what only that manager's sessions need.
#[derive(Debug)]
pub struct SessionTracking<X = ()> {
    /// The deadline of the request holding the connection.
    pub deadline: Option<Instant>,
    /// How long past the deadline the client waits for the server.
    pub grace: Duration,
    /// What the manager knows of the session's statement bound
    /// ([`SessionBound::Unsupported`] where it sets none).
    pub bound: SessionBound,
    /// A tracked statement was dropped before the server answered it.
    pub abandoned: bool,
    /// The session may be in a transaction the manager did not open: a
    /// statement that may have opened one ran, or the driver's connection
    /// was reached.
    pub suspect: bool,
    /// A statement changed `autocommit` (MySQL): every statement may open a
    /// transaction from then on, so the session stays suspect for good.
    pub autocommit_changed: bool,
    /// A statement failed with a connection-level error.
    pub broken: bool,
    /// The manager's counters.
    pub counters: Arc<StatementCounters>,
    /// What only this manager's sessions need.
    pub extra: X,
}

impl<X> SessionTracking<X> {
    /// A fresh session, whose bound starts as `bound`.
    pub fn new(
        counters: Arc<StatementCounters>,
        grace: Duration,
        bound: SessionBound,
        extra: X,
    ) -> Self {
        SessionTracking {
            deadline: None,
            grace,
            bound,
            abandoned: false,
            suspect: false,
            autocommit_changed: false,
            broken: false,
            counters,
            extra,
        }
    }
}

/// One tracked statement, from its start to its end: the bound change to
/// send ahead of it, the client's own bound, and what its end or its
/// abandonment changes in the [`SessionTracking`].
#[derive(Debug)]
pub struct StatementFlight {
    /// The bound a `SET` ahead of the statement puts on the session, until
    /// its outcome is known.
    setting: Option<Bound>,
    /// Whether that `SET` is undone by a rollback.
    tentative: bool,
    /// Whether the statement runs under a propagated deadline.
    bounded: bool,
    /// Whether the statement is a bare `COMMIT` or `ROLLBACK`: once it
    /// succeeds, a hand-written transaction is over.
    ends_transaction: bool,
    /// The client's own bound: the deadline plus the grace.
    limit: Option<Pin<Box<Sleep>>>,
    finished: bool,
}

impl StatementFlight {
    /// Starts tracking a statement on `track`'s session. `sql` is its text
    /// when it may be hand-written, `may_open_transaction` whether that
    /// text may leave the session inside a transaction, `in_transaction`
    /// whether the session is known to be in one, and `transactional`
    /// whether a rollback undoes a `SET` of the bound (PostgreSQL).
    pub fn start<X>(
        track: &mut SessionTracking<X>,
        sql: Option<&str>,
        may_open_transaction: bool,
        in_transaction: bool,
        transactional: bool,
    ) -> Self {
        if may_open_transaction {
            track.suspect = true;
        }
        if sql.is_some_and(|sql| mentions_keyword(sql, &["AUTOCOMMIT"])) {
            track.autocommit_changed = true;
        }
        let in_transaction = in_transaction || track.suspect;
        let wanted = Bound::at(track.deadline);
        let setting = track.bound.change(wanted, in_transaction);
        if setting.is_some() {
            track.counters.bound_changed();
        }
        let limit = track
            .deadline
            .map(|deadline| Box::pin(tokio::time::sleep_until(deadline + track.grace)));
        StatementFlight {
            setting,
            tentative: transactional && in_transaction,
            bounded: wanted != Bound::Default,
            ends_transaction: sql.is_some_and(ends_transaction),
            limit,
            finished: false,
        }
    }

    /// The bound to set ahead of the statement, if it must change.
    pub fn setting(&self) -> Option<Bound> {
        self.setting
    }

    /// The `SET` ahead of the statement went through or failed (`None`:
    /// none was sent); `unsupported` tells an error saying the server has
    /// no such variable. A failed `SET` leaves the statement unbounded, not
    /// failed.
    pub fn bound_outcome<X, E>(
        &mut self,
        track: &mut SessionTracking<X>,
        outcome: Option<Result<(), E>>,
        unsupported: impl FnOnce(&E) -> bool,
    ) {
        let (Some(bound), Some(outcome)) = (self.setting.take(), outcome) else {
            return;
        };
        match outcome {
            Ok(()) => track.bound.set(bound, self.tentative),
            Err(e) if unsupported(&e) => track.bound = SessionBound::Unsupported,
            Err(_) => track.bound.forget(),
        }
    }

    /// The statement ended, with `error` if it failed: `is_connection_error`
    /// tells an error that leaves the connection unusable,
    /// `is_bound_timeout` one of a statement the server stopped at its
    /// bound. `false` when it had ended already.
    pub fn finish<X, E>(
        &mut self,
        track: &mut SessionTracking<X>,
        error: Option<&E>,
        is_connection_error: impl FnOnce(&E) -> bool,
        is_bound_timeout: impl FnOnce(&E) -> bool,
    ) -> bool {
        if self.finished {
            return false;
        }
        self.finished = true;
        match error {
            Some(e) if is_connection_error(e) => track.broken = true,
            Some(e) => {
                if self.bounded && is_bound_timeout(e) {
                    track.counters.stopped_by_deadline();
                }
                // The server answered after whatever this holder abandoned
                // before: that statement is over.
                track.abandoned = false;
            }
            None => {
                track.abandoned = false;
                if self.ends_transaction && !track.autocommit_changed {
                    track.suspect = false;
                }
            }
        }
        true
    }

    /// Whether the client's own bound has passed.
    pub fn poll_limit(&mut self, cx: &mut Context<'_>) -> bool {
        self.limit
            .as_mut()
            .is_some_and(|limit| matches!(limit.as_mut().poll(cx), Poll::Ready(())))
    }

    /// The client stops waiting for the server; the statement stays in
    /// flight, abandoned when it is dropped.
    pub fn give_up<X>(&mut self, track: &SessionTracking<X>) {
        track.counters.timed_out();
    }

    /// The statement is dropped: if it had not ended, it is abandoned (and
    /// whether a `SET` ahead of it went through is not known any more).
    /// `true` when it had not ended.
    pub fn abandon<X>(&mut self, track: &mut SessionTracking<X>) -> bool {
        if self.finished {
            return false;
        }
        track.abandoned = true;
        track.counters.abandoned();
        if self.setting.is_some() {
            track.bound.forget();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> SessionTracking {
        SessionTracking::new(
            Arc::default(),
            Duration::from_millis(25),
            SessionBound::default(),
            (),
        )
    }

    fn fail(_: &()) -> bool {
        false
    }

    #[test]
    fn a_hand_written_transaction_is_suspect_until_it_ends() {
        let mut track = session();
        let mut begin = StatementFlight::start(&mut track, Some("BEGIN"), true, false, true);
        assert!(track.suspect && begin.setting().is_none());
        assert!(begin.finish(&mut track, None::<&()>, fail, fail));
        assert!(!begin.finish(&mut track, None::<&()>, fail, fail), "once");
        let mut commit = StatementFlight::start(&mut track, Some("COMMIT"), false, false, true);
        commit.finish(&mut track, None::<&()>, fail, fail);
        assert!(!track.suspect);
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_statement_forgets_the_bound_it_was_setting() {
        let mut track = session();
        track.deadline = Some(Instant::now() + Duration::from_millis(50));
        let mut flight = StatementFlight::start(&mut track, None, false, true, true);
        assert_eq!(flight.setting(), Some(Bound::Millis(48)));
        assert!(flight.abandon(&mut track));
        assert!(track.abandoned);
        assert_eq!(track.bound, SessionBound::Unknown);
        assert_eq!(track.counters.snapshot().abandoned, 1);
        let mut next = StatementFlight::start(&mut track, None, false, true, true);
        next.bound_outcome(&mut track, Some(Ok::<(), ()>(())), fail);
        assert_eq!(track.bound, SessionBound::Tentative(Bound::Millis(48)));
        assert!(next.finish(&mut track, Some(&()), fail, |_| true));
        assert!(!track.abandoned, "the server answered after it");
        assert_eq!(track.counters.snapshot().stopped_by_deadline, 1);
    }
}
