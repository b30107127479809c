//! The `on_connect` hook runs once per new connection, before it serves
//! anyone; its failure fails the connect with a typed error.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use stormpool::Pool;
use stormpool_postgres::{Error, Operation, PgManager};
use stormpool_testkit::errors;

#[tokio::test]
async fn runs_once_per_connection() {
    let Some(url) = common::url() else { return };
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let manager = PgManager::new(common::config(&url, "stormpool_hook")).on_connect(move |conn| {
        let counted = counted.clone();
        Box::pin(async move {
            counted.fetch_add(1, Ordering::Relaxed);
            conn.batch_execute("SET search_path TO stormpool_hook_schema, public")
                .await?;
            Ok(())
        })
    });
    let pool = Pool::builder(manager).max_size(2).build().expect("pool");
    for _ in 0..10 {
        let conn = pool.get().await.expect("acquire");
        let path = common::tracked_scalar(&conn, "SHOW search_path").await;
        assert_eq!(path.as_deref(), Some("stormpool_hook_schema, public"));
    }
    let (a, b) = (pool.get().await.expect("a"), pool.get().await.expect("b"));
    drop((a, b));
    assert_eq!(runs.load(Ordering::Relaxed), 2, "once per connection");
    assert_eq!(
        pool.status().counters.recycled_on_return,
        0,
        "the hook left nothing to clean"
    );
}

#[tokio::test]
async fn a_failing_hook_is_a_typed_connect_error() {
    let Some(url) = common::url() else { return };
    let manager = PgManager::new(common::config(&url, "stormpool_hook_fails")).on_connect(|conn| {
        Box::pin(async move {
            conn.batch_execute("SELECT no_such_function()").await?;
            Ok(())
        })
    });
    let e = Error::from(errors::failing_hook::<common::Pg>(manager, "42883").await);
    assert_eq!(e.operation(), Operation::OnConnect);
    assert!(
        e.to_string().starts_with("the on_connect hook failed: "),
        "{e}"
    );
}
