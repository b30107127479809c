//! [`PgManager`]: opens, probes, configures, resets and cancels
//! tokio-postgres connections for a stormpool [`Pool`](stormpool::Pool).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use stormpool::clock::Instant;
use stormpool::Settings;
use tokio::sync::oneshot;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{CancelToken, NoTls, Socket};

use crate::cancel::{self, CancelRoute};
use crate::config::ManagerConfig;
use crate::connection::PgConnection;
use crate::error::{Error, Operation};
use crate::session;
use crate::stats::Counters;
use stormpool::statements::StatementStats;

/// A [`stormpool::Manager`] for tokio-postgres.
///
/// Generic over the TLS connector `T` (any
/// [`MakeTlsConnect`](tokio_postgres::tls::MakeTlsConnect), such as
/// `postgres_native_tls::MakeTlsConnector` or
/// `tokio_postgres_rustls::MakeRustlsConnect`); [`NoTls`] by default.
///
/// | operation | what it does |
/// |---|---|
/// | `connect` | `Config::connect`, the connection's I/O driven by its own task; bounded by the pool's `connect_timeout` |
/// | `is_broken` | [`Client::is_closed`](tokio_postgres::Client::is_closed): the server closed the session or the socket failed |
/// | `check` | an empty simple query, one round trip; bounded by the pool's `check_timeout` |
/// | `apply` | `set_config(name, value, false)` for every pair, in one statement |
/// | `reset` | [`ManagerConfig::reset_statement`], `DISCARD ALL` by default |
/// | `cancel` | the protocol's cancel request (what `pg_cancel_backend` does), waiting until the server has acted on it |
/// | `statement_in_flight` | a [tracked statement](PgConnection) was dropped before it completed |
/// | `on_checkout` | records the request's deadline; tracked statements bound themselves by it |
///
/// `Debug` never shows the password.
pub struct PgManager<T = NoTls> {
    config: tokio_postgres::Config,
    tls: T,
    options: ManagerConfig,
    /// Where cancel requests go when the manager sends them itself.
    cancel_route: Option<CancelRoute>,
    counters: Arc<Counters>,
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
            config,
            tls,
            options: ManagerConfig::default(),
            counters: Arc::default(),
        }
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
            .finish_non_exhaustive()
    }
}

/// Drives a connection's I/O until it ends, or until `grace` after its
/// client was dropped.
async fn drive<F>(connection: F, closing: oneshot::Receiver<()>, grace: Duration)
where
    F: Future,
{
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
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(Error::driver(Operation::Connect))?;
        let (closing_tx, closing_rx) = oneshot::channel();
        tokio::spawn(drive(connection, closing_rx, self.options.close_grace));
        Ok(PgConnection::new(client, closing_tx, self.counters.clone()))
    }

    fn is_broken(&self, conn: &mut PgConnection) -> bool {
        conn.client().is_closed()
    }

    /// Also what the pool runs after cancelling an abandoned statement: the
    /// empty query queues behind it on the session, so it answers once the
    /// server is idle there.
    async fn check(&self, conn: &mut PgConnection) -> Result<(), Error> {
        conn.client()
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
        async move {
            if settings.is_empty() {
                return Ok(());
            }
            conn.client()
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
        conn.client()
            .batch_execute(&self.options.reset_statement)
            .await
            .map_err(Error::driver(Operation::Reset))
    }

    fn statement_in_flight(&self, conn: &mut PgConnection) -> bool {
        conn.take_abandoned()
    }

    fn on_checkout(&self, conn: &mut PgConnection, deadline: Option<Instant>) {
        conn.set_deadline(deadline);
    }

    fn cancel_token(&self, conn: &PgConnection) -> CancelToken {
        conn.client().cancel_token()
    }

    /// Returns once the server has signalled the session (it hangs up the
    /// cancel connection then), so a statement sent afterwards is never hit
    /// by this cancel. With several hosts or `sslmode=require` the driver
    /// sends the request, and returns as soon as it is written.
    async fn cancel(&self, token: &CancelToken) -> Result<(), Error> {
        match &self.cancel_route {
            Some(route) => cancel::cancel(token, route)
                .await
                .map_err(Error::io(Operation::Cancel)),
            None => token
                .cancel_query(self.tls.clone())
                .await
                .map_err(Error::driver(Operation::Cancel)),
        }
    }
}
