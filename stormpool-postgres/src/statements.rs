//! The statement methods, written once for the pooled connection and its
//! transactions: each wraps the driver's method of the same name in a
//! [tracked](crate::tracked) statement; behind a transaction pooler, the
//! driver's unnamed-statement method instead ([`unnamed`](crate::unnamed)).

use std::sync::Mutex;

use bytes::Buf;
use futures_util::TryStreamExt;
use tokio_postgres::types::{BorrowToSql, ToSql, Type};
use tokio_postgres::{Client, Row, SimpleQueryMessage, Statement};

use crate::error::{Error, Operation};
use crate::tracked::{CopyInSink, TrackedStream, Tracker};
pub(crate) use crate::unnamed::Cache;
use crate::unnamed::{self, sealed::Kind, ToPgStatement};

/// A stream of rows from [`query_raw`](crate::PgConnection::query_raw) or
/// [`query_typed_raw`](crate::PgConnection::query_typed_raw).
pub type RowStream<'a> = TrackedStream<'a, tokio_postgres::RowStream>;
/// A stream of messages from [`simple_query_raw`](crate::PgConnection::simple_query_raw).
pub type SimpleQueryStream<'a> = TrackedStream<'a, tokio_postgres::SimpleQueryStream>;
/// A stream of `COPY TO STDOUT` data from [`copy_out`](crate::PgConnection::copy_out).
pub type CopyOutStream<'a> = TrackedStream<'a, tokio_postgres::CopyOutStream>;

