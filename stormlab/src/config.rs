//! What one invocation of the lab runs: plain, validated data built from the
//! command line by the `cli` module.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::backend::Backend;
use crate::pools::PoolKind;
use crate::scenario::ScenarioKind;

/// Which clock the runs follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Clock {
    /// tokio's paused clock on a current-thread runtime: time jumps to the
    /// next timer whenever every task waits, so a run is deterministic for a
    /// seed, costs CPU only, and is immune to machine noise. The default.
    Virtual,
    /// Wall-clock time on a multi-thread runtime: what a real service sees,
    /// including the machine's noise. Runs one pool at a time.
    Real,
}

impl Clock {
    /// The option value naming the clock.
    pub fn name(self) -> &'static str {
        match self {
            Clock::Virtual => "virtual",
            Clock::Real => "real",
        }
    }
}

/// The parameters every run of a suite shares.
#[derive(Clone, Debug, Serialize)]
pub struct LabParams {
    /// Connections per pool; the simulated database serves this many queries
    /// at once. Default: 16.
    pub connections: usize,
    /// Server time of one query. Default: 2 ms.
    #[serde(serialize_with = "crate::units::millis")]
    pub service: Duration,
    /// Each request's deadline, from its start: the client abandons the
    /// request then, whatever the pool does. Default: 50 ms.
    #[serde(serialize_with = "crate::units::millis")]
    pub deadline: Duration,
    /// Multiplies every phase's duration. Default: 1.0.
    pub scale: f64,
    /// Seed of the arrival processes. Default: 1.
    pub seed: u64,
    /// Which clock the runs follow. Default: virtual.
    pub clock: Clock,
    /// The hold limit of the scenarios that set one (`wedged-max-hold`,
    /// `wedged-no-cancel`). Default: 100 ms.
    #[serde(serialize_with = "crate::units::millis")]
    pub max_hold: Duration,
    /// stormpool's `max_orphans`: the most revoked connections whose holders
    /// have not let go yet. Default: stormpool's own (4).
    pub max_orphans: usize,
}

impl Default for LabParams {
    fn default() -> Self {
        LabParams {
            connections: 16,
            service: Duration::from_millis(2),
            deadline: Duration::from_millis(50),
            scale: 1.0,
            seed: 1,
            clock: Clock::Virtual,
            max_hold: Duration::from_millis(100),
            max_orphans: stormpool::Config::default().max_orphans,
        }
    }
}

impl LabParams {
    /// The most requests per second the database can serve:
    /// connections / service time.
    pub fn capacity_rps(&self) -> f64 {
        self.connections as f64 / self.service.as_secs_f64()
    }
}

/// Where the report goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outputs {
    /// The self-contained HTML report. Default: `target/stormlab/report.html`.
    pub html: Option<PathBuf>,
    /// The machine-readable results. Default: `target/stormlab/results.json`.
    pub json: Option<PathBuf>,
}

/// Everything one invocation runs and writes.
#[derive(Clone, Debug)]
pub struct LabConfig {
    /// The pools, in the order they appear in tables and charts.
    pub pools: Vec<PoolKind>,
    /// The scenarios, in the order they run.
    pub scenarios: Vec<ScenarioKind>,
    /// The shared run parameters.
    pub params: LabParams,
    /// The database the pools connect to.
    pub backend: Backend,
    /// The report files.
    pub outputs: Outputs,
    /// Runs executed at once (virtual clock only). Default: the number of
    /// cores.
    pub jobs: usize,
    /// Hide the progress bar.
    pub quiet: bool,
    /// Print the per-scenario tables on standard output.
    pub print_tables: bool,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            pools: Backend::Sim.pools().to_vec(),
            scenarios: ScenarioKind::ALL.to_vec(),
            params: LabParams::default(),
            backend: Backend::Sim,
            outputs: Outputs {
                html: Some(PathBuf::from("target/stormlab/report.html")),
                json: Some(PathBuf::from("target/stormlab/results.json")),
            },
            jobs: 1,
            quiet: true,
            print_tables: false,
        }
    }
}
