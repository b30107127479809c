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
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            reset_statement: "DISCARD ALL".to_owned(),
            close_grace: Duration::from_secs(1),
        }
    }
}
