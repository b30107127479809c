//! Tracked statements: what runs around each statement sent through a
//! pooled connection or a tracked transaction.
//!
//! A [`Flight`] lives from the moment a statement is handed to sqlx until
//! sqlx reports its end (its last row, or an error). Before the statement
//! it decides whether the session's bound must change (and the `SET` goes
//! first, one round trip, only then); during it, it bounds the wait on the
//! client at the request's deadline plus the grace; if it is dropped first
//! (the request gave up), it marks the connection's statement abandoned,
//! for the pool to cancel and drain when the connection comes back.
//!
//! sqlx survives a statement future dropped half-way: the next use of the
//! connection reads what is left of the reply first. So a holder that goes
//! on after giving up is served, after the abandoned statement ends.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, Stream};
use futures_util::{FutureExt, StreamExt};
use sqlx::{Connection, Describe, Either, Execute};
use stormpool::statements::{Bound, SessionBound, StatementCounters};
use tokio::time::{Instant, Sleep};

use crate::backend::{Applied, Backend};
use crate::error::{is_connection_error, no_answer};
use stormpool::statements::{ends_transaction, mentions_keyword};

/// What a connection knows of its session and its statements, beside the
/// driver's connection (so a statement can borrow both at once).
#[derive(Debug)]
pub(crate) struct Tracking {
    /// The deadline of the request holding the connection.
    pub(crate) deadline: Option<Instant>,
    /// How long past the deadline the client waits for the server.
    pub(crate) grace: Duration,
    /// What the adapter knows of the session's statement bound.
    pub(crate) bound: SessionBound,
    /// The bound variable's value from the session's settings, if any.
    pub(crate) restore: Option<String>,
    /// A tracked statement was dropped before it ended.
    pub(crate) abandoned: bool,
    /// The session may be in a transaction the adapter did not open: a
    /// statement that may have opened one ran, or the raw connection was
    /// reached.
    pub(crate) suspect: bool,
    /// A statement changed `autocommit` (MySQL): every statement may open a
    /// transaction from then on, so the session stays suspect for good.
    pub(crate) autocommit_changed: bool,
    /// A tracked transaction was dropped (or failed to end) open: sqlx has
    /// queued its rollback, to be sent with the next use.
    pub(crate) rollback_queued: bool,
    /// A statement failed with a connection-level error.
    pub(crate) broken: bool,
    /// The session variables settings put on the session.
    pub(crate) applied: Vec<Applied>,
    pub(crate) counters: Arc<StatementCounters>,
}

impl Tracking {
    pub(crate) fn new(counters: Arc<StatementCounters>, grace: Duration) -> Self {
        Tracking {
            deadline: None,
            grace,
            bound: SessionBound::default(),
            restore: None,
            abandoned: false,
            suspect: false,
            autocommit_changed: false,
            rollback_queued: false,
            broken: false,
            applied: Vec::new(),
            counters,
        }
    }
}

/// One tracked statement, from its start to its end; dropped before its
/// end, it marks the statement abandoned.
pub(crate) struct Flight<'t, DB> {
    track: &'t mut Tracking,
    /// The bound a `SET` ahead of the statement puts on the session, until
    /// its outcome is known.
    setting: Option<Bound>,
    /// Whether that `SET` is undone by a rollback.
    tentative: bool,
    /// Whether the statement runs under a propagated deadline.
    bounded: bool,
    /// Whether the statement says `ROLLBACK`: a bound set in the
    /// transaction is gone after it.
    rolls_back: bool,
    /// Whether the statement is a bare `COMMIT` or `ROLLBACK`: once it
    /// succeeds, a hand-written transaction is over.
    ends_transaction: bool,
    /// The client's own bound: the deadline plus the grace.
    limit: Option<Pin<Box<Sleep>>>,
    finished: bool,
    gave_up: bool,
    _db: PhantomData<fn() -> DB>,
}

