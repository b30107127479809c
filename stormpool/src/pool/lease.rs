//! Leases: the connections in use, as the lease watchdog sees them.
//!
//! # Why
//!
//! A query that never returns (a deadlock, a hung server) pins its pool slot
//! forever: a pool whose slots deadlocked queries hold stays exhausted until
//! someone restarts the process, hours later. With
//! `max_hold`, a connection held for longer is **revoked**: the manager's
//! [`cancel`](crate::Manager::cancel) is sent to the server to stop the
//! running statement, the holder's guard reports it
//! ([`Conn::is_revoked`](crate::Conn::is_revoked)), the connection is closed
//! when the guard drops and is never reused, and its slot is freed at once so
//! the pool can open a replacement. Until its holder lets go, the revoked
//! connection is an **orphan**: counted apart from the ledger, and bounded
//! by `max_orphans` so a pool never holds more than `max_size + max_orphans`
//! sessions on the server. With `max_orphans` reached, further stuck leases
//! are left alone (and reported by the health check) rather than revoked.
//!
//! Leases are only tracked when `max_hold` or `leak_threshold` is set; a pool
//! without them pays nothing for this module.

use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Instant;

/// The index of a lease; `NO_LEASE` for an untracked checkout.
pub(crate) type LeaseId = u32;
pub(crate) const NO_LEASE: LeaseId = u32::MAX;

/// One connection in use.
pub(crate) struct Lease<T> {
    pub(crate) acquired: Instant,
    /// Reaches the session to cancel its statement.
    pub(crate) cancel: Arc<T>,
    /// Where the connection was acquired, for the leak report.
    pub(crate) site: &'static Location<'static>,
    pub(crate) revoked: bool,
    /// The leak report was made.
    pub(crate) reported: bool,
}

enum Slot<T> {
    Free { next: LeaseId },
    Held(Lease<T>),
}

/// The slab of leases.
pub(crate) struct Leases<T> {
    slots: Vec<Slot<T>>,
    free: LeaseId,
    held: usize,
}

/// What the watchdog decided in one pass.
pub(crate) struct Sweep<T> {
    /// Leases revoked now: their statements are to be cancelled.
    pub(crate) revoked: Vec<Arc<T>>,
    /// Leases held past the leak threshold, reported now.
    pub(crate) leaked: Vec<(&'static Location<'static>, Duration)>,
    /// Leases past `max_hold` left alone because `max_orphans` was reached.
    pub(crate) skipped: usize,
    /// When the next lease reaches a limit.
    pub(crate) next: Option<Instant>,
}

impl<T> Leases<T> {
    pub(crate) fn new() -> Self {
        Leases {
            slots: Vec::new(),
            free: NO_LEASE,
            held: 0,
        }
    }

    /// Leases held (revoked ones included, until their holder lets go).
    pub(crate) fn len(&self) -> usize {
        self.held
    }

    pub(crate) fn open(&mut self, lease: Lease<T>) -> LeaseId {
        self.held += 1;
        if self.free != NO_LEASE {
            let id = self.free;
            if let Slot::Free { next } = self.slots[id as usize] {
                self.free = next;
            }
            self.slots[id as usize] = Slot::Held(lease);
            id
        } else {
            self.slots.push(Slot::Held(lease));
            (self.slots.len() - 1) as LeaseId
        }
    }

    /// Ends a lease; returns whether it had been revoked.
    pub(crate) fn close(&mut self, id: LeaseId) -> bool {
        let slot = std::mem::replace(&mut self.slots[id as usize], Slot::Free { next: self.free });
        self.free = id;
        match slot {
            Slot::Held(lease) => {
                self.held -= 1;
                lease.revoked
            }
            Slot::Free { .. } => {
                debug_assert!(false, "lease {id} closed twice");
                false
            }
        }
    }

    pub(crate) fn is_revoked(&self, id: LeaseId) -> bool {
        matches!(self.slots.get(id as usize), Some(Slot::Held(lease)) if lease.revoked)
    }

    /// Revokes leases held past `max_hold` while fewer than `room` orphans
    /// would result, and reports those held past `leak_threshold`.
    pub(crate) fn sweep(
        &mut self,
        now: Instant,
        max_hold: Option<Duration>,
        leak_threshold: Option<Duration>,
        mut room: usize,
    ) -> Sweep<T> {
        let mut sweep = Sweep {
            revoked: Vec::new(),
            leaked: Vec::new(),
            skipped: 0,
            next: None,
        };
        let mut next =
            |at: Instant| sweep.next = Some(sweep.next.map_or(at, |n: Instant| n.min(at)));
        // O(leases): at most `max_size + max_orphans`, never the queue.
        for slot in &mut self.slots {
            let Slot::Held(lease) = slot else { continue };
            if lease.revoked {
                continue;
            }
            let held = now.saturating_duration_since(lease.acquired);
            if let Some(threshold) = leak_threshold.filter(|_| !lease.reported) {
                if held >= threshold {
                    lease.reported = true;
                    sweep.leaked.push((lease.site, held));
                } else {
                    next(lease.acquired + threshold);
                }
            }
            if let Some(max_hold) = max_hold {
                if held < max_hold {
                    next(lease.acquired + max_hold);
                } else if room == 0 {
                    sweep.skipped += 1;
                } else {
                    room -= 1;
                    lease.revoked = true;
                    sweep.revoked.push(lease.cancel.clone());
                }
            }
        }
        sweep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(at: Instant) -> Lease<()> {
        Lease {
            acquired: at,
            cancel: Arc::new(()),
            site: Location::caller(),
            revoked: false,
            reported: false,
        }
    }

    #[test]
    fn revokes_past_max_hold_within_the_orphan_room() {
        let t0 = Instant::now();
        let mut leases = Leases::new();
        let a = leases.open(lease(t0));
        let b = leases.open(lease(t0));
        let c = leases.open(lease(t0 + Duration::from_secs(5)));
        let hold = Some(Duration::from_secs(10));
        let sweep = leases.sweep(t0 + Duration::from_secs(10), hold, None, 1);
        assert_eq!((sweep.revoked.len(), sweep.skipped), (1, 1));
        assert_eq!(sweep.next, Some(t0 + Duration::from_secs(15)));
        assert!(leases.is_revoked(a) ^ leases.is_revoked(b));
        assert!(!leases.is_revoked(c));
        assert_eq!(leases.len(), 3);
        let revoked = if leases.is_revoked(a) { a } else { b };
        assert!(leases.close(revoked));
        assert!(!leases.close(c));
        assert_eq!(leases.len(), 1);
    }

    #[test]
    fn reports_a_leak_once() {
        let t0 = Instant::now();
        let mut leases = Leases::new();
        leases.open(lease(t0));
        let threshold = Some(Duration::from_secs(1));
        let at = t0 + Duration::from_secs(2);
        assert_eq!(leases.sweep(at, None, threshold, 0).leaked.len(), 1);
        assert_eq!(leases.sweep(at, None, threshold, 0).leaked.len(), 0);
    }
}
