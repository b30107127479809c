//! What a [`MySqlManager`](crate::MySqlManager) counts across its
//! connections.

use std::sync::atomic::{AtomicU64, Ordering};

/// The counters, shared by the manager and every connection it opened.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) stopped_by_deadline: AtomicU64,
    pub(crate) bound_changes: AtomicU64,
    pub(crate) abandoned: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> MySqlStats {
        // Relaxed: independent counters, read for reporting.
        MySqlStats {
            stopped_by_deadline: self.stopped_by_deadline.load(Ordering::Relaxed),
            bound_changes: self.bound_changes.load(Ordering::Relaxed),
            abandoned: self.abandoned.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of a [`MySqlManager`](crate::MySqlManager)'s counters
/// ([`MySqlManager::stats`](crate::MySqlManager::stats)), since it was
/// built, over all its connections.
///
/// The pool counts the rest of the story in
/// [`Counters`](stormpool::Counters) (`pool.status().counters`):
/// `cancelled_on_return`, the connections that came back with an abandoned
/// statement and had it stopped with `KILL QUERY`; `drained`, those put back
/// in service once the server had answered it; `closed_drain_failed`, those
/// closed because that took longer than `abandon_timeout`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MySqlStats {
    /// Tracked statements the server stopped at the bound propagated from
    /// their request's deadline: error 1969 (`ER_STATEMENT_TIMEOUT`).
    pub stopped_by_deadline: u64,
    /// `SET SESSION max_statement_time` statements sent because a request's
    /// bound differed from the one its session carried (one round trip each,
    /// before the request's statement).
    pub bound_changes: u64,
    /// Tracked statements whose future was dropped before they completed.
    pub abandoned: u64,
}
