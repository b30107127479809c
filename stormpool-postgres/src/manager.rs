//! [`PgManager`]: opens, probes, configures, resets and cancels
//! tokio-postgres connections for a stormpool [`Pool`](stormpool::Pool).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stormpool::clock::Instant;
use stormpool::Settings;
use tokio::sync::oneshot;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{CancelToken, NoTls, Socket};

use crate::cancel::{self, CancelRoute};
use crate::config::ManagerConfig;
use crate::connect;
use crate::connection::PgConnection;
use crate::error::{Error, Operation};
use crate::session;
use crate::stats::Counters;
use crate::status::{SessionStatus, TxStatus};
use stormpool::statements::StatementStats;

/// What an [`on_connect`](PgManager::on_connect) hook may fail with: any
/// error (this crate's [`Error`] and the driver's convert into it with `?`).
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// The future an [`on_connect`](PgManager::on_connect) hook returns.
pub type HookFuture<'c> = Pin<Box<dyn Future<Output = Result<(), HookError>> + Send + 'c>>;

type OnConnect = Arc<dyn for<'c> Fn(&'c mut PgConnection) -> HookFuture<'c> + Send + Sync>;

/// A [`stormpool::Manager`] for tokio-postgres.
///
/// Generic over the TLS connector `T` (any
/// [`MakeTlsConnect`](tokio_postgres::tls::MakeTlsConnect), such as
/// `postgres_native_tls::MakeTlsConnector` or
/// `tokio_postgres_rustls::MakeRustlsConnect`); [`NoTls`] by default.
///
/// | operation | what it does |
/// |---|---|
/// | `connect` | a socket of its own handed to `Config::connect_raw` (one server, no TLS; else `Config::connect`), the connection's I/O driven by its own task, then the [`on_connect`](PgManager::on_connect) hook; bounded by the pool's `connect_timeout` |
/// | `is_broken` | [`Client::is_closed`](tokio_postgres::Client::is_closed): the server closed the session or the socket failed |
/// | `check` | an empty simple query, one round trip; bounded by the pool's `check_timeout` |
/// | `apply` | `set_config(name, value, false)` for every pair, in one statement; behind a transaction pooler, kept on the connection and set with each transaction (`set_config(.., true)`) |
/// | `reset` | [`ManagerConfig::reset_statement`], `DISCARD ALL` by default; empties the statement cache; behind a transaction pooler, forgets the settings and sends nothing |
/// | `cancel` | the protocol's cancel request (what `pg_cancel_backend` does), waiting until the server has acted on it |
/// | `statement_in_flight` | a [tracked statement](PgConnection) was dropped before it completed |
/// | `needs_recycle` | the session is in a transaction (or a failed one), or busy, or its raw client was reached: one atomic load |
/// | `recycle` | an empty query (the server is idle on the session once it answers), then `ROLLBACK` if the session is in a transaction |
/// | `on_checkout` | records the request's deadline; tracked statements bound themselves by it |
///
/// `Debug` never shows the password.
pub struct PgManager<T = NoTls> {
    config: tokio_postgres::Config,
    tls: T,
    options: ManagerConfig,
    /// Where cancel requests go when the manager sends them itself.
    cancel_route: Option<CancelRoute>,
    /// Where the manager connects itself, watching the session's status.
    own_route: Option<CancelRoute>,
    /// `host:port`, for connect errors.
    target: Option<String>,
    on_connect: Option<OnConnect>,
    counters: Arc<Counters>,
    /// Whether the server looks like a pooler: [`UNPROBED`] .. [`POOLER`].
    pooler_probe: AtomicU8,
    /// Cancel requests that could not be sent.
    cancel_failures: AtomicU64,
}

impl PgManager<NoTls> {
    /// A manager connecting without TLS with `config`.
    pub fn new(config: tokio_postgres::Config) -> Self {
        PgManager::with_tls(config, NoTls)
    }

    /// A manager connecting without TLS to a `postgres://` URL or a
    /// `key=value` connection string.
    ///
    /// The error never contains the string itself (it may hold a password).
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let config = url
            .parse::<tokio_postgres::Config>()
            .map_err(Error::driver(Operation::Config))?;
        Ok(PgManager::new(config))
    }
}

impl<T> PgManager<T> {
    /// A manager connecting with `config` through the TLS connector `tls`.
    pub fn with_tls(config: tokio_postgres::Config, tls: T) -> Self {
        PgManager {
            cancel_route: CancelRoute::for_config(&config),
            own_route: connect::own_route(&config),
            target: connect::describe_target(&config),
            config,
            tls,
            options: ManagerConfig::default(),
            on_connect: None,
            counters: Arc::default(),
            pooler_probe: AtomicU8::new(UNPROBED),
            cancel_failures: AtomicU64::new(0),
        }
    }

