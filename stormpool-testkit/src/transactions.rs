//! Transaction hygiene scenarios shared by the database adapters' tests:
//! whatever a request does with transactions (a hand-written `BEGIN`, a
//! statement dropped inside one, the adapter's own transaction dropped
//! without commit), the next requests on the same session are not in a
//! transaction and see none of its uncommitted work.
//!
//! Each scenario uses a pool of one connection, so "the next request" is
//! served by the very session the scenario dirtied, and a table of its own.

use std::future::Future;
use std::time::Duration;

use stormpool::{Conn, Pool};

use crate::load::wait_until;
use crate::server::Server;
use crate::side;
use crate::statements::{get, pool_of_one, within, StatementError, StatementHarness};

/// How many requests follow the dirtying one.
const FOLLOWERS: usize = 100;

/// What the transaction scenarios need to know about one adapter, beyond
/// [`StatementHarness`].
pub trait TransactionHarness: StatementHarness {
    /// Creates `table (tag text)` anew, empty, from a connection of the
    /// test's own.
    fn create_table(url: &str, table: &str) -> impl Future<Output = ()> + Send {
        side::create_table::<Self::Side>(Self::SERVER, url, table)
    }

    /// Rows of `table` with `tag`, as a connection of the test's own (so,
    /// committed ones) sees them.
    fn committed(url: &str, table: &str, tag: &str) -> impl Future<Output = i64> + Send {
        side::committed::<Self::Side>(url, table, tag)
    }

