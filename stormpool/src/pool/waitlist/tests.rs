//! Unit tests of the waitlist's lists, order, valves and shedding.
use super::*;
use crate::admission::{Order, CLASSES};
use std::panic::Location;
use std::time::Duration;

type W = Waitlist<u32, &'static str>;

const SITE: &Location<'static> = Location::caller();

fn t0() -> Instant {
    Instant::now()
}

fn pick(w: &mut W, now: Instant, settings: u32, order: Order) -> Option<WaiterId> {
    let mut wakes = WakeList::new();
    let mut evicted = 0;
    let id = w.pick(
        now,
        settings,
        [order; CLASSES],
        &mut || "expired",
        &mut wakes,
        &mut evicted,
    )?;
    w.grant(id, 0, &mut wakes);
    Some(id)
}

#[test]
fn fifo_within_key_and_strict_priority_between_classes() {
    let mut w = W::new();
    let now = t0();
    let later = now + Duration::from_secs(1);
    let a = w.push(now, later, 1, 0, 0, SITE);
    let b = w.push(now, later, 1, 0, 0, SITE);
    let c = w.push(now, later, 3, 0, 0, SITE);
    let d = w.push(now, later, 0, 0, 0, SITE);
    assert_eq!(w.len(), 4);
    assert_eq!(pick(&mut w, now, 0, Order::Fifo), Some(d));
    assert_eq!(pick(&mut w, now, 0, Order::Fifo), Some(a));
    assert_eq!(pick(&mut w, now, 0, Order::Fifo), Some(b));
    assert_eq!(pick(&mut w, now, 0, Order::Fifo), Some(c));
    assert_eq!(pick(&mut w, now, 0, Order::Fifo), None);
    assert!(w.is_empty());
}

#[test]
fn lifo_serves_the_newest() {
    let mut w = W::new();
    let now = t0();
    let later = now + Duration::from_secs(1);
    let _a = w.push(now, later, 1, 0, 0, SITE);
    let b = w.push(now, later, 1, 0, 0, SITE);
    assert_eq!(pick(&mut w, now, 0, Order::Lifo), Some(b));
}

#[test]
fn round_robin_across_keys() {
    let mut w = W::new();
    let now = t0();
    let later = now + Duration::from_secs(1);
    let fan: Vec<_> = (0..3).map(|_| w.push(now, later, 1, 7, 0, SITE)).collect();
    let x = w.push(now, later, 1, 8, 0, SITE);
    let y = w.push(now, later, 1, 9, 0, SITE);
    let order: Vec<_> = (0..5)
        .map(|_| pick(&mut w, now, 0, Order::Fifo).unwrap())
        .collect();
    assert_eq!(order, vec![fan[0], x, y, fan[1], fan[2]]);
    assert!(w.is_empty());
    assert_eq!(w.key_index.len(), 0, "empty key queues are freed");
}

#[test]
fn expired_waiters_are_evicted_not_chosen() {
    let mut w = W::new();
    let now = t0();
    let dead = w.push(now, now + Duration::from_millis(1), 1, 0, 0, SITE);
    let dead_cell = w.cell(dead);
    let live = w.push(now, now + Duration::from_secs(1), 1, 0, 0, SITE);
    let mut wakes = WakeList::new();
    let mut evicted = 0;
    let later = now + Duration::from_millis(5);
    let got = w.pick(
        later,
        0,
        [Order::Fifo; CLASSES],
        &mut || "expired",
        &mut wakes,
        &mut evicted,
    );
    assert_eq!(got, Some(live));
    assert_eq!(w.len(), 1, "the chosen waiter stays queued until granted");
    assert_eq!(evicted, 1);
    assert!(matches!(dead_cell.take(), Some(Err("expired"))));
    assert!(
        matches!(w.get(dead).slot, Slot::Vacant { .. }),
        "its record is free"
    );
}

