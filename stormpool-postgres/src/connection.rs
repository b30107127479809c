//! [`PgConnection`]: the pooled connection, its tracked statements, and the
//! deadline they carry to the server.
//!
//! # Tracked statements
//!
//! A request that gives up in the middle of a statement drops its future,
//! but the statement it sent keeps running on the server, and the next
//! statement on the session queues behind it. The tracked methods
//! ([`query`](PgConnection::query), [`execute`](PgConnection::execute),
//! [`simple_query`](PgConnection::simple_query), ...) notice such a drop, so
//! that the pool can cancel the statement and keep the connection out of
//! circulation until the server is idle on it
//! ([`Manager::statement_in_flight`](stormpool::Manager::statement_in_flight)).
//! They also bound the statement on the server by the request's remaining
//! time (see the crate's docs, "Deadline propagation").
//!
//! Tracking costs two relaxed atomic operations per statement and no
//! allocation; a bound costs a clock read, and a pipelined `SET` when it
//! changes.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Error, Row, SimpleQueryMessage, ToStatement};

use crate::deadline::{Bound, SessionBound};
use crate::stats::Counters;

/// A pooled PostgreSQL connection.
///
/// Its statement methods ([`query`](Self::query), [`query_one`](Self::query_one),
/// [`query_opt`](Self::query_opt), [`execute`](Self::execute),
/// [`simple_query`](Self::simple_query), [`batch_execute`](Self::batch_execute))
/// take the same arguments and return the same results as the
/// tokio-postgres [`Client`]'s, and are *tracked*:
///
/// - a statement whose future is dropped before it completes (a request
///   that gave up at its deadline) is cancelled on the server when the
///   connection goes back to the pool, which hands the connection to nobody
///   until the server is idle on it;
/// - when the request acquired the connection with a deadline
///   ([`AcquireOptions::deadline`](stormpool::AcquireOptions::deadline)), the
///   server stops the statement when that deadline passes: it fails with
///   SQLSTATE `57014` (`query_canceled`) and the connection stays usable.
///
/// Everything else of the [`Client`] is reached through `Deref`
/// (`conn.prepare(..)`, `conn.copy_in(..)`, `conn.query_raw(..)`) or
/// [`client`](Self::client). **Statements sent that way are not tracked**:
/// one abandoned half-way stays on the server and delays the session's next
/// user, and none is bounded by the request's deadline (the session may
/// still carry the bound a tracked statement set, for the same request).
///
/// The connection's I/O runs on a task of its own. Dropping this closes the
/// session: the task says goodbye to the server, and is cut after
/// [`ManagerConfig::close_grace`](crate::ManagerConfig::close_grace) if the
/// server does not answer.
pub struct PgConnection {
    client: Client,
    /// Dropped with the connection: tells the I/O task to wind down.
    _closing: oneshot::Sender<()>,
    /// How many tracked statements were sent: each one's sequence number.
    sent: AtomicU64,
    /// The sequence number of the latest tracked statement dropped before it
    /// completed, until a later one completes (which proves the server done
    /// with it) or the pool takes the connection back; 0: none.
    abandoned: AtomicU64,
    /// The deadline of the request holding the connection.
    deadline: Option<Instant>,
    /// The `statement_timeout` the adapter last put on the session.
    bound: SessionBound,
    /// The session's own `statement_timeout`, when its settings set one.
    restore: Option<String>,
    counters: Arc<Counters>,
}

impl PgConnection {
    pub(crate) fn new(
        client: Client,
        closing: oneshot::Sender<()>,
        counters: Arc<Counters>,
    ) -> Self {
        PgConnection {
            client,
            _closing: closing,
            sent: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            deadline: None,
            bound: SessionBound::new(),
            restore: None,
            counters,
        }
    }