impl<'t, DB: Backend> Flight<'t, DB> {
    /// Starts tracking a statement of text `sql` on `conn`.
    pub(crate) fn start(conn: &DB::Connection, track: &'t mut Tracking, sql: &str) -> Self {
        if DB::may_open_transaction(sql) {
            track.suspect = true;
        }
        if mentions_keyword(sql, &["AUTOCOMMIT"]) {
            track.autocommit_changed = true;
        }
        let in_transaction = track.suspect || track.rollback_queued || conn.is_in_transaction();
        let wanted = Bound::at(track.deadline);
        let setting = track.bound.change(wanted, in_transaction);
        if setting.is_some() {
            track.counters.bound_changed();
        }
        let limit = track
            .deadline
            .map(|deadline| Box::pin(tokio::time::sleep_until(deadline + track.grace)));
        Flight {
            setting,
            tentative: DB::BOUND_IS_TRANSACTIONAL && in_transaction,
            bounded: wanted != Bound::Default,
            rolls_back: DB::BOUND_IS_TRANSACTIONAL && mentions_keyword(sql, &["ROLLBACK"]),
            ends_transaction: ends_transaction(sql),
            limit,
            finished: false,
            gave_up: false,
            track,
            _db: PhantomData,
        }
    }

    /// The `SET` to send before the statement, and the settings' own value
    /// of the bound variable.
    fn setting(&self) -> Option<(Bound, Option<String>)> {
        self.setting
            .map(|bound| (bound, self.track.restore.clone()))
    }

    /// The `SET` ahead of the statement went through or failed. A failed
    /// `SET` leaves the statement unbounded, not failed.
    fn bound_outcome(&mut self, outcome: Option<Result<(), sqlx::Error>>) {
        let (Some(bound), Some(outcome)) = (self.setting.take(), outcome) else {
            return;
        };
        match outcome {
            Ok(()) => self.track.bound.set(bound, self.tentative),
            Err(e) if DB::is_unknown_variable(&e) => self.track.bound = SessionBound::Unsupported,
            Err(_) => self.track.bound.forget(),
        }
    }

    /// The statement ended, with `error` if it failed.
    fn finish(&mut self, error: Option<&sqlx::Error>) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.rolls_back {
            self.track.bound.rolled_back();
        }
        match error {
            Some(e) if is_connection_error(e) => self.track.broken = true,
            Some(e) => {
                if self.bounded && DB::is_bound_timeout(e) {
                    self.track.counters.stopped_by_deadline();
                }
                // The server answered after whatever this holder abandoned
                // before: that statement is over.
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
    fn give_up(&mut self) -> sqlx::Error {
        self.gave_up = true;
        self.track.counters.timed_out();
        no_answer(self.track.grace)
    }
}

impl<DB> Drop for Flight<'_, DB> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.track.abandoned = true;
        self.track.counters.abandoned();
        // Whether the SET went through is not known any more.
        if self.setting.is_some() {
            self.track.bound.forget();
        }
    }
}

type Started<'e, T> = BoxFuture<'e, (Option<Result<(), sqlx::Error>>, T)>;

/// A tracked statement's rows: the `SET` (if any), then sqlx's stream.
struct TrackedStream<'e, DB, T> {
    start: Option<Started<'e, BoxStream<'e, Result<T, sqlx::Error>>>>,
    rows: Option<BoxStream<'e, Result<T, sqlx::Error>>>,
    flight: Flight<'e, DB>,
}

impl<DB: Backend, T> Stream for TrackedStream<'_, DB, T> {
    type Item = Result<T, sqlx::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is a box or plain data.
        let this = self.get_mut();
        if this.flight.gave_up {
            return Poll::Ready(None);
        }
        let polled = this.poll_work(cx);
        if polled.is_pending() && this.flight.poll_limit(cx) {
            return Poll::Ready(Some(Err(this.flight.give_up())));
        }
        polled
    }
}

impl<DB: Backend, T> TrackedStream<'_, DB, T> {
    fn poll_work(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, sqlx::Error>>> {
        if let Some(start) = self.start.as_mut() {
            let (set, rows) = ready!(start.poll_unpin(cx));
            self.flight.bound_outcome(set);
            self.start = None;
            self.rows = Some(rows);
        }
        let Some(rows) = self.rows.as_mut() else {
            return Poll::Ready(None);
        };
        let next = ready!(rows.poll_next_unpin(cx));
        match &next {
            None => self.flight.finish(None),
            Some(Err(e)) => self.flight.finish(Some(e)),
            Some(Ok(_)) => {}
        }
        Poll::Ready(next)
    }
}

