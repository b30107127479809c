//! What the pool reports to the outside: metrics through the `metrics`
//! facade (feature `metrics`) and events through `tracing` (feature
//! `tracing`). Without the features the pool reports nothing and pays
//! nothing. This page documents the series and events; there is nothing to
//! call here (`Pool::publish_metrics`, with the feature,
//! refreshes the series on demand).
//!
//! # Metrics
//!
//! Every series carries the label `pool` (the pool's [`name`](crate::Config::name)).
//! Counters and gauges are published from the pool's own counters by the
//! maintenance task (at least once a second, every tick while requests
//! wait), so the hot path pays nothing for them; the three histograms are
//! recorded as events happen. Install the recorder before building the pool.
//! A [`Gate`](crate::gate::Gate) reports the same series, its permits
//! as connections, under its own name (`"gate"` unless named).
//!
//! | name | kind | labels | meaning |
//! |---|---|---|---|
//! | `stormpool_acquires_total` | counter | `outcome`: `direct`, `waited`, `timeout`, `shed`, `wedged`, `rejected_waiters`, `rejected_key_queue`, `rejected_closed`, `connect_error`, `apply_error`, `cancelled` | how acquires ended |
//! | `stormpool_handoffs_total` | counter | | connections handed to a waiting request |
//! | `stormpool_dead_handoffs_total` | counter | | handed to a request that had given up: must stay 0 |
//! | `stormpool_evicted_expired_total` | counter | | expired waiters a returner removed from its way |
//! | `stormpool_connects_total` | counter | `outcome`: `ok`, `failed`, `timeout` | connects |
//! | `stormpool_closes_total` | counter | `cause`: `broken`, `tainted`, `check_failed`, `lifetime`, `idle`, `resize`, `pool_closed`, `revoked`, `drain_failed` | connections closed |
//! | `stormpool_revoked_total` | counter | | leases revoked by the watchdog |
//! | `stormpool_leaks_total` | counter | | leases reported past `leak_threshold` |
//! | `stormpool_abandoned_total` | counter | `outcome`: `cancelled`, `recycled`, `drained` | connections returned with a statement running (cancelled) or session state to undo (recycled), and those put back in service |
//! | `stormpool_connections` | gauge | `state`: `idle`, `in_use`, `connecting`, `draining`, `closing`, `orphaned` | connections by state |
//! | `stormpool_max_size` | gauge | | the current `max_size` |
//! | `stormpool_waiting` | gauge | `class`: `critical`, `normal`, `sheddable`, `background` | waiting requests |
//! | `stormpool_held` | gauge | | requests held back by their key's valve |
//! | `stormpool_overloaded` | gauge | | 1 while a detector reports a standing queue |
//! | `stormpool_queue_delay_seconds` | gauge | | age of the oldest waiting request |
//! | `stormpool_ready` | gauge | | 1 when [`Pool::health`](crate::Pool::health) is ready |
//! | `stormpool_acquire_wait_seconds` | histogram | | from `get` to the connection, for acquires that got one |
//! | `stormpool_hold_seconds` | histogram | | how long requests held their connection |
//! | `stormpool_connect_seconds` | histogram | | how long connects took, success or not |
//!
//! # Events
//!
//! Under the target `stormpool`: `warn` when a connect fails, a lease is
//! revoked or a leak is reported; `info` when connects succeed again after
//! failures and when a pool enters or leaves overload. Connect tasks run in a
//! `stormpool.connect` span.

use std::panic::Location;
use std::time::Duration;

use super::state::ConnectFailure;

/// A connect of the pool `pool` finished after `took`: failed with
/// `failure`, or succeeded after `failures_before` consecutive failures.
pub(crate) fn connected<E: std::error::Error + 'static>(
    pool: &str,
    failure: Option<&ConnectFailure<E>>,
    connect_timeout: Duration,
    took: Duration,
    failures_before: u32,
) {
    #[cfg(feature = "tracing")]
    match failure {
        Some(ConnectFailure::Error(e)) => tracing::warn!(
            target: "stormpool",
            pool,
            error = %Chain(&**e),
            took_ms = took.as_millis() as u64,
            "connect failed"
        ),
        Some(ConnectFailure::TimedOut) => tracing::warn!(
            target: "stormpool",
            pool,
            timeout_ms = connect_timeout.as_millis() as u64,
            "connect timed out"
        ),
        None if failures_before > 0 => tracing::info!(
            target: "stormpool",
            pool,
            failures = failures_before,
            "connect succeeded after failures"
        ),
        None => {}
    }
    let _ = (pool, failure, connect_timeout, took, failures_before);
}

/// An error with its causes: "a: b: c".
#[cfg(feature = "tracing")]
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

#[cfg(feature = "tracing")]
impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// A lease was revoked: its statement is being cancelled, its slot replaced.
pub(crate) fn revoked(pool: &str) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "stormpool",
        pool,
        "connection held past max_hold revoked: statement cancelled, slot replaced"
    );
    let _ = pool;
}

/// A lease was held past `leak_threshold`.
pub(crate) fn leak(pool: &str, site: &'static Location<'static>, held: Duration) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "stormpool",
        pool,
        acquired_at = %site,
        held_ms = held.as_millis() as u64,
        "connection held past the leak threshold"
    );
    let _ = (pool, site, held);
}

/// The pool entered or left overload.
pub(crate) fn overload_changed(pool: &str, overloaded: bool) {
    #[cfg(feature = "tracing")]
    if overloaded {
        tracing::info!(target: "stormpool", pool, "overloaded: shedding, serving newest first");
    } else {
        tracing::info!(target: "stormpool", pool, "no longer overloaded");
    }
    let _ = (pool, overloaded);
}

