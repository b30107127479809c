//! The ledger: how many connections the pool has, and where each one is.
//!
//! # Invariant
//!
//! Every connection the pool counts has exactly one [`Seat`], which says
//! where it is: being opened, idle, in use (a request's, or handed to a
//! waiter that has yet to collect it), draining, or being closed. Each count is the number of seats in that place, and
//! `open`, their sum, never grows past `max_size` (a shrink may leave it
//! above the new size until enough connections come back). A revoked
//! connection (its lease held past `max_hold`) leaves `open` for `orphans`
//! and stays there until its close is done.
//!
//! The counts are private: nothing outside this module changes them, and
//! every change goes through a seat. Only [`Ledger::reserve`] makes a seat,
//! only [`Ledger::release`] ends one, and neither `Seat` nor [`Place`]
//! changes but through the ledger. A seat is `#[must_use]` and cannot be
//! copied, so a slot is never counted twice, and dropping one where a
//! transition was due is a warning at the call that produced it, not a
//! slot lost in silence at run time.

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// Being opened by a connect task.
    Connecting,
    /// In the idle store.
    Idle,
    /// Held by a request, or handed to a waiter (written into its
    /// hand-off cell, which it collects without the pool lock).
    InUse,
    /// Returned with work to undo (a statement to cancel, a session to
    /// recycle), out of circulation until the drain task reports.
    Draining,
    /// Being closed ([`Manager::close`](crate::Manager::close) under way).
    Closing,
    /// Revoked, let go by its holder, being closed: counted in `orphans`.
    Orphan,
}

/// One connection's place in the ledger. Made by [`Ledger::reserve`],
/// moved by [`Ledger::moved`], ended by [`Ledger::release`].
#[must_use = "a seat that is not given back to the ledger loses its slot"]
#[derive(Debug)]
pub(crate) struct Seat {
    place: Place,
}

impl Seat {
    /// Where the connection is.
    pub(crate) fn place(&self) -> Place {
        self.place
    }
}

/// The counts of connections by place; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Ledger {
    max_size: usize,
    /// Seats in every place but `Orphan`.
    open: usize,
    connecting: usize,
    idle: usize,
    in_use: usize,
    draining: usize,
    closing: usize,
    /// Revoked connections not yet gone: still held, or being closed.
    orphans: usize,
    /// Of `orphans`, those being closed (seats in `Orphan`).
    orphans_closing: usize,
}

impl Ledger {
    pub(crate) fn new(max_size: usize) -> Self {
        Ledger {
            max_size,
            open: 0,
            connecting: 0,
            idle: 0,
            in_use: 0,
            draining: 0,
            closing: 0,
            orphans: 0,
            orphans_closing: 0,
        }
    }

    fn count(&mut self, place: Place) -> &mut usize {
        match place {
            Place::Connecting => &mut self.connecting,
            Place::Idle => &mut self.idle,
            Place::InUse => &mut self.in_use,
            Place::Draining => &mut self.draining,
            Place::Closing => &mut self.closing,
            Place::Orphan => &mut self.orphans_closing,
        }
    }

    /// A seat for a new connection, being opened, when `open` is below
    /// `max_size`.
    pub(crate) fn reserve(&mut self) -> Option<Seat> {
        if self.open >= self.max_size {
            return None;
        }
        self.open += 1;
        self.connecting += 1;
        Some(Seat {
            place: Place::Connecting,
        })
    }

    /// Moves a connection to `to`. A seat leaves `Orphan` only by
    /// [`release`](Self::release), and enters it only by
    /// [`revoked_returned`](Self::revoked_returned).
    pub(crate) fn moved(&mut self, seat: &mut Seat, to: Place) {
        debug_assert!(
            seat.place != Place::Orphan && to != Place::Orphan,
            "orphans move by revoke, revoked_returned and release only"
        );
        *self.count(seat.place) -= 1;
        *self.count(to) += 1;
        seat.place = to;
    }

    /// The connection is gone (closed, failed to open, or detached by its
    /// holder): its slot is free, or its orphan no longer counts.
    pub(crate) fn release(&mut self, seat: Seat) {
        *self.count(seat.place) -= 1;
        if seat.place == Place::Orphan {
            self.orphans -= 1;
        } else {
            self.open -= 1;
        }
    }

    /// The watchdog revoked the lease of a connection in use, whose seat is
    /// with its holder: its slot is freed for a replacement and it counts as
    /// an orphan until it is gone ([`revoked_returned`](Self::revoked_returned)
    /// and [`release`](Self::release), or
    /// [`revoked_detached`](Self::revoked_detached)).
    pub(crate) fn revoke(&mut self) {
        self.in_use -= 1;
        self.open -= 1;
        self.orphans += 1;
    }

    /// A revoked connection came back: its seat, still marked in use, is
    /// now the orphan's, to be closed.
    pub(crate) fn revoked_returned(&mut self, seat: &mut Seat) {
        debug_assert_eq!(seat.place, Place::InUse);
        seat.place = Place::Orphan;
        self.orphans_closing += 1;
    }

