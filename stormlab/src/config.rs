//! What one invocation of the lab runs: plain, validated data built from the
//! command line by the `cli` module.

use std::path::PathBuf;

use crate::base::{Backend, LabParams, PoolKind, ScenarioKind};

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
