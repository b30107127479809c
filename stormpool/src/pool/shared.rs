//! The part of the pool every handle, guard and task shares: the manager, the
//! configuration and the locked [`State`], with the tasks that open, drain
//! and close connections and the code that gives them back. The request's
//! own path is in `acquire.rs`.

use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use tokio::runtime::Handle;
use tokio::sync::Notify;

use super::observe;
use super::state::{ConnectFailure, Connected, Effects, Entry, Perform, Seat, State};
use super::stats::{CloseCause, Status};
use super::Config;
use crate::clock::{self, Instant};
use crate::manager::Manager;
use crate::sync::{lock, Mutex, MutexGuard};

pub(crate) struct Shared<M: Manager> {
    pub(crate) manager: M,
    pub(crate) config: Config,
    /// # Invariant
    /// Held only for O(1) transitions (see `state`): never across an
    /// `.await`, a manager call, a wake or a destructor of a connection.
    pub(crate) state: Mutex<State<M>>,
    /// Counters bumped outside the lock.
    pub(crate) checks: AtomicU64,
    pub(crate) apply_errors: AtomicU64,
    /// Whether the last return needed the time (requests were waiting):
    /// the next one reads the clock before it takes the lock rather than
    /// under it.
    release_reads_clock: AtomicBool,
    started: AtomicBool,
    /// Where the pool's tasks run: the runtime the maintenance task was
    /// last started on.
    runtime: Mutex<Option<Handle>>,
    /// Wakes the maintenance task early (first waiter queued, pool closed).
    maintenance: Arc<Notify>,
    /// Wakes the same task to re-arm its timer for an earlier waiter
    /// deadline.
    expiry: Arc<Notify>,
    /// Signalled whenever a connection is closed after the pool was closed.
    drained: Notify,
    /// The pool's metric handles (feature `metrics`).
    #[cfg(feature = "metrics")]
    pub(crate) metrics: observe::Metrics,
}

