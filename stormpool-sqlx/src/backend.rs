//! What differs between the databases: [`Backend`], implemented for sqlx's
//! [`Postgres`](sqlx::Postgres) and [`MySql`](sqlx::MySql) (features
//! `postgres` and `mysql`).

use std::fmt;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use sqlx::{Describe, Either, Execute};
use stormpool::Settings;

use crate::error::Error;
use stormpool::statements::Bound;

/// sqlx's connect options of a database.
pub type Options<DB> = <<DB as sqlx::Database>::Connection as sqlx::Connection>::Options;

/// A database this crate has a manager for: [`sqlx::Postgres`] (feature
/// `postgres`) or [`sqlx::MySql`] (feature `mysql`). Sealed: what the
/// manager needs of each database is this crate's business.
pub trait Backend: sqlx::Database + driver::Driver {}

impl<DB: sqlx::Database + driver::Driver> Backend for DB {}

pub(crate) mod driver {
    use super::*;

    /// The per-database half of the adapter. Public in a private module:
    /// nameable by [`Backend`]'s bound, not by users.
    pub trait Driver: sqlx::Database {
        /// What a cancel needs to find the session again.
        type Token: fmt::Debug + Clone + Send + Sync + 'static;

        /// Whether a rollback undoes a `SET` of the bound (PostgreSQL).
        const BOUND_IS_TRANSACTIONAL: bool;
        /// The session variable that bounds statements.
        const BOUND_VARIABLE: &'static str;

        /// Whether `sql` may leave the session inside a transaction.
        fn may_open_transaction(sql: &str) -> bool;

        /// Whether the server stopped a statement at its time bound.
        fn is_bound_timeout(e: &sqlx::Error) -> bool;

        /// Whether the server has no such variable as the bound.
        fn is_unknown_variable(e: &sqlx::Error) -> bool;

        /// `host:port` (or the socket), for connect errors.
        fn target(options: &Options<Self>) -> String;

        /// Chosen fields of `options`, never the password.
        fn describe(options: &Options<Self>, f: &mut fmt::DebugStruct<'_, '_>);

        /// Reads the session's id off a new connection.
        fn token(conn: &mut Self::Connection) -> BoxFuture<'_, Result<Self::Token, sqlx::Error>>;

        /// Stops the statement running on `token`'s session from a side
        /// connection of its own.
        fn cancel(
            options: Options<Self>,
            token: Self::Token,
        ) -> BoxFuture<'static, Result<(), sqlx::Error>>;

        /// Puts `bound` on the session; `restore` is the value the
        /// session's settings gave the bound variable, if they did.
        fn set_bound<'c>(
            conn: &'c mut Self::Connection,
            bound: Bound,
            restore: Option<&'c str>,
        ) -> BoxFuture<'c, Result<(), sqlx::Error>>;

        /// Ends a transaction the session may be in; `Ok(true)` when it was
        /// in one and rolled back.
        fn end_transaction(conn: &mut Self::Connection)
            -> BoxFuture<'_, Result<bool, sqlx::Error>>;

        /// Sets every pair of `settings` on the session; returns what
        /// [`reset`](Driver::reset) needs to undo it: each variable set, with
        /// its value before (where the database needs it).
        fn apply<'c>(
            conn: &'c mut Self::Connection,
            settings: &'c Settings,
        ) -> BoxFuture<'c, Result<Vec<Applied>, Error>>;

        /// Undoes what [`apply`](Driver::apply) set.
        fn reset<'c>(
            conn: &'c mut Self::Connection,
            applied: &'c [Applied],
        ) -> BoxFuture<'c, Result<(), sqlx::Error>>;

        /// sqlx's own [`Executor::fetch_many`](sqlx::Executor::fetch_many).
        #[allow(clippy::type_complexity)]
        fn fetch_many<'e, 'q: 'e, E>(
            conn: &'e mut Self::Connection,
            query: E,
        ) -> BoxStream<'e, Result<Either<Self::QueryResult, Self::Row>, sqlx::Error>>
        where
            E: 'q + Execute<'q, Self>;

        /// sqlx's own [`Executor::fetch_optional`](sqlx::Executor::fetch_optional).
        fn fetch_optional<'e, 'q: 'e, E>(
            conn: &'e mut Self::Connection,
            query: E,
        ) -> BoxFuture<'e, Result<Option<Self::Row>, sqlx::Error>>
        where
            E: 'q + Execute<'q, Self>;

        /// sqlx's own [`Executor::prepare_with`](sqlx::Executor::prepare_with).
        fn prepare_with<'e, 'q: 'e>(
            conn: &'e mut Self::Connection,
            sql: &'q str,
            parameters: &'e [Self::TypeInfo],
        ) -> BoxFuture<'e, Result<Self::Statement<'q>, sqlx::Error>>;

        /// sqlx's own [`Executor::describe`](sqlx::Executor::describe).
        fn describe_query<'e, 'q: 'e>(
            conn: &'e mut Self::Connection,
            sql: &'q str,
        ) -> BoxFuture<'e, Result<Describe<Self>, sqlx::Error>>;
    }
}

/// A session variable that settings set, with its value before, where the
/// database needs it to undo the change.
#[derive(Clone, Debug)]
// PostgreSQL resets everything at once and reads none of it.
#[cfg_attr(not(feature = "mysql"), allow(dead_code))]
pub struct Applied {
    pub(crate) name: String,
    pub(crate) before: Option<String>,
}
