//! [`MySqlManager`]: opens, probes, configures, resets and cancels
//! mysql_async connections for a stormpool [`Pool`](stormpool::Pool).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, DriverError, Opts};
use stormpool::clock::Instant;
use stormpool::Settings;

use crate::config::ManagerConfig;
use crate::connection::MySqlConnection;
use crate::deadline::MAX_STATEMENT_TIME;
use crate::error::{Error, Operation};
use crate::session;
use crate::stats::Counters;
use stormpool::statements::StatementStats;

/// What an [`on_connect`](MySqlManager::on_connect) hook may fail with: any
/// error (this crate's [`Error`] and the driver's convert into it with `?`).
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// The future an [`on_connect`](MySqlManager::on_connect) hook returns.
pub type HookFuture<'c> = Pin<Box<dyn Future<Output = Result<(), HookError>> + Send + 'c>>;

type OnConnect = Arc<dyn for<'c> Fn(&'c mut MySqlConnection) -> HookFuture<'c> + Send + Sync>;

/// A [`stormpool::Manager`] for mysql_async (MySQL and MariaDB).
///
/// | operation | what it does |
/// |---|---|
/// | `connect` | [`Conn::new`], then the [`on_connect`](MySqlManager::on_connect) hook; bounded by the pool's `connect_timeout` |
/// | `is_broken` | [`Conn::is_disconnected`]: an I/O or protocol error was seen, or an untracked statement was abandoned mid-flight |
/// | `check` | `COM_PING`, one round trip; bounded by the pool's `check_timeout` |
/// | `apply` | one prepared `SET SESSION name = ?, ..` |
/// | `reset` | `COM_RESET_CONNECTION` (MySQL 5.7.3+, MariaDB 10.2.4+) |
/// | `cancel` | `KILL QUERY <connection id>` over a side connection |
/// | `statement_in_flight` | a [tracked statement](MySqlConnection) was dropped before it completed |
/// | `needs_recycle` | the server's last OK packet says the session is in a transaction (`SERVER_STATUS_IN_TRANS`), or there was none since an error, or a dropped transaction owes a rollback |
/// | `recycle` | `ROLLBACK` when the session may be in a transaction, else `COM_PING` |
/// | `on_checkout` | records the request's deadline; tracked statements bound themselves by it |
///
/// After a cancel, the pool's `check` first reads the abandoned statement's
/// reply (the connection is in step again, and the server idle on it), then
/// pings. A `KILL QUERY` that arrives after the statement ended does not
/// touch the session's next statement (measured: 0 of 200).
///
/// MariaDB stops a statement (`KILL QUERY`, or its `max_statement_time`
/// timer) by try-locking the mutex the statement waits on, for up to 2 s.
/// A statement waiting on a contended server mutex can take that long to
/// stop: measured with a dozen `SELECT SLEEP()` at once (every `SLEEP()`
/// shares one mutex), `KILL QUERY` took 2.0 s against 1.3 ms alone, and the
/// pool closed those connections at `abandon_timeout` (1 s by default), as
/// it should. Queries waiting on locks or I/O of their own stop at once.
///
/// `Debug` never shows the password.
pub struct MySqlManager {
    opts: Opts,
    options: ManagerConfig,
    on_connect: Option<OnConnect>,
    counters: Arc<Counters>,
    /// Turns for cancels, `max_concurrent_cancels` of them.
    cancels: Arc<tokio::sync::Semaphore>,
}

/// What [`cancel`](stormpool::Manager::cancel) needs: the server's id of the
/// connection (`CONNECTION_ID()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MySqlCancelToken {
    connection_id: u32,
}

impl MySqlCancelToken {
    /// The server's id of the connection, as in the process list.
    pub fn connection_id(&self) -> u32 {
        self.connection_id
    }
}

impl MySqlManager {
    /// A manager connecting with `opts`.
    pub fn new(opts: impl Into<Opts>) -> Self {
        MySqlManager {
            opts: opts.into(),
            options: ManagerConfig::default(),
            on_connect: None,
            counters: Arc::default(),
            cancels: cancel_turns(&ManagerConfig::default()),
        }
    }

