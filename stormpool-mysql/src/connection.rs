//! [`MySqlConnection`]: the pooled connection, its tracked statements, and
//! the deadline they carry to the server.
//!
//! # Why a tracked statement owns the driver's connection
//!
//! mysql_async cannot survive a statement future dropped half-way: the
//! reply is still on its way, and the driver marks the connection
//! disconnected, so a plain client's abandoned statement costs a connection
//! (and goes on running on the server until it ends by itself). A tracked
//! statement therefore moves the driver's [`Conn`] into a boxed future of
//! its own, with the statement. If the caller drops it half-way, the box is
//! kept, with the connection inside, and finished later: by the pool's
//! drain, after it sent `KILL QUERY`, or by the holder's next tracked
//! statement. Either reads the reply, so the session is in step again and
//! the server idle on it. The cost is one allocation per statement, on top
//! of the driver's own (it boxes every statement future too).

use std::fmt;
use std::future::{poll_fn, Future};
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use mysql_async::consts::StatusFlags;
use mysql_async::prelude::{FromRow, Queryable, StatementLike};
use mysql_async::{Conn, Params, Statement, Value};
use tokio::time::Instant;

use crate::deadline::{self, STATEMENT_TIMEOUT, UNKNOWN_VARIABLE};
use crate::error::{Error, Operation};
use crate::stats::Counters;
use crate::transaction::{MySqlTransaction, Pending, TransactionBuilder};
use stormpool::statements::{Bound, SessionBound};

/// A statement future of the driver, borrowing its connection.
type DriverFuture<'c, T> = Pin<Box<dyn Future<Output = mysql_async::Result<T>> + Send + 'c>>;

/// A statement abandoned by its caller, finishing with the connection.
type Abandoned = Pin<Box<dyn Future<Output = Conn> + Send>>;

/// A connection's prepared statements, by text.
type Cache = stormpool::statements::StatementCache<String, Statement>;

/// A pooled MySQL connection.
///
/// Its statement methods take the same arguments as mysql_async's
/// [`Queryable`] methods of the same name, except that the query or
/// statement (and a mapping closure) must be owned (`'static`: a literal,
/// a `String`, a `Statement`), return this crate's [`Error`], and are
/// *tracked*:
///
/// | family | methods |
/// |---|---|
/// | text protocol | [`query`](Self::query), [`query_first`](Self::query_first), [`query_map`](Self::query_map), [`query_fold`](Self::query_fold), [`query_drop`](Self::query_drop) |
/// | prepared statements | [`exec`](Self::exec), [`exec_first`](Self::exec_first), [`exec_map`](Self::exec_map), [`exec_fold`](Self::exec_fold), [`exec_drop`](Self::exec_drop), [`exec_batch`](Self::exec_batch) |
/// | preparing | [`prep`](Self::prep), [`prepare_cached`](Self::prepare_cached), [`close`](Self::close) |
/// | transactions | [`transaction`](Self::transaction), [`build_transaction`](Self::build_transaction) |
///
/// - a statement whose future is dropped before it completes (a request
///   that gave up at its deadline) keeps the connection in step: the pool
///   stops it on the server (`KILL QUERY`) when the connection comes back,
///   and hands the connection to nobody until the server has answered it;
///   the holder's next tracked statement waits for it instead;
/// - when the request acquired the connection with a deadline
///   ([`AcquireOptions::deadline`](stormpool::AcquireOptions::deadline)), the
///   server (MariaDB) stops the statement when that deadline passes (error
///   1969, `ER_STATEMENT_TIMEOUT`; the connection stays usable), and the
///   client stops waiting for a server that does not answer by the
///   deadline plus [`ManagerConfig::statement_grace`](crate::ManagerConfig::statement_grace)
///   (a timeout [`Error`]; the pool then stops the statement and drains the
///   connection, or closes it).
///
/// Whatever the holder did, the connection goes back to the pool outside
/// any transaction: see the crate's docs, "Transactions and hygiene".
///
/// Everything else of the driver's [`Conn`] (the streaming `query_iter`,
/// `exec_iter`, `query_stream`, `LOAD DATA` handlers) is reached through
/// `Deref`/`DerefMut`, or `Queryable` methods called on `&mut **conn`.
/// **Statements sent that way are not tracked**: one abandoned half-way
/// leaves the driver's connection marked disconnected, and the pool closes
/// it; none is bounded by the request's deadline.
///
/// # Panics
///
/// Dereferencing panics while a tracked statement abandoned by this holder
/// is still finishing (the driver's connection is inside it): run a tracked
/// statement first, which waits for it.
///
/// Dropping the connection closes the session with `COM_QUIT`, cut after
/// [`ManagerConfig::close_grace`](crate::ManagerConfig::close_grace) if the
/// server does not answer. Its `Debug` shows the connection id only: the
/// driver's own `Debug` of [`Conn`] prints the connection options, password
/// included.
pub struct MySqlConnection {
    /// `None` while a tracked statement runs, while an abandoned one
    /// finishes (`abandoned`), and once dropped.
    conn: Option<Conn>,
    /// The server's id of the session.
    id: u32,
    /// A tracked statement whose caller gave up, with the connection.
    abandoned: Option<Abandoned>,
    close_grace: Duration,
    /// The deadline of the request holding the connection.
    deadline: Option<Instant>,
    /// How long past the deadline the client waits for the server.
    grace: Duration,
    /// The `max_statement_time` the adapter last put on the session.
    bound: SessionBound,
    /// The session's own `max_statement_time`, when its settings set one.
    restore: Option<Value>,
    /// A rollback owed by a transaction dropped without commit; sent before
    /// the next statement, or by the pool on return.
    pub(crate) pending: Option<Pending>,
    cache: Cache,
    pub(crate) counters: Arc<Counters>,
}

