//! What every tracked statement goes through, whether sent on the pooled
//! connection or inside a transaction: the in-flight flag, the server-side
//! bound, and the client-side bound.
//!
//! # The client-side bound
//!
//! The server stops a statement at the bound propagated from its request's
//! deadline, and answers. A frozen or cut-off server does not, so a tracked
//! statement also gives up on the client at the deadline plus a grace
//! ([`ManagerConfig::statement_grace`](crate::ManagerConfig::statement_grace)):
//! its future is dropped here, inside the wrapper, so the connection is
//! flagged as having a statement in flight, and the caller gets an
//! [`Error`] that [`is_timeout`](Error::is_timeout) and
//! [`is_connection_error`](crate::Classify::is_connection_error). When the
//! connection goes back, the pool cancels the statement and drains the
//! connection, or closes it if the server stays silent past
//! `abandon_timeout`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Sink, Stream};
use tokio::time::{Instant, Sleep};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::deadline::{Bound, SessionBound};
use crate::error::{Error, Operation};
use crate::stats::Counters;
use crate::status::{SessionStatus, TxStatus};

/// The tracking state of one connection, shared by its statements.
#[derive(Debug)]
pub(crate) struct Tracker {
    /// How many tracked statements were sent: each one's sequence number.
    sent: AtomicU64,
    /// The sequence number of the latest tracked statement dropped before it
    /// completed, until a later one completes (which proves the server done
    /// with it) or the pool takes the connection back; 0: none.
    abandoned: AtomicU64,
    /// The deadline of the request holding the connection.
    pub(crate) deadline: Option<Instant>,
    /// How long past the deadline the client waits for the server.
    pub(crate) grace: Duration,
    /// The `statement_timeout` the adapter last put on the session.
    pub(crate) bound: SessionBound,
    /// The session's own `statement_timeout`, when its settings set one.
    pub(crate) restore: Option<String>,
    pub(crate) counters: Arc<Counters>,
    /// The session's transaction state, as the server last reported it.
    pub(crate) status: Arc<SessionStatus>,
    /// A statement ran since the session was last known clean: what the
    /// pool goes by when the status is unseen.
    ran: AtomicBool,
    /// The raw client was reached: a statement sent through it may still
    /// be in flight.
    raw: AtomicBool,
    /// Behind a transaction pooler: settings and bound are set per
    /// transaction, statements run unnamed.
    pub(crate) pooler: bool,
    /// Behind a transaction pooler, the connection's settings as
    /// transaction-local `set_config` calls (see [`session`](crate::session)).
    pub(crate) local_settings: Option<String>,
}

/// How a statement goes out behind a transaction pooler.
#[derive(Debug)]
pub(crate) enum Local {
    /// Alone: nothing to set, or set already in this transaction.
    Alone,
    /// Inside a transaction block: after this prelude.
    After(String),
    /// Outside one: in a transaction of its own that begins with this
    /// prelude.
    Wrapped(String),
}

impl Tracker {
    pub(crate) fn new(
        counters: Arc<Counters>,
        status: Arc<SessionStatus>,
        grace: Duration,
    ) -> Self {
        Tracker {
            sent: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            deadline: None,
            grace,
            bound: SessionBound::new(),
            restore: None,
            counters,
            status,
            ran: AtomicBool::new(false),
            raw: AtomicBool::new(false),
            pooler: false,
            local_settings: None,
        }
    }

    /// A transaction or savepoint begins or ends. Behind a pooler, what a
    /// prelude set may be undone (or may not apply to the next statements'
    /// transaction): the next statement sets it again.
    pub(crate) fn transaction_control(&self) {
        if self.pooler {
            self.bound.forget();
        }
    }

    /// The bound for a statement of the request holding the connection,
    /// sent now.
    pub(crate) fn bound_now(&self) -> Bound {
        Bound::at(self.deadline)
    }

