//! MySQL and MariaDB through sqlx: the session's id, the cancel
//! (`KILL QUERY`), the bound (MariaDB's `max_statement_time`) and the
//! rollback.

use std::fmt;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::FutureExt;
use sqlx::mysql::{
    MySql, MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlQueryResult, MySqlRow,
    MySqlTypeInfo,
};
use sqlx::{Connection, Describe, Either, Execute, Executor};
use stormpool::statements::is_variable_name;
use stormpool::Settings;

use crate::backend::{driver::Driver, Applied};
use crate::error::{Error, Operation};
use stormpool::statements::mentions_keyword;
use stormpool::statements::Bound;

/// What a cancel needs to find a MySQL session: its connection id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MySqlSession {
    connection_id: u64,
}

impl MySqlSession {
    /// The server's id of the session (`CONNECTION_ID()`), as in the
    /// process list.
    pub fn connection_id(&self) -> u64 {
        self.connection_id
    }
}

/// `ER_UNKNOWN_SYSTEM_VARIABLE`: the server has no `max_statement_time`.
const UNKNOWN_VARIABLE: u16 = 1193;
/// `ER_STATEMENT_TIMEOUT`: the statement ran past `max_statement_time`.
const STATEMENT_TIMEOUT: u16 = 1969;

fn server_code(e: &sqlx::Error) -> Option<u16> {
    match e {
        sqlx::Error::Database(e) => e
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(|e| e.number()),
        _ => None,
    }
}

/// A value as MySQL wants it: integers as integers (it refuses a string
/// for a numeric variable), anything else as a string.
fn bind_value<'q>(
    query: sqlx::query::Query<'q, MySql, sqlx::mysql::MySqlArguments>,
    value: &'q str,
) -> sqlx::query::Query<'q, MySql, sqlx::mysql::MySqlArguments> {
    match (value.parse::<i64>(), value.parse::<f64>()) {
        (Ok(n), _) => query.bind(n),
        (_, Ok(x)) => query.bind(x),
        _ => query.bind(value),
    }
}

impl Driver for MySql {
    type Token = MySqlSession;

    const BOUND_IS_TRANSACTIONAL: bool = false;
    const BOUND_VARIABLE: &'static str = "max_statement_time";

    /// `BEGIN`, `START TRANSACTION`, `XA START`; a change of `autocommit`
    /// (after `SET autocommit = 0` every statement opens one); and `CALL`
    /// and `EXECUTE`, since a procedure or a prepared statement may start
    /// one out of sight.
    fn may_open_transaction(sql: &str) -> bool {
        mentions_keyword(
            sql,
            &["BEGIN", "START", "XA", "AUTOCOMMIT", "CALL", "EXECUTE"],
        )
    }

    fn is_bound_timeout(e: &sqlx::Error) -> bool {
        server_code(e) == Some(STATEMENT_TIMEOUT)
    }

    fn is_unknown_variable(e: &sqlx::Error) -> bool {
        server_code(e) == Some(UNKNOWN_VARIABLE)
    }

    fn target(options: &MySqlConnectOptions) -> String {
        match options.get_socket() {
            Some(socket) => socket.display().to_string(),
            None => format!("{}:{}", options.get_host(), options.get_port()),
        }
    }

    fn describe(options: &MySqlConnectOptions, f: &mut fmt::DebugStruct<'_, '_>) {
        f.field("user", &options.get_username())
            .field("host", &options.get_host())
            .field("port", &options.get_port())
            .field("database", &options.get_database());
    }

