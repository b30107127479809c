//! The `axum-mysql` example end to end, over loopback HTTP against the
//! live MariaDB: transfers that give up at their deadline in the middle
//! of their transaction (a client timing out) leave nothing behind: the
//! next 100 requests on another route all succeed, and no half-done
//! transfer is ever seen or committed.

#[allow(dead_code)]
#[path = "../examples/axum_mysql.rs"]
mod app;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 exchange; the status and body, or `None` when the client
/// gave up after `patience` (dropping the connection).
async fn call(
    addr: std::net::SocketAddr,
    request: &str,
    patience: Duration,
) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.expect("read");
        let status = reply
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let body = reply
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    };
    tokio::time::timeout(patience, exchange).await.ok()
}

fn request(method: &str, path: &str, deadline_ms: u64) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{}: {deadline_ms}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
        app::DEADLINE_HEADER
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_inside_a_transaction_do_not_poison_later_requests() {
    let Some(url) = stormpool_testkit::db::mysql_url() else {
        return;
    };
    // A pool of one: every request is served by the session the timeouts
    // dirtied.
    let manager = stormpool_mysql::MySqlManager::from_url(&url).expect("STORMPOOL_MYSQL_URL");
    let pool = app::pool(manager).expect("pool");
    pool.resize(1).expect("resize");
    app::setup(&pool).await.expect("setup");
    let before = total(&url).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        axum::serve(listener, app::router(pool))
            .await
            .expect("serve");
    });

    // Transfers that think for 500 ms under a 100 ms deadline: each ends
    // mid-transaction at its deadline (the server stops the statement, or
    // the service drops the request); the client gives up at 150 ms.
    let mut gave_up = 0;
    for _ in 0..5 {
        let slow = request("POST", "/transfer?from=1&to=2&amount=7&think_ms=500", 100);
        match call(addr, &slow, Duration::from_millis(150)).await {
            None => gave_up += 1,
            Some((status, body)) => assert_eq!(status, 504, "{body}"),
        }
    }
    // And clients that give up long before their own deadline.
    for _ in 0..5 {
        let slow = request("POST", "/transfer?from=1&to=2&amount=7&think_ms=300", 2_000);
        if call(addr, &slow, Duration::from_millis(50)).await.is_none() {
            gave_up += 1;
        }
    }
    let mut failures = Vec::new();
    for i in 0..100 {
        let get = request("GET", "/accounts/1", 2_000);
        match call(addr, &get, Duration::from_secs(5)).await {
            Some((200, _)) => {}
            other => failures.push(format!("request {i}: {other:?}")),
        }
    }
    println!(
        "measured: 10 transfers timed out mid-transaction ({gave_up} given up by the client); \
         100 GET /accounts/1 after them: {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    // No half-done transfer was committed.
    assert_eq!(before, total(&url).await, "money appeared or vanished");
    server.abort();
}

/// The sum of the balances, read on a connection of the test's own.
async fn total(url: &str) -> i64 {
    use stormpool_mysql::mysql_async::prelude::Queryable;
    let mut conn = stormpool_mysql::mysql_async::Conn::from_url(url)
        .await
        .expect("side connection");
    let sum: Option<i64> = conn
        .query_first("SELECT CAST(SUM(balance) AS SIGNED) FROM accounts")
        .await
        .expect("sum");
    conn.disconnect().await.ok();
    sum.expect("a row")
}