    /// Behind a transaction pooler: the `SELECT set_config(.., true), ..`
    /// that puts the connection's settings and `bound` on the transaction
    /// it runs in; `None` when there is nothing to set.
    pub(crate) fn prelude(&self, bound: Bound) -> Option<String> {
        let timeout = match bound {
            Bound::Millis(ms) => Some(format!("set_config('statement_timeout', '{ms}', true)")),
            Bound::Default => None,
        };
        let calls: Vec<&str> = self
            .local_settings
            .as_deref()
            .into_iter()
            .chain(timeout.as_deref())
            .collect();
        (!calls.is_empty()).then(|| format!("SELECT {}", calls.join(", ")))
    }

    /// Behind a transaction pooler: how a statement with `bound` goes out;
    /// `in_transaction`: sent inside a transaction of the adapter's.
    pub(crate) fn plan_local(&self, in_transaction: bool, bound: Bound) -> Local {
        if in_transaction || self.in_transaction() {
            if !self.bound.claim(bound, true) {
                return Local::Alone;
            }
            return self.prelude(bound).map_or(Local::Alone, Local::After);
        }
        self.prelude(bound).map_or(Local::Alone, Local::Wrapped)
    }

    /// Behind a transaction pooler, after a statement that carried `bound`
    /// in a prelude of its own text: if the statement left the session in
    /// a transaction block (a hand-written `BEGIN` takes the prelude in),
    /// the prelude holds there; else it ended with its implicit
    /// transaction.
    pub(crate) fn after_prefixed(&self, bound: Bound) {
        if self.in_transaction() {
            self.bound.set_tentative(bound);
        } else {
            self.bound.forget();
        }
    }

    /// The raw client is being reached.
    pub(crate) fn touch_raw(&self) {
        // Relaxed throughout: these flags order nothing else, and the pool
        // reads them through `&mut` once every borrow of the connection is
        // gone.
        self.raw.store(true, Ordering::Relaxed);
    }

    /// Whether a tracked statement was dropped before it completed and
    /// nothing since proved it done; clears the flag (the pool drains the
    /// connection now).
    pub(crate) fn take_abandoned(&mut self) -> bool {
        std::mem::take(self.abandoned.get_mut()) != 0
    }

    /// Whether the session may carry a transaction (or a statement sent
    /// through the raw client) that the next request must not inherit.
    pub(crate) fn needs_recycle(&mut self) -> bool {
        let raw = *self.raw.get_mut();
        match self.status.get() {
            TxStatus::Idle => raw,
            TxStatus::InTransaction | TxStatus::Failed | TxStatus::Busy => true,
            TxStatus::Unseen => raw || *self.ran.get_mut(),
        }
    }

    /// The session is known clean again.
    pub(crate) fn clean(&mut self) {
        *self.raw.get_mut() = false;
        *self.ran.get_mut() = false;
    }

    /// Whether the session is inside a transaction block, as far as the
    /// server's last report goes.
    pub(crate) fn in_transaction(&self) -> bool {
        matches!(
            self.status.get(),
            TxStatus::InTransaction | TxStatus::Failed
        )
    }

    /// A transaction-control statement (`BEGIN`, `COMMIT`, `SAVEPOINT`..),
    /// tracked.
    pub(crate) async fn control<R>(
        &self,
        statement: impl Future<Output = Result<R, tokio_postgres::Error>>,
    ) -> Result<R, Error> {
        self.transaction_control();
        self.run(None, true, Operation::Transaction, statement)
            .await
    }

    /// Runs `statement` (not polled yet, so not sent yet) as a tracked
    /// statement: bounded by the request's deadline on the server (a `SET`
    /// pipelined through `client`, when given) and on the client, and
    /// flagged if dropped before it completes. `in_transaction`: sent
    /// inside a transaction of the adapter's.
    pub(crate) async fn run<R>(
        &self,
        client: Option<&Client>,
        in_transaction: bool,
        operation: Operation,
        statement: impl Future<Output = Result<R, tokio_postgres::Error>>,
    ) -> Result<R, Error> {
        let (value, flight) = self
            .run_keep(client, in_transaction, operation, statement, false)
            .await?;
        flight.finish();
        Ok(value)
    }

