//! What the manager does with its connections beyond what the
//! `mysql_async::Opts` (server, user, database) say.

use std::time::Duration;

/// Options of a [`MySqlManager`](crate::MySqlManager). Plain data: start
/// from [`ManagerConfig::default`] and change fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// How long a closed connection may take to say goodbye to the server
    /// (`COM_QUIT`) before its socket is dropped. A connection closed while
    /// the server does not answer is cut after this, so closing never leaks
    /// a task. Default: 1 s.
    pub close_grace: Duration,
    /// The bound of a [`cancel`](stormpool::Manager::cancel): connecting the
    /// side connection and sending `KILL QUERY`. Default: 5 s.
    pub cancel_timeout: Duration,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            close_grace: Duration::from_secs(1),
            cancel_timeout: Duration::from_secs(5),
        }
    }
}
