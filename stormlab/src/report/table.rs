//! Tables of results, built once and rendered as text (terminal) or HTML.

use super::{Report, ScenarioReport};
use crate::base::PoolKind;
use crate::calibration::Calibration;
use crate::metrics::{Capacity, Recovery, RunResult};
use crate::scenario::Scenario;

/// A table of formatted cells; the first column is a label, the others are
/// numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// A line introducing the table.
    pub caption: String,
    /// The column headers.
    pub headers: Vec<String>,
    /// The rows, as many cells as headers each.
    pub rows: Vec<Vec<String>>,
}

/// The results of one scenario, one row per pool: goodput per phase in %
/// of the nominal capacity, and of the effective one where it was measured
/// ("92.5 / 98.5").
pub fn scenario_table(capacity: Capacity, report: &ScenarioReport) -> Table {
    if report.scenario.closed.is_some() {
        return closed_loop_table(capacity, report);
    }
    let scenario = &report.scenario;
    let mut headers = vec!["pool".to_string()];
    for i in 0..scenario.phases.len() {
        headers.push(scenario.phase_label(i));
    }
    headers.extend(
        [
            "served %",
            "dead hand-offs",
            "late hand-offs",
            "p50 ms",
            "p99 ms",
            "max waiting",
            "dead work s",
        ]
        .map(String::from),
    );
    let first = report.runs.first();
    if scenario.recovery_from.is_some() {
        headers.extend(["recovery".into(), "first success".into()]);
    }
    if scenario.reports_errors {
        headers.extend(["shed", "shed %", "timeouts", "other errors"].map(String::from));
    }
    if scenario.holders > 0 {
        headers.extend(["holders stuck".into(), "revoked".into()]);
    }
    if let Some(s) = first.and_then(|r| r.classes) {
        headers.extend([
            format!("{} %", s.first),
            format!("{} %", s.second),
            format!("{} % of possible", s.first),
        ]);
    }
    if let Some(s) = first.and_then(|r| r.tenants) {
        headers.extend([format!("{} %", s.first), format!("{} %", s.second)]);
    }
    let rows = report
        .runs
        .iter()
        .map(|run| scenario_row(run, scenario))
        .collect();
    Table {
        caption: format!(
            "{}: {}. Goodput per phase in {}.",
            scenario.name(),
            scenario.title,
            of_capacity(capacity)
        ),
        headers,
        rows,
    }
}

/// What goodput is a percentage of, for captions.
fn of_capacity(capacity: Capacity) -> String {
    let nominal = thousands(capacity.nominal_rps.round() as u64);
    match capacity.effective_rps {
        None => format!("% of capacity ({nominal} req/s)"),
        Some(effective) => format!(
            "% of nominal capacity ({nominal} req/s) / % of effective capacity ({} req/s, \
             measured; loads are multiples of it)",
            thousands(effective.round() as u64)
        ),
    }
}

/// A goodput cell: % of nominal, and of effective where measured.
fn goodput(pct: f64, effective: Option<f64>) -> String {
    match effective {
        None => format!("{pct:.1}"),
        Some(e) => format!("{pct:.1} / {e:.1}"),
    }
}

fn scenario_row(run: &RunResult, scenario: &Scenario) -> Vec<String> {
    let mut row = vec![run.pool.name().to_string()];
    row.extend(
        run.phases
            .iter()
            .map(|p| goodput(p.goodput_pct, p.goodput_pct_effective)),
    );
    row.extend([
        format!("{:.1}", run.served_pct),
        thousands(run.outcomes.dead_handoffs),
        thousands(run.outcomes.late_handoffs),
        millis(run.latency.p50_ms),
        millis(run.latency.p99_ms),
        thousands(run.max_waiting as u64),
        format!("{:.2}", run.server.abandoned_ms / 1000.0),
    ]);
    if scenario.recovery_from.is_some() {
        row.push(recovery(run.recovery));
        row.push(millis_or(
            run.recovery.and_then(|r| r.first_success_ms),
            "none",
        ));
    }
    if scenario.reports_errors {
        row.extend(errors(run));
    }
    if let Some(holders) = run.holders {
        row.push(format!("{} of {}", holders.stuck, holders.started));
        row.push(holders.revoked.map_or_else(|| "n/a".into(), thousands));
    }
    if let Some(shares) = run.classes {
        row.extend([
            format!("{:.1}", shares.first_pct),
            format!("{:.1}", shares.second_pct),
            run.critical_of_possible_pct
                .map_or_else(|| "n/a".into(), |p| format!("{p:.1}")),
        ]);
    }
    if let Some(shares) = run.tenants {
        row.extend([
            format!("{:.1}", shares.first_pct),
            format!("{:.1}", shares.second_pct),
        ]);
    }
    row
}

