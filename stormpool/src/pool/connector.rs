//! The connector: connects only for real demand, at most
//! `max_concurrent_connects` at once, each bounded by `connect_timeout` (the
//! task itself is in `shared.rs`, so a cancelled acquire never aborts a
//! connect half-way); full-jitter backoff while connects fail; and, while no
//! connection is established and the last attempt failed, failing requests
//! fast with the real connect error instead of letting them wait for a
//! database that is down.
//!
//! # Noticing that the database is back
//!
//! The backoff paces the attempts the pool makes on its own (refilling
//! `min_idle`, probing a database it knows to be down), up to
//! `connect_backoff_max` apart. Requests do not wait for it: once the last
//! failure is `connect_backoff_min` old, the next request that finds no
//! connection starts an attempt at once and waits for it, while the
//! requests arriving during that attempt fail fast with the last error. So
//! a database that is down costs at most one attempt per
//! `connect_backoff_min` and one request that waits for it, and a database
//! that is back serves the first request after that window.

use std::sync::Arc;

use super::lease::NO_LEASE;
use super::state::{ConnectFailure, Connected, Effects, Entry, Failure, State};
use super::Config;
use crate::clock::Instant;
use crate::manager::Manager;

impl<M: Manager> State<M> {
    /// While the database is known to be down (no connection established,
    /// the last attempt failed), the error to fail a request with at once:
    /// within `connect_backoff_min` of that failure, or while another
    /// attempt is under way. Past the window a request waits for an attempt
    /// of its own (see [`start_connects`](Self::start_connects)).
    pub(crate) fn fail_fast(
        &self,
        now: Instant,
        config: &Config,
    ) -> Option<ConnectFailure<M::Error>> {
        if self.established() > 0 {
            return None;
        }
        let failed_at = self.connector.failed_at?;
        if self.connecting == 0 && now >= failed_at + config.connect_backoff_min {
            return None;
        }
        self.connector.last_failure.clone()
    }

    /// Starts as many connects as real demand calls for, within
    /// `max_size`, `max_concurrent_connects` and the backoff. During the
    /// backoff, waiting requests still get one attempt at a time once the
    /// last failure is `connect_backoff_min` old.
    pub(crate) fn start_connects(&mut self, now: Instant, config: &Config, fx: &mut Effects<M>) {
        if self.closed || self.paused {
            return;
        }
        let down = self.established() == 0 && self.connector.failures > 0;
        let mut wanted = self.waitlist.len() + config.min_idle.saturating_sub(self.idle.len());
        if down {
            // Find out when the database is back even when nobody asks, so
            // that health does not report it unreachable for ever.
            wanted = wanted.max(1);
        }
        let mut cap = config.max_concurrent_connects;
        if self.connector.retry_at.is_some_and(|at| at > now) {
            let probe = !self.waitlist.is_empty()
                && self
                    .connector
                    .failed_at
                    .is_some_and(|at| now >= at + config.connect_backoff_min);
            if !probe {
                return;
            }
            cap = 1;
        }
        while self.connecting < wanted.min(cap) && self.open < self.max_size {
            if self.connecting == 0 {
                self.connect_pending_since = Some(now);
            }
            self.connecting += 1;
            self.open += 1;
            fx.connects += 1;
        }
    }

    /// A connect task finished.
    pub(crate) fn connected(
        &mut self,
        now: Instant,
        result: Connected<M>,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        self.connecting -= 1;
        self.connect_pending_since = (self.connecting > 0).then_some(now);
        match result {
            Ok((conn, cancel)) => {
                self.counters.connects_ok += 1;
                self.connector.failures = 0;
                self.connector.retry_at = None;
                self.connector.failed_at = None;
                self.connector.last_failure = None;
                let expires = config.max_lifetime.map(|life| {
                    let jitter = self.rng.jitter(life / 8);
                    now + (life - jitter)
                });
                let entry = Box::new(Entry {
                    conn,
                    cancel: Arc::new(cancel),
                    lease: NO_LEASE,
                    id: self.next_conn_id,
                    created: now,
                    last_used: now,
                    probe_after: now.checked_add(config.check_interval),
                    handed_at: now,
                    expires,
                    settings: None,
                    key: 0,
                });
                self.next_conn_id += 1;
                self.dispatch(now, entry, fx);
            }
            Err(failure) => {
                self.open -= 1;
                self.counters.connects_failed += 1;
                if matches!(failure, ConnectFailure::TimedOut) {
                    self.counters.connect_timeouts += 1;
                }
                self.connector.failures = self.connector.failures.saturating_add(1);
                let exp = (self.connector.failures - 1).min(20);
                let ceiling = config
                    .connect_backoff_min
                    .saturating_mul(1 << exp)
                    .min(config.connect_backoff_max);
                // Full jitter, but never below the minimum: a retry storm
                // against a database that refuses is what backoff prevents.
                let delay = config.connect_backoff_min.max(self.rng.jitter(ceiling));
                self.connector.retry_at = Some(now + delay);
                self.connector.failed_at = Some(now);
                if self.established() == 0 {
                    // Nothing open could ever come back to the waiters: they
                    // were waiting for this very attempt. Tell them why.
                    let n = self.waitlist.len() as u64;
                    self.counters.connect_errors += n;
                    self.waitlist.fail_all(
                        now,
                        || Failure::Connect(failure.clone()),
                        &mut fx.wakes,
                    );
                }
                self.connector.last_failure = Some(failure);
            }
        }
        self.start_connects(now, config, fx);
    }

    /// A connect task was dropped before it finished (its runtime shut down).
    pub(crate) fn connect_abandoned(&mut self) {
        self.connecting -= 1;
        if self.connecting == 0 {
            self.connect_pending_since = None;
        }
        self.open -= 1;
    }
}
