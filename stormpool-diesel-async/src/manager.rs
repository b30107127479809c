//! [`DieselManager`]: opens, probes, drains and cancels diesel-async
//! connections for a stormpool [`Pool`](stormpool::Pool).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use diesel_async::{AnsiTransactionManager, TransactionManager};
use stormpool::clock::Instant;
use stormpool::statements::{StatementCounters, StatementStats};
use stormpool::Settings;
use tokio::sync::Semaphore;

use crate::config::ManagerConfig;
use crate::connection::DieselConnection;
use crate::driver::Driver;
use crate::error::{Error, Operation};

/// A [`stormpool::Manager`] for diesel-async's connections:
/// [`PgManager`](crate::PgManager) (`DieselManager<AsyncPgConnection>`) and
/// [`MysqlManager`](crate::MysqlManager) (`DieselManager<AsyncMysqlConnection>`).
///
/// | operation | what it does |
/// |---|---|
/// | `connect` | the driver's connect (tokio-postgres, mysql_async), then diesel-async's setup; bounded by the pool's `connect_timeout` |
/// | `is_broken` | diesel-async's own check (a closed or disconnected connection; a transaction manager broken by a `BEGIN`, `COMMIT` or `ROLLBACK` cut short), or a statement failed with a connection error. A transaction merely left open is rolled back instead (below) |
/// | `check` | `SELECT 1`, one round trip |
/// | `apply` | fails: this adapter does not apply settings |
/// | `cancel` | PostgreSQL: the protocol's cancel request, waiting until the server has acted on it; MySQL: `KILL QUERY <id>` from a side connection |
/// | `statement_in_flight` | a tracked statement was dropped before the server answered it |
/// | `needs_recycle` | diesel's transaction manager has a transaction open (not a test transaction), or a statement that may open one ran, or the driver's connection was reached |
/// | `recycle` | PostgreSQL: an empty query (answered once the server is idle); then diesel's `ROLLBACK` for each open level; then, if the session may be in a hand-written transaction, asks the server and rolls back |
/// | `on_checkout` | records the request's deadline; tracked statements bound themselves by it |
///
/// `Debug` never shows the password.
pub struct DieselManager<C: Driver> {
    target: C::Target,
    config: ManagerConfig,
    counters: Arc<StatementCounters>,
    /// Turns for cancels, `max_concurrent_cancels` of them.
    cancels: Arc<Semaphore>,
}

impl<C: Driver> DieselManager<C> {
    /// A manager connecting to `target`: a `tokio_postgres::Config`, or
    /// `mysql_async::Opts`.
    pub fn new(target: C::Target) -> Self {
        let config = ManagerConfig::default();
        DieselManager {
            target,
            cancels: cancel_turns(&config),
            config,
            counters: Arc::default(),
        }
    }

    /// A manager connecting to a URL (`postgres://..`, `mysql://..`).
    ///
    /// The error never contains the URL itself (it may hold a password).
    pub fn from_url(url: &str) -> Result<Self, Error> {
        Ok(DieselManager::new(C::target_from_url(url)?))
    }

    /// Replaces the manager's options.
    #[must_use]
    pub fn config(mut self, config: ManagerConfig) -> Self {
        self.cancels = cancel_turns(&config);
        self.config = config;
        self
    }

    /// Where the manager connects.
    pub fn target(&self) -> &C::Target {
        &self.target
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

fn cancel_turns(config: &ManagerConfig) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(config.max_concurrent_cancels.max(1)))
}

impl<C: Driver> fmt::Debug for DieselManager<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("DieselManager");
        C::debug_target(&self.target, &mut d);
        d.field("config", &self.config).finish_non_exhaustive()
    }
}

impl<C: Driver> stormpool::Manager for DieselManager<C> {
    type Connection = DieselConnection<C>;
    type Error = Error;
    type CancelToken = C::Token;

