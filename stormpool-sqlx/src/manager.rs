//! [`SqlxManager`]: opens, probes, configures, drains and cancels sqlx
//! connections for a stormpool [`Pool`](stormpool::Pool).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sqlx::{Connection, TransactionManager};
use stormpool::clock::Instant;
use stormpool::statements::{StatementCounters, StatementStats};
use stormpool::Settings;
use tokio::sync::Semaphore;

use crate::backend::{Backend, Options};
use crate::config::ManagerConfig;
use crate::connection::SqlxConnection;
use crate::error::{Error, Operation};

/// What an [`on_connect`](SqlxManager::on_connect) hook may fail with: any
/// error (this crate's [`Error`] and sqlx's convert into it with `?`).
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// The future an [`on_connect`](SqlxManager::on_connect) hook returns.
pub type HookFuture<'c> = Pin<Box<dyn Future<Output = Result<(), HookError>> + Send + 'c>>;

type OnConnect<DB> =
    Arc<dyn for<'c> Fn(&'c mut SqlxConnection<DB>) -> HookFuture<'c> + Send + Sync>;

/// How many times a drain reads past an error (the abandoned statement's
/// own, once cancelled) before it gives up on the connection.
const DRAIN_ATTEMPTS: usize = 8;

/// A [`stormpool::Manager`] for sqlx's connections:
/// [`PgManager`](crate::PgManager) (`SqlxManager<Postgres>`) and
/// [`MySqlManager`](crate::MySqlManager) (`SqlxManager<MySql>`).
///
/// | operation | what it does |
/// |---|---|
/// | `connect` | sqlx's `connect_with`, then one query for the session's id (backend pid and start time; connection id), then the [`on_connect`](SqlxManager::on_connect) hook; bounded by the pool's `connect_timeout` |
/// | `is_broken` | a tracked statement failed with a connection-level error (I/O, TLS, protocol) |
/// | `check` | sqlx's `ping`: one round trip, after whatever is left of an abandoned statement |
/// | `apply` | PostgreSQL: `set_config(name, value, false)` per pair; MySQL: `SET SESSION name = ?` per pair |
/// | `reset` | PostgreSQL: `RESET ALL`; MySQL: `SET SESSION name = DEFAULT` for every name settings set |
/// | `cancel` | PostgreSQL: `pg_cancel_backend(pid)` from a side session, for the backend started when this one was; MySQL: `KILL QUERY <id>` from a side session |
/// | `statement_in_flight` | a tracked statement was dropped before it ended |
/// | `needs_recycle` | the session may be in a transaction: a tracked transaction was dropped open, a statement that may open one ran, or the driver's connection was reached |
/// | `recycle` | reads what is left of an abandoned statement's reply (and sends a rollback sqlx queued), then, if the session may be in a transaction, asks the server and rolls back |
/// | `on_checkout` | records the request's deadline; tracked statements bound themselves by it |
/// | `close` | sqlx's `close` (the protocol's goodbye), cut after [`ManagerConfig::close_grace`] |
///
/// `Debug` never shows the password.
pub struct SqlxManager<DB: Backend> {
    options: Options<DB>,
    config: ManagerConfig,
    on_connect: Option<OnConnect<DB>>,
    counters: Arc<StatementCounters>,
    /// Turns for cancels, `max_concurrent_cancels` of them.
    cancels: Arc<Semaphore>,
}

impl<DB: Backend> SqlxManager<DB> {
    /// A manager connecting with sqlx's connect `options`
    /// (`PgConnectOptions`, `MySqlConnectOptions`).
    pub fn new(options: Options<DB>) -> Self {
        let config = ManagerConfig::default();
        SqlxManager {
            options,
            cancels: cancel_turns(&config),
            config,
            on_connect: None,
            counters: Arc::default(),
        }
    }

