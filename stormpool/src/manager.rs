//! The trait a database driver implements to be pooled.

use std::future::Future;

use crate::Settings;

/// Creates, probes, configures and cancels connections for a [`Pool`](crate::Pool).
///
/// The pool never calls a manager method while holding its own lock, and
/// bounds every async method in time (`connect_timeout`, `check_timeout`,
/// the request's deadline), so a manager may block on the network freely.
/// The pool also never drops a future of `connect` half-way because a request
/// gave up: connects run as their own tasks and their result goes to the next
/// waiter or the idle store.
///
/// Async methods return `impl Future + Send`; implement them with `async`
/// blocks or `async fn`.
pub trait Manager: Send + Sync + 'static {
    /// The pooled connection.
    type Connection: Send + 'static;
    /// The driver's error, carried to the caller by
    /// [`AcquireError`](crate::AcquireError).
    type Error: std::error::Error + Send + Sync + 'static;
    /// What [`cancel`](Manager::cancel) needs to stop the statement running on
    /// a connection while somebody else holds the connection (a PostgreSQL
    /// cancel key, a MySQL connection id). Use `()` when the driver has none.
    type CancelToken: Send + Sync + 'static;

    /// Opens a new connection.
    fn connect(&self) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;

    /// A cheap synchronous test, run on every return and checkout: `true`
    /// when the connection is known to be unusable (closed socket, protocol
    /// error seen). It must not do I/O.
    fn is_broken(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        false
    }

    /// A real round trip to the server (an empty query, a ping), run at
    /// checkout when the connection has been idle for longer than
    /// `check_interval`. A hung server is only found this way: a socket
    /// can look open while nothing answers. The pool bounds it with
    /// `check_timeout`.
    fn check(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Brings the connection's session to `settings`, on top of a clean
    /// session. The default does nothing.
    fn apply(
        &self,
        conn: &mut Self::Connection,
        settings: &Settings,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = (conn, settings);
        async { Ok(()) }
    }

    /// Returns the session to a clean state (`DISCARD ALL`, a protocol reset),
    /// before a connection that carries settings serves a request that asked
    /// for other ones. The default does nothing.
    fn reset(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = conn;
        async { Ok(()) }
    }

    /// Whether the connection came back with a statement still running on
    /// the server: its holder dropped a query future half-way (a request
    /// that gave up at its deadline). Called on every return; must not do
    /// I/O. Such a connection is not handed to anyone until the server is
    /// idle on it: the pool cancels the statement ([`cancel`](Manager::cancel)),
    /// keeps the connection out of circulation (counted as draining) until
    /// [`recycle`](Manager::recycle) (by default the probe,
    /// [`check`](Manager::check)) answers, and closes it if that takes
    /// longer than `abandon_timeout`. A connection that comes back broken
    /// or tainted with a statement in flight is closed, and the statement
    /// cancelled all the same, so the server does not finish it for nobody. The next request never queues behind
    /// work nobody will read. The default, `false`, means the manager cannot
    /// tell.
    fn statement_in_flight(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        false
    }

    /// Whether the connection came back carrying session state that the
    /// next request must not inherit and that [`recycle`](Manager::recycle)
    /// can undo: an open or failed transaction, say. Called on every return
    /// (after [`statement_in_flight`](Manager::statement_in_flight)); must
    /// not do I/O. Such a connection is drained as an abandoned statement
    /// is, minus the cancel: out of circulation until `recycle` succeeds,
    /// closed if it fails or takes longer than `abandon_timeout`. The
    /// returner never waits for it. The default, `false`, means the session
    /// needs nothing.
    fn needs_recycle(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        false
    }

    /// Brings a returned connection back to a clean state before it serves
    /// anyone else (a `ROLLBACK` of a transaction left open), and proves the
    /// server idle on the session. Run off the returner's path, bounded by
    /// `abandon_timeout`, for a connection that came back with a statement
    /// still running (after [`cancel`](Manager::cancel)) or that
    /// [`needs_recycle`](Manager::needs_recycle). The default runs
    /// [`check`](Manager::check), which answers once the server is idle on
    /// the session.
    fn recycle(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.check(conn)
    }

    /// Called when a request takes the connection, with the request's
    /// deadline when it set one ([`AcquireOptions::deadline`](crate::AcquireOptions::deadline))
    /// and the pool propagates deadlines (`propagate_deadline`). A manager
    /// can bound the request's statements on the server by the remaining
    /// time (`statement_timeout`, `max_statement_time`), so the database
    /// stops work whose client has left. Synchronous and on the hot path:
    /// record the deadline and send it with the next statement
    /// ([`statement_bound`](crate::statements::statement_bound) gives the
    /// bound to send). The default does nothing.
    fn on_checkout(&self, conn: &mut Self::Connection, deadline: Option<crate::clock::Instant>) {
        let _ = (conn, deadline);
    }

    /// Closes the connection, returning once the server has let go of the
    /// session (the driver said goodbye and the server hung up). Until then
    /// the pool counts the connection against `max_size` (or against
    /// `max_orphans`, for a revoked one), so a replacement never runs beside
    /// it and the server never sees more than `max_size + max_orphans`
    /// sessions of the pool. Run as a task of its own, bounded by
    /// `check_timeout`. The default drops the connection, which closes it
    /// without waiting.
    fn close(&self, conn: Self::Connection) -> impl Future<Output = ()> + Send {
        async move { drop(conn) }
    }

    /// The token with which [`cancel`](Manager::cancel) reaches this
    /// connection's session; taken once, right after connecting.
    fn cancel_token(&self, conn: &Self::Connection) -> Self::CancelToken;

    /// Asks the server to stop the statement running on the session behind
    /// `token` (server-side cancel), without touching the connection itself,
    /// which its holder may be using. Used by the lease watchdog and for
    /// statements abandoned by their request. The default does nothing.
    ///
    /// Return only once the cancel can no longer hit a statement sent after
    /// it: the pool sends the next statement (its probe, then the next
    /// request's) as soon as this returns. PostgreSQL's cancel request, for
    /// one, is acted on by the server after the client's call returns; wait
    /// for the server to close the cancel connection.
    fn cancel(
        &self,
        token: &Self::CancelToken,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = token;
        async { Ok(()) }
    }
}
