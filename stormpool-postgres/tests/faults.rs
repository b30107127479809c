//! PostgreSQL under real faults: killed sessions, a restart under load, a
//! frozen backend, a blackholed network and a hung connect.
//!
//! These restart and freeze the local server, so they run one at a time
//! (`serial`) in this binary of their own, and each leaves the server running
//! even when it fails (drop guards). The scenarios and their assertions are
//! shared with the MySQL adapter: see `stormpool_testkit::scenarios`.

mod common;

use common::Pg;
use stormpool_testkit::{scenarios, serial};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_sessions_are_replaced_and_idle_ones_never_seen() {
    let Some(url) = common::url() else { return };
    let _serial = serial().await;
    scenarios::killed_sessions::<Pg>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_under_load_recovers_within_deadlines() {
    let Some(url) = common::url() else { return };
    let _serial = serial().await;
    scenarios::restart_under_load::<Pg>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_backend_is_never_handed_out() {
    let Some(url) = common::url() else { return };
    let _serial = serial().await;
    scenarios::hung_session::<Pg>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackholed_network_bounds_every_acquire() {
    let Some(url) = common::url() else { return };
    let _serial = serial().await;
    scenarios::blackhole::<Pg>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_connect_does_not_block_other_acquires() {
    let Some(url) = common::url() else { return };
    let _serial = serial().await;
    scenarios::hung_connect::<Pg>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_on_a_frozen_backend_ends_at_its_deadline() {
    let Some(url) = common::url() else { return };
    let _serial = serial().await;
    scenarios::frozen_statement_is_bounded::<Pg>(&url).await;
}
