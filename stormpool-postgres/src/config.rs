//! What the manager does with its connections beyond what the
//! `tokio_postgres::Config` (server, user, database) says.

use std::time::Duration;

/// Options of a [`PgManager`](crate::PgManager). Plain data: start from
/// [`ManagerConfig::default`] and change fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// The statement [`reset`](stormpool::Manager::reset) runs to return a
    /// session to a clean state before it serves a request asking for other
    /// settings. It must undo every setting [`apply`](stormpool::Manager::apply)
    /// can make. `DISCARD ALL` also drops prepared statements, temporary
    /// tables, advisory locks and listeners; `RESET ALL` is cheaper when
    /// sessions only ever carry settings. Not sent behind a transaction
    /// pooler ([`pooler`](Self::pooler)), where the session it would reach
    /// is whichever the pooler picks, and settings never stay on one.
    /// Default: `DISCARD ALL`.
    pub reset_statement: String,
    /// How long a closed connection may take to say goodbye to the server
    /// (the protocol's `Terminate`) before its socket is dropped. A
    /// connection closed while the server does not answer (a frozen server,
    /// a statement stuck in flight) is cut after this, so closing never
    /// leaks a task. Default: 1 s.
    pub close_grace: Duration,
    /// How long past a request's deadline a tracked statement waits for
    /// the server before the client gives up on it (a frozen or cut-off
    /// server): the statement fails with a timeout [`Error`](crate::Error),
    /// and the pool cancels it and drains or closes the connection. The
    /// server's own bound stops a live server's statement before the
    /// deadline; this only catches a server that does not answer. Applies
    /// only to requests with a deadline. Default: 25 ms
    /// ([`DEFAULT_STATEMENT_GRACE`](stormpool::statements::DEFAULT_STATEMENT_GRACE)).
    pub statement_grace: Duration,
    /// How many prepared statements
    /// [`prepare_cached`](crate::PgConnection::prepare_cached) keeps per
    /// connection, evicting the least recently used (0: caches nothing).
    /// Each costs a little memory on the server. Behind a transaction
    /// pooler ([`pooler`](Self::pooler)) it holds statements' parameter and
    /// column types instead, and nothing on the server; with 0 there, every
    /// statement is described before it runs, and a prepared statement
    /// cannot be run by its handle. Default: 100.
    pub statement_cache_capacity: usize,
    /// What stands between the manager and PostgreSQL: nothing (or a
    /// pooler in session mode), or a pooler in transaction mode such as
    /// PgBouncer's `pool_mode = transaction`, which gives each transaction
    /// whichever server session is free. See the crate docs, "Behind
    /// PgBouncer", for what changes. Default: [`Pooler::None`].
    pub pooler: Pooler,
}

/// What stands between a [`PgManager`](crate::PgManager) and the server
/// ([`ManagerConfig::pooler`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Pooler {
    /// A server session per connection: the server itself, or a pooler in
    /// session mode. Prepared statements, settings and the deadline's
    /// bound live on the session.
    #[default]
    None,
    /// A pooler in transaction mode (PgBouncer, PgCat, Supavisor, Odyssey):
    /// consecutive transactions of one connection may run on different
    /// server sessions, and whatever one leaves on a server session is
    /// seen by the next client there. Statements run unnamed, settings and
    /// the deadline's bound are set for one transaction at a time
    /// (`set_config(.., true)`), and the reset sends nothing.
    Transaction,
}

impl Pooler {
    /// Whether a connection's consecutive transactions may run on
    /// different server sessions.
    pub fn is_transaction(self) -> bool {
        self == Pooler::Transaction
    }
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            reset_statement: "DISCARD ALL".to_owned(),
            close_grace: Duration::from_secs(1),
            statement_grace: stormpool::statements::DEFAULT_STATEMENT_GRACE,
            statement_cache_capacity: 100,
            pooler: Pooler::None,
        }
    }
}
