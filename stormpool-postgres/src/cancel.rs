//! Cancel requests whose effect is known before the next statement.
//!
//! A cancel request goes over a connection of its own: the server forks a
//! process for it, which signals the session's process and hangs up. The
//! driver's [`CancelToken::cancel_query`] returns as soon as the request is
//! written, so the signal can land after the caller went on: measured on
//! PostgreSQL 15, a statement sent right after such a cancel was itself
//! cancelled 166 times out of 200. For the pool that is the next request's
//! statement, on a connection it just drained.
//!
//! So the manager sends the request itself and waits until the server hangs
//! up, which it does after signalling. A session that is idle by then
//! discards the signal when it reads its next command, so nothing sent
//! after [`cancel`] returns is cancelled by it (0 out of 500 in the same
//! measurement). This needs the server's address: with several hosts, or
//! with `sslmode=require`, the manager falls back to the driver's call.
//! The request goes in plaintext, as libpq has always sent it.
//!
//! # Through a pooler
//!
//! The driver half-closes the socket once the request is written. A server
//! does not mind, but PgBouncer reads that end of file as the client giving
//! up, drops the request before forwarding it (`client unexpected eof`), and
//! the statement runs on. So the write half stays open, as libpq's
//! `PQcancel` keeps it, until the other side hangs up. Behind PgBouncer
//! the hang-up means the request was forwarded, not yet acted on; the
//! pool's drain probe, which queues behind the statement on the same
//! server session, tells when it stopped.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{CancelToken, Config, NoTls};

/// Where the manager sends its cancel requests itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CancelRoute {
    /// A TCP address.
    Tcp(String, u16),
    /// A Unix socket file.
    Unix(PathBuf),
}

impl CancelRoute {
    /// The route for connections made with `config`: `None` (the driver's
    /// call) unless it names exactly one server and allows plaintext.
    pub(crate) fn for_config(config: &Config) -> Option<CancelRoute> {
        if !matches!(config.get_ssl_mode(), SslMode::Disable | SslMode::Prefer) {
            return None;
        }
        let port = match config.get_ports() {
            [] => 5432,
            [port] => *port,
            _ => return None,
        };
        match (config.get_hostaddrs(), config.get_hosts()) {
            ([addr], [] | [_]) => Some(CancelRoute::Tcp(addr.to_string(), port)),
            ([], [Host::Tcp(host)]) => Some(CancelRoute::Tcp(host.clone(), port)),
            #[cfg(unix)]
            ([], [Host::Unix(dir)]) => {
                Some(CancelRoute::Unix(dir.join(format!(".s.PGSQL.{port}"))))
            }
            _ => None,
        }
    }
}

/// Sends `token`'s cancel request over `route` and waits until the server
/// hangs up, that is, until it has signalled the session.
pub(crate) async fn cancel(token: &CancelToken, route: &CancelRoute) -> io::Result<()> {
    match route {
        CancelRoute::Tcp(host, port) => {
            let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
            stream.set_nodelay(true)?;
            send_and_wait(token, stream).await
        }
        #[cfg(unix)]
        CancelRoute::Unix(path) => {
            send_and_wait(token, tokio::net::UnixStream::connect(path).await?).await
        }
        #[cfg(not(unix))]
        CancelRoute::Unix(_) => Err(io::Error::other("Unix sockets need a Unix system")),
    }
}

async fn send_and_wait<S>(token: &CancelToken, stream: S) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stream = KeepOpen(stream);
    token
        .cancel_query_raw(&mut stream, NoTls)
        .await
        .map_err(io::Error::other)?;
    // The server sends nothing back; it closes the connection once done.
    let mut buf = [0u8; 16];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            // A reset is a hang-up too.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// A stream whose `shutdown` does nothing: the driver's cancel shuts the
/// write half down after the request, which a pooler takes for the client
/// giving up (see the module docs). The socket closes when dropped.
struct KeepOpen<S>(S);

impl<S: AsyncRead + Unpin> AsyncRead for KeepOpen<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for KeepOpen<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn route(url: &str) -> Option<CancelRoute> {
        CancelRoute::for_config(&url.parse().expect("config"))
    }

    #[test]
    fn one_plaintext_server_has_a_route() {
        assert_eq!(
            route("postgres://u@127.0.0.1:5433/db"),
            Some(CancelRoute::Tcp("127.0.0.1".into(), 5433))
        );
        assert_eq!(
            route("host=db.local user=u"),
            Some(CancelRoute::Tcp("db.local".into(), 5432))
        );
        assert_eq!(
            route("host=db.local hostaddr=10.0.0.7 port=6000 sslmode=disable"),
            Some(CancelRoute::Tcp("10.0.0.7".into(), 6000))
        );
        #[cfg(unix)]
        assert_eq!(
            route("host=/run/postgresql user=u"),
            Some(CancelRoute::Unix("/run/postgresql/.s.PGSQL.5432".into()))
        );
    }

    #[tokio::test]
    async fn shutting_down_leaves_the_write_half_open() {
        use tokio::io::AsyncWriteExt;
        let (client, mut server) = tokio::io::duplex(64);
        let mut stream = KeepOpen(client);
        stream.write_all(b"request").await.expect("write");
        stream.shutdown().await.expect("shutdown");
        let mut got = [0u8; 7];
        server.read_exact(&mut got).await.expect("request");
        assert_eq!(&got, b"request");
        // No end of file until the stream drops.
        let mut more = [0u8; 1];
        let early = tokio::time::timeout(Duration::from_millis(50), server.read(&mut more));
        assert!(early.await.is_err(), "the write half was shut");
        drop(stream);
        assert_eq!(server.read(&mut more).await.expect("eof"), 0);
    }

    #[test]
    fn several_servers_or_required_tls_use_the_driver() {
        assert_eq!(route("host=a,b user=u"), None);
        assert_eq!(route("host=a port=1,2 user=u"), None);
        assert_eq!(route("host=a user=u sslmode=require"), None);
    }
}