    /// Runs `hook` on every new connection, once, before it serves anyone:
    /// set session variables, prepare statements. A hook that fails fails
    /// the connect: the connection is closed and the pool reports an
    /// [`AcquireError::Connect`](stormpool::AcquireError::Connect) whose
    /// [`operation`](Error::operation) is [`Operation::OnConnect`], with the
    /// hook's error as its source. The hook runs within the pool's
    /// `connect_timeout`; what it sets survives until a reset
    /// (`COM_RESET_CONNECTION`, when a request asks for other settings).
    ///
    /// ```no_run
    /// # fn f() -> Result<(), stormpool_mysql::Error> {
    /// use stormpool_mysql::MySqlManager;
    ///
    /// let manager = MySqlManager::from_url("mysql://app@127.0.0.1/app")?.on_connect(|conn| {
    ///     Box::pin(async move {
    ///         conn.query_drop("SET SESSION sql_mode = 'STRICT_ALL_TABLES'").await?;
    ///         Ok(())
    ///     })
    /// });
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn on_connect<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut MySqlConnection) -> HookFuture<'c> + Send + Sync + 'static,
    {
        self.on_connect = Some(Arc::new(hook));
        self
    }

    /// A manager connecting to a `mysql://` URL.
    ///
    /// The error never contains the URL itself (it may hold a password).
    pub fn from_url(url: &str) -> Result<Self, Error> {
        Ok(MySqlManager::new(Opts::from_url(url).map_err(Error::url)?))
    }

    /// Replaces the manager's options.
    #[must_use]
    pub fn options(mut self, options: ManagerConfig) -> Self {
        self.cancels = cancel_turns(&options);
        self.options = options;
        self
    }

    /// The driver options (server, user, database).
    pub fn opts(&self) -> &Opts {
        &self.opts
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

/// The error of an operation that found the driver's connection gone.
fn closed(operation: Operation) -> Error {
    Error::driver(operation)(DriverError::ConnectionClosed.into())
}

impl fmt::Debug for MySqlManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The driver's own `Debug` of `Opts` prints the password: only
        // chosen fields are shown.
        f.debug_struct("MySqlManager")
            .field("user", &self.opts.user())
            .field("password", &self.opts.pass().map(|_| "<redacted>"))
            .field("host", &self.opts.ip_or_hostname())
            .field("port", &self.opts.tcp_port())
            .field("db_name", &self.opts.db_name())
            .field("options", &self.options)
            .field("on_connect", &self.on_connect.is_some())
            .finish_non_exhaustive()
    }
}

async fn bounded<T>(
    operation: Operation,
    limit: Duration,
    work: impl Future<Output = Result<T, mysql_async::Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result.map_err(Error::driver(operation)),
        Err(_) => Err(Error::timed_out(operation)),
    }
}

impl stormpool::Manager for MySqlManager {
    type Connection = MySqlConnection;
    type Error = Error;
    type CancelToken = MySqlCancelToken;

    fn connect(&self) -> impl Future<Output = Result<MySqlConnection, Error>> + Send {
        let connect = Conn::new(self.opts.clone());
        let options = self.options.clone();
        let counters = self.counters.clone();
        let target = format!("{}:{}", self.opts.ip_or_hostname(), self.opts.tcp_port());
        let hook = self.on_connect.clone();
        async move {
            let conn = connect
                .await
                .map_err(|e| Error::driver(Operation::Connect)(e).at(target))?;
            let mut conn = MySqlConnection::new(
                conn,
                options.close_grace,
                counters,
                options.statement_grace,
                options.statement_cache_capacity,
            );
            if let Some(hook) = hook {
                hook(&mut conn).await.map_err(Error::hook)?;
            }
            Ok(conn)
        }
    }

    fn is_broken(&self, conn: &mut MySqlConnection) -> bool {
        conn.is_disconnected()
    }

    /// After a cancel, first waits for the abandoned statement's reply, so
    /// it answers once the server is idle on the session.
    async fn check(&self, conn: &mut MySqlConnection) -> Result<(), Error> {
        let Some(driver) = conn.driver().await else {
            return Err(closed(Operation::Check));
        };
        driver.ping().await.map_err(Error::driver(Operation::Check))
    }

