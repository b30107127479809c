//! A statement abandoned by its request (its future dropped half-way) is
//! cancelled on the server when the connection comes back, and the
//! connection serves the next request once the server is idle on it.
//! Checked in `pg_stat_activity`.

mod common;

use common::Pg;
use stormpool_testkit::statements;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_statement_is_stopped_and_the_connection_served_again() {
    let Some(url) = common::url() else { return };
    statements::abandoned_statement_is_stopped::<Pg>(&url).await;
}
