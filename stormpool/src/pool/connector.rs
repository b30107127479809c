//! The connector: connects only for real demand, at most
//! `max_concurrent_connects` at once, each bounded by `connect_timeout` (the
//! task itself is in `shared.rs`, so a cancelled acquire never aborts a
//! connect half-way); full-jitter backoff while connects fail; and, while no
//! connection is established and the last attempt failed, failing requests
//! fast with the real connect error instead of letting them wait for a
//! database that is down.

use std::sync::Arc;

use super::lease::NO_LEASE;
use super::state::{ConnectFailure, Connected, Effects, Entry, Failure, State};
use super::Config;
use crate::clock::Instant;
use crate::manager::Manager;

impl<M: Manager> State<M> {
    /// While the database is down (no connection established, the last
    /// attempt failed, the next not yet due), the error to fail a request
    /// with at once.
    pub(crate) fn fail_fast(&self, now: Instant) -> Option<ConnectFailure<M::Error>> {
        if self.established() > 0 || self.connector.retry_at.is_none_or(|at| at <= now) {
            return None;
        }
        self.connector.last_failure.clone()
    }

    /// Starts as many connects as real demand calls for, within
    /// `max_size`, `max_concurrent_connects` and the backoff.
    pub(crate) fn start_connects(&mut self, now: Instant, config: &Config, fx: &mut Effects<M>) {
        if self.closed || self.paused || self.connector.retry_at.is_some_and(|at| at > now) {
            return;
        }
        let wanted = self.waitlist.len() + config.min_idle.saturating_sub(self.idle.len());
        while self.connecting < wanted
            && self.connecting < config.max_concurrent_connects
            && self.open < self.max_size
        {
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
        match result {
            Ok((conn, cancel)) => {
                self.counters.connects_ok += 1;
                self.connector.failures = 0;
                self.connector.retry_at = None;
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
        self.open -= 1;
    }
}
