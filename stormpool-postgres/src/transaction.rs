//! [`PgTransaction`]: a tracked transaction, and savepoints nested in it.
//!
//! Built on tokio-postgres's own [`Transaction`](tokio_postgres::Transaction):
//! `BEGIN` (with the builder's options), `COMMIT` and `ROLLBACK`, and
//! `SAVEPOINT` / `RELEASE` / `ROLLBACK TO` for nested ones. Dropped without
//! [`commit`](PgTransaction::commit), a transaction queues its `ROLLBACK`
//! on the connection without waiting for it, so the dropper never blocks
//! and any later statement on the connection runs after the rollback; the
//! pool does not hand the connection to anyone before the server has
//! answered it (see the crate's docs, "Transactions and hygiene").

use std::sync::Mutex;

use bytes::Buf;
use tokio_postgres::types::{BorrowToSql, ToSql, Type};
use tokio_postgres::{Client, IsolationLevel, Row, SimpleQueryMessage, Statement};

use crate::unnamed::ToPgStatement;

use crate::error::{Error, Operation};
use crate::statements::{Cache, CopyOutStream, RowStream, SimpleQueryStream, Statements};
use crate::tracked::{CopyInSink, Tracker};

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];
type TypedParams<'p> = &'p [(&'p (dyn ToSql + Sync), Type)];

/// A transaction on a pooled connection
/// ([`PgConnection::transaction`](crate::PgConnection::transaction)), or a
/// savepoint nested in one ([`transaction`](Self::transaction)).
///
/// Its statement methods are the connection's, tracked the same way (the
/// request's deadline bounds them on the server and on the client, and one
/// dropped half-way is cancelled when the connection goes back).
///
/// End it with [`commit`](Self::commit) or [`rollback`](Self::rollback).
/// Dropped without either, it is rolled back: the `ROLLBACK` (or `ROLLBACK
/// TO SAVEPOINT`) is queued on the connection at once, without waiting.
///
/// ```no_run
/// # async fn f(pool: stormpool::Pool<stormpool_postgres::PgManager>) -> Result<(), stormpool_postgres::Error> {
/// let mut conn = pool.get().await?;
/// let mut tx = conn.transaction().await?;
/// tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = $1", &[&1i32]).await?;
/// {
///     // A savepoint: rolling it back keeps the outer work.
///     let inner = tx.transaction().await?;
///     inner.execute("INSERT INTO audit VALUES ('maybe')", &[]).await?;
///     inner.rollback().await?;
/// }
/// tx.commit().await?;
/// # Ok(())
/// # }
/// ```
pub struct PgTransaction<'a> {
    inner: tokio_postgres::Transaction<'a>,
    tracker: &'a Tracker,
    cache: &'a Mutex<Cache>,
}

impl<'a> PgTransaction<'a> {
    fn statements(&self) -> Statements<'_> {
        Statements {
            client: self.inner.client(),
            tracker: self.tracker,
            cache: self.cache,
            in_transaction: true,
        }
    }

    /// Commits the transaction (`COMMIT`), or releases the savepoint.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the `COMMIT` in flight, its outcome
    /// unknown; the pool cancels what still runs and rolls back whatever
    /// is left open when the connection comes back.
    pub async fn commit(self) -> Result<(), Error> {
        let tracker = self.tracker;
        tracker.transaction_control();
        tracker
            .run(None, true, Operation::Transaction, self.inner.commit())
            .await
    }

    /// Rolls the transaction back (`ROLLBACK`), or the savepoint
    /// (`ROLLBACK TO SAVEPOINT`, keeping the enclosing transaction's work).
    ///
    /// # Cancel safety
    ///
    /// As [`commit`](Self::commit).
    pub async fn rollback(self) -> Result<(), Error> {
        let tracker = self.tracker;
        tracker.transaction_control();
        tracker
            .run(None, true, Operation::Transaction, self.inner.rollback())
            .await
    }

    /// Starts a savepoint nested in this transaction, with a generated name.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the `SAVEPOINT` in flight; the pool rolls
    /// the session back when the connection comes back.
    pub async fn transaction(&mut self) -> Result<PgTransaction<'_>, Error> {
        let (tracker, cache) = (self.tracker, self.cache);
        tracker.transaction_control();
        let inner = tracker
            .run(None, true, Operation::Transaction, self.inner.transaction())
            .await?;
        Ok(PgTransaction {
            inner,
            tracker,
            cache,
        })
    }

    /// Starts a savepoint named `name` nested in this transaction.
    ///
    /// # Cancel safety
    ///
    /// As [`transaction`](Self::transaction).
    pub async fn savepoint(&mut self, name: impl Into<String>) -> Result<PgTransaction<'_>, Error> {
        let (tracker, cache) = (self.tracker, self.cache);
        tracker.transaction_control();
        let inner = tracker
            .run(
                None,
                true,
                Operation::Transaction,
                self.inner.savepoint(name),
            )
            .await?;
        Ok(PgTransaction {
            inner,
            tracker,
            cache,
        })
    }

    /// The raw client. Statements sent through it are not tracked (see
    /// [`PgConnection`](crate::PgConnection)).
    pub fn client(&self) -> &Client {
        self.tracker.touch_raw();
        self.inner.client()
    }

    /// [`PgConnection::query`](crate::PgConnection::query), in the transaction.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the statement running on the server; the
    /// pool cancels it (and rolls back) when the connection comes back.
    pub async fn query<T>(&self, statement: &T, params: Params<'_>) -> Result<Vec<Row>, Error>
    where
        T: ?Sized + ToPgStatement,
    {
        self.statements().query(statement, params).await
    }

    /// [`PgConnection::query_one`](crate::PgConnection::query_one), in the transaction.
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

    /// [`PgConnection::query_opt`](crate::PgConnection::query_opt), in the transaction.
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

    /// [`PgConnection::query_raw`](crate::PgConnection::query_raw), in the transaction.
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

    /// [`PgConnection::query_typed`](crate::PgConnection::query_typed), in the transaction.
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

    /// [`PgConnection::query_typed_one`](crate::PgConnection::query_typed_one), in the transaction.
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

    /// [`PgConnection::query_typed_opt`](crate::PgConnection::query_typed_opt), in the transaction.
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

    /// [`PgConnection::query_typed_raw`](crate::PgConnection::query_typed_raw), in the transaction.
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

    /// [`PgConnection::execute`](crate::PgConnection::execute), in the transaction.
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

    /// [`PgConnection::execute_typed`](crate::PgConnection::execute_typed), in the transaction.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn execute_typed(&self, query: &str, params: TypedParams<'_>) -> Result<u64, Error> {
        self.statements().execute_typed(query, params).await
    }

    /// [`PgConnection::execute_raw`](crate::PgConnection::execute_raw), in the transaction.
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

    /// [`PgConnection::simple_query`](crate::PgConnection::simple_query), in the transaction.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn simple_query(&self, query: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        self.statements().simple_query(query).await
    }

    /// [`PgConnection::simple_query_raw`](crate::PgConnection::simple_query_raw), in the transaction.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query), for the future and for the stream.
    pub async fn simple_query_raw(&self, query: &str) -> Result<SimpleQueryStream<'_>, Error> {
        self.statements().simple_query_raw(query).await
    }

    /// [`PgConnection::batch_execute`](crate::PgConnection::batch_execute), in the transaction.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn batch_execute(&self, query: &str) -> Result<(), Error> {
        self.statements().batch_execute(query).await
    }

    /// [`PgConnection::prepare`](crate::PgConnection::prepare), in the transaction.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn prepare(&self, query: &str) -> Result<Statement, Error> {
        self.statements().prepare_typed(query, &[]).await
    }

    /// [`PgConnection::prepare_typed`](crate::PgConnection::prepare_typed), in the transaction.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn prepare_typed(&self, query: &str, types: &[Type]) -> Result<Statement, Error> {
        self.statements().prepare_typed(query, types).await
    }

    /// [`PgConnection::prepare_cached`](crate::PgConnection::prepare_cached):
    /// the connection's cache, shared with the transaction.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn prepare_cached(&self, query: &str) -> Result<Statement, Error> {
        self.statements().prepare_typed_cached(query, &[]).await
    }

    /// [`PgConnection::prepare_typed_cached`](crate::PgConnection::prepare_typed_cached),
    /// in the transaction.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn prepare_typed_cached(
        &self,
        query: &str,
        types: &[Type],
    ) -> Result<Statement, Error> {
        self.statements().prepare_typed_cached(query, types).await
    }

    /// [`PgConnection::copy_in`](crate::PgConnection::copy_in), in the transaction.
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

    /// [`PgConnection::copy_out`](crate::PgConnection::copy_out), in the transaction.
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