impl MySqlConnection {
    pub(crate) fn new(
        conn: Conn,
        close_grace: Duration,
        counters: Arc<Counters>,
        grace: Duration,
        cache_capacity: usize,
    ) -> Self {
        MySqlConnection {
            id: conn.id(),
            conn: Some(conn),
            abandoned: None,
            close_grace,
            deadline: None,
            grace,
            bound: SessionBound::Known(Bound::Default),
            restore: None,
            pending: None,
            cache: Cache::new(cache_capacity),
            counters,
        }
    }

    /// The server's id of the session (`CONNECTION_ID()`).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The deadline of the request holding the connection, as the pool
    /// passed it on; `None` when the request set none or the pool does not
    /// propagate deadlines.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// How many prepared statements the connection's cache holds.
    pub fn cached_statements(&self) -> usize {
        self.cache.len()
    }

    /// [`Queryable::query`], tracked.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the statement running on the server, and
    /// the connection with it; the pool stops it when the connection comes
    /// back.
    pub async fn query<T, Q>(&mut self, query: Q) -> Result<Vec<T>, Error>
    where
        Q: mysql_async::prelude::AsQuery + 'static,
        T: FromRow + Send + 'static,
    {
        self.tracked(move |conn| conn.query(query)).await
    }

    /// [`Queryable::query_first`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn query_first<T, Q>(&mut self, query: Q) -> Result<Option<T>, Error>
    where
        Q: mysql_async::prelude::AsQuery + 'static,
        T: FromRow + Send + 'static,
    {
        self.tracked(move |conn| conn.query_first(query)).await
    }

    /// [`Queryable::query_map`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn query_map<T, F, Q, U>(&mut self, query: Q, f: F) -> Result<Vec<U>, Error>
    where
        Q: mysql_async::prelude::AsQuery + 'static,
        T: FromRow + Send + 'static,
        F: FnMut(T) -> U + Send + 'static,
        U: Send + 'static,
    {
        self.tracked(move |conn| conn.query_map(query, f)).await
    }

    /// [`Queryable::query_fold`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn query_fold<T, F, Q, U>(&mut self, query: Q, init: U, f: F) -> Result<U, Error>
    where
        Q: mysql_async::prelude::AsQuery + 'static,
        T: FromRow + Send + 'static,
        F: FnMut(U, T) -> U + Send + 'static,
        U: Send + 'static,
    {
        self.tracked(move |conn| conn.query_fold(query, init, f))
            .await
    }

    /// [`Queryable::query_drop`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn query_drop<Q>(&mut self, query: Q) -> Result<(), Error>
    where
        Q: mysql_async::prelude::AsQuery + 'static,
    {
        self.tracked(move |conn| conn.query_drop(query)).await
    }

    /// [`Queryable::exec`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn exec<T, S, P>(&mut self, statement: S, params: P) -> Result<Vec<T>, Error>
    where
        S: StatementLike + 'static,
        P: Into<Params> + Send + 'static,
        T: FromRow + Send + 'static,
    {
        self.tracked(move |conn| conn.exec(statement, params)).await
    }

