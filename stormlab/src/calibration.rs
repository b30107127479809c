//! The effective capacity: the most a pool can serve on this machine, in
//! real time, measured in the same run as the scenarios.
//!
//! The nominal capacity, connections / service time, is what the simulated
//! database serves when a query costs exactly its service time. On the wall
//! clock it costs more: the timer fires on the next millisecond tick, the
//! task that waited has to be woken and scheduled, and the pool does its own
//! work between two queries. So no pool reaches the nominal capacity there,
//! and a goodput of 93% of it may be all there is to get.
//!
//! The calibration measures what there is to get: a saturated closed loop
//! (the lab's closed-loop workers, 256 by default, with deadlines an hour
//! away) on the simulated database, through the semaphore floor (a tokio
//! semaphore in front of a stack of connections, the least a pool can be)
//! and through every pool of the run, [`ROUNDS`] rounds, the pools taking
//! turns within each round so that a noisy moment hurts them alike. Each
//! round lets the loop settle for [`WARM_UP`], then counts the requests
//! served in the next second (scaled by `--scale`, at least
//! [`MIN_ROUND`]). A pool's rate is its median round; the **effective
//! capacity** is the best pool's rate (at most the nominal capacity).
//!
//! The scenarios then run against it, as the suite sets them up: a phase's
//! load is a multiple of the effective capacity (0.9x is just under what
//! the machine can serve, 2x twice that), and recovery is judged against
//! the time a query takes on the machine, connections / effective capacity
//! ([`RecoveryRule::measured`]), as it is against the service time under the
//! paused clock. Goodput is given as % of both capacities.
//!
//! A live server is measured the same way, through the suite's pools (the
//! floor is a simulated-database pool): there a query costs the statement's
//! time plus the round trip and the server's own work, and the measured
//! rate is what the machine and the server serve together. Recovery on a
//! live server keeps its own rule, against the statement's latency on an
//! idle server.
//!
//! Under the virtual clock a query costs its service time exactly and no
//! CPU time passes: the effective capacity is the nominal one, and no
//! calibration runs.

use std::time::Duration;

use serde::Serialize;

use crate::base::{Backend, LabError, LabParams, PoolKind, ScenarioKind};
use crate::driver;
use crate::metrics::{self, Capacity, RecoveryRule};
use crate::progress::Progress;
use crate::scenario::{Phase, Scenario};

/// Rounds of the calibration.
pub const ROUNDS: usize = 3;

/// The measured part of a round, before `--scale`.
const ROUND: Duration = Duration::from_secs(1);

/// The shortest measured part of a round, whatever the scale.
pub const MIN_ROUND: Duration = Duration::from_millis(250);

/// The settling part of a round, not measured.
pub const WARM_UP: Duration = Duration::from_millis(200);

/// What the calibration measured.
#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    /// Closed-loop workers.
    pub workers: usize,
    /// The measured part of each round.
    #[serde(serialize_with = "crate::base::units::millis")]
    pub round: Duration,
    /// Each pool's rates, the floor first.
    pub pools: Vec<PoolRate>,
    /// The pool whose median was the best.
    pub best: PoolKind,
    /// The effective capacity, in requests per second.
    pub effective_rps: f64,
    /// The effective capacity as % of the nominal one.
    pub effective_pct: f64,
}

/// One pool's rates in the calibration.
#[derive(Clone, Debug, Serialize)]
pub struct PoolRate {
    /// The pool.
    pub pool: PoolKind,
    /// Requests served per second, in each round.
    pub rounds_rps: Vec<f64>,
    /// The median round.
    pub median_rps: f64,
}

/// The calibration's closed loop: a warm-up, then the measured round.
fn scenario(params: &LabParams) -> Scenario {
    let mut scenario = ScenarioKind::ClosedLoop.build(params);
    let round = Duration::from_secs_f64(ROUND.as_secs_f64() * params.scale).max(MIN_ROUND);
    let round = Duration::from_millis(round.as_millis() as u64);
    scenario.phases = vec![
        Phase {
            name: "warm-up",
            duration: WARM_UP,
            ..scenario.phases[0].clone()
        },
        Phase {
            name: "measured",
            duration: round,
            ..scenario.phases[0].clone()
        },
    ];
    scenario.headline = 1;
    scenario
}