    /// As [`run`](Self::run), but the statement goes on after its future
    /// (a stream of rows, a copy; `stream`): the returned flight ends with
    /// it (and, behind a pooler, may still owe its transaction's `COMMIT`).
    pub(crate) async fn run_keep<'t, R>(
        &'t self,
        client: Option<&'t Client>,
        in_transaction: bool,
        operation: Operation,
        statement: impl Future<Output = Result<R, tokio_postgres::Error>>,
        stream: bool,
    ) -> Result<(R, InFlight<'t>), Error> {
        let mut flight = InFlight::start(self);
        let now = Instant::now();
        let bound = Bound::until(self.deadline, now);
        let commit_after = &mut flight.commit;
        let work = async {
            let Some(client) = client else {
                return statement.await;
            };
            if self.pooler {
                return self
                    .run_local(
                        client,
                        in_transaction,
                        bound,
                        statement,
                        stream,
                        commit_after,
                    )
                    .await;
            }
            let tentative = in_transaction || self.in_transaction();
            if !self.bound.claim(bound, tentative) {
                return statement.await;
            }
            self.counters.bound_changed();
            let set = crate::deadline::statement(bound, self.restore.as_deref());
            // Sent first, in the same write as the statement: tokio-postgres
            // sends requests in the order their futures are first polled, and
            // `biased` polls the SET first. No extra round trip.
            let (set, result) = tokio::join!(biased; client.batch_execute(&set), statement);
            if set.is_err() {
                self.bound.forget();
            }
            result
        };
        let result = match self.deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline + self.grace, work).await {
                Ok(result) => result,
                Err(_) => {
                    // The statement's future is gone: `flight` drops
                    // unfinished, and the pool cancels and drains.
                    self.counters.timed_out();
                    return Err(Error::timed_out(operation, self.grace));
                }
            },
            None => work.await,
        };
        match result {
            Ok(value) => Ok((value, flight)),
            Err(e) => {
                // The server answered (or the connection failed): the
                // statement is over either way.
                flight.finish();
                if let Bound::Millis(ms) = bound {
                    // A cancel request fails a statement with the same
                    // SQLSTATE; the server's timer cannot fire before the
                    // bound has passed since the statement was sent.
                    if e.code() == Some(&SqlState::QUERY_CANCELED)
                        && now.elapsed() >= Duration::from_millis(ms.into())
                    {
                        self.counters.stopped_by_deadline();
                    }
                }
                Err(Error::driver(operation)(e))
            }
        }
    }

    /// Behind a transaction pooler: sends `statement` with the prelude its
    /// plan asks for (see the module docs). A stream's transaction is left
    /// open, its `COMMIT` due after the last row (`commit_after`).
    async fn run_local<'t, R>(
        &self,
        client: &'t Client,
        in_transaction: bool,
        bound: Bound,
        statement: impl Future<Output = Result<R, tokio_postgres::Error>>,
        stream: bool,
        commit_after: &mut Option<&'t Client>,
    ) -> Result<R, tokio_postgres::Error> {
        let prelude = match self.plan_local(in_transaction, bound) {
            Local::Alone => return statement.await,
            Local::After(prelude) => {
                if matches!(bound, Bound::Millis(_)) {
                    self.counters.bound_changed();
                }
                let (set, result) = tokio::join!(biased; client.batch_execute(&prelude), statement);
                if set.is_err() {
                    self.bound.forget();
                    // The transaction is failed now: its error says why.
                    set?;
                }
                return result;
            }
            Local::Wrapped(prelude) => prelude,
        };
        if matches!(bound, Bound::Millis(_)) {
            self.counters.bound_changed();
        }
        self.bound.forget();
        let begin = format!("BEGIN; {prelude}");
        if stream {
            let (begun, result) = tokio::join!(biased; client.batch_execute(&begin), statement);
            return match (begun, result) {
                (Ok(()), Ok(value)) => {
                    *commit_after = Some(client);
                    Ok(value)
                }
                (begun, result) => {
                    // Leave no transaction open behind the error.
                    let _ = client.batch_execute("ROLLBACK").await;
                    begun.and(result)
                }
            };
        }
        let (begun, result, committed) = tokio::join!(
            biased;
            client.batch_execute(&begin),
            statement,
            client.batch_execute("COMMIT"),
        );
        // The first failure says why: a statement after a failed prelude
        // fails only because the transaction did.
        begun?;
        let value = result?;
        committed?;
        Ok(value)
    }

    /// When the client gives up on the statement started now.
    fn expiry(&self) -> Option<Pin<Box<Sleep>>> {
        self.deadline
            .map(|deadline| Box::pin(tokio::time::sleep_until(deadline + self.grace)))
    }
}

