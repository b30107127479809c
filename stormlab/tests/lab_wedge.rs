//! What the wedged scenarios claim, checked in virtual time (deterministic
//! for a seed, so comparisons between runs are stable): jobs without a
//! deadline wedge every pool; stormpool's hold limit takes their
//! connections back, and when the server ignores cancels, `max_orphans`
//! bounds how many. No absolute time is asserted.

mod support;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use stormlab::metrics::{Holders, RunResult};
use stormlab::report::Report;
use stormlab::LabParams;
use stormlab::PoolKind;
use stormlab::ScenarioKind;
use stormpool::sim::{SimConfig, SimManager};
use stormpool::Manager;

/// Long enough for the hold limit to act well within the phase after the
/// wedge.
const SCALE: f64 = 0.5;

fn run(pools: &[PoolKind], scenarios: &[ScenarioKind], max_orphans: usize) -> Report {
    run_scaled(pools, scenarios, max_orphans, SCALE)
}

fn run_scaled(
    pools: &[PoolKind],
    scenarios: &[ScenarioKind],
    max_orphans: usize,
    scale: f64,
) -> Report {
    let params = LabParams {
        scale,
        max_orphans,
        ..LabParams::default()
    };
    support::suite(pools, scenarios, params)
}

fn result(report: &Report, scenario: ScenarioKind, pool: PoolKind) -> &RunResult {
    report
        .scenarios
        .iter()
        .find(|s| s.scenario.kind == scenario)
        .and_then(|s| s.runs.iter().find(|r| r.pool == pool))
        .expect("a run per pool and scenario")
}

/// Goodput of the phase after the wedge, and the holders' fate.
fn after(run: &RunResult) -> (f64, Holders) {
    let after = run.phases.last().expect("phases").goodput_pct;
    (
        after,
        run.holders.expect("the wedged scenarios have holders"),
    )
}

#[test]
fn max_hold_frees_what_holders_without_a_deadline_keep() {
    let scenarios = [ScenarioKind::Wedged, ScenarioKind::WedgedMaxHold];
    let report = run(&[PoolKind::Stormpool, PoolKind::Deadpool], &scenarios, 4);
    let stormpool = |s| after(result(&report, s, PoolKind::Stormpool));
    let (wedged, stuck) = stormpool(ScenarioKind::Wedged);
    let (held, freed) = stormpool(ScenarioKind::WedgedMaxHold);
    println!("stormpool after the wedge: {wedged:.1}% without max_hold, {held:.1}% with");
    println!("holders without max_hold: {stuck:?}; with: {freed:?}");

    // Without a hold limit, the holders keep every connection.
    assert_eq!(stuck.stuck, stuck.started);
    assert_eq!(stuck.revoked, Some(0));
    assert!(
        held > 2.0 * wedged + 10.0,
        "max_hold should restore service: {held:.1}% vs {wedged:.1}% without"
    );
    // Every holder was revoked, its query cancelled, and it let go.
    assert!(
        freed.revoked.is_some_and(|r| r >= freed.started),
        "{freed:?}"
    );
    assert_eq!(
        (freed.stopped, freed.stuck),
        (freed.started, 0),
        "{freed:?}"
    );

    // deadpool has no hold limit: the two scenarios are the same run for it.
    let deadpool = |s| after(result(&report, s, PoolKind::Deadpool));
    let (plain, limited) = (
        deadpool(ScenarioKind::Wedged),
        deadpool(ScenarioKind::WedgedMaxHold),
    );
    assert_eq!(plain, limited);
    assert_eq!(limited.1.revoked, None);
    assert_eq!(limited.1.stuck, limited.1.started);
}

#[test]
fn when_cancels_are_ignored_max_orphans_bounds_what_comes_back() {
    let scenarios = [ScenarioKind::WedgedNoCancel];
    let pools = [PoolKind::Stormpool];
    // The full length: the phase after the wedge is long enough for the
    // queue to build up behind the 4 connections that serve.
    let few = run_scaled(&pools, &scenarios, 4, 1.0);
    let more = run(&pools, &scenarios, 16);
    let stormpool = |r| after(result(r, ScenarioKind::WedgedNoCancel, PoolKind::Stormpool));
    let ((four, few_holders), (sixteen, more_holders)) = (stormpool(&few), stormpool(&more));
    println!("after an uncancellable wedge: {four:.1}% with max_orphans 4, {sixteen:.1}% with 16");

    // The cancels went unheeded: every holder still holds its connection.
    for holders in [few_holders, more_holders] {
        assert_eq!(holders.stuck, holders.started, "{holders:?}");
    }
    let cancelled = |r| result(r, ScenarioKind::WedgedNoCancel, PoolKind::Stormpool);
    assert_eq!(cancelled(&few).server.cancelled, 0);
    // Revocations stop at max_orphans, and so does what comes back.
    assert_eq!(few_holders.revoked, Some(4));
    assert_eq!(more_holders.revoked, Some(16));
    assert!(
        sixteen > 1.5 * four,
        "16 orphans should restore more than 4: {sixteen:.1}% vs {four:.1}%"
    );
    // The 4 replacements are a quarter of the capacity, and they serve
    // (nearly) all of it: the stuck leases, which serve nobody, do not make
    // the queue look faster than it is, so the excess is shed in time
    // instead of timing out after a wait.
    let share = 100.0 * 4.0 / 16.0;
    assert!(
        four >= 0.9 * share,
        "4 replacements should serve their share of the capacity: {four:.1}% of {share:.1}%"
    );
}

/// The switch the lab's uncancellable wedge relies on: an ignored cancel is
/// received, stops nothing, and is not counted as a stopped statement.
#[tokio::test(start_paused = true)]
async fn the_simulated_server_can_ignore_cancels() {
    let manager = SimManager::new(SimConfig::default());
    let db = manager.db().clone();
    let mut conn = manager.connect().await.expect("connects");
    let token = manager.cancel_token(&conn);
    db.set_hang(true);
    let query = tokio::spawn(async move { conn.query().await });
    tokio::task::yield_now().await;

    db.set_cancellable(false);
    manager.cancel(&token).await.expect("sent");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!query.is_finished(), "an ignored cancel stopped the query");
    assert_eq!(db.stats().cancels.load(Relaxed), 1);
    assert_eq!(db.stats().cancelled.load(Relaxed), 0);

    db.set_cancellable(true);
    manager.cancel(&token).await.expect("sent");
    let result = query.await.expect("the query task ends");
    assert!(result.is_err(), "a heeded cancel stops the query");
    assert_eq!(db.stats().cancels.load(Relaxed), 2);
    assert_eq!(db.stats().cancelled.load(Relaxed), 1);
}
