//! [`MySqlManager`]: opens, probes, configures, resets and cancels
//! mysql_async connections for a stormpool [`Pool`](stormpool::Pool).

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use stormpool::Settings;

use crate::config::ManagerConfig;
use crate::error::{Error, Operation};
use crate::session;

/// A [`stormpool::Manager`] for mysql_async (MySQL and MariaDB).
///
/// | operation | what it does |
/// |---|---|
/// | `connect` | [`Conn::new`]; bounded by the pool's `connect_timeout` |
/// | `is_broken` | [`Conn::is_disconnected`]: an I/O or protocol error was seen, or a statement was abandoned mid-flight |
/// | `check` | `COM_PING`, one round trip; bounded by the pool's `check_timeout` |
/// | `apply` | one prepared `SET SESSION name = ?, ..` |
/// | `reset` | `COM_RESET_CONNECTION` (MySQL 5.7.3+, MariaDB 10.2.4+) |
/// | `cancel` | `KILL QUERY <connection id>` over a side connection |
///
/// `Debug` never shows the password.
pub struct MySqlManager {
    opts: Opts,
    options: ManagerConfig,
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

/// A pooled MySQL connection: dereferences to the mysql_async [`Conn`], so
/// `conn.query_drop(..)` works on the pool's guard directly.
///
/// Dropping it closes the session with `COM_QUIT`, cut after
/// [`ManagerConfig::close_grace`] if the server does not answer.
///
/// Its `Debug` shows the connection id only: the driver's own `Debug` of
/// [`Conn`] prints the connection options, password included.
pub struct MySqlConnection {
    /// `Some` until dropped.
    conn: Option<Conn>,
    close_grace: Duration,
}

impl MySqlConnection {
    fn conn(&self) -> &Conn {
        self.conn
            .as_ref()
            .expect("the connection is present until dropped")
    }

    fn conn_mut(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("the connection is present until dropped")
    }
}

impl Deref for MySqlConnection {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        self.conn()
    }
}

impl DerefMut for MySqlConnection {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn_mut()
    }
}

impl fmt::Debug for MySqlConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlConnection")
            .field("id", &self.conn.as_ref().map(Conn::id))
            .field(
                "disconnected",
                &self.conn.as_ref().map(Conn::is_disconnected),
            )
            .finish()
    }
}

impl Drop for MySqlConnection {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // Without a runtime, dropping the driver's connection just closes
        // the socket.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let grace = self.close_grace;
            // If the goodbye times out, the half-done disconnect is dropped
            // with the connection marked disconnected: the socket closes.
            runtime.spawn(async move {
                let _ = tokio::time::timeout(grace, conn.disconnect()).await;
            });
        }
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
        async move {
            let conn = connect.await.map_err(Error::driver(Operation::Connect))?;
            Ok(MySqlConnection {
                conn: Some(conn),
                close_grace,
            })
        }
    }

    fn is_broken(&self, conn: &mut MySqlConnection) -> bool {
        conn.conn().is_disconnected()
    }

    async fn check(&self, conn: &mut MySqlConnection) -> Result<(), Error> {
        conn.conn_mut()
            .ping()
            .await
            .map_err(Error::driver(Operation::Check))
    }

    fn apply(
        &self,
        conn: &mut MySqlConnection,
        settings: &Settings,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let statement = session::apply_statement(settings);
        let empty = settings.is_empty();
        async move {
            if empty {
                return Ok(());
            }
            let (sql, params) = statement?;
            conn.conn_mut()
                .exec_drop(sql, params)
                .await
                .map_err(Error::driver(Operation::Apply))
        }
    }

    async fn reset(&self, conn: &mut MySqlConnection) -> Result<(), Error> {
        let supported = conn
            .conn_mut()
            .reset()
            .await
            .map_err(Error::driver(Operation::Reset))?;
        if supported {
            Ok(())
        } else {
            Err(Error::reset_unsupported())
        }
    }

    fn cancel_token(&self, conn: &MySqlConnection) -> MySqlCancelToken {
        MySqlCancelToken {
            connection_id: conn.conn().id(),
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
