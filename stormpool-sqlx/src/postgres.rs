//! PostgreSQL through sqlx: the session's id, the cancel, the bound and
//! the rollback probe.
//!
//! # Why `pg_cancel_backend` from a side session
//!
//! PostgreSQL's own cancel request names the session by its backend pid
//! *and* a secret key, both sent by the server at connect. sqlx reads them
//! and keeps them private (nor can it be handed a socket of the caller's,
//! where the key could be read off the stream), so the protocol's cancel is
//! out of reach. What is left:
//!
//! - `pg_terminate_backend(pid)` stops the statement by ending the session:
//!   the pool loses the connection, and pays a connect for a replacement.
//! - a `statement_timeout` alone bounds requests that carry a deadline, not
//!   statements abandoned by requests without one, nor a watchdog's revoke.
//! - `pg_cancel_backend(pid)`, sent from a side session, does what the
//!   cancel request does (the server signals the backend, which fails the
//!   running statement with SQLSTATE `57014`; the session stays usable).
//!   It needs a session of the same role (or one granted
//!   `pg_signal_backend`), which the side connection is, being opened with
//!   the pool's own options. It costs an authenticated connect per cancel
//!   (a few milliseconds) where the cancel request costs a bare one.
//!
//! The adapter uses the last. In place of the secret key, the backend's
//! start time, read at connect with the pid, names the session: a pid the
//! operating system has since given to another backend is never signalled.
//! The server signals the backend before `pg_cancel_backend` returns; a
//! backend idle by the time the signal is handled discards it when it next
//! reads a command, so a statement sent after the cancel returns is not
//! hit by it (and the pool's drain, which follows, only sends a `Sync`).
//!
//! Through a pooler in transaction mode (PgBouncer) the pid read at connect
//! names whichever server session served that query: the cancel may miss,
//! or hit another client's statement. Do not use it there.

use std::fmt;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::FutureExt;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgQueryResult, PgRow, PgTypeInfo};
use sqlx::{Connection, Describe, Either, Execute, Executor, Postgres, Row};
use stormpool::Settings;

use crate::backend::{driver::Driver, Applied};
use crate::error::{Error, Operation};
use stormpool::statements::mentions_keyword;
use stormpool::statements::Bound;

/// What a cancel needs to find a PostgreSQL session: its backend pid and
/// start time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PgSession {
    pid: i32,
    started: String,
}

impl PgSession {
    /// The backend's process id (`pg_backend_pid()`).
    pub fn pid(&self) -> i32 {
        self.pid
    }
}

/// SQLSTATE `query_canceled`: a cancel or `statement_timeout`.
const QUERY_CANCELED: &str = "57014";
/// SQLSTATE `in_failed_sql_transaction`.
const IN_FAILED_TRANSACTION: &str = "25P02";

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(e) => e.code().map(|c| c.into_owned()),
        _ => None,
    }
}

impl Driver for Postgres {
    type Token = PgSession;

    const BOUND_IS_TRANSACTIONAL: bool = true;
    const BOUND_VARIABLE: &'static str = "statement_timeout";

    /// Only `BEGIN` and `START TRANSACTION` open a transaction block in
    /// PostgreSQL: functions cannot, and a procedure's own transactions
    /// end with its `CALL`.
    fn may_open_transaction(sql: &str) -> bool {
        mentions_keyword(sql, &["BEGIN", "START"])
    }

    fn is_bound_timeout(e: &sqlx::Error) -> bool {
        // A cancel looks the same; the bound is the likely cause when one
        // was set, and the count is for reporting only.
        sqlstate(e).as_deref() == Some(QUERY_CANCELED)
            && matches!(e, sqlx::Error::Database(e) if e.message().contains("statement timeout"))
    }

    fn is_unknown_variable(_: &sqlx::Error) -> bool {
        false
    }

    fn target(options: &PgConnectOptions) -> String {
        match options.get_socket() {
            Some(socket) => socket.display().to_string(),
            None => format!("{}:{}", options.get_host(), options.get_port()),
        }
    }

    fn describe(options: &PgConnectOptions, f: &mut fmt::DebugStruct<'_, '_>) {
        f.field("user", &options.get_username())
            .field("host", &options.get_host())
            .field("port", &options.get_port())
            .field("database", &options.get_database())
            .field("application_name", &options.get_application_name());
    }