    fn connect(&self) -> impl Future<Output = Result<DieselConnection<C>, Error>> + Send {
        let connect = C::connect(self.target.clone());
        let track = crate::tracked::tracking(
            self.counters.clone(),
            self.config.statement_grace,
            C::SERVER_BOUND,
        );
        async move {
            let (raw, session) = connect.await?;
            Ok(DieselConnection::new(raw, session, track))
        }
    }

    /// diesel-async's own check, except that a transaction left open is
    /// rolled back rather than the connection closed: the manager knows
    /// whether a transaction-control statement was cut short (then diesel's
    /// transaction manager cannot tell the session's state, and the
    /// connection goes).
    fn is_broken(&self, conn: &mut DieselConnection<C>) -> bool {
        let open = conn.transaction_open();
        let (raw, track) = conn.parts();
        let manager_broken = AnsiTransactionManager::is_broken_transaction_manager(raw);
        let lost = track.abandoned && !C::SURVIVES_ABANDON;
        track.broken || lost || (manager_broken && (!open || track.extra.control_cut))
    }

    async fn check(&self, conn: &mut DieselConnection<C>) -> Result<(), Error> {
        let (raw, _) = conn.parts();
        raw.batch_execute("SELECT 1")
            .await
            .map_err(Error::diesel(Operation::Check))
    }

    async fn apply(&self, _: &mut DieselConnection<C>, settings: &Settings) -> Result<(), Error> {
        if settings.is_empty() {
            Ok(())
        } else {
            Err(Error::settings_unsupported())
        }
    }

    fn statement_in_flight(&self, conn: &mut DieselConnection<C>) -> bool {
        conn.track.abandoned
    }

    fn needs_recycle(&self, conn: &mut DieselConnection<C>) -> bool {
        let open = conn.transaction_open();
        let (raw, track) = conn.parts();
        // Open and not broken: a test transaction, which stays.
        track.suspect || (open && AnsiTransactionManager::is_broken_transaction_manager(raw))
    }

    /// Waits until the server is idle on the session, rolls back what
    /// diesel's transaction manager has open, then asks the server about a
    /// hand-written transaction and rolls it back.
    async fn recycle(&self, conn: &mut DieselConnection<C>) -> Result<(), Error> {
        let failed = Error::diesel(Operation::Recycle);
        let open = conn.transaction_open();
        let (raw, track) = conn.parts();
        let test_transaction = open && !AnsiTransactionManager::is_broken_transaction_manager(raw);
        raw.drain()
            .await
            .map_err(Error::diesel(Operation::Recycle))?;
        track.abandoned = false;
        let mut rolled_back = false;
        if !test_transaction {
            while matches!(
                crate::connection::status(raw).transaction_depth(),
                Ok(Some(_))
            ) {
                AnsiTransactionManager::rollback_transaction(raw)
                    .await
                    .map_err(Error::diesel(Operation::Recycle))?;
                rolled_back = true;
            }
            if std::mem::replace(&mut track.suspect, track.autocommit_changed) {
                rolled_back |= raw.end_transaction().await.map_err(failed)?;
            }
        }
        if rolled_back {
            track.bound.rolled_back();
            track.counters.recycled();
        }
        Ok(())
    }

    fn on_checkout(&self, conn: &mut DieselConnection<C>, deadline: Option<Instant>) {
        conn.track.deadline = deadline;
    }

    fn cancel_token(&self, conn: &DieselConnection<C>) -> C::Token {
        conn.session().clone()
    }

    /// At most `max_concurrent_cancels` at once, bounded by
    /// `cancel_timeout`.
    fn cancel(&self, token: &C::Token) -> impl Future<Output = Result<(), Error>> + Send {
        let cancel = C::cancel(self.target.clone(), token.clone());
        let turns = self.cancels.clone();
        let limit = self.config.cancel_timeout;
        async move {
            let bounded = async move {
                // Never closed, so a turn always comes (within the bound).
                let _turn = turns.acquire().await.ok();
                cancel.await
            };
            tokio::time::timeout(limit, bounded)
                .await
                .unwrap_or_else(|_| Err(Error::timed_out(Operation::Cancel)))
        }
    }
}