    /// A manager connecting to a URL (`postgres://..`, `mysql://..`).
    ///
    /// The error never contains the URL itself (it may hold a password).
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let options = url
            .parse::<Options<DB>>()
            .map_err(Error::driver(Operation::Config))?;
        Ok(SqlxManager::new(options))
    }

    /// Runs `hook` on every new connection, once, before it serves anyone:
    /// set session defaults, prepare statements. A hook that fails fails
    /// the connect: the connection is closed and the pool reports an
    /// [`AcquireError::Connect`](stormpool::AcquireError::Connect) whose
    /// [`operation`](Error::operation) is [`Operation::OnConnect`], with the
    /// hook's error as its source. The hook runs within the pool's
    /// `connect_timeout`.
    ///
    /// ```no_run
    /// # fn f() -> Result<(), stormpool_sqlx::Error> {
    /// use stormpool_sqlx::PgManager;
    ///
    /// let manager = PgManager::from_url("postgres://app@127.0.0.1/app")?.on_connect(|conn| {
    ///     Box::pin(async move {
    ///         sqlx::query("SET search_path TO app, public").execute(&mut *conn).await?;
    ///         Ok(())
    ///     })
    /// });
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn on_connect<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut SqlxConnection<DB>) -> HookFuture<'c> + Send + Sync + 'static,
    {
        self.on_connect = Some(Arc::new(hook));
        self
    }

    /// Replaces the manager's options.
    #[must_use]
    pub fn config(mut self, config: ManagerConfig) -> Self {
        self.cancels = cancel_turns(&config);
        self.config = config;
        self
    }

    /// sqlx's connect options (server, user, database).
    pub fn connect_options(&self) -> &Options<DB> {
        &self.options
    }

    /// The manager's options.
    pub fn manager_config(&self) -> &ManagerConfig {
        &self.config
    }

    /// What the manager counted over all its connections: statements
    /// stopped by a propagated deadline, bound changes, abandoned
    /// statements, sessions rolled back on return.
    pub fn stats(&self) -> StatementStats {
        self.counters.snapshot()
    }
}

impl<DB: Backend> fmt::Debug for SqlxManager<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // sqlx's own `Debug` of its connect options prints the password:
        // only chosen fields are shown.
        let mut d = f.debug_struct("SqlxManager");
        d.field("database", &<DB as sqlx::Database>::NAME);
        DB::describe(&self.options, &mut d);
        d.field("config", &self.config)
            .field("on_connect", &self.on_connect.is_some())
            .finish_non_exhaustive()
    }
}

fn cancel_turns(config: &ManagerConfig) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(config.max_concurrent_cancels.max(1)))
}

/// Reads what is left of an abandoned statement's reply (and sends any
/// queued rollback), then pings: done once the server is idle on the
/// session. The abandoned statement's own error (the cancel's) is read
/// past.
async fn drain<DB: Backend>(conn: &mut DB::Connection, operation: Operation) -> Result<(), Error> {
    let mut attempts = 0;
    loop {
        match conn.ping().await {
            Ok(()) => return Ok(()),
            Err(sqlx::Error::Database(_)) if attempts < DRAIN_ATTEMPTS => attempts += 1,
            Err(e) => return Err(Error::driver(operation)(e)),
        }
    }
}

impl<DB: Backend> stormpool::Manager for SqlxManager<DB> {
    type Connection = SqlxConnection<DB>;
    type Error = Error;
    type CancelToken = DB::Token;

    fn connect(&self) -> impl Future<Output = Result<SqlxConnection<DB>, Error>> + Send {
        let options = self.options.clone();
        let target = DB::target(&self.options);
        let hook = self.on_connect.clone();
        let track = crate::tracked::tracking(self.counters.clone(), self.config.statement_grace);
        let close_grace = self.config.close_grace;
        async move {
            let failed = |e| Error::driver(Operation::Connect)(e).at(target.clone());
            let mut raw = DB::Connection::connect_with(&options)
                .await
                .map_err(failed)?;
            let session = match DB::token(&mut raw).await {
                Ok(session) => session,
                Err(e) => {
                    let _ = raw.close().await;
                    return Err(failed(e));
                }
            };
            let mut conn = SqlxConnection::new(raw, session, track, close_grace);
            if let Some(hook) = hook {
                if let Err(e) = hook(&mut conn).await {
                    conn.close().await;
                    return Err(Error::hook(e));
                }
            }
            // The hook's own statements are no reason to clean up.
            conn.track.suspect = false;
            Ok(conn)
        }
    }