impl<M: Manager> Shared<M> {
    pub(crate) fn new(manager: M, config: Config) -> Self {
        Shared {
            manager,
            state: Mutex::new(State::new(&config)),
            checks: AtomicU64::new(0),
            apply_errors: AtomicU64::new(0),
            release_reads_clock: AtomicBool::new(false),
            started: AtomicBool::new(false),
            runtime: Mutex::new(None),
            maintenance: Arc::new(Notify::new()),
            expiry: Arc::new(Notify::new()),
            drained: Notify::new(),
            #[cfg(feature = "metrics")]
            metrics: observe::Metrics::new(&config.name),
            config,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State<M>> {
        lock(&self.state)
    }

    /// Starts the maintenance task on the current runtime, once, and again
    /// if the runtime it ran on shut down; the pool's other tasks go to the
    /// same runtime from then on.
    pub(crate) fn ensure_started(self: &Arc<Self>) {
        if self.started.load(Ordering::Acquire) {
            return;
        }
        let Ok(handle) = Handle::try_current() else {
            return;
        };
        *lock(&self.runtime) = Some(handle.clone());
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        handle.spawn(maintenance(
            Arc::downgrade(self),
            self.maintenance.clone(),
            self.expiry.clone(),
        ));
    }

    /// The runtime the pool's tasks run on (`None`: none was ever seen).
    fn runtime(&self) -> Option<Handle> {
        lock(&self.runtime).clone()
    }

    /// Whether the maintenance task runs, and with it the timer that
    /// expires waiters.
    pub(crate) fn timer_runs(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Performs what a transition left to do outside the lock.
    pub(crate) fn run(self: &Arc<Self>, mut fx: Effects<M>) {
        fx.perform(self);
    }

    /// Closes a connection (never under the lock), as a task of its own
    /// bounded by `check_timeout` (after cancelling the statement it was
    /// returned with, if any), and reports the close done, so that the slot
    /// is refilled only once the server has let go of the session.
    fn spawn_close(self: &Arc<Self>, entry: Entry<M>) {
        let cancel = entry.cancel_on_close.then(|| entry.cancel.clone());
        let (conn, seat) = entry.into_parts();
        let pending = PendingClose {
            shared: self.clone(),
            seat: Some(seat),
        };
        let Some(handle) = self.runtime() else {
            // No runtime: the connection is dropped here, and `pending`
            // reports it closed.
            drop(conn);
            return;
        };
        handle.spawn(async move {
            let shared = &pending.shared;
            let (manager, bound) = (&shared.manager, shared.config.check_timeout);
            if let Some(token) = cancel {
                let _ = tokio::time::timeout(bound, manager.cancel(&token)).await;
            }
            let _ = tokio::time::timeout(bound, manager.close(conn)).await;
            drop(pending);
        });
    }

    /// Asks the server to stop the statement behind `token`, within
    /// `check_timeout`, without blocking anyone.
    fn spawn_cancel(self: &Arc<Self>, token: Arc<M::CancelToken>) {
        let Some(handle) = self.runtime() else {
            return;
        };
        let shared = self.clone();
        handle.spawn(async move {
            let cancel = shared.manager.cancel(&token);
            let _ = tokio::time::timeout(shared.config.check_timeout, cancel).await;
        });
    }

    /// Whether the lease of a connection in use was revoked.
    pub(crate) fn is_revoked(&self, entry: &Entry<M>) -> bool {
        entry.lease != super::lease::NO_LEASE && self.lock().is_revoked(entry.lease)
    }

    fn spawn_connect(self: &Arc<Self>, seat: Seat) {
        let pending = PendingConnect {
            shared: self.clone(),
            seat: Some(seat),
        };
        let Some(handle) = self.runtime() else {
            // No runtime was ever seen: `pending` reports the connect as
            // abandoned when dropped here.
            return;
        };
        let task = async move {
            let pending = pending;
            let shared = &pending.shared;
            let connect = shared.manager.connect();
            let started = clock::now();
            let result = match tokio::time::timeout(shared.config.connect_timeout, connect).await {
                Ok(Ok(conn)) => {
                    let token = shared.manager.cancel_token(&conn);
                    Ok((conn, token))
                }
                Ok(Err(e)) => Err(ConnectFailure::Error(Arc::new(e))),
                Err(_) => Err(ConnectFailure::TimedOut),
            };
            let took = clock::now().saturating_duration_since(started);
            pending.finish(result, took);
        };
        #[cfg(feature = "tracing")]
        let task = tracing::Instrument::instrument(
            task,
            tracing::info_span!(target: "stormpool", "stormpool.connect", pool = %self.config.name),
        );
        handle.spawn(task);
    }

    /// A guard gives its connection back.
    pub(crate) fn release(
        self: &Arc<Self>,
        mut entry: Box<Entry<M>>,
        acquired: Instant,
        close: Option<CloseCause>,
    ) {
        let close = close.or_else(|| {
            self.manager
                .is_broken(&mut entry.conn)
                .then_some(CloseCause::Broken)
        });
        #[cfg(feature = "metrics")]
        self.metrics.held(acquired);
        let abandoned = self.manager.statement_in_flight(&mut entry.conn);
        if close.is_none() && (abandoned || self.manager.needs_recycle(&mut entry.conn)) {
            return self.drain(entry, abandoned);
        }
        // Closed with a statement still running (a broken socket, a tainted
        // session): the close cancels it first, or the server would finish
        // it for nobody, and hold the session meanwhile.
        entry.cancel_on_close = abandoned;
        let mut fx = Effects::new();
        let early = self
            .release_reads_clock
            .load(Ordering::Relaxed)
            .then(clock::now);
        let mut read = false;
        {
            let mut state = self.lock();
            let clock = || {
                read = true;
                early.unwrap_or_else(clock::now)
            };
            state.release(
                entry,
                acquired,
                close,
                abandoned,
                &self.config,
                &mut fx,
                clock,
            );
            state.check_ledger();
        }
        if read != early.is_some() {
            self.release_reads_clock.store(read, Ordering::Relaxed);
        }
        self.run(fx);
    }

    /// Takes a connection returned with a statement still running
    /// (`abandoned`), or with session state to undo, out of circulation:
    /// cancels the statement on the server, waits (as its own task, never
    /// the returner) for [`Manager::recycle`] to succeed (by default a
    /// probe, which answers once the server is idle on the session), and
    /// puts it back, or closes it after `abandon_timeout`.
    fn drain(self: &Arc<Self>, entry: Box<Entry<M>>, abandoned: bool) {
        let draining =
            self.transition(|state, now, fx| state.release_to_drain(entry, abandoned, now, fx));
        // A revoked lease was closed as the orphan it is.
        let Some(entry) = draining else { return };
        let Some(handle) = self.runtime() else {
            return self.finish_drain(entry, false);
        };
        let shared = self.clone();
        handle.spawn(async move {
            let mut entry = entry;
            let manager = &shared.manager;
            let drain = async {
                if abandoned {
                    // A failed cancel is not fatal: the recycle still waits
                    // for the statement to end on its own, within the bound.
                    let _ = manager.cancel(&entry.cancel).await;
                }
                manager.recycle(&mut entry.conn).await.is_ok()
            };
            let ok = tokio::time::timeout(shared.config.abandon_timeout, drain)
                .await
                .unwrap_or(false);
            shared.finish_drain(entry, ok);
        });
    }

    fn finish_drain(self: &Arc<Self>, entry: Box<Entry<M>>, ok: bool) {
        let config = &self.config;
        self.transition(|state, now, fx| state.drained(now, entry, ok, config, fx));
    }

    /// A guard's connection leaves the pool for good.
    pub(crate) fn detach(self: &Arc<Self>, entry: Entry<M>) -> M::Connection {
        let config = &self.config;
        self.transition(|state, now, fx| state.detach(now, entry, config, fx))
    }

    /// Runs one maintenance pass; returns when to run the next, and when
    /// the next waiter deadline comes.
    fn maintain(self: &Arc<Self>, now: Instant) -> (Instant, Option<Instant>) {
        let mut fx = Effects::new();
        let (next, overload) = {
            let mut state = self.lock();
            let was = state.is_overloaded();
            let next = state.maintain(now, &self.config, &mut fx);
            state.check_ledger();
            (
                (next, state.expiry_at()),
                (was != state.is_overloaded()).then(|| state.is_overloaded()),
            )
        };
        self.run(fx);
        if let Some(overloaded) = overload {
            observe::overload_changed(&self.config.name, overloaded);
        }
        #[cfg(feature = "metrics")]
        self.publish_metrics();
        next
    }

    /// Fails the waiters whose deadline has come; returns when the next
    /// one comes.
    fn expire(self: &Arc<Self>, now: Instant) -> Option<Instant> {
        self.transition_at(now, |state, now, fx| {
            state.expire(now, fx);
            state.expiry_at()
        })
    }

    /// Publishes the counters and gauges of a fresh snapshot.
    #[cfg(feature = "metrics")]
    pub(crate) fn publish_metrics(&self) {
        self.metrics
            .export(&self.status(), self.health().is_ready());
    }

    /// The pool's health at `now`.
    pub(crate) fn health(&self) -> crate::Health {
        let now = clock::now();
        self.lock().health(now, &self.config)
    }

    /// A snapshot of sizes, waiters and counters.
    pub(crate) fn status(&self) -> Status {
        let mut status = self.lock().status(clock::now());
        status.counters.checks = self.checks.load(Ordering::Relaxed);
        status.counters.apply_errors = self.apply_errors.load(Ordering::Relaxed);
        status
    }

    /// Closes the pool and waits, at most `drain_timeout`, for the
    /// connections in use to come back.
    pub(crate) async fn close(self: &Arc<Self>) -> Result<(), crate::CloseError> {
        self.transition(|state, now, fx| state.shut(now, fx));
        let deadline = clock::now() + self.config.drain_timeout;
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            // Register before reading the state, so a close between the
            // read and the await is not missed.
            drained.as_mut().enable();
            let open = self.lock().open();
            if open == 0 {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                let still_open = self.lock().open();
                return if still_open == 0 {
                    Ok(())
                } else {
                    Err(crate::CloseError { still_open })
                };
            }
        }
    }

    /// Applies `f` to the state at the time now and performs its effects.
    pub(crate) fn transition<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut State<M>, Instant, &mut Effects<M>) -> R,
    ) -> R {
        self.transition_at(clock::now(), f)
    }

