//! What a [`PgManager`](crate::PgManager) counts across its connections.

use std::sync::atomic::{AtomicU64, Ordering};

/// The counters, shared by the manager and every connection it opened.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) stopped_by_deadline: AtomicU64,
    pub(crate) bound_changes: AtomicU64,
    pub(crate) abandoned: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> PgStats {
        // Relaxed: independent counters, read for reporting.
        PgStats {
            stopped_by_deadline: self.stopped_by_deadline.load(Ordering::Relaxed),
            bound_changes: self.bound_changes.load(Ordering::Relaxed),
            abandoned: self.abandoned.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of a [`PgManager`](crate::PgManager)'s counters
/// ([`PgManager::stats`](crate::PgManager::stats)), since it was built,
/// over all its connections.
///
/// The pool counts the rest of the story in
/// [`Counters`](stormpool::Counters) (`pool.status().counters`):
/// `cancelled_on_return`, the connections that came back with an abandoned
/// statement and had it cancelled on the server; `drained`, those put back
/// in service once the server was idle on them; `closed_drain_failed`, those
/// closed because that took longer than `abandon_timeout`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgStats {
    /// Tracked statements the server stopped at the bound propagated from
    /// their request's deadline: they failed with SQLSTATE `57014`
    /// (`query_canceled`) after running for at least that bound.
    pub stopped_by_deadline: u64,
    /// `SET statement_timeout` statements sent because a request's bound
    /// differed from the one its session carried (pipelined with the
    /// request's statement, no round trip of their own).
    pub bound_changes: u64,
    /// Tracked statements whose future was dropped before they completed.
    pub abandoned: u64,
}
