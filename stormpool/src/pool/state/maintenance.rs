//! The maintenance pass, run by the pool's one background task: expiring
//! waiters whose deadline has come (also run on its own, at the earliest
//! deadline, by the same task), feeding
//! the overload detectors, the lease watchdog, closing idle connections past
//! their idle timeout or lifetime, keeping `min_idle`, retrying connects
//! after backoff.

use std::time::Duration;

use super::{Effects, State};
use crate::clock::Instant;
use crate::health::{Health, Reason};
use crate::manager::Manager;
use crate::pool::stats::CloseCause;
use crate::pool::Config;

impl<M: Manager> State<M> {
    /// Periodic work: expire waiters, age out idle connections, keep
    /// `min_idle`, retry connects after backoff. Returns when to run again.
    pub(crate) fn maintain(
        &mut self,
        now: Instant,
        config: &Config,
        fx: &mut Effects<M>,
    ) -> Instant {
        self.latest_now = self.latest_now.max(now);
        self.expire(now, fx);

        self.admission.timer_sample();
        self.admission_tick(now, config.max_shed_per_tick, fx);
        self.serve_idle(now, fx);
        let lease_due = self.watchdog(now, config, fx);

        if !self.closed {
            let keep = config.min_idle;
            let expired = self
                .idle
                .evict(0, |e| e.expires.is_some_and(|at| at <= now));
            for entry in expired {
                self.close(entry, CloseCause::Lifetime, fx);
            }
            if let Some(timeout) = config.idle_timeout {
                let stale = self
                    .idle
                    .evict(keep, |e| now.duration_since(e.last_used) >= timeout);
                for entry in stale {
                    self.close(entry, CloseCause::IdleTimeout, fx);
                }
            }
            self.start_connects(now, config, fx);
        }

        let mut next = if !self.waitlist.is_empty() || self.ledger.connecting() > 0 {
            now + config.maintenance_tick
        } else {
            let mut next = now + Duration::from_secs(1);
            if let Some(at) = self.connector.retry_at().filter(|at| *at > now) {
                next = next.min(at);
            }
            next
        };
        if let Some(due) = lease_due {
            // Revocation is due within one tick of `max_hold`.
            next = next.min(due.max(now + config.maintenance_tick / 2));
        }
        next
    }

    /// The health check; see [`health`](crate::health).
    ///
    /// Unhealthy means the pool cannot serve: closed, the database down or
    /// silent while no connection is established, or requests arriving and
    /// none served for a while. Everything else that is wrong, however
    /// alarming (revoked leases, stuck ones, overload), is Degraded as long
    /// as requests are being served.
    pub(crate) fn health(&self, now: Instant, config: &Config) -> Health {
        // "Several intervals" of the detector: long enough not to flag a
        // burst, short enough that a probe sees a wedge within a second.
        let window = config
            .codel
            .map_or(Duration::from_millis(300), |c| c.interval * 3);
        let mut unhealthy = Vec::new();
        let mut degraded = Vec::new();
        if self.closed {
            unhealthy.push(Reason::Closed);
        }
        let failures = self.connector.failures();
        let established = self.ledger.established();
        let pending = self.connector.pending_for(now);
        if failures > 0 {
            if established == 0 {
                unhealthy.push(Reason::DatabaseUnreachable { failures });
            } else {
                degraded.push(Reason::ConnectFailing { failures });
            }
        } else if let Some(pending) = pending.filter(|_| established == 0) {
            // Connects under way and none finishing, nothing to serve with:
            // a server that accepts connections and never answers looks
            // like this, and so does the first connect of a slow one.
            if pending >= window {
                unhealthy.push(Reason::DatabaseNotResponding { pending });
            } else if pending >= config.maintenance_tick {
                degraded.push(Reason::ConnectPending { pending });
            }
        }
        // Wedged: requests keep coming and none has been served for a
        // while, whether they wait, time out or are shed.
        if let Some(since) = self.starved_since {
            let stalled = now.saturating_duration_since(since);
            if stalled >= window && now.saturating_duration_since(self.last_starved) < window {
                unhealthy.push(Reason::Wedged {
                    waiting: self.waitlist.len(),
                    stalled,
                });
            }
        }
        let orphans = self.ledger.orphans_held();
        if self
            .last_revoke
            .is_some_and(|at| now.saturating_duration_since(at) < window)
        {
            degraded.push(Reason::LeasesRevoked {
                revoked: self.counters.revoked,
                orphans,
            });
        } else if orphans > 0 {
            degraded.push(Reason::Orphans { orphans });
        }
        if self.stuck_leases > 0 {
            degraded.push(Reason::StuckLeases {
                stuck: self.stuck_leases,
                orphans,
            });
        }
        if self.is_overloaded() {
            degraded.push(Reason::Overloaded {
                shed: self.counters.shed,
                queue_delay: self.waitlist.head_age(now).unwrap_or_default(),
            });
        }
        if self.paused {
            degraded.push(Reason::Paused);
        }
        Health::from_reasons(unhealthy, degraded)
    }

    /// The lease watchdog: revokes connections held past `max_hold` (within
    /// `max_orphans`), reports those past `leak_threshold`. Returns when the
    /// next lease reaches a limit.
    fn watchdog(&mut self, now: Instant, config: &Config, fx: &mut Effects<M>) -> Option<Instant> {
        if self.leases.len() == 0 {
            self.stuck_leases = 0;
            return None;
        }
        let room = config.max_orphans.saturating_sub(self.ledger.orphans());
        let sweep = self
            .leases
            .sweep(now, config.max_hold, config.leak_threshold, room);
        let revoked = !sweep.revoked.is_empty();
        for statement in sweep.revoked {
            // The slot is freed for a replacement; the connection lives on
            // as an orphan until its holder lets go.
            self.ledger.revoke();
            self.counters.revoked += 1;
            self.last_revoke = Some(now);
            fx.cancel_revoked(statement);
        }
        if revoked {
            self.start_connects(now, config, fx);
        }
        self.counters.revocations_skipped += sweep.skipped as u64;
        self.stuck_leases = sweep.skipped;
        self.counters.leaks += sweep.leaked.len() as u64;
        for (site, held) in sweep.leaked {
            fx.leak(site, held);
        }
        sweep.next
    }
}
