//! The waitlist: every request waiting for a connection, queued by priority
//! class and fairness key.
//!
//! # Implementation details
//!
//! Waiter records live in a slab (`Vec` plus free list) and are addressed by
//! their index, a [`WaiterId`]. Each record is linked into three intrusive
//! doubly-linked lists by index, so joining, leaving and being chosen are all
//! O(1) and no operation ever scans the queue to find one waiter (a waiter
//! that scans the list to remove itself holds the lock for O(n), and under a
//! timeout storm thousands of them queue on it, a convoy that starves the
//! returners):
//!
//! * its **key queue**: the FIFO of its `(class, fairness key)`;
//! * its **class list**: every waiter of its class in arrival order, whose
//!   head is the class's oldest waiter (for the overload detector and for
//!   shedding);
//! * its **settings list**, when it asked for session settings: the waiters
//!   of its class asking for the same settings, so a returned connection can
//!   find a waiter it suits without a scan.
//!
//! Key queues with waiters form a ring per class; a cursor walks the ring so
//! keys are served round-robin within a class. Classes are served in strict
//! priority order.
//!
//! A record's [`Handoff`] cell is the hand-off: a returner writes the
//! connection (or a failure) into the cell of the waiter it removes from the
//! lists, frees the record and wakes the waiter; it never waits for the
//! waiter (with a rendezvous hand-off, returners block until their chosen
//! waiter gets through the lock, and every connection ends up parked in the
//! return path). The waiter reads its cell without the pool lock. A record
//! is freed when its waiter leaves the queue, so an id names its waiter
//! only while the waiter is queued: the waiter asks its cell, under the
//! pool lock, whether it still is before it uses the id.
//!
//! Nothing here reads the clock: the pool passes `now` in and holds its
//! mutex around every call.

mod handoff;

pub(crate) use handoff::Handoff;

use std::collections::HashMap;
use std::panic::Location;

use super::wake::WakeList;
use crate::admission::{Order, CLASSES};
use crate::clock::Instant;
use crate::sync::Arc;

/// The index of a waiter record.
pub(crate) type WaiterId = u32;

const NIL: u32 = u32::MAX;

/// How many times a waiter may be passed over in favour of one asking for
/// the settings a returned connection carries, before it is served first
/// regardless (smartconnpool's age counter). Bounds the starvation that the
/// settings preference can cause.
pub(crate) const MAX_BYPASS: u8 = 4;

/// Whether a record holds a waiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The record is free; links the free list.
    Vacant { next_free: u32 },
    /// Waiting in the lists.
    Queued,
}

/// What a waiter's cell receives: its grant, or why it has none.
pub(crate) type Cell<G, F> = Arc<Handoff<Result<G, F>>>;

#[derive(Clone, Copy, Debug)]
struct Links {
    prev: u32,
    next: u32,
}

const UNLINKED: Links = Links {
    prev: NIL,
    next: NIL,
};

/// One waiting request.
pub(crate) struct Record<G, F> {
    pub(crate) slot: Slot,
    /// Its hand-off; kept when the record is freed, for the next waiter.
    cell: Cell<G, F>,
    pub(crate) enqueued: Instant,
    pub(crate) deadline: Instant,
    /// Where the request was made, for its lease.
    pub(crate) site: &'static Location<'static>,
    class: u8,
    bypassed: u8,
    /// Held back by its key's in-flight cap (a valve): linked into its key
    /// queue's `held` list only, invisible to `pick` and to the overload
    /// detector until promoted.
    held: bool,
    settings: u32,
    key: u32,
    key_links: Links,
    class_links: Links,
    set_links: Links,
}

/// The head and tail of an intrusive list.
#[derive(Clone, Copy, Debug)]
struct Ends {
    head: u32,
    tail: u32,
}

const EMPTY: Ends = Ends {
    head: NIL,
    tail: NIL,
};

