//! [`DieselConnection`]: the pooled connection, an `AsyncConnection` whose
//! statements are tracked.

use std::fmt;

use diesel::connection::{CacheSize, Instrumentation, TransactionManagerStatus};
use diesel::query_builder::{AsQuery, QueryFragment, QueryId};
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncConnectionCore, SimpleAsyncConnection,
    TransactionManager,
};
use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::driver::Driver;
use crate::tracked::{Flight, TrackedRows, Tracking};

/// A pooled diesel-async connection: [`AsyncPgConnection`](diesel_async::AsyncPgConnection)
/// or [`AsyncMysqlConnection`](diesel_async::AsyncMysqlConnection), as an
/// [`AsyncConnection`] whose statements are *tracked*.
///
/// The pool's guard is an `AsyncConnection` too (diesel-async implements
/// it for whatever dereferences to one), so diesel's query builder takes
/// it as it is: `users.load::<User>(&mut conn).await`, and
/// `conn.transaction(..)` works as on a bare connection. Every statement
/// sent that way
///
/// - when its future is dropped before the server answered (the request
///   gave up), is stopped on the server when the connection comes back to
///   the pool: with the protocol's cancel request (PostgreSQL), after which
///   the connection is handed to nobody until the server is idle on it; or
///   with `KILL QUERY` (MySQL), after which the connection is closed, since
///   mysql_async cannot finish a statement whose future was dropped;
/// - is bounded on the client at the request's deadline plus
///   [`ManagerConfig::statement_grace`](crate::ManagerConfig::statement_grace);
/// - on PostgreSQL, is bounded on the server by the request's deadline:
///   `SET statement_timeout`, pipelined ahead of the statement when the
///   bound changes.
///
/// A statement counts as answered at its first row. The driver's
/// connection is reached through [`raw_mut`](Self::raw_mut), untracked.
pub struct DieselConnection<C: Driver> {
    raw: C,
    session: C::Token,
    pub(crate) track: Tracking,
}

impl<C: Driver> DieselConnection<C> {
    pub(crate) fn new(raw: C, session: C::Token, track: Tracking) -> Self {
        DieselConnection {
            raw,
            session,
            track,
        }
    }

    /// What the manager's cancel uses to find the session, read at
    /// connect: PostgreSQL's cancel key, MySQL's connection id.
    pub fn session(&self) -> &C::Token {
        &self.session
    }

    /// The deadline of the request holding the connection, as the pool
    /// passed it on; `None` when the request set none or the pool does not
    /// propagate deadlines.
    pub fn deadline(&self) -> Option<Instant> {
        self.track.deadline
    }

    /// The driver's connection, for what this type does not offer.
    /// Statements sent through it are neither bounded nor stopped when
    /// abandoned, and the connection is checked for an open transaction
    /// when it comes back.
    pub fn raw_mut(&mut self) -> &mut C {
        self.track.suspect = true;
        &mut self.raw
    }

    /// The driver's connection, read-only.
    pub fn raw(&self) -> &C {
        &self.raw
    }

    pub(crate) fn parts(&mut self) -> (&mut C, &mut Tracking) {
        (&mut self.raw, &mut self.track)
    }

    /// Starts tracking a statement of text `sql` (if hand-written).
    fn flight<'t>(raw: &mut C, track: &'t mut Tracking, sql: Option<&str>) -> Flight<'t> {
        let in_transaction = !matches!(
            AnsiTransactionManager::transaction_manager_status_mut(raw).transaction_depth(),
            Ok(None)
        );
        Flight::start(
            track,
            sql,
            C::may_open_transaction,
            in_transaction,
            C::is_bound_timeout,
        )
    }

    /// Whether diesel's transaction manager has a transaction open.
    pub(crate) fn transaction_open(&mut self) -> bool {
        matches!(
            AnsiTransactionManager::transaction_manager_status_mut(&mut self.raw)
                .transaction_depth(),
            Ok(Some(_))
        )
    }
}

impl<C: Driver> fmt::Debug for DieselConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DieselConnection")
            .field("session", &self.session)
            .field("deadline", &self.track.deadline)
            .field("abandoned_statement", &self.track.abandoned)
            .finish_non_exhaustive()
    }
}

impl<C: Driver> SimpleAsyncConnection for DieselConnection<C> {
    async fn batch_execute(&mut self, query: &str) -> diesel::QueryResult<()> {
        let (raw, track) = self.parts();
        let flight = Self::flight(raw, track, Some(query));
        C::batch_tracked(raw, flight, query).await
    }
}

impl<C: Driver> AsyncConnectionCore for DieselConnection<C> {
    type ExecuteFuture<'conn, 'query> = BoxFuture<'conn, diesel::QueryResult<usize>>;
    type LoadFuture<'conn, 'query> =
        BoxFuture<'conn, diesel::QueryResult<Self::Stream<'conn, 'query>>>;
    type Stream<'conn, 'query> = TrackedRows<'conn, C::Stream<'conn, 'query>>;
    type Row<'conn, 'query> = C::Row<'conn, 'query>;
    type Backend = C::Backend;

    fn load<'conn, 'query, T>(&'conn mut self, source: T) -> Self::LoadFuture<'conn, 'query>
    where
        T: AsQuery + 'query,
        T::Query: QueryFragment<Self::Backend> + QueryId + 'query,
    {
        let query = source.as_query();
        let sql = C::hand_written(&query);
        let (raw, track) = self.parts();
        let flight = Self::flight(raw, track, sql.as_deref());
        C::load_tracked(raw, flight, query)
    }

    fn execute_returning_count<'conn, 'query, T>(
        &'conn mut self,
        source: T,
    ) -> Self::ExecuteFuture<'conn, 'query>
    where
        T: QueryFragment<Self::Backend> + QueryId + 'query,
    {
        let sql = C::hand_written(&source);
        let (raw, track) = self.parts();
        let flight = Self::flight(raw, track, sql.as_deref());
        C::execute_tracked(raw, flight, source)
    }
}

impl<C: Driver> AsyncConnection for DieselConnection<C> {
    /// diesel-async's own, sending its `BEGIN`, `COMMIT` and `ROLLBACK`
    /// through this connection's tracked statements, with its state kept by
    /// the driver's connection.
    type TransactionManager = AnsiTransactionManager;

    /// Connections come from the pool: this always fails.
    async fn establish(_database_url: &str) -> diesel::ConnectionResult<Self> {
        Err(diesel::ConnectionError::BadConnection(
            "a pooled connection comes from its pool: use DieselManager".to_owned(),
        ))
    }

    fn transaction_state(&mut self) -> &mut AnsiTransactionManager {
        self.raw.transaction_state()
    }

    fn instrumentation(&mut self) -> &mut dyn Instrumentation {
        self.raw.instrumentation()
    }

    fn set_instrumentation(&mut self, instrumentation: impl Instrumentation) {
        self.raw.set_instrumentation(instrumentation);
    }

    fn set_prepared_statement_cache_size(&mut self, size: CacheSize) {
        self.raw.set_prepared_statement_cache_size(size);
    }
}

/// The transaction manager's status of the driver's connection.
pub(crate) fn status<C: Driver>(raw: &mut C) -> &mut TransactionManagerStatus {
    AnsiTransactionManager::transaction_manager_status_mut(raw)
}
