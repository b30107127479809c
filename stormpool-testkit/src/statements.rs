//! Statement hygiene scenarios shared by the database adapters' tests:
//! abandoned statements and deadline propagation, checked against the
//! server's own view of its sessions (`pg_stat_activity`, the process list)
//! through a [`StatementHarness`].
//!
//! Unlike the fault scenarios these touch no server process, so they may run
//! in parallel with each other; each uses a pool of one connection, so "the
//! next request" is served by the very session the scenario dirtied.

use std::future::Future;
use std::time::{Duration, Instant};

use stormpool::{AcquireOptions, Conn, Pool, Settings};

use crate::errors::{ErrorHarness, ErrorOf};
use crate::load::wait_until;
use crate::scenarios::{acquire_error, Failure, Harness};
use crate::server::Server;
use crate::side::{self, SideConnection};

/// How a tracked statement failed.
#[derive(Clone, Debug)]
pub struct StatementError {
    /// The error with its sources.
    pub message: String,
    /// Whether the server stopped the statement at its time bound
    /// (SQLSTATE `57014` in PostgreSQL, error 1969 in MariaDB).
    pub timed_out: bool,
}

impl From<Failure> for StatementError {
    fn from(f: Failure) -> Self {
        StatementError {
            message: f.message,
            timed_out: f.timed_out,
        }
    }
}

/// What a manager counted about its statements (every adapter's manager
/// reports the core's counters).
pub use stormpool::statements::StatementStats;

/// What the statement scenarios need to know about one adapter, beyond
/// [`Harness`].
pub trait StatementHarness: Harness {
    /// Runs hand-written SQL (no parameters) through the adapter's tracked
    /// statements.
    fn execute(
        conn: &mut Conn<Self::M>,
        sql: &str,
    ) -> impl Future<Output = Result<(), StatementError>> + Send;

    /// Opens an observer of the server's sessions on `url`.
    fn observer(url: &str) -> impl Future<Output = Self::Side> + Send {
        Self::Side::connect(url)
    }

    /// Whether the server is running, on session `session`, a statement
    /// whose text contains `marker`.
    fn is_running(
        observer: &mut Self::Side,
        session: u64,
        marker: &str,
    ) -> impl Future<Output = bool> + Send {
        side::is_running(Self::SERVER, observer, session, marker)
    }

    /// Sleeps `seconds` on the server in one statement tagged with `marker`
    /// (a comment), through the adapter's tracked statement API
    /// ([`execute`](Self::execute)).
    fn sleep(
        conn: &mut Conn<Self::M>,
        seconds: f64,
        marker: &str,
    ) -> impl Future<Output = Result<(), StatementError>> + Send {
        let sql = match Self::SERVER {
            Server::Postgres => format!("SELECT pg_sleep({seconds}) /* {marker} */"),
            Server::MariaDb => format!("SELECT SLEEP({seconds}) /* {marker} */"),
        };
        async move { Self::execute(conn, &sql).await }
    }

