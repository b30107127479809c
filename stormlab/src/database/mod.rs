//! The databases the pools run against, behind the one trait the driver
//! calls, [`Database`]: the embedded simulation (`sim`) and live
//! PostgreSQL and MariaDB servers (`live`).
//!
//! A backend is opened for one run, then gives the driver what a run needs
//! of a database: each pool kind built over it, the switch that makes
//! queries hang (a scenario's wedge), the steps that ready it for the load
//! and let it settle after, and what its server saw, dead work included.
//! The driver decides the order, the same for every backend:
//!
//! 1. [`build`](Database::build) the pool, then [`ready`](Database::ready)
//!    the database and the pool for the load;
//! 2. offer the load, flipping [`hang`](Database::hang) during a wedge;
//! 3. [`settle`](Database::settle), read the pool's notes, drop the pool,
//!    and read [`server_stats`](Database::server_stats);
//! 4. [`close`](Database::close), whatever happened.

pub mod live;
pub mod sim;

use std::future::Future;
use std::sync::Arc;

use tokio::time::Instant;

use crate::base::{LabError, PoolKind};
use crate::metrics::{Attempt, ServerStats};
use crate::pools::{PoolSetup, SharedPool};

/// Sets whether every query started from now on hangs on the server.
pub type Hang = Arc<dyn Fn(bool) + Send + Sync>;

/// A database opened for one run.
///
/// The futures are awaited in the run's runtime, one after the other; none
/// of them is spawned.
pub trait Database {
    /// Builds pool `kind` over this database, set up as `setup` says; a
    /// pool kind that does not run on it is an error. Called inside the
    /// run's runtime (bb8 spawns its reaper at once).
    fn build(&self, kind: PoolKind, setup: &PoolSetup) -> Result<SharedPool, LabError>;

    /// The switch that makes every query started from now on hang on the
    /// server, until switched off.
    fn hang(&self) -> Hang;

    /// Readies the database and `pool` for the load, which starts when
    /// this returns.
    fn ready(&mut self, pool: &SharedPool) -> impl Future<Output = ()>;

    /// After the load: waits for the server to finish what the run left
    /// on it, as far as the database can tell.
    fn settle(&mut self) -> impl Future<Output = ()>;

    /// What the server saw of the run that started at `t0`: its counters
    /// and the dead work it did for `attempts` whose clients had given up.
    fn server_stats(&self, t0: Instant, attempts: &[Attempt]) -> ServerStats;

    /// Ends the run on the database, leaving nothing of it behind.
    fn close(self) -> impl Future<Output = Result<(), LabError>>;
}