/// The pools the calibration runs for a suite of `pools` on `backend`: the
/// floor first where the backend has it, then the suite's, each once.
fn pools(pools: &[PoolKind], backend: &Backend) -> Vec<PoolKind> {
    let mut out = Vec::new();
    if backend.supports(PoolKind::Semaphore) {
        out.push(PoolKind::Semaphore);
    }
    for &pool in pools {
        if !out.contains(&pool) {
            out.push(pool);
        }
    }
    out
}

/// The run time the calibration of a suite of `suite_pools` on `backend`
/// takes, for the progress bar.
pub fn length(suite_pools: &[PoolKind], backend: &Backend, params: &LabParams) -> Duration {
    let per_run = driver::run_length(&scenario(params), params);
    per_run * (ROUNDS * pools(suite_pools, backend).len()) as u32
}

/// Measures the effective capacity in real time on `backend`, through the
/// floor (where the backend has it) and `suite_pools`.
pub fn measure(
    suite_pools: &[PoolKind],
    backend: &Backend,
    params: &LabParams,
    progress: &Progress,
) -> Result<Calibration, LabError> {
    let scenario = scenario(params);
    let pools = pools(suite_pools, backend);
    let nominal = Capacity::nominal(params);
    let rule = RecoveryRule::simulated(params.service);
    let mut rates = vec![Vec::with_capacity(ROUNDS); pools.len()];
    for round in 0..ROUNDS {
        for (i, &pool) in pools.iter().enumerate() {
            progress.set_message(format!(
                "calibration {}/{ROUNDS} / {}",
                round + 1,
                pool.name()
            ));
            let raw = driver::run(pool, &scenario, params, backend, nominal, progress)?;
            let result = metrics::summarize(&raw, &scenario, nominal, rule);
            rates[i].push(result.throughput_rps);
        }
    }
    let pools: Vec<PoolRate> = pools
        .into_iter()
        .zip(rates)
        .map(|(pool, rounds_rps)| PoolRate {
            pool,
            median_rps: median(&rounds_rps),
            rounds_rps,
        })
        .collect();
    let best = pools
        .iter()
        .max_by(|a, b| a.median_rps.total_cmp(&b.median_rps))
        .map_or(PoolKind::Semaphore, |p| p.pool);
    let best_rps = pools.iter().map(|p| p.median_rps).fold(0.0, f64::max);
    let effective_rps = best_rps.min(nominal.nominal_rps);
    Ok(Calibration {
        workers: params.workers,
        round: scenario.phases[1].duration,
        pools,
        best,
        effective_rps,
        effective_pct: 100.0 * effective_rps / nominal.nominal_rps,
    })
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_runs_first_and_once() {
        let suite = [PoolKind::Stormpool, PoolKind::Semaphore, PoolKind::Bb8];
        assert_eq!(
            pools(&suite, &Backend::Sim),
            [PoolKind::Semaphore, PoolKind::Stormpool, PoolKind::Bb8]
        );
        let live =
            Backend::from_options(Some("postgres://root@127.0.0.1:5432/test"), None).unwrap();
        let suite = [PoolKind::Stormpool, PoolKind::Deadpool];
        assert_eq!(
            pools(&suite, &live),
            [PoolKind::Stormpool, PoolKind::Deadpool]
        );
    }

    #[test]
    fn a_round_is_a_warm_up_then_the_measured_part() {
        let params = LabParams {
            scale: 0.01,
            ..LabParams::default()
        };
        let s = scenario(&params);
        assert_eq!(s.phases[0].duration, WARM_UP);
        assert_eq!(s.phases[1].duration, MIN_ROUND);
        assert_eq!(s.headline, 1);
        assert!(s.closed.is_some());
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0]), 1.5);
    }
}