    /// Runs `hook` on every new connection, once, before it serves anyone:
    /// set a `search_path`, register types, prepare statements, set session
    /// defaults. A hook that fails fails the connect: the connection is
    /// closed and the pool reports an
    /// [`AcquireError::Connect`](stormpool::AcquireError::Connect) whose
    /// [`operation`](Error::operation) is [`Operation::OnConnect`], with the
    /// hook's error as its source.
    ///
    /// The hook runs within the pool's `connect_timeout`. Settings it puts
    /// on the session survive until a reset (`DISCARD ALL`, when a request
    /// asks for other settings); prefer the pool's settings for values
    /// some requests change.
    ///
    /// ```no_run
    /// # fn f() -> Result<(), stormpool_postgres::Error> {
    /// use stormpool_postgres::PgManager;
    ///
    /// let manager = PgManager::from_url("postgres://app@127.0.0.1/app")?.on_connect(|conn| {
    ///     Box::pin(async move {
    ///         conn.batch_execute("SET search_path TO app, public").await?;
    ///         Ok(())
    ///     })
    /// });
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn on_connect<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut PgConnection) -> HookFuture<'c> + Send + Sync + 'static,
    {
        self.on_connect = Some(Arc::new(hook));
        self
    }

    /// Replaces the manager's options.
    #[must_use]
    pub fn options(mut self, options: ManagerConfig) -> Self {
        self.options = options;
        self
    }

    /// The driver configuration (server, user, database).
    pub fn pg_config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The manager's options.
    pub fn manager_config(&self) -> &ManagerConfig {
        &self.options
    }

    /// What the manager counted over all its connections: statements
    /// stopped by a propagated deadline, bound changes, abandoned
    /// statements.
    pub fn stats(&self) -> StatementStats {
        self.counters.snapshot()
    }
}

/// What the manager found out about the server it reaches.
const UNPROBED: u8 = 0;
const PROBING: u8 = 1;
const DIRECT: u8 = 2;
const POOLER: u8 = 3;

impl<T> PgManager<T> {
    /// Whether the first connection that could tell found a pooler in
    /// front of the server: `Some(true)` when the session's cancel key
    /// named a process other than the server backend serving it, which is
    /// what PgBouncer, PgCat, Supavisor and Odyssey hand out (their own
    /// keys); `Some(false)` when they matched; `None` before a connection
    /// could tell (or over TLS and several hosts, where the manager does
    /// not read the session's stream).
    ///
    /// Found without [`Pooler::Transaction`](crate::Pooler::Transaction)
    /// configured, a warning is logged once (`tracing`): in transaction
    /// mode, prepared statements, settings and the deadline's bound would
    /// reach other clients' sessions. A pooler in session mode looks the
    /// same and needs nothing.
    pub fn pooler_detected(&self) -> Option<bool> {
        match self.pooler_probe.load(Ordering::Relaxed) {
            DIRECT => Some(false),
            POOLER => Some(true),
            _ => None,
        }
    }

    /// How many cancel requests ([`cancel`](stormpool::Manager::cancel))
    /// could not be sent (the server or pooler refused the connection, or
    /// it failed). Whether a sent one stopped its statement, the pool's
    /// drain tells: an empty query queued behind the statement answers
    /// once it is over, and a connection whose statement outlasts
    /// `abandon_timeout` is closed, counted in the pool's
    /// `closed_drain_failed`.
    pub fn cancel_failures(&self) -> u64 {
        self.cancel_failures.load(Ordering::Relaxed)
    }

    /// Compares the new session's cancel key with its backend's process id,
    /// once per manager.
    async fn detect_pooler(&self, conn: &PgConnection, status: &SessionStatus) {
        let Some(key_pid) = status.key_pid() else {
            return;
        };
        // Relaxed: the flag orders nothing else.
        if self
            .pooler_probe
            .compare_exchange(UNPROBED, PROBING, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let backend = conn
            .own_client()
            .simple_query("SELECT pg_backend_pid()")
            .await
            .ok()
            .and_then(|messages| {
                messages.iter().find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0)?.parse::<i32>().ok(),
                    _ => None,
                })
            });
        let Some(backend) = backend else {
            self.pooler_probe.store(UNPROBED, Ordering::Relaxed);
            return;
        };
        let pooler = backend != key_pid;
        self.pooler_probe
            .store(if pooler { POOLER } else { DIRECT }, Ordering::Relaxed);
        if pooler && !self.options.pooler.is_transaction() {
            tracing::warn!(
                target: "stormpool_postgres",
                server = self.target.as_deref().unwrap_or("?"),
                "the server looks like a connection pooler (its cancel key is not its \
                 backend's); if it pools in transaction mode, set ManagerConfig::pooler \
                 to Pooler::Transaction, or prepared statements, settings and deadline \
                 bounds reach other clients' sessions"
            );
        }
    }
}