#[test]
fn settings_preference_is_bounded() {
    let mut w = W::new();
    let now = t0();
    let later = now + Duration::from_secs(1);
    let plain = w.push(now, later, 1, 0, 0, SITE);
    let wanting: Vec<_> = (0..10).map(|_| w.push(now, later, 1, 0, 5, SITE)).collect();
    // The first MAX_BYPASS connections carrying settings 5 go to waiters
    // asking for them; then the plain waiter is served.
    for want in wanting.iter().take(MAX_BYPASS as usize) {
        assert_eq!(pick(&mut w, now, 5, Order::Fifo), Some(*want));
    }
    assert_eq!(pick(&mut w, now, 5, Order::Fifo), Some(plain));
}

#[test]
fn a_waiter_record_fits_in_256_bytes() {
    // The record of the real pool: the grant is a boxed connection entry,
    // the failure the pool's own enum (the connect error behind an Arc).
    type PoolRecord = Record<Box<u8>, crate::pool::state::Failure<std::io::Error>>;
    let size = std::mem::size_of::<PoolRecord>();
    assert!(size <= 256, "{size} bytes per waiter");
    // And the queue's share beyond the record: nothing per waiter (key
    // queues and class lists are per key and per class).
    println!("waiter record: {size} bytes");
}

#[test]
fn held_waiters_are_invisible_until_promoted() {
    let mut w = W::new();
    let now = t0();
    let later = now + Duration::from_secs(1);
    let held = {
        w.set_valve_cap(Some(1));
        w.admit(7);
        w.push(now, later, 1, 7, 0, SITE)
    };
    assert_eq!((w.len(), w.held_len(), w.key_len(7)), (0, 1, 1));
    assert_eq!(w.head_age(now), None, "held waiters are not queueing delay");
    assert_eq!(pick(&mut w, now, 0, Order::Fifo), None);
    let t1 = now + Duration::from_millis(30);
    // The key's connection comes back: the held waiter is let in.
    w.key_done(7, t1);
    assert_eq!((w.len(), w.held_len()), (1, 0));
    assert_eq!(w.head_age(t1), Some(Duration::ZERO));
    assert_eq!(pick(&mut w, t1, 0, Order::Fifo), Some(held));
    assert!(
        w.is_capped(7),
        "the granted waiter holds the key's one place"
    );
    w.key_done(7, t1);
    assert!(!w.is_capped(7));
    assert!(w.key_index.is_empty());
    assert!(w.admitted.is_empty());
}

#[test]
fn shedding_takes_the_oldest_of_the_lowest_class_and_spares_critical() {
    let mut w = W::new();
    let now = t0();
    let later = now + Duration::from_secs(1);
    let critical = w.push(now, later, 0, 0, 0, SITE);
    let normal = w.push(now, later, 1, 0, 0, SITE);
    let bg_old = w.push(now, later, 3, 0, 0, SITE);
    let t1 = now + Duration::from_millis(20);
    let bg_new = w.push(t1, later, 3, 0, 0, SITE);
    let cells: Vec<_> = [critical, normal, bg_old, bg_new]
        .into_iter()
        .map(|id| w.cell(id))
        .collect();
    let mut wakes = WakeList::new();
    let shed = w.shed(
        t1,
        Duration::from_millis(10),
        1,
        [true; CLASSES],
        [0; CLASSES],
        || "shed",
        &mut wakes,
    );
    assert_eq!(shed, 1);
    assert!(matches!(cells[2].take(), Some(Err("shed"))));
    let shed = w.shed(
        t1,
        Duration::from_millis(10),
        10,
        [true; CLASSES],
        [0; CLASSES],
        || "shed",
        &mut wakes,
    );
    assert_eq!(shed, 1);
    assert!(matches!(cells[1].take(), Some(Err("shed"))));
    assert!(cells[0].take().is_none() && cells[3].take().is_none());
    assert!(matches!(w.get(critical).slot, Slot::Queued));
    assert!(matches!(w.get(bg_new).slot, Slot::Queued));
}

