//! What the manager does with its connections beyond what sqlx's connect
//! options (server, user, database) say.

use std::time::Duration;

/// Options of a [`SqlxManager`](crate::SqlxManager). Plain data: start from
/// [`ManagerConfig::default`] and change fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// How long a closed connection may take to say goodbye to the server
    /// before its socket is dropped. A connection closed while the server
    /// does not answer is cut after this, so closing never leaks a task.
    /// Default: 1 s.
    pub close_grace: Duration,
    /// The bound of a [`cancel`](stormpool::Manager::cancel): opening the
    /// side connection and sending the cancel over it. Default: 5 s.
    pub cancel_timeout: Duration,
    /// The most cancels under way at once. Each opens a side session of its
    /// own on the server, beside the pool's: the server never sees more
    /// than `max_size + max_orphans + max_concurrent_cancels` sessions of a
    /// pool. Further cancels wait for a turn, within `cancel_timeout`.
    /// Default: 4. At least 1.
    pub max_concurrent_cancels: usize,
    /// How long past a request's deadline a tracked statement waits for the
    /// server before the client gives up on it (a frozen or cut-off
    /// server): the statement fails with an I/O error of kind `TimedOut`,
    /// and the pool cancels it and drains or closes the connection. The
    /// server's own bound stops a live server's statement before the
    /// deadline; this only catches a server that does not answer. Applies
    /// only to requests with a deadline. Default: 25 ms
    /// ([`DEFAULT_STATEMENT_GRACE`](stormpool::statements::DEFAULT_STATEMENT_GRACE)).
    pub statement_grace: Duration,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            close_grace: Duration::from_secs(1),
            cancel_timeout: Duration::from_secs(5),
            max_concurrent_cancels: 4,
            statement_grace: stormpool::statements::DEFAULT_STATEMENT_GRACE,
        }
    }
}
