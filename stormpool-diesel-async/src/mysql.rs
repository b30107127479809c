//! MySQL and MariaDB through diesel-async's `AsyncMysqlConnection`: the
//! connect, the cancel (`KILL QUERY`), the rollback.
//!
//! # What cannot be done here
//!
//! - **No bound on the server.** The `SET` of `max_statement_time` would
//!   have to run before the statement, but diesel-async hands the adapter
//!   the statement and the connection together (`load` borrows the
//!   connection for the statement's whole life) and mysql_async does not
//!   pipeline. Statements are bounded on the client (the deadline plus the
//!   grace), and then stopped on the server with `KILL QUERY`.
//! - **An abandoned statement costs the connection.** mysql_async cannot
//!   finish a statement whose future was dropped (it marks the connection
//!   disconnected), and diesel-async's connection cannot be taken apart to
//!   finish it later. The pool stops the statement (`KILL QUERY`) and
//!   closes the connection.

use std::fmt;

use diesel::mysql::Mysql;
use diesel::query_builder::{AsQuery, QueryFragment, QueryId};
use diesel_async::{AsyncConnectionCore, AsyncMysqlConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use mysql_async::prelude::Queryable;
use mysql_async::Opts;
use stormpool::statements::mentions_keyword;

use crate::driver::sealed::Sealed;
use crate::error::{Error, Operation};
use crate::tracked::{track, track_rows, Flight, TrackedRows};

/// What a cancel needs to find a MySQL session: its connection id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MySqlSession {
    connection_id: u32,
}

impl MySqlSession {
    /// The server's id of the session (`CONNECTION_ID()`), as in the
    /// process list.
    pub fn connection_id(&self) -> u32 {
        self.connection_id
    }
}

impl Sealed for AsyncMysqlConnection {
    type Target = Opts;
    type Token = MySqlSession;

    const SERVER_BOUND: bool = false;
    const SURVIVES_ABANDON: bool = false;

    fn target_from_url(url: &str) -> Result<Opts, Error> {
        Opts::from_url(url).map_err(|e| {
            // A URL error's own Display shows the values it complains about.
            let problem = match e {
                mysql_async::UrlError::UnknownParameter { param } => {
                    format!("unknown URL parameter `{param}`")
                }
                mysql_async::UrlError::InvalidParamValue { param, .. } => {
                    format!("invalid value for URL parameter `{param}`")
                }
                mysql_async::UrlError::UnsupportedScheme { scheme } => {
                    format!("unsupported URL scheme `{scheme}`")
                }
                mysql_async::UrlError::Parse(e) => format!("URL parse error: {e}"),
                _ => "invalid or incomplete URL".to_owned(),
            };
            Error::config(problem)
        })
    }

    fn describe_target(opts: &Opts) -> String {
        format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port())
    }

    fn debug_target(opts: &Opts, f: &mut fmt::DebugStruct<'_, '_>) {
        // The driver's own `Debug` of `Opts` prints the password.
        f.field("user", &opts.user())
            .field("host", &opts.ip_or_hostname())
            .field("port", &opts.tcp_port())
            .field("db_name", &opts.db_name());
    }

    fn connect(opts: Opts) -> BoxFuture<'static, Result<(Self, MySqlSession), Error>> {
        async move {
            let target = Self::describe_target(&opts);
            let conn = mysql_async::Conn::new(opts)
                .await
                .map_err(|e| Error::driver(Operation::Connect)(e).at(target.clone()))?;
            let session = MySqlSession {
                connection_id: conn.id(),
            };
            let conn = AsyncMysqlConnection::try_from(conn)
                .await
                .map_err(|e| Error::driver(Operation::Connect)(e).at(target))?;
            Ok((conn, session))
        }
        .boxed()
    }

    /// `KILL QUERY` from a side connection, closed after it.
    fn cancel(opts: Opts, token: MySqlSession) -> BoxFuture<'static, Result<(), Error>> {
        async move {
            let mut side = mysql_async::Conn::new(opts)
                .await
                .map_err(Error::driver(Operation::Cancel))?;
            let killed = side
                .query_drop(format!("KILL QUERY {}", token.connection_id))
                .await;
            let _ = side.disconnect().await;
            match killed {
                // The session ended meanwhile: nothing left to stop.
                Err(mysql_async::Error::Server(e)) if e.code == 1094 => Ok(()),
                other => other.map_err(Error::driver(Operation::Cancel)),
            }
        }
        .boxed()
    }

    /// `BEGIN`, `START TRANSACTION`, `XA START`; a change of `autocommit`;
    /// and `CALL` and `EXECUTE`, which may start one out of sight.
    fn may_open_transaction(sql: &str) -> bool {
        mentions_keyword(
            sql,
            &["BEGIN", "START", "XA", "AUTOCOMMIT", "CALL", "EXECUTE"],
        )
    }

    fn is_bound_timeout(_: &diesel::result::Error) -> bool {
        false
    }

    fn hand_written<Q: QueryFragment<Mysql> + QueryId>(query: &Q) -> Option<String> {
        crate::driver::hand_written(query)
    }

    fn load_tracked<'conn, 'query, T>(
        conn: &'conn mut Self,
        flight: Flight<'conn>,
        source: T,
    ) -> BoxFuture<'conn, diesel::QueryResult<TrackedRows<'conn, Self::Stream<'conn, 'query>>>>
    where
        T: AsQuery + 'query,
        T::Query: QueryFragment<Mysql> + QueryId + 'query,
    {
        let load = AsyncConnectionCore::load(conn, source);
        track_rows(async move { (None, load.await) }.boxed(), flight)
    }

    fn execute_tracked<'conn, 'query, T>(
        conn: &'conn mut Self,
        flight: Flight<'conn>,
        source: T,
    ) -> BoxFuture<'conn, diesel::QueryResult<usize>>
    where
        T: QueryFragment<Mysql> + QueryId + 'query,
    {
        let execute = AsyncConnectionCore::execute_returning_count(conn, source);
        track(async move { (None, execute.await) }.boxed(), flight)
    }

    fn batch_tracked<'conn>(
        conn: &'conn mut Self,
        flight: Flight<'conn>,
        query: &'conn str,
    ) -> BoxFuture<'conn, diesel::QueryResult<()>> {
        let batch = async move { (None, conn.batch_execute(query).await) };
        track(batch.boxed(), flight)
    }

    /// Nothing to wait for: a connection with a statement in flight is
    /// closed, never drained (see the module's docs).
    fn drain(&mut self) -> BoxFuture<'_, diesel::QueryResult<()>> {
        async { Ok(()) }.boxed()
    }

    /// MariaDB says whether the session is in a transaction
    /// (`@@in_transaction`); MySQL does not, and gets a `ROLLBACK`
    /// regardless (which does nothing outside a transaction).
    fn end_transaction(&mut self) -> BoxFuture<'_, diesel::QueryResult<bool>> {
        async move {
            let probe = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "CAST(@@in_transaction AS SIGNED)",
            ))
            .get_result::<i64>(&mut *self)
            .await;
            let in_transaction = !matches!(probe, Ok(0));
            if in_transaction {
                self.batch_execute("ROLLBACK").await?;
            }
            Ok(in_transaction)
        }
        .boxed()
    }
}