impl std::fmt::Debug for PgTransaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTransaction").finish_non_exhaustive()
    }
}

/// Options of a transaction
/// ([`PgConnection::build_transaction`](crate::PgConnection::build_transaction)):
/// the isolation level, read-only, deferrable. Unset options take the
/// session's defaults.
#[must_use = "the transaction starts with `start`"]
pub struct TransactionBuilder<'a> {
    inner: tokio_postgres::TransactionBuilder<'a>,
    tracker: &'a Tracker,
    cache: &'a Mutex<Cache>,
}

impl<'a> TransactionBuilder<'a> {
    pub(crate) fn new(
        client: &'a mut Client,
        tracker: &'a Tracker,
        cache: &'a Mutex<Cache>,
    ) -> Self {
        TransactionBuilder {
            inner: client.build_transaction(),
            tracker,
            cache,
        }
    }

    /// The isolation level (`READ COMMITTED`, `REPEATABLE READ`,
    /// `SERIALIZABLE`). Defaults to the session's
    /// (`default_transaction_isolation`).
    pub fn isolation_level(self, level: IsolationLevel) -> Self {
        TransactionBuilder {
            inner: self.inner.isolation_level(level),
            ..self
        }
    }

    /// A read-only transaction, or explicitly a read-write one. Defaults to
    /// the session's (`default_transaction_read_only`).
    pub fn read_only(self, read_only: bool) -> Self {
        TransactionBuilder {
            inner: self.inner.read_only(read_only),
            ..self
        }
    }

    /// Deferrable (meaningful for a serializable read-only transaction: it
    /// waits for a safe snapshot, then runs without serialization
    /// failures). Defaults to the session's.
    pub fn deferrable(self, deferrable: bool) -> Self {
        TransactionBuilder {
            inner: self.inner.deferrable(deferrable),
            ..self
        }
    }

    /// Begins the transaction, tracked.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the `BEGIN` in flight: the pool cancels
    /// it and rolls the session back when the connection comes back.
    pub async fn start(self) -> Result<PgTransaction<'a>, Error> {
        let (tracker, cache) = (self.tracker, self.cache);
        tracker.transaction_control();
        let inner = tracker
            .run(None, true, Operation::Transaction, self.inner.start())
            .await?;
        Ok(PgTransaction {
            inner,
            tracker,
            cache,
        })
    }
}

impl std::fmt::Debug for TransactionBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionBuilder").finish_non_exhaustive()
    }
}