    /// Rows of `table` with `tag`, as the session sees them.
    fn count(
        conn: &mut Conn<Self::M>,
        table: &str,
        tag: &str,
    ) -> impl Future<Output = Result<i64, StatementError>> + Send {
        let count = side::count_sql(table, tag);
        let sql = match Self::SERVER {
            Server::Postgres => format!("SELECT ({count})::text"),
            Server::MariaDb => format!("SELECT CAST(({count}) AS CHAR)"),
        };
        async move {
            let n = Self::text(conn, &sql).await?;
            Ok(n.and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{sql}: not a count")))
        }
    }

    /// Whether the session is inside a transaction, as the server says:
    /// in PostgreSQL, inside a transaction block the transaction started
    /// before this statement did (by the simple protocol; the extended one
    /// starts a statement's clock at its Bind).
    fn in_transaction(
        conn: &mut Conn<Self::M>,
    ) -> impl Future<Output = Result<bool, StatementError>> + Send {
        let sql = match Self::SERVER {
            Server::Postgres => "SELECT (transaction_timestamp() <> statement_timestamp())::text",
            Server::MariaDb => "SELECT CAST(@@in_transaction AS CHAR)",
        };
        async move {
            let value = Self::text(conn, sql).await?;
            match value.as_deref() {
                Some("true" | "1") => Ok(true),
                Some("false" | "0") => Ok(false),
                other => panic!("{sql}: {other:?}"),
            }
        }
    }

    /// Through the adapter's own transaction API: begins, inserts `tag`
    /// into `table`, and drops the transaction without committing.
    fn insert_and_drop(
        conn: &mut Conn<Self::M>,
        table: &str,
        tag: &str,
    ) -> impl Future<Output = ()> + Send;

    /// Through the adapter's own transaction API: inserts `outer`, then in
    /// a nested savepoint inserts `inner` and rolls the savepoint back, then
    /// commits.
    fn nested_rollback(
        conn: &mut Conn<Self::M>,
        table: &str,
        outer: &str,
        inner: &str,
    ) -> impl Future<Output = Result<(), StatementError>> + Send;

    /// What the manager counted as sessions rolled back on return.
    fn rolled_back_on_return(manager: &Self::M) -> u64 {
        Self::stats(manager).rolled_back_on_return
    }
}

fn insert(table: &str, tag: &str) -> String {
    format!("INSERT INTO {table} (tag) VALUES ('{tag}')")
}

/// The next [`FOLLOWERS`] requests on the pool's one session each succeed,
/// are not in a transaction, and see no row tagged `tag`. Returns how
/// many saw anything wrong (asserted 0 by the callers, after printing).
async fn followers_are_clean<H: TransactionHarness>(pool: &Pool<H::M>, table: &str, tag: &str) {
    let mut failures = Vec::new();
    for i in 0..FOLLOWERS {
        let mut conn = get::<H>(pool, within(Duration::from_secs(10))).await;
        match H::in_transaction(&mut conn).await {
            Ok(false) => {}
            Ok(true) => failures.push(format!("request {i}: inside a transaction")),
            Err(e) => failures.push(format!("request {i}: {}", e.message)),
        }
        match H::count(&mut conn, table, tag).await {
            Ok(0) => {}
            Ok(n) => failures.push(format!("request {i}: saw {n} uncommitted rows")),
            Err(e) => failures.push(format!("request {i}: {}", e.message)),
        }
    }
    println!(
        "measured: {FOLLOWERS} requests after the dirty one: {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Waits until the pool holds its one connection idle again (drained).
async fn settled<H: TransactionHarness>(pool: &Pool<H::M>) {
    let idle = wait_until(Duration::from_secs(5), || {
        let status = pool.status();
        status.draining == 0 && status.in_use == 0
    })
    .await;
    assert!(idle.is_some(), "not drained in 5 s: {:?}", pool.status());
}

/// After a request left its session in a transaction with rows tagged
/// `tag`: the followers are clean, nothing was committed, the manager
/// rolled the session back on return, and that one session, kept, served
/// every request.
async fn rolled_back_in_place<H: TransactionHarness>(
    pool: &Pool<H::M>,
    url: &str,
    table: &str,
    tag: &str,
) {
    followers_are_clean::<H>(pool, table, tag).await;
    assert_eq!(H::committed(url, table, tag).await, 0);
    assert!(H::rolled_back_on_return(pool.manager()) >= 1);
    settled::<H>(pool).await;
    assert_eq!(pool.status().counters.connects_ok, 1, "the same session");
}

/// A request begins a transaction by hand, inserts, and drops its
/// connection between two statements: the next 100 requests are not in a
/// transaction and see no uncommitted row; the server rolled it back.
pub async fn dropped_between_statements<H: TransactionHarness>(url: &str, table: &str) {
    H::create_table(url, table).await;
    let pool = pool_of_one::<H>(url, "stormpool_tx_between", true);
    let tag = "between";
    let mut conn = get::<H>(&pool, within(Duration::from_secs(10))).await;
    H::execute(&mut conn, "BEGIN").await.expect("BEGIN");
    H::execute(&mut conn, &insert(table, tag))
        .await
        .expect("INSERT");
    assert!(H::in_transaction(&mut conn).await.expect("in transaction"));
    drop(conn);
    rolled_back_in_place::<H>(&pool, url, table, tag).await;
}

/// A request begins a transaction by hand, inserts, and drops its
/// connection in the middle of a long statement: the pool stops the
/// statement, and the next 100 requests succeed (no "transaction aborted"
/// error), are not in a transaction and see no uncommitted row.
pub async fn dropped_mid_statement<H: TransactionHarness>(url: &str, table: &str) {
    H::create_table(url, table).await;
    let pool = pool_of_one::<H>(url, "stormpool_tx_mid_statement", true);
    let tag = "mid_statement";
    let mut conn = get::<H>(&pool, within(Duration::from_secs(10))).await;
    H::execute(&mut conn, "BEGIN").await.expect("BEGIN");
    H::execute(&mut conn, &insert(table, tag))
        .await
        .expect("INSERT");
    let sleeping = H::sleep(&mut conn, 10.0, "stormpool_tx_sleep");
    // Sent, and running on the server, by then.
    let dropped = tokio::time::timeout(Duration::from_millis(200), sleeping).await;
    assert!(dropped.is_err(), "the 10 s statement ended: {dropped:?}");
    drop(conn);
    followers_are_clean::<H>(&pool, table, tag).await;
    assert_eq!(H::committed(url, table, tag).await, 0);
    let counters = pool.status().counters;
    assert_eq!(counters.cancelled_on_return, 1, "{counters:?}");
}

/// A request fails a statement inside a hand-written transaction (in
/// PostgreSQL the transaction is then aborted) and returns its connection:
/// the next 100 requests are clean.
pub async fn error_inside_transaction<H: TransactionHarness>(url: &str, table: &str) {
    H::create_table(url, table).await;
    let pool = pool_of_one::<H>(url, "stormpool_tx_error", true);
    let tag = "error";
    let mut conn = get::<H>(&pool, within(Duration::from_secs(10))).await;
    H::execute(&mut conn, "BEGIN").await.expect("BEGIN");
    H::execute(&mut conn, &insert(table, tag))
        .await
        .expect("INSERT");
    let failed = H::execute(&mut conn, "SELECT no_such_column FROM no_such_table").await;
    assert!(failed.is_err(), "the bad statement succeeded");
    drop(conn);
    followers_are_clean::<H>(&pool, table, tag).await;
    assert_eq!(H::committed(url, table, tag).await, 0);
}

/// The adapter's own transaction, dropped without commit, is rolled back
/// on the server: a connection of the test's own never sees its row, the
/// session is not left in a transaction, and the next 100 requests are
/// clean.
pub async fn tracked_transaction_dropped<H: TransactionHarness>(url: &str, table: &str) {
    H::create_table(url, table).await;
    let pool = pool_of_one::<H>(url, "stormpool_tx_tracked", true);
    let tag = "tracked";
    let mut conn = get::<H>(&pool, within(Duration::from_secs(10))).await;
    H::insert_and_drop(&mut conn, table, tag).await;
    // The holder may go on using its connection: outside the transaction.
    assert!(!H::in_transaction(&mut conn).await.expect("in transaction"));
    assert_eq!(H::count(&mut conn, table, tag).await.expect("count"), 0);
    drop(conn);
    assert_eq!(H::committed(url, table, tag).await, 0);

    let mut conn = get::<H>(&pool, within(Duration::from_secs(10))).await;
    H::insert_and_drop(&mut conn, table, tag).await;
    drop(conn);
    followers_are_clean::<H>(&pool, table, tag).await;
    assert_eq!(H::committed(url, table, tag).await, 0);
}

/// The adapter's own transaction, dropped without commit by a request
/// that then returns its connection (for adapters whose transactions do
/// not end when dropped, as diesel's closure-based ones): the pool rolls it
/// back, a connection of the test's own never sees its row, and the next
/// 100 requests on the same session are clean.
pub async fn transaction_dropped_with_its_connection<H: TransactionHarness>(
    url: &str,
    table: &str,
) {
    H::create_table(url, table).await;
    let pool = pool_of_one::<H>(url, "stormpool_tx_dropped", true);
    let tag = "dropped";
    let mut conn = get::<H>(&pool, within(Duration::from_secs(10))).await;
    H::insert_and_drop(&mut conn, table, tag).await;
    drop(conn);
    rolled_back_in_place::<H>(&pool, url, table, tag).await;
}

/// A savepoint rolled back inside the adapter's transaction keeps the
/// outer work: the outer row is committed, the inner one is not.
pub async fn nested_savepoint_rollback<H: TransactionHarness>(url: &str, table: &str) {
    H::create_table(url, table).await;
    let pool = pool_of_one::<H>(url, "stormpool_tx_nested", true);
    let mut conn = get::<H>(&pool, within(Duration::from_secs(10))).await;
    H::nested_rollback(&mut conn, table, "outer", "inner")
        .await
        .expect("nested transaction");
    drop(conn);
    assert_eq!(H::committed(url, table, "outer").await, 1);
    assert_eq!(H::committed(url, table, "inner").await, 0);
    followers_are_clean::<H>(&pool, table, "inner").await;
}
