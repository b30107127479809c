//! The server's own view of its sessions, asked through a connection of the
//! test's own, outside any pool ([`SideConnection`]): which sessions a tag
//! has, whether one runs a marked statement, ending them; and the tables
//! the transaction scenarios write to.
//!
//! The SQL is written here once per [`Server`]; an adapter's tests only say
//! how their driver connects and runs one statement. Every value a
//! statement here reads is an integer, cast to a 64-bit one where the
//! server would send a narrower type, so any driver can decode it as `i64`.

use std::future::Future;
use std::time::Duration;

use crate::server::Server;

/// A connection of the test's own to the test database, outside any pool,
/// through whatever driver the adapter's tests have at hand.
pub trait SideConnection: Sized + Send {
    /// Connects to `url`.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached: the tests cannot go on.
    fn connect(url: &str) -> impl Future<Output = Self> + Send;

    /// Runs `sql` (one or more statements, no parameters) and returns the
    /// first column of every row it returned, read as a 64-bit integer, or
    /// the error with its sources.
    fn query(&mut self, sql: &str) -> impl Future<Output = Result<Vec<i64>, String>> + Send;

    /// Closes the connection. The default drops it.
    fn close(self) -> impl Future<Output = ()> + Send {
        async move { drop(self) }
    }
}

/// `value` as an SQL string literal. Tags, markers and table names are the
/// tests' own words: anything but letters, digits and `_` is refused rather
/// than escaped.
///
/// # Panics
///
/// On any other character.
pub fn literal(value: &str) -> String {
    assert!(
        value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "not a plain word: {value:?}"
    );
    format!("'{value}'")
}

/// Runs `sql` and returns its one integer.
///
/// # Panics
///
/// When the statement fails or returns no row.
pub async fn integer<S: SideConnection>(side: &mut S, sql: &str) -> i64 {
    let values = side
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    *values.first().unwrap_or_else(|| panic!("{sql}: no row"))
}

/// Reads, from text values (a protocol that sends every value as text),
/// the first column of each row as a 64-bit integer.
///
/// # Panics
///
/// On a value that is not an integer.
pub fn parse_integers<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> Vec<i64> {
    values
        .into_iter()
        .flatten()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|e| panic!("not an integer: {v:?}: {e}"))
        })
        .collect()
}

/// Ends, on the server, every session tagged `tag` (its application name
/// on PostgreSQL, its user on MariaDB) from a side connection, and waits
/// (up to about a second) until each is gone; returns their ids.
pub async fn kill_sessions<S: SideConnection>(server: Server, url: &str, tag: &str) -> Vec<u64> {
    let mut side = S::connect(url).await;
    let tag = literal(tag);
    let ids = match server {
        // The filter runs first (OFFSET 0 keeps the planner from merging
        // the subquery and calling the function on other rows); the
        // sessions are signalled all at once.
        Server::Postgres => side
            .query(&format!(
                "SELECT pid::int8 FROM \
                 (SELECT pid FROM pg_stat_activity \
                  WHERE application_name = {tag} AND pid <> pg_backend_pid() OFFSET 0) s \
                 WHERE pg_terminate_backend(pid)"
            ))
            .await
            .expect("pg_terminate_backend"),
        Server::MariaDb => {
            let ids = side
                .query(&format!(
                    "SELECT CAST(id AS SIGNED) FROM information_schema.processlist \
                     WHERE user = {tag}"
                ))
                .await
                .expect("processlist");
            for id in &ids {
                // A session may end by itself meanwhile: ignore "unknown
                // thread".
                let _ = side.query(&format!("KILL CONNECTION {id}")).await;
            }
            ids
        }
    };
    if !ids.is_empty() {
        let list = ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let left = match server {
            Server::Postgres => {
                format!("SELECT count(*) FROM pg_stat_activity WHERE pid IN ({list})")
            }
            Server::MariaDb => {
                format!("SELECT COUNT(*) FROM information_schema.processlist WHERE id IN ({list})")
            }
        };
        for _ in 0..1000 {
            if integer(&mut side, &left).await == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    side.close().await;
    ids.into_iter()
        .map(|id| u64::try_from(id).expect("a session id"))
        .collect()
}

/// Whether the server runs, on session `session`, a statement whose text
/// contains `marker`.
pub async fn is_running<S: SideConnection>(
    server: Server,
    side: &mut S,
    session: u64,
    marker: &str,
) -> bool {
    let marker = literal(marker);
    let sql = match server {
        Server::Postgres => format!(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE pid = {session} AND state = 'active' AND strpos(query, {marker}) > 0"
        ),
        Server::MariaDb => format!(
            "SELECT COUNT(*) FROM information_schema.processlist \
             WHERE id = {session} AND command = 'Query' AND INSTR(info, {marker}) > 0"
        ),
    };
    integer(side, &sql).await > 0
}

/// How many sessions tagged `tag` the server holds now.
pub async fn sessions<S: SideConnection>(server: Server, side: &mut S, tag: &str) -> usize {
    let tag = literal(tag);
    let sql = match server {
        Server::Postgres => {
            format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = {tag}")
        }
        Server::MariaDb => {
            format!("SELECT COUNT(*) FROM information_schema.processlist WHERE user = {tag}")
        }
    };
    usize::try_from(integer(side, &sql).await).expect("a count")
}

/// The name of the MariaDB lock [`hold_lock`] takes and a blocking
/// statement waits for.
pub const BLOCK_LOCK: &str = "stormpool_block";

/// Takes the MariaDB lock [`BLOCK_LOCK`] on `side`, held until `side`
/// closes or releases it.
pub async fn hold_lock<S: SideConnection>(side: &mut S) {
    let got = integer(side, &format!("SELECT GET_LOCK('{BLOCK_LOCK}', 10)")).await;
    assert_eq!(got, 1, "GET_LOCK");
}

/// Creates `table (tag text)` anew, empty, from a side connection (InnoDB
/// on MariaDB: transactions must be able to roll it back).
pub async fn create_table<S: SideConnection>(server: Server, url: &str, table: &str) {
    let mut side = S::connect(url).await;
    let create = match server {
        Server::Postgres => format!("CREATE TABLE {table} (tag text)"),
        Server::MariaDb => format!("CREATE TABLE {table} (tag TEXT) ENGINE = InnoDB"),
    };
    for sql in [format!("DROP TABLE IF EXISTS {table}"), create] {
        side.query(&sql)
            .await
            .unwrap_or_else(|e| panic!("create table: {e}"));
    }
    side.close().await;
}

/// Rows of `table` with `tag`, as a side connection (so, committed ones)
/// sees them.
pub async fn committed<S: SideConnection>(url: &str, table: &str, tag: &str) -> i64 {
    let mut side = S::connect(url).await;
    let n = integer(&mut side, &count_sql(table, tag)).await;
    side.close().await;
    n
}

/// The statement counting the rows of `table` with `tag`.
pub fn count_sql(table: &str, tag: &str) -> String {
    let tag = literal(tag);
    format!("SELECT COUNT(*) FROM {table} WHERE tag = {tag}")
}