    /// [`Queryable::exec_first`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn exec_first<T, S, P>(&mut self, statement: S, params: P) -> Result<Option<T>, Error>
    where
        S: StatementLike + 'static,
        P: Into<Params> + Send + 'static,
        T: FromRow + Send + 'static,
    {
        self.tracked(move |conn| conn.exec_first(statement, params))
            .await
    }

    /// [`Queryable::exec_map`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn exec_map<T, S, P, U, F>(
        &mut self,
        statement: S,
        params: P,
        f: F,
    ) -> Result<Vec<U>, Error>
    where
        S: StatementLike + 'static,
        P: Into<Params> + Send + 'static,
        T: FromRow + Send + 'static,
        F: FnMut(T) -> U + Send + 'static,
        U: Send + 'static,
    {
        self.tracked(move |conn| conn.exec_map(statement, params, f))
            .await
    }

    /// [`Queryable::exec_fold`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn exec_fold<T, S, P, U, F>(
        &mut self,
        statement: S,
        params: P,
        init: U,
        f: F,
    ) -> Result<U, Error>
    where
        S: StatementLike + 'static,
        P: Into<Params> + Send + 'static,
        T: FromRow + Send + 'static,
        F: FnMut(U, T) -> U + Send + 'static,
        U: Send + 'static,
    {
        self.tracked(move |conn| conn.exec_fold(statement, params, init, f))
            .await
    }

    /// [`Queryable::exec_drop`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn exec_drop<S, P>(&mut self, statement: S, params: P) -> Result<(), Error>
    where
        S: StatementLike + 'static,
        P: Into<Params> + Send + 'static,
    {
        self.tracked(move |conn| conn.exec_drop(statement, params))
            .await
    }

    /// [`Queryable::exec_batch`], tracked: the whole batch is one tracked
    /// statement.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn exec_batch<S, P, I>(&mut self, statement: S, params: I) -> Result<(), Error>
    where
        S: StatementLike + 'static,
        I: IntoIterator<Item = P> + Send + 'static,
        I::IntoIter: Send,
        P: Into<Params> + Send,
    {
        self.tracked(move |conn| conn.exec_batch(statement, params))
            .await
    }

    /// [`Queryable::prep`], tracked. The driver keeps its own cache of
    /// prepared statements (`stmt_cache_size` in its options).
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn prep<Q>(&mut self, query: Q) -> Result<Statement, Error>
    where
        Q: mysql_async::prelude::AsQuery + 'static,
    {
        self.tracked(move |conn| conn.prep(query)).await
    }

    /// The statement prepared for `query` on this session, from the
    /// connection's cache when it holds it (no round trip), else prepared
    /// (tracked) and cached.
    ///
    /// The cache holds at most
    /// [`ManagerConfig::statement_cache_capacity`](crate::ManagerConfig::statement_cache_capacity)
    /// statements (100 by default), evicting the least recently used. It is
    /// emptied when the session is reset (`COM_RESET_CONNECTION` drops the
    /// server's prepared statements). [`MySqlManager::stats`](crate::MySqlManager::stats)
    /// counts hits and misses. Keep the driver's own cache
    /// (`stmt_cache_size`) at least as large, or an evicted statement of
    /// the driver's is closed under this cache.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query); a prepare dropped half-way caches nothing.
    pub async fn prepare_cached(&mut self, query: &str) -> Result<Statement, Error> {
        if let Some(statement) = self.cache.get(query) {
            self.counters.cache_hit();
            return Ok(statement);
        }
        self.counters.cache_miss();
        let statement = self.prep(query.to_owned()).await?;
        self.cache.insert(query.to_owned(), statement.clone());
        Ok(statement)
    }

    /// [`Queryable::close`], tracked: deallocates `statement` on the server.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn close(&mut self, statement: Statement) -> Result<(), Error> {
        self.tracked(move |conn| conn.close(statement)).await
    }

    /// Begins a transaction (`START TRANSACTION`), tracked, with the
    /// session's defaults; see [`MySqlTransaction`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the `START TRANSACTION` in flight: the
    /// pool stops it and rolls the session back when the connection comes
    /// back.
    pub async fn transaction(&mut self) -> Result<MySqlTransaction<'_>, Error> {
        self.build_transaction().start().await
    }

    /// A transaction with options: isolation level, read-only, consistent
    /// snapshot.
    pub fn build_transaction(&mut self) -> TransactionBuilder<'_> {
        TransactionBuilder::new(self)
    }

    /// Runs `statement` as a tracked statement: after an abandoned one and
    /// any rollback owed, bounded by the request's deadline (on the server
    /// and on the client), and kept with the connection if dropped
    /// half-way.
    pub(crate) async fn tracked<T, F>(&mut self, statement: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> DriverFuture<'c, T> + Send + 'static,
    {
        self.tracked_as(Operation::Statement, statement).await
    }

    pub(crate) async fn tracked_as<T, F>(
        &mut self,
        operation: Operation,
        statement: F,
    ) -> Result<T, Error>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> DriverFuture<'c, T> + Send + 'static,
    {
        self.settle().await;
        let wanted = Bound::at(self.deadline);
        // MariaDB's SET is not transactional: a rollback leaves it.
        let change = self.bound.change(wanted, false);
        let set = change.map(|bound| deadline::statement(bound, self.restore.as_ref()));
        if change.is_some() {
            self.counters.bound_changed();
        }
        let owed = self.pending.map(Pending::statement);
        let limit = self.deadline.map(|deadline| deadline + self.grace);
        let grace = self.grace;
        let Some(mut conn) = self.conn.take() else {
            // Only a holder that kept using a connection its tracked
            // statement lost to a panic gets here.
            return Err(Error::driver(operation)(
                mysql_async::DriverError::ConnectionClosed.into(),
            ));
        };
        let flight = InFlight {
            owner: self,
            bound_changing: change.is_some(),
            statement: Some(Box::pin(async move {
                if let Some(owed) = owed {
                    if let Err(e) = conn.query_drop(owed).await {
                        return (conn, None, Err(e), false);
                    }
                }
                // A failed SET leaves the statement unbounded, not failed.
                let set = match set {
                    None => None,
                    Some((sql, None)) => Some(conn.query_drop(sql).await),
                    Some((sql, Some(value))) => Some(conn.exec_drop(sql, (value,)).await),
                };
                let result = statement(&mut conn).await;
                (conn, set, result, true)
            })),
        };
        let run = flight.run();
        let (set, result, paid) = match limit {
            Some(limit) => match tokio::time::timeout_at(limit, run).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    // The statement (and the connection) went with the
                    // dropped flight: the pool stops it on return.
                    self.counters.timed_out();
                    return Err(Error::no_answer(operation, grace));
                }
            },
            None => run.await,
        };
        if paid {
            self.pending = None;
        }
        match set {
            None => {}
            Some(Ok(())) => self.bound.set(wanted, false),
            Some(Err(mysql_async::Error::Server(e))) if e.code == UNKNOWN_VARIABLE => {
                self.bound = SessionBound::Unsupported;
            }
            Some(Err(_)) => self.bound.forget(),
        }
        if let (Err(mysql_async::Error::Server(e)), Bound::Millis(_)) = (&result, wanted) {
            if e.code == STATEMENT_TIMEOUT {
                self.counters.stopped_by_deadline();
            }
        }
        result.map_err(Error::driver(operation))
    }

    /// Whether the session may be inside a transaction: the server's last
    /// OK packet said so (`SERVER_STATUS_IN_TRANS`), or there was none
    /// since the last error (the driver forgets the status then), or a
    /// dropped transaction owes a rollback.
    pub(crate) fn may_be_in_transaction(&self) -> bool {
        if self.pending.is_some() {
            return true;
        }
        match self.conn.as_ref().map(Conn::last_ok_packet) {
            Some(Some(ok)) => ok
                .status_flags()
                .contains(StatusFlags::SERVER_STATUS_IN_TRANS),
            // No OK packet since the last error, or the driver's
            // connection is away (with an abandoned statement).
            _ => true,
        }
    }

    /// The session is out of any transaction (the pool rolled it back).
    pub(crate) fn rolled_back(&mut self) {
        self.pending = None;
    }

    /// Waits for a statement this holder abandoned, if any, and takes the
    /// driver's connection back.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the abandoned statement in place.
    pub(crate) async fn settle(&mut self) {
        let Some(abandoned) = self.abandoned.as_mut() else {
            return;
        };
        let conn = abandoned.await;
        self.abandoned = None;
        self.conn = Some(conn);
    }

    /// Whether a tracked statement was abandoned and is not finished yet.
    pub(crate) fn has_abandoned(&self) -> bool {
        self.abandoned.is_some()
    }

    /// Whether the driver saw the connection fail; a connection whose
    /// abandoned statement still finishes is not known to be.
    pub(crate) fn is_disconnected(&self) -> bool {
        self.conn.as_ref().is_some_and(Conn::is_disconnected)
    }

    /// The driver's connection, once any abandoned statement has finished.
    pub(crate) async fn driver(&mut self) -> Option<&mut Conn> {
        self.settle().await;
        self.conn.as_mut()
    }

    /// A request takes the connection.
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// The session was reset: whatever it carried is gone, prepared
    /// statements included.
    pub(crate) fn session_reset(&mut self) {
        self.restore = None;
        self.cache.clear();
        if self.bound != SessionBound::Unsupported {
            self.bound = SessionBound::Known(Bound::Default);
        }
    }

    /// Settings put `max_statement_time = value` on the session: a request
    /// without a deadline gets that value back instead of the default.
    pub(crate) fn settings_bound(&mut self, value: Value) {
        self.restore = Some(value);
        self.bound.forget();
    }

    fn present(&self) -> &Conn {
        match &self.conn {
            Some(conn) => conn,
            None => panic!("{}", self.absent()),
        }
    }

    fn absent(&self) -> &'static str {
        if self.abandoned.is_some() {
            "a tracked statement abandoned on this connection is still finishing: \
             run a tracked statement first, which waits for it"
        } else {
            "the connection was lost with a tracked statement that panicked"
        }
    }
}