    fn token(conn: &mut MySqlConnection) -> BoxFuture<'_, Result<MySqlSession, sqlx::Error>> {
        async move {
            let connection_id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
                .fetch_one(&mut *conn)
                .await?;
            Ok(MySqlSession { connection_id })
        }
        .boxed()
    }

    fn cancel(
        options: MySqlConnectOptions,
        token: MySqlSession,
    ) -> BoxFuture<'static, Result<(), sqlx::Error>> {
        async move {
            let mut side = MySqlConnection::connect_with(&options).await?;
            let killed = side
                .execute(sqlx::raw_sql(&format!(
                    "KILL QUERY {}",
                    token.connection_id
                )))
                .await;
            let _ = side.close().await;
            match killed {
                // The session ended meanwhile: nothing left to stop.
                Err(e) if server_code(&e) == Some(1094) => Ok(()),
                other => other.map(drop),
            }
        }
        .boxed()
    }

    fn set_bound<'c>(
        conn: &'c mut MySqlConnection,
        bound: Bound,
        restore: Option<&'c str>,
    ) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        async move {
            match (bound, restore) {
                (Bound::Millis(ms), _) => {
                    let seconds = f64::from(ms) / 1000.0;
                    // The text protocol: nothing prepared per value.
                    conn.execute(sqlx::raw_sql(&format!(
                        "SET SESSION max_statement_time = {seconds}"
                    )))
                    .await?;
                }
                (Bound::Default, None) => {
                    conn.execute(sqlx::raw_sql("SET SESSION max_statement_time = DEFAULT"))
                        .await?;
                }
                (Bound::Default, Some(value)) => {
                    bind_value(sqlx::query("SET SESSION max_statement_time = ?"), value)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            Ok(())
        }
        .boxed()
    }

    /// MariaDB says whether the session is in a transaction
    /// (`@@in_transaction`); MySQL does not, and gets a `ROLLBACK`
    /// regardless (which does nothing outside a transaction).
    fn end_transaction(conn: &mut MySqlConnection) -> BoxFuture<'_, Result<bool, sqlx::Error>> {
        async move {
            let probe: Result<i64, _> =
                sqlx::query_scalar("SELECT CAST(@@in_transaction AS SIGNED)")
                    .fetch_one(&mut *conn)
                    .await;
            let in_transaction = match probe {
                Ok(n) => n != 0,
                Err(e) if Self::is_unknown_variable(&e) => true,
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
        conn: &'c mut MySqlConnection,
        settings: &'c Settings,
    ) -> BoxFuture<'c, Result<Vec<Applied>, Error>> {
        async move {
            let mut applied = Vec::new();
            for (name, value) in settings.iter() {
                if !is_variable_name(name) {
                    return Err(Error::invalid_setting_name(name));
                }
                // The value before, to put back: sqlx sets some variables
                // at connect (`time_zone`, `sql_mode`), which the server's
                // DEFAULT would not restore.
                let before: Option<String> =
                    sqlx::query_scalar(&format!("SELECT CAST(@@session.{name} AS CHAR)"))
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(Error::driver(Operation::Apply))?;
                // Values travel as parameters, never spliced into SQL.
                bind_value(sqlx::query(&format!("SET SESSION {name} = ?")), value)
                    .execute(&mut *conn)
                    .await
                    .map_err(Error::driver(Operation::Apply))?;
                applied.push(Applied {
                    name: name.to_owned(),
                    before,
                });
            }
            Ok(applied)
        }
        .boxed()
    }

    /// Every variable the settings set, back to its value before.
    fn reset<'c>(
        conn: &'c mut MySqlConnection,
        applied: &'c [Applied],
    ) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        async move {
            // Last set first: a variable set twice gets its first value back.
            for Applied { name, before } in applied.iter().rev() {
                // Names were checked when applied.
                match before {
                    Some(value) => {
                        bind_value(sqlx::query(&format!("SET SESSION {name} = ?")), value)
                            .execute(&mut *conn)
                            .await?;
                    }
                    None => {
                        conn.execute(sqlx::raw_sql(&format!("SET SESSION {name} = DEFAULT")))
                            .await?;
                    }
                }
            }
            Ok(())
        }
        .boxed()
    }

    fn fetch_many<'e, 'q: 'e, E>(
        conn: &'e mut MySqlConnection,
        query: E,
    ) -> BoxStream<'e, Result<Either<MySqlQueryResult, MySqlRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, MySql>,
    {
        conn.fetch_many(query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        conn: &'e mut MySqlConnection,
        query: E,
    ) -> BoxFuture<'e, Result<Option<MySqlRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, MySql>,
    {
        conn.fetch_optional(query)
    }

    fn prepare_with<'e, 'q: 'e>(
        conn: &'e mut MySqlConnection,
        sql: &'q str,
        parameters: &'e [MySqlTypeInfo],
    ) -> BoxFuture<'e, Result<sqlx::mysql::MySqlStatement<'q>, sqlx::Error>> {
        conn.prepare_with(sql, parameters)
    }

    fn describe_query<'e, 'q: 'e>(
        conn: &'e mut MySqlConnection,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<MySql>, sqlx::Error>> {
        conn.describe(sql)
    }
}
