//! Tracked statements: what runs around each statement sent through a
//! pooled connection.
//!
//! A [`Flight`] lives from the moment a statement is handed to diesel-async
//! until the server answers it (its first row, its end, or an error). It
//! decides whether the session's bound must change (the `SET` then goes
//! with the statement); meanwhile it bounds the wait on the client at the
//! request's deadline plus the grace; dropped first (the request gave up),
//! it marks the connection's statement abandoned, for the pool to cancel
//! and drain (or close) when the connection comes back.
//!
//! A statement counts as answered at its first row: `get_result` and
//! `first` read one row and drop the rest, which the driver discards. A
//! statement that goes on computing after its first row is not seen as
//! abandoned.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::Stream;
use futures_util::FutureExt;
use stormpool::statements::{
    ends_transaction, mentions_keyword, Bound, SessionBound, StatementCounters,
};
use tokio::time::{Instant, Sleep};

use crate::error::{is_connection_error, no_answer};

/// What a connection knows of its session and its statements, beside the
/// driver's connection (so a statement can borrow both at once).
#[derive(Debug)]
pub(crate) struct Tracking {
    /// The deadline of the request holding the connection.
    pub(crate) deadline: Option<Instant>,
    /// How long past the deadline the client waits for the server.
    pub(crate) grace: Duration,
    /// What the adapter knows of the session's statement bound; `None`
    /// where the adapter sets none (MySQL).
    pub(crate) bound: Option<SessionBound>,
    /// A tracked statement was dropped before the server answered it.
    pub(crate) abandoned: bool,
    /// Of which a transaction-control statement (`BEGIN`, `COMMIT`, ..):
    /// diesel's transaction manager no longer knows the session's state.
    pub(crate) control_cut: bool,
    /// The session may be in a transaction diesel's manager did not open:
    /// a statement that may have opened one ran, or the driver's connection
    /// was reached.
    pub(crate) suspect: bool,
    /// A statement changed `autocommit` (MySQL): every statement may open a
    /// transaction from then on, so the session stays suspect for good.
    pub(crate) autocommit_changed: bool,
    /// A statement failed with a connection-level error.
    pub(crate) broken: bool,
    pub(crate) counters: Arc<StatementCounters>,
}

impl Tracking {
    pub(crate) fn new(counters: Arc<StatementCounters>, grace: Duration, bounds: bool) -> Self {
        Tracking {
            deadline: None,
            grace,
            bound: bounds.then(SessionBound::default),
            abandoned: false,
            control_cut: false,
            suspect: false,
            autocommit_changed: false,
            broken: false,
            counters,
        }
    }
}

/// Words of the statements diesel's transaction manager sends.
const CONTROL: [&str; 5] = ["BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"];

/// One tracked statement, from its start until the server answers it;
/// dropped before that, it marks the statement abandoned.
pub struct Flight<'t> {
    track: &'t mut Tracking,
    /// The bound a `SET` with the statement puts on the session.
    setting: Option<Bound>,
    in_transaction: bool,
    /// Whether the statement runs under a propagated deadline.
    bounded: bool,
    /// Whether the statement is transaction control.
    control: bool,
    /// Whether the statement is a bare `COMMIT` or `ROLLBACK` (diesel's
    /// manager ends a transaction so): once it succeeds, the session is
    /// outside any transaction, whatever opened one.
    ends_transaction: bool,
    limit: Option<Pin<Box<Sleep>>>,
    is_bound_timeout: fn(&diesel::result::Error) -> bool,
    finished: bool,
}

impl<'t> Flight<'t> {
    /// Starts tracking a statement; `sql` is its text when it may be
    /// hand-written (`None` for diesel's query builder, which cannot open a
    /// transaction), `in_transaction` whether diesel's manager has one
    /// open.
    pub(crate) fn start(
        track: &'t mut Tracking,
        sql: Option<&str>,
        may_open_transaction: fn(&str) -> bool,
        in_transaction: bool,
        is_bound_timeout: fn(&diesel::result::Error) -> bool,
    ) -> Self {
        if sql.is_some_and(may_open_transaction) {
            track.suspect = true;
        }
        if sql.is_some_and(|sql| mentions_keyword(sql, &["AUTOCOMMIT"])) {
            track.autocommit_changed = true;
        }
        let control = sql.is_some_and(|sql| mentions_keyword(sql, &CONTROL));
        let in_transaction = in_transaction || track.suspect;
        let wanted = Bound::at(track.deadline);
        let setting = track
            .bound
            .and_then(|bound| bound.change(wanted, in_transaction));
        if setting.is_some() {
            track.counters.bound_changed();
        }
        let limit = track
            .deadline
            .map(|deadline| Box::pin(tokio::time::sleep_until(deadline + track.grace)));
        Flight {
            setting,
            in_transaction,
            bounded: track.bound.is_some() && wanted != Bound::Default,
            control,
            ends_transaction: sql.is_some_and(ends_transaction),
            limit,
            is_bound_timeout,
            finished: false,
            track,
        }
    }