    fn apply(
        &self,
        conn: &mut MySqlConnection,
        settings: &Settings,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let statement = session::apply_statement(settings);
        let own_bound = settings
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(MAX_STATEMENT_TIME))
            .map(|(_, value)| session::parameter(value));
        async move {
            let Some((sql, params)) = statement? else {
                return Ok(());
            };
            let Some(driver) = conn.driver().await else {
                return Err(closed(Operation::Apply));
            };
            driver
                .exec_drop(sql, params)
                .await
                .map_err(Error::driver(Operation::Apply))?;
            if let Some(value) = own_bound {
                conn.settings_bound(value);
            }
            Ok(())
        }
    }

    async fn reset(&self, conn: &mut MySqlConnection) -> Result<(), Error> {
        let Some(driver) = conn.driver().await else {
            return Err(closed(Operation::Reset));
        };
        let supported = driver
            .reset()
            .await
            .map_err(Error::driver(Operation::Reset))?;
        conn.session_reset();
        if supported {
            Ok(())
        } else {
            Err(Error::reset_unsupported())
        }
    }

    fn statement_in_flight(&self, conn: &mut MySqlConnection) -> bool {
        conn.has_abandoned()
    }

    fn needs_recycle(&self, conn: &mut MySqlConnection) -> bool {
        conn.may_be_in_transaction()
    }

    /// Reads an abandoned statement's reply first (after the cancel), then
    /// rolls back when the session may be in a transaction (MariaDB's
    /// `ROLLBACK` outside one does nothing), else pings.
    async fn recycle(&self, conn: &mut MySqlConnection) -> Result<(), Error> {
        let Some(driver) = conn.driver().await else {
            return Err(closed(Operation::Recycle));
        };
        let in_transaction = driver.last_ok_packet().is_some_and(|ok| {
            ok.status_flags()
                .contains(mysql_async::consts::StatusFlags::SERVER_STATUS_IN_TRANS)
        });
        let had_pending = conn.pending.is_some();
        if conn.may_be_in_transaction() {
            let Some(driver) = conn.driver().await else {
                return Err(closed(Operation::Recycle));
            };
            driver
                .query_drop("ROLLBACK")
                .await
                .map_err(Error::driver(Operation::Recycle))?;
            conn.rolled_back();
            if in_transaction || had_pending {
                self.counters.recycled();
            }
            Ok(())
        } else {
            let Some(driver) = conn.driver().await else {
                return Err(closed(Operation::Recycle));
            };
            driver
                .ping()
                .await
                .map_err(Error::driver(Operation::Recycle))
        }
    }

    fn on_checkout(&self, conn: &mut MySqlConnection, deadline: Option<Instant>) {
        conn.set_deadline(deadline);
    }

    /// `COM_QUIT`, waiting (at most `close_grace`) until the server has
    /// closed the session, so the pool opens no replacement beside it.
    async fn close(&self, conn: MySqlConnection) {
        conn.quit().await;
    }

    fn cancel_token(&self, conn: &MySqlConnection) -> MySqlCancelToken {
        MySqlCancelToken {
            connection_id: conn.id(),
        }
    }

    /// `KILL QUERY` from a side connection of its own, at most
    /// `max_concurrent_cancels` at once.
    fn cancel(&self, token: &MySqlCancelToken) -> impl Future<Output = Result<(), Error>> + Send {
        let opts = self.opts.clone();
        let turns = self.cancels.clone();
        let kill = format!("KILL QUERY {}", token.connection_id);
        bounded(Operation::Cancel, self.options.cancel_timeout, async move {
            // Never closed, so a turn always comes (within the bound).
            let _turn = turns.acquire().await.ok();
            let mut side = Conn::new(opts).await?;
            let killed = side.query_drop(kill).await;
            let _ = side.disconnect().await;
            killed
        })
    }
}

/// The turns of a manager's cancels.
fn cancel_turns(options: &ManagerConfig) -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(
        options.max_concurrent_cancels.max(1),
    ))
}
