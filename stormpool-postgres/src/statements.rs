//! The statement methods, written once for the pooled connection and its
//! transactions: each wraps the driver's method of the same name in a
//! [tracked](crate::tracked) statement.

use std::sync::Mutex;

use bytes::Buf;
use tokio_postgres::types::{BorrowToSql, ToSql, Type};
use tokio_postgres::{Client, Row, SimpleQueryMessage, Statement, ToStatement};

use crate::error::{Error, Operation};
use crate::tracked::{CopyInSink, TrackedStream, Tracker};

/// A connection's prepared statements, by text (and parameter types).
pub(crate) type Cache = stormpool::statements::StatementCache<String, Statement>;

/// A stream of rows from [`query_raw`](crate::PgConnection::query_raw) or
/// [`query_typed_raw`](crate::PgConnection::query_typed_raw).
pub type RowStream<'a> = TrackedStream<'a, tokio_postgres::RowStream>;
/// A stream of messages from [`simple_query_raw`](crate::PgConnection::simple_query_raw).
pub type SimpleQueryStream<'a> = TrackedStream<'a, tokio_postgres::SimpleQueryStream>;
/// A stream of `COPY TO STDOUT` data from [`copy_out`](crate::PgConnection::copy_out).
pub type CopyOutStream<'a> = TrackedStream<'a, tokio_postgres::CopyOutStream>;

/// Where a statement goes and how it is tracked.
#[derive(Clone, Copy)]
pub(crate) struct Statements<'a> {
    pub(crate) client: &'a Client,
    pub(crate) tracker: &'a Tracker,
    pub(crate) cache: &'a Mutex<Cache>,
    /// Inside a transaction of the adapter's.
    pub(crate) in_transaction: bool,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];