#[test]
fn unlink_from_the_middle_and_reuse_records() {
    let mut w = W::new();
    let now = t0();
    let later = now + Duration::from_secs(1);
    let ids: Vec<_> = (0..5)
        .map(|i| w.push(now, later, 1, i % 2 + 1, 0, SITE))
        .collect();
    w.remove(ids[2], now);
    let again = w.push(now, later, 1, 0, 0, SITE);
    assert_eq!(again, ids[2], "the freed record is reused");
    assert_eq!(w.len(), 5);
    let mut seen = Vec::new();
    while let Some(id) = pick(&mut w, now, 0, Order::Fifo) {
        seen.push(id);
    }
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected);
}

#[test]
fn a_cell_is_reused_only_once_its_waiter_let_go() {
    let mut w = W::new();
    let now = t0();
    let later = now + Duration::from_secs(1);
    let a = w.push(now, later, 1, 0, 0, SITE);
    let held = w.cell(a);
    assert_eq!(pick(&mut w, now, 0, Order::Fifo), Some(a));
    // The record is free, but its waiter has not collected yet.
    let b = w.push(now, later, 1, 0, 0, SITE);
    assert_eq!(b, a, "the record is reused");
    assert!(!Arc::ptr_eq(&held, &w.cell(b)), "the cell is not");
    assert!(matches!(held.take(), Some(Ok(0))), "and keeps its grant");
    drop(held);
    let b_cell = w.cell(b);
    assert_eq!(pick(&mut w, now, 0, Order::Fifo), Some(b));
    assert!(matches!(b_cell.take(), Some(Ok(0))));
    let kept = Arc::as_ptr(&b_cell);
    drop(b_cell);
    let c = w.push(now, later, 1, 0, 0, SITE);
    let c_cell = w.cell(c);
    assert_eq!(Arc::as_ptr(&c_cell), kept, "a cell let go is reused");
    assert!(c_cell.take().is_none(), "empty for its new waiter");
}

#[test]
fn expire_fails_the_due_and_reports_the_next_deadline() {
    let mut w = W::new();
    let now = t0();
    let soon = now + Duration::from_millis(5);
    let later = now + Duration::from_millis(50);
    let long = w.push(now, later, 1, 0, 0, SITE);
    let short = w.push(now, soon, 1, 0, 0, SITE);
    w.set_valve_cap(Some(1));
    w.admit(9);
    let held = w.push(now, soon, 1, 9, 0, SITE);
    let cells: Vec<_> = [long, short, held]
        .into_iter()
        .map(|id| w.cell(id))
        .collect();
    let mut wakes = WakeList::new();
    assert_eq!(w.expire(now, || "timeout", &mut wakes), (0, Some(soon)));
    let (expired, next) = w.expire(soon, || "timeout", &mut wakes);
    assert_eq!((expired, next), (2, Some(later)));
    assert!(matches!(cells[1].take(), Some(Err("timeout"))));
    assert!(
        matches!(cells[2].take(), Some(Err("timeout"))),
        "held ones too"
    );
    assert!(cells[0].take().is_none());
    assert_eq!((w.len(), w.held_len()), (1, 0));
    assert_eq!(w.expire(later, || "timeout", &mut wakes), (1, None));
    assert!(w.is_empty());
}

#[test]
fn a_cell_keeps_its_waker_until_written_or_left() {
    let cell = Handoff::<u32>::new();
    let waker = std::task::Waker::noop();
    assert!(cell.poll(waker).is_none(), "nothing written yet");
    // A look under the pool lock that finds nothing keeps the waiter's
    // waker: a later grant must still wake it.
    assert!(cell.take_outcome().is_none());
    assert!(
        cell.complete(5).is_some(),
        "the waker is handed to the writer"
    );
    assert_eq!(cell.poll(waker), Some(5));
    // A waiter going away takes its waker with it.
    let cell = Handoff::<u32>::new();
    assert!(cell.poll(waker).is_none());
    assert!(cell.take().is_none());
    assert!(cell.complete(6).is_none(), "nobody left to wake");
}
