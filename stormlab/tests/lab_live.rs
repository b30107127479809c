//! The lab against the live PostgreSQL server (`STORMPOOL_PG_URL`; skipped
//! when unset, failing under `CI=true`): a short storm for stormpool and
//! deadpool-postgres writes complete results, the server's effective
//! capacity measured first, and stormpool leaves less dead work on the
//! server. No absolute timing is asserted.

mod support;

use serde_json::Value;

#[test]
fn a_short_storm_against_postgres() {
    let Some(url) = stormpool_testkit::db::pg_url() else {
        return;
    };
    let dir = support::out_dir("live_storm");
    let args = [
        "--pg-url",
        url.as_str(),
        "--scenarios",
        "storm",
        "--pools",
        "stormpool,deadpool",
        "--scale",
        "0.05",
        "--quiet",
    ];
    let out = support::run_ok(&dir, &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("storm: "), "{stdout}");
    let json = std::fs::read_to_string(dir.join("results.json")).expect("results.json");
    let report: Value = serde_json::from_str(&json).expect("results.json parses");
    assert_eq!(report["backend"], "PostgreSQL");
    assert_eq!(report["recovery_rule"]["quantile"], 0.9);
    // The capacity of the server and the machine together, measured through
    // the run's pools (the semaphore floor exists on the simulation only).
    let effective = report["effective_capacity_rps"]
        .as_f64()
        .expect("an effective capacity on a live server");
    assert!(effective > 0.0, "{effective}");
    let calibrated: Vec<&str> = report["calibration"]["pools"]
        .as_array()
        .expect("calibration pools")
        .iter()
        .map(|p| p["pool"].as_str().expect("pool name"))
        .collect();
    assert_eq!(calibrated, ["stormpool", "deadpool"]);
    let runs = report["scenarios"][0]["runs"].as_array().expect("runs");
    let dead = |pool: &str| {
        let run = runs
            .iter()
            .find(|r| r["pool"] == pool)
            .unwrap_or_else(|| panic!("a {pool} run"));
        assert!(
            run["server"]["queries"].as_u64().unwrap_or(0) > 0,
            "{pool}: no statement"
        );
        run["server"]["abandoned_ms"].as_f64().expect("dead work")
    };
    let (stormpool, deadpool) = (dead("stormpool"), dead("deadpool"));
    println!("dead work: stormpool {stormpool:.1} ms, deadpool-postgres {deadpool:.1} ms");
    assert!(
        stormpool < deadpool,
        "stormpool left {stormpool} ms of dead work, deadpool-postgres {deadpool} ms"
    );
}
