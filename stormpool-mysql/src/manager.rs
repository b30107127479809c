//! [`MySqlManager`]: opens, probes, configures, resets and cancels
//! mysql_async connections for a stormpool [`Pool`](stormpool::Pool).

use std::fmt;
use std::future::Future;
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

/// A [`stormpool::Manager`] for mysql_async (MySQL and MariaDB).
///
/// | operation | what it does |
/// |---|---|
/// | `connect` | [`Conn::new`]; bounded by the pool's `connect_timeout` |
/// | `is_broken` | [`Conn::is_disconnected`]: an I/O or protocol error was seen, or an untracked statement was abandoned mid-flight |
/// | `check` | `COM_PING`, one round trip; bounded by the pool's `check_timeout` |
/// | `apply` | one prepared `SET SESSION name = ?, ..` |
/// | `reset` | `COM_RESET_CONNECTION` (MySQL 5.7.3+, MariaDB 10.2.4+) |
/// | `cancel` | `KILL QUERY <connection id>` over a side connection |
/// | `statement_in_flight` | a [tracked statement](MySqlConnection) was dropped before it completed |
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
    counters: Arc<Counters>,
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
            counters: Arc::default(),
        }
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
        let close_grace = self.options.close_grace;
        let counters = self.counters.clone();
        async move {
            let conn = connect.await.map_err(Error::driver(Operation::Connect))?;
            Ok(MySqlConnection::new(conn, close_grace, counters))
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

    fn on_checkout(&self, conn: &mut MySqlConnection, deadline: Option<Instant>) {
        conn.set_deadline(deadline);
    }

    fn cancel_token(&self, conn: &MySqlConnection) -> MySqlCancelToken {
        MySqlCancelToken {
            connection_id: conn.id(),
        }
    }

    fn cancel(&self, token: &MySqlCancelToken) -> impl Future<Output = Result<(), Error>> + Send {
        let connect = Conn::new(self.opts.clone());
        let kill = format!("KILL QUERY {}", token.connection_id);
        bounded(Operation::Cancel, self.options.cancel_timeout, async move {
            let mut side = connect.await?;
            let killed = side.query_drop(kill).await;
            let _ = side.disconnect().await;
            killed
        })
    }
}
