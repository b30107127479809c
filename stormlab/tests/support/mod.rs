//! Runs the `stormlab` binary for the integration tests.

#![allow(dead_code)] // each test file uses a part of it

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use stormlab::report::Report;
use stormlab::PoolKind;
use stormlab::ScenarioKind;
use stormlab::{LabConfig, LabParams, Outputs};

/// A fresh, empty folder for one test's outputs.
pub fn out_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("stormlab")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test's output folder");
    dir
}

/// Runs the binary with `args`.
pub fn stormlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stormlab"))
        .args(args)
        .output()
        .expect("run the stormlab binary")
}

/// Runs the binary with `args`, writing its report into `dir`.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stormlab"))
        .args(args)
        .arg("--out-dir")
        .arg(dir)
        .output()
        .expect("run the stormlab binary")
}

/// As [`run_in`], and the run must succeed.
pub fn run_ok(dir: &Path, args: &[&str]) -> Output {
    let out = run_in(dir, args);
    assert!(
        out.status.success(),
        "stormlab {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The short-duration mode: every pool through every scenario with phases
/// at their floor (two deadlines), writing into `dir`.
pub fn short_suite(dir: &Path) -> Output {
    run_ok(dir, &["--scale", "0.02", "--quiet"])
}

/// Runs `pools` through `scenarios` in virtual time, in this process,
/// writing nothing.
pub fn suite(pools: &[PoolKind], scenarios: &[ScenarioKind], params: LabParams) -> Report {
    let config = LabConfig {
        pools: pools.to_vec(),
        scenarios: scenarios.to_vec(),
        params,
        outputs: Outputs {
            html: None,
            json: None,
        },
        jobs: 2,
        ..LabConfig::default()
    };
    stormlab::run(&config).expect("the suite runs").0
}
