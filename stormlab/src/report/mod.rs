//! The lab's outputs: a [`Report`] holding every result, rendered as
//! terminal tables ([`table`]), one self-contained HTML page with SVG
//! charts ([`html`], [`charts`]) and JSON ([`json`]), and written to the
//! files the options name ([`files`]).

pub mod charts;
pub mod files;
pub mod html;
pub mod json;
pub mod table;

use serde::Serialize;

use crate::base::{Backend, LabParams, PoolKind};
use crate::calibration::Calibration;
use crate::machine::Machine;
use crate::metrics::{Capacity, RecoveryRule, RunResult};
use crate::scenario::Scenario;

/// Everything one invocation of the lab found.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The crate's version.
    pub version: &'static str,
    /// The database the pools ran against.
    pub backend: &'static str,
    /// The shared run parameters.
    pub params: LabParams,
    /// How recovery was judged on this backend.
    pub recovery_rule: RecoveryRule,
    /// Connections / service time, in requests per second: the nominal
    /// capacity.
    pub capacity_rps: f64,
    /// The effective capacity measured in this run, in requests per second
    /// (real time on the simulated database only; `null` otherwise).
    pub effective_capacity_rps: Option<f64>,
    /// How the effective capacity was measured, and each pool's rates.
    pub calibration: Option<Calibration>,
    /// The machine the suite ran on.
    pub machine: Machine,
    /// The pools, in report order.
    pub pools: Vec<PoolInfo>,
    /// The scenarios, in run order, each with one result per pool.
    pub scenarios: Vec<ScenarioReport>,
    /// How long the suite took on the machine, in seconds.
    pub wall_time_s: f64,
}

impl Report {
    /// The capacities goodput is measured against.
    pub fn capacity(&self) -> Capacity {
        Capacity {
            nominal_rps: self.capacity_rps,
            effective_rps: self.effective_capacity_rps,
        }
    }
}

/// A pool as the report introduces it.
#[derive(Clone, Debug, Serialize)]
pub struct PoolInfo {
    /// The pool.
    pub name: PoolKind,
    /// How it is set up.
    pub description: &'static str,
}

impl PoolInfo {
    /// `kind` as it runs on `backend`.
    pub fn new(kind: PoolKind, backend: &Backend) -> PoolInfo {
        PoolInfo {
            name: kind,
            description: backend.describe(kind),
        }
    }
}

/// One scenario and the results of every pool in it.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    /// The scenario as it ran.
    #[serde(flatten)]
    pub scenario: Scenario,
    /// One result per pool, in report order.
    pub runs: Vec<RunResult>,
}
