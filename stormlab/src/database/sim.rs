//! The embedded simulated database (`stormpool::sim`): no server to set up,
//! its dead work counted exactly, and every pool the lab knows built over
//! it but mysql_async's.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use stormpool::sim::{SimConfig, SimManager, SimStats};
use tokio::time::Instant;

use super::{Database, Hang};
use crate::base::{LabError, LabParams, PoolKind};
use crate::metrics::{Attempt, ServerStats};
use crate::pools::bb8::Bb8Lab;
use crate::pools::deadpool::DeadpoolLab;
use crate::pools::prefix::PrefixLab;
use crate::pools::semaphore::SemaphoreLab;
use crate::pools::stormpool::StormpoolLab;
use crate::pools::{PoolSetup, SharedPool};
use crate::scenario::Scenario;

/// A fresh simulated database for one run: the lab's service time and
/// seed; it ignores cancels if the scenario says so.
pub struct Simulated {
    manager: SimManager,
}

impl Simulated {
    /// The database of one run of `scenario`.
    pub fn open(params: &LabParams, scenario: &Scenario) -> Simulated {
        let manager = SimManager::new(sim_config(params));
        manager.db().set_cancellable(!scenario.cancels_ignored);
        Simulated { manager }
    }
}

/// The simulated database of a run: the lab's service time and seed.
// `SimConfig` is non-exhaustive: no struct update syntax outside stormpool.
#[allow(clippy::field_reassign_with_default)]
fn sim_config(params: &LabParams) -> SimConfig {
    let mut config = SimConfig::default();
    config.service_time = params.service;
    config.seed = params.seed;
    config
}

impl Database for Simulated {
    fn build(&self, kind: PoolKind, setup: &PoolSetup) -> Result<SharedPool, LabError> {
        let sim = self.manager.clone();
        Ok(match kind {
            PoolKind::Stormpool | PoolKind::StormpoolNoPropagation => {
                let propagate = kind == PoolKind::Stormpool;
                Arc::new(StormpoolLab::new(sim, setup, propagate)?)
            }
            PoolKind::Deadpool => Arc::new(DeadpoolLab::new(sim, setup)?),
            PoolKind::Bb8 => Arc::new(Bb8Lab::new(sim, setup)?),
            PoolKind::Prefix => Arc::new(PrefixLab::new(sim, setup)),
            PoolKind::Semaphore => Arc::new(SemaphoreLab::new(sim, setup)),
            PoolKind::MysqlAsync => {
                return Err(LabError::PoolUnsupported {
                    pool: kind.name(),
                    database: "simulated",
                })
            }
        })
    }

    fn hang(&self) -> Hang {
        let db = self.manager.db().clone();
        Arc::new(move |on| db.set_hang(on))
    }

    /// Nothing to ready: the pools open their connections on demand, as
    /// they would in a service that just started.
    async fn ready(&mut self, _: &SharedPool) {}

    /// Nothing to wait for: the server's counters already hold every query.
    async fn settle(&mut self) {}

    fn server_stats(&self, _: Instant, _: &[Attempt]) -> ServerStats {
        read(self.manager.db().stats())
    }

    async fn close(self) -> Result<(), LabError> {
        Ok(())
    }
}

/// The simulated server's counters; its dead work is exact.
fn read(stats: &SimStats) -> ServerStats {
    // Relaxed: independent counters, read once the load is over.
    ServerStats {
        connects: stats.connects.load(Relaxed),
        queries: stats.queries.load(Relaxed),
        completed: stats.completed.load(Relaxed),
        cancelled: stats.cancelled.load(Relaxed),
        abandoned_ms: stats.abandoned_micros.load(Relaxed) as f64 / 1000.0,
    }
}
