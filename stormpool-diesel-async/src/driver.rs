//! What differs between the databases: [`Driver`], implemented for
//! diesel-async's [`AsyncPgConnection`](diesel_async::AsyncPgConnection)
//! (feature `postgres`) and [`AsyncMysqlConnection`](diesel_async::AsyncMysqlConnection)
//! (feature `mysql`).

use std::fmt;

use diesel::backend::Backend;
use diesel::query_builder::{AsQuery, QueryBuilder, QueryFragment, QueryId};
use diesel_async::{AnsiTransactionManager, AsyncConnection, AsyncConnectionCore};
use futures_util::future::BoxFuture;

use crate::error::Error;
use crate::tracked::{Flight, TrackedRows};

/// A diesel-async connection this crate has a manager for. Sealed: what the
/// manager needs of each database is this crate's business.
pub trait Driver:
    AsyncConnection<TransactionManager = AnsiTransactionManager> + sealed::Sealed
{
}

impl<C> Driver for C where
    C: AsyncConnection<TransactionManager = AnsiTransactionManager> + sealed::Sealed
{
}

/// The SQL text of `query`, unless its type says diesel's query builder
/// made it (its query id is static): what a driver's
/// [`hand_written`](sealed::Sealed::hand_written) returns.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) fn hand_written<DB, Q>(query: &Q) -> Option<String>
where
    DB: Backend + Default,
    DB::QueryBuilder: Default,
    Q: QueryFragment<DB> + QueryId,
{
    if Q::HAS_STATIC_QUERY_ID {
        return None;
    }
    let mut builder = DB::QueryBuilder::default();
    query.to_sql(&mut builder, &DB::default()).ok()?;
    Some(builder.finish())
}

pub(crate) mod sealed {
    use super::*;

    /// The per-database half of the adapter. Public in a private module:
    /// nameable by [`Driver`]'s bound, not by users.
    pub trait Sealed:
        AsyncConnection<TransactionManager = AnsiTransactionManager> + 'static
    {
        /// Where to connect (`tokio_postgres::Config`, `mysql_async::Opts`).
        type Target: Clone + Send + Sync + 'static;
        /// What a cancel needs to find the session again.
        type Token: fmt::Debug + Clone + Send + Sync + 'static;

        /// Whether the adapter bounds statements on the server with the
        /// request's deadline.
        const SERVER_BOUND: bool;

        /// Reads a URL, naming no value of it in the error.
        fn target_from_url(url: &str) -> Result<Self::Target, Error>;

        /// `host:port`, for connect errors.
        fn describe_target(target: &Self::Target) -> String;

        /// Chosen fields of the target, never the password.
        fn debug_target(target: &Self::Target, f: &mut fmt::DebugStruct<'_, '_>);

        /// Opens a connection and reads what a cancel needs.
        fn connect(target: Self::Target) -> BoxFuture<'static, Result<(Self, Self::Token), Error>>;

        /// Stops the statement running on `token`'s session, returning once
        /// the server has acted on it.
        fn cancel(
            target: Self::Target,
            token: Self::Token,
        ) -> BoxFuture<'static, Result<(), Error>>;

        /// Whether `sql` may leave the session inside a transaction.
        fn may_open_transaction(sql: &str) -> bool;

        /// Whether the server stopped a statement at its time bound.
        fn is_bound_timeout(e: &diesel::result::Error) -> bool;

        /// The SQL text of a query, when its type does not tell that
        /// diesel's query builder made it.
        fn hand_written<Q: QueryFragment<Self::Backend> + QueryId>(query: &Q) -> Option<String>;

        /// Whether the connection survives a statement whose future was
        /// dropped (tokio-postgres keeps the connection in step; mysql_async
        /// marks it disconnected).
        const SURVIVES_ABANDON: bool;

        /// `load`, with the `SET` of the bound (if any) sent ahead.
        #[allow(clippy::type_complexity)]
        fn load_tracked<'conn, 'query, T>(
            conn: &'conn mut Self,
            flight: Flight<'conn>,
            source: T,
        ) -> BoxFuture<'conn, diesel::QueryResult<TrackedRows<'conn, Self::Stream<'conn, 'query>>>>
        where
            T: AsQuery + 'query,
            T::Query: QueryFragment<Self::Backend> + QueryId + 'query;

        /// `execute_returning_count`, with the `SET` of the bound (if any)
        /// sent ahead.
        fn execute_tracked<'conn, 'query, T>(
            conn: &'conn mut Self,
            flight: Flight<'conn>,
            source: T,
        ) -> BoxFuture<'conn, diesel::QueryResult<usize>>
        where
            T: QueryFragment<Self::Backend> + QueryId + 'query;

        /// `batch_execute`, with the `SET` of the bound (if any) sent ahead.
        fn batch_tracked<'conn>(
            conn: &'conn mut Self,
            flight: Flight<'conn>,
            query: &'conn str,
        ) -> BoxFuture<'conn, diesel::QueryResult<()>>;

        /// Waits until the server is idle on the session.
        fn drain(&mut self) -> BoxFuture<'_, diesel::QueryResult<()>>;

        /// Asks the server whether the session is in a transaction, and
        /// rolls it back if it is; `Ok(true)` when it did.
        fn end_transaction(&mut self) -> BoxFuture<'_, diesel::QueryResult<bool>>;
    }
}

/// `<C as AsyncConnectionCore>::Stream`, for signatures.
#[allow(dead_code)]
pub(crate) type RowsOf<'conn, 'query, C> = <C as AsyncConnectionCore>::Stream<'conn, 'query>;
