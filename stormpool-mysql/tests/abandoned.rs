//! A statement abandoned by its request (its future dropped half-way) is
//! stopped on the server (`KILL QUERY`) when the connection comes back, and
//! the connection, kept in step, serves the next request once the server
//! has answered the killed statement. Checked in the process list.

mod common;

use std::time::Duration;

use common::MariaDb;
use stormpool_testkit::statements;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_statement_is_stopped_and_the_connection_served_again() {
    let Some(url) = common::url() else { return };
    statements::abandoned_statement_is_stopped::<MariaDb>(&url).await;
}

/// A holder that gives up on a statement and goes on with the connection:
/// its next tracked statement reads the abandoned one's reply first, so it
/// gets its own result, and the connection stays usable (an untracked
/// statement dropped half-way would leave the driver's connection broken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_goes_on_gets_its_own_results() {
    let Some(url) = common::url() else { return };
    let pool = common::pool(&url);
    let mut conn = pool.get().await.expect("acquire");
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        conn.query_first::<i64, _>("SELECT SLEEP(0.3)"),
    )
    .await;
    assert!(gave_up.is_err(), "the statement outlived the timeout");
    let two: Option<i64> = conn.query_first("SELECT 2").await.expect("next statement");
    assert_eq!(two, Some(2));
    assert!(!conn.is_disconnected());
    drop(conn);
    let status = pool.status();
    assert_eq!(
        status.counters.cancelled_on_return, 0,
        "nothing left to drain"
    );
    assert_eq!(pool.manager().stats().abandoned, 1);
}