    /// The `SET` to send with the statement, if the bound must change.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn setting(&self) -> Option<String> {
        self.setting.map(crate::deadline::statement)
    }

    /// The `SET` with the statement went through or failed.
    fn bound_outcome(&mut self, outcome: Option<Result<(), diesel::result::Error>>) {
        let (Some(bound), Some(outcome)) = (self.setting.take(), outcome) else {
            return;
        };
        if let Some(session) = self.track.bound.as_mut() {
            match outcome {
                Ok(()) => session.set(bound, self.in_transaction),
                Err(_) => session.forget(),
            }
        }
    }

    /// The server answered, with `error` if the statement failed.
    fn finish(&mut self, error: Option<&diesel::result::Error>) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.control {
            // A rollback (or the end of a transaction) undoes a bound set
            // inside it.
            if let Some(bound) = self.track.bound.as_mut() {
                bound.rolled_back();
            }
        }
        match error {
            Some(e) if is_connection_error(e) => self.track.broken = true,
            Some(e) => {
                if self.bounded && (self.is_bound_timeout)(e) {
                    self.track.counters.stopped_by_deadline();
                }
                self.track.abandoned = false;
            }
            None => {
                self.track.abandoned = false;
                if self.ends_transaction && !self.track.autocommit_changed {
                    self.track.suspect = false;
                }
            }
        }
    }

    /// Whether the client's own bound has passed.
    fn poll_limit(&mut self, cx: &mut Context<'_>) -> bool {
        self.limit
            .as_mut()
            .is_some_and(|limit| limit.as_mut().poll(cx).is_ready())
    }

    /// The client stops waiting; the statement stays in flight, abandoned
    /// when this flight is dropped.
    fn give_up(&mut self) -> diesel::result::Error {
        self.track.counters.timed_out();
        no_answer(self.track.grace)
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.track.abandoned = true;
        self.track.control_cut |= self.control;
        self.track.counters.abandoned();
        if self.setting.is_some() {
            if let Some(bound) = self.track.bound.as_mut() {
                bound.forget();
            }
        }
    }
}

/// The outcome of the `SET` sent with a statement (if one was), and the
/// statement's own.
pub(crate) type Outcome<T> = (
    Option<Result<(), diesel::result::Error>>,
    Result<T, diesel::result::Error>,
);

/// Runs `work` (the statement, with the `SET` if any) under `flight`:
/// bounded on the client, abandoned if dropped before it ends.
pub(crate) fn track<'t, T: Send + 't>(
    work: BoxFuture<'t, Outcome<T>>,
    flight: Flight<'t>,
) -> BoxFuture<'t, Result<T, diesel::result::Error>> {
    let mut work = work;
    let mut flight = flight;
    futures_util::future::poll_fn(move |cx| {
        if let Poll::Ready((set, result)) = work.poll_unpin(cx) {
            flight.bound_outcome(set);
            flight.finish(result.as_ref().err());
            return Poll::Ready(result);
        }
        if flight.poll_limit(cx) {
            return Poll::Ready(Err(flight.give_up()));
        }
        Poll::Pending
    })
    .boxed()
}

/// Runs `work` (the statement, with the `SET` if any) under `flight`, whose
/// answer is a stream of rows: the flight ends at the first row (or the
/// end, or an error).
pub(crate) fn track_rows<'t, S>(
    work: BoxFuture<'t, Outcome<S>>,
    flight: Flight<'t>,
) -> BoxFuture<'t, Result<TrackedRows<'t, S>, diesel::result::Error>>
where
    S: Stream + Send + 't,
{
    let mut work = work;
    let mut flight = Some(flight);
    futures_util::future::poll_fn(move |cx| {
        let Some(current) = flight.as_mut() else {
            return Poll::Pending;
        };
        if let Poll::Ready((set, result)) = work.poll_unpin(cx) {
            current.bound_outcome(set);
            return Poll::Ready(match result {
                Ok(rows) => Ok(TrackedRows {
                    rows: Box::pin(rows),
                    flight: flight.take(),
                }),
                Err(e) => {
                    current.finish(Some(&e));
                    Err(e)
                }
            });
        }
        if current.poll_limit(cx) {
            return Poll::Ready(Err(current.give_up()));
        }
        Poll::Pending
    })
    .boxed()
}

/// The rows of a tracked statement: the driver's stream, whose first row
/// (or end) tells that the server answered.
pub struct TrackedRows<'t, S> {
    /// Boxed, so the rows may be of any stream type.
    rows: Pin<Box<S>>,
    flight: Option<Flight<'t>>,
}

impl<S, T> Stream for TrackedRows<'_, S>
where
    S: Stream<Item = Result<T, diesel::result::Error>>,
{
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = &mut *self;
        match this.rows.as_mut().poll_next(cx) {
            Poll::Ready(next) => {
                if let Some(mut flight) = this.flight.take() {
                    flight.finish(match &next {
                        Some(Err(e)) => Some(e),
                        _ => None,
                    });
                }
                Poll::Ready(next)
            }
            Poll::Pending => {
                if let Some(flight) = this.flight.as_mut() {
                    if flight.poll_limit(cx) {
                        let e = flight.give_up();
                        // Dropped unfinished: the statement is abandoned.
                        this.flight = None;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Poll::Pending
            }
        }
    }
}
