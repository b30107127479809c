//! [`MySqlTransaction`]: a tracked transaction, and savepoints nested in it.
//!
//! `START TRANSACTION` (after `SET TRANSACTION ISOLATION LEVEL` when the
//! builder sets one), `COMMIT` and `ROLLBACK`, and `SAVEPOINT` / `RELEASE
//! SAVEPOINT` / `ROLLBACK TO SAVEPOINT` for nested ones, all tracked
//! statements. Dropped without [`commit`](MySqlTransaction::commit), a
//! transaction cannot send its rollback (dropping is synchronous and the
//! driver's connection needs `&mut`): it leaves the rollback owed on the
//! connection, sent before the connection's next tracked statement, or by
//! the pool when the connection comes back, before anyone else gets it.
//! The dropper never waits.

use mysql_async::prelude::{FromRow, Queryable, StatementLike};
use mysql_async::{IsolationLevel, Params};

use crate::connection::MySqlConnection;
use crate::error::{Error, Operation};

/// A rollback owed by a transaction dropped without commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    /// The whole transaction.
    Rollback,
    /// Back to the savepoint of this depth (1 for the first nested one).
    RollbackTo(u32),
}

impl Pending {
    /// What is owed once `self` and `other` both are: the outermost.
    fn merge(current: Option<Pending>, other: Pending) -> Pending {
        match (current, other) {
            (Some(Pending::Rollback), _) | (_, Pending::Rollback) => Pending::Rollback,
            (Some(Pending::RollbackTo(a)), Pending::RollbackTo(b)) => Pending::RollbackTo(a.min(b)),
            (None, other) => other,
        }
    }

    pub(crate) fn statement(self) -> String {
        match self {
            Pending::Rollback => "ROLLBACK".to_owned(),
            Pending::RollbackTo(depth) => format!("ROLLBACK TO SAVEPOINT {}", savepoint(depth)),
        }
    }
}

fn savepoint(depth: u32) -> String {
    format!("stormpool_savepoint_{depth}")
}

/// A transaction on a pooled connection
/// ([`MySqlConnection::transaction`]), or a savepoint nested in one
/// ([`transaction`](Self::transaction)).
///
/// Its statement methods are the connection's, tracked the same way. End
/// it with [`commit`](Self::commit) or [`rollback`](Self::rollback);
/// dropped without either, it is rolled back before the connection's next
/// statement, or by the pool on return (see the module's docs).
///
/// ```no_run
/// # async fn f(pool: stormpool::Pool<stormpool_mysql::MySqlManager>) -> Result<(), stormpool_mysql::Error> {
/// let mut conn = pool.get().await?;
/// let mut tx = conn.transaction().await?;
/// tx.exec_drop("UPDATE accounts SET balance = balance - 10 WHERE id = ?", (1,)).await?;
/// {
///     // A savepoint: rolling it back keeps the outer work.
///     let mut inner = tx.transaction().await?;
///     inner.query_drop("INSERT INTO audit VALUES ('maybe')").await?;
///     inner.rollback().await?;
/// }
/// tx.commit().await?;
/// # Ok(())
/// # }
/// ```
pub struct MySqlTransaction<'a> {
    conn: &'a mut MySqlConnection,
    /// 0 for the transaction, n for the n-th nested savepoint.
    depth: u32,
    done: bool,
}

impl<'a> MySqlTransaction<'a> {
    async fn control(conn: &mut MySqlConnection, sql: String) -> Result<(), Error> {
        conn.tracked_as(Operation::Transaction, move |c| c.query_drop(sql))
            .await
    }

    /// Commits the transaction (`COMMIT`), or releases the savepoint.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the `COMMIT` in flight, its outcome
    /// unknown; the pool stops what still runs and rolls back whatever is
    /// left open when the connection comes back.
    pub async fn commit(mut self) -> Result<(), Error> {
        self.done = true;
        let sql = match self.depth {
            0 => "COMMIT".to_owned(),
            depth => format!("RELEASE SAVEPOINT {}", savepoint(depth)),
        };
        Self::control(self.conn, sql).await
    }

    /// Rolls the transaction back (`ROLLBACK`), or the savepoint
    /// (`ROLLBACK TO SAVEPOINT`, keeping the enclosing transaction's work).
    ///
    /// # Cancel safety
    ///
    /// As [`commit`](Self::commit).
    pub async fn rollback(mut self) -> Result<(), Error> {
        self.done = true;
        let sql = match self.depth {
            0 => Pending::Rollback.statement(),
            depth => Pending::RollbackTo(depth).statement(),
        };
        Self::control(self.conn, sql).await
    }

