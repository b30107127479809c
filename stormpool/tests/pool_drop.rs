//! Dropping a pool never hangs or panics, inside or outside a runtime, with
//! connections in use, connects in flight, or its runtime already gone.

use std::time::Duration;

use stormpool::sim::{Behavior, SimConfig, SimManager};
use stormpool::Pool;

fn pool() -> Pool<SimManager> {
    Pool::builder(SimManager::new(SimConfig::default()))
        .max_size(2)
        .build()
        .unwrap()
}

#[test]
fn built_and_dropped_outside_a_runtime() {
    let pool = pool();
    assert_eq!(pool.status().open, 0);
    drop(pool);
}

#[test]
fn dropped_outside_after_its_runtime_is_gone() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = pool();
    let conn = rt.block_on(async { pool.get().await.unwrap() });
    // A connect that will still be in flight when the runtime goes.
    pool.manager()
        .db()
        .set_connect(Behavior::Slow(Duration::from_secs(60)));
    let p = pool.clone();
    rt.spawn(async move {
        let _ = p.get().await;
    });
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(20)).await });
    drop(rt);
    // The abandoned connect was accounted for; the guard and the pool drop
    // without a runtime.
    drop(conn);
    let status = pool.status();
    assert_eq!(status.connecting, 0, "{status:?}");
    assert_eq!(status.open, status.idle + status.in_use);
    drop(pool);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_inside_a_runtime_with_a_connection_in_use() {
    let pool = pool();
    let conn = pool.get().await.unwrap();
    let holder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(conn);
    });
    drop(pool);
    holder.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_closes_the_connections() {
    let pool = pool();
    let db = pool.manager().db().clone();
    let (a, b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    drop((a, b));
    assert_eq!(
        db.stats().live.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    drop(pool);
    // The maintenance task holds the pool only weakly: nothing keeps the
    // idle connections open once the last handle is gone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        db.stats().live.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