/// A tracked statement between its first poll and its completion.
#[derive(Debug)]
pub(crate) struct InFlight<'a> {
    tracker: &'a Tracker,
    seq: u64,
    done: bool,
    /// Behind a transaction pooler: the client on which the statement's own
    /// transaction still needs its `COMMIT` once the statement ends.
    commit: Option<&'a Client>,
}

impl<'a> InFlight<'a> {
    fn start(tracker: &'a Tracker) -> Self {
        tracker.ran.store(true, Ordering::Relaxed);
        let seq = tracker.sent.fetch_add(1, Ordering::Relaxed) + 1;
        InFlight {
            tracker,
            seq,
            done: false,
            commit: None,
        }
    }

    pub(crate) fn finish(mut self) {
        self.done = true;
        // The server answers in order: a statement sent after an abandoned
        // one completing means the abandoned one is over.
        let abandoned = self.tracker.abandoned.load(Ordering::Relaxed);
        if abandoned != 0 && abandoned < self.seq {
            let _ = self.tracker.abandoned.compare_exchange(
                abandoned,
                0,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.tracker
                .abandoned
                .fetch_max(self.seq, Ordering::Relaxed);
            self.tracker.counters.abandoned();
        }
    }
}

/// A tracked statement's results, streamed: rows
/// ([`query_raw`](crate::PgConnection::query_raw),
/// [`query_typed_raw`](crate::PgConnection::query_typed_raw)), simple-query
/// messages ([`simple_query_raw`](crate::PgConnection::simple_query_raw))
/// or `COPY TO` data ([`copy_out`](crate::PgConnection::copy_out)).
///
/// The statement counts as in flight until the stream ends: dropping it
/// before then is abandoning the statement (the pool cancels it on
/// return). Past the request's deadline plus the grace, the stream yields
/// a timeout [`Error`] and ends.
#[must_use = "streams do nothing unless polled"]
pub struct TrackedStream<'a, S> {
    inner: Pin<Box<S>>,
    flight: Option<InFlight<'a>>,
    expiry: Option<Pin<Box<Sleep>>>,
    operation: Operation,
    /// Behind a transaction pooler: the `COMMIT` of the statement's own
    /// transaction, once the rows have ended.
    commit: Option<Pin<Box<Ending<'a>>>>,
}

/// The `COMMIT` a stream sends after its last row.
type Ending<'a> = dyn Future<Output = Result<(), tokio_postgres::Error>> + Send + 'a;

impl<'a, S> TrackedStream<'a, S> {
    pub(crate) fn new(inner: S, flight: InFlight<'a>, operation: Operation) -> Self {
        TrackedStream {
            inner: Box::pin(inner),
            expiry: flight.tracker.expiry(),
            flight: Some(flight),
            operation,
            commit: None,
        }
    }
}

impl TrackedStream<'_, tokio_postgres::RowStream> {
    /// The number of rows the statement affected, once the stream has
    /// ended ([`RowStream::rows_affected`](tokio_postgres::RowStream::rows_affected)).
    pub fn rows_affected(&self) -> Option<u64> {
        self.inner.rows_affected()
    }
}

