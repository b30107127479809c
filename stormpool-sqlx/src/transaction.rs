//! [`SqlxTransaction`]: sqlx's transaction, with its statements tracked
//! and its end seen by the pool.

use std::fmt;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use sqlx::{Connection, Describe, Either, Execute, Executor, Transaction};

use crate::backend::Backend;
use crate::tracked::{self, Tracking};

/// A transaction on a pooled connection: sqlx's [`Transaction`], whose
/// statements are tracked as the connection's are (bounded by the
/// request's deadline, stopped on the server when abandoned).
///
/// Pass `&mut tx` wherever sqlx takes an executor:
/// `sqlx::query("..").execute(&mut tx)`. [`begin`](Self::begin) nests a
/// savepoint. Dropped without [`commit`](Self::commit) or
/// [`rollback`](Self::rollback), it is rolled back as sqlx does it: the
/// `ROLLBACK` is queued and goes with the connection's next use, which the
/// pool makes before anyone else gets the connection.
///
/// The deadline bound set by a statement inside the transaction is set
/// again after it (a rollback undoes a `SET` in PostgreSQL).
pub struct SqlxTransaction<'c, DB: Backend> {
    tx: Transaction<'c, DB>,
    open: Open<'c>,
}

/// Tells the connection, when dropped, that the transaction ended without
/// a commit or rollback of its own.
struct Open<'c> {
    track: &'c mut Tracking,
    open: bool,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if self.open {
            self.track.extra.rollback_queued = true;
            self.track.bound.rolled_back();
        }
    }
}

impl<'c, DB: Backend> SqlxTransaction<'c, DB> {
    pub(crate) async fn start(
        conn: &'c mut DB::Connection,
        track: &'c mut Tracking,
    ) -> Result<Self, sqlx::Error> {
        // Until the transaction stands, its drop (sqlx queues a rollback
        // when `begin` is cut short) is the connection's to clean up.
        track.extra.rollback_queued = true;
        let tx = conn.begin().await?;
        // sqlx sent whatever rollback was queued before the `BEGIN`.
        track.extra.rollback_queued = false;
        Ok(SqlxTransaction {
            tx,
            open: Open { track, open: true },
        })
    }

    /// Begins a nested transaction: a savepoint.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves sqlx's rollback to the savepoint queued,
    /// sent with the next statement.
    pub async fn begin(&mut self) -> Result<SqlxTransaction<'_, DB>, sqlx::Error> {
        let tx = Connection::begin(&mut *self.tx).await?;
        Ok(SqlxTransaction {
            tx,
            open: Open {
                track: &mut *self.open.track,
                open: true,
            },
        })
    }

    /// Commits (or releases the savepoint).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the outcome unknown: the commit may have
    /// been sent. The pool rolls the session back if it is still in the
    /// transaction.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let result = self.tx.commit().await;
        self.open.open = result.is_err();
        result
    }

    /// Rolls back (to the savepoint).
    ///
    /// # Cancel safety
    ///
    /// As [`commit`](Self::commit).
    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        let result = self.tx.rollback().await;
        self.open.open = result.is_err();
        self.open.track.bound.rolled_back();
        result
    }

    fn parts(&mut self) -> (&mut DB::Connection, &mut Tracking) {
        (&mut self.tx, &mut *self.open.track)
    }
}

impl<DB: Backend> fmt::Debug for SqlxTransaction<'_, DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlxTransaction")
            .field("database", &<DB as sqlx::Database>::NAME)
            .finish_non_exhaustive()
    }
}

impl<'t, DB: Backend> Executor<'t> for &'t mut SqlxTransaction<'_, DB> {
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<DB::QueryResult, DB::Row>, sqlx::Error>>
    where
        't: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let (conn, track) = self.parts();
        tracked::fetch_many(conn, track, query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        't: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let (conn, track) = self.parts();
        tracked::fetch_optional(conn, track, query)
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement<'q>, sqlx::Error>>
    where
        't: 'e,
    {
        let (conn, track) = self.parts();
        tracked::prepare_with::<DB>(conn, track, sql, parameters)
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<DB>, sqlx::Error>>
    where
        't: 'e,
    {
        let (conn, track) = self.parts();
        tracked::describe::<DB>(conn, track, sql)
    }
}
