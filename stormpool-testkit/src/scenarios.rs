//! Fault scenarios shared by the database adapters' tests: the same
//! checks, run against PostgreSQL and MariaDB through a
//! [`Harness`] that knows the adapter's SQL.
//!
//! Each scenario builds its own pool, injects one fault, measures, undoes
//! the fault (also when it panics, through drop guards) and asserts. Each
//! prints its measurements on one `measured:` line (shown with
//! `--nocapture`). Run them one at a time ([`serial`](crate::serial)): they
//! restart and freeze shared servers.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stormpool::{AcquireError, AcquireOptions, Conn, Manager, Pool, Settings};

use crate::load::{chain, wait_until, Load, LoadConfig, Outcome, Report, Step};
use crate::proxy::{Fault, FaultProxy};
use crate::server::{freeze, Server};
use crate::side::{self, SideConnection};

/// How a query failed, as the adapter's classifier sees it.
#[derive(Clone, Debug)]
pub struct QueryError {
    /// The error with its sources.
    pub message: String,
    /// Whether the adapter calls it a connection error.
    pub connection_error: bool,
}

/// How a statement on a pooled connection failed, as the adapter's
/// classifier sees it: what [`QueryError`] and
/// [`StatementError`](crate::statements::StatementError) are made of.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The error with its sources.
    pub message: String,
    /// Whether the adapter calls it a connection error.
    pub connection_error: bool,
    /// Whether the server stopped the statement at its time bound
    /// (SQLSTATE `57014` in PostgreSQL, error 1969 in MariaDB).
    pub timed_out: bool,
}

impl From<Failure> for QueryError {
    fn from(f: Failure) -> Self {
        QueryError {
            message: f.message,
            connection_error: f.connection_error,
        }
    }
}

/// What the scenarios need to know about one adapter.
pub trait Harness: Send + Sync + 'static {
    /// The adapter's manager.
    type M: Manager;

    /// The server the adapter's tests run against.
    const SERVER: Server;

    /// A connection of the test's own, outside any pool, through which the
    /// scenarios ask the server about its sessions.
    type Side: SideConnection;

    /// A manager for `url` whose sessions the server can tell apart by
    /// `tag` (an application name, a user), so [`kill_sessions`](Harness::kill_sessions)
    /// finds exactly them. Each scenario uses its own tag; the scenarios run
    /// one at a time.
    fn manager(url: &str, tag: &str) -> Self::M;

    /// Runs `sql` (one statement without parameters, by the driver's
    /// simple protocol where it has one) through the adapter's tracked
    /// statements, and returns the first column of its first row as text
    /// (`None`: no row, or NULL). The statements the kit sends cast what
    /// they read to text.
    fn text(
        conn: &mut Conn<Self::M>,
        sql: &str,
    ) -> impl Future<Output = Result<Option<String>, Failure>> + Send;

    /// Runs a trivial query on `conn` and returns the server's id of its
    /// session (backend pid, connection id).
    fn session(conn: &mut Conn<Self::M>) -> impl Future<Output = Result<u64, QueryError>> + Send {
        let sql = match Self::SERVER {
            Server::Postgres => "SELECT pg_backend_pid()::text",
            Server::MariaDb => "SELECT CAST(CONNECTION_ID() AS CHAR)",
        };
        async move {
            let id = Self::text(conn, sql).await?;
            Ok(id
                .and_then(|id| id.parse().ok())
                .unwrap_or_else(|| panic!("{sql}: no session id")))
        }
    }

    /// Ends, on the server, every session tagged `tag`, from a connection
    /// of its own; returns the ids of the sessions ended, once they are gone.
    fn kill_sessions(url: &str, tag: &str) -> impl Future<Output = Vec<u64>> + Send {
        side::kill_sessions::<Self::Side>(Self::SERVER, url, tag)
    }

    /// The process to freeze to make `session` hang: its backend process,
    /// or the whole server when sessions have no process of their own
    /// (MariaDB runs sessions as threads: freezing one means freezing all).
    fn freeze_target(session: u64) -> Option<u32> {
        match Self::SERVER {
            Server::Postgres => u32::try_from(session).ok(),
            Server::MariaDb => Server::MariaDb.main_pid(),
        }
    }

    /// The session's current value of the setting `name`, read from the
    /// server (`current_setting('TimeZone')`, `@@session.time_zone`).
    fn read_setting(conn: &mut Conn<Self::M>, name: &str) -> impl Future<Output = String> + Send {
        let sql = match Self::SERVER {
            Server::Postgres => format!("SELECT current_setting('{name}')"),
            Server::MariaDb => format!("SELECT CAST(@@session.{name} AS CHAR)"),
        };
        async move {
            Self::text(conn, &sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {}", e.message))
                .unwrap_or_else(|| panic!("{sql}: no value"))
        }
    }
}

