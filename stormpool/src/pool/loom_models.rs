//! loom models of the hand-off core (`RUSTFLAGS="--cfg stormpool_loom"`,
//! see `.ci/run`): every interleaving of a returner, a waiter and a closer
//! around the pool lock, with the real state transitions and the real
//! register-waker-under-lock / wake-after-unlock protocol.

use std::future::poll_fn;
use std::panic::Location;
use std::task::Poll;
use std::time::Duration;

use loom::sync::Arc;
use loom::thread;

use super::options::{Priority, When};
use super::state::{Checkout, Effects, Entry, Failure, State};
use super::waitlist::WaiterId;
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

struct Setup {
    state: Shared,
    config: Arc<Config>,
    held: Box<Entry<Dummy>>,
    waiter: WaiterId,
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
    let mut state = State::<Dummy>::new(&config);
    let mut fx = Effects::new();
    state.connecting += 1;
    state.open += 1;
    state.connected(t0, Ok((7, ())), &config, &mut fx);
    let Checkout::Ready(held) = state.checkout(
        t0,
        When::At(deadline),
        Priority::Normal,
        0,
        None,
        Location::caller(),
        &config,
        &mut fx,
    ) else {
        panic!("the idle connection is taken")
    };
    let Checkout::Wait(waiter) = state.checkout(
        t0,
        When::At(deadline),
        Priority::Normal,
        0,
        None,
        Location::caller(),
        &config,
        &mut fx,
    ) else {
        panic!("the second request waits")
    };
    state.check_ledger();
    Setup {
        state: Arc::new(Mutex::new(state)),
        config: Arc::new(config),
        held,
        waiter,
        t0,
        deadline,
    }
}

/// The returner: releases the held connection at `now`, then wakes.
fn release(state: &Shared, config: &Config, entry: Box<Entry<Dummy>>, now: Instant) {
    let mut fx = Effects::new();
    {
        let mut s = lock(state);
        s.release(entry, now, None, false, config, &mut fx, || now);
        s.check_ledger();
    }
    fx.wakes.wake_all();
}

/// The waiter's future, polled to completion at `now` as `Waiter::poll` does.
fn wait(
    state: &Shared,
    id: WaiterId,
    now: Instant,
) -> Result<Box<Entry<Dummy>>, Failure<std::io::Error>> {
    loom::future::block_on(poll_fn(|cx| {
        let mut fx = Effects::new();
        let outcome = {
            let mut s = lock(state);
            let outcome = s.poll_waiter(id, now, cx.waker(), Location::caller(), &mut fx);
            s.check_ledger();
            outcome
        };
        fx.wakes.wake_all();
        match outcome {
            Some(result) => Poll::Ready(result),
            None => Poll::Pending,
        }
    }))
}

fn assert_settled(state: &Shared, idle: usize, open: usize) {
    let s = lock(state);
    s.check_ledger();
    assert_eq!(s.waitlist.len(), 0);
    assert_eq!(s.handing_over, 0);
    assert_eq!(s.idle.len(), idle);
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
        let got = wait(&s.state, s.waiter, s.t0);
        returner.join().unwrap();
        let entry = got.ok().expect("the live waiter gets the connection");
        assert_eq!(entry.conn, 7);
        let s2 = lock(&s.state);
        assert_eq!((s2.in_use, s2.handing_over, s2.idle.len()), (1, 0, 0));
    });
}

#[test]
fn grant_vs_cancel_the_connection_is_never_lost() {
    model(|| {
        let s = setup();
        let (state, config, now) = (s.state.clone(), s.config.clone(), s.t0);
        let returner = thread::spawn(move || release(&state, &config, s.held, now));
        // The waiter's future is dropped, before or after the grant.
        {
            let mut fx = Effects::new();
            let mut st = lock(&s.state);
            st.drop_waiter(s.waiter, s.t0, &mut fx);
            st.check_ledger();
        }
        returner.join().unwrap();
        assert_settled(&s.state, 1, 1);
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
        let got = wait(&s.state, s.waiter, late);
        returner.join().unwrap();
        assert!(
            matches!(got, Err(Failure::Timeout)),
            "an expired waiter never gets a connection"
        );
        assert_settled(&state2, 1, 1);
        drop(config2);
    });
}

#[test]
fn eviction_by_a_late_returner() {
    model(|| {
        let s = setup();
        let (state, config, late) = (s.state.clone(), s.config.clone(), s.deadline);
        let returner = thread::spawn(move || release(&state, &config, s.held, late));
        let got = wait(&s.state, s.waiter, late);
        returner.join().unwrap();
        assert!(matches!(got, Err(Failure::Timeout)));
        let st = lock(&s.state);
        assert_eq!(st.counters.dead_handoffs, 0);
        assert_eq!(st.idle.len(), 1);
    });
}

#[test]
fn close_vs_acquire_nobody_is_left_waiting() {
    model(|| {
        let config = Arc::new(Config::default());
        let state: Shared = Arc::new(Mutex::new(State::new(&config)));
        let t0 = Instant::now();
        let closer = {
            let state = state.clone();
            thread::spawn(move || {
                let mut fx = Effects::new();
                {
                    let mut s = lock(&state);
                    s.shut(t0, &mut fx);
                    s.check_ledger();
                }
                fx.wakes.wake_all();
            })
        };
        let mut fx = Effects::new();
        let step = {
            let mut s = lock(&state);
            s.checkout(
                t0,
                When::At(t0 + Duration::from_secs(1)),
                Priority::Normal,
                0,
                None,
                Location::caller(),
                &config,
                &mut fx,
            )
        };
        // A connect may have been started for the request: account it as
        // abandoned, as a spawn on a dead runtime would.
        for _ in 0..fx.connects {
            lock(&state).connect_abandoned();
        }
        match step {
            Checkout::Reject(crate::AcquireError::Closed) => {}
            Checkout::Wait(id) => {
                assert!(matches!(wait(&state, id, t0), Err(Failure::Closed)));
            }
            _ => panic!("an acquire racing a close is rejected or woken with Closed"),
        }
        closer.join().unwrap();
        let s = lock(&state);
        assert!(s.closed);
        assert_eq!(s.waitlist.len(), 0);
        assert_eq!(s.open, s.closing);
    });
}
