//! The lab's outputs: a [`Report`] holding every result, rendered as
//! terminal tables ([`table`]), one self-contained HTML page with SVG
//! charts ([`html`], [`charts`]) and JSON ([`json`]).

pub mod charts;
pub mod html;
pub mod json;
pub mod table;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backend::Backend;
use crate::config::{LabParams, Outputs};
use crate::error::LabError;
use crate::metrics::{RecoveryRule, RunResult};
use crate::pools::PoolKind;
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
    /// Connections / service time, in requests per second.
    pub capacity_rps: f64,
    /// The pools, in report order.
    pub pools: Vec<PoolInfo>,
    /// The scenarios, in run order, each with one result per pool.
    pub scenarios: Vec<ScenarioReport>,
    /// How long the suite took on the machine, in seconds.
    pub wall_time_s: f64,
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
            description: kind.description(backend),
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

impl Report {
    /// Writes the HTML and JSON files `outputs` asks for, creating their
    /// folders; returns the paths written.
    pub fn write(&self, outputs: &Outputs) -> Result<Vec<PathBuf>, LabError> {
        let mut written = Vec::new();
        if let Some(path) = &outputs.html {
            write_file(path, &html::render(self)?)?;
            written.push(path.clone());
        }
        if let Some(path) = &outputs.json {
            write_file(path, &json::render(self)?)?;
            written.push(path.clone());
        }
        Ok(written)
    }
}

fn write_file(path: &Path, contents: &str) -> Result<(), LabError> {
    let fail = |source| LabError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    std::fs::write(path, contents).map_err(fail)
}