    /// The tokio-postgres client. Statements sent through it are not
    /// tracked (see the type's docs).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The deadline of the request holding the connection, as the pool
    /// passed it on; `None` when the request set none or the pool does not
    /// propagate deadlines.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// [`Client::query`], tracked.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the statement running on the server; the
    /// pool cancels it when the connection comes back.
    pub async fn query<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.tracked(self.client.query(statement, params)).await
    }

    /// [`Client::query_one`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn query_one<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.tracked(self.client.query_one(statement, params)).await
    }

    /// [`Client::query_opt`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn query_opt<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.tracked(self.client.query_opt(statement, params)).await
    }

    /// [`Client::execute`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn execute<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.tracked(self.client.execute(statement, params)).await
    }

    /// [`Client::simple_query`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn simple_query(&self, query: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        self.tracked(self.client.simple_query(query)).await
    }

    /// [`Client::batch_execute`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn batch_execute(&self, query: &str) -> Result<(), Error> {
        self.tracked(self.client.batch_execute(query)).await
    }

    /// Runs `statement` (not polled yet, so not sent yet) as a tracked
    /// statement: bounded by the request's deadline, and flagged if dropped
    /// before it completes.
    async fn tracked<R>(
        &self,
        statement: impl Future<Output = Result<R, Error>>,
    ) -> Result<R, Error> {
        let flight = InFlight::start(self);
        let started = self.deadline.map(|deadline| (deadline, Instant::now()));
        let bound = started.map_or(Bound::Default, |(deadline, now)| {
            Bound::until(deadline, now)
        });
        let result = if self.bound.claim(bound) {
            self.counters.bound_changed();
            let set = bound.statement(self.restore.as_deref());
            // Sent first, in the same write as the statement: tokio-postgres
            // sends requests in the order their futures are first polled, and
            // `biased` polls the SET first. No extra round trip.
            let (set, result) = tokio::join!(biased; self.client.batch_execute(&set), statement);
            if set.is_err() {
                self.bound.forget();
            }
            result
        } else {
            statement.await
        };
        flight.finish();
        if let (Err(e), Bound::Millis(ms), Some((_, started))) = (&result, bound, started) {
            // A cancel request fails a statement with the same SQLSTATE; the
            // server's timer cannot fire before the bound has passed since
            // the statement was sent.
            if e.code() == Some(&SqlState::QUERY_CANCELED)
                && started.elapsed() >= Duration::from_millis(ms.into())
            {
                self.counters.stopped_by_deadline();
            }
        }
        result
    }

    /// Whether a tracked statement was dropped before it completed and
    /// nothing since proved it done; clears the flag (the pool drains the
    /// connection now).
    pub(crate) fn take_abandoned(&mut self) -> bool {
        std::mem::take(self.abandoned.get_mut()) != 0
    }

    /// A request takes the connection.
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// The session was reset: whatever it carried is gone.
    pub(crate) fn session_reset(&mut self) {
        self.restore = None;
        self.bound.forget();
    }

    /// Settings put `statement_timeout = value` on the session: a request
    /// without a deadline gets that value back instead of the default.
    pub(crate) fn settings_bound(&mut self, value: &str) {
        self.restore = Some(value.to_owned());
        self.bound.forget();
    }
}

impl Deref for PgConnection {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConnection")
            .field("closed", &self.client.is_closed())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// A tracked statement between its first poll and its completion.
struct InFlight<'a> {
    conn: &'a PgConnection,
    seq: u64,
    done: bool,
}

impl<'a> InFlight<'a> {
    fn start(conn: &'a PgConnection) -> Self {
        // Relaxed throughout: the flags order nothing else, and the pool
        // reads them through `&mut` once every statement future is gone.
        let seq = conn.sent.fetch_add(1, Ordering::Relaxed) + 1;
        InFlight {
            conn,
            seq,
            done: false,
        }
    }

    fn finish(mut self) {
        self.done = true;
        // The server answers in order: a statement sent after an abandoned
        // one completing means the abandoned one is over.
        let abandoned = self.conn.abandoned.load(Ordering::Relaxed);
        if abandoned != 0 && abandoned < self.seq {
            let _ = self.conn.abandoned.compare_exchange(
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
            self.conn.abandoned.fetch_max(self.seq, Ordering::Relaxed);
            self.conn.counters.abandoned();
        }
    }
}
