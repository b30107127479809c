//! loom models of the hand-off core (`RUSTFLAGS="--cfg stormpool_loom"`,
//! see `.ci/run`): every interleaving of a returner, a waiter and a closer
//! around the pool lock, with the real state transitions and the real
//! register-waker-under-lock / wake-after-unlock protocol.

use std::future::poll_fn;
use std::panic::Location;
use std::sync::Mutex as StdMutex;
use std::task::Poll;
use std::time::Duration;

use loom::sync::Arc;
use loom::thread;

use super::options::{Priority, When};
use super::state::{Ask, Checkout, Effects, Entry, Failure, Perform, Seat, State, Ticket};
use super::stats::Status;
use super::Config;
use crate::clock::Instant;
use crate::sync::{lock, Mutex};
use crate::Manager;

struct Dummy;

impl Manager for Dummy {
    type Connection = u32;
    type Error = std::io::Error;
    type CancelToken = ();

    async fn connect(&self) -> Result<u32, std::io::Error> {
        Ok(0)
    }

    async fn check(&self, _: &mut u32) -> Result<(), std::io::Error> {
        Ok(())
    }

    fn cancel_token(&self, _: &u32) {}
}

type Shared = Arc<Mutex<State<Dummy>>>;

/// Performs a batch as the pool would, without a runtime: wakes, reports
/// closes done at once, and keeps the seats of connects to start.
struct Performer<'a> {
    state: &'a Shared,
    config: &'a Config,
    now: Instant,
    connects: StdMutex<Vec<Seat>>,
}

impl Perform<Dummy> for Performer<'_> {
    fn close(&self, entry: Box<Entry<Dummy>>) {
        let (_, seat) = (*entry).into_parts();
        let mut fx = Effects::new();
        lock(self.state).closed(self.now, seat, self.config, &mut fx);
        fx.perform(self);
    }
    fn connect(&self, seat: Seat) {
        self.connects.lock().unwrap().push(seat);
    }
    fn kick_maintenance(&self) {}
    fn arm_expiry(&self) {}
    fn cancel_revoked(&self, _: std::sync::Arc<()>) {}
    fn leak(&self, _: &'static Location<'static>, _: Duration) {}
}

/// Runs `f` on the state at `now` and performs its effects; returns `f`'s
/// result and the seats of the connects it started.
fn step<R>(
    state: &Shared,
    config: &Config,
    now: Instant,
    f: impl FnOnce(&mut State<Dummy>, &mut Effects<Dummy>) -> R,
) -> (R, Vec<Seat>) {
    let mut fx = Effects::new();
    let r = {
        let mut s = lock(state);
        let r = f(&mut s, &mut fx);
        s.check_ledger();
        r
    };
    let performer = Performer {
        state,
        config,
        now,
        connects: StdMutex::new(Vec::new()),
    };
    fx.perform(&performer);
    (r, performer.connects.into_inner().unwrap())
}

fn ask(deadline: Instant) -> Ask<'static> {
    Ask {
        deadline: When::At(deadline),
        priority: Priority::Normal,
        key: 0,
        settings: None,
        site: Location::caller(),
    }
}

struct Setup {
    state: Shared,
    config: Arc<Config>,
    held: Box<Entry<Dummy>>,
    waiter: Ticket<Dummy>,
    t0: Instant,
    deadline: Instant,
}

/// One connection, held; one request queued for it.
fn setup() -> Setup {
    let config = Config {
        max_size: 1,
        ..Config::default()
    };
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_millis(10);
    let state: Shared = Arc::new(Mutex::new(State::<Dummy>::new(&config)));
    // The first request waits for the connect its arrival starts...
    let (first, mut seats) = step(&state, &config, t0, |s, fx| {
        s.checkout(t0, &ask(deadline), &config, fx)
    });
    let Checkout::Wait(first) = first else {
        panic!("the first request waits for a connect")
    };
    let seat = seats.pop().expect("a connect was started");
    step(&state, &config, t0, |s, fx| {
        s.connected(t0, seat, Ok((7, ())), &config, fx)
    });
    // ...and collects the new connection.
    let held = wait(&state, &first, t0)
        .ok()
        .expect("the first request is served");
    let (second, _) = step(&state, &config, t0, |s, fx| {
        s.checkout(t0, &ask(deadline), &config, fx)
    });
    let Checkout::Wait(waiter) = second else {
        panic!("the second request waits")
    };
    Setup {
        state,
        config: Arc::new(config),
        held,
        waiter,
        t0,
        deadline,
    }
}

/// The returner: releases the held connection at `now`, then wakes.
fn release(state: &Shared, config: &Config, entry: Box<Entry<Dummy>>, now: Instant) {
    step(state, config, now, |s, fx| {
        s.release(entry, now, None, false, config, fx, || now)
    });
}

/// The waiter's future, polled to completion at `now` as `Waiter` does:
/// its cell without the pool lock, then (past its deadline) its own timer
/// under the lock; a connection found past the deadline moves on.
fn wait(
    state: &Shared,
    ticket: &Ticket<Dummy>,
    now: Instant,
) -> Result<Box<Entry<Dummy>>, Failure<std::io::Error>> {
    let config = Config::default();
    let outcome = loom::future::block_on(poll_fn(|cx| {
        if let Some(outcome) = ticket.cell.poll(cx.waker()) {
            return Poll::Ready(outcome);
        }
        if now < ticket.deadline {
            return Poll::Pending;
        }
        let (fired, _) = step(state, &config, now, |s, fx| {
            s.waiter_timer_fired(ticket, now, fx)
        });
        fired.map_or(Poll::Pending, Poll::Ready)
    }));
    let entry = outcome?;
    if now < ticket.deadline {
        return Ok(entry);
    }
    let (failure, _) = step(state, &config, now, |s, fx| {
        s.collected_late(now, entry, fx)
    });
    Err(failure)
}

