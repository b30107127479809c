//! What the manager does with its connections beyond what the connection
//! options (server, user, database) say.

use std::time::Duration;

/// Options of a [`DieselManager`](crate::DieselManager). Plain data: start
/// from [`ManagerConfig::default`] and change fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// The bound of a [`cancel`](stormpool::Manager::cancel): reaching the
    /// server and having it act on the cancel. Default: 5 s.
    pub cancel_timeout: Duration,
    /// The most cancels under way at once (each is a connection of its own
    /// to the server). Further cancels wait for a turn, within
    /// `cancel_timeout`. Default: 4. At least 1.
    pub max_concurrent_cancels: usize,
    /// How long past a request's deadline a tracked statement waits for the
    /// server before the client gives up on it: the statement fails with a
    /// database error whose message says so ([`Error::is_timeout`](crate::Error::is_timeout)),
    /// and the pool cancels it and drains or closes the connection.
    /// Applies only to requests with a deadline. Default: 25 ms
    /// ([`DEFAULT_STATEMENT_GRACE`](stormpool::statements::DEFAULT_STATEMENT_GRACE)).
    pub statement_grace: Duration,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            cancel_timeout: Duration::from_secs(5),
            max_concurrent_cancels: 4,
            statement_grace: stormpool::statements::DEFAULT_STATEMENT_GRACE,
        }
    }
}
