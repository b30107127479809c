//! PostgreSQL through diesel-async's `AsyncPgConnection`: the connect (on a
//! socket whose server the manager knows, for the cancel), the cancel, the
//! bound pipelined with the statement, the rollback probe.

use std::fmt;
use std::io;
use std::path::PathBuf;

use diesel::pg::Pg;
use diesel::query_builder::{AsQuery, QueryFragment, QueryId};
use diesel_async::{AsyncConnectionCore, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use stormpool::statements::mentions_keyword;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{CancelToken, Config, NoTls};

use crate::driver::sealed::Sealed;
use crate::error::{Error, Operation};
use crate::tracked::{track, track_rows, Flight, Outcome, TrackedRows};

/// What a cancel needs to find a PostgreSQL session: the cancel key the
/// server sent at connect.
#[derive(Clone)]
pub struct PgSession {
    cancel: CancelToken,
}

impl fmt::Debug for PgSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is a secret of the session.
        f.debug_struct("PgSession").finish_non_exhaustive()
    }
}

impl Sealed for AsyncPgConnection {
    type Target = Config;
    type Token = PgSession;

    const SERVER_BOUND: bool = true;
    const SURVIVES_ABANDON: bool = true;

    fn target_from_url(url: &str) -> Result<Config, Error> {
        // tokio-postgres's parse errors name the problem, not the values.
        url.parse::<Config>()
            .map_err(|e| Error::config(stormpool::statements::root_cause(&e).to_string()))
    }

    fn describe_target(config: &Config) -> String {
        let port = config.get_ports().first().copied().unwrap_or(5432);
        match config.get_hosts().first() {
            Some(Host::Tcp(host)) => format!("{host}:{port}"),
            #[cfg(unix)]
            Some(Host::Unix(dir)) => dir.join(format!(".s.PGSQL.{port}")).display().to_string(),
            None => format!("localhost:{port}"),
        }
    }

    fn debug_target(config: &Config, f: &mut fmt::DebugStruct<'_, '_>) {
        f.field("user", &config.get_user())
            .field("hosts", &config.get_hosts())
            .field("ports", &config.get_ports())
            .field("dbname", &config.get_dbname())
            .field("application_name", &config.get_application_name());
    }