impl<T> fmt::Debug for PgManager<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // tokio-postgres's own `Debug` of `Config` already shows a password
        // as `_`; printing only chosen fields keeps it that way whatever the
        // driver version does.
        f.debug_struct("PgManager")
            .field("user", &self.config.get_user())
            .field(
                "password",
                &self.config.get_password().map(|_| "<redacted>"),
            )
            .field("hosts", &self.config.get_hosts())
            .field("ports", &self.config.get_ports())
            .field("dbname", &self.config.get_dbname())
            .field("application_name", &self.config.get_application_name())
            .field("options", &self.options)
            .field("on_connect", &self.on_connect.is_some())
            .finish_non_exhaustive()
    }
}

/// Drives a connection's I/O until it ends, or until `grace` after its
/// client was dropped.
async fn drive(
    connection: Pin<Box<dyn Future<Output = ()> + Send>>,
    closing: oneshot::Receiver<()>,
    grace: Duration,
) {
    tokio::pin!(connection);
    tokio::select! {
        _ = &mut connection => return,
        // Sent never; resolves (with an error) when the client side drops.
        _ = closing => {}
    }
    // With its client gone the driver sends `Terminate` and ends at once,
    // unless a request is still waiting for a server that does not answer.
    let _ = tokio::time::timeout(grace, connection).await;
}

