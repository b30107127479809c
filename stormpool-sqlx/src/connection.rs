//! [`SqlxConnection`]: the pooled connection, whose statements are
//! tracked.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use sqlx::{Describe, Either, Execute, Executor};
use tokio::time::Instant;

use crate::backend::Backend;
use crate::tracked::{self, Tracking};
use crate::transaction::SqlxTransaction;

/// A pooled sqlx connection: [`sqlx::PgConnection`] or
/// [`sqlx::MySqlConnection`] with its statements *tracked*.
///
/// Pass `&mut *conn` (the pool's guard dereferences to this type) wherever
/// sqlx takes an executor: `sqlx::query("..").fetch_one(&mut *conn)`. Every
/// statement sent that way
///
/// - is bounded on the server by the request's deadline
///   ([`AcquireOptions::deadline`](stormpool::AcquireOptions::deadline)):
///   the session's `statement_timeout` (PostgreSQL) or `max_statement_time`
///   (MariaDB) is set to the time left, rounded down to one of four steps
///   per octave, before the statement, when it changes;
/// - is bounded on the client at the deadline plus
///   [`ManagerConfig::statement_grace`](crate::ManagerConfig::statement_grace):
///   past it the statement fails with an I/O error of kind `TimedOut`, for
///   a server that does not answer;
/// - when its future or stream is dropped before it ends (the request gave
///   up), is stopped on the server when the connection comes back to the
///   pool, and the connection is handed to nobody until the server is idle
///   on it. A holder that goes on with the connection instead waits for the
///   abandoned statement's end with its next statement (sqlx reads what is
///   left of the reply first).
///
/// [`begin`](SqlxConnection::begin) begins a [`SqlxTransaction`], whose
/// statements are tracked the same way.
///
/// The driver's connection is reached through `Deref`/`DerefMut` (or
/// [`raw_mut`](Self::raw_mut)): statements sent through it, and transactions
/// begun on it with sqlx's own `begin`, are **not tracked** (neither
/// bounded by the deadline nor stopped when abandoned). The connection is
/// then checked for an open transaction when it comes back.
///
/// Whatever the holder did, the connection goes back to the pool outside
/// any transaction: see the crate's docs, "Transaction hygiene".
pub struct SqlxConnection<DB: Backend> {
    raw: DB::Connection,
    session: DB::Token,
    pub(crate) track: Tracking,
    close_grace: Duration,
}

impl<DB: Backend> SqlxConnection<DB> {
    pub(crate) fn new(
        raw: DB::Connection,
        session: DB::Token,
        track: Tracking,
        close_grace: Duration,
    ) -> Self {
        SqlxConnection {
            raw,
            session,
            track,
            close_grace,
        }
    }

    /// The server's id of the session, read at connect: a
    /// [`PgSession`](crate::PgSession) or a [`MySqlSession`](crate::MySqlSession).
    pub fn session(&self) -> &DB::Token {
        &self.session
    }

    /// The deadline of the request holding the connection, as the pool
    /// passed it on; `None` when the request set none or the pool does not
    /// propagate deadlines.
    pub fn deadline(&self) -> Option<Instant> {
        self.track.deadline
    }

    /// Begins a transaction (`BEGIN`) whose statements are tracked; see
    /// [`SqlxTransaction`]. Dropped without
    /// [`commit`](SqlxTransaction::commit), it is rolled back before the
    /// connection serves anyone else.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves sqlx's rollback queued: the pool sends it
    /// when the connection comes back, or the next statement does.
    pub async fn begin(&mut self) -> Result<SqlxTransaction<'_, DB>, sqlx::Error> {
        SqlxTransaction::start(&mut self.raw, &mut self.track).await
    }

    /// The driver's connection, for what this type does not track.
    /// Statements sent through it are neither bounded nor stopped when
    /// abandoned, and the connection is checked for an open transaction
    /// when it comes back.
    pub fn raw_mut(&mut self) -> &mut DB::Connection {
        self.track.suspect = true;
        &mut self.raw
    }

    /// The driver's connection and the tracking state, apart.
    pub(crate) fn parts(&mut self) -> (&mut DB::Connection, &mut Tracking) {
        (&mut self.raw, &mut self.track)
    }

    /// Says goodbye to the server, waiting at most the close grace.
    pub(crate) async fn close(self) {
        let grace = self.close_grace;
        let _ = tokio::time::timeout(grace, sqlx::Connection::close(self.raw)).await;
    }
}

impl<DB: Backend> Deref for SqlxConnection<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.raw
    }
}

impl<DB: Backend> DerefMut for SqlxConnection<DB> {
    /// As [`raw_mut`](SqlxConnection::raw_mut).
    fn deref_mut(&mut self) -> &mut DB::Connection {
        self.raw_mut()
    }
}

impl<DB: Backend> fmt::Debug for SqlxConnection<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlxConnection")
            .field("database", &<DB as sqlx::Database>::NAME)
            .field("session", &self.session)
            .field("deadline", &self.track.deadline)
            .field("abandoned_statement", &self.track.abandoned)
            .finish_non_exhaustive()
    }
}

impl<'c, DB: Backend> Executor<'c> for &'c mut SqlxConnection<DB> {
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<DB::QueryResult, DB::Row>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, DB>,
    {
        tracked::fetch_many(&mut self.raw, &mut self.track, query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, DB>,
    {
        tracked::fetch_optional(&mut self.raw, &mut self.track, query)
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        tracked::prepare_with::<DB>(&mut self.raw, &mut self.track, sql, parameters)
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<DB>, sqlx::Error>>
    where
        'c: 'e,
    {
        tracked::describe::<DB>(&mut self.raw, &mut self.track, sql)
    }
}