/// The error of an acquire, displayed with its sources.
pub fn acquire_error<E: std::error::Error + 'static>(e: &AcquireError<E>) -> String {
    chain(e)
}

/// One load request: acquire by `deadline`, run the session query, release.
async fn request<H: Harness>(pool: &Pool<H::M>, deadline: Instant) -> Step {
    let options = AcquireOptions::new().deadline(deadline.into());
    let mut conn = match pool.get_with(options).await {
        Ok(conn) => conn,
        Err(e) => {
            return Step {
                acquired: None,
                outcome: Outcome::AcquireFailed {
                    error: acquire_error(&e),
                },
            }
        }
    };
    let acquired = Some(Instant::now());
    let outcome = match H::session(&mut conn).await {
        Ok(session) => Outcome::Ok { session },
        Err(e) => Outcome::QueryFailed {
            error: e.message,
            connection_error: e.connection_error,
        },
    };
    Step { acquired, outcome }
}

fn start_load<H: Harness>(pool: &Pool<H::M>, config: LoadConfig) -> Load {
    let pool = Arc::new(pool.clone());
    Load::start(config, move |_, deadline| {
        let pool = pool.clone();
        async move { request::<H>(&pool, deadline).await }
    })
}

/// Opens `n` connections at once (so the pool holds `n`) and returns their
/// sessions.
async fn warm<H: Harness>(pool: &Pool<H::M>, n: usize) -> BTreeSet<u64> {
    let mut conns = Vec::new();
    let mut sessions = BTreeSet::new();
    for _ in 0..n {
        let mut conn = pool.get().await.unwrap_or_else(|e| {
            panic!("warming the pool failed: {}", acquire_error(&e));
        });
        sessions.insert(H::session(&mut conn).await.expect("warm-up query"));
        conns.push(conn);
    }
    sessions
}

/// The pool has `n` connections established and `n` distinct sessions not
/// in `old` served requests that started after `since`.
fn full_and_new<H: Harness>(
    pool: &Pool<H::M>,
    load: &Load,
    n: usize,
    since: Instant,
    old: &BTreeSet<u64>,
) -> bool {
    let status = pool.status();
    let fresh = load.report_so_far().sessions_after(since);
    if std::env::var_os("STORMPOOL_TRACE").is_some() {
        eprintln!(
            "  {:?} after: open {} connecting {} idle {} waiting {} fresh {}",
            since.elapsed(),
            status.open,
            status.connecting,
            status.idle,
            status.waiting,
            fresh.difference(old).count()
        );
    }
    status.open - status.connecting >= n && fresh.difference(old).count() >= n
}

fn print_failures(report: &Report) {
    for e in report.query_failures().take(10) {
        eprintln!("  query failure: {:?}", e.outcome);
    }
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for e in report.acquire_failures() {
        if let Outcome::AcquireFailed { error } = &e.outcome {
            let head = error.split(':').next().unwrap_or_default().to_owned();
            *kinds.entry(head).or_default() += 1;
        }
    }
    for (kind, n) in kinds {
        eprintln!("  acquire failure x{n}: {kind}");
    }
}

const SIZE: usize = 8;

