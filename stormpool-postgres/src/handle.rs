//! [`Tracked`]: the tracked statement methods a pooled connection
//! ([`PgConnection`](crate::PgConnection)) and a transaction
//! ([`PgTransaction`](crate::PgTransaction)) share.

use bytes::Buf;
use tokio_postgres::types::{BorrowToSql, ToSql, Type};
#[cfg(doc)]
use tokio_postgres::Client;
use tokio_postgres::{Row, SimpleQueryMessage, Statement};

use crate::error::Error;
use crate::statements::{CopyOutStream, RowStream, SimpleQueryStream, Statements};
use crate::tracked::CopyInSink;
use crate::unnamed::ToPgStatement;

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];
type TypedParams<'p> = &'p [(&'p (dyn ToSql + Sync), Type)];

/// A session's tracked statements, over what holds the session `S`:
/// [`PgConnection`](crate::PgConnection) is a pooled connection's,
/// [`PgTransaction`](crate::PgTransaction) a transaction's (or a
/// savepoint's), with the same statement methods, tracked the same way.
///
/// The statement methods take the same arguments and return the same
/// values as the tokio-postgres [`Client`]'s methods of the same name, with
/// this crate's [`Error`]: see [`PgConnection`](crate::PgConnection) for
/// what tracking does.
pub struct Tracked<S>(pub(crate) S);

/// What holds a tracked session: a pooled connection or a transaction.
pub trait Scope: sealed::Sealed {
    #[doc(hidden)]
    fn statements(&self) -> Statements<'_>;
}

pub(crate) mod sealed {
    /// Only this crate's scopes.
    pub trait Sealed {}
}

impl<S: Scope> Tracked<S> {
    fn statements(&self) -> Statements<'_> {
        self.0.statements()
    }

    /// [`Client::query`], tracked.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the statement running on the server; the
    /// pool cancels it (and rolls back an open transaction) when the
    /// connection comes back.
    pub async fn query<T>(&self, statement: &T, params: Params<'_>) -> Result<Vec<Row>, Error>
    where
        T: ?Sized + ToPgStatement,
    {
        self.statements().query(statement, params).await
    }

    /// [`Client::query_one`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn query_one<T>(&self, statement: &T, params: Params<'_>) -> Result<Row, Error>
    where
        T: ?Sized + ToPgStatement,
    {
        self.statements().query_one(statement, params).await
    }

    /// [`Client::query_opt`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn query_opt<T>(
        &self,
        statement: &T,
        params: Params<'_>,
    ) -> Result<Option<Row>, Error>
    where
        T: ?Sized + ToPgStatement,
    {
        self.statements().query_opt(statement, params).await
    }

    /// [`Client::query_raw`], tracked: the statement is in flight until the
    /// stream ends.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query), for the future and for the stream.
    pub async fn query_raw<T, P, I>(&self, statement: &T, params: I) -> Result<RowStream<'_>, Error>
    where
        T: ?Sized + ToPgStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
        I::IntoIter: ExactSizeIterator,
    {
        self.statements().query_raw(statement, params).await
    }

    /// [`Client::query_typed`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn query_typed(
        &self,
        query: &str,
        params: TypedParams<'_>,
    ) -> Result<Vec<Row>, Error> {
        self.statements().query_typed(query, params).await
    }

    /// [`Client::query_typed_one`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn query_typed_one(
        &self,
        query: &str,
        params: TypedParams<'_>,
    ) -> Result<Row, Error> {
        self.statements().query_typed_one(query, params).await
    }

    /// [`Client::query_typed_opt`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn query_typed_opt(
        &self,
        query: &str,
        params: TypedParams<'_>,
    ) -> Result<Option<Row>, Error> {
        self.statements().query_typed_opt(query, params).await
    }

    /// [`Client::query_typed_raw`], tracked: the statement is in flight
    /// until the stream ends.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query), for the future and for the stream.
    pub async fn query_typed_raw<P, I>(
        &self,
        query: &str,
        params: I,
    ) -> Result<RowStream<'_>, Error>
    where
        P: BorrowToSql,
        I: IntoIterator<Item = (P, Type)>,
    {
        self.statements().query_typed_raw(query, params).await
    }

    /// [`Client::execute`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn execute<T>(&self, statement: &T, params: Params<'_>) -> Result<u64, Error>
    where
        T: ?Sized + ToPgStatement,
    {
        self.statements().execute(statement, params).await
    }

    /// [`Client::execute_typed`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn execute_typed(&self, query: &str, params: TypedParams<'_>) -> Result<u64, Error> {
        self.statements().execute_typed(query, params).await
    }

    /// [`Client::execute_raw`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn execute_raw<T, P, I>(&self, statement: &T, params: I) -> Result<u64, Error>
    where
        T: ?Sized + ToPgStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
        I::IntoIter: ExactSizeIterator,
    {
        self.statements().execute_raw(statement, params).await
    }

    /// [`Client::simple_query`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn simple_query(&self, query: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        self.statements().simple_query(query).await
    }

    /// [`Client::simple_query_raw`], tracked: the statements are in flight
    /// until the stream ends.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query), for the future and for the stream.
    pub async fn simple_query_raw(&self, query: &str) -> Result<SimpleQueryStream<'_>, Error> {
        self.statements().simple_query_raw(query).await
    }

    /// [`Client::batch_execute`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn batch_execute(&self, query: &str) -> Result<(), Error> {
        self.statements().batch_execute(query).await
    }

    /// [`Client::prepare`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn prepare(&self, query: &str) -> Result<Statement, Error> {
        self.statements().prepare_typed(query, &[]).await
    }

    /// [`Client::prepare_typed`], tracked.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn prepare_typed(&self, query: &str, types: &[Type]) -> Result<Statement, Error> {
        self.statements().prepare_typed(query, types).await
    }

    /// The statement prepared for `query` on this session, from the
    /// connection's cache when it holds it (no round trip), else prepared
    /// (tracked) and cached.
    ///
    /// The cache holds at most
    /// [`ManagerConfig::statement_cache_capacity`](crate::ManagerConfig::statement_cache_capacity)
    /// statements (100 by default), evicting the least recently used, which
    /// is closed on the server. It is emptied when the session is reset
    /// (`DISCARD ALL` drops the server's prepared statements).
    /// [`PgManager::stats`](crate::PgManager::stats) counts hits and misses.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query); a prepare dropped half-way caches nothing.
    pub async fn prepare_cached(&self, query: &str) -> Result<Statement, Error> {
        self.statements().prepare_typed_cached(query, &[]).await
    }

    /// [`prepare_cached`](Self::prepare_cached) with parameter types
    /// ([`Client::prepare_typed`]); the types are part of the cache's key.
    ///
    /// # Cancel safety
    ///
    /// As [`prepare_cached`](Self::prepare_cached).
    pub async fn prepare_typed_cached(
        &self,
        query: &str,
        types: &[Type],
    ) -> Result<Statement, Error> {
        self.statements().prepare_typed_cached(query, types).await
    }

    /// [`Client::copy_in`], tracked: the statement is in flight until the
    /// sink is [finished](CopyInSink::finish).
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query); dropping the sink aborts the copy.
    pub async fn copy_in<T, U>(&self, statement: &T) -> Result<CopyInSink<'_, U>, Error>
    where
        T: ?Sized + ToPgStatement,
        U: Buf + Send + 'static,
    {
        self.statements().copy_in(statement).await
    }

    /// [`Client::copy_out`], tracked: the statement is in flight until the
    /// stream ends.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query), for the future and for the stream.
    pub async fn copy_out<T>(&self, statement: &T) -> Result<CopyOutStream<'_>, Error>
    where
        T: ?Sized + ToPgStatement,
    {
        self.statements().copy_out(statement).await
    }
}
