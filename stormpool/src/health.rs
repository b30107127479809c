//! Health and readiness that tell the truth about the pool.
//!
//! A health check that ignores the pool reports "fine" while every request
//! stalls; one that fails on every symptom takes a serving instance out of
//! rotation. [`Pool::health`](crate::Pool::health) sorts what requests
//! experience by one question, *are requests being served?*
//!
//! * [`Unhealthy`](Health::Unhealthy), not ready: the pool cannot serve.
//!   The database is unreachable (connects fail and no connection is open)
//!   or silent (connects under way for several detector intervals, none
//!   finishing, none open); the pool is **wedged** (requests keep arriving
//!   and none has been handed a connection for several detector intervals,
//!   whether they wait, time out or are shed); or the pool is closed.
//! * [`Degraded`](Health::Degraded), still ready: the pool serves, with
//!   problems. It is overloaded and shedding; connects fail while some
//!   connections still work; the first connect is slow; leases were
//!   revoked (queries stuck past `max_hold`, their slots replaced), revoked
//!   connections are still held, or stuck leases wait for `max_orphans` to
//!   make room; it is paused. None of these fails readiness on its own: a
//!   fleet that evicts its busiest or unluckiest instances turns a partial
//!   problem into an outage. When one of them stops the serving, the wedge
//!   rule says so.
//! * [`Healthy`](Health::Healthy).
//!
//! The check is a snapshot under the pool lock, O(1), safe to call on every
//! probe.

use std::fmt;
use std::time::Duration;

/// The pool's health; see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Everything works.
    Healthy,
    /// The pool serves, with these limitations; still ready.
    Degraded(Vec<Reason>),
    /// The pool cannot serve, for these reasons; not ready.
    Unhealthy(Vec<Reason>),
}

impl Health {
    /// Whether an instance with this pool should receive traffic (a
    /// readiness probe): anything but [`Unhealthy`](Health::Unhealthy).
    pub fn is_ready(&self) -> bool {
        !matches!(self, Health::Unhealthy(_))
    }

    /// Whether nothing at all is wrong.
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy)
    }

    /// The reasons for a degraded or unhealthy state (none when healthy).
    pub fn reasons(&self) -> &[Reason] {
        match self {
            Health::Healthy => &[],
            Health::Degraded(r) | Health::Unhealthy(r) => r,
        }
    }

    pub(crate) fn from_reasons(unhealthy: Vec<Reason>, degraded: Vec<Reason>) -> Health {
        if !unhealthy.is_empty() {
            let mut all = unhealthy;
            all.extend(degraded);
            Health::Unhealthy(all)
        } else if !degraded.is_empty() {
            Health::Degraded(degraded)
        } else {
            Health::Healthy
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (state, reasons) = match self {
            Health::Healthy => return f.write_str("healthy"),
            Health::Degraded(r) => ("degraded", r),
            Health::Unhealthy(r) => ("unhealthy", r),
        };
        write!(f, "{state}: ")?;
        for (i, reason) in reasons.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{reason}")?;
        }
        Ok(())
    }
}

/// One finding of the health check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The pool was closed. Unhealthy.
    Closed,
    /// Connects fail and no connection is open. Unhealthy.
    DatabaseUnreachable {
        /// Consecutive failed connects.
        failures: u32,
    },
    /// Connects have been under way for `pending` with none finishing,
    /// and no connection is open: the server accepts connections and does
    /// not answer (or is very slow). Unhealthy.
    DatabaseNotResponding {
        /// Since the last connect finished, or the first one started.
        pending: Duration,
    },
    /// The first connects are under way and none has finished yet, for
    /// longer than a maintenance tick; nothing is open to serve with.
    /// Degraded: becomes `DatabaseNotResponding` after a few detector
    /// intervals.
    ConnectPending {
        /// Since the last connect finished, or the first one started.
        pending: Duration,
    },
    /// Requests keep arriving and none has been handed a connection for
    /// `stalled` (they wait, time out or are shed). Unhealthy.
    Wedged {
        /// Requests waiting now.
        waiting: usize,
        /// Since the first request went unserved.
        stalled: Duration,
    },
    /// Leases were revoked recently: queries are stuck past `max_hold`
    /// (their slots were replaced). Degraded.
    LeasesRevoked {
        /// Revocations since the pool was built.
        revoked: u64,
        /// Revoked connections still held.
        orphans: usize,
    },
    /// Leases held past `max_hold` that could not be revoked because
    /// `max_orphans` revoked connections are still held. Degraded.
    StuckLeases {
        /// Leases past `max_hold`, not revoked.
        stuck: usize,
        /// Revoked connections still held.
        orphans: usize,
    },
    /// Revoked connections are still held by their requests (the slots
    /// were already replaced). Degraded.
    Orphans {
        /// How many.
        orphans: usize,
    },
    /// The overload detector reports a standing queue; requests are being
    /// shed. Degraded.
    Overloaded {
        /// Requests shed since the pool was built.
        shed: u64,
        /// The age of the oldest waiting request.
        queue_delay: Duration,
    },
    /// Connects fail, though some connections still work. Degraded.
    ConnectFailing {
        /// Consecutive failed connects.
        failures: u32,
    },
    /// The pool was paused. Degraded.
    Paused,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Closed => f.write_str("pool closed"),
            Reason::DatabaseUnreachable { failures } => {
                write!(
                    f,
                    "database unreachable ({failures} connects failed in a row)"
                )
            }
            Reason::DatabaseNotResponding { pending } => {
                write!(
                    f,
                    "database not responding: connects under way for {pending:?}, none finished"
                )
            }
            Reason::ConnectPending { pending } => {
                write!(f, "no connection yet: connecting for {pending:?}")
            }
            Reason::Wedged { waiting, stalled } => {
                write!(
                    f,
                    "wedged: no request served for {stalled:?} ({waiting} waiting)"
                )
            }
            Reason::LeasesRevoked { revoked, orphans } => {
                write!(f, "leases revoked for holding past max_hold ({revoked} in all, {orphans} still held)")
            }
            Reason::StuckLeases { stuck, orphans } => {
                write!(
                    f,
                    "{stuck} leases stuck past max_hold, not revoked: {orphans} revoked ones still held"
                )
            }
            Reason::Orphans { orphans } => write!(f, "{orphans} revoked connections still held"),
            Reason::Overloaded { shed, queue_delay } => {
                write!(
                    f,
                    "overloaded: queue delay {queue_delay:?}, {shed} requests shed"
                )
            }
            Reason::ConnectFailing { failures } => {
                write!(f, "connects failing ({failures} in a row)")
            }
            Reason::Paused => f.write_str("pool paused"),
        }
    }
}
