//! A statement abandoned by its request (its future dropped half-way) is
//! stopped on the server when the connection comes back: on PostgreSQL by
//! the protocol's cancel, after which the same session serves the next
//! request; on MariaDB by `KILL QUERY`, after which the connection, which
//! mysql_async cannot finish the statement on, is closed and replaced.

mod common;

use std::time::Duration;

use common::{DieselMaria, DieselPg};
use stormpool::{AcquireOptions, Pool};
use stormpool_testkit::load::wait_until;
use stormpool_testkit::scenarios::Harness;
use stormpool_testkit::statements::{self, StatementHarness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_statement_is_stopped_and_the_session_served_again_postgres() {
    let Some(url) = common::pg_url() else { return };
    statements::abandoned_statement_is_stopped::<DieselPg>(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_statement_is_stopped_and_the_connection_replaced_mariadb() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    let marker = "stormpool_diesel_abandoned";
    let pool = Pool::builder(DieselMaria::manager(&url, "stormpool_diesel_abandon"))
        .max_size(1)
        .build()
        .expect("pool");
    let mut observer = DieselMaria::observer(&url).await;
    let options = || AcquireOptions::new().timeout(Duration::from_secs(10));
    let mut conn = pool.get_with(options()).await.expect("acquire");
    let session = DieselMaria::session(&mut conn).await.expect("session");
    statements::abandon_sleep::<DieselMaria>(conn, &mut observer, session, marker).await;
    assert_eq!(DieselMaria::stats(pool.manager()).abandoned, 1);

    let replaced = wait_until(Duration::from_secs(2), || pool.status().open == 0).await;
    assert!(replaced.is_some(), "{:?}", pool.status());
    let mut conn = pool.get_with(options()).await.expect("a new connection");
    let next = DieselMaria::session(&mut conn).await.expect("session");
    assert_ne!(next, session, "the connection was replaced");
}
