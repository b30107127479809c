//! The guard a request holds while it uses a connection.

use std::fmt;
use std::ops::{Deref, DerefMut};

use super::shared::Shared;
use super::state::Entry;
use super::stats::CloseCause;
use crate::clock::Instant;
use crate::manager::Manager;
use crate::Settings;
use std::sync::Arc;

/// A connection checked out of a [`Pool`](crate::Pool).
///
/// Dereferences to the driver's connection. Dropping it gives the connection
/// back: to the next live waiter, else to the idle store; a connection the
/// manager reports broken, or past its lifetime, is closed instead.
///
/// The guard's own operations are associated functions (`Conn::taint(conn)`)
/// so they never shadow a method of the connection it dereferences to.
pub struct Conn<M: Manager> {
    entry: Option<Box<Entry<M>>>,
    shared: Arc<Shared<M>>,
    acquired: Instant,
    /// Close instead of reuse when dropped.
    close: Option<CloseCause>,
}

impl<M: Manager> Conn<M> {
    pub(crate) fn new(shared: Arc<Shared<M>>, entry: Box<Entry<M>>, acquired: Instant) -> Self {
        Conn {
            entry: Some(entry),
            shared,
            acquired,
            close: None,
        }
    }

    pub(crate) fn entry_mut(&mut self) -> &mut Entry<M> {
        // The entry is only taken out by `drop` and `detach`, which consume
        // the guard.
        self.entry
            .as_mut()
            .expect("Conn used after its connection was taken")
    }

    /// Marks the connection to be closed (or not) when the guard drops.
    pub(crate) fn set_close(&mut self, cause: Option<CloseCause>) {
        self.close = cause;
    }

    /// Discards the connection instead of returning it to the pool: use it
    /// when the session is in a state the next request must not inherit
    /// (an aborted transaction, a protocol error). Its slot is freed and a
    /// replacement is opened when requests are waiting.
    pub fn taint(mut this: Self) {
        this.close = Some(CloseCause::Tainted);
    }

    /// Takes the connection out of the pool for good. Its slot is freed at
    /// once, so the pool may open a replacement.
    pub fn detach(mut this: Self) -> M::Connection {
        let entry = this
            .entry
            .take()
            .expect("Conn used after its connection was taken");
        this.shared.detach(*entry)
    }

    /// Whether the lease watchdog revoked this connection (held past
    /// `max_hold`): its statement was cancelled on the server, its slot went
    /// to a replacement, and it will be closed, not reused, when dropped.
    pub fn is_revoked(this: &Self) -> bool {
        this.entry
            .as_ref()
            .is_some_and(|e| this.shared.is_revoked(e))
    }

    /// The pool-wide id of the connection (1 for the first one opened).
    pub fn id(this: &Self) -> u64 {
        this.entry.as_ref().map_or(0, |e| e.id)
    }

    /// When the request got the connection.
    pub fn acquired_at(this: &Self) -> Instant {
        this.acquired
    }

    /// When the connection was opened.
    pub fn created_at(this: &Self) -> Instant {
        this.entry.as_ref().map_or(this.acquired, |e| e.created)
    }

    /// The session settings the connection carries.
    pub fn settings(this: &Self) -> Option<&Settings> {
        this.entry.as_ref().and_then(|e| e.settings.as_ref())
    }

    /// The token with which the manager can cancel the statement running on
    /// this connection's session from elsewhere.
    pub fn cancel_token(this: &Self) -> Option<&M::CancelToken> {
        this.entry.as_ref().map(|e| &*e.cancel)
    }
}

impl<M: Manager> Deref for Conn<M> {
    type Target = M::Connection;

    fn deref(&self) -> &M::Connection {
        &self
            .entry
            .as_ref()
            .expect("Conn used after its connection was taken")
            .conn
    }
}

impl<M: Manager> DerefMut for Conn<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self.entry_mut().conn
    }
}

impl<M: Manager> Drop for Conn<M> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.shared.release(entry, self.acquired, self.close);
        }
    }
}

impl<M: Manager> fmt::Debug for Conn<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("id", &Conn::id(self))
            .field("acquired", &self.acquired)
            .finish_non_exhaustive()
    }
}