type TypedParams<'p> = &'p [(&'p (dyn ToSql + Sync), Type)];

impl<'a> Statements<'a> {
    async fn run<R>(
        self,
        statement: impl std::future::Future<Output = Result<R, tokio_postgres::Error>>,
    ) -> Result<R, Error> {
        self.tracker
            .run(
                Some(self.client),
                self.in_transaction,
                Operation::Statement,
                statement,
            )
            .await
    }

    pub(crate) async fn query<T>(self, statement: &T, params: Params<'_>) -> Result<Vec<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.run(self.client.query(statement, params)).await
    }

    pub(crate) async fn query_one<T>(self, statement: &T, params: Params<'_>) -> Result<Row, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.run(self.client.query_one(statement, params)).await
    }

    pub(crate) async fn query_opt<T>(
        self,
        statement: &T,
        params: Params<'_>,
    ) -> Result<Option<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.run(self.client.query_opt(statement, params)).await
    }

    pub(crate) async fn query_raw<T, P, I>(
        self,
        statement: &T,
        params: I,
    ) -> Result<RowStream<'a>, Error>
    where
        T: ?Sized + ToStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
        I::IntoIter: ExactSizeIterator,
    {
        let (rows, flight) = self
            .tracker
            .run_keep(
                Some(self.client),
                self.in_transaction,
                Operation::Statement,
                self.client.query_raw(statement, params),
            )
            .await?;
        Ok(TrackedStream::new(rows, flight, Operation::Statement))
    }

    pub(crate) async fn query_typed(
        self,
        query: &str,
        params: TypedParams<'_>,
    ) -> Result<Vec<Row>, Error> {
        self.run(self.client.query_typed(query, params)).await
    }

    pub(crate) async fn query_typed_one(
        self,
        query: &str,
        params: TypedParams<'_>,
    ) -> Result<Row, Error> {
        self.run(self.client.query_typed_one(query, params)).await
    }

    pub(crate) async fn query_typed_opt(
        self,
        query: &str,
        params: TypedParams<'_>,
    ) -> Result<Option<Row>, Error> {
        self.run(self.client.query_typed_opt(query, params)).await
    }

    pub(crate) async fn query_typed_raw<P, I>(
        self,
        query: &str,
        params: I,
    ) -> Result<RowStream<'a>, Error>
    where
        P: BorrowToSql,
        I: IntoIterator<Item = (P, Type)>,
    {
        let (rows, flight) = self
            .tracker
            .run_keep(
                Some(self.client),
                self.in_transaction,
                Operation::Statement,
                self.client.query_typed_raw(query, params),
            )
            .await?;
        Ok(TrackedStream::new(rows, flight, Operation::Statement))
    }

    pub(crate) async fn execute<T>(self, statement: &T, params: Params<'_>) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.run(self.client.execute(statement, params)).await
    }

    pub(crate) async fn execute_typed(
        self,
        query: &str,
        params: TypedParams<'_>,
    ) -> Result<u64, Error> {
        self.run(self.client.execute_typed(query, params)).await
    }

    pub(crate) async fn execute_raw<T, P, I>(self, statement: &T, params: I) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
        I::IntoIter: ExactSizeIterator,
    {
        self.run(self.client.execute_raw(statement, params)).await
    }

    pub(crate) async fn simple_query(self, query: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        self.run(self.client.simple_query(query)).await
    }

    pub(crate) async fn simple_query_raw(
        self,
        query: &str,
    ) -> Result<SimpleQueryStream<'a>, Error> {
        let (messages, flight) = self
            .tracker
            .run_keep(
                Some(self.client),
                self.in_transaction,
                Operation::Statement,
                self.client.simple_query_raw(query),
            )
            .await?;
        Ok(TrackedStream::new(messages, flight, Operation::Statement))
    }

    pub(crate) async fn batch_execute(self, query: &str) -> Result<(), Error> {
        self.run(self.client.batch_execute(query)).await
    }

    pub(crate) async fn prepare_typed(
        self,
        query: &str,
        types: &[Type],
    ) -> Result<Statement, Error> {
        self.run(self.client.prepare_typed(query, types)).await
    }

    pub(crate) async fn prepare_typed_cached(
        self,
        query: &str,
        types: &[Type],
    ) -> Result<Statement, Error> {
        let key = cache_key(query, types);
        let cached = self.lock_cache().get(&*key);
        if let Some(statement) = cached {
            self.tracker.counters.cache_hit();
            return Ok(statement);
        }
        self.tracker.counters.cache_miss();
        let statement = self.prepare_typed(query, types).await?;
        // An evicted statement is closed on the server when its last
        // handle drops.
        let evicted = self
            .lock_cache()
            .insert(key.into_owned(), statement.clone());
        drop(evicted);
        Ok(statement)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'a, Cache> {
        // Never held across an await, and nothing in it can panic half-way
        // through an update: a poisoned lock still holds a sound cache.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) async fn copy_in<T, U>(self, statement: &T) -> Result<CopyInSink<'a, U>, Error>
    where
        T: ?Sized + ToStatement,
        U: Buf + Send + 'static,
    {
        let (sink, flight) = self
            .tracker
            .run_keep(
                Some(self.client),
                self.in_transaction,
                Operation::Statement,
                self.client.copy_in(statement),
            )
            .await?;
        Ok(CopyInSink::new(sink, flight))
    }

    pub(crate) async fn copy_out<T>(self, statement: &T) -> Result<CopyOutStream<'a>, Error>
    where
        T: ?Sized + ToStatement,
    {
        let (data, flight) = self
            .tracker
            .run_keep(
                Some(self.client),
                self.in_transaction,
                Operation::Statement,
                self.client.copy_out(statement),
            )
            .await?;
        Ok(TrackedStream::new(data, flight, Operation::Statement))
    }
}

/// The cache's key: the text, then the parameter types' OIDs when given.
/// Borrowed (no allocation on a hit) without types.
fn cache_key<'q>(query: &'q str, types: &[Type]) -> std::borrow::Cow<'q, str> {
    if types.is_empty() {
        return query.into();
    }
    let mut key = String::with_capacity(query.len() + 1 + types.len() * 6);
    key.push_str(query);
    key.push('\0');
    for ty in types {
        key.push_str(&ty.oid().to_string());
        key.push(',');
    }
    key.into()
}
