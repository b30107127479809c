//! [`PgConnection`]: the pooled connection and its tracked statements.
//!
//! # Tracked statements
//!
//! A request that gives up in the middle of a statement drops its future,
//! but the statement it sent keeps running on the server, and the next
//! statement on the session queues behind it. Every statement method of
//! [`PgConnection`] (and of [`PgTransaction`]) notices such a drop, so that
//! the pool can cancel the statement and keep the connection out of
//! circulation until the server is idle on it
//! ([`Manager::statement_in_flight`](stormpool::Manager::statement_in_flight)).
//! They also bound the statement by the request's remaining time, on the
//! server and on the client (see the crate's docs, "Deadline propagation").
//!
//! Tracking costs two relaxed atomic operations per statement and no
//! allocation (a stream or a copy allocates its timer); a bound costs a
//! clock read, and a pipelined `SET` when it changes.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_postgres::{CancelToken, Client};

use crate::error::Error;
use crate::handle::{sealed, Scope, Tracked};
use crate::statements::{Cache, Statements};
use crate::stats::Counters;
use crate::status::SessionStatus;
use crate::tracked::Tracker;
use crate::transaction::{PgTransaction, TransactionBuilder};

/// A pooled PostgreSQL connection.
///
/// Its statement methods (those of [`Tracked`], which it shares with
/// [`PgTransaction`]) take the same arguments and return the same values as
/// the tokio-postgres [`Client`]'s methods of the same name, with this
/// crate's [`Error`], and are *tracked*:
///
/// | family | methods |
/// |---|---|
/// | rows | [`query`](Self::query), [`query_one`](Self::query_one), [`query_opt`](Self::query_opt), [`query_raw`](Self::query_raw) |
/// | typed parameters, no prepare | [`query_typed`](Self::query_typed), [`query_typed_one`](Self::query_typed_one), [`query_typed_opt`](Self::query_typed_opt), [`query_typed_raw`](Self::query_typed_raw), [`execute_typed`](Self::execute_typed) |
/// | row counts | [`execute`](Self::execute), [`execute_raw`](Self::execute_raw) |
/// | simple protocol | [`simple_query`](Self::simple_query), [`simple_query_raw`](Self::simple_query_raw), [`batch_execute`](Self::batch_execute) |
/// | prepared statements | [`prepare`](Self::prepare), [`prepare_typed`](Self::prepare_typed), [`prepare_cached`](Self::prepare_cached), [`prepare_typed_cached`](Self::prepare_typed_cached) |
/// | copy | [`copy_in`](Self::copy_in), [`copy_out`](Self::copy_out) |
/// | transactions | [`transaction`](Self::transaction), [`build_transaction`](Self::build_transaction) |
///
/// - a statement whose future is dropped before it completes (a request
///   that gave up at its deadline) is cancelled on the server when the
///   connection goes back to the pool, which hands the connection to nobody
///   until the server is idle on it;
/// - when the request acquired the connection with a deadline
///   ([`AcquireOptions::deadline`](stormpool::AcquireOptions::deadline)), the
///   server stops the statement when that deadline passes (it fails with
///   SQLSTATE `57014`, `query_canceled`, and the connection stays usable),
///   and the client stops waiting for a server that does not answer by
///   the deadline plus [`ManagerConfig::statement_grace`](crate::ManagerConfig::statement_grace)
///   (a timeout [`Error`]; the pool then cancels and drains the connection,
///   or closes it).
///
/// Whatever the holder did, the connection goes back to the pool outside
/// any transaction: see the crate's docs, "Transactions and hygiene".
///
/// The raw [`Client`] is reached through `Deref` or [`client`](Self::client)
/// for what this type does not wrap (`bind`, portals, type caches).
/// **Statements sent that way are not tracked**: none is bounded by the
/// request's deadline, and one abandoned half-way stays on the server; a
/// connection whose raw client was reached is cleaned up (an extra round
/// trip, off the returner's path) before it serves anyone else.
///
/// The connection's I/O runs on a task of its own. Dropping this closes the
/// session: the task says goodbye to the server, and is cut after
/// [`ManagerConfig::close_grace`](crate::ManagerConfig::close_grace) if the
/// server does not answer.
pub type PgConnection = Tracked<Connection>;

/// What a pooled connection holds: the session and its tracking.
pub struct Connection {
    client: Client,
    /// Dropped with the connection: tells the I/O task to wind down.
    _closing: oneshot::Sender<()>,
    /// The I/O task, which ends once the server has closed the session (or
    /// `close_grace` after the client went).
    io: Option<tokio::task::JoinHandle<()>>,
    tracker: Tracker,
    cache: Mutex<Cache>,
}

