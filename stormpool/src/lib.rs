#![doc = include_str!("../README.md")]
//!
//! A [`Pool`] hands out connections made by a [`Manager`]. Beyond pooling,
//! the pool is an admission controller: it decides, under overload, which
//! requests to serve and which to reject early.
//!
//! # Behaviour under overload
//!
//! What a caller sees when more requests arrive than the database can serve,
//! measured on the simulated database under paused time (16 connections,
//! 2 ms queries, open-loop Poisson arrivals, 50 ms deadlines; see the
//! `admission_*` tests and the storm lab):
//!
//! * **Nobody gets a connection after giving up.** A connection that becomes
//!   free goes to the next *live* waiter; expired waiters met on the way are
//!   removed and failed with [`AcquireError::Timeout`], a dropped request
//!   leaves the queue in O(1), and a connection handed to a request that then
//!   gives up is passed on. The counter of such "dead hand-offs" is 0 in every
//!   test, storm and stress run.
//! * **A queue that will be served is not shed.** 256 workers on 16
//!   connections with time to spare queue as they would with any pool, and
//!   none is rejected. A class is treated as overloaded only when shedding
//!   helps: serving it oldest first would hand its newest waiter a
//!   connection too late (judged from the waiters ahead and the measured
//!   service rate, at once, with no interval to wait), or a standing queue
//!   keeps growing, or nobody is served at all.
//! * **Goodput stays near capacity.** An overloaded class is served newest
//!   first, and its waiters older than 10 ms are rejected with
//!   [`AcquireError::Shed`] (lowest class first, at most a bounded number per
//!   tick, never [`Priority::Critical`]). At 2x capacity the pool keeps all
//!   of its capacity as goodput (a FIFO pool keeps under 5%); with three
//!   immediate client retries per request, the same; at 0.9x nothing is
//!   shed.
//! * **Rejection is early and cheap.** `Shed { retry_after }`,
//!   `TooManyWaiters` (`max_waiters`), `KeyQueueFull` (per-key queue cap) and
//!   `Closed` are returned before any connection work, each counted.
//! * **Critical work is protected.** With half the requests `Critical` at 2x,
//!   every critical request is served and the shedding falls on the lower
//!   class. Critical waiters leave only by their own deadline.
//! * **One tenant cannot crowd out the others.** Within a class, waiting
//!   requests are served round-robin across fairness keys, and
//!   `max_in_flight_per_key` holds a key's surplus outside the queue and the
//!   detector's view.
//! * **A wedged pool recovers and says so.** The detector also runs on a
//!   timer, so a pool where every query hangs still rejects early, with
//!   [`AcquireError::Wedged`] rather than as overload; with `max_hold`
//!   stuck connections are revoked (their statements cancelled on the
//!   server, their slots replaced); [`Pool::health`] reports a pool that
//!   serves nobody (wedged, database unreachable or silent) as unhealthy,
//!   and shedding or revocations while it serves as degraded.
//! * **Dead work does not pile up on the server.** A connection returned with
//!   a statement still running is cancelled and drained before anyone else
//!   gets it, and a request's own deadline can bound its statements on the
//!   server.
//!
//! The detector's defaults (target 5 ms, interval 100 ms, slough age twice
//! the target) are RFC 8289's and folly's; [`admission`] argues the rule,
//! and the tests measure the false-positive rate at 0.9x load (none shed).
//!
//! # Map
//!
//! [`pool`] (the pool, its waitlist, idle store, connector, lease watchdog),
//! [`admission`] (the detector and the serving rules), [`gate`] (the
//! same admission control for any critical section), [`health`], [`clock`]
//! (tokio's clock and the jitter generator), [`statements`] (for managers
//! that track statements), `sim` (feature `sim`). Retries, retry budgets
//! and bounded fan-out are in the `stormpool-retry` crate, built on this one.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod admission;
pub mod clock;
mod error;
pub mod gate;
pub mod health;
mod manager;
pub mod pool;
mod settings;
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub mod sim;
pub mod statements;
mod sync;

pub use error::{AcquireError, CloseError, ConfigError};
pub use health::{Health, Reason};
pub use manager::Manager;
pub use pool::{AcquireOptions, Builder, Config, Conn, Counters, Pool, Priority, Status};
pub use settings::{Settings, SettingsId};
