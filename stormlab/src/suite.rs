//! Runs a whole suite: every pool through every scenario, several runs at
//! once under the virtual clock, printing each scenario's table as soon as
//! all its runs are done, then writing the report. In real time (on the
//! simulated database with `--clock real`, and always on a live server),
//! the effective capacity is measured first ([`calibration`]), and every
//! goodput is given as % of it too.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::base::{Backend, Clock, LabError};
use crate::calibration;
use crate::config::LabConfig;
use crate::driver;
use crate::machine::Machine;
use crate::metrics::{self, Capacity, RecoveryRule, RunResult};
use crate::progress::Progress;
use crate::report::table::{calibration_text, scenario_table, summary_table};
use crate::report::{PoolInfo, Report, ScenarioReport};
use crate::scenario::Scenario;

/// Runs the suite `config` describes and writes its outputs; returns the
/// report and the paths written.
pub fn run(config: &LabConfig) -> Result<(Report, Vec<PathBuf>), LabError> {
    let started = std::time::Instant::now();
    let mut machine = Machine::now();
    let params = &config.params;
    let mut recovery_rule = driver::prepare(&config.backend, params)?;
    // A live server always runs in real time.
    let calibrate = params.clock == Clock::Real || config.backend != Backend::Sim;
    let scenarios: Vec<Scenario> = config.scenarios.iter().map(|k| k.build(params)).collect();
    let jobs: Vec<(usize, usize)> = (0..scenarios.len())
        .flat_map(|s| (0..config.pools.len()).map(move |p| (s, p)))
        .collect();
    let mut total: Duration = jobs
        .iter()
        .map(|&(s, _)| driver::run_length(&scenarios[s], params))
        .sum();
    if calibrate {
        total += calibration::length(&config.pools, &config.backend, params);
    }
    let visible = !config.quiet && std::io::stdout().is_terminal();
    let progress = Progress::new(total, visible);
    if config.print_tables && calibrate {
        progress.print(&format!("Machine: {}.\n", machine.describe()));
    }
    let calibration = if calibrate {
        let measured = calibration::measure(&config.pools, &config.backend, params, &progress)?;
        if config.print_tables {
            let text = calibration_text(&measured, params.capacity_rps());
            progress.print(&format!("{text}\n"));
        }
        Some(measured)
    } else {
        None
    };
    let capacity = Capacity {
        nominal_rps: params.capacity_rps(),
        effective_rps: calibration.as_ref().map(|c| c.effective_rps),
    };
    if calibration.is_some() && config.backend == Backend::Sim {
        // Recovery against what a query takes on this machine; a live
        // server keeps its rule, against the statement's measured latency.
        recovery_rule = RecoveryRule::measured(capacity.query_time(params.connections));
    }
    let workers = match params.clock {
        // Real time: one run at a time, or the runs would disturb each other.
        Clock::Real => 1,
        Clock::Virtual => config.jobs.clamp(1, jobs.len().max(1)),
    };
    let state = SuiteState {
        config,
        scenarios: &scenarios,
        jobs: &jobs,
        progress: &progress,
        recovery_rule,
        capacity,
        next: AtomicUsize::new(0),
        results: Mutex::new(Results {
            runs: vec![vec![None; config.pools.len()]; scenarios.len()],
            printed: 0,
            error: None,
        }),
    };
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| state.work());
        }
    });
    progress.finish();
    let results = state
        .results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(e) = results.error {
        return Err(e);
    }
    machine.finish();
    let report = Report {
        version: env!("CARGO_PKG_VERSION"),
        backend: config.backend.name(),
        params: params.clone(),
        recovery_rule,
        capacity_rps: capacity.nominal_rps,
        effective_capacity_rps: capacity.effective_rps,
        calibration,
        machine,
        pools: config
            .pools
            .iter()
            .map(|&kind| PoolInfo::new(kind, &config.backend))
            .collect(),
        scenarios: scenarios
            .into_iter()
            .zip(results.runs)
            .map(|(scenario, runs)| ScenarioReport {
                scenario,
                runs: runs.into_iter().flatten().collect(),
            })
            .collect(),
        wall_time_s: started.elapsed().as_secs_f64(),
    };
    if config.print_tables {
        print!("{}", summary_table(&report).to_text());
        if params.clock == Clock::Real {
            println!("Machine: {}.", report.machine.describe());
        }
    }
    let written = report.write(&config.outputs)?;
    Ok((report, written))
}

struct SuiteState<'a> {
    config: &'a LabConfig,
    scenarios: &'a [Scenario],
    /// (scenario, pool) indices, in run order.
    jobs: &'a [(usize, usize)],
    progress: &'a Progress,
    recovery_rule: RecoveryRule,
    capacity: Capacity,
    next: AtomicUsize,
    results: Mutex<Results>,
}

struct Results {
    /// Per scenario, per pool.
    runs: Vec<Vec<Option<RunResult>>>,
    /// Scenarios whose table was printed, from the first.
    printed: usize,
    /// The first error; the workers stop taking runs once it is set.
    error: Option<LabError>,
}

impl SuiteState<'_> {
    fn lock(&self) -> MutexGuard<'_, Results> {
        self.results.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes runs until none is left or one failed.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(&(s, p)) = self.jobs.get(i) else {
                return;
            };
            if self.lock().error.is_some() {
                return;
            }
            let scenario = &self.scenarios[s];
            let pool = self.config.pools[p];
            self.progress
                .set_message(format!("{} / {}", scenario.name(), pool.name()));
            let params = &self.config.params;
            let backend = &self.config.backend;
            match driver::run(
                pool,
                scenario,
                params,
                backend,
                self.capacity,
                self.progress,
            ) {
                Ok(raw) => {
                    let result =
                        metrics::summarize(&raw, scenario, self.capacity, self.recovery_rule);
                    let mut results = self.lock();
                    results.runs[s][p] = Some(result);
                    self.print_finished(&mut results);
                }
                Err(e) => {
                    self.lock().error.get_or_insert(e);
                    return;
                }
            }
        }
    }

    /// Prints the tables of the scenarios whose runs are all done, in order.
    fn print_finished(&self, results: &mut Results) {
        while let Some(runs) = results.runs.get(results.printed) {
            if runs.iter().any(Option::is_none) {
                return;
            }
            if self.config.print_tables {
                let report = ScenarioReport {
                    scenario: self.scenarios[results.printed].clone(),
                    runs: runs.iter().flatten().cloned().collect(),
                };
                let mut text = scenario_table(self.capacity, &report).to_text();
                for run in &report.runs {
                    for note in &run.notes {
                        text += &format!("note: {}: {note}\n", run.pool.name());
                    }
                }
                self.progress.print(&format!("{text}\n"));
            }
            results.printed += 1;
        }
    }
}
