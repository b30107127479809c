//! What the lab claims, checked in virtual time (deterministic for a seed,
//! so a ratio is a stable assertion): the pre-fix waitlist model collapses
//! at 2x, and stormpool does no worse; stormpool sheds nothing from a
//! saturated closed loop or from arrivals just under capacity, and serves
//! the closed loop as fast as its peers.

mod support;

use stormlab::report::Report;
use stormlab::LabParams;
use stormlab::PoolKind;
use stormlab::ScenarioKind;

fn run(pools: &[PoolKind], scenarios: &[ScenarioKind], scale: f64) -> Report {
    let params = LabParams {
        scale,
        ..LabParams::default()
    };
    support::suite(pools, scenarios, params)
}

#[test]
fn prefix_model_collapses_at_2x_and_stormpool_does_not_do_worse() {
    let report = run(
        &[PoolKind::Stormpool, PoolKind::Prefix],
        &[ScenarioKind::Overload],
        0.5,
    );
    let runs = &report.scenarios[0].runs;
    let goodput = |pool| {
        runs.iter()
            .find(|r| r.pool == pool)
            .map(|r| r.goodput_pct)
            .expect("a run per pool")
    };
    let (stormpool, prefix) = (goodput(PoolKind::Stormpool), goodput(PoolKind::Prefix));
    println!("2x overload goodput: stormpool {stormpool:.1}%, pre-fix model {prefix:.1}%");
    assert!(
        prefix < 20.0,
        "the pre-fix model should collapse: {prefix:.1}%"
    );
    assert!(
        stormpool >= prefix,
        "stormpool {stormpool:.1}% < pre-fix {prefix:.1}%"
    );
    let prefix_run = runs.iter().find(|r| r.pool == PoolKind::Prefix);
    let dead = prefix_run.map_or(0, |r| r.outcomes.dead_handoffs);
    assert!(dead > 0, "the collapse comes from dead hand-offs");
}

#[test]
fn a_seed_gives_the_same_results() {
    let pools = [PoolKind::Stormpool, PoolKind::Deadpool];
    let scenarios = [ScenarioKind::Spike, ScenarioKind::FanOut];
    let first = run(&pools, &scenarios, 0.05);
    let second = run(&pools, &scenarios, 0.05);
    let json = |r: &Report| serde_json::to_string(&r.scenarios).expect("serializes");
    assert_eq!(json(&first), json(&second));
}

#[test]
fn stormpool_sheds_nothing_from_a_healthy_queue_and_keeps_up() {
    let pools = [PoolKind::Stormpool, PoolKind::Deadpool, PoolKind::Bb8];
    let report = run(
        &pools,
        &[ScenarioKind::ClosedLoop, ScenarioKind::NearCapacity],
        0.5,
    );
    for scenario in &report.scenarios {
        let name = scenario.scenario.name();
        let stormpool = scenario
            .runs
            .iter()
            .find(|r| r.pool == PoolKind::Stormpool)
            .expect("a stormpool run");
        println!(
            "{name}: stormpool {:.1}% of capacity, {} shed",
            stormpool.goodput_pct, stormpool.errors.shed
        );
        assert_eq!(stormpool.errors.shed, 0, "{name}: stormpool shed");
        assert_eq!(stormpool.served_pct, 100.0, "{name}: every request served");
        let best_peer = (scenario.runs.iter())
            .filter(|r| r.pool != PoolKind::Stormpool)
            .map(|r| r.goodput_pct)
            .fold(0.0, f64::max);
        assert!(
            stormpool.goodput_pct >= best_peer * 0.99,
            "{name}: stormpool {:.1}% against the best peer's {best_peer:.1}%",
            stormpool.goodput_pct
        );
    }
}
