//! The short-duration mode runs every scenario for every pool and writes
//! complete, well-formed outputs. Nothing here depends on absolute timings.

mod support;

use serde_json::Value;
use stormlab::Backend;
use stormlab::ScenarioKind;

#[test]
fn short_suite_writes_complete_json_and_html() {
    let dir = support::out_dir("short_suite");
    let out = support::short_suite(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);

    // One table per scenario on the terminal, then the summary.
    for kind in ScenarioKind::ALL {
        assert!(
            stdout.contains(&format!("{}: ", kind.name())),
            "no table for {}:\n{stdout}",
            kind.name()
        );
    }
    assert!(stdout.contains("headline phase of each scenario"));

    let json = std::fs::read_to_string(dir.join("results.json")).expect("results.json");
    let report: Value = serde_json::from_str(&json).expect("results.json parses");
    check_json(&report);

    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    check_html(&html);
}

fn check_json(report: &Value) {
    assert_eq!(report["capacity_rps"], 8000.0);
    assert_eq!(report["params"]["connections"], 16);
    // The paused clock measures no effective capacity: a query costs its
    // service time exactly there.
    assert!(report["effective_capacity_rps"].is_null());
    assert!(report["calibration"].is_null());
    assert!(report["machine"]["cores"].as_u64().unwrap_or(0) >= 1);
    let pools: Vec<&str> = report["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .map(|p| p["name"].as_str().expect("pool name"))
        .collect();
    let expected: Vec<&str> = Backend::Sim.pools().iter().map(|p| p.name()).collect();
    assert_eq!(pools, expected);
    let scenarios = report["scenarios"].as_array().expect("scenarios");
    let kinds: Vec<&str> = scenarios
        .iter()
        .map(|s| s["kind"].as_str().expect("scenario kind"))
        .collect();
    assert_eq!(kinds, ScenarioKind::names());
    for scenario in scenarios {
        let name = scenario["kind"].as_str().unwrap_or_default();
        let phases = scenario["phases"].as_array().expect("phases").len();
        let runs = scenario["runs"].as_array().expect("runs");
        let run_pools: Vec<&str> = runs.iter().filter_map(|r| r["pool"].as_str()).collect();
        assert_eq!(run_pools, pools, "{name}: one run per pool, in order");
        for run in runs {
            let what = format!("{name}/{}", run["pool"]);
            check_run(run, phases, &what);
            let recovery_measured = !scenario["recovery_from"].is_null();
            assert_eq!(
                !run["recovery"].is_null(),
                recovery_measured,
                "{what}: recovery"
            );
            assert_eq!(
                !run["classes"].is_null(),
                name == "priority",
                "{what}: classes"
            );
            assert_eq!(
                !run["tenants"].is_null(),
                name == "fanout",
                "{what}: tenants"
            );
            let holders = scenario["holders"].as_u64().unwrap_or(0);
            assert_eq!(!run["holders"].is_null(), holders > 0, "{what}: holders");
            assert_eq!(
                !run["critical_of_possible_pct"].is_null(),
                name == "priority",
                "{what}: critical % of possible"
            );
            if name == "closed-loop" {
                check_closed_loop(run, &what);
            }
        }
    }
}

/// A closed loop's run: every request is one attempt, has waited for its
/// connection, and none failed on a healthy pool.
fn check_closed_loop(run: &Value, what: &str) {
    assert_eq!(run["requests"], run["attempts"], "{what}");
    let wait = &run["wait"];
    let (p50, p99, max) = (
        wait["p50_ms"].as_f64().expect("wait p50"),
        wait["p99_ms"].as_f64().expect("wait p99"),
        wait["max_ms"].as_f64().expect("wait max"),
    );
    assert!(p50 <= p99 && p99 <= max, "{what}: {wait}");
    let errors = run["errors"].as_object().expect("errors");
    let total: u64 = errors.values().filter_map(Value::as_u64).sum();
    assert_eq!(total, 0, "{what}: errors {errors:?}");
    assert!(
        run["throughput_rps"].as_f64().unwrap_or(0.0) > 0.0,
        "{what}"
    );
}

fn check_run(run: &Value, phases: usize, what: &str) {
    let number = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let goodput = number(&run["goodput_pct"]);
    assert!(
        goodput.is_finite() && goodput >= 0.0,
        "{what}: goodput {goodput}"
    );
    assert!(run["goodput_pct_effective"].is_null(), "{what}");
    let served = number(&run["served_pct"]);
    assert!((0.0..=100.0).contains(&served), "{what}: served {served}");
    assert_eq!(
        run["phases"].as_array().map(Vec::len),
        Some(phases),
        "{what}"
    );
    let requests = run["requests"].as_u64().unwrap_or(0);
    let attempts = run["attempts"].as_u64().unwrap_or(0);
    assert!(
        requests > 0 && attempts >= requests,
        "{what}: {requests} / {attempts}"
    );
    let outcomes: u64 = run["outcomes"]
        .as_object()
        .expect("outcomes")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(outcomes, attempts, "{what}: every attempt has one outcome");
    let series = &run["series"];
    let len = series["goodput_pct"].as_array().map_or(0, Vec::len);
    assert!(len > 0, "{what}: empty series");
    assert_eq!(
        series["p99_ms"].as_array().map(Vec::len),
        Some(len),
        "{what}"
    );
    assert_eq!(
        series["waiting"].as_array().map(Vec::len),
        Some(len),
        "{what}"
    );
}

fn check_html(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    let charts = 1 + 2 * ScenarioKind::ALL.len();
    assert_eq!(html.matches("<svg").count(), charts, "one <svg> per chart");
    assert_eq!(html.matches("</svg>").count(), charts, "every <svg> closed");
    assert!(html.contains("id=\"chart-summary\""));
    for kind in ScenarioKind::ALL {
        for chart in ["goodput", "p99"] {
            let id = format!("id=\"chart-{}-{chart}\"", kind.name());
            assert!(html.contains(&id), "missing {id}");
        }
    }
    // Self-contained: nothing to fetch, nothing to run.
    for outside in ["<script", "<link", "src=", "@import", "url("] {
        assert!(!html.contains(outside), "the page references `{outside}`");
    }
}

#[test]
fn real_clock_runs_too() {
    let dir = support::out_dir("real_clock");
    let out = support::run_ok(
        &dir,
        &[
            "--clock",
            "real",
            "--scale",
            "0.02",
            "--pools",
            "stormpool,bb8",
            "--scenarios",
            "steady,closed-loop",
            "-q",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Effective capacity: "), "{stdout}");
    assert!(stdout.contains("Machine: "), "{stdout}");
    let json = std::fs::read_to_string(dir.join("results.json")).expect("results.json");
    let report: Value = serde_json::from_str(&json).expect("results.json parses");
    assert_eq!(report["params"]["clock"], "real");
    // The effective capacity: the best of the floor and the run's pools in
    // a saturated closed loop, at most the nominal capacity.
    let nominal = report["capacity_rps"].as_f64().expect("nominal");
    let effective = report["effective_capacity_rps"]
        .as_f64()
        .expect("an effective capacity in real time");
    assert!(effective > 0.0 && effective <= nominal, "{effective}");
    let calibration = &report["calibration"];
    let pools: Vec<&str> = calibration["pools"]
        .as_array()
        .expect("calibrated pools")
        .iter()
        .filter_map(|p| p["pool"].as_str())
        .collect();
    assert_eq!(pools, ["semaphore", "stormpool", "bb8"]);
    let best = calibration["pools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["median_rps"].as_f64())
        .fold(0.0, f64::max);
    assert_eq!(effective, best.min(nominal));
    // Recovery is judged against twice the time a query takes at that
    // rate, which is at least twice the service time.
    let connections = report["params"]["connections"]
        .as_f64()
        .expect("connections");
    let bound_ms = report["recovery_rule"]["bound"].as_f64().expect("bound");
    let query_ms = 1000.0 * connections / effective;
    assert!(
        (bound_ms - 2.0 * query_ms).abs() < 1e-3,
        "{bound_ms} {query_ms}"
    );
    assert!(bound_ms >= 2.0 * report["params"]["service"].as_f64().expect("service"));
    for scenario in report["scenarios"].as_array().expect("scenarios") {
        let runs = scenario["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 2);
        for run in runs {
            // Goodput in % of both capacities: the effective one is the
            // smaller, so its percentage is the larger.
            let of_nominal = run["goodput_pct"].as_f64().expect("goodput");
            let of_effective = run["goodput_pct_effective"]
                .as_f64()
                .expect("goodput in % of the effective capacity");
            assert!(of_effective >= of_nominal, "{of_effective} < {of_nominal}");
        }
    }
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert!(html.contains("<h2>Capacity</h2>"));
    assert!(html.contains("Effective: "));
}
