//! Opening a session: through a socket of the manager's own, so the stream
//! from the server can be watched ([`status`](crate::status)), or through
//! the driver.
//!
//! The manager connects itself when the configuration names exactly one
//! server (a host name, an IP address or a Unix socket directory) and the
//! session will not use TLS (`sslmode=disable`, or `prefer` with
//! [`NoTls`]), and any server will
//! do (`target_session_attrs=any`, the default). It then sets what the
//! driver would on the socket (no Nagle delay; TCP keepalives, idle time,
//! interval and retries as configured; the TCP user timeout) and hands it
//! to [`Config::connect_raw`]. Otherwise the driver connects, and the
//! session's transaction state is not seen.

use std::future::Future;
use std::time::Duration;

use tokio_postgres::config::{SslMode, TargetSessionAttrs};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Config, NoTls, Socket};

use crate::cancel::CancelRoute;
use crate::error::{Error, Operation};
use crate::status::{SessionStatus, Sniffed};

/// Where the manager connects itself, if it can.
pub(crate) fn own_route(config: &Config) -> Option<CancelRoute> {
    if !matches!(config.get_ssl_mode(), SslMode::Disable | SslMode::Prefer)
        || config.get_target_session_attrs() != TargetSessionAttrs::Any
    {
        return None;
    }
    CancelRoute::for_config(config)
}

/// `host:port` (or the socket's path) for error messages; never more of the
/// configuration.
pub(crate) fn describe_target(config: &Config) -> Option<String> {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    if let Some(addr) = config.get_hostaddrs().first() {
        return Some(format!("{addr}:{port}"));
    }
    match config.get_hosts().first()? {
        tokio_postgres::config::Host::Tcp(host) => Some(format!("{host}:{port}")),
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(dir) => {
            Some(dir.join(format!(".s.PGSQL.{port}")).display().to_string())
        }
    }
}

/// Whether a session through the connector `T` may use TLS: not with
/// `sslmode=disable`, nor with [`NoTls`] (which the driver never asks the
/// server for TLS with under `prefer`).
pub(crate) fn may_use_tls<T: 'static>(config: &Config) -> bool {
    config.get_ssl_mode() != SslMode::Disable
        && std::any::TypeId::of::<T>() != std::any::TypeId::of::<NoTls>()
}

/// A connected session: the client, its I/O to drive, and its status.
pub(crate) struct Opened {
    pub(crate) client: Client,
    pub(crate) io: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    pub(crate) status: std::sync::Arc<SessionStatus>,
}

impl Opened {
    /// A connect's outcome: `connection` (the driver's I/O) runs on the
    /// connection's task until the session ends.
    fn new<C>(
        connected: Result<(Client, C), tokio_postgres::Error>,
        status: std::sync::Arc<SessionStatus>,
    ) -> Result<Opened, Error>
    where
        C: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
    {
        let (client, connection) = connected.map_err(Error::driver(Operation::Connect))?;
        Ok(Opened {
            client,
            io: Box::pin(async move {
                let _ = connection.await;
            }),
            status,
        })
    }
}

/// Connects over `route` with a socket of the manager's own, watched.
pub(crate) async fn connect_watched(config: &Config, route: &CancelRoute) -> Result<Opened, Error> {
    let connect = Operation::Connect;
    match route {
        CancelRoute::Tcp(host, port) => {
            let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(Error::io(connect))?;
            configure_tcp(config, &stream).map_err(Error::io(connect))?;
            handshake(config, stream).await
        }
        #[cfg(unix)]
        CancelRoute::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .map_err(Error::io(connect))?;
            handshake(config, stream).await
        }
        #[cfg(not(unix))]
        CancelRoute::Unix(_) => Err(Error::io(connect)(std::io::Error::other(
            "Unix sockets need a Unix system",
        ))),
    }
}

async fn handshake<S>(config: &Config, stream: S) -> Result<Opened, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (stream, status) = Sniffed::new(stream);
    Opened::new(config.connect_raw(stream, NoTls).await, status)
}

/// What the driver sets on its own sockets.
fn configure_tcp(config: &Config, stream: &tokio::net::TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let socket = socket2::SockRef::from(stream);
    if config.get_keepalives() {
        let mut keepalive = socket2::TcpKeepalive::new().with_time(config.get_keepalives_idle());
        #[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
        {
            if let Some(interval) = config.get_keepalives_interval() {
                keepalive = keepalive.with_interval(interval);
            }
            if let Some(retries) = config.get_keepalives_retries() {
                keepalive = keepalive.with_retries(retries);
            }
        }
        socket.set_tcp_keepalive(&keepalive)?;
    }
    #[cfg(target_os = "linux")]
    if let Some(timeout) = config.get_tcp_user_timeout() {
        socket.set_tcp_user_timeout(Some(*timeout))?;
    }
    Ok(())
}

/// Connects through the driver (TLS, several hosts): the status is unseen.
pub(crate) async fn connect_driver<T>(config: &Config, tls: T) -> Result<Opened, Error>
where
    T: MakeTlsConnect<Socket> + Send + 'static,
    T::Stream: Send + Sync + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    Opened::new(config.connect(tls).await, SessionStatus::unseen())
}

/// The bound the configuration's own `connect_timeout` puts on a connect
/// the manager makes itself (the pool's `connect_timeout` bounds it too).
pub(crate) fn connect_timeout(config: &Config) -> Option<Duration> {
    config.get_connect_timeout().copied()
}
