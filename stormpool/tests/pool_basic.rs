//! Acquire, release, hand-off, settings and rejections on the simulated database.

use std::time::Duration;

use stormpool::sim::{Behavior, SimConfig, SimManager};
use stormpool::{AcquireError, AcquireOptions, Conn, Pool, Priority, Settings};

fn sim() -> SimManager {
    SimManager::new(SimConfig::default())
}

#[tokio::test(start_paused = true)]
async fn acquire_query_release_reuses_the_connection() {
    let pool = Pool::builder(sim()).max_size(2).build().unwrap();
    let mut conn = pool.get().await.unwrap();
    let first = Conn::id(&conn);
    conn.query().await.unwrap();
    drop(conn);
    let conn = pool.get().await.unwrap();
    assert_eq!(Conn::id(&conn), first, "LIFO reuse of the idle connection");
    drop(conn);
    let status = pool.status();
    assert_eq!(status.open, 1);
    assert_eq!(status.idle, 1);
    assert_eq!(status.counters.connects_ok, 1);
    assert_eq!(status.counters.acquired_direct, 1);
    assert_eq!(status.counters.acquired_waited, 1);
}

#[tokio::test(start_paused = true)]
async fn waiter_gets_the_returned_connection() {
    let pool = Pool::builder(sim()).max_size(1).build().unwrap();
    let held = pool.get().await.unwrap();
    let p = pool.clone();
    let waiter = tokio::spawn(async move { p.get().await.map(|c| Conn::id(&c)) });
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(pool.status().waiting, 1);
    let id = Conn::id(&held);
    let handoffs = pool.status().counters.handoffs;
    drop(held);
    assert_eq!(waiter.await.unwrap().unwrap(), id);
    assert_eq!(pool.status().counters.handoffs, handoffs + 1);
}

#[tokio::test(start_paused = true)]
async fn deadline_passes_while_waiting() {
    let pool = Pool::builder(sim()).max_size(1).build().unwrap();
    let _held = pool.get().await.unwrap();
    let err = pool
        .get_with(AcquireOptions::new().timeout(Duration::from_millis(20)))
        .await
        .unwrap_err();
    assert!(matches!(err, AcquireError::Timeout), "{err:?}");
    let status = pool.status();
    assert_eq!(status.waiting, 0);
    assert_eq!(status.counters.timed_out, 1);
}

#[tokio::test(start_paused = true)]
async fn too_many_waiters_is_immediate() {
    let pool = Pool::builder(sim())
        .max_size(1)
        .max_waiters(1)
        .build()
        .unwrap();
    let _held = pool.get().await.unwrap();
    let p = pool.clone();
    let _queued = tokio::spawn(async move { p.get().await.map(drop) });
    tokio::task::yield_now().await;
    assert_eq!(pool.status().waiting, 1);
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, AcquireError::TooManyWaiters));
}

#[tokio::test(start_paused = true)]
async fn higher_class_is_served_first() {
    let pool = Pool::builder(sim()).max_size(1).build().unwrap();
    let held = pool.get().await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (i, class) in [Priority::Background, Priority::Normal, Priority::Critical]
        .into_iter()
        .enumerate()
    {
        let p = pool.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let c = p
                .get_with(AcquireOptions::new().priority(class))
                .await
                .unwrap();
            tx.send(class).unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
            drop(c);
        });
        // Queue them in this order.
        tokio::time::sleep(Duration::from_millis(1 + i as u64)).await;
    }
    drop(held);
    let mut order = Vec::new();
    for _ in 0..3 {
        order.push(rx.recv().await.unwrap());
    }
    assert_eq!(
        order,
        vec![Priority::Critical, Priority::Normal, Priority::Background]
    );
}

#[tokio::test(start_paused = true)]
async fn settings_are_applied_reset_and_matched() {
    let manager = sim();
    let db = manager.db().clone();
    let pool = Pool::builder(manager).max_size(1).build().unwrap();
    let utc = Settings::new([("TimeZone", "UTC")]);
    let paris = Settings::new([("TimeZone", "Europe/Paris")]);
    let conn = pool
        .get_with(AcquireOptions::new().settings(utc.clone()))
        .await
        .unwrap();
    assert_eq!(conn.settings(), Some(&utc));
    drop(conn);
    let conn = pool
        .get_with(AcquireOptions::new().settings(utc.clone()))
        .await
        .unwrap();
    assert_eq!(conn.settings(), Some(&utc));
    drop(conn);
    let conn = pool
        .get_with(AcquireOptions::new().settings(paris.clone()))
        .await
        .unwrap();
    assert_eq!(conn.settings(), Some(&paris));
    drop(conn);
    let conn = pool.get().await.unwrap();
    assert_eq!(
        conn.settings(),
        None,
        "a plain request never inherits settings"
    );
    drop(conn);
    let stats = db.stats();
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(stats.applies.load(Relaxed), 2);
    assert_eq!(stats.resets.load(Relaxed), 2);
}

#[tokio::test(start_paused = true)]
async fn database_down_fails_fast_with_the_connect_error() {
    let manager = sim();
    manager.db().set_connect(Behavior::Err);
    let pool = Pool::builder(manager)
        .max_size(4)
        .acquire_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, AcquireError::Connect(_)), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(1));
    // During the backoff the next request fails at once, without a connect.
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, AcquireError::Connect(_)), "{err:?}");
    assert_eq!(pool.status().counters.connects_failed, 1);
    assert_eq!(pool.status().open, 0);
}

#[tokio::test(start_paused = true)]
async fn closed_pool_rejects_and_wakes_waiters() {
    let pool = Pool::builder(sim()).max_size(1).build().unwrap();
    let held = pool.get().await.unwrap();
    let p = pool.clone();
    let waiter = tokio::spawn(async move { p.get().await.map(drop) });
    tokio::task::yield_now().await;
    let p = pool.clone();
    let closing = tokio::spawn(async move { p.close().await });
    tokio::task::yield_now().await;
    assert!(matches!(waiter.await.unwrap(), Err(AcquireError::Closed)));
    assert!(matches!(pool.get().await, Err(AcquireError::Closed)));
    drop(held);
    closing.await.unwrap().unwrap();
    assert_eq!(pool.status().open, 0);
}
