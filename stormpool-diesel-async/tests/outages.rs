//! The pool's lease watchdog stops stuck statements on the server through
//! the manager's cancel; a session killed in use is replaced; a statement
//! on a frozen server gives up at its deadline plus the grace. These freeze
//! the local servers, so they run one at a time (`serial`) in this binary.

mod common;

use common::{DieselMaria, DieselPg};
use stormpool_testkit::{outages, scenarios, serial};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_leases_are_cancelled_on_the_server_postgres() {
    let Some(url) = common::pg_url() else { return };
    let _serial = serial().await;
    outages::stuck_leases_are_cancelled::<DieselPg>(&url, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_leases_are_cancelled_on_the_server_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    let _serial = serial().await;
    outages::stuck_leases_are_cancelled::<DieselMaria>(&url, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_killed_in_use_is_replaced_postgres() {
    let Some(url) = common::pg_url() else { return };
    let _serial = serial().await;
    scenarios::killed_in_use::<DieselPg>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_cannot_hold_a_statement_past_its_deadline_postgres() {
    let Some(url) = common::pg_url() else { return };
    let _serial = serial().await;
    scenarios::frozen_statement_is_bounded::<DieselPg>(&url).await;
}
