//! Push a route table to every peer, so that one slow replica costs at most
//! its deadline.
//!
//! This is a route sync that once made one slow replica cost every
//! lifecycle operation of a fleet about a second (a task and a fresh
//! connection per peer per change, and retry sleeps longer than the request
//! timeout), rebuilt from stormpool's parts:
//!
//! - **One shared pooled HTTP client** (hyper-util's legacy `Client`): every
//!   push to a peer reuses that peer's kept-alive connection instead of
//!   dialling a new one, and at most `pool_max_idle_per_host` connections
//!   per peer are kept.
//! - **A bounded fan-out** ([`FanOut`]): at most `max_in_flight` pushes at
//!   once, over all the syncs running on one [`PeerSync`].
//! - **A deadline over each peer's whole attempt sequence**
//!   (`per_peer_timeout`), which the retry policy plans its attempts and
//!   sleeps around: no attempt is started that could not finish before it.
//! - **Retries of transient failures only**: a `409 Conflict` (the peer
//!   already has a newer table) or any other 4xx is not retried; a reset
//!   connection, a timeout or a 5xx is, within each peer's retry budget.
//! - **A sleep budget below the attempt timeout**: the policy's builder
//!   refuses a backoff that could sleep as long as one attempt.
//!
//! The peer-reconcile loop of a real system remains the correctness
//! backstop: a peer that missed a push (timed out, or refused it) is
//! reported in the [`FanOutReport`] and caught up later.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use stormpool::clock::Instant;
use stormpool_retry::fanout::{FanOut, FanOutError, FanOutReport, Outcome as FanOutOutcome};
use stormpool_retry::{
    classify, Attempt, BudgetConfig, Budgets, CallOptions, Classification, ConfigError, RetryError,
    RetryPolicy,
};

use crate::peer_server::VERSION_HEADER;

/// The header carrying how many milliseconds the attempt has left, so a
/// peer can give up on work its caller has abandoned.
pub const DEADLINE_HEADER: &str = "x-request-timeout-ms";

/// A versioned route table: which backend serves which route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    version: u64,
    routes: Vec<(String, SocketAddr)>,
}

impl RouteTable {
    /// An empty table with `version` (at least 1: peers treat 0 as none).
    pub fn new(version: u64) -> Self {
        RouteTable {
            version: version.max(1),
            routes: Vec::new(),
        }
    }

    /// The table with one more route.
    #[must_use]
    pub fn with_route(mut self, name: impl Into<String>, backend: SocketAddr) -> Self {
        self.routes.push((name.into(), backend));
        self
    }

    /// The table's version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The body sent to the peers: one `name backend` line per route.
    fn encode(&self) -> Bytes {
        let mut text = String::new();
        for (name, backend) in &self.routes {
            text.push_str(&format!("{name} {backend}\n"));
        }
        Bytes::from(text)
    }
}

/// How a [`PeerSync`] pushes. Plain data; every field documents its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncConfig {
    /// The most pushes in flight at once. Default: 8.
    pub max_in_flight: usize,
    /// The deadline over one peer's whole attempt sequence. Default: 600 ms.
    pub per_peer_timeout: Duration,
    /// The bound of one push attempt (and of a connect). Default: 250 ms.
    pub attempt_timeout: Duration,
    /// The most attempts per peer per sync. Default: 3.
    pub max_attempts: u32,
    /// The first retry's delay ceiling. Default: 20 ms.
    pub backoff_base: Duration,
    /// The largest delay between attempts. Default: 100 ms.
    pub backoff_cap: Duration,
    /// The idle connections kept per peer: the client's pool size.
    /// Default: 4.
    pub pool_max_idle_per_host: usize,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            max_in_flight: 8,
            per_peer_timeout: Duration::from_millis(600),
            attempt_timeout: Duration::from_millis(250),
            max_attempts: 3,
            backoff_base: Duration::from_millis(20),
            backoff_cap: Duration::from_millis(100),
            pool_max_idle_per_host: 4,
        }
    }
}

/// A [`SyncConfig`] that was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum SetupError {
    /// The fan-out settings.
    FanOut(ConfigError),
    /// The retry settings.
    Retry(ConfigError),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::FanOut(_) => f.write_str("invalid fan-out settings"),
            SetupError::Retry(_) => f.write_str("invalid retry settings"),
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SetupError::FanOut(error) => Some(error),
            SetupError::Retry(error) => Some(error),
        }
    }
}

/// Why one push attempt failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum PushError {
    /// The peer answered with an error status.
    Status {
        /// The status.
        status: StatusCode,
        /// The peer's `Retry-After`, in whole seconds, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The request could not be sent or its answer not received.
    Transport(hyper_util::client::legacy::Error),
    /// The answer's body could not be read.
    Body(hyper::Error),
    /// The request could not be built.
    Request(http::Error),
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Status { status, .. } => write!(f, "the peer answered {status}"),
            PushError::Transport(_) => f.write_str("the push could not be delivered"),
            PushError::Body(_) => f.write_str("the peer's answer could not be read"),
            PushError::Request(_) => f.write_str("the push request could not be built"),
        }
    }
}