/// The FIFO of one `(class, key)`.
struct KeyQueue {
    class: u8,
    hash: u64,
    ends: Ends,
    len: u32,
    /// Waiters held back by the key's in-flight cap, oldest first.
    held: Ends,
    held_len: u32,
    /// Neighbours in the class's ring of non-empty keys.
    ring: Links,
    in_ring: bool,
}

struct ClassQueue {
    /// Every waiter of the class in arrival order.
    all: Ends,
    len: usize,
    /// The key served next; `NIL` when no key of the class has waiters.
    cursor: u32,
}

/// Which list a link operation works on.
#[derive(Clone, Copy)]
enum List {
    Key,
    Class,
    Settings,
}

pub(crate) struct Waitlist<G, F> {
    records: Vec<Record<G, F>>,
    /// The free list's head (reused first) and tail (freed last).
    free: u32,
    free_tail: u32,
    keys: Vec<KeyQueue>,
    free_keys: Vec<u32>,
    key_index: HashMap<(u8, u64), u32>,
    classes: [ClassQueue; CLASSES],
    settings_lists: HashMap<(u8, u32), Ends>,
    len: usize,
    held: usize,
    /// The valves: with a per-key cap, the requests each key has admitted
    /// (eligible waiters plus connections it holds). A request arriving at
    /// a key at its cap is held back.
    valve_cap: Option<u32>,
    admitted: HashMap<u64, u32>,
}

impl<G, F> Waitlist<G, F> {
    pub(crate) fn new() -> Self {
        // Keyless requests of each class share a permanent key queue at index
        // `class`, so the common case never touches the key map.
        let keys = (0..CLASSES as u8)
            .map(|class| KeyQueue {
                class,
                hash: 0,
                ends: EMPTY,
                len: 0,
                held: EMPTY,
                held_len: 0,
                ring: UNLINKED,
                in_ring: false,
            })
            .collect();
        Waitlist {
            records: Vec::new(),
            free: NIL,
            free_tail: NIL,
            keys,
            free_keys: Vec::new(),
            key_index: HashMap::new(),
            classes: std::array::from_fn(|_| ClassQueue {
                all: EMPTY,
                len: 0,
                cursor: NIL,
            }),
            settings_lists: HashMap::new(),
            len: 0,
            held: 0,
            valve_cap: None,
            admitted: HashMap::new(),
        }
    }

    /// Caps the requests each fairness key may have admitted (eligible or
    /// holding a connection) at once.
    pub(crate) fn set_valve_cap(&mut self, cap: Option<usize>) {
        self.valve_cap = cap.map(|c| c.min(u32::MAX as usize) as u32);
    }

    /// Whether a new request under `key` must be held back.
    pub(crate) fn is_capped(&self, key: u64) -> bool {
        match self.valve_cap {
            Some(cap) if key != 0 => self.admitted.get(&key).is_some_and(|&n| n >= cap),
            _ => false,
        }
    }

    /// A request under `key` took a connection without queueing.
    pub(crate) fn admit(&mut self, key: u64) {
        if self.valve_cap.is_some() && key != 0 {
            *self.admitted.entry(key).or_insert(0) += 1;
        }
    }