/// A tracked statement between its first poll and its completion; dropped
/// before that, it hands the statement and the connection to its owner.
struct InFlight<'a, T: 'static> {
    owner: &'a mut MySqlConnection,
    /// A `SET` of the session's bound goes first.
    bound_changing: bool,
    #[allow(clippy::type_complexity)]
    statement: Option<
        Pin<
            Box<
                dyn Future<
                        Output = (
                            Conn,
                            Option<mysql_async::Result<()>>,
                            mysql_async::Result<T>,
                            // Whether the rollback owed (if any) went through.
                            bool,
                        ),
                    > + Send,
            >,
        >,
    >,
}

impl<T: Send + 'static> InFlight<'_, T> {
    async fn run(
        mut self,
    ) -> (
        Option<mysql_async::Result<()>>,
        mysql_async::Result<T>,
        bool,
    ) {
        let (conn, set, result, paid) = poll_fn(|cx| match self.statement.as_mut() {
            Some(statement) => statement.as_mut().poll(cx),
            None => Poll::Pending,
        })
        .await;
        self.statement = None;
        self.owner.conn = Some(conn);
        (set, result, paid)
    }
}

impl<T: 'static> Drop for InFlight<'_, T> {
    fn drop(&mut self) {
        let Some(statement) = self.statement.take() else {
            return;
        };
        self.owner.counters.abandoned();
        // Whether the SET went through is not known any more.
        if self.bound_changing {
            self.owner.bound.forget();
        }
        self.owner.abandoned = Some(Box::pin(async move { statement.await.0 }));
    }
}