impl<S, T> Stream for TrackedStream<'_, S>
where
    S: Stream<Item = Result<T, tokio_postgres::Error>>,
{
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(flight) = this.flight.as_ref() else {
            return Poll::Ready(None);
        };
        if let Some(expiry) = this.expiry.as_mut() {
            if expiry.as_mut().poll(cx).is_ready() {
                let tracker = flight.tracker;
                tracker.counters.timed_out();
                // Dropped unfinished: flagged in flight.
                this.flight = None;
                return Poll::Ready(Some(Err(Error::timed_out(this.operation, tracker.grace))));
            }
        }
        if let Some(commit) = this.commit.as_mut() {
            let committed = std::task::ready!(commit.as_mut().poll(cx));
            this.commit = None;
            if let Some(flight) = this.flight.take() {
                flight.finish();
            }
            return Poll::Ready(
                committed
                    .err()
                    .map(|e| Err(Error::driver(this.operation)(e))),
            );
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(item))) => Poll::Ready(Some(Ok(item))),
            Poll::Ready(Some(Err(e))) => {
                if let Some(flight) = this.flight.take() {
                    if let Some(client) = flight.commit {
                        // The statement's own transaction failed with it:
                        // queue its end without waiting (the first poll
                        // sends it).
                        let mut rollback = Box::pin(client.batch_execute("ROLLBACK"));
                        let _ = rollback.as_mut().poll(cx);
                    }
                    flight.finish();
                }
                Poll::Ready(Some(Err(Error::driver(this.operation)(e))))
            }
            Poll::Ready(None) => {
                let Some(flight) = this.flight.take() else {
                    return Poll::Ready(None);
                };
                match flight.commit {
                    Some(client) => {
                        // Ends once the COMMIT has answered (polled above).
                        this.commit = Some(Box::pin(client.batch_execute("COMMIT")));
                        this.flight = Some(flight);
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    None => {
                        flight.finish();
                        Poll::Ready(None)
                    }
                }
            }
        }
    }
}

/// The sink of a tracked `COPY ... FROM STDIN`
/// ([`copy_in`](crate::PgConnection::copy_in)): send the data, then
/// [`finish`](CopyInSink::finish).
///
/// The statement counts as in flight until `finish` returns: dropping the
/// sink before then aborts the copy and is abandoning the statement. The
/// copy as a whole is bounded on the server by the request's deadline;
/// `finish` is also bounded on the client, by the deadline plus the grace.
#[must_use = "the copy is aborted unless finished"]
pub struct CopyInSink<'a, T> {
    inner: Pin<Box<tokio_postgres::CopyInSink<T>>>,
    flight: Option<InFlight<'a>>,
}

impl<'a, T> CopyInSink<'a, T>
where
    T: bytes::Buf + Send + 'static,
{
    pub(crate) fn new(inner: tokio_postgres::CopyInSink<T>, flight: InFlight<'a>) -> Self {
        CopyInSink {
            inner: Box::pin(inner),
            flight: Some(flight),
        }
    }

    /// Completes the copy; returns the number of rows copied.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future aborts the copy and leaves the statement in
    /// flight; the pool cancels it on return.
    pub async fn finish(mut self) -> Result<u64, Error> {
        let Some(flight) = self.flight.take() else {
            // Closed through the sink already: nothing is in flight.
            return self
                .inner
                .as_mut()
                .finish()
                .await
                .map_err(Error::driver(Operation::Statement));
        };
        let tracker = flight.tracker;
        let finish = self.inner.as_mut().finish();
        let result = match tracker.expiry() {
            Some(expiry) => tokio::select! {
                biased;
                result = finish => result,
                _ = expiry => {
                    tracker.counters.timed_out();
                    drop(flight);
                    return Err(Error::timed_out(Operation::Statement, tracker.grace));
                }
            },
            None => finish.await,
        };
        flight.finish();
        result.map_err(Error::driver(Operation::Statement))
    }
}

impl<T> Sink<T> for CopyInSink<'_, T>
where
    T: bytes::Buf + Send + 'static,
{
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner
            .as_mut()
            .poll_ready(cx)
            .map_err(Error::driver(Operation::Statement))
    }

    fn start_send(mut self: Pin<&mut Self>, item: T) -> Result<(), Error> {
        self.inner
            .as_mut()
            .start_send(item)
            .map_err(Error::driver(Operation::Statement))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner
            .as_mut()
            .poll_flush(cx)
            .map_err(Error::driver(Operation::Statement))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let closed = self.inner.as_mut().poll_close(cx);
        if closed.is_ready() {
            if let Some(flight) = self.flight.take() {
                flight.finish();
            }
        }
        closed.map_err(Error::driver(Operation::Statement))
    }
}