impl std::error::Error for PushError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PushError::Status { .. } => None,
            PushError::Transport(error) => Some(error),
            PushError::Body(error) => Some(error),
            PushError::Request(error) => Some(error),
        }
    }
}

type Classifier = fn(&PushError) -> Classification;

/// Retries what may go differently: transport failures and 5xx; never a
/// 4xx such as `409 Conflict`.
fn classify_push(error: &PushError) -> Classification {
    match error {
        PushError::Status {
            status,
            retry_after,
        } => classify::http_status(status.as_u16(), *retry_after)
            .unwrap_or(Classification::Permanent),
        PushError::Transport(_) | PushError::Body(_) => Classification::Transient,
        PushError::Request(_) => Classification::Permanent,
    }
}

/// One peer's result: the status it accepted the table with, or why it
/// did not.
pub type PeerOutcome = FanOutOutcome<StatusCode, RetryError<PushError>>;

/// Pushes route tables to peers: one shared pooled client, a bounded
/// fan-out, a budgeted retry policy, and a deadline per peer.
///
/// ```no_run
/// use stormpool_examples::peer_sync::{PeerSync, RouteTable, SyncConfig};
///
/// # async fn sync(peers: Vec<std::net::SocketAddr>) -> Result<(), Box<dyn std::error::Error>> {
/// let sync = PeerSync::new(SyncConfig::default())?;
/// let table = RouteTable::new(7).with_route("api", "10.0.0.5:8080".parse()?);
/// let report = sync.push(&peers, &table).await?;
/// println!("{} of {} peers applied version 7", report.successes(), peers.len());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PeerSync {
    client: Client<HttpConnector, Full<Bytes>>,
    fanout: FanOut,
    policy: Arc<RetryPolicy<Classifier>>,
    budgets: Arc<Budgets<SocketAddr>>,
}

impl PeerSync {
    /// A sync with `config`; no connection is opened until the first push.
    ///
    /// # Errors
    ///
    /// A setting was refused (for instance a backoff that could sleep as
    /// long as one attempt), naming the field.
    pub fn new(config: SyncConfig) -> Result<Self, SetupError> {
        let fanout = FanOut::builder()
            .max_in_flight(config.max_in_flight)
            .per_target_timeout(config.per_peer_timeout)
            .build()
            .map_err(SetupError::FanOut)?;
        let policy = RetryPolicy::builder(classify_push as Classifier)
            .max_attempts(config.max_attempts)
            .attempt_timeout(config.attempt_timeout)
            .backoff_base(config.backoff_base)
            .backoff_cap(config.backoff_cap)
            .build()
            .map_err(SetupError::Retry)?;
        let budgets = Budgets::new(BudgetConfig::default()).map_err(SetupError::Retry)?;

        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.attempt_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(PeerSync {
            client,
            fanout,
            policy: Arc::new(policy),
            budgets: Arc::new(budgets),
        })
    }

    /// Pushes `table` to every peer in `peers` and reports each peer's
    /// outcome, in the same order.
    ///
    /// Returns when every peer has accepted the table, refused it, or run
    /// out of its deadline: at most `per_peer_timeout` after the last peer
    /// got its turn.
    ///
    /// # Errors
    ///
    /// None with the default completion; the type is the fan-out's.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels every push in flight; the peers that had
    /// not answered may or may not have applied the table.
    pub async fn push(
        &self,
        peers: &[SocketAddr],
        table: &RouteTable,
    ) -> Result<FanOutReport<StatusCode, RetryError<PushError>>, FanOutError> {
        let body = table.encode();
        let version = table.version();
        self.fanout
            .run(peers.iter().copied(), |peer, deadline| {
                let client = self.client.clone();
                let policy = Arc::clone(&self.policy);
                let budget = self.budgets.get(&peer);
                let body = body.clone();
                async move {
                    let options = CallOptions::new().deadline(deadline).budget(&budget);
                    policy
                        .run(options, |attempt| {
                            push_once(&client, peer, version, body.clone(), attempt)
                        })
                        .await
                }
            })
            .await
    }
}

/// One attempt: POST the table and read the whole answer, so that the
/// connection goes back to the pool.
async fn push_once(
    client: &Client<HttpConnector, Full<Bytes>>,
    peer: SocketAddr,
    version: u64,
    body: Bytes,
    attempt: Attempt,
) -> Result<StatusCode, PushError> {
    let remaining = attempt.deadline().saturating_duration_since(Instant::now());
    let request = Request::post(format!("http://{peer}/routes"))
        .header(VERSION_HEADER, version)
        .header(DEADLINE_HEADER, remaining.as_millis().to_string())
        .body(Full::new(body))
        .map_err(PushError::Request)?;
    let response = client
        .request(request)
        .await
        .map_err(PushError::Transport)?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    response
        .into_body()
        .collect()
        .await
        .map_err(PushError::Body)?;
    if status.is_success() {
        Ok(status)
    } else {
        Err(PushError::Status {
            status,
            retry_after,
        })
    }
}