impl Deref for MySqlConnection {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        self.present()
    }
}

impl DerefMut for MySqlConnection {
    fn deref_mut(&mut self) -> &mut Conn {
        let absent = self.absent();
        match &mut self.conn {
            Some(conn) => conn,
            None => panic!("{absent}"),
        }
    }
}

impl fmt::Debug for MySqlConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlConnection")
            .field("id", &self.id)
            .field("disconnected", &self.is_disconnected())
            .field("abandoned_statement", &self.abandoned.is_some())
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl MySqlConnection {
    /// Says goodbye (`COM_QUIT`) and waits until the server has closed the
    /// session. A statement abandoned on the connection is read to its end
    /// first (the pool has cancelled it): the server holds the session
    /// until then, whatever the socket does. Each step waits at most
    /// `close_grace`; past it the socket is cut.
    pub(crate) async fn quit(mut self) {
        let grace = self.close_grace;
        let conn = match (self.conn.take(), self.abandoned.take()) {
            (Some(conn), _) => Some(conn),
            (None, Some(abandoned)) => tokio::time::timeout(grace, abandoned).await.ok(),
            (None, None) => None,
        };
        if let Some(conn) = conn {
            let _ = tokio::time::timeout(grace, conn.disconnect()).await;
        }
    }
}

impl Drop for MySqlConnection {
    fn drop(&mut self) {
        // An abandoned statement goes with its box: its socket closes.
        let Some(conn) = self.conn.take() else {
            return;
        };
        // Without a runtime, dropping the driver's connection just closes
        // the socket.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let grace = self.close_grace;
            // If the goodbye times out, the half-done disconnect is dropped
            // with the connection marked disconnected: the socket closes.
            runtime.spawn(async move {
                let _ = tokio::time::timeout(grace, conn.disconnect()).await;
            });
        }
    }
}