/// The shed requests (count and % of attempts), the timeouts and the
/// other errors of a run.
fn errors(run: &RunResult) -> [String; 4] {
    let shed_pct = if run.attempts > 0 {
        100.0 * run.errors.shed as f64 / run.attempts as f64
    } else {
        0.0
    };
    [
        thousands(run.errors.shed),
        format!("{shed_pct:.2}"),
        thousands(run.errors.timeouts()),
        thousands(run.errors.others()),
    ]
}

/// A closed loop: throughput, the wait for a connection, and errors.
fn closed_loop_table(capacity: Capacity, report: &ScenarioReport) -> Table {
    let scenario = &report.scenario;
    let mut headers = vec!["pool".to_string(), scenario.phase_label(0)];
    headers.extend(
        [
            "req/s",
            "wait p50 ms",
            "wait p99 ms",
            "wait max ms",
            "p99 ms",
            "shed",
            "shed %",
            "timeouts",
            "other errors",
            "max waiting",
        ]
        .map(String::from),
    );
    let rows = report
        .runs
        .iter()
        .map(|run| {
            let mut row = vec![
                run.pool.name().to_string(),
                goodput(run.goodput_pct, run.goodput_pct_effective),
                thousands(run.throughput_rps.round() as u64),
                millis(run.wait.p50_ms),
                millis(run.wait.p99_ms),
                millis(run.wait.max_ms),
                millis(run.latency.p99_ms),
            ];
            row.extend(errors(run));
            row.push(thousands(run.max_waiting as u64));
            row
        })
        .collect();
    Table {
        caption: format!(
            "{}: {}. Throughput in {}.",
            scenario.name(),
            scenario.title,
            of_capacity(capacity)
        ),
        headers,
        rows,
    }
}

/// The headline goodput of every pool in every scenario.
pub fn summary_table(report: &Report) -> Table {
    let mut headers = vec!["scenario (headline phase)".to_string()];
    headers.extend(report.pools.iter().map(|p| p.name.name().to_string()));
    let rows = report
        .scenarios
        .iter()
        .map(|s| {
            let label = s.scenario.phase_label(s.scenario.headline);
            let mut row = vec![format!("{} ({label})", s.scenario.name())];
            row.extend(
                s.runs
                    .iter()
                    .map(|r| goodput(r.goodput_pct, r.goodput_pct_effective)),
            );
            row
        })
        .collect();
    Table {
        caption: format!(
            "Goodput in {}, headline phase of each scenario.",
            of_capacity(report.capacity())
        ),
        headers,
        rows,
    }
}

/// The effective capacity and how it was measured, in a few lines for the
/// terminal.
pub fn calibration_text(calibration: &Calibration, nominal_rps: f64) -> String {
    let rates: Vec<String> = calibration
        .pools
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p.pool.name(),
                thousands(p.median_rps.round() as u64)
            )
        })
        .collect();
    let through = match calibration.pools.first() {
        Some(p) if p.pool == PoolKind::Semaphore => "the semaphore floor and every pool",
        _ => "every pool",
    };
    format!(
        "Effective capacity: {} req/s, {:.1}% of the nominal {} req/s: the best median of \
         {} rounds of {} ms of a saturated closed loop ({} workers) through {through} \
         (req/s: {}).\n",
        thousands(calibration.effective_rps.round() as u64),
        calibration.effective_pct,
        thousands(nominal_rps.round() as u64),
        calibration.pools.first().map_or(0, |p| p.rounds_rps.len()),
        calibration.round.as_millis(),
        calibration.workers,
        rates.join(", ")
    )
}

impl Table {
    /// The table as aligned text: the label column left, numbers right.
    pub fn to_text(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                if i == 0 {
                    out.push_str(&format!("{cell:<w$}"));
                } else {
                    out.push_str(&format!("  {cell:>w$}"));
                }
            }
            out.trim_end().to_string() + "\n"
        };
        let mut out = format!("{}\n", self.caption);
        out += &line(&self.headers);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out += &line(&rule);
        for row in &self.rows {
            out += &line(row);
        }
        out
    }
}

/// A count with thousands separators: 12,345.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn millis(ms: Option<f64>) -> String {
    ms.map_or_else(|| "n/a".into(), |ms| format!("{ms:.1}"))
}

fn millis_or(ms: Option<f64>, none: &str) -> String {
    ms.map_or_else(|| none.into(), |ms| format!("{ms:.0} ms"))
}

/// A recovery time for a table cell.
pub fn recovery(recovery: Option<Recovery>) -> String {
    match recovery {
        None => "n/a".into(),
        Some(Recovery { ms: Some(ms), .. }) => format!("{ms:.0} ms"),
        Some(_) => "never".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn text_columns_align() {
        let table = Table {
            caption: "c".into(),
            headers: vec!["pool".into(), "goodput".into()],
            rows: vec![vec!["stormpool".into(), "9.5".into()]],
        };
        let text = table.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "pool       goodput");
        assert_eq!(lines[2], "---------  -------");
        assert_eq!(lines[3], "stormpool      9.5");
    }
}
