//! Session state a holder leaves behind (an open transaction, say) is
//! undone before anyone else gets the connection: a connection the manager
//! says `needs_recycle` goes through `Manager::recycle` off the returner's
//! path, and is closed when that fails. A broken or tainted connection
//! returned with a statement still running is closed and the statement
//! cancelled on the server.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use stormpool::{Conn, Manager, Pool};

/// A connection that may be left "in a transaction".
#[derive(Debug, Default)]
struct Session {
    in_transaction: bool,
    running: bool,
}

#[derive(Default)]
struct Counts {
    recycles: AtomicU64,
    cancels: AtomicU64,
    recycle_fails: AtomicBool,
}

#[derive(Clone, Default)]
struct Sessions(Arc<Counts>);

impl Manager for Sessions {
    type Connection = Session;
    type Error = io::Error;
    type CancelToken = ();

    async fn connect(&self) -> Result<Session, io::Error> {
        Ok(Session::default())
    }

    async fn check(&self, _: &mut Session) -> Result<(), io::Error> {
        Ok(())
    }

    fn statement_in_flight(&self, conn: &mut Session) -> bool {
        conn.running
    }

    fn needs_recycle(&self, conn: &mut Session) -> bool {
        conn.in_transaction
    }

    async fn recycle(&self, conn: &mut Session) -> Result<(), io::Error> {
        self.0.recycles.fetch_add(1, Relaxed);
        tokio::time::sleep(Duration::from_millis(1)).await;
        if self.0.recycle_fails.load(Relaxed) {
            return Err(io::Error::other("rollback failed"));
        }
        conn.in_transaction = false;
        conn.running = false;
        Ok(())
    }

    fn cancel_token(&self, _: &Session) {}

    async fn cancel(&self, _: &()) -> Result<(), io::Error> {
        self.0.cancels.fetch_add(1, Relaxed);
        Ok(())
    }
}

fn pool() -> (Pool<Sessions>, Arc<Counts>) {
    let manager = Sessions::default();
    let counts = manager.0.clone();
    let pool = Pool::builder(manager).max_size(1).build().unwrap();
    (pool, counts)
}

#[tokio::test(start_paused = true)]
async fn a_session_left_in_a_transaction_is_recycled_before_reuse() {
    let (pool, counts) = pool();
    let mut conn = pool.get().await.unwrap();
    let id = Conn::id(&conn);
    conn.in_transaction = true;
    drop(conn);
    assert_eq!(pool.status().draining, 1, "out of circulation meanwhile");

    let next = pool.get().await.unwrap();
    assert_eq!(Conn::id(&next), id, "the same connection, recycled");
    assert!(
        !next.in_transaction,
        "never handed out inside the transaction"
    );
    assert_eq!(counts.recycles.load(Relaxed), 1);
    assert_eq!(counts.cancels.load(Relaxed), 0, "nothing to cancel");
    let c = pool.status().counters;
    assert_eq!((c.recycled_on_return, c.drained), (1, 1));
    drop(next);

    // A clean return costs nothing.
    drop(pool.get().await.unwrap());
    assert_eq!(counts.recycles.load(Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn a_session_that_cannot_be_recycled_is_closed() {
    let (pool, counts) = pool();
    counts.recycle_fails.store(true, Relaxed);
    let mut conn = pool.get().await.unwrap();
    let id = Conn::id(&conn);
    conn.in_transaction = true;
    drop(conn);

    let next = pool.get().await.unwrap();
    assert_ne!(Conn::id(&next), id, "a replacement");
    assert!(!next.in_transaction);
    let c = pool.status().counters;
    assert_eq!((c.recycled_on_return, c.closed_drain_failed), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_tainted_connection_with_a_running_statement_is_cancelled_and_closed() {
    let (pool, counts) = pool();
    let mut conn = pool.get().await.unwrap();
    let id = Conn::id(&conn);
    conn.running = true;
    Conn::taint(conn);

    let next = pool.get().await.unwrap();
    assert_ne!(Conn::id(&next), id, "closed, not drained");
    tokio::task::yield_now().await;
    assert_eq!(counts.cancels.load(Relaxed), 1, "the statement was stopped");
    let c = pool.status().counters;
    assert_eq!((c.cancelled_on_return, c.closed_tainted), (1, 1));
}