    /// A request under `key` gave its connection back, or left the queue
    /// without one: its place goes to the key's oldest held request.
    pub(crate) fn key_done(&mut self, key: u64, now: Instant) {
        if self.valve_cap.is_none() || key == 0 {
            return;
        }
        if let Some(n) = self.admitted.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.admitted.remove(&key);
            }
        }
        if self.promote(key, now).is_some() {
            self.admit(key);
        }
    }

    /// Waiters queued and eligible for a connection (not held back by a
    /// valve, not yet granted or failed).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Waiters held back by their key's in-flight cap.
    pub(crate) fn held_len(&self) -> usize {
        self.held
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Waiters queued in one class.
    pub(crate) fn class_len(&self, class: usize) -> usize {
        self.classes[class].len
    }

    /// Waiters queued or held under one fairness key, in every class.
    pub(crate) fn key_len(&self, key: u64) -> usize {
        (0..CLASSES as u8)
            .filter_map(|class| self.key_index.get(&(class, key)))
            .map(|&k| {
                let kq = &self.keys[k as usize];
                (kq.len + kq.held_len) as usize
            })
            .sum()
    }

    /// The fairness key a waiter queued under (0: none).
    pub(crate) fn key_of(&self, id: WaiterId) -> u64 {
        self.keys[self.records[id as usize].key as usize].hash
    }

    /// The age of the oldest eligible waiter, in any class.
    pub(crate) fn head_age(&self, now: Instant) -> Option<std::time::Duration> {
        (0..CLASSES)
            .filter_map(|c| self.class_head_age(c, now))
            .max()
    }

    /// The age of the oldest eligible waiter of one class.
    pub(crate) fn class_head_age(&self, class: usize, now: Instant) -> Option<std::time::Duration> {
        let head = self.classes[class].all.head;
        (head != NIL).then(|| now.saturating_duration_since(self.records[head as usize].enqueued))
    }

    pub(crate) fn get(&self, id: WaiterId) -> &Record<G, F> {
        &self.records[id as usize]
    }

    /// The oldest queued waiter of a class.
    pub(crate) fn oldest(&self, class: usize) -> Option<WaiterId> {
        let head = self.classes[class].all.head;
        (head != NIL).then_some(head)
    }

    /// The newest queued waiter of a class.
    pub(crate) fn newest(&self, class: usize) -> Option<WaiterId> {
        let tail = self.classes[class].all.tail;
        (tail != NIL).then_some(tail)
    }

    /// Adds a waiter at the back of its key queue, or of its key's held list
    /// when the key is at its valve cap. What it gets is written into its
    /// [`cell`](Self::cell).
    pub(crate) fn push(
        &mut self,
        now: Instant,
        deadline: Instant,
        class: u8,
        key: u64,
        settings: u32,
        site: &'static Location<'static>,
    ) -> WaiterId {
        let held = self.is_capped(key);
        if !held {
            self.admit(key);
        }
        let key_idx = self.key_queue(class, key);
        let id = if self.free != NIL {
            let id = self.free;
            let record = &mut self.records[id as usize];
            if let Slot::Vacant { next_free } = record.slot {
                self.free = next_free;
                if next_free == NIL {
                    self.free_tail = NIL;
                }
            }
            Handoff::renew(&mut record.cell);
            id
        } else {
            self.records.push(Record {
                slot: Slot::Vacant { next_free: NIL },
                cell: Handoff::new(),
                enqueued: now,
                deadline,
                site,
                class,
                bypassed: 0,
                held,
                settings,
                key: key_idx,
                key_links: UNLINKED,
                class_links: UNLINKED,
                set_links: UNLINKED,
            });
            (self.records.len() - 1) as u32
        };
        let record = &mut self.records[id as usize];
        record.slot = Slot::Queued;
        record.enqueued = now;
        record.deadline = deadline;
        record.site = site;
        record.class = class;
        record.bypassed = 0;
        record.held = held;
        record.settings = settings;
        record.key = key_idx;
        record.key_links = UNLINKED;
        record.class_links = UNLINKED;
        record.set_links = UNLINKED;
        if held {
            let kq = &mut self.keys[key_idx as usize];
            kq.held_len += 1;
            let mut ends = kq.held;
            self.append(List::Key, &mut ends, id);
            self.keys[key_idx as usize].held = ends;
            self.held += 1;
        } else {
            self.link_eligible(id);
        }
        id
    }

    /// Lets the oldest waiter held back under `key` (highest class first)
    /// into its key queue, as if it arrived `now`: the time it spent held by
    /// its own key's cap is not queueing delay of the pool.
    pub(crate) fn promote(&mut self, key: u64, now: Instant) -> Option<WaiterId> {
        let kq = (0..CLASSES as u8)
            .filter_map(|class| self.key_index.get(&(class, key)).copied())
            .find(|&k| self.keys[k as usize].held_len > 0)?;
        let mut held = self.keys[kq as usize].held;
        let id = held.head;
        self.detach(List::Key, &mut held, id);
        self.keys[kq as usize].held = held;
        self.keys[kq as usize].held_len -= 1;
        self.held -= 1;
        let record = &mut self.records[id as usize];
        record.held = false;
        record.enqueued = now;
        self.link_eligible(id);
        Some(id)
    }

    /// Links a record into its key queue, class list and settings list.
    fn link_eligible(&mut self, id: WaiterId) {
        let (class, key_idx, settings) = {
            let r = &self.records[id as usize];
            (r.class, r.key, r.settings)
        };
        let kq = &mut self.keys[key_idx as usize];
        kq.len += 1;
        let mut ends = kq.ends;
        self.append(List::Key, &mut ends, id);
        self.keys[key_idx as usize].ends = ends;
        if !self.keys[key_idx as usize].in_ring {
            self.ring_insert(class as usize, key_idx);
        }

        let mut all = self.classes[class as usize].all;
        self.append(List::Class, &mut all, id);
        self.classes[class as usize].all = all;
        self.classes[class as usize].len += 1;

        if settings != 0 {
            let mut ends = self
                .settings_lists
                .get(&(class, settings))
                .copied()
                .unwrap_or(EMPTY);
            self.append(List::Settings, &mut ends, id);
            self.settings_lists.insert((class, settings), ends);
        }
        self.len += 1;
    }

    /// Unlinks a waiter that leaves without a connection, giving its valve
    /// place to the next held request of its key.
    fn leave(&mut self, id: WaiterId, now: Instant) {
        let record = &self.records[id as usize];
        let held = record.held;
        let key = self.keys[record.key as usize].hash;
        self.unlink(id);
        if !held {
            self.key_done(key, now);
        }
    }

    /// Removes a queued waiter from every list. The caller then writes its slot.
    pub(crate) fn unlink(&mut self, id: WaiterId) {
        let (class, key, settings) = {
            let r = &self.records[id as usize];
            debug_assert!(
                matches!(r.slot, Slot::Queued),
                "unlink of a waiter that is not queued"
            );
            debug_assert!(
                r.key_links.prev != NIL
                    || self.keys[r.key as usize].ends.head == id
                    || self.keys[r.key as usize].held.head == id,
                "unlink of a waiter that is not linked"
            );
            (r.class, r.key, r.settings)
        };
        if self.records[id as usize].held {
            let mut held = self.keys[key as usize].held;
            self.detach(List::Key, &mut held, id);
            self.keys[key as usize].held = held;
            self.keys[key as usize].held_len -= 1;
            self.held -= 1;
            self.free_key_if_unused(key);
            return;
        }
        let mut ends = self.keys[key as usize].ends;
        self.detach(List::Key, &mut ends, id);
        let kq = &mut self.keys[key as usize];
        kq.ends = ends;
        kq.len -= 1;
        if kq.len == 0 {
            self.ring_remove(class as usize, key);
            self.free_key_if_unused(key);
        }

        let mut all = self.classes[class as usize].all;
        self.detach(List::Class, &mut all, id);
        self.classes[class as usize].all = all;
        self.classes[class as usize].len -= 1;

        if settings != 0 {
            if let Some(mut ends) = self.settings_lists.get(&(class, settings)).copied() {
                self.detach(List::Settings, &mut ends, id);
                if ends.head == NIL {
                    self.settings_lists.remove(&(class, settings));
                } else {
                    self.settings_lists.insert((class, settings), ends);
                }
            }
        }
        self.len -= 1;
    }

    /// The hand-off cell of a queued waiter, for the waiter to keep.
    pub(crate) fn cell(&self, id: WaiterId) -> Cell<G, F> {
        self.records[id as usize].cell.clone()
    }

    /// Removes a queued waiter and fails it, queueing its waker on `wakes`.
    pub(crate) fn fail(&mut self, id: WaiterId, failure: F, now: Instant, wakes: &mut WakeList) {
        self.leave(id, now);
        self.complete(id, Err(failure), wakes);
    }

    /// Removes a queued waiter and hands it `grant`, queueing its waker.
    pub(crate) fn grant(&mut self, id: WaiterId, grant: G, wakes: &mut WakeList) {
        self.unlink(id);
        self.complete(id, Ok(grant), wakes);
    }

    /// Writes a waiter's outcome into its cell and frees its record.
    fn complete(&mut self, id: WaiterId, outcome: Result<G, F>, wakes: &mut WakeList) {
        wakes.push(self.records[id as usize].cell.complete(outcome));
        self.free_record(id);
    }

    /// Removes a queued waiter and frees its record at once: the waiter
    /// itself leaves (its future was dropped, or its own timer fired).
    pub(crate) fn remove(&mut self, id: WaiterId, now: Instant) {
        self.leave(id, now);
        self.free_record(id);
    }

    /// Frees a record at the back of the free list: the record reused
    /// next is the one freed longest ago, whose waiter has most likely let
    /// go of its cell, so the cell is reused rather than allocated anew.
    fn free_record(&mut self, id: WaiterId) {
        self.records[id as usize].slot = Slot::Vacant { next_free: NIL };
        if self.free_tail == NIL {
            self.free = id;
        } else {
            self.records[self.free_tail as usize].slot = Slot::Vacant { next_free: id };
        }
        self.free_tail = id;
    }

    /// Chooses the waiter a connection carrying `settings` (0: none) goes to.
    /// The waiter stays queued until the caller [`grant`](Waitlist::grant)s it.
    ///
    /// Highest class first; within a class the key at the round-robin cursor;
    /// within a key the oldest (`Fifo`) or newest (`Lifo`) waiter, as
    /// `order` says for the class. A waiter of
    /// the same class that asked for exactly `settings` is preferred, unless
    /// the waiter it would pass over has already been passed over
    /// [`MAX_BYPASS`] times. Every expired waiter met on the way is removed
    /// and failed with `expired()`: it is never handed the connection, and it
    /// no longer stands in the way of the next returner. A waiter counts as
    /// expired when its deadline is not after `horizon`: the time now, plus
    /// whatever it needs left to use the connection.
    pub(crate) fn pick(
        &mut self,
        horizon: Instant,
        settings: u32,
        order: [Order; CLASSES],
        expired: &mut impl FnMut() -> F,
        wakes: &mut WakeList,
        evicted: &mut u64,
    ) -> Option<WaiterId> {
        // Evicting a waiter may let a held waiter of its key into a class
        // already walked past: walk again until a pass evicts nobody.
        loop {
            let before = *evicted;
            if let Some(id) = self.pick_once(horizon, settings, order, expired, wakes, evicted) {
                return Some(id);
            }
            if *evicted == before {
                return None;
            }
        }
    }

    fn pick_once(
        &mut self,
        horizon: Instant,
        settings: u32,
        order: [Order; CLASSES],
        expired: &mut impl FnMut() -> F,
        wakes: &mut WakeList,
        evicted: &mut u64,
    ) -> Option<WaiterId> {
        for (class, class_order) in order.into_iter().enumerate() {
            while self.classes[class].cursor != NIL {
                let key = self.classes[class].cursor;
                let ends = self.keys[key as usize].ends;
                let candidate = match class_order {
                    Order::Fifo => ends.head,
                    Order::Lifo => ends.tail,
                };
                if self.records[candidate as usize].deadline <= horizon {
                    self.fail(candidate, expired(), horizon, wakes);
                    *evicted += 1;
                    continue;
                }
                let mut chosen = candidate;
                if settings != 0
                    && self.records[candidate as usize].settings != settings
                    && self.records[candidate as usize].bypassed < MAX_BYPASS
                {
                    if let Some(matching) = self.live_with_settings(
                        class as u8,
                        settings,
                        order[class],
                        horizon,
                        expired,
                        wakes,
                        evicted,
                    ) {
                        self.records[candidate as usize].bypassed += 1;
                        chosen = matching;
                    }
                }
                if chosen == candidate {
                    // Round-robin: the next pick in this class starts at the
                    // following key. `unlink` (by `grant`) moves the cursor
                    // on again if this key's queue empties and leaves the ring.
                    self.classes[class].cursor = self.keys[key as usize].ring.next;
                }
                return Some(chosen);
            }
        }
        None
    }

    /// The first live waiter of `class` asking for `settings`, evicting the
    /// expired ones before it.
    #[allow(clippy::too_many_arguments)]
    fn live_with_settings(
        &mut self,
        class: u8,
        settings: u32,
        order: Order,
        horizon: Instant,
        expired: &mut impl FnMut() -> F,
        wakes: &mut WakeList,
        evicted: &mut u64,
    ) -> Option<WaiterId> {
        loop {
            let ends = self.settings_lists.get(&(class, settings)).copied()?;
            let id = match order {
                Order::Fifo => ends.head,
                Order::Lifo => ends.tail,
            };
            if self.records[id as usize].deadline > horizon {
                return Some(id);
            }
            self.fail(id, expired(), horizon, wakes);
            *evicted += 1;
        }
    }

    /// Sheds up to `budget` waiters of the classes `which` selects that have
    /// queued for longer than `max_age`: the oldest of the lowest class
    /// first, never `Critical` (class 0), and never below `keep` waiters
    /// in a class. Returns how many were shed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn shed(
        &mut self,
        now: Instant,
        max_age: std::time::Duration,
        budget: usize,
        which: [bool; CLASSES],
        keep: [usize; CLASSES],
        mut failure: impl FnMut() -> F,
        wakes: &mut WakeList,
    ) -> usize {
        let mut shed = 0;
        for class in (1..CLASSES).rev().filter(|&c| which[c]) {
            while shed < budget && self.classes[class].len > keep[class] {
                let Some(id) = self.oldest(class) else { break };
                if now.saturating_duration_since(self.records[id as usize].enqueued) <= max_age {
                    break;
                }
                self.fail(id, failure(), now, wakes);
                shed += 1;
            }
        }
        shed
    }

    /// Fails every waiter, eligible or held back, whose deadline is not
    /// after `now`, with `failure()`. Returns how many were failed and the
    /// earliest deadline among the waiters left: the next time this has
    /// anything to do.
    ///
    /// One pass over the records, O(capacity of the slab): it runs when a
    /// deadline comes due (the pool's one timer), not per request.
    pub(crate) fn expire(
        &mut self,
        now: Instant,
        mut failure: impl FnMut() -> F,
        wakes: &mut WakeList,
    ) -> (usize, Option<Instant>) {
        let mut failed = 0;
        let mut next: Option<Instant> = None;
        for id in 0..self.records.len() as u32 {
            let record = &self.records[id as usize];
            if !matches!(record.slot, Slot::Queued) {
                continue;
            }
            if record.deadline <= now {
                // Leaving may promote a held waiter of the same key; it is
                // in the slab already and is looked at in this same pass
                // (its deadline unchanged) whether before or after `id`.
                self.fail(id, failure(), now, wakes);
                failed += 1;
            } else {
                next = Some(next.map_or(record.deadline, |n| n.min(record.deadline)));
            }
        }
        (failed, next)
    }

    /// Fails every queued waiter (pool closed, database down).
    pub(crate) fn fail_all(
        &mut self,
        now: Instant,
        mut failure: impl FnMut() -> F,
        wakes: &mut WakeList,
    ) {
        // Failing an eligible waiter may promote a held one into the queue,
        // so go on until both are empty.
        while self.len + self.held > 0 {
            for class in 0..CLASSES {
                while let Some(id) = self.oldest(class) {
                    self.fail(id, failure(), now, wakes);
                }
            }
            for key in 0..self.keys.len() {
                while self.keys[key].held_len > 0 {
                    let id = self.keys[key].held.head;
                    self.fail(id, failure(), now, wakes);
                }
            }
        }
    }

    fn free_key_if_unused(&mut self, key: u32) {
        let kq = &self.keys[key as usize];
        if kq.hash != 0 && kq.len == 0 && kq.held_len == 0 {
            let index = (kq.class, kq.hash);
            self.key_index.remove(&index);
            self.free_keys.push(key);
        }
    }

    fn key_queue(&mut self, class: u8, key: u64) -> u32 {
        if key == 0 {
            return class as u32;
        }
        if let Some(&idx) = self.key_index.get(&(class, key)) {
            return idx;
        }
        let queue = KeyQueue {
            class,
            hash: key,
            ends: EMPTY,
            len: 0,
            held: EMPTY,
            held_len: 0,
            ring: UNLINKED,
            in_ring: false,
        };
        let idx = match self.free_keys.pop() {
            Some(idx) => {
                self.keys[idx as usize] = queue;
                idx
            }
            None => {
                self.keys.push(queue);
                (self.keys.len() - 1) as u32
            }
        };
        self.key_index.insert((class, key), idx);
        idx
    }

    /// Puts a key into its class's ring just before the cursor, so it is
    /// served after every key already waiting.
    fn ring_insert(&mut self, class: usize, key: u32) {
        let cursor = self.classes[class].cursor;
        if cursor == NIL {
            self.keys[key as usize].ring = Links {
                prev: key,
                next: key,
            };
            self.classes[class].cursor = key;
        } else {
            let prev = self.keys[cursor as usize].ring.prev;
            self.keys[key as usize].ring = Links { prev, next: cursor };
            self.keys[prev as usize].ring.next = key;
            self.keys[cursor as usize].ring.prev = key;
        }
        self.keys[key as usize].in_ring = true;
    }

    fn ring_remove(&mut self, class: usize, key: u32) {
        let Links { prev, next } = self.keys[key as usize].ring;
        if next == key {
            self.classes[class].cursor = NIL;
        } else {
            self.keys[prev as usize].ring.next = next;
            self.keys[next as usize].ring.prev = prev;
            if self.classes[class].cursor == key {
                self.classes[class].cursor = next;
            }
        }
        let kq = &mut self.keys[key as usize];
        kq.ring = UNLINKED;
        kq.in_ring = false;
        debug_assert_eq!(kq.class as usize, class);
    }

    fn links(&mut self, list: List, id: u32) -> &mut Links {
        let record = &mut self.records[id as usize];
        match list {
            List::Key => &mut record.key_links,
            List::Class => &mut record.class_links,
            List::Settings => &mut record.set_links,
        }
    }

    fn append(&mut self, list: List, ends: &mut Ends, id: u32) {
        *self.links(list, id) = Links {
            prev: ends.tail,
            next: NIL,
        };
        if ends.tail == NIL {
            ends.head = id;
        } else {
            self.links(list, ends.tail).next = id;
        }
        ends.tail = id;
    }

    fn detach(&mut self, list: List, ends: &mut Ends, id: u32) {
        let Links { prev, next } = *self.links(list, id);
        if prev == NIL {
            ends.head = next;
        } else {
            self.links(list, prev).next = next;
        }
        if next == NIL {
            ends.tail = prev;
        } else {
            self.links(list, next).prev = prev;
        }
        *self.links(list, id) = UNLINKED;
    }
}

#[cfg(test)]
mod tests;
