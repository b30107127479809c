//! A request's deadline bounds its statements on the server
//! (`max_statement_time`): a statement over the remaining budget fails with
//! error 1969, and the connection serves the next request with that
//! request's own deadline.

mod common;

use common::MariaDb;
use stormpool_testkit::statements;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_over_the_remaining_budget_fails_on_the_server() {
    let Some(url) = common::url() else { return };
    statements::statement_over_budget_is_stopped::<MariaDb>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bound_is_set_only_when_it_changes() {
    let Some(url) = common::url() else { return };
    statements::bound_changes_only_when_it_must::<MariaDb>(&url).await;
}