/// A tracked statement's single answer: the `SET` (if any), then sqlx's
/// future.
struct TrackedFuture<'e, DB, T> {
    work: Started<'e, Result<T, sqlx::Error>>,
    flight: Flight<'e, DB>,
}

impl<DB: Backend, T> Future for TrackedFuture<'_, DB, T> {
    type Output = Result<T, sqlx::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready((set, result)) = this.work.poll_unpin(cx) {
            this.flight.bound_outcome(set);
            this.flight.finish(result.as_ref().err());
            return Poll::Ready(result);
        }
        if this.flight.poll_limit(cx) {
            return Poll::Ready(Err(this.flight.give_up()));
        }
        Poll::Pending
    }
}

/// Sends the `SET` of `setting` on `conn`, if there is one.
async fn set_bound<DB: Backend>(
    conn: &mut DB::Connection,
    setting: Option<(Bound, Option<String>)>,
) -> Option<Result<(), sqlx::Error>> {
    let (bound, restore) = setting?;
    Some(DB::set_bound(conn, bound, restore.as_deref()).await)
}

/// [`Executor::fetch_many`](sqlx::Executor::fetch_many), tracked.
#[allow(clippy::type_complexity)]
pub(crate) fn fetch_many<'e, 'q: 'e, DB, E>(
    conn: &'e mut DB::Connection,
    track: &'e mut Tracking,
    query: E,
) -> BoxStream<'e, Result<Either<DB::QueryResult, DB::Row>, sqlx::Error>>
where
    DB: Backend,
    E: 'q + Execute<'q, DB>,
{
    let flight = Flight::<DB>::start(conn, track, query.sql());
    let setting = flight.setting();
    let start = async move {
        let set = set_bound::<DB>(conn, setting).await;
        (set, DB::fetch_many(conn, query))
    };
    Box::pin(TrackedStream {
        start: Some(start.boxed()),
        rows: None,
        flight,
    })
}

/// [`Executor::fetch_optional`](sqlx::Executor::fetch_optional), tracked.
pub(crate) fn fetch_optional<'e, 'q: 'e, DB, E>(
    conn: &'e mut DB::Connection,
    track: &'e mut Tracking,
    query: E,
) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
where
    DB: Backend,
    E: 'q + Execute<'q, DB>,
{
    let flight = Flight::<DB>::start(conn, track, query.sql());
    let setting = flight.setting();
    let work = async move {
        let set = set_bound::<DB>(conn, setting).await;
        (set, DB::fetch_optional(conn, query).await)
    };
    Box::pin(TrackedFuture {
        work: work.boxed(),
        flight,
    })
}

/// [`Executor::prepare_with`](sqlx::Executor::prepare_with), tracked.
pub(crate) fn prepare_with<'e, 'q: 'e, DB: Backend>(
    conn: &'e mut DB::Connection,
    track: &'e mut Tracking,
    sql: &'q str,
    parameters: &'e [DB::TypeInfo],
) -> BoxFuture<'e, Result<DB::Statement<'q>, sqlx::Error>> {
    let flight = Flight::<DB>::start(conn, track, "");
    let setting = flight.setting();
    let work = async move {
        let set = set_bound::<DB>(conn, setting).await;
        (set, DB::prepare_with(conn, sql, parameters).await)
    };
    Box::pin(TrackedFuture {
        work: work.boxed(),
        flight,
    })
}

/// [`Executor::describe`](sqlx::Executor::describe), tracked.
pub(crate) fn describe<'e, 'q: 'e, DB: Backend>(
    conn: &'e mut DB::Connection,
    track: &'e mut Tracking,
    sql: &'q str,
) -> BoxFuture<'e, Result<Describe<DB>, sqlx::Error>> {
    let flight = Flight::<DB>::start(conn, track, "");
    let setting = flight.setting();
    let work = async move {
        let set = set_bound::<DB>(conn, setting).await;
        (set, DB::describe_query(conn, sql).await)
    };
    Box::pin(TrackedFuture {
        work: work.boxed(),
        flight,
    })
}