/// Killed sessions: 32 looping tasks on 8 connections; every pool session
/// is ended on the server.
///
/// Asserts that requests handed an idle killed connection never see the
/// error (the checkout probe, run on every checkout here, replaces it); that
/// the requests whose query failed all held their connection during the
/// kill and failed with a connection error; that no acquire failed; and that
/// the pool is back to 8 established connections, serving 8 sessions none of
/// which was killed, within 1 s of the kill.
pub async fn killed_sessions<H: Harness>(url: &str) {
    let tag = "stormpool_kill";
    let pool = Pool::builder(H::manager(url, tag))
        .max_size(SIZE)
        .check_interval(Duration::ZERO)
        .connect_backoff_max(Duration::from_millis(250))
        .build()
        .expect("pool config");
    warm::<H>(&pool, SIZE).await;
    let load = start_load::<H>(&pool, LoadConfig::default());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let kill_start = Instant::now();
    let killed: BTreeSet<u64> = H::kill_sessions(url, tag).await.into_iter().collect();
    let kill_end = Instant::now();
    let recovered = wait_until(Duration::from_secs(5), || {
        full_and_new::<H>(&pool, &load, SIZE, kill_end, &killed)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let report = load.stop().await;
    let in_flight = report.holding_during(kill_start, kill_end);
    let recovery = recovered.map(|t| t - kill_end);
    eprintln!(
        "measured: killed {} sessions in {:?}; {in_flight} requests held a connection meanwhile; \
         full capacity with new sessions after {recovery:?}; {}",
        killed.len(),
        kill_end - kill_start,
        report.summary()
    );
    print_failures(&report);

    assert!(!killed.is_empty(), "no pool session was found to kill");
    for e in report.query_failures() {
        let Outcome::QueryFailed {
            connection_error, ..
        } = &e.outcome
        else {
            unreachable!()
        };
        assert!(*connection_error, "not a connection error: {e:?}");
        let acquired = e.acquired.expect("a query failure had a connection");
        assert!(
            acquired <= kill_end,
            "a request that got its connection after the kill saw the error: {e:?}"
        );
    }
    assert!(report.query_failures().count() <= in_flight);
    assert_eq!(report.acquire_failures().count(), 0, "{}", report.summary());
    let recovery = recovery.expect("the pool did not recover within 5 s");
    assert!(
        recovery <= Duration::from_secs(1),
        "full capacity took {recovery:?}"
    );
    let after = report.sessions_after(kill_end);
    assert!(after.is_disjoint(&killed), "a killed session served again");
}

/// Server restart under load: 32 looping tasks with 500 ms acquire
/// deadlines on 8 connections while the server is stopped and started.
///
/// What counts as an error: the pool fails requests fast with
/// `AcquireError::Connect` while no connection can be established (and with
/// `Timeout` when a deadline passes meanwhile), by design. Those acquire-side
/// failures are counted and reported apart, and each must return within its
/// deadline plus 50 ms. The *errors* bounded by the scenario are the
/// requests that were handed a connection and whose query then failed: at
/// most the number of requests holding a connection while the server went
/// down.
///
/// Also asserts the first success within 1 s and full capacity (8 new
/// sessions) within 2 s of the server accepting connections again. The
/// pool's connect backoff is capped at 250 ms here: with the default 2 s
/// cap, a retry may be scheduled up to 2 s after the server is back.
pub async fn restart_under_load<H: Harness>(url: &str) {
    let _restore = H::SERVER.guard();
    let tag = "stormpool_restart";
    let pool = Pool::builder(H::manager(url, tag))
        .max_size(SIZE)
        .check_interval(Duration::ZERO)
        .connect_timeout(Duration::from_secs(1))
        .connect_backoff_max(Duration::from_millis(250))
        .build()
        .expect("pool config");
    let before = warm::<H>(&pool, SIZE).await;
    let config = LoadConfig {
        acquire_timeout: Duration::from_millis(500),
        ..LoadConfig::default()
    };
    let load = start_load::<H>(&pool, config);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let restart = tokio::task::spawn_blocking(move || H::SERVER.restart())
        .await
        .expect("restart task")
        .expect("restart");
    let up = restart.up;
    let recovered = wait_until(Duration::from_secs(10), || {
        full_and_new::<H>(&pool, &load, SIZE, up, &before)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let report = load.stop().await;
    let in_flight = report.holding_during(restart.requested, restart.down);
    let first = report.first_success_after(up).map(|e| e.ended - up);
    let full = recovered.map(|t| t.saturating_duration_since(up));
    eprintln!(
        "measured: {:?} down after {:?}, up {:?} later; first success {first:?} and full \
         capacity {full:?} after up; {in_flight} requests held a connection during the stop; {}",
        H::SERVER,
        restart.down - restart.requested,
        restart.up - restart.down,
        report.summary()
    );
    print_failures(&report);

    let overshoot = report.max_acquire_overshoot();
    assert!(
        overshoot <= Duration::from_millis(50),
        "an acquire outlived its deadline by {overshoot:?}"
    );
    let errors = report.query_failures().count();
    // At most one failure per connection the restart took down: a dead
    // connection is closed on return and probed away at checkout.
    assert!(
        errors <= in_flight.min(SIZE),
        "{errors} query errors, {in_flight} requests in flight at the restart"
    );
    let first = first.expect("no success after the restart");
    assert!(
        first <= Duration::from_secs(1),
        "first success after {first:?}"
    );
    let full = full.expect("the pool did not refill within 10 s");
    assert!(
        full <= Duration::from_secs(2),
        "full capacity after {full:?}"
    );
}

/// A hung session: the server process behind one pooled session is frozen
/// (SIGSTOP) while the session is idle.
///
/// Asserts that an acquire returns within its deadline plus 50 ms (with
/// another session when the server still accepts connections), that the
/// frozen session is never handed out again, even after it thaws, and that
/// the pool serves 4 concurrent requests within 2 s after the thaw.
pub async fn hung_session<H: Harness>(url: &str) {
    let _restore = H::SERVER.guard();
    let tag = "stormpool_hung";
    let pool = Pool::builder(H::manager(url, tag))
        .max_size(4)
        .check_interval(Duration::ZERO)
        .check_timeout(Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(500))
        .connect_backoff_max(Duration::from_millis(250))
        .build()
        .expect("pool config");
    let sessions = warm::<H>(&pool, 1).await;
    let frozen_session = *sessions.first().expect("one session");
    let pid = H::freeze_target(frozen_session).expect("a process to freeze");
    let deadline = Duration::from_millis(800);
    let mut outcomes = Vec::new();
    {
        let _frozen = freeze(pid).expect("SIGSTOP");
        for _ in 0..3 {
            let start = Instant::now();
            let got = pool.get_with(AcquireOptions::new().timeout(deadline)).await;
            let elapsed = start.elapsed();
            let session = match got {
                Ok(mut conn) => Some(H::session(&mut conn).await.map_err(|e| e.message)),
                Err(e) => Some(Err(acquire_error(&e))),
            };
            outcomes.push((elapsed, session));
        }
    }
    let thawed = Instant::now();
    let served = wait_until(Duration::from_secs(5), || pool.status().open > 0).await;
    let mut after = BTreeSet::new();
    let mut recovered = None;
    while thawed.elapsed() < Duration::from_secs(3) {
        let mut conns = Vec::new();
        for _ in 0..4 {
            if let Ok(conn) = pool.get_with(AcquireOptions::new().timeout(deadline)).await {
                conns.push(conn);
            }
        }
        for conn in &mut conns {
            if let Ok(s) = H::session(conn).await {
                after.insert(s);
            }
        }
        if conns.len() == 4 && recovered.is_none() {
            recovered = Some(thawed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = pool.status();
    eprintln!(
        "measured: with session {frozen_session} frozen: {outcomes:?}; after thaw 4 connections in \
         {recovered:?} (pool served {served:?}); closed by failed probes {}, tainted {}",
        status.counters.closed_check_failed, status.counters.closed_tainted
    );
    for (elapsed, outcome) in &outcomes {
        assert!(
            *elapsed <= deadline + Duration::from_millis(50),
            "an acquire took {elapsed:?} against a {deadline:?} deadline"
        );
        if let Some(Ok(session)) = outcome {
            assert_ne!(
                *session, frozen_session,
                "the frozen session was handed out"
            );
        }
    }
    assert!(
        !after.contains(&frozen_session),
        "the frozen session served again after the thaw"
    );
    let recovered = recovered.expect("no recovery within 3 s of the thaw");
    assert!(
        recovered <= Duration::from_secs(2),
        "recovery took {recovered:?}"
    );
}

/// A blackholed network (the fault proxy forwards nothing, connects hang):
/// concurrent acquires with 300 ms deadlines all return within their
/// deadline plus 50 ms; no request is handed a hung connection; after the
/// fault clears the pool serves 4 concurrent requests within 2 s.
pub async fn blackhole<H: Harness>(url: &str) {
    let upstream = crate::db::server_addr(url, 0).expect("server address");
    let proxy = FaultProxy::start(upstream).await.expect("proxy");
    let proxied = crate::db::with_addr(url, proxy.local_addr());
    let tag = "stormpool_blackhole";
    let pool = Pool::builder(H::manager(&proxied, tag))
        .max_size(4)
        .check_interval(Duration::ZERO)
        .check_timeout(Duration::from_millis(100))
        .connect_timeout(Duration::from_millis(500))
        .connect_backoff_max(Duration::from_millis(250))
        .build()
        .expect("pool config");
    warm::<H>(&pool, 4).await;

    proxy.set_fault(Fault::Blackhole);
    let deadline = Duration::from_millis(300);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let got = pool.get_with(AcquireOptions::new().timeout(deadline)).await;
                (
                    start.elapsed(),
                    got.map(drop).map_err(|e| acquire_error(&e)),
                )
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("acquire task"));
    }
    let during = pool.status();

    proxy.set_fault(Fault::None);
    let cleared = Instant::now();
    let mut recovered = None;
    while cleared.elapsed() < Duration::from_secs(3) {
        let mut conns = Vec::new();
        for _ in 0..4 {
            if let Ok(mut conn) = pool.get_with(AcquireOptions::new().timeout(deadline)).await {
                if H::session(&mut conn).await.is_ok() {
                    conns.push(conn);
                }
            }
        }
        if conns.len() == 4 {
            recovered = Some(cleared.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "measured: blackhole acquires {outcomes:?}; probes failed {}, tainted {}; recovery \
         {recovered:?}",
        during.counters.closed_check_failed, during.counters.closed_tainted
    );
    for (elapsed, outcome) in &outcomes {
        assert!(
            *elapsed <= deadline + Duration::from_millis(50),
            "an acquire took {elapsed:?}"
        );
        assert!(outcome.is_err(), "a request was handed a hung connection");
    }
    assert!(during.counters.closed_check_failed + during.counters.closed_tainted > 0);
    let recovered = recovered.expect("no recovery within 3 s");
    assert!(
        recovered <= Duration::from_secs(2),
        "recovery took {recovered:?}"
    );
}

/// A hung connect does not block other acquires: with new connections
/// blackholed by the proxy (established ones unaffected), a request waiting
/// while a connect hangs is served by a connection returned meanwhile, and
/// one with nothing to get returns at its deadline.
pub async fn hung_connect<H: Harness>(url: &str) {
    let upstream = crate::db::server_addr(url, 0).expect("server address");
    let proxy = FaultProxy::start(upstream).await.expect("proxy");
    let proxied = crate::db::with_addr(url, proxy.local_addr());
    let tag = "stormpool_hungconnect";
    let pool = Pool::builder(H::manager(&proxied, tag))
        .max_size(2)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("pool config");
    let mut held = pool.get().await.expect("first connection");
    H::session(&mut held).await.expect("query");

    proxy.set_fault_for_new(Fault::Blackhole);
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let got = pool
                .get_with(AcquireOptions::new().timeout(Duration::from_secs(1)))
                .await;
            (
                start.elapsed(),
                got.map(drop).map_err(|e| acquire_error(&e)),
            )
        })
    };
    // Wait until the waiter's connect hangs in the proxy.
    wait_until(Duration::from_secs(1), || proxy.accepted() >= 2).await;
    let released = Instant::now();
    drop(held);
    let (waited, got) = waiter.await.expect("waiter");
    let handed_after = released.elapsed();

    // Both slots busy: the hung connect and the connection now idle. A
    // request that cannot be served returns at its deadline.
    let held = pool.get().await.expect("the idle connection");
    let start = Instant::now();
    let starved = pool
        .get_with(AcquireOptions::new().timeout(Duration::from_millis(300)))
        .await;
    let starved_after = start.elapsed();
    drop(held);
    eprintln!(
        "measured: waiter served {handed_after:?} after the release (waited {waited:?}); \
         starved request returned after {starved_after:?}"
    );
    assert!(got.is_ok(), "the waiter was not served: {got:?}");
    assert!(
        waited < Duration::from_secs(1),
        "the waiter waited for the hung connect"
    );
    assert!(starved.is_err());
    assert!(
        starved_after <= Duration::from_millis(350),
        "{starved_after:?}"
    );
}

/// Nothing listens on the port: every acquire fails fast with
/// `AcquireError::Connect` (no panic, no waiting for the deadline), and the
/// attempts stay few however many requests come: at most one per
/// `connect_backoff_min` on the requests' behalf, plus the backoff's own.
pub async fn refused_port<H: Harness>(url: &str) {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let refused = crate::db::with_addr(url, addr);
    let pool = Pool::builder(H::manager(&refused, "stormpool_refused"))
        .max_size(4)
        .acquire_timeout(Duration::from_secs(5))
        .build()
        .expect("pool config");
    let start = Instant::now();
    let mut requests = 0u64;
    let mut slowest = Duration::ZERO;
    while start.elapsed() < Duration::from_secs(1) {
        let asked = Instant::now();
        let got = pool.get().await;
        slowest = slowest.max(asked.elapsed());
        requests += 1;
        match got {
            Err(AcquireError::Connect(e)) => {
                let text = chain(&*e);
                assert!(!text.is_empty());
            }
            Err(e) => panic!("expected a connect error, got {}", acquire_error(&e)),
            Ok(_) => panic!("connected to a closed port"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let counters = pool.status().counters;
    let attempts = counters.connects_ok + counters.connects_failed;
    eprintln!(
        "measured: {requests} requests in 1 s against a closed port: slowest {slowest:?}, \
         {attempts} connect attempts"
    );
    assert!(slowest < Duration::from_millis(500), "slowest {slowest:?}");
    // Requests get at most one attempt per `connect_backoff_min` (50 ms),
    // so that a database coming back is used at once; the backoff's own
    // attempts (50 ms doubling) add a few: about 20 in a second, whatever
    // the number of requests.
    assert!(
        attempts <= 1_000 / 50 + 6,
        "{attempts} connect attempts for {requests} requests"
    );
    assert!(requests >= 50);
}

/// Acquires once from a fresh pool around `manager`, expecting the connect
/// to fail: the error and how long the acquire took (its timeout is 10 s).
pub async fn connect_error<M: Manager>(manager: M) -> (Arc<M::Error>, Duration) {
    let pool = Pool::builder(manager)
        .acquire_timeout(Duration::from_secs(10))
        .build()
        .expect("pool config");
    let start = Instant::now();
    match pool.get().await {
        Err(AcquireError::Connect(e)) => (e, start.elapsed()),
        Err(e) => panic!("expected a connect error, got {}", acquire_error(&e)),
        Ok(_) => panic!("expected a connect error, got a connection"),
    }
}

/// 16 tasks, 20 requests each, on a pool of 4: every request is served,
/// and no more than 4 connections are ever opened.
pub async fn concurrent_within_max_size<H: Harness>(url: &str) {
    let pool = Pool::builder(H::manager(url, "stormpool_concurrent"))
        .max_size(4)
        .build()
        .expect("pool config");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    let mut conn = pool.get().await.expect("acquire");
                    H::session(&mut conn).await.expect("query");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let status = pool.status();
    assert!(status.open <= 4);
    assert!(status.counters.connects_ok <= 4);
    let served = status.counters.acquired_direct + status.counters.acquired_waited;
    assert_eq!(served, 320);
}

/// 12 tasks × 40 requests on a pool of 4, each asking at random for one of
/// `values` of the setting `name`, or for no settings: every request reads
/// from the server exactly the value it asked for (the server default when
/// it asked for none), so no connection carrying settings ever reaches a
/// request that asked for others without a reset.
pub async fn mixed_settings<H: Harness>(url: &str, name: &str, values: &[&str]) {
    let pool = Pool::builder(H::manager(url, "stormpool_settings_mixed"))
        .max_size(4)
        .build()
        .expect("pool config");
    let default = {
        let mut conn = pool.get().await.expect("acquire");
        H::read_setting(&mut conn, name).await
    };
    let mut choices: Vec<(Option<Settings>, String)> = vec![(None, default)];
    for value in values {
        choices.push((Some(Settings::new([(name, *value)])), (*value).to_owned()));
    }
    let choices = Arc::new(choices);
    let name: Arc<str> = name.into();
    let tasks: Vec<_> = (0..12)
        .map(|task| {
            let (pool, choices, name) = (pool.clone(), choices.clone(), name.clone());
            tokio::spawn(async move {
                let mut checked = 0;
                for i in 0..40 {
                    let (settings, expected) = &choices[(task * 7 + i * 3) % choices.len()];
                    let mut options = AcquireOptions::new();
                    if let Some(s) = settings {
                        options = options.settings(s.clone());
                    }
                    let mut conn = pool.get_with(options).await.expect("acquire");
                    assert_eq!(&H::read_setting(&mut conn, &name).await, expected);
                    checked += 1;
                }
                checked
            })
        })
        .collect();
    let mut checked = 0;
    for task in tasks {
        checked += task.await.expect("task");
    }
    assert_eq!(checked, 480);
}

/// `conn`, which has just served a query, goes back to `pool`: the pool
/// holds one connection, idle, none in use; and the next request gets the
/// same session (the idle connection is reused, not replaced: one connect
/// in all).
pub async fn released_and_reused<H: Harness>(pool: &Pool<H::M>, mut conn: Conn<H::M>) {
    let session = H::session(&mut conn).await.expect("session query");
    drop(conn);
    let status = pool.status();
    assert_eq!(
        (status.open, status.idle, status.in_use),
        (1, 1, 0),
        "{status:?}"
    );
    let mut conn = pool
        .get()
        .await
        .unwrap_or_else(|e| panic!("acquire again: {}", acquire_error(&e)));
    let again = H::session(&mut conn).await.expect("session query");
    assert_eq!(again, session, "the idle connection is reused");
    assert_eq!(pool.status().counters.connects_ok, 1);
}

/// A connection idle for longer than `check_interval` (20 ms here) is
/// probed at its next checkout; one returned just before is not.
pub async fn probed_after_check_interval<H: Harness>(url: &str) {
    let pool = Pool::builder(H::manager(url, "stormpool_probe"))
        .check_interval(Duration::from_millis(20))
        .build()
        .expect("pool config");
    let get = || async {
        pool.get()
            .await
            .unwrap_or_else(|e| panic!("acquire: {}", acquire_error(&e)))
    };
    drop(get().await);
    drop(get().await);
    assert_eq!(
        pool.status().counters.checks,
        0,
        "a hot connection is not probed"
    );
    tokio::time::sleep(Duration::from_millis(40)).await;
    drop(get().await);
    assert_eq!(pool.status().counters.checks, 1);
}

/// A session killed on the server while a request holds it: the request's
/// next query fails with a connection error, the pool closes the connection
/// when it comes back (`is_broken`), and the next request gets a new session.
pub async fn killed_in_use<H: Harness>(url: &str) {
    let tag = "stormpool_killed_in_use";
    let pool = Pool::builder(H::manager(url, tag))
        .max_size(2)
        .build()
        .expect("pool config");
    let mut conn = pool.get().await.expect("acquire");
    let session = H::session(&mut conn).await.expect("query");
    let killed = H::kill_sessions(url, tag).await;
    assert_eq!(killed, vec![session]);
    let err = H::session(&mut conn)
        .await
        .expect_err("the session was killed");
    assert!(err.connection_error, "{}", err.message);
    drop(conn);
    let status = pool.status();
    assert_eq!(status.counters.closed_broken, 1);
    // Counted until the close is done, never handed out again.
    assert_eq!((status.open, status.idle), (status.closing, 0));
    let mut conn = pool.get().await.expect("a new connection");
    assert_ne!(H::session(&mut conn).await.expect("query"), session);
}

/// A statement sent to a frozen server: the client stops waiting at the
/// request's deadline plus the adapter's grace (so a frozen or partitioned
/// server cannot hold a request past its deadline), with a connection-level
/// error; the pool then cancels the statement and drains or closes the
/// connection, and serves requests again after the thaw.
///
/// Asserts the statement fails within its deadline plus 1 s (generous for
/// a shared machine; the measured figure is printed) and as a connection
/// error, and that the connection is not handed out before the server
/// answered again.
pub async fn frozen_statement_is_bounded<H: Harness>(url: &str) {
    let _restore = H::SERVER.guard();
    let tag = "stormpool_frozen_statement";
    let pool = Pool::builder(H::manager(url, tag))
        .max_size(2)
        .abandon_timeout(Duration::from_millis(500))
        .build()
        .expect("pool config");
    let sessions = warm::<H>(&pool, 1).await;
    let session = *sessions.first().expect("one session");
    let pid = H::freeze_target(session).expect("a process to freeze");
    let budget = Duration::from_millis(300);
    let (took, outcome) = {
        let _frozen = freeze(pid).expect("SIGSTOP");
        let deadline = Instant::now() + budget;
        let mut conn = pool
            .get_with(AcquireOptions::new().deadline(deadline.into()))
            .await
            .unwrap_or_else(|e| panic!("acquire: {}", acquire_error(&e)));
        let start = Instant::now();
        let outcome = H::session(&mut conn).await;
        let took = start.elapsed();
        let late = Instant::now().saturating_duration_since(deadline);
        drop(conn);
        println!(
            "measured: statement on a frozen server gave up {took:?} after it was sent, \
             {late:?} past its deadline: {outcome:?}"
        );
        // Let the drain meet the frozen server.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            late <= Duration::from_secs(1),
            "held {late:?} past the deadline"
        );
        (took, outcome)
    };
    let error = outcome.expect_err("a statement on a frozen server succeeded");
    assert!(
        error.connection_error,
        "not a connection error: {}",
        error.message
    );
    assert!(took < budget + Duration::from_secs(1), "took {took:?}");
    let settled = wait_until(Duration::from_secs(5), || {
        let s = pool.status();
        s.draining == 0 && s.counters.drained + s.counters.closed_drain_failed >= 1
    })
    .await;
    assert!(settled.is_some(), "never drained: {:?}", pool.status());
    let mut conn = pool
        .get_with(AcquireOptions::new().timeout(Duration::from_secs(5)))
        .await
        .unwrap_or_else(|e| panic!("acquire after the thaw: {}", acquire_error(&e)));
    H::session(&mut conn)
        .await
        .expect("a statement after the thaw");
    let c = pool.status().counters;
    println!(
        "measured: after the thaw: drained {}, closed by the drain {}, cancelled on return {}",
        c.drained, c.closed_drain_failed, c.cancelled_on_return
    );
}