    /// The bound the session puts on statements, as the server reports it
    /// to a tracked statement, in whole milliseconds (0: none).
    fn statement_bound_ms(conn: &mut Conn<Self::M>) -> impl Future<Output = u64> + Send {
        let sql = match Self::SERVER {
            Server::Postgres => "SELECT setting FROM pg_settings WHERE name = 'statement_timeout'",
            Server::MariaDb => {
                "SELECT CAST(CAST(ROUND(@@session.max_statement_time * 1000) AS SIGNED) AS CHAR)"
            }
        };
        async move {
            let ms = Self::text(conn, sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {}", e.message));
            ms.and_then(|ms| ms.parse().ok())
                .unwrap_or_else(|| panic!("{sql}: not a bound of 0 or more"))
        }
    }

    /// The manager's statement counters.
    fn stats(manager: &Self::M) -> StatementStats;

    /// Blocks on the server for up to `seconds` in one statement tagged
    /// `marker` that a cancel stops at once, for as long as `observer`
    /// holds what it waits for (see [`hold_for`](Self::hold_for)): on
    /// MariaDB, `GET_LOCK` on the lock the observer holds (`KILL QUERY`
    /// stops it at once, where it can take seconds to reach many
    /// `SLEEP()`s); elsewhere a sleep ([`sleep`](Self::sleep)).
    fn block(
        conn: &mut Conn<Self::M>,
        seconds: f64,
        marker: &str,
    ) -> impl Future<Output = Result<(), StatementError>> + Send {
        async move {
            match Self::SERVER {
                Server::Postgres => Self::sleep(conn, seconds, marker).await,
                Server::MariaDb => {
                    let lock = side::BLOCK_LOCK;
                    let sql = format!("SELECT GET_LOCK('{lock}', {seconds}) /* {marker} */");
                    Self::execute(conn, &sql).await
                }
            }
        }
    }

    /// Makes `observer` hold what [`block`](Self::block) waits for, until it
    /// is dropped: the MariaDB lock; nothing elsewhere.
    fn hold_for(observer: &mut Self::Side) -> impl Future<Output = ()> + Send {
        async move {
            if Self::SERVER == Server::MariaDb {
                side::hold_lock(observer).await;
            }
        }
    }

    /// The most sessions the adapter opens beside the pool's own, at once
    /// (side connections of cancels, when they are sessions on the server).
    const SIDE_SESSIONS: usize;

    /// How many sessions tagged `tag` (see [`Harness::manager`]) the server
    /// holds now.
    fn sessions(observer: &mut Self::Side, tag: &str) -> impl Future<Output = usize> + Send {
        side::sessions(Self::SERVER, observer, tag)
    }
}

pub(crate) fn pool_of_one<H: Harness>(url: &str, tag: &str, propagate: bool) -> Pool<H::M> {
    Pool::builder(H::manager(url, tag))
        .max_size(1)
        .propagate_deadline(propagate)
        .build()
        .expect("pool config")
}

pub(crate) async fn get<H: Harness>(pool: &Pool<H::M>, options: AcquireOptions) -> Conn<H::M> {
    pool.get_with(options)
        .await
        .unwrap_or_else(|e| panic!("acquire: {}", acquire_error(&e)))
}

/// A request's own deadline, `budget` from now.
pub(crate) fn within(budget: Duration) -> AcquireOptions {
    AcquireOptions::new().deadline((Instant::now() + budget).into())
}

/// Polls the server every 2 ms until session `session` no longer runs the
/// statement tagged `marker` (the instant it saw so) or `limit` passes.
async fn wait_gone<H: StatementHarness>(
    observer: &mut H::Side,
    session: u64,
    marker: &str,
    limit: Duration,
) -> Option<Instant> {
    let until = Instant::now() + limit;
    loop {
        if !H::is_running(observer, session, marker).await {
            return Some(Instant::now());
        }
        if Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Starts a 10 s sleep tagged `marker` on `conn` (session `session`),
/// drives it until `observer` sees the server run it, drops the statement
/// half-way (the server still runs it) and then returns the connection to
/// its pool: within 100 ms of the return the server runs it no more (the
/// figure is printed).
pub async fn abandon_sleep<H: StatementHarness>(
    mut conn: Conn<H::M>,
    observer: &mut H::Side,
    session: u64,
    marker: &str,
) {
    {
        let sleeping = H::sleep(&mut conn, 10.0, marker);
        tokio::pin!(sleeping);
        let until = Instant::now() + Duration::from_secs(5);
        // Drives the statement while watching the server for it.
        loop {
            tokio::select! {
                biased;
                result = &mut sleeping => panic!("the 10 s statement ended: {result:?}"),
                _ = tokio::time::sleep(Duration::from_millis(2)) => {}
            }
            if H::is_running(observer, session, marker).await {
                break;
            }
            assert!(Instant::now() < until, "the statement never showed up");
        }
    }
    // The statement's future is gone; the server still runs it.
    assert!(H::is_running(observer, session, marker).await);
    let dropped = Instant::now();
    drop(conn);
    let stopped = wait_gone::<H>(observer, session, marker, Duration::from_secs(5))
        .await
        .expect("the abandoned statement still runs on the server after 5 s");
    let took = stopped - dropped;
    println!("measured: abandoned statement gone from the server {took:?} after the return");
    assert!(
        took <= Duration::from_millis(100),
        "the abandoned statement ran on for {took:?}"
    );
}

/// A request drops a 10 s sleep statement in the middle and returns its
/// connection: within 100 ms the server runs no statement on that session
/// any more, the pool counts one statement cancelled on return and one
/// connection drained, and the next request is served by the same session
/// at once. A statement that completed leaves nothing to drain.
pub async fn abandoned_statement_is_stopped<H: StatementHarness>(url: &str) {
    let marker = "stormpool_abandoned_10s";
    let pool = pool_of_one::<H>(url, "stormpool_abandoned", true);
    let mut observer = H::observer(url).await;

    let mut conn = get::<H>(&pool, within(Duration::from_secs(60))).await;
    let session = H::session(&mut conn).await.expect("session query");
    H::sleep(&mut conn, 0.001, "stormpool_completed")
        .await
        .expect("a short statement");
    drop(conn);
    let counters = pool.status().counters;
    assert_eq!(counters.cancelled_on_return, 0, "a completed statement");

    let conn = get::<H>(&pool, within(Duration::from_secs(60))).await;
    abandon_sleep::<H>(conn, &mut observer, session, marker).await;

    let drained = wait_until(Duration::from_secs(2), || {
        pool.status().counters.drained == 1
    })
    .await;
    assert!(drained.is_some(), "{:?}", pool.status());
    let status = pool.status();
    assert_eq!(status.counters.cancelled_on_return, 1);
    assert_eq!(status.counters.closed_drain_failed, 0);
    assert_eq!((status.open, status.draining), (1, 0));
    assert_eq!(H::stats(pool.manager()).abandoned, 1);

    // The same session serves the next request normally.
    let mut conn = get::<H>(&pool, within(Duration::from_secs(60))).await;
    assert_eq!(H::session(&mut conn).await.expect("session query"), session);
    H::sleep(&mut conn, 0.01, "stormpool_after_drain")
        .await
        .expect("a statement after the drain");
    drop(conn);
    assert_eq!(pool.status().counters.cancelled_on_return, 1);
}

/// A request with a 300 ms deadline runs a 2 s statement: the server stops
/// it with its timeout error (the manager counts it) well before 2 s, and
/// the connection, still the same session, serves the next request with
/// that request's own deadline: a 500 ms statement under a 60 s deadline
/// completes. A request without a deadline gets the session's default back;
/// a wait timeout is not a deadline and is not propagated.
pub async fn statement_over_budget_is_stopped<H: StatementHarness>(url: &str) {
    let pool = pool_of_one::<H>(url, "stormpool_deadline", true);
    let mut conn = get::<H>(&pool, AcquireOptions::new()).await;
    let session = H::session(&mut conn).await.expect("session query");
    let default = H::statement_bound_ms(&mut conn).await;
    drop(conn);

    let mut conn = get::<H>(&pool, within(Duration::from_millis(300))).await;
    let start = Instant::now();
    let err = H::sleep(&mut conn, 2.0, "stormpool_over_budget")
        .await
        .expect_err("a 2 s statement under a 300 ms deadline");
    let took = start.elapsed();
    println!("measured: 2 s statement under a 300 ms deadline stopped after {took:?}");
    assert!(err.timed_out, "not the server's timeout: {}", err.message);
    assert!(took < Duration::from_millis(1500), "ran for {took:?}");
    assert_eq!(H::stats(pool.manager()).stopped_by_deadline, 1);
    drop(conn);
    assert_eq!(pool.status().counters.cancelled_on_return, 0);

    let mut conn = get::<H>(&pool, within(Duration::from_secs(60))).await;
    assert_eq!(H::session(&mut conn).await.expect("session query"), session);
    H::sleep(&mut conn, 0.5, "stormpool_next_budget")
        .await
        .expect("the next request's own deadline applies");
    let bound = H::statement_bound_ms(&mut conn).await;
    assert!(
        (30_000..=60_000).contains(&bound),
        "a 60 s deadline bounds statements by {bound} ms"
    );
    drop(conn);

    let mut conn = get::<H>(&pool, AcquireOptions::new()).await;
    assert_eq!(H::statement_bound_ms(&mut conn).await, default);
    drop(conn);
    let options = AcquireOptions::new().timeout(Duration::from_millis(300));
    let mut conn = get::<H>(&pool, options).await;
    assert_eq!(H::statement_bound_ms(&mut conn).await, default);
    H::sleep(&mut conn, 0.5, "stormpool_wait_timeout")
        .await
        .expect("a wait timeout does not bound the statement");
    drop(conn);
    assert_eq!(H::stats(pool.manager()).stopped_by_deadline, 1);
}

/// Requests with about the same budget share one bound: consecutive
/// requests with a 10 s deadline set it once. With `propagate_deadline`
/// off, the session keeps its default whatever the deadline.
pub async fn bound_changes_only_when_it_must<H: StatementHarness>(url: &str) {
    let pool = pool_of_one::<H>(url, "stormpool_bound_changes", true);
    let before = H::stats(pool.manager()).bound_changes;
    for _ in 0..5 {
        let mut conn = get::<H>(&pool, within(Duration::from_secs(10))).await;
        H::sleep(&mut conn, 0.001, "stormpool_same_budget")
            .await
            .expect("statement");
    }
    let changes = H::stats(pool.manager()).bound_changes - before;
    assert_eq!(changes, 1, "five requests with a 10 s budget");

    let pool = pool_of_one::<H>(url, "stormpool_no_propagation", false);
    let mut conn = get::<H>(&pool, AcquireOptions::new()).await;
    let default = H::statement_bound_ms(&mut conn).await;
    drop(conn);
    let mut conn = get::<H>(&pool, within(Duration::from_millis(300))).await;
    assert_eq!(H::statement_bound_ms(&mut conn).await, default);
    H::sleep(&mut conn, 0.5, "stormpool_unbounded")
        .await
        .expect("not propagated: the statement outlives the deadline");
    drop(conn);
    let stats = H::stats(pool.manager());
    assert_eq!((stats.bound_changes, stats.stopped_by_deadline), (0, 0));
}

/// Runs `statement` (a 2 s statement through one of the adapter's tracked
/// methods, named `name`) on a connection acquired with a 300 ms deadline,
/// and asserts that it ended well before its 2 s (within 1.5 s, generous
/// for a shared machine; the figure is printed). Returns its result for
/// the adapter to classify (the server's timeout error, or the client's).
pub async fn bounded_by_deadline<M, T, E, F, Fut>(
    pool: &Pool<M>,
    name: &str,
    statement: F,
) -> Result<T, E>
where
    M: stormpool::Manager,
    T: std::fmt::Debug,
    E: std::fmt::Debug,
    F: FnOnce(Conn<M>) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let conn = pool
        .get_with(within(Duration::from_millis(300)))
        .await
        .unwrap_or_else(|e| panic!("acquire: {}", acquire_error(&e)));
    let start = Instant::now();
    let result = statement(conn).await;
    let took = start.elapsed();
    println!("measured: {name}: 2 s statement under a 300 ms deadline ended after {took:?}");
    assert!(
        took < Duration::from_millis(1500),
        "{name}: ran for {took:?}: {result:?}"
    );
    result
}

/// [`bounded_by_deadline`] through `H`'s manager, then: the statement
/// failed with a bound (the server's timeout error, or the client giving up
/// at the deadline plus the grace) or, unless `must_fail`, ended early
/// without one; and the pool serves the next request at once, a statement
/// under a 10 s deadline.
pub async fn stopped_and_served<H, T, F, Fut>(
    pool: &Pool<H::M>,
    name: &str,
    must_fail: bool,
    statement: F,
) where
    H: ErrorHarness,
    T: std::fmt::Debug,
    F: FnOnce(Conn<H::M>) -> Fut,
    Fut: Future<Output = Result<T, ErrorOf<H>>>,
{
    let result = bounded_by_deadline(pool, name, statement).await;
    match &result {
        Err(e) => {
            let classified = H::classify(e);
            let timeout_code = match H::SERVER {
                Server::Postgres => "57014",
                Server::MariaDb => "1969",
            };
            assert!(
                classified.code.as_deref() == Some(timeout_code) || classified.timeout,
                "{name}: {e}"
            );
        }
        Ok(value) => assert!(!must_fail, "{name}: not stopped: {value:?}"),
    }
    let mut conn = get::<H>(pool, within(Duration::from_secs(10))).await;
    H::text(&mut conn, "SELECT 1")
        .await
        .unwrap_or_else(|e| panic!("{name}: next statement: {}", e.message));
}

/// What the statement cache scenarios need to know about one adapter,
/// beyond [`StatementHarness`].
pub trait CacheHarness: StatementHarness {
    /// A prepared statement, as the adapter's cache hands it out.
    type Statement: Send;

    /// A pool of one connection whose sessions cache up to `capacity`
    /// prepared statements.
    fn cache_pool(url: &str, capacity: usize) -> Pool<Self::M>;

    /// The `i`-th of distinct statements that add their one integer
    /// parameter to `i`.
    fn numbered(i: usize) -> String;

    /// Prepares `sql` through the session's statement cache.
    fn prepare_cached(
        conn: &mut Conn<Self::M>,
        sql: &str,
    ) -> impl Future<Output = Self::Statement> + Send;

    /// Runs `statement` with the parameter 1 and returns its value.
    fn run(
        conn: &mut Conn<Self::M>,
        statement: &Self::Statement,
    ) -> impl Future<Output = i64> + Send;

    /// How many statements the session's cache holds.
    fn cached_statements(conn: &Conn<Self::M>) -> usize;

    /// How many statements the server holds prepared on the session, where
    /// the tests can ask it (`None` elsewhere).
    fn server_prepared(conn: &mut Conn<Self::M>) -> impl Future<Output = Option<i64>> + Send;

    /// Session settings other than the defaults: a request asking for them
    /// makes the pool reset the session when it comes back.
    fn other_settings() -> Settings;
}

/// `prepare_cached`: two hot statements used over and over are prepared
/// once each (98 hits, 2 misses); five distinct statements through a cache
/// of three leave three cached (and, where the server can be asked, at most
/// three prepared on it: evicted ones are closed); a reset empties the
/// cache, and statements work after it. Prints the hit rate.
pub async fn cache_bound_and_hit_rate<H: CacheHarness>(url: &str) {
    let pool = H::cache_pool(url, 3);
    let queries: Vec<String> = (0..5).map(H::numbered).collect();
    for _ in 0..50 {
        let mut conn = get::<H>(&pool, AcquireOptions::new()).await;
        for (i, query) in queries[..2].iter().enumerate() {
            let statement = H::prepare_cached(&mut conn, query).await;
            assert_eq!(H::run(&mut conn, &statement).await, i as i64 + 1);
        }
    }
    let stats = H::stats(pool.manager());
    assert_eq!((stats.cache_hits, stats.cache_misses), (98, 2));
    let mut conn = get::<H>(&pool, AcquireOptions::new()).await;
    for query in &queries {
        H::prepare_cached(&mut conn, query).await;
    }
    assert_eq!(H::cached_statements(&conn), 3);
    if let Some(prepared) = H::server_prepared(&mut conn).await {
        assert!(
            prepared <= 3,
            "{prepared} statements prepared on the server"
        );
    }
    let stats = H::stats(pool.manager());
    println!(
        "measured: statement cache: {} hits, {} misses, hit rate {:.3}, {} held of 3",
        stats.cache_hits,
        stats.cache_misses,
        stats.cache_hit_rate().unwrap_or_default(),
        H::cached_statements(&conn)
    );
    drop(conn);

    // A reset (other settings than the session carries) empties the
    // cache, and the next use prepares again.
    let options = AcquireOptions::new().settings(H::other_settings());
    drop(get::<H>(&pool, options).await);
    let mut conn = get::<H>(&pool, AcquireOptions::new()).await;
    assert_eq!(H::cached_statements(&conn), 0, "emptied by the reset");
    let statement = H::prepare_cached(&mut conn, &queries[0]).await;
    assert_eq!(H::run(&mut conn, &statement).await, 1, "after the reset");
}

/// A cache of capacity zero caches nothing: every `prepare_cached` is a
/// miss.
pub async fn zero_capacity_caches_nothing<H: CacheHarness>(url: &str) {
    let pool = H::cache_pool(url, 0);
    let mut conn = get::<H>(&pool, AcquireOptions::new()).await;
    for _ in 0..3 {
        H::prepare_cached(&mut conn, &H::numbered(0)).await;
    }
    assert_eq!(H::cached_statements(&conn), 0);
    assert_eq!(H::stats(pool.manager()).cache_misses, 3);
}
