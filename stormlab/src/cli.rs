//! The command line: clap parses, [`Cli::into_config`] validates into a
//! [`LabConfig`] with one-line errors.
//!
//! Pools, scenarios and the clock are parsed as plain strings and checked
//! here rather than by clap, so that a wrong name gets a single line that
//! lists the right ones.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::base::{Backend, Clock, DbUrl, LabError, LabParams, PoolKind, ScenarioKind};
use crate::config::{LabConfig, Outputs};

/// The largest pool the lab accepts.
const MAX_CONNECTIONS: u64 = 4096;

/// The most closed-loop workers the lab accepts.
const MAX_WORKERS: usize = 65536;

/// The storm lab: replays timeout storms against stormpool, deadpool, bb8
/// and a model of the pre-fix Vitess smartconnpool waitlist, side by side.
#[derive(Debug, Parser)]
#[command(name = "stormlab", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Pools to compare, comma separated: stormpool, stormpool-noprop, deadpool, bb8,
    /// prefix (simulation only), mysql_async (MySQL only), or all (the database's own
    /// list, see --list).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "all",
        value_name = "LIST"
    )]
    pub pools: Vec<String>,

    /// Scenarios to run, comma separated (see --list), or all.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "all",
        value_name = "LIST"
    )]
    pub scenarios: Vec<String>,

    /// Multiplies every phase's duration (0.05 for a quick look).
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub scale: f64,

    /// Pool size; the database serves this many queries at once, so capacity
    /// is connections / service time.
    #[arg(
        long,
        visible_alias = "capacity",
        default_value_t = 16,
        value_name = "N"
    )]
    pub connections: u64,

    /// Server time of one query, in whole milliseconds.
    #[arg(long, default_value_t = 2, value_name = "MS")]
    pub service_ms: u64,

    /// Each request's deadline, in whole milliseconds.
    #[arg(long, default_value_t = 50, value_name = "MS")]
    pub deadline_ms: u64,

    /// The hold limit of the wedged-max-hold and wedged-no-cancel scenarios, in
    /// milliseconds.
    #[arg(long, default_value_t = 100, value_name = "MS")]
    pub max_hold_ms: u64,

    /// stormpool's max_orphans: the most revoked connections whose holders have not
    /// let go; the pool holds at most connections + max_orphans sessions on the
    /// server (0: max_hold revokes nothing). Defaults to stormpool's own.
    #[arg(long, default_value_t = stormpool::Config::default().max_orphans, value_name = "N")]
    pub max_orphans: usize,

    /// Workers of the closed loop (the closed-loop scenario, and the effective-capacity
    /// calibration in real time).
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub workers: usize,

    /// Seed of the arrival processes: the same seed gives the same virtual run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// virtual (deterministic, paused tokio clock) or real (wall clock, multi-thread
    /// runtime; on the simulated database the effective capacity is measured first); a
    /// live database always runs in real time [default: virtual].
    #[arg(long, value_name = "CLOCK")]
    pub clock: Option<String>,

    /// Runs executed at once under the virtual clock [default: number of cores].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Folder of the default report files.
    #[arg(long, default_value = "target/stormlab", value_name = "DIR")]
    pub out_dir: PathBuf,

    /// The HTML report [default: report.html in --out-dir].
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,

    /// The JSON results [default: results.json in --out-dir].
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Run against a live PostgreSQL server instead of the simulation.
    #[arg(long, value_name = "URL")]
    pub pg_url: Option<String>,

    /// Run against a live MySQL server instead of the simulation.
    #[arg(long, value_name = "URL")]
    pub mysql_url: Option<String>,

    /// Hide the progress bar.
    #[arg(long, short)]
    pub quiet: bool,

    /// List the pools and scenarios, then exit.
    #[arg(long)]
    pub list: bool,
}

const AFTER_HELP: &str = "\
Default: every pool through every scenario on the embedded simulated database,
16 connections, 2 ms queries (capacity 8,000 req/s), 50 ms deadlines (an hour in
the closed loop), on tokio's paused clock, writing target/stormlab/report.html
and target/stormlab/results.json.";

