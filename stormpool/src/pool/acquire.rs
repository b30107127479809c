//! The request's path: taking a connection (at once, or after waiting in
//! the queue), making it ready (a probe, or the requested settings), and
//! handing it over in its guard.

use std::future::{poll_fn, Future};
use std::panic::Location;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::conn::Conn;
use super::options::AcquireOptions;
use super::shared::Shared;
use super::state::{settings_id, Ask, Checkout, Entry, Failure, Ticket};
use super::stats::CloseCause;
use crate::clock::{self, Instant};
use crate::error::AcquireError;
use crate::manager::Manager;

impl<M: Manager> Shared<M> {
    /// Takes a connection for a request, waiting if needed, then probes it
    /// and brings it to the requested settings.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        opts: &AcquireOptions,
        site: &'static Location<'static>,
    ) -> Result<Conn<M>, AcquireError<M::Error>> {
        self.ensure_started();
        let mut now = clock::now();
        let start = now;
        let deadline = opts.when(now, self.config.acquire_timeout);
        let ask = Ask {
            deadline,
            priority: opts.priority,
            key: opts.key,
            settings: opts.settings.as_ref(),
            site,
        };
        loop {
            let config = &self.config;
            let step =
                self.transition_at(now, |state, now, fx| state.checkout(now, &ask, config, fx));
            let entry = match step {
                Checkout::Ready(entry) => entry,
                Checkout::Wait(ticket) => {
                    let (entry, collected_at) = self.wait(ticket).await?;
                    now = collected_at;
                    entry
                }
                Checkout::Reject(e) => return Err(e),
            };
            let mut conn = Conn::new(self.clone(), entry, now);
            match self.readiness(&mut conn, opts, now) {
                Readiness::Ready => return Ok(self.hand_over(conn, opts, start)),
                Readiness::Broken => {
                    conn.set_close(Some(CloseCause::Broken));
                    drop(conn);
                    now = clock::now();
                    continue;
                }
                Readiness::RoundTrip => {}
            }
            let deadline = deadline.resolve();
            // Boxed: the round trip is the rare path, and the manager's futures
            // would otherwise size every acquire future.
            match Box::pin(self.round_trip(&mut conn, opts, now, deadline)).await {
                Ok(()) => {
                    // The round trips may have finished at the deadline: a
                    // request out of time does not get the connection, which
                    // goes back to the pool in good order.
                    if clock::now() < deadline {
                        return Ok(self.hand_over(conn, opts, start));
                    }
                    drop(conn);
                    self.lock().count_timeout();
                    return Err(AcquireError::Timeout);
                }
                // The connection was unusable; the guard closes it on drop
                // and the request tries the next one, within its deadline.
                Err(None) => now = clock::now(),
                Err(Some(e)) => return Err(e),
            }
        }
    }

    /// Waits for a queued request's hand-off.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future removes the waiter from the queue in O(1); a
    /// connection already handed to it goes to the next live waiter or the
    /// idle store.
    async fn wait(
        self: &Arc<Self>,
        ticket: Ticket<M>,
    ) -> Result<(Box<Entry<M>>, Instant), AcquireError<M::Error>> {
        let deadline = ticket.deadline;
        let mut waiter = Waiter {
            shared: self,
            ticket,
            done: false,
        };
        // The pool's timer fails the waiter at its deadline. Without it
        // (no runtime was found to start it on), the waiter keeps its own.
        let mut timer = (!self.timer_runs()).then(|| Box::pin(tokio::time::sleep_until(deadline)));
        poll_fn(|cx| match waiter.poll(cx) {
            Poll::Ready(collected) => Poll::Ready(collected),
            // Arms the timer so the waiter wakes at its deadline; one that
            // has fired means the deadline passed: look under the lock.
            Poll::Pending
                if timer
                    .as_mut()
                    .is_some_and(|t| t.as_mut().poll(cx).is_ready()) =>
            {
                waiter.timer_fired()
            }
            Poll::Pending => Poll::Pending,
        })
        .await
        .map_err(AcquireError::from)
    }

    /// Gives the connection to the request, telling the manager its
    /// deadline.
    fn hand_over(&self, mut conn: Conn<M>, opts: &AcquireOptions, start: Instant) -> Conn<M> {
        #[cfg(feature = "metrics")]
        self.metrics.waited(start);
        #[cfg(not(feature = "metrics"))]
        let _ = start;
        let deadline = opts
            .own_deadline()
            .filter(|_| self.config.propagate_deadline);
        self.manager
            .on_checkout(&mut conn.entry_mut().conn, deadline);
        conn
    }

    /// What a checked-out connection needs before the request may use it.
    /// Synchronous, so the common case costs no future.
    fn readiness(&self, conn: &mut Conn<M>, opts: &AcquireOptions, now: Instant) -> Readiness {
        if self.manager.is_broken(&mut conn.entry_mut().conn) {
            return Readiness::Broken;
        }
        let entry = conn.entry_mut();
        if settings_id(opts.settings.as_ref()) != settings_id(entry.settings.as_ref())
            || entry.probe_after.is_some_and(|due| now >= due)
        {
            Readiness::RoundTrip
        } else {
            Readiness::Ready
        }
    }

    /// Probes the connection (idle past `check_interval`), or resets it and
    /// brings its session to the requested settings. `Err(None)`: the
    /// connection is unusable and marked to be closed; try another one.
    async fn round_trip(
        &self,
        conn: &mut Conn<M>,
        opts: &AcquireOptions,
        now: Instant,
        deadline: Instant,
    ) -> Result<(), Option<AcquireError<M::Error>>> {
        let manager = &self.manager;
        let bound = deadline.min(now + self.config.check_timeout);
        let wanted = opts.settings.as_ref();
        let carried = conn.entry_mut().settings.is_some();
        // Until the round trips below finish, the session's state is
        // unknown: a request dropped in the middle closes the connection.
        conn.set_close(Some(CloseCause::Tainted));
        let entry = conn.entry_mut();
        let outcome = async {
            if settings_id(wanted) == settings_id(entry.settings.as_ref()) {
                self.checks.fetch_add(1, Ordering::Relaxed);
                return manager.check(&mut entry.conn).await.map_err(|_| None);
            }
            if carried {
                manager.reset(&mut entry.conn).await.map_err(|_| None)?;
                entry.settings = None;
            }
            if let Some(settings) = wanted {
                if let Err(e) = manager.apply(&mut entry.conn, settings).await {
                    self.apply_errors.fetch_add(1, Ordering::Relaxed);
                    return Err(Some(AcquireError::Apply(e)));
                }
                entry.settings = Some(settings.clone());
            }
            Ok(())
        };
        match tokio::time::timeout_at(bound, outcome).await {
            Ok(Ok(())) => {
                conn.entry_mut()
                    .touch(clock::now(), self.config.check_interval);
                conn.set_close(None);
                Ok(())
            }
            Ok(Err(e)) => {
                conn.set_close(Some(CloseCause::CheckFailed));
                Err(e)
            }
            Err(_) if bound >= deadline => {
                // The request ran out of time, not the probe: fail it. The
                // connection is closed (Tainted) since a round trip is
                // still in flight on it.
                Err(Some(AcquireError::Timeout))
            }
            Err(_) => {
                conn.set_close(Some(CloseCause::CheckFailed));
                Err(None)
            }
        }
    }
}

