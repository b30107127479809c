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
use stormpool::statements::{
    Bound, SessionBound, SessionTracking, StatementCounters, StatementFlight,
};

use crate::backend::{Applied, Backend};
use crate::error::{is_connection_error, no_answer};
use stormpool::statements::mentions_keyword;

/// What a connection knows of its session and its statements, beside the
/// driver's connection (so a statement can borrow both at once).
pub(crate) type Tracking = SessionTracking<SqlxSession>;

/// What only sqlx's sessions need tracked.
#[derive(Debug, Default)]
pub(crate) struct SqlxSession {
    /// The bound variable's value from the session's settings, if any.
    pub(crate) restore: Option<String>,
    /// A tracked transaction was dropped (or failed to end) open: sqlx has
    /// queued its rollback, to be sent with the next use.
    pub(crate) rollback_queued: bool,
    /// The session variables settings put on the session.
    pub(crate) applied: Vec<Applied>,
}

/// A fresh session's tracking.
pub(crate) fn tracking(counters: Arc<StatementCounters>, grace: Duration) -> Tracking {
    SessionTracking::new(
        counters,
        grace,
        SessionBound::default(),
        SqlxSession::default(),
    )
}

/// One tracked statement, from its start to its end; dropped before its
/// end, it marks the statement abandoned.
pub(crate) struct Flight<'t, DB> {
    track: &'t mut Tracking,
    flight: StatementFlight,
    /// Whether the statement says `ROLLBACK`: a bound set in the
    /// transaction is gone after it.
    rolls_back: bool,
    gave_up: bool,
    _db: PhantomData<fn() -> DB>,
}

impl<'t, DB: Backend> Flight<'t, DB> {
    /// Starts tracking a statement of text `sql` on `conn`.
    pub(crate) fn start(conn: &DB::Connection, track: &'t mut Tracking, sql: &str) -> Self {
        let in_transaction = track.extra.rollback_queued || conn.is_in_transaction();
        let flight = StatementFlight::start(
            track,
            Some(sql),
            DB::may_open_transaction(sql),
            in_transaction,
            DB::BOUND_IS_TRANSACTIONAL,
        );
        Flight {
            flight,
            rolls_back: DB::BOUND_IS_TRANSACTIONAL && mentions_keyword(sql, &["ROLLBACK"]),
            gave_up: false,
            track,
            _db: PhantomData,
        }
    }

    /// The `SET` to send before the statement, and the settings' own value
    /// of the bound variable.
    fn setting(&self) -> Option<(Bound, Option<String>)> {
        self.flight
            .setting()
            .map(|bound| (bound, self.track.extra.restore.clone()))
    }

    /// The `SET` ahead of the statement went through or failed.
    fn bound_outcome(&mut self, outcome: Option<Result<(), sqlx::Error>>) {
        self.flight
            .bound_outcome(self.track, outcome, DB::is_unknown_variable);
    }

    /// The statement ended, with `error` if it failed.
    fn finish(&mut self, error: Option<&sqlx::Error>) {
        let ended =
            self.flight
                .finish(self.track, error, is_connection_error, DB::is_bound_timeout);
        if ended && self.rolls_back {
            self.track.bound.rolled_back();
        }
    }

    /// Whether the client's own bound has passed.
    fn poll_limit(&mut self, cx: &mut Context<'_>) -> bool {
        self.flight.poll_limit(cx)
    }

    /// The client stops waiting; the statement stays in flight, abandoned
    /// when this flight is dropped.
    fn give_up(&mut self) -> sqlx::Error {
        self.gave_up = true;
        self.flight.give_up(self.track);
        no_answer(self.track.grace)
    }
}

impl<DB> Drop for Flight<'_, DB> {
    fn drop(&mut self) {
        self.flight.abandon(self.track);
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

/// Runs the statement of text `sql` that `statement` sends on `conn` as a
/// tracked statement with a single answer: the `SET` of the bound first
/// (if it must change), then the statement, bounded on the client.
fn run<'e, DB: Backend, T: 'e>(
    conn: &'e mut DB::Connection,
    track: &'e mut Tracking,
    sql: &str,
    statement: impl FnOnce(&'e mut DB::Connection) -> BoxFuture<'e, Result<T, sqlx::Error>> + Send + 'e,
) -> BoxFuture<'e, Result<T, sqlx::Error>> {
    let flight = Flight::<DB>::start(conn, track, sql);
    let setting = flight.setting();
    let work = async move {
        let set = set_bound::<DB>(conn, setting).await;
        (set, statement(conn).await)
    };
    Box::pin(TrackedFuture {
        work: work.boxed(),
        flight,
    })
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
    let sql = query.sql();
    run::<DB, _>(conn, track, sql, move |conn| {
        DB::fetch_optional(conn, query)
    })
}

/// [`Executor::prepare_with`](sqlx::Executor::prepare_with), tracked.
pub(crate) fn prepare_with<'e, 'q: 'e, DB: Backend>(
    conn: &'e mut DB::Connection,
    track: &'e mut Tracking,
    sql: &'q str,
    parameters: &'e [DB::TypeInfo],
) -> BoxFuture<'e, Result<DB::Statement<'q>, sqlx::Error>> {
    run::<DB, _>(conn, track, "", move |conn| {
        DB::prepare_with(conn, sql, parameters)
    })
}

/// [`Executor::describe`](sqlx::Executor::describe), tracked.
pub(crate) fn describe<'e, 'q: 'e, DB: Backend>(
    conn: &'e mut DB::Connection,
    track: &'e mut Tracking,
    sql: &'q str,
) -> BoxFuture<'e, Result<Describe<DB>, sqlx::Error>> {
    run::<DB, _>(conn, track, "", move |conn| DB::describe_query(conn, sql))
}