impl Cli {
    /// Validates the options.
    pub fn into_config(self) -> Result<LabConfig, LabError> {
        let usage = |msg: &str| Err(LabError::Usage(msg.to_string()));
        if self.connections == 0 {
            return usage("--connections must be at least 1: zero connections serve nothing");
        }
        if self.connections > MAX_CONNECTIONS {
            return usage("--connections must be at most 4096");
        }
        if self.service_ms == 0 || self.service_ms > 60_000 {
            return usage("--service-ms must be between 1 and 60000");
        }
        if self.deadline_ms < self.service_ms || self.deadline_ms > 600_000 {
            return usage(
                "--deadline-ms must be at least --service-ms (else no request can finish) \
                 and at most 600000",
            );
        }
        if self.max_hold_ms == 0 {
            return usage("--max-hold-ms must be at least 1");
        }
        if self.max_orphans as u64 > MAX_CONNECTIONS {
            return usage("--max-orphans must be at most 4096");
        }
        if self.workers == 0 || self.workers > MAX_WORKERS {
            return usage("--workers must be between 1 and 65536");
        }
        if !(self.scale.is_finite() && self.scale > 0.0 && self.scale <= 100.0) {
            return usage("--scale must be a number above 0 and at most 100");
        }
        let clock = match self.clock.as_deref().unwrap_or("virtual") {
            "virtual" => Clock::Virtual,
            "real" => Clock::Real,
            other => {
                return Err(LabError::Usage(format!(
                    "unknown clock `{other}` (expected virtual or real)"
                )))
            }
        };
        let jobs = match self.jobs {
            Some(0) => return usage("--jobs must be at least 1"),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let backend = Backend::from_options(self.pg_url.as_deref(), self.mysql_url.as_deref())?;
        if backend != Backend::Sim && self.clock.as_deref() == Some("virtual") {
            return usage("--clock virtual runs on the simulated database only");
        }
        // A live server runs in real time.
        let clock = if backend == Backend::Sim {
            clock
        } else {
            Clock::Real
        };
        let pools =
            names(&self.pools, backend.pools(), PoolKind::from_name).map_err(
                |name| match name {
                    Some(name) => LabError::UnknownPool(name),
                    None => LabError::Usage("--pools names no pool".into()),
                },
            )?;
        if let Some(pool) = pools.iter().find(|p| !backend.supports(**p)) {
            return Err(LabError::PoolUnsupported {
                pool: pool.name(),
                database: backend.name(),
            });
        }
        let runnable: Vec<ScenarioKind> = ScenarioKind::ALL
            .into_iter()
            .filter(|s| backend.runs(*s))
            .collect();
        let scenarios = names(&self.scenarios, &runnable, ScenarioKind::from_name).map_err(
            |name| match name {
                Some(name) => LabError::UnknownScenario(name),
                None => LabError::Usage("--scenarios names no scenario".into()),
            },
        )?;
        if let Some(scenario) = scenarios.iter().find(|s| !backend.runs(**s)) {
            return Err(LabError::ScenarioUnsupported {
                scenario: scenario.name(),
                database: backend.name(),
            });
        }
        let outputs = Outputs {
            html: Some(
                self.html
                    .unwrap_or_else(|| self.out_dir.join("report.html")),
            ),
            json: Some(
                self.json
                    .unwrap_or_else(|| self.out_dir.join("results.json")),
            ),
        };
        Ok(LabConfig {
            pools,
            scenarios,
            params: LabParams {
                connections: self.connections as usize,
                service: Duration::from_millis(self.service_ms),
                deadline: Duration::from_millis(self.deadline_ms),
                scale: self.scale,
                seed: self.seed,
                clock,
                max_hold: Duration::from_millis(self.max_hold_ms),
                max_orphans: self.max_orphans,
                workers: self.workers,
            },
            backend,
            outputs,
            jobs,
            quiet: self.quiet,
            print_tables: true,
        })
    }
}

/// Resolves a list of names ("all" for every one), keeping the first
/// mention's order and dropping repeats. `Err(Some(name))`: an unknown
/// name; `Err(None)`: no name at all.
fn names<T: Copy + PartialEq>(
    given: &[String],
    all: &[T],
    from_name: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, Option<String>> {
    let mut out = Vec::new();
    for name in given.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let found = match name {
            "all" => all.to_vec(),
            _ => vec![from_name(name).ok_or_else(|| Some(name.to_string()))?],
        };
        for item in found {
            if !out.contains(&item) {
                out.push(item);
            }
        }
    }
    if out.is_empty() {
        return Err(None);
    }
    Ok(out)
}

/// The pools and scenarios, one per line, for `--list`.
pub fn listing(params: &LabParams) -> String {
    let mut out = String::from("pools (simulated database; * = run by `all`):\n");
    for pool in PoolKind::ALL {
        let star = if Backend::Sim.pools().contains(&pool) {
            '*'
        } else {
            ' '
        };
        out += &format!(
            "  {:<16} {star} {}\n",
            pool.name(),
            Backend::Sim.describe(pool)
        );
    }
    let pg = Backend::Postgres(DbUrl {
        url: String::new(),
        host: String::new(),
        port: 5432,
    });
    let mysql = Backend::Mysql(DbUrl {
        url: String::new(),
        host: String::new(),
        port: 3306,
    });
    for (backend, option) in [(&pg, "--pg-url"), (&mysql, "--mysql-url")] {
        out += &format!(
            "pools (live {}, {option}; all of them run by `all`):\n",
            backend.name()
        );
        for pool in backend.pools() {
            out += &format!("  {:<16}   {}\n", pool.name(), backend.describe(*pool));
        }
    }
    out += "scenarios:\n";
    for kind in ScenarioKind::ALL {
        out += &format!("  {:<16} {}\n", kind.name(), kind.build(params).title);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<LabConfig, LabError> {
        let cli = Cli::try_parse_from(std::iter::once("stormlab").chain(args.iter().copied()))
            .map_err(|e| LabError::Usage(e.to_string()))?;
        cli.into_config()
    }

    #[test]
    fn defaults_run_everything() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.pools, Backend::Sim.pools());
        assert_eq!(config.scenarios, ScenarioKind::ALL);
        assert_eq!(config.params.capacity_rps(), 8000.0);
        let html = config.outputs.html.unwrap();
        assert_eq!(html, PathBuf::from("target/stormlab/report.html"));
    }

    #[test]
    fn lists_are_resolved_in_order_without_repeats() {
        let config =
            parse(&["--pools", "prefix,stormpool,prefix", "--scenarios", "spike"]).unwrap();
        assert_eq!(config.pools, [PoolKind::Prefix, PoolKind::Stormpool]);
        assert_eq!(config.scenarios, [ScenarioKind::Spike]);
    }

    #[test]
    fn bad_options_are_usage_errors() {
        for args in [
            &["--pools", "hikari"][..],
            &["--scenarios", "tornado"],
            &["--connections", "0"],
            &["--capacity", "0"],
            &["--scale", "0"],
            &["--clock", "sundial"],
            &["--deadline-ms", "1"],
            &["--pools", ""],
            &["--max-orphans", "5000"],
            &["--workers", "0"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
            assert!(!err.to_string().contains('\n'), "{args:?}: {err}");
        }
    }
}
