//! A model of Vitess smartconnpool's waitlist before its fix for the
//! timeout storm (the production stall the lab replays).
//!
//! What the model keeps from the pre-fix code:
//!
//! * **FIFO waitlist, blind hand-off.** A returned connection goes to the
//!   front-most waiter without any check of that waiter's deadline; only
//!   when nobody waits does it go back to the (LIFO) idle stack.
//! * **Expired requests still run their query.** A request's server-side
//!   work runs as its own task, as a Go goroutine serving a request does:
//!   the client giving up at its deadline does not stop it, so a request
//!   that receives a connection after its deadline still runs its query on
//!   it before giving the connection back.
//! * **The convoy is taken as given.** In the incident, a timed-out waiter
//!   could only leave the list through the contended waitlist mutex and an
//!   O(n) scan; 8,631 of them were stuck doing that when the dump was taken.
//!   The model is the limit of that convoy: an expired waiter never manages
//!   to leave on its own and stays listed until a returner hands it a
//!   connection. (At small scale the real pool self-heals because waiters
//!   leave quickly; the model reproduces the stall, not its onset.)
//!
//! What it leaves out: settings matching and the waiter age counter (the
//! lab's requests carry no settings), and the returner blocking in the
//! unbuffered channel send (the modelled waiter always receives at once).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use stormpool::sim::{SimConnection, SimManager};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{LabPool, PoolSetup, Request, ServeFuture};
use crate::base::PoolError;

/// The pre-fix waitlist model over the simulated database.
pub struct PrefixLab {
    inner: Arc<Inner>,
}

struct Inner {
    manager: SimManager,
    max_size: usize,
    /// Server time spent on queries after their client's deadline, in µs.
    dead_micros: AtomicU64,
    /// # Invariant
    /// Held for O(1) steps only; never across an `.await`.
    state: Mutex<State>,
}

struct State {
    /// Connections open or being opened.
    open: usize,
    /// Idle connections, most recently returned last.
    idle: Vec<SimConnection>,
    /// Waiting requests, oldest first. A waiter is never removed because its
    /// deadline passed (see the module docs).
    waitlist: VecDeque<oneshot::Sender<SimConnection>>,
}

impl PrefixLab {
    /// Builds the model.
    pub fn new(manager: SimManager, setup: &PoolSetup) -> Self {
        PrefixLab {
            inner: Arc::new(Inner {
                manager,
                max_size: setup.max_size,
                dead_micros: AtomicU64::new(0),
                state: Mutex::new(State {
                    open: 0,
                    idle: Vec::new(),
                    waitlist: VecDeque::new(),
                }),
            }),
        }
    }
}

impl LabPool for PrefixLab {
    fn serve<'a>(&'a self, req: &'a Request) -> ServeFuture<'a> {
        let inner = self.inner.clone();
        let req = req.clone();
        Box::pin(async move {
            // The request's work lives on after its client gives up:
            // dropping the join handle detaches the task, it does not
            // cancel it.
            tokio::spawn(async move { inner.serve(&req).await })
                .await
                .unwrap_or(Err(PoolError::Closed))
        })
    }

    fn waiting(&self) -> Option<usize> {
        Some(self.inner.lock().waitlist.len())
    }

    fn dead_work(&self) -> Option<Duration> {
        Some(Duration::from_micros(
            self.inner.dead_micros.load(Ordering::Relaxed),
        ))
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn serve(self: &Arc<Self>, req: &Request) -> Result<(), PoolError> {
        let mut conn = self.get().await?;
        req.granted();
        let start = Instant::now();
        let result = conn.query().await.map_err(|_| PoolError::Query);
        // The simulated server counts the work of dropped queries only; this
        // one ran to its end, possibly for a client long gone.
        let dead = req.deadline.map_or(Duration::ZERO, |deadline| {
            Instant::now().saturating_duration_since(start.max(deadline))
        });
        // Relaxed: a counter read after the run.
        self.dead_micros
            .fetch_add(dead.as_micros() as u64, Ordering::Relaxed);
        self.put(conn);
        result
    }

    async fn get(self: &Arc<Self>) -> Result<SimConnection, PoolError> {
        let waiter = {
            let mut state = self.lock();
            if let Some(conn) = state.idle.pop() {
                return Ok(conn);
            }
            if state.open < self.max_size {
                state.open += 1;
                None
            } else {
                let (tx, rx) = oneshot::channel();
                state.waitlist.push_back(tx);
                Some(rx)
            }
        };
        match waiter {
            Some(rx) => rx.await.map_err(|_| PoolError::Closed),
            None => match stormpool::Manager::connect(&self.manager).await {
                Ok(conn) => Ok(conn),
                Err(_) => {
                    self.lock().open -= 1;
                    Err(PoolError::Connect)
                }
            },
        }
    }

    /// Gives a connection back: to the front-most waiter, expired or not.
    fn put(self: &Arc<Self>, mut conn: SimConnection) {
        let mut state = self.lock();
        if conn.is_broken() {
            state.open -= 1;
            if !state.waitlist.is_empty() {
                // Open a replacement for the waiters.
                state.open += 1;
                let inner = self.clone();
                tokio::spawn(async move {
                    match stormpool::Manager::connect(&inner.manager).await {
                        Ok(conn) => inner.put(conn),
                        Err(_) => inner.lock().open -= 1,
                    }
                });
            }
            drop(state);
            return;
        }
        while let Some(waiter) = state.waitlist.pop_front() {
            match waiter.send(conn) {
                Ok(()) => return,
                // The waiter's task is gone (the run is shutting down).
                Err(back) => conn = back,
            }
        }
        state.idle.push(conn);
    }
}