    fn connect(config: Config) -> BoxFuture<'static, Result<(Self, PgSession), Error>> {
        async move {
            let target = Self::describe_target(&config);
            let (client, connection) = config
                .connect(NoTls)
                .await
                .map_err(|e| Error::driver(Operation::Connect)(e).at(target.clone()))?;
            let conn = AsyncPgConnection::try_from_client_and_connection(client, connection)
                .await
                .map_err(|e| Error::driver(Operation::Connect)(e).at(target))?;
            let cancel = conn.cancel_token();
            Ok((conn, PgSession { cancel }))
        }
        .boxed()
    }

    fn cancel(config: Config, session: PgSession) -> BoxFuture<'static, Result<(), Error>> {
        async move {
            let token = session.cancel;
            match route(&config) {
                Some(route) => cancel_and_wait(&token, &route)
                    .await
                    .map_err(Error::driver(Operation::Cancel)),
                None => token
                    .cancel_query(NoTls)
                    .await
                    .map_err(Error::driver(Operation::Cancel)),
            }
        }
        .boxed()
    }

    /// Only `BEGIN` and `START TRANSACTION` open a transaction block.
    fn may_open_transaction(sql: &str) -> bool {
        mentions_keyword(sql, &["BEGIN", "START"])
    }

    fn is_bound_timeout(e: &diesel::result::Error) -> bool {
        matches!(e, diesel::result::Error::DatabaseError(_, info)
            if info.message().contains("statement timeout"))
    }

    fn hand_written<Q: QueryFragment<Pg> + QueryId>(query: &Q) -> Option<String> {
        crate::driver::hand_written(query)
    }

    fn load_tracked<'conn, 'query, T>(
        conn: &'conn mut Self,
        flight: Flight<'conn>,
        source: T,
    ) -> BoxFuture<'conn, diesel::QueryResult<TrackedRows<'conn, Self::Stream<'conn, 'query>>>>
    where
        T: AsQuery + 'query,
        T::Query: QueryFragment<Pg> + QueryId + 'query,
    {
        // diesel-async pipelines statements sent through a shared
        // reference: the `SET` goes first, the statement right behind it,
        // with no round trip between.
        let shared: &'conn AsyncPgConnection = conn;
        let mut loader = shared;
        let load = AsyncConnectionCore::load(&mut loader, source);
        let work = pipelined(shared, flight.setting(), load);
        track_rows(work, flight)
    }

    fn execute_tracked<'conn, 'query, T>(
        conn: &'conn mut Self,
        flight: Flight<'conn>,
        source: T,
    ) -> BoxFuture<'conn, diesel::QueryResult<usize>>
    where
        T: QueryFragment<Pg> + QueryId + 'query,
    {
        let shared: &'conn AsyncPgConnection = conn;
        let mut executor = shared;
        let execute = AsyncConnectionCore::execute_returning_count(&mut executor, source);
        let work = pipelined(shared, flight.setting(), execute);
        track(work, flight)
    }

    fn batch_tracked<'conn>(
        conn: &'conn mut Self,
        flight: Flight<'conn>,
        query: &'conn str,
    ) -> BoxFuture<'conn, diesel::QueryResult<()>> {
        let shared: &'conn AsyncPgConnection = conn;
        let batch = async move {
            let mut executor = shared;
            SimpleAsyncConnection::batch_execute(&mut executor, query).await
        };
        let work = pipelined(shared, flight.setting(), batch.boxed());
        track(work, flight)
    }

    /// An empty query: it answers after whatever was in flight.
    fn drain(&mut self) -> BoxFuture<'_, diesel::QueryResult<()>> {
        async move { self.batch_execute("").await }.boxed()
    }

    /// Whether the session's transaction started before this statement did
    /// (inside a transaction block it did; a failed one refuses to
    /// answer), then `ROLLBACK` if so.
    ///
    /// The probe goes by the simple protocol, where a statement's clock
    /// starts when it arrives (the extended protocol restarts it at
    /// `Execute`, after the implicit transaction began): diesel-async's
    /// `batch_execute`, which returns no rows, so the answer is an error
    /// raised only inside a transaction block. A clean session logs
    /// nothing.
    fn end_transaction(&mut self) -> BoxFuture<'_, diesel::QueryResult<bool>> {
        async move {
            let probe = self.batch_execute(IN_TRANSACTION_PROBE).await;
            let in_transaction = match probe {
                Ok(()) => false,
                Err(diesel::result::Error::DatabaseError(_, info))
                    if info.message().contains(IN_TRANSACTION)
                        || info.message().contains("transaction is aborted") =>
                {
                    true
                }
                Err(e) => return Err(e),
            };
            if in_transaction {
                self.batch_execute("ROLLBACK").await?;
            }
            Ok(in_transaction)
        }
        .boxed()
    }
}

/// What the probe raises inside a transaction block.
const IN_TRANSACTION: &str = "stormpool: in a transaction block";

/// Raises [`IN_TRANSACTION`] inside a transaction block, nothing outside.
const IN_TRANSACTION_PROBE: &str = "DO $$BEGIN \
    IF transaction_timestamp() < statement_timestamp() \
    THEN RAISE EXCEPTION 'stormpool: in a transaction block'; END IF; END$$";

/// Sends `set` (if any) and `statement` pipelined on `conn`, the `SET`
/// first.
fn pipelined<'c, T: Send + 'c>(
    conn: &'c AsyncPgConnection,
    set: Option<String>,
    statement: BoxFuture<'c, diesel::QueryResult<T>>,
) -> BoxFuture<'c, Outcome<T>> {
    async move {
        let Some(sql) = set else {
            return (None, statement.await);
        };
        let set = async move {
            let mut setter = conn;
            SimpleAsyncConnection::batch_execute(&mut setter, &sql).await
        };
        // `join` polls the `SET` first, so it is sent first.
        let (set, result) = futures_util::future::join(set, statement).await;
        (Some(set), result)
    }
    .boxed()
}

/// Where cancel requests go when the manager sends them itself.
enum CancelRoute {
    Tcp(String, u16),
    #[cfg(unix)]
    Unix(PathBuf),
}

/// The route for `config`, unless it names several servers or needs TLS
/// (then the driver's own call, which returns once the request is sent).
fn route(config: &Config) -> Option<CancelRoute> {
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
        ([], [Host::Unix(dir)]) => Some(CancelRoute::Unix(dir.join(format!(".s.PGSQL.{port}")))),
        _ => None,
    }
}

/// Sends the cancel request and waits until the server hangs up, which it
/// does once it has signalled the session: a statement sent afterwards is
/// never hit by this cancel (the driver's own call returns as soon as the
/// request is written, and its signal can land on the next statement).
async fn cancel_and_wait(token: &CancelToken, route: &CancelRoute) -> io::Result<()> {
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
    }
}

async fn send_and_wait<S>(token: &CancelToken, mut stream: S) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
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
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