impl<T> stormpool::Manager for PgManager<T>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + Sync + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    type Connection = PgConnection;
    type Error = Error;
    type CancelToken = CancelToken;

    async fn connect(&self) -> Result<PgConnection, Error> {
        let opened = match &self.own_route {
            Some(route) if !connect::may_use_tls::<T>(&self.config) => {
                let opening = connect::connect_watched(&self.config, route);
                match connect::connect_timeout(&self.config) {
                    Some(limit) => {
                        tokio::time::timeout(limit, opening)
                            .await
                            .unwrap_or_else(|_| {
                                Err(Error::io(Operation::Connect)(
                                    std::io::ErrorKind::TimedOut.into(),
                                ))
                            })
                    }
                    None => opening.await,
                }
            }
            _ => connect::connect_driver(&self.config, self.tls.clone()).await,
        }
        .map_err(|e| e.at(self.target.clone()))?;
        let (closing_tx, closing_rx) = oneshot::channel();
        let opened_status = opened.status.clone();
        let io = tokio::spawn(drive(opened.io, closing_rx, self.options.close_grace));
        let mut conn = PgConnection::new(
            opened.client,
            closing_tx,
            io,
            self.counters.clone(),
            opened.status,
            self.options.statement_grace,
            self.options.statement_cache_capacity,
        );
        conn.tracker_mut().pooler = self.options.pooler.is_transaction();
        self.detect_pooler(&conn, &opened_status).await;
        if let Some(hook) = &self.on_connect {
            hook(&mut conn).await.map_err(Error::hook)?;
        }
        // The hook's own statements are no reason to clean up.
        conn.tracker_mut().clean();
        Ok(conn)
    }

    fn is_broken(&self, conn: &mut PgConnection) -> bool {
        conn.is_closed()
    }

    /// Also what the pool runs after cancelling an abandoned statement: the
    /// empty query queues behind it on the session, so it answers once the
    /// server is idle there.
    async fn check(&self, conn: &mut PgConnection) -> Result<(), Error> {
        conn.own_client()
            .simple_query("")
            .await
            .map(drop)
            .map_err(Error::driver(Operation::Check))
    }

    fn apply(
        &self,
        conn: &mut PgConnection,
        settings: &Settings,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let statement = session::apply_statement(settings);
        let local = self
            .options
            .pooler
            .is_transaction()
            .then(|| session::local_calls(settings));
        async move {
            if settings.is_empty() {
                return Ok(());
            }
            if let Some(calls) = local {
                // Behind a transaction pooler nothing stays on a session:
                // each transaction of the request's sets them for itself.
                conn.set_local_settings(calls?);
                return Ok(());
            }
            conn.own_client()
                .simple_query(&statement?)
                .await
                .map(drop)
                .map_err(Error::driver(Operation::Apply))?;
            let own_bound = settings
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(session::STATEMENT_TIMEOUT));
            if let Some((_, value)) = own_bound {
                conn.settings_bound(value);
            }
            Ok(())
        }
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<(), Error> {
        // Whatever the statement, the session's bound is not known after it.
        conn.session_reset();
        if self.options.pooler.is_transaction() {
            // The settings lived on the connection only; a statement would
            // reach whichever server session the pooler picks, perhaps
            // another client's prepared statements.
            return Ok(());
        }
        conn.own_client()
            .batch_execute(&self.options.reset_statement)
            .await
            .map_err(Error::driver(Operation::Reset))
    }

    fn statement_in_flight(&self, conn: &mut PgConnection) -> bool {
        conn.take_abandoned()
    }

    fn needs_recycle(&self, conn: &mut PgConnection) -> bool {
        let tracker = conn.tracker_mut();
        let needs = tracker.needs_recycle();
        if !needs {
            tracker.clean();
        }
        needs
    }

    /// Waits until the server is idle on the session (an empty query
    /// answers after whatever was in flight), then ends any transaction
    /// left open or failed. Where the session's status is not seen, asks
    /// the server whether the session is inside a transaction block (the
    /// transaction started before the probe's statement) instead.
    async fn recycle(&self, conn: &mut PgConnection) -> Result<(), Error> {
        let recycle = Operation::Recycle;
        let unseen = conn.tracker_mut().status.get() == TxStatus::Unseen;
        let client = conn.own_client();
        let in_transaction = if unseen {
            let probe = client
                .simple_query("SELECT transaction_timestamp() = statement_timestamp()")
                .await;
            match probe {
                Ok(messages) => !messages.iter().any(|m| {
                    matches!(m, tokio_postgres::SimpleQueryMessage::Row(row) if row.get(0) == Some("t"))
                }),
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION) => true,
                Err(e) => return Err(Error::driver(recycle)(e)),
            }
        } else {
            client
                .simple_query("")
                .await
                .map_err(Error::driver(recycle))?;
            matches!(
                conn.tracker_mut().status.get(),
                TxStatus::InTransaction | TxStatus::Failed
            )
        };
        if in_transaction {
            conn.own_client()
                .batch_execute("ROLLBACK")
                .await
                .map_err(Error::driver(recycle))?;
            // A bound set in the transaction went with it.
            conn.tracker_mut().bound.forget();
            self.counters.recycled();
        }
        conn.tracker_mut().clean();
        Ok(())
    }

    fn on_checkout(&self, conn: &mut PgConnection, deadline: Option<Instant>) {
        conn.set_deadline(deadline);
    }

    /// `Terminate`, waiting (at most `close_grace`) until the server has
    /// closed the session, so the pool opens no replacement beside it.
    async fn close(&self, conn: PgConnection) {
        conn.close().await;
    }

    fn cancel_token(&self, conn: &PgConnection) -> CancelToken {
        conn.cancel_token()
    }

    /// Returns once the server has signalled the session (it hangs up the
    /// cancel connection then), so a statement sent afterwards is never hit
    /// by this cancel; behind a pooler, once the pooler has forwarded it
    /// (the drain's probe then waits for the statement to end). With
    /// several hosts or `sslmode=require` the driver sends the request,
    /// and returns as soon as it is written; behind a transaction pooler
    /// that is refused (an error, counted in
    /// [`cancel_failures`](PgManager::cancel_failures)), since the driver's
    /// request is dropped there.
    async fn cancel(&self, token: &CancelToken) -> Result<(), Error> {
        let sent = match &self.cancel_route {
            Some(route) => cancel::cancel(token, route)
                .await
                .map_err(Error::io(Operation::Cancel)),
            // The driver half-closes its socket once the request is
            // written, which a pooler takes for the client giving up
            // (PgBouncer 1.18 may even exit on it): not behind one.
            None if self.options.pooler.is_transaction() => {
                Err(Error::io(Operation::Cancel)(std::io::Error::other(
                    "behind a transaction pooler the cancel request needs one server \
                     address and plaintext (sslmode disable or prefer)",
                )))
            }
            None => token
                .cancel_query(self.tls.clone())
                .await
                .map_err(Error::driver(Operation::Cancel)),
        };
        if sent.is_err() {
            // Relaxed: a counter read for reporting only.
            self.cancel_failures.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }
}