    /// Applies `f` to the state at `now`, checks the ledger (debug builds)
    /// and performs the effects once the lock is released.
    pub(crate) fn transition_at<R>(
        self: &Arc<Self>,
        now: Instant,
        f: impl FnOnce(&mut State<M>, Instant, &mut Effects<M>) -> R,
    ) -> R {
        let mut fx = Effects::new();
        let r = {
            let mut state = self.lock();
            let r = f(&mut state, now, &mut fx);
            state.check_ledger();
            r
        };
        fx.perform(self);
        r
    }
}

impl<M: Manager> Perform<M> for Arc<Shared<M>> {
    fn close(&self, entry: Box<Entry<M>>) {
        self.spawn_close(*entry);
    }

    fn connect(&self, seat: Seat) {
        self.spawn_connect(seat);
    }

    fn kick_maintenance(&self) {
        self.maintenance.notify_one();
    }

    fn arm_expiry(&self) {
        self.expiry.notify_one();
    }

    fn cancel_revoked(&self, statement: Arc<M::CancelToken>) {
        observe::revoked(&self.config.name);
        self.spawn_cancel(statement);
    }

    fn leak(&self, site: &'static Location<'static>, held: std::time::Duration) {
        observe::leak(&self.config.name, site, held);
    }
}

/// A close in flight, reported done when dropped: when its task finishes,
/// or when the task is dropped unfinished (its runtime shut down), so the
/// ledger never keeps a phantom close.
struct PendingClose<M: Manager> {
    shared: Arc<Shared<M>>,
    seat: Option<Seat>,
}