    /// Starts a savepoint nested in this transaction.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the `SAVEPOINT` in flight; the pool rolls
    /// the session back when the connection comes back.
    pub async fn transaction(&mut self) -> Result<MySqlTransaction<'_>, Error> {
        let depth = self.depth + 1;
        Self::control(self.conn, format!("SAVEPOINT {}", savepoint(depth))).await?;
        Ok(MySqlTransaction {
            conn: &mut *self.conn,
            depth,
            done: false,
        })
    }

    /// [`MySqlConnection::query`], in the transaction.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the statement running on the server; the
    /// pool stops it (and rolls back) when the connection comes back.
    pub async fn query<T, Q>(&mut self, query: Q) -> Result<Vec<T>, Error>
    where
        Q: mysql_async::prelude::AsQuery + 'static,
        T: FromRow + Send + 'static,
    {
        self.conn.query(query).await
    }

    /// [`MySqlConnection::query_first`], in the transaction.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn query_first<T, Q>(&mut self, query: Q) -> Result<Option<T>, Error>
    where
        Q: mysql_async::prelude::AsQuery + 'static,
        T: FromRow + Send + 'static,
    {
        self.conn.query_first(query).await
    }

    /// [`MySqlConnection::query_drop`], in the transaction.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn query_drop<Q>(&mut self, query: Q) -> Result<(), Error>
    where
        Q: mysql_async::prelude::AsQuery + 'static,
    {
        self.conn.query_drop(query).await
    }

    /// [`MySqlConnection::exec`], in the transaction.
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
        self.conn.exec(statement, params).await
    }

    /// [`MySqlConnection::exec_first`], in the transaction.
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
        self.conn.exec_first(statement, params).await
    }

    /// [`MySqlConnection::exec_drop`], in the transaction.
    ///
    /// # Cancel safety
    ///
    /// As [`query`](Self::query).
    pub async fn exec_drop<S, P>(&mut self, statement: S, params: P) -> Result<(), Error>
    where
        S: StatementLike + 'static,
        P: Into<Params> + Send + 'static,
    {
        self.conn.exec_drop(statement, params).await
    }

    /// [`MySqlConnection::exec_batch`], in the transaction.
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
        self.conn.exec_batch(statement, params).await
    }

    /// The connection, for the statement methods this type does not
    /// repeat (`query_map`, `prepare_cached`, ...): statements sent through
    /// it run inside the transaction.
    pub fn connection(&mut self) -> &mut MySqlConnection {
        self.conn
    }
}

impl Drop for MySqlTransaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            let owed = match self.depth {
                0 => Pending::Rollback,
                depth => Pending::RollbackTo(depth),
            };
            self.conn.pending = Some(Pending::merge(self.conn.pending, owed));
        }
    }
}

impl std::fmt::Debug for MySqlTransaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlTransaction")
            .field("depth", &self.depth)
            .finish_non_exhaustive()
    }
}

/// Options of a transaction
/// ([`MySqlConnection::build_transaction`]): the isolation level,
/// read-only (MariaDB 10.0+, MySQL 5.6+), a consistent snapshot
/// (InnoDB). Unset options take the session's defaults.
#[must_use = "the transaction starts with `start`"]
pub struct TransactionBuilder<'a> {
    conn: &'a mut MySqlConnection,
    isolation_level: Option<IsolationLevel>,
    read_only: Option<bool>,
    consistent_snapshot: bool,
}

impl<'a> TransactionBuilder<'a> {
    pub(crate) fn new(conn: &'a mut MySqlConnection) -> Self {
        TransactionBuilder {
            conn,
            isolation_level: None,
            read_only: None,
            consistent_snapshot: false,
        }
    }

    /// The isolation level (`SET TRANSACTION ISOLATION LEVEL`, for this
    /// transaction only). Defaults to the session's.
    pub fn isolation_level(mut self, level: IsolationLevel) -> Self {
        self.isolation_level = Some(level);
        self
    }

    /// `READ ONLY`, or explicitly `READ WRITE`. Defaults to the session's.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = Some(read_only);
        self
    }

    /// `WITH CONSISTENT SNAPSHOT`: the snapshot is taken at the start, not
    /// at the first read. Defaults to off.
    pub fn consistent_snapshot(mut self, consistent_snapshot: bool) -> Self {
        self.consistent_snapshot = consistent_snapshot;
        self
    }

    fn start_statement(&self) -> String {
        let mut characteristics = Vec::new();
        if self.consistent_snapshot {
            characteristics.push("WITH CONSISTENT SNAPSHOT");
        }
        match self.read_only {
            Some(true) => characteristics.push("READ ONLY"),
            Some(false) => characteristics.push("READ WRITE"),
            None => {}
        }
        let mut sql = "START TRANSACTION".to_owned();
        if !characteristics.is_empty() {
            sql.push(' ');
            sql.push_str(&characteristics.join(", "));
        }
        sql
    }

    /// Begins the transaction, tracked.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the statement in flight: the pool stops
    /// it and rolls the session back when the connection comes back.
    pub async fn start(self) -> Result<MySqlTransaction<'a>, Error> {
        let start = self.start_statement();
        if let Some(level) = self.isolation_level {
            let set = format!("SET TRANSACTION ISOLATION LEVEL {level}");
            MySqlTransaction::control(self.conn, set).await?;
        }
        MySqlTransaction::control(self.conn, start).await?;
        Ok(MySqlTransaction {
            conn: self.conn,
            depth: 0,
            done: false,
        })
    }
}

impl std::fmt::Debug for TransactionBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionBuilder")
            .field("isolation_level", &self.isolation_level)
            .field("read_only", &self.read_only)
            .field("consistent_snapshot", &self.consistent_snapshot)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outermost_owed_rollback_wins() {
        assert_eq!(
            Pending::merge(None, Pending::RollbackTo(2)),
            Pending::RollbackTo(2)
        );
        assert_eq!(
            Pending::merge(Some(Pending::RollbackTo(2)), Pending::RollbackTo(1)),
            Pending::RollbackTo(1)
        );
        assert_eq!(
            Pending::merge(Some(Pending::RollbackTo(1)), Pending::Rollback),
            Pending::Rollback
        );
        assert_eq!(
            Pending::merge(Some(Pending::Rollback), Pending::RollbackTo(3)),
            Pending::Rollback
        );
    }
}