    fn is_broken(&self, conn: &mut SqlxConnection<DB>) -> bool {
        conn.track.broken
    }

    /// sqlx's `ping`, after whatever is left of an abandoned statement.
    async fn check(&self, conn: &mut SqlxConnection<DB>) -> Result<(), Error> {
        let (raw, _) = conn.parts();
        raw.ping().await.map_err(Error::driver(Operation::Check))
    }

    async fn apply(&self, conn: &mut SqlxConnection<DB>, settings: &Settings) -> Result<(), Error> {
        if settings.is_empty() {
            return Ok(());
        }
        let (raw, track) = conn.parts();
        let applied = DB::apply(raw, settings).await?;
        track.extra.applied.extend(applied);
        if let Some((_, value)) = settings
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(DB::BOUND_VARIABLE))
        {
            track.extra.restore = Some(value.to_owned());
            track.bound.forget();
        }
        Ok(())
    }

    async fn reset(&self, conn: &mut SqlxConnection<DB>) -> Result<(), Error> {
        let (raw, track) = conn.parts();
        // Whatever the statement does, the session's bound is not known
        // after it.
        track.bound.forget();
        track.extra.restore = None;
        DB::reset(raw, &track.extra.applied)
            .await
            .map_err(Error::driver(Operation::Reset))?;
        track.extra.applied.clear();
        Ok(())
    }

    fn statement_in_flight(&self, conn: &mut SqlxConnection<DB>) -> bool {
        conn.track.abandoned
    }

    fn needs_recycle(&self, conn: &mut SqlxConnection<DB>) -> bool {
        let (raw, track) = conn.parts();
        track.suspect || track.extra.rollback_queued || raw.is_in_transaction()
    }

    /// Drains (an abandoned statement's reply, a queued rollback), then
    /// ends any transaction the session may still be in: sqlx's own (a
    /// transaction leaked with `mem::forget`), then one the server reports.
    async fn recycle(&self, conn: &mut SqlxConnection<DB>) -> Result<(), Error> {
        let (raw, track) = conn.parts();
        drain::<DB>(raw, Operation::Recycle).await?;
        track.abandoned = false;
        let mut rolled_back = std::mem::take(&mut track.extra.rollback_queued);
        while raw.is_in_transaction() {
            <DB as sqlx::Database>::TransactionManager::rollback(raw)
                .await
                .map_err(Error::driver(Operation::Recycle))?;
            rolled_back = true;
        }
        if std::mem::replace(&mut track.suspect, track.autocommit_changed) {
            rolled_back |= DB::end_transaction(raw)
                .await
                .map_err(Error::driver(Operation::Recycle))?;
        }
        if rolled_back {
            track.bound.rolled_back();
            track.counters.recycled();
        }
        Ok(())
    }

    fn on_checkout(&self, conn: &mut SqlxConnection<DB>, deadline: Option<Instant>) {
        conn.track.deadline = deadline;
    }

    /// The protocol's goodbye, waiting (at most `close_grace`) until it is
    /// sent, so the pool opens no replacement beside the session.
    async fn close(&self, conn: SqlxConnection<DB>) {
        conn.close().await;
    }

    fn cancel_token(&self, conn: &SqlxConnection<DB>) -> DB::Token {
        conn.session().clone()
    }

    /// From a side session of its own, at most `max_concurrent_cancels` at
    /// once, bounded by `cancel_timeout`.
    fn cancel(&self, token: &DB::Token) -> impl Future<Output = Result<(), Error>> + Send {
        let options = self.options.clone();
        let token = token.clone();
        let turns = self.cancels.clone();
        let limit = self.config.cancel_timeout;
        async move {
            let cancel = async move {
                // Never closed, so a turn always comes (within the bound).
                let _turn = turns.acquire().await.ok();
                DB::cancel(options, token).await
            };
            match tokio::time::timeout(limit, cancel).await {
                Ok(result) => result.map_err(Error::driver(Operation::Cancel)),
                Err(_) => Err(Error::timed_out(Operation::Cancel)),
            }
        }
    }
}