    /// A revoked connection was taken out of the pool by its holder.
    pub(crate) fn revoked_detached(&mut self, seat: Seat) {
        debug_assert_eq!(seat.place, Place::InUse);
        self.orphans -= 1;
    }

    pub(crate) fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
    }

    pub(crate) fn max_size(&self) -> usize {
        self.max_size
    }

    /// Connections counted against `max_size`.
    pub(crate) fn open(&self) -> usize {
        self.open
    }

    pub(crate) fn connecting(&self) -> usize {
        self.connecting
    }

    pub(crate) fn idle(&self) -> usize {
        self.idle
    }

    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }

    pub(crate) fn draining(&self) -> usize {
        self.draining
    }

    pub(crate) fn closing(&self) -> usize {
        self.closing
    }

    /// Revoked connections not yet gone (held, or being closed): what
    /// `max_orphans` bounds.
    pub(crate) fn orphans(&self) -> usize {
        self.orphans
    }

    /// Revoked connections their holders still hold.
    pub(crate) fn orphans_held(&self) -> usize {
        self.orphans - self.orphans_closing
    }

    /// Connections counted against `max_size` that are not being closed.
    pub(crate) fn live(&self) -> usize {
        self.open - self.closing
    }

    /// Connections that exist and could serve a request eventually (not
    /// being opened or closed).
    pub(crate) fn established(&self) -> usize {
        self.open - self.connecting - self.closing
    }

    /// Whether the counts add up (debug builds check it after every
    /// transition; by construction it cannot fail).
    pub(crate) fn balances(&self) -> bool {
        self.connecting + self.idle + self.in_use + self.draining + self.closing == self.open
            && self.orphans_closing <= self.orphans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(l: &Ledger) -> [usize; 8] {
        [
            l.open,
            l.connecting,
            l.idle,
            l.in_use,
            l.draining,
            l.closing,
            l.orphans,
            l.orphans_closing,
        ]
    }

    #[test]
    fn reserve_stops_at_max_size() {
        let mut ledger = Ledger::new(2);
        let a = ledger.reserve().expect("room");
        let b = ledger.reserve().expect("room");
        assert!(ledger.reserve().is_none(), "max_size reached");
        assert_eq!((ledger.open(), ledger.connecting()), (2, 2));
        ledger.release(a);
        let c = ledger.reserve().expect("a released slot is free again");
        ledger.release(b);
        ledger.release(c);
        assert_eq!(counts(&ledger), [0; 8]);
    }

    #[test]
    fn a_connection_goes_through_every_place_and_out() {
        let mut ledger = Ledger::new(1);
        let mut seat = ledger.reserve().unwrap();
        for place in [
            Place::Idle,
            Place::InUse,
            Place::Draining,
            Place::InUse,
            Place::Closing,
        ] {
            ledger.moved(&mut seat, place);
            assert_eq!(seat.place(), place);
            assert!(ledger.balances());
            assert_eq!(ledger.open(), 1);
        }
        assert_eq!((ledger.live(), ledger.established()), (0, 0));
        assert!(
            ledger.reserve().is_none(),
            "a closing connection keeps its slot"
        );
        ledger.release(seat);
        assert_eq!(counts(&ledger), [0; 8]);
    }

    #[test]
    fn a_revoked_connection_is_an_orphan_until_gone() {
        let mut ledger = Ledger::new(1);
        let mut seat = ledger.reserve().unwrap();
        ledger.moved(&mut seat, Place::InUse);
        ledger.revoke();
        assert_eq!((ledger.open(), ledger.orphans()), (0, 1));
        assert_eq!(ledger.orphans_held(), 1);
        let replacement = ledger.reserve().expect("the slot went to a replacement");
        ledger.revoked_returned(&mut seat);
        assert_eq!((ledger.orphans(), ledger.orphans_held()), (1, 0));
        assert!(ledger.balances());
        ledger.release(seat);
        ledger.release(replacement);
        assert_eq!(counts(&ledger), [0; 8]);
    }

    #[test]
    fn a_revoked_connection_detached_by_its_holder_leaves_the_orphans() {
        let mut ledger = Ledger::new(1);
        let mut seat = ledger.reserve().unwrap();
        ledger.moved(&mut seat, Place::InUse);
        ledger.revoke();
        ledger.revoked_detached(seat);
        assert_eq!(counts(&ledger), [0; 8]);
    }

    #[test]
    fn a_shrink_keeps_the_open_connections_until_they_go() {
        let mut ledger = Ledger::new(3);
        let mut seats: Vec<Seat> = (0..3).map(|_| ledger.reserve().unwrap()).collect();
        for seat in &mut seats {
            ledger.moved(seat, Place::InUse);
        }
        ledger.set_max_size(1);
        assert_eq!((ledger.open(), ledger.max_size()), (3, 1));
        assert!(ledger.reserve().is_none());
        for seat in seats {
            ledger.release(seat);
        }
        assert!(ledger.reserve().is_some_and(|seat| {
            ledger.release(seat);
            true
        }));
    }
}
