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

use std::future::Future;
use std::sync::Mutex;

use tokio_postgres::{Client, IsolationLevel};

use crate::error::Error;
use crate::handle::{sealed, Scope, Tracked};
use crate::statements::{Cache, Statements};
use crate::tracked::Tracker;

/// A transaction on a pooled connection
/// ([`PgConnection::transaction`](crate::PgConnection::transaction)), or a
/// savepoint nested in one ([`transaction`](Self::transaction)).
///
/// Its statement methods are the connection's (those of
/// [`Tracked`](crate::Tracked)), tracked the same way (the request's
/// deadline bounds them on the server and on the client, and one dropped
/// half-way is cancelled when the connection goes back).
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
pub type PgTransaction<'a> = Tracked<Transaction<'a>>;

/// What a transaction holds: tokio-postgres's transaction and the
/// connection's tracking.
pub struct Transaction<'a> {
    inner: tokio_postgres::Transaction<'a>,
    tracker: &'a Tracker,
    cache: &'a Mutex<Cache>,
}

impl<'a> Transaction<'a> {
    /// Starts a transaction or a savepoint with `start`, tracked.
    async fn begin(
        tracker: &'a Tracker,
        cache: &'a Mutex<Cache>,
        start: impl Future<Output = Result<tokio_postgres::Transaction<'a>, tokio_postgres::Error>>,
    ) -> Result<PgTransaction<'a>, Error> {
        let inner = tracker.control(start).await?;
        Ok(Tracked(Transaction {
            inner,
            tracker,
            cache,
        }))
    }
}

impl sealed::Sealed for Transaction<'_> {}

impl Scope for Transaction<'_> {
    fn statements(&self) -> Statements<'_> {
        Statements {
            client: self.inner.client(),
            tracker: self.tracker,
            cache: self.cache,
            in_transaction: true,
        }
    }
}

impl<'a> PgTransaction<'a> {
    /// Commits the transaction (`COMMIT`), or releases the savepoint.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the `COMMIT` in flight, its outcome
    /// unknown; the pool cancels what still runs and rolls back whatever
    /// is left open when the connection comes back.
    pub async fn commit(self) -> Result<(), Error> {
        self.0.tracker.control(self.0.inner.commit()).await
    }

    /// Rolls the transaction back (`ROLLBACK`), or the savepoint
    /// (`ROLLBACK TO SAVEPOINT`, keeping the enclosing transaction's work).
    ///
    /// # Cancel safety
    ///
    /// As [`commit`](Self::commit).
    pub async fn rollback(self) -> Result<(), Error> {
        self.0.tracker.control(self.0.inner.rollback()).await
    }

    /// Starts a savepoint nested in this transaction, with a generated name.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the `SAVEPOINT` in flight; the pool rolls
    /// the session back when the connection comes back.
    pub async fn transaction(&mut self) -> Result<PgTransaction<'_>, Error> {
        let start = self.0.inner.transaction();
        Transaction::begin(self.0.tracker, self.0.cache, start).await
    }

    /// Starts a savepoint named `name` nested in this transaction.
    ///
    /// # Cancel safety
    ///
    /// As [`transaction`](Self::transaction).
    pub async fn savepoint(&mut self, name: impl Into<String>) -> Result<PgTransaction<'_>, Error> {
        let start = self.0.inner.savepoint(name);
        Transaction::begin(self.0.tracker, self.0.cache, start).await
    }

    /// The raw client. Statements sent through it are not tracked (see
    /// [`PgConnection`](crate::PgConnection)).
    pub fn client(&self) -> &Client {
        self.0.tracker.touch_raw();
        self.0.inner.client()
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
        Transaction::begin(self.tracker, self.cache, self.inner.start()).await
    }
}

impl std::fmt::Debug for TransactionBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionBuilder").finish_non_exhaustive()
    }
}