impl PgConnection {
    pub(crate) fn new(
        client: Client,
        closing: oneshot::Sender<()>,
        io: tokio::task::JoinHandle<()>,
        counters: Arc<Counters>,
        status: Arc<SessionStatus>,
        grace: Duration,
        cache_capacity: usize,
    ) -> Self {
        Tracked(Connection {
            client,
            _closing: closing,
            io: Some(io),
            tracker: Tracker::new(counters, status, grace),
            cache: Mutex::new(Cache::new(cache_capacity)),
        })
    }

    /// Closes the session: the I/O task says goodbye (`Terminate`) and
    /// ends once the server has closed its side, or `close_grace` after.
    pub(crate) async fn close(mut self) {
        let io = self.0.io.take();
        drop(self);
        if let Some(io) = io {
            let _ = io.await;
        }
    }

    /// The tokio-postgres client. Statements sent through it are not
    /// tracked (see the type's docs).
    pub fn client(&self) -> &Client {
        self.0.tracker.touch_raw();
        &self.0.client
    }

    /// The deadline of the request holding the connection, as the pool
    /// passed it on; `None` when the request set none or the pool does not
    /// propagate deadlines.
    pub fn deadline(&self) -> Option<Instant> {
        self.0.tracker.deadline
    }

    /// Whether the session is closed ([`Client::is_closed`]).
    pub fn is_closed(&self) -> bool {
        self.0.client.is_closed()
    }

    /// The token that cancels the statement running on this session from
    /// elsewhere ([`Client::cancel_token`]).
    pub fn cancel_token(&self) -> CancelToken {
        self.0.client.cancel_token()
    }

    /// How many prepared statements the connection's cache holds.
    pub fn cached_statements(&self) -> usize {
        self.0
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Begins a transaction (`BEGIN`), tracked, with the session's default
    /// isolation level; see [`PgTransaction`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the `BEGIN` in flight: the pool cancels
    /// it and rolls the session back when the connection comes back.
    pub async fn transaction(&mut self) -> Result<PgTransaction<'_>, Error> {
        self.build_transaction().start().await
    }

    /// A transaction with options: isolation level, read-only, deferrable.
    pub fn build_transaction(&mut self) -> TransactionBuilder<'_> {
        TransactionBuilder::new(&mut self.0.client, &self.0.tracker, &self.0.cache)
    }

    /// Whether a tracked statement was dropped before it completed and
    /// nothing since proved it done; clears the flag (the pool drains the
    /// connection now).
    pub(crate) fn take_abandoned(&mut self) -> bool {
        self.0.tracker.take_abandoned()
    }

    pub(crate) fn tracker_mut(&mut self) -> &mut Tracker {
        &mut self.0.tracker
    }

    /// The client, for the manager's own statements (not the holder's).
    pub(crate) fn own_client(&self) -> &Client {
        &self.0.client
    }

    /// A request takes the connection.
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.0.tracker.deadline = deadline;
    }

    /// The session was reset: whatever it carried is gone, prepared
    /// statements included.
    pub(crate) fn session_reset(&mut self) {
        self.0.tracker.restore = None;
        self.0.tracker.local_settings = None;
        self.0.tracker.bound.forget();
        self.0
            .cache
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Behind a transaction pooler: the connection's settings, as the
    /// `set_config` calls each transaction of its requests begins with.
    pub(crate) fn set_local_settings(&mut self, calls: String) {
        self.0.tracker.local_settings = Some(calls);
        self.0.tracker.bound.forget();
    }

    /// Settings put `statement_timeout = value` on the session: a request
    /// without a deadline gets that value back instead of the default.
    pub(crate) fn settings_bound(&mut self, value: &str) {
        self.0.tracker.restore = Some(value.to_owned());
        self.0.tracker.bound.forget();
    }
}

impl sealed::Sealed for Connection {}

impl Scope for Connection {
    fn statements(&self) -> Statements<'_> {
        Statements {
            client: &self.client,
            tracker: &self.tracker,
            cache: &self.cache,
            in_transaction: false,
        }
    }
}

impl Deref for PgConnection {
    type Target = Client;

    /// The raw client: see [`client`](PgConnection::client).
    fn deref(&self) -> &Client {
        self.client()
    }
}

impl fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConnection")
            .field("closed", &self.0.client.is_closed())
            .field("deadline", &self.0.tracker.deadline)
            .field("transaction_status", &self.0.tracker.status.get())
            .finish_non_exhaustive()
    }
}
