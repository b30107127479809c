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

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::Stream;
use futures_util::FutureExt;
use stormpool::statements::{
    mentions_keyword, SessionBound, SessionTracking, StatementCounters, StatementFlight,
};

use crate::error::{is_connection_error, no_answer};

/// What a connection knows of its session and its statements, beside the
/// driver's connection (so a statement can borrow both at once); its bound
/// is `Unsupported` where the adapter sets none (MySQL).
pub(crate) type Tracking = SessionTracking<DieselSession>;

/// What only diesel's sessions need tracked.
#[derive(Debug, Default)]
pub(crate) struct DieselSession {
    /// An abandoned statement was transaction control (`BEGIN`, `COMMIT`,
    /// ..): diesel's transaction manager no longer knows the session's
    /// state.
    pub(crate) control_cut: bool,
}

/// A fresh session's tracking; `bounds` when the adapter bounds its
/// statements on the server.
pub(crate) fn tracking(
    counters: Arc<StatementCounters>,
    grace: Duration,
    bounds: bool,
) -> Tracking {
    let bound = if bounds {
        SessionBound::default()
    } else {
        SessionBound::Unsupported
    };
    SessionTracking::new(counters, grace, bound, DieselSession::default())
}

/// Words of the statements diesel's transaction manager sends.
const CONTROL: [&str; 5] = ["BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"];

/// One tracked statement, from its start until the server answers it;
/// dropped before that, it marks the statement abandoned.
pub struct Flight<'t> {
    track: &'t mut Tracking,
    flight: StatementFlight,
    /// Whether the statement is transaction control.
    control: bool,
    is_bound_timeout: fn(&diesel::result::Error) -> bool,
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
        // Only PostgreSQL's statements are bounded, and a rollback undoes
        // a SET there.
        let flight = StatementFlight::start(
            track,
            sql,
            sql.is_some_and(may_open_transaction),
            in_transaction,
            true,
        );
        Flight {
            flight,
            control: sql.is_some_and(|sql| mentions_keyword(sql, &CONTROL)),
            is_bound_timeout,
            track,
        }
    }

    /// The `SET` to send with the statement, if the bound must change.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn setting(&self) -> Option<String> {
        self.flight.setting().map(crate::deadline::statement)
    }

    /// The `SET` with the statement went through or failed.
    fn bound_outcome(&mut self, outcome: Option<Result<(), diesel::result::Error>>) {
        self.flight.bound_outcome(self.track, outcome, |_| false);
    }

    /// The server answered, with `error` if the statement failed.
    fn finish(&mut self, error: Option<&diesel::result::Error>) {
        let ended = self.flight.finish(
            self.track,
            error,
            is_connection_error,
            self.is_bound_timeout,
        );
        if ended && self.control {
            // A rollback (or the end of a transaction) undoes a bound set
            // inside it.
            self.track.bound.rolled_back();
        }
    }

    /// Whether the client's own bound has passed.
    fn poll_limit(&mut self, cx: &mut Context<'_>) -> bool {
        self.flight.poll_limit(cx)
    }

    /// The client stops waiting; the statement stays in flight, abandoned
    /// when this flight is dropped.
    fn give_up(&mut self) -> diesel::result::Error {
        self.flight.give_up(self.track);
        no_answer(self.track.grace)
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        if self.flight.abandon(self.track) {
            self.track.extra.control_cut |= self.control;
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