#[cfg(feature = "metrics")]
pub(crate) use export::Metrics;

#[cfg(feature = "metrics")]
mod export {
    use metrics::{counter, gauge, histogram, Histogram};

    use crate::clock::{self, Instant};
    use crate::pool::{Priority, Status};

    /// The pool's histogram handles and its name, for the published series.
    pub(crate) struct Metrics {
        pool: String,
        acquire_wait: Histogram,
        hold: Histogram,
        connect_seconds: Histogram,
    }

    impl Metrics {
        pub(crate) fn new(pool: &str) -> Self {
            let label = pool.to_owned();
            Metrics {
                acquire_wait: histogram!("stormpool_acquire_wait_seconds", "pool" => label.clone()),
                hold: histogram!("stormpool_hold_seconds", "pool" => label.clone()),
                connect_seconds: histogram!("stormpool_connect_seconds", "pool" => label.clone()),
                pool: label,
            }
        }

        /// An acquire that started at `start` got its connection now.
        pub(crate) fn waited(&self, start: Instant) {
            self.acquire_wait
                .record(clock::now().saturating_duration_since(start).as_secs_f64());
        }

        /// A connect finished after `took`.
        pub(crate) fn connected(&self, took: std::time::Duration) {
            self.connect_seconds.record(took.as_secs_f64());
        }

        /// A connection acquired at `acquired` came back now.
        pub(crate) fn held(&self, acquired: Instant) {
            self.hold.record(
                clock::now()
                    .saturating_duration_since(acquired)
                    .as_secs_f64(),
            );
        }

        /// Publishes the counters and gauges of a snapshot.
        pub(crate) fn export(&self, s: &Status, ready: bool) {
            let pool = &self.pool;
            let c = &s.counters;
            let acquires = [
                ("direct", c.acquired_direct),
                ("waited", c.acquired_waited),
                ("timeout", c.timed_out),
                ("shed", c.shed),
                ("wedged", c.wedged),
                ("rejected_waiters", c.rejected_waiters),
                ("rejected_key_queue", c.rejected_key_queue),
                ("rejected_closed", c.rejected_closed),
                ("connect_error", c.connect_errors),
                ("apply_error", c.apply_errors),
                ("cancelled", c.cancelled),
            ];
            for (outcome, n) in acquires {
                counter!("stormpool_acquires_total", "pool" => pool.clone(), "outcome" => outcome)
                    .absolute(n);
            }
            counter!("stormpool_handoffs_total", "pool" => pool.clone()).absolute(c.handoffs);
            counter!("stormpool_dead_handoffs_total", "pool" => pool.clone())
                .absolute(c.dead_handoffs);
            counter!("stormpool_evicted_expired_total", "pool" => pool.clone())
                .absolute(c.evicted_expired);
            let connects = [
                ("ok", c.connects_ok),
                ("failed", c.connects_failed - c.connect_timeouts),
                ("timeout", c.connect_timeouts),
            ];
            for (outcome, n) in connects {
                counter!("stormpool_connects_total", "pool" => pool.clone(), "outcome" => outcome)
                    .absolute(n);
            }
            let closes = [
                ("broken", c.closed_broken),
                ("tainted", c.closed_tainted),
                ("check_failed", c.closed_check_failed),
                ("lifetime", c.closed_lifetime),
                ("idle", c.closed_idle),
                ("resize", c.closed_resize),
                ("pool_closed", c.closed_pool),
                ("revoked", c.closed_revoked),
                ("drain_failed", c.closed_drain_failed),
            ];
            for (cause, n) in closes {
                counter!("stormpool_closes_total", "pool" => pool.clone(), "cause" => cause)
                    .absolute(n);
            }
            counter!("stormpool_revoked_total", "pool" => pool.clone()).absolute(c.revoked);
            counter!("stormpool_leaks_total", "pool" => pool.clone()).absolute(c.leaks);
            counter!("stormpool_abandoned_total", "pool" => pool.clone(), "outcome" => "cancelled")
                .absolute(c.cancelled_on_return);
            counter!("stormpool_abandoned_total", "pool" => pool.clone(), "outcome" => "recycled")
                .absolute(c.recycled_on_return);
            counter!("stormpool_abandoned_total", "pool" => pool.clone(), "outcome" => "drained")
                .absolute(c.drained);

            let states = [
                ("idle", s.idle),
                ("in_use", s.in_use),
                ("connecting", s.connecting),
                ("draining", s.draining),
                ("closing", s.closing),
                ("orphaned", s.orphans),
            ];
            for (state, n) in states {
                gauge!("stormpool_connections", "pool" => pool.clone(), "state" => state)
                    .set(n as f64);
            }
            gauge!("stormpool_max_size", "pool" => pool.clone()).set(s.max_size as f64);
            for class in Priority::ALL {
                gauge!("stormpool_waiting", "pool" => pool.clone(), "class" => class.as_str())
                    .set(s.waiting_by_class[class.index()] as f64);
            }
            gauge!("stormpool_held", "pool" => pool.clone()).set(s.held as f64);
            gauge!("stormpool_overloaded", "pool" => pool.clone()).set(if s.overloaded {
                1.0
            } else {
                0.0
            });
            gauge!("stormpool_queue_delay_seconds", "pool" => pool.clone())
                .set(s.queue_delay.as_secs_f64());
            gauge!("stormpool_ready", "pool" => pool.clone()).set(if ready { 1.0 } else { 0.0 });
        }
    }
}