impl<M: Manager> Drop for PendingClose<M> {
    fn drop(&mut self) {
        let Some(seat) = self.seat.take() else { return };
        let config = &self.shared.config;
        self.shared
            .transition(|state, now, fx| state.closed(now, seat, config, fx));
        self.shared.drained.notify_waiters();
    }
}

/// A connect in flight, reported as abandoned if its task never finishes
/// (the runtime shut down), so the ledger never keeps a phantom connect.
struct PendingConnect<M: Manager> {
    shared: Arc<Shared<M>>,
    /// The connect's seat, until reported.
    seat: Option<Seat>,
}

impl<M: Manager> PendingConnect<M> {
    fn finish(mut self, result: Connected<M>, took: std::time::Duration) {
        let Some(seat) = self.seat.take() else { return };
        let shared = &self.shared;
        let failure = result.as_ref().err().cloned();
        let config = &shared.config;
        let failures_before = shared.transition(|state, now, fx| {
            let before = state.connect_failures();
            state.connected(now, seat, result, config, fx);
            before
        });
        #[cfg(feature = "metrics")]
        shared.metrics.connected(took);
        observe::connected(
            &config.name,
            failure.as_ref(),
            config.connect_timeout,
            took,
            failures_before,
        );
    }
}

impl<M: Manager> Drop for PendingConnect<M> {
    fn drop(&mut self) {
        if let Some(seat) = self.seat.take() {
            self.shared.lock().connect_abandoned(seat);
        }
    }
}

/// The pool's one background task: runs [`State::maintain`] on a timer
/// until the pool is gone, and in between expires waiters at their
/// deadlines, so that a waiter needs no timer of its own.
async fn maintenance<M: Manager>(shared: Weak<Shared<M>>, kick: Arc<Notify>, arm: Arc<Notify>) {
    let _stopped = Stopped(shared.clone());
    let mut maintain_at = clock::now();
    let mut kicked = true;
    loop {
        let wake_at = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let now = clock::now();
            let expiry_at = if kicked || now >= maintain_at {
                let (next, expiry_at) = shared.maintain(now);
                maintain_at = next;
                expiry_at
            } else {
                shared.expire(now)
            };
            expiry_at.map_or(maintain_at, |at| at.min(maintain_at))
        };
        kicked = tokio::select! {
            _ = tokio::time::sleep_until(wake_at) => false,
            _ = kick.notified() => true,
            _ = arm.notified() => false,
        };
    }
}

/// Dropped with the maintenance task: when its runtime shuts down while
/// the pool lives on, the next request starts it again on its own.
struct Stopped<M: Manager>(Weak<Shared<M>>);

impl<M: Manager> Drop for Stopped<M> {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.started.store(false, Ordering::Release);
        }
    }
}
