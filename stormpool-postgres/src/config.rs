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
    /// sessions only ever carry settings.
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
    /// Each costs a little memory on the server. Default: 100.
    pub statement_cache_capacity: usize,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            reset_statement: "DISCARD ALL".to_owned(),
            close_grace: Duration::from_secs(1),
            statement_grace: stormpool::statements::DEFAULT_STATEMENT_GRACE,
            statement_cache_capacity: 100,
        }
    }
}
