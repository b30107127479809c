//! Bad options get a one-line error and a non-zero exit, never a panic, and
//! write nothing.

mod support;

use std::net::TcpListener;

/// Runs the binary with `args` (plus an output folder) and returns its one
/// line of error.
fn fails(test: &str, args: &[&str], code: i32) -> String {
    let dir = support::out_dir(test);
    let out = support::run_in(&dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: not one line: {stderr}"
    );
    assert!(stderr.starts_with("stormlab: "), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}: printed on stdout");
    assert!(
        !dir.join("results.json").exists(),
        "{args:?}: wrote results"
    );
    stderr
}

#[test]
fn unknown_pool() {
    let err = fails("unknown_pool", &["--pools", "stormpool,hikari"], 2);
    assert!(err.contains("unknown pool `hikari`"), "{err}");
    assert!(err.contains("deadpool"), "lists the known pools: {err}");
}

#[test]
fn unknown_scenario() {
    let err = fails("unknown_scenario", &["--scenarios", "tornado"], 2);
    assert!(err.contains("unknown scenario `tornado`"), "{err}");
}

#[test]
fn zero_capacity() {
    for flag in ["--connections", "--capacity"] {
        let err = fails("zero_capacity", &[flag, "0"], 2);
        assert!(err.contains("at least 1"), "{err}");
    }
}

#[test]
fn malformed_values() {
    for args in [
        &["--connections", "many"][..],
        &["--scale=0"],
        &["--clock", "sundial"],
        &["--deadline-ms", "1"],
        &["--max-orphans", "5000"],
        &["--max-orphans", "-1"],
        &["--no-such-option"],
        &["--pg-url", "localhost:5432"],
        &["--pg-url", "postgres://a", "--mysql-url", "mysql://b"],
    ] {
        fails("malformed_values", args, 2);
    }
}

#[test]
fn unreachable_database() {
    // Port 1 on the loopback: nothing listens there, the connect is refused.
    let err = fails(
        "unreachable_pg",
        &["--pg-url", "postgres://lab@127.0.0.1:1/lab"],
        1,
    );
    assert!(
        err.contains("cannot reach PostgreSQL at 127.0.0.1:1"),
        "{err}"
    );
    let err = fails(
        "unreachable_mysql",
        &["--mysql-url", "mysql://lab@127.0.0.1:1/lab"],
        1,
    );
    assert!(err.contains("cannot reach MySQL at 127.0.0.1:1"), "{err}");
}

#[test]
fn a_server_that_does_not_answer_is_reported() {
    // Accepts connections (the kernel does) but never speaks.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    let url = format!("postgres://lab@127.0.0.1:{port}/lab");
    let err = fails("silent_server", &["--pg-url", &url], 1);
    assert!(err.contains("PostgreSQL: connecting: no answer"), "{err}");
}

#[test]
fn simulation_only_pools_and_scenarios_are_refused_on_a_live_server() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    let url = format!("postgres://lab@127.0.0.1:{port}/lab");
    let err = fails("prefix_live", &["--pg-url", &url, "--pools", "prefix"], 2);
    assert!(
        err.contains("pool `prefix` does not run on the PostgreSQL"),
        "{err}"
    );
    let err = fails("virtual_live", &["--pg-url", &url, "--clock", "virtual"], 2);
    assert!(err.contains("simulated database only"), "{err}");
    let args = ["--pg-url", &url, "--scenarios", "wedged-no-cancel"];
    let err = fails("no_cancel_live", &args, 2);
    assert!(
        err.contains("scenario `wedged-no-cancel` does not run on the PostgreSQL"),
        "{err}"
    );
}

#[test]
fn help_list_and_version_succeed() {
    for args in [&["--help"][..], &["--version"], &["--list"]] {
        let out = support::stormlab(args);
        assert!(out.status.success(), "{args:?}");
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
}
