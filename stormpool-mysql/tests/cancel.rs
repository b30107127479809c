//! A stuck statement is stopped on the server by the manager's `cancel`
//! (`KILL QUERY` over a side connection).

mod common;

use std::time::{Duration, Instant};

use stormpool::{Conn, Manager};
use stormpool_mysql::mysql_async::prelude::Queryable;
use stormpool_mysql::Classify;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_stuck_statement_on_the_server() {
    let Some(url) = common::url() else { return };
    let pool = common::pool(&url);
    let mut conn = pool.get().await.expect("acquire");
    let id = conn.id();
    let token = *Conn::cancel_token(&conn).expect("token");
    assert_eq!(token.connection_id(), id);
    let started = Instant::now();
    let stuck = tokio::spawn(async move {
        // MariaDB fails the statement with ER_QUERY_INTERRUPTED; MySQL's
        // interrupted SLEEP() returns 1 instead.
        let result: Result<Option<i64>, _> = conn.query_first("SELECT SLEEP(3600)").await;
        (result, conn)
    });

    let mut side = common::side(&url).await;
    let running = "SELECT COUNT(*) FROM information_schema.processlist \
                   WHERE id = ? AND command = 'Query' AND info LIKE '%SLEEP(3600)%'";
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let n: Option<i64> = side.exec_first(running, (id,)).await.expect("processlist");
        if n == Some(1) {
            break;
        }
        assert!(Instant::now() < until, "the statement never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    pool.manager().cancel(&token).await.expect("cancel");
    let (result, mut conn) = tokio::time::timeout(Duration::from_secs(5), stuck)
        .await
        .expect("the statement stopped")
        .expect("task");
    match result {
        Ok(value) => assert_eq!(value, Some(1)),
        Err(e) => {
            assert_eq!(e.server_code(), Some(1317), "{e:?}");
            assert!(!e.is_connection_error() && !e.is_retryable());
        }
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    let still: Option<i64> = side.exec_first(running, (id,)).await.expect("processlist");
    assert_eq!(still, Some(0), "the statement still runs on the server");

    // The session survives a cancel.
    conn.query_drop("SELECT 1")
        .await
        .expect("usable after cancel");
    assert!(!conn.is_disconnected());
}