/// What a checked-out connection needs before use.
enum Readiness {
    Ready,
    Broken,
    RoundTrip,
}

/// How close to its deadline a waiter must have been granted its connection
/// for the time it is collected at to be checked against the clock.
const LATE_CHECK_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// A queued request, as seen from its future.
struct Waiter<'a, M: Manager> {
    shared: &'a Arc<Shared<M>>,
    ticket: Ticket<M>,
    /// The outcome was collected; nothing to clean up on drop.
    done: bool,
}

/// A hand-off as the request goes on with it: the connection and the time
/// it was collected at, or why there is none.
type Outcome<M> = Result<(Box<Entry<M>>, Instant), Failure<<M as Manager>::Error>>;

impl<M: Manager> Waiter<'_, M> {
    /// Looks into the cell, without the pool lock, leaving the task's
    /// waker there if nothing has been written yet.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Outcome<M>> {
        match self.ticket.cell.poll(cx.waker()) {
            None => Poll::Pending,
            Some(outcome) => Poll::Ready(self.collect(outcome)),
        }
    }

    /// Its own timer fired: looks again under the pool lock, where the
    /// deadline is decided.
    fn timer_fired(&mut self) -> Poll<Outcome<M>> {
        let ticket = &self.ticket;
        match self
            .shared
            .transition(|state, now, fx| state.waiter_timer_fired(ticket, now, fx))
        {
            None => Poll::Pending,
            Some(outcome) => Poll::Ready(self.collect(outcome)),
        }
    }

    /// Takes the outcome written into the cell. A connection found past the
    /// deadline is not taken: the request has given up, and the connection
    /// moves on.
    ///
    /// The grant was made before the deadline (a returner never grants to
    /// an expired waiter), at `handed_at`, a time read from the clock; what
    /// may have passed since is the wait for this task to run. Only a grant
    /// that left less than [`LATE_CHECK_WITHIN`] to the deadline is checked
    /// against the clock: a waiter with more to spare is late only if its
    /// runtime stalled for that long. The request goes on with the grant's
    /// time then, which is when the connection became its own.
    fn collect(&mut self, outcome: Result<Box<Entry<M>>, Failure<M::Error>>) -> Outcome<M> {
        self.done = true;
        let entry = outcome?;
        let deadline = self.ticket.deadline;
        if deadline.saturating_duration_since(entry.handed_at) > LATE_CHECK_WITHIN {
            let granted = entry.handed_at;
            return Ok((entry, granted));
        }
        let now = clock::now();
        if now < deadline {
            return Ok((entry, now));
        }
        Err(self
            .shared
            .transition_at(now, |state, now, fx| state.collected_late(now, entry, fx)))
    }
}

impl<M: Manager> Drop for Waiter<'_, M> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let ticket = &self.ticket;
        self.shared
            .transition(|state, now, fx| state.drop_waiter(ticket, now, fx));
    }
}