fn status(state: &Shared, now: Instant) -> Status {
    let s = lock(state);
    s.check_ledger();
    s.status(now)
}

fn assert_settled(state: &Shared, now: Instant, idle: usize, open: usize) {
    let s = status(state, now);
    assert_eq!(s.waiting, 0);
    assert_eq!(s.idle, idle);
    assert_eq!(s.open, open);
    assert_eq!(s.counters.dead_handoffs, 0);
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

#[test]
fn grant_vs_poll_the_waiter_is_served() {
    model(|| {
        let s = setup();
        let (state, config, now) = (s.state.clone(), s.config.clone(), s.t0);
        let returner = thread::spawn(move || release(&state, &config, s.held, now));
        let got = wait(&s.state, &s.waiter, s.t0);
        returner.join().unwrap();
        let entry = got.ok().expect("the live waiter gets the connection");
        assert_eq!(entry.conn, 7);
        let s2 = status(&s.state, s.t0);
        assert_eq!((s2.in_use, s2.idle, s2.counters.acquired_waited), (1, 0, 2));
    });
}

#[test]
fn grant_vs_cancel_the_connection_is_never_lost() {
    model(|| {
        let s = setup();
        let (state, config, now) = (s.state.clone(), s.config.clone(), s.t0);
        let returner = thread::spawn(move || release(&state, &config, s.held, now));
        // The waiter's future is dropped, before or after the grant.
        step(&s.state, &s.config, s.t0, |st, fx| {
            st.drop_waiter(&s.waiter, s.t0, fx)
        });
        returner.join().unwrap();
        assert_settled(&s.state, s.t0, 1, 1);
    });
}

#[test]
fn grant_vs_deadline_no_connection_reaches_an_expired_waiter() {
    model(|| {
        let s = setup();
        let (state, config) = (s.state.clone(), s.config.clone());
        // The returner comes just before or just after the deadline; the
        // waiter's timer fires at the deadline.
        let late = s.deadline;
        let early = s.deadline - Duration::from_millis(1);
        let (state2, config2) = (s.state.clone(), s.config.clone());
        let returner = thread::spawn(move || release(&state, &config, s.held, early));
        let got = wait(&s.state, &s.waiter, late);
        returner.join().unwrap();
        assert!(
            matches!(got, Err(Failure::Timeout)),
            "an expired waiter never gets a connection"
        );
        assert_settled(&state2, late, 1, 1);
        drop(config2);
    });
}

#[test]
fn grant_vs_pool_timer_no_connection_reaches_an_expired_waiter() {
    model(|| {
        let s = setup();
        let (state, config) = (s.state.clone(), s.config.clone());
        let early = s.deadline - Duration::from_millis(1);
        let late = s.deadline;
        // The returner just before the deadline; the pool's timer at it;
        // the waiter polled after both.
        let returner = thread::spawn(move || release(&state, &config, s.held, early));
        step(&s.state, &s.config, late, |st, fx| st.expire(late, fx));
        returner.join().unwrap();
        let got = wait(&s.state, &s.waiter, late);
        assert!(
            matches!(got, Err(Failure::Timeout)),
            "an expired waiter never gets a connection"
        );
        assert_settled(&s.state, late, 1, 1);
        let st = status(&s.state, late);
        assert_eq!(st.counters.acquired_waited, 1, "only the first request");
    });
}

#[test]
fn eviction_by_a_late_returner() {
    model(|| {
        let s = setup();
        let (state, config, late) = (s.state.clone(), s.config.clone(), s.deadline);
        let returner = thread::spawn(move || release(&state, &config, s.held, late));
        let got = wait(&s.state, &s.waiter, late);
        returner.join().unwrap();
        assert!(matches!(got, Err(Failure::Timeout)));
        let st = status(&s.state, late);
        assert_eq!(st.counters.dead_handoffs, 0);
        assert_eq!(st.idle, 1);
    });
}

#[test]
fn close_vs_acquire_nobody_is_left_waiting() {
    model(|| {
        let config = Arc::new(Config::default());
        let state: Shared = Arc::new(Mutex::new(State::new(&config)));
        let t0 = Instant::now();
        let closer = {
            let (state, config) = (state.clone(), config.clone());
            thread::spawn(move || {
                step(&state, &config, t0, |s, fx| s.shut(t0, fx));
            })
        };
        let deadline = t0 + Duration::from_secs(1);
        let (step, seats) = step(&state, &config, t0, |s, fx| {
            s.checkout(t0, &ask(deadline), &config, fx)
        });
        // A connect may have been started for the request: account it as
        // abandoned, as a spawn on a dead runtime would.
        for seat in seats {
            lock(&state).connect_abandoned(seat);
        }
        match step {
            Checkout::Reject(crate::AcquireError::Closed) => {}
            Checkout::Wait(ticket) => {
                assert!(matches!(wait(&state, &ticket, t0), Err(Failure::Closed)));
            }
            _ => panic!("an acquire racing a close is rejected or woken with Closed"),
        }
        closer.join().unwrap();
        let s = status(&state, t0);
        assert!(s.closed);
        assert_eq!(s.waiting, 0);
        assert_eq!(s.open, 0, "nothing was open, and nothing is left");
    });
}