    fn token(conn: &mut PgConnection) -> BoxFuture<'_, Result<PgSession, sqlx::Error>> {
        async move {
            let (pid, started): (i32, String) = sqlx::query_as(
                "SELECT pid, backend_start::text FROM pg_stat_activity \
                 WHERE pid = pg_backend_pid()",
            )
            .fetch_one(&mut *conn)
            .await?;
            Ok(PgSession { pid, started })
        }
        .boxed()
    }

    fn cancel(
        options: PgConnectOptions,
        token: PgSession,
    ) -> BoxFuture<'static, Result<(), sqlx::Error>> {
        async move {
            let mut side = PgConnection::connect_with(&options).await?;
            let signalled = sqlx::query(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity \
                 WHERE pid = $1 AND backend_start::text = $2",
            )
            .bind(token.pid)
            .bind(&token.started)
            .fetch_optional(&mut side)
            .await;
            let _ = side.close().await;
            signalled.map(drop)
        }
        .boxed()
    }

    fn set_bound<'c>(
        conn: &'c mut PgConnection,
        bound: Bound,
        restore: Option<&'c str>,
    ) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        async move {
            match (bound, restore) {
                (Bound::Millis(ms), _) => {
                    // The simple protocol: nothing prepared, nothing cached
                    // per value.
                    conn.execute(sqlx::raw_sql(&format!("SET statement_timeout = {ms}")))
                        .await?;
                }
                (Bound::Default, None) => {
                    conn.execute(sqlx::raw_sql("SET statement_timeout TO DEFAULT"))
                        .await?;
                }
                (Bound::Default, Some(value)) => {
                    sqlx::query("SELECT set_config('statement_timeout', $1, false)")
                        .bind(value)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            Ok(())
        }
        .boxed()
    }

    /// Asks the server whether the session is inside a transaction block
    /// (its transaction started before this statement did), then rolls
    /// back if it is. A failed transaction answers with an error.
    fn end_transaction(conn: &mut PgConnection) -> BoxFuture<'_, Result<bool, sqlx::Error>> {
        async move {
            let probe = conn
                .fetch_one(sqlx::raw_sql(
                    "SELECT transaction_timestamp() < statement_timestamp()",
                ))
                .await;
            let in_transaction = match probe {
                Ok(row) => row.try_get::<bool, _>(0)?,
                Err(e) if sqlstate(&e).as_deref() == Some(IN_FAILED_TRANSACTION) => true,
                Err(e) => return Err(e),
            };
            if in_transaction {
                conn.execute(sqlx::raw_sql("ROLLBACK")).await?;
            }
            Ok(in_transaction)
        }
        .boxed()
    }

    fn apply<'c>(
        conn: &'c mut PgConnection,
        settings: &'c Settings,
    ) -> BoxFuture<'c, Result<Vec<Applied>, Error>> {
        async move {
            for (name, value) in settings.iter() {
                // Values travel as parameters: no quoting to get wrong.
                sqlx::query("SELECT set_config($1, $2, false)")
                    .bind(name)
                    .bind(value)
                    .execute(&mut *conn)
                    .await
                    .map_err(Error::driver(Operation::Apply))?;
            }
            // `RESET ALL` needs no list.
            Ok(Vec::new())
        }
        .boxed()
    }

    /// `RESET ALL`: every session parameter back to its default, which
    /// undoes whatever settings and the hook set (prepared statements,
    /// which sqlx caches, survive it).
    fn reset<'c>(
        conn: &'c mut PgConnection,
        _applied: &'c [Applied],
    ) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        async move {
            conn.execute(sqlx::raw_sql("RESET ALL")).await?;
            Ok(())
        }
        .boxed()
    }

    fn fetch_many<'e, 'q: 'e, E>(
        conn: &'e mut PgConnection,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        conn.fetch_many(query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        conn: &'e mut PgConnection,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        conn.fetch_optional(query)
    }

    fn prepare_with<'e, 'q: 'e>(
        conn: &'e mut PgConnection,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<sqlx::postgres::PgStatement<'q>, sqlx::Error>> {
        conn.prepare_with(sql, parameters)
    }

    fn describe_query<'e, 'q: 'e>(
        conn: &'e mut PgConnection,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>> {
        conn.describe(sql)
    }
}
