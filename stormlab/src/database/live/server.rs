//! What each live database provides to the shared run: the server
//! ([`Server`]) and the lab's own connections to it ([`LabConnection`]);
//! and the helpers its connections share.

use std::future::Future;
use std::time::Duration;

use stormpool::statements::StatementStats;

use super::workload::{Statement, Workload};
use crate::base::{DbUrl, LabError, PoolKind};
use crate::pools::{PoolSetup, SharedPool};

/// The name the lab's pools give their sessions, where the server keeps one.
pub const APPLICATION: &str = "stormlab";

/// How long the lab's own connections may take to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A live database server, as the lab runs its pools against it: the
/// statement that keeps it busy, its adapter and its peers' pools, all
/// connecting to the server's address and running one [`Workload`]. The
/// run itself is the same for every server (`Live`, in this module's
/// parent).
pub trait Server: Sized + Send + Sync + 'static {
    /// The database's name in reports and errors.
    const NAME: &'static str;

    /// How the adapter's counter of statements stopped by the propagated
    /// deadline is worded in the notes (after "stopped by the propagated
    /// deadline").
    const STOPPED: &'static str;

    /// The server's variable that bounds a statement.
    const BOUND: &'static str;

    /// A connection of the lab's own.
    type Conn: LabConnection;

    /// The adapter's stormpool manager.
    type Manager: stormpool::Manager;

    /// The server at `url`, its pools running `work`.
    fn new(url: &DbUrl, work: Workload) -> Result<Self, LabError>;

    /// The statement that keeps the server busy for `seconds`.
    fn sleep(seconds: f64) -> String;

    /// The adapter's manager for the server.
    fn manager(&self) -> Self::Manager;

    /// What the adapter counted about its statements.
    fn statement_stats(manager: &Self::Manager) -> StatementStats;

    /// Runs `sql` on a connection of the adapter, tracked by it.
    fn query(
        conn: &mut <Self::Manager as stormpool::Manager>::Connection,
        sql: String,
    ) -> impl Future<Output = Statement> + Send;

    /// Builds `kind`, a peer of stormpool's, over the server; a kind that
    /// does not run on this server is an error.
    fn build_peer(&self, kind: PoolKind, setup: &PoolSetup) -> Result<SharedPool, LabError>;
}

/// A connection of the lab's own to a live server, apart from the pools':
/// it cleans and prepares the server, times a statement on it, and samples
/// its sessions.
pub trait LabConnection: Sized + Send + 'static {
    /// Connects within [`CONNECT_TIMEOUT`], the session named `role` where
    /// the server keeps names.
    fn connect(url: &DbUrl, role: &'static str) -> impl Future<Output = Result<Self, LabError>>;

    /// Closes the connection.
    fn close(self) -> impl Future<Output = ()>;

    /// Readies the server for the lab's statements; the connection stays
    /// open as long as they run.
    fn prepare(&mut self) -> impl Future<Output = Result<(), LabError>>;

    /// Ends the sessions the lab's pools left on the server; how many
    /// there were.
    fn end_lab_sessions(&mut self) -> impl Future<Output = Result<usize, LabError>>;

    /// Runs `sql`, to time it.
    fn run_statement(&mut self, sql: &str) -> impl Future<Output = Result<(), LabError>>;

    /// The attempts whose tagged statements are running on the server now
    /// (any session of the lab's pools); `None` if the connection failed.
    fn running(&mut self) -> impl Future<Output = Option<Vec<u64>>> + Send;
}

/// Waits for `connect` at most [`CONNECT_TIMEOUT`]: a driver's own limit
/// covers the TCP connect only, not a server that never answers.
pub async fn within<T>(
    database: &'static str,
    connect: impl Future<Output = T>,
) -> Result<T, LabError> {
    tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| LabError::Database {
            database,
            doing: "connecting",
            reason: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        })
}

/// The error of a statement of the lab's own, `doing` something on
/// `database`; `reason`: the driver's error, with its sources.
pub fn failed(database: &'static str, doing: &'static str, reason: String) -> LabError {
    LabError::Database {
        database,
        doing,
        reason,
    }
}

/// A pool kind that does not run on `database`.
pub fn unsupported(kind: PoolKind, database: &'static str) -> LabError {
    LabError::PoolUnsupported {
        pool: kind.name(),
        database,
    }
}