/// Where a statement goes and how it is tracked.
#[derive(Clone, Copy)]
pub struct Statements<'a> {
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

    /// Runs a statement whose results outlive its future (rows, a copy):
    /// the flight ends with them.
    async fn keep<R>(
        self,
        statement: impl std::future::Future<Output = Result<R, tokio_postgres::Error>>,
    ) -> Result<(R, crate::tracked::InFlight<'a>), Error> {
        self.tracker
            .run_keep(
                Some(self.client),
                self.in_transaction,
                Operation::Statement,
                statement,
                true,
            )
            .await
    }

    /// Whether statements run unnamed, behind a transaction pooler.
    fn unnamed(self) -> bool {
        self.tracker.pooler
    }

    fn in_transaction(self) -> bool {
        self.in_transaction || self.tracker.in_transaction()
    }

    /// Behind a pooler: the text to run for `statement`, and its
    /// description (parameter and column types).
    async fn resolve<'q, T>(self, statement: &'q T) -> Result<(unnamed::Text<'q>, Statement), Error>
    where
        T: ?Sized + ToPgStatement,
    {
        match statement.kind() {
            Kind::Text(query) => Ok((query.into(), self.describe(query, &[]).await?)),
            Kind::Prepared(statement) => {
                let text = self.lock_cache().text_of(statement);
                let text = text.ok_or_else(Error::unknown_statement)?;
                Ok((text.into(), statement.clone()))
            }
        }
    }

    /// Behind a pooler: the description of `query` (with parameter
    /// `types`), from the cache or asked of the server, leaving nothing
    /// on its session (see [`unnamed`](crate::unnamed)).
    async fn describe(self, query: &str, types: &[Type]) -> Result<Statement, Error> {
        let key = cache_key(query, types);
        if let Some(statement) = self.cached(&key) {
            return Ok(statement);
        }
        let in_transaction = self.in_transaction();
        let described = unnamed::describe(self.client, query, types, in_transaction);
        let statement = self
            .tracker
            .run(None, in_transaction, Operation::Statement, described)
            .await?;
        self.lock_cache()
            .insert_described(key.into_owned(), query, statement.clone());
        Ok(statement)
    }

    /// Behind a pooler, outside a transaction: `query` with the prelude
    /// that sets the request's settings and bound for its implicit
    /// transaction, and the bound; `None` when there is nothing to set
    /// or a transaction is open (the prelude is pipelined then).
    fn prefixed(self, query: &str) -> Option<(String, crate::deadline::Bound)> {
        if !self.unnamed() || self.in_transaction() {
            return None;
        }
        let bound = self.tracker.bound_now();
        let prelude = self.tracker.prelude(bound)?;
        if matches!(bound, crate::deadline::Bound::Millis(_)) {
            self.tracker.counters.bound_changed();
        }
        Some((format!("{prelude}; {query}"), bound))
    }

    pub(crate) async fn query<T>(self, statement: &T, params: Params<'_>) -> Result<Vec<Row>, Error>
    where
        T: ?Sized + ToPgStatement,
    {
        if self.unnamed() {
            let (text, described) = self.resolve(statement).await?;
            let params = unnamed::typed(params, described.params())?;
            return self.run(self.client.query_typed(&text, &params)).await;
        }
        self.run(self.client.query(statement, params)).await
    }

    pub(crate) async fn query_one<T>(self, statement: &T, params: Params<'_>) -> Result<Row, Error>
    where
        T: ?Sized + ToPgStatement,
    {
        if self.unnamed() {
            let (text, described) = self.resolve(statement).await?;
            let params = unnamed::typed(params, described.params())?;
            return self.run(self.client.query_typed_one(&text, &params)).await;
        }
        self.run(self.client.query_one(statement, params)).await
    }

    pub(crate) async fn query_opt<T>(
        self,
        statement: &T,
        params: Params<'_>,
    ) -> Result<Option<Row>, Error>
    where
        T: ?Sized + ToPgStatement,
    {
        if self.unnamed() {
            let (text, described) = self.resolve(statement).await?;
            let params = unnamed::typed(params, described.params())?;
            return self.run(self.client.query_typed_opt(&text, &params)).await;
        }
        self.run(self.client.query_opt(statement, params)).await
    }

    pub(crate) async fn query_raw<T, P, I>(
        self,
        statement: &T,
        params: I,
    ) -> Result<RowStream<'a>, Error>
    where
        T: ?Sized + ToPgStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
        I::IntoIter: ExactSizeIterator,
    {
        if self.unnamed() {
            let (text, described) = self.resolve(statement).await?;
            let params = params.into_iter();
            unnamed::check_count(described.params().len(), params.len())?;
            let params = params.zip(described.params().iter().cloned());
            return self.query_typed_raw(&text, params).await;
        }
        let (rows, flight) = self.keep(self.client.query_raw(statement, params)).await?;
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
            .keep(self.client.query_typed_raw(query, params))
            .await?;
        Ok(TrackedStream::new(rows, flight, Operation::Statement))
    }

    pub(crate) async fn execute<T>(self, statement: &T, params: Params<'_>) -> Result<u64, Error>
    where
        T: ?Sized + ToPgStatement,
    {
        if self.unnamed() {
            let (text, described) = self.resolve(statement).await?;
            let params = unnamed::typed(params, described.params())?;
            return self.run(self.client.execute_typed(&text, &params)).await;
        }
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
        T: ?Sized + ToPgStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
        I::IntoIter: ExactSizeIterator,
    {
        if self.unnamed() {
            let (text, described) = self.resolve(statement).await?;
            let params = params.into_iter();
            unnamed::check_count(described.params().len(), params.len())?;
            let params = params.zip(described.params().iter().cloned());
            let client = self.client;
            // The rows of the unnamed statement, counted as `execute` would.
            let executed = async move {
                let rows = client.query_typed_raw(&text, params).await?;
                let mut rows = std::pin::pin!(rows);
                while rows.try_next().await?.is_some() {}
                Ok(rows.rows_affected().unwrap_or(0))
            };
            return self.run(executed).await;
        }
        self.run(self.client.execute_raw(statement, params)).await
    }

    pub(crate) async fn simple_query(self, query: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        if let Some((text, bound)) = self.prefixed(query) {
            let sent = self.client.simple_query(&text);
            let result = self
                .tracker
                .run(None, self.in_transaction, Operation::Statement, sent)
                .await;
            self.tracker.after_prefixed(bound);
            // The prelude's own row and completion come first.
            return result.map(|messages| {
                let prelude = messages
                    .iter()
                    .position(|m| matches!(m, SimpleQueryMessage::CommandComplete(_)))
                    .map_or(0, |at| at + 1);
                messages.into_iter().skip(prelude).collect()
            });
        }
        self.run(self.client.simple_query(query)).await
    }

    pub(crate) async fn simple_query_raw(
        self,
        query: &str,
    ) -> Result<SimpleQueryStream<'a>, Error> {
        let (messages, flight) = self.keep(self.client.simple_query_raw(query)).await?;
        Ok(TrackedStream::new(messages, flight, Operation::Statement))
    }

    pub(crate) async fn batch_execute(self, query: &str) -> Result<(), Error> {
        if let Some((text, bound)) = self.prefixed(query) {
            let sent = self.client.batch_execute(&text);
            let result = self
                .tracker
                .run(None, self.in_transaction, Operation::Statement, sent)
                .await;
            self.tracker.after_prefixed(bound);
            return result;
        }
        self.run(self.client.batch_execute(query)).await
    }

    pub(crate) async fn prepare_typed(
        self,
        query: &str,
        types: &[Type],
    ) -> Result<Statement, Error> {
        if self.unnamed() {
            return self.describe(query, types).await;
        }
        self.run(self.client.prepare_typed(query, types)).await
    }

    pub(crate) async fn prepare_typed_cached(
        self,
        query: &str,
        types: &[Type],
    ) -> Result<Statement, Error> {
        if self.unnamed() {
            return self.describe(query, types).await;
        }
        let key = cache_key(query, types);
        if let Some(statement) = self.cached(&key) {
            return Ok(statement);
        }
        let statement = self.prepare_typed(query, types).await?;
        // An evicted statement is closed on the server when its last
        // handle drops.
        let evicted = self
            .lock_cache()
            .insert(key.into_owned(), statement.clone());
        drop(evicted);
        Ok(statement)
    }

    /// The cached statement for `key`, counted as a hit or a miss.
    fn cached(self, key: &str) -> Option<Statement> {
        let cached = self.lock_cache().get(key);
        match cached {
            Some(_) => self.tracker.counters.cache_hit(),
            None => self.tracker.counters.cache_miss(),
        }
        cached
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
        T: ?Sized + ToPgStatement,
        U: Buf + Send + 'static,
    {
        if self.unnamed() {
            let text = self.copy_text(statement)?;
            let (sink, flight) = self.keep(self.client.copy_in(&*text)).await?;
            return Ok(CopyInSink::new(sink, flight));
        }
        let (sink, flight) = self.keep(self.client.copy_in(statement)).await?;
        Ok(CopyInSink::new(sink, flight))
    }

    /// Behind a pooler: the text of a `COPY`, which runs only inside a
    /// transaction (the driver prepares it under a name, and its data
    /// must reach the same server session).
    fn copy_text<'q, T>(self, statement: &'q T) -> Result<unnamed::Text<'q>, Error>
    where
        T: ?Sized + ToPgStatement,
    {
        if !self.in_transaction() {
            return Err(Error::copy_outside_transaction());
        }
        match statement.kind() {
            Kind::Text(query) => Ok(query.into()),
            Kind::Prepared(statement) => self
                .lock_cache()
                .text_of(statement)
                .map(Into::into)
                .ok_or_else(Error::unknown_statement),
        }
    }

    pub(crate) async fn copy_out<T>(self, statement: &T) -> Result<CopyOutStream<'a>, Error>
    where
        T: ?Sized + ToPgStatement,
    {
        if self.unnamed() {
            let text = self.copy_text(statement)?;
            let (data, flight) = self.keep(self.client.copy_out(&*text)).await?;
            return Ok(TrackedStream::new(data, flight, Operation::Statement));
        }
        let (data, flight) = self.keep(self.client.copy_out(statement)).await?;
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
