//! Outages with the pool's defaults, against the live server: stuck leases
//! stopped on the server by the watchdog, a restart under load, a server
//! that accepts connections and never answers.
//!
//! The restart stops the local server, so these run one at a time
//! (`serial`) in this binary of their own and leave the server running even
//! when they fail. The scenarios are shared with the other adapter: see
//! `stormpool_testkit::outages`.

mod common;

use common::Pg;
use stormpool_testkit::{outages, serial};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stuck_lease_is_cancelled_with_the_defaults() {
    let Some(url) = common::url() else { return };
    let _serial = serial().await;
    outages::stuck_leases_are_cancelled::<Pg>(&url, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_stuck_leases_are_all_cancelled() {
    let Some(url) = common::url() else { return };
    let _serial = serial().await;
    outages::stuck_leases_are_cancelled::<Pg>(&url, 16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_is_not_overload() {
    let Some(url) = common::url() else { return };
    let _serial = serial().await;
    outages::silent_server::<Pg>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_under_load_serve_again_at_once() {
    let Some(url) = common::url() else { return };
    let _serial = serial().await;
    outages::restart_under_storm::<Pg>(&url, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sessions_stay_within_the_bound_in_a_cancellation_storm() {
    let Some(url) = common::url() else { return };
    let _serial = serial().await;
    outages::sessions_stay_within_bound::<Pg>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_backends_under_load_end_every_request_by_its_deadline() {
    let Some(url) = common::url() else { return };
    let _serial = serial().await;
    outages::frozen_under_load::<Pg>(&url).await;
}
