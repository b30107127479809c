//! Nothing a request sets stays on a server session behind a PgBouncer in
//! transaction mode: the deadline's bound and the request's settings are
//! set per transaction, so another client that lands on the same server
//! session sees the defaults, and the request itself still gets both.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use stormpool::{AcquireOptions, Pool, Settings};
use stormpool_postgres::tokio_postgres::error::SqlState;
use stormpool_postgres::{PgManager, Pooler};

const ROUNDS: usize = 240;

#[derive(Debug, Default)]
struct Seen {
    /// A plain client saw a bound or a setting it never asked for.
    leaks: usize,
    /// A request that asked for the setting ran without it.
    missing: usize,
    /// A request with a deadline ran unbounded.
    unbounded: usize,
}

/// Each round: four requests with a 300 ms deadline and `work_mem = 7MB`
/// at once, then a plain client through the same pooler asks what its
/// server session carries. `extended`: half the requests use the extended
/// protocol (named statements, without pooler mode, go astray then).
async fn rounds(pool: Arc<Pool<PgManager>>, url: &str, extended: bool) -> Seen {
    let plain = common::side(url).await;
    let default_work_mem = common::scalar(&plain, "SHOW work_mem").await;
    let mut seen = Seen::default();
    let settings = Settings::new([("work_mem", "7MB")]);
    for round in 0..ROUNDS {
        let requests: Vec<_> = (0..4)
            .map(|i| {
                let (pool, settings) = (pool.clone(), settings.clone());
                tokio::spawn(async move {
                    let deadline = Instant::now() + Duration::from_millis(300);
                    let options = AcquireOptions::new()
                        .deadline(deadline.into())
                        .settings(settings);
                    let mut conn = pool.get_with(options).await.expect("acquire");
                    // Text, typed and simple statements, one in a transaction.
                    let sql =
                        "SELECT current_setting('work_mem'), current_setting('statement_timeout')";
                    let (work_mem, timeout) = if !extended {
                        let work_mem = common::tracked_scalar(&conn, "SHOW work_mem").await;
                        let timeout = common::tracked_scalar(&conn, "SHOW statement_timeout").await;
                        (work_mem.unwrap_or_default(), timeout.unwrap_or_default())
                    } else if (round + i) % 2 == 0 {
                        let row = conn.query_one(sql, &[]).await.expect("query");
                        (row.get(0), row.get(1))
                    } else {
                        let tx = conn.transaction().await.expect("begin");
                        let row = tx.query_one(sql, &[]).await.expect("query");
                        tx.commit().await.expect("commit");
                        (row.get(0), row.get(1))
                    };
                    let simple = common::tracked_scalar(&conn, "SHOW work_mem").await;
                    (work_mem, timeout, simple)
                })
            })
            .collect();
        for request in requests {
            let (work_mem, timeout, simple) = request.await.expect("task");
            if work_mem != "7MB" || simple.as_deref() != Some("7MB") {
                seen.missing += 1;
            }
            if timeout == "0" {
                seen.unbounded += 1;
            }
        }
        // Each statement of the plain client may land on another session.
        let timeout = common::scalar(&plain, "SHOW statement_timeout").await;
        let work_mem = common::scalar(&plain, "SHOW work_mem").await;
        if timeout.as_deref() != Some("0") || work_mem != default_work_mem {
            seen.leaks += 1;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_a_request_sets_reaches_another_client() {
    let Some((bouncer, _)) = common::pgbouncer() else {
        return;
    };
    // One at a time: the test without pooler mode leaks on purpose.
    let _serial = stormpool_testkit::serial().await;
    let pool = Arc::new(common::pooled(
        bouncer.url(),
        "stormpool_pooler_sessions",
        Pooler::Transaction,
        8,
    ));
    let seen = rounds(pool.clone(), bouncer.url(), true).await;
    println!(
        "measured: pooler mode, {ROUNDS} rounds: {} leaks seen by a plain client, \
         {} of {} requests without their setting, {} unbounded ({} bounds sent)",
        seen.leaks,
        seen.missing,
        ROUNDS * 4,
        seen.unbounded,
        pool.manager().stats().bound_changes
    );
    assert_eq!(seen.leaks, 0, "{seen:?}");
    assert_eq!(seen.missing, 0, "{seen:?}");
    assert_eq!(seen.unbounded, 0, "{seen:?}");
}

/// The failure the mode exists for, so the test above can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pooler_mode_settings_and_bounds_leak() {
    let Some((bouncer, _)) = common::pgbouncer() else {
        return;
    };
    // One at a time: the test without pooler mode leaks on purpose.
    let _serial = stormpool_testkit::serial().await;
    let pool = Arc::new(common::pooled(
        bouncer.url(),
        "stormpool_pooler_sessions_off",
        Pooler::None,
        8,
    ));
    let seen = rounds(pool.clone(), bouncer.url(), false).await;
    println!("measured: without pooler mode, {ROUNDS} rounds: {seen:?}");
    // Leave no tainted server session to the other tests: a restart
    // closes them all.
    drop(pool);
    let restarted = bouncer.clone();
    tokio::task::spawn_blocking(move || restarted.restart())
        .await
        .expect("task")
        .expect("restart pgbouncer");
    assert!(seen.leaks + seen.missing > 0, "nothing leaked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_still_bounds_its_statement_through_the_pooler() {
    let Some((bouncer, _)) = common::pgbouncer() else {
        return;
    };
    // One at a time: the test without pooler mode leaks on purpose.
    let _serial = stormpool_testkit::serial().await;
    let pool = common::pooled(
        bouncer.url(),
        "stormpool_pooler_deadline",
        Pooler::Transaction,
        2,
    );
    let budget = Duration::from_millis(300);
    for way in ["simple", "extended", "transaction"] {
        let deadline = Instant::now() + budget;
        let mut conn = pool
            .get_with(AcquireOptions::new().deadline(deadline.into()))
            .await
            .expect("acquire");
        let sent = Instant::now();
        let result = match way {
            "simple" => conn.simple_query("SELECT pg_sleep(0.6)").await.map(drop),
            "extended" => conn
                .query_one("SELECT pg_sleep($1::float8)::text", &[&0.6f64])
                .await
                .map(drop),
            _ => {
                let tx = conn.transaction().await.expect("begin");
                let result = tx.execute("SELECT pg_sleep(0.6)", &[]).await.map(drop);
                drop(tx);
                result
            }
        };
        let took = sent.elapsed();
        let early = deadline.saturating_duration_since(Instant::now());
        let err = result.expect_err("stopped");
        println!(
            "measured: {way} statement stopped {took:?} after it was sent (deadline in {early:?})"
        );
        assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{way}: {err}");
        assert!(took < budget * 2, "{way}: stopped after {took:?}");
    }
    assert!(pool.manager().stats().stopped_by_deadline >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooler_in_front_is_detected() {
    let Some((bouncer, direct)) = common::pgbouncer() else {
        return;
    };
    let _serial = stormpool_testkit::serial().await;
    let behind = common::pooled(bouncer.url(), "stormpool_pooler_detect", Pooler::None, 1);
    drop(behind.get().await.expect("acquire"));
    assert_eq!(behind.manager().pooler_detected(), Some(true));
    let plain = common::pool(&direct, "stormpool_pooler_detect_direct");
    drop(plain.get().await.expect("acquire"));
    assert_eq!(plain.manager().pooler_detected(), Some(false));
}

/// A stream with a deadline runs in a transaction of its own, which ends
/// after its last row (committed) or its error (rolled back), so the next
/// statement starts a transaction of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_stream_ends_its_own_transaction() {
    let Some((bouncer, _)) = common::pgbouncer() else {
        return;
    };
    let _serial = stormpool_testkit::serial().await;
    let pool = common::pooled(
        bouncer.url(),
        "stormpool_pooler_stream",
        Pooler::Transaction,
        1,
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let conn = pool
        .get_with(AcquireOptions::new().deadline(deadline.into()))
        .await
        .expect("acquire");
    let fresh = "SELECT (transaction_timestamp() = statement_timestamp())::text";

    let rows = common::raw_rows(
        &conn,
        "SELECT current_setting('statement_timeout') FROM generate_series(1, $1::int4)",
        3,
    )
    .await;
    assert_ne!(rows[0].get::<_, String>(0), "0", "the stream ran unbounded");
    assert_eq!(
        common::tracked_scalar(&conn, fresh).await.as_deref(),
        Some("true")
    );

    let failing = conn
        .query_raw(
            "SELECT 1 / (3 - g) FROM generate_series(1, $1::int4) g",
            [5i32],
        )
        .await
        .expect("query_raw");
    let failed = futures_util::TryStreamExt::try_collect::<Vec<_>>(failing).await;
    assert!(failed.is_err(), "division by zero");
    assert_eq!(
        common::tracked_scalar(&conn, fresh).await.as_deref(),
        Some("true")
    );
}

/// Behind a pooler the settings are sent with the request's first
/// statement: a bad name is refused at the acquire, a bad value fails that
/// statement, and the next request is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_setting_fails_the_acquire_or_the_first_statement() {
    let Some((bouncer, _)) = common::pgbouncer() else {
        return;
    };
    let _serial = stormpool_testkit::serial().await;
    let pool = common::pooled(
        bouncer.url(),
        "stormpool_pooler_bad_setting",
        Pooler::Transaction,
        1,
    );
    let bad_name = Settings::new([("work mem", "7MB")]);
    let refused = pool
        .get_with(AcquireOptions::new().settings(bad_name))
        .await;
    assert!(refused.is_err(), "a bad name is refused at the acquire");

    let bad_value = Settings::new([("work_mem", "plenty")]);
    let conn = pool
        .get_with(AcquireOptions::new().settings(bad_value))
        .await
        .expect("acquire");
    let failed = conn.simple_query("SELECT 1").await.expect_err("bad value");
    assert_eq!(
        failed.code(),
        Some(&SqlState::INVALID_PARAMETER_VALUE),
        "{failed}"
    );
    drop(conn);

    let conn = pool.get().await.expect("acquire");
    assert_eq!(
        common::tracked_scalar(&conn, "SELECT 1").await.as_deref(),
        Some("1")
    );
}
