//! Tables of results, built once and rendered as text (terminal) or HTML.

use super::{Report, ScenarioReport};
use crate::metrics::{Recovery, RunResult};

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

/// The results of one scenario, one row per pool.
pub fn scenario_table(capacity_rps: f64, report: &ScenarioReport) -> Table {
    let scenario = &report.scenario;
    let mut headers = vec!["pool".to_string()];
    for phase in &scenario.phases {
        headers.push(format!("{} {}x", phase.name, phase.load));
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
    if scenario.holders > 0 {
        headers.extend(["holders stuck".into(), "revoked".into()]);
    }
    if let Some(s) = first.and_then(|r| r.classes) {
        headers.extend([format!("{} %", s.first), format!("{} %", s.second)]);
    }
    if let Some(s) = first.and_then(|r| r.tenants) {
        headers.extend([format!("{} %", s.first), format!("{} %", s.second)]);
    }
    let rows = report
        .runs
        .iter()
        .map(|run| scenario_row(run, scenario.recovery_from.is_some()))
        .collect();
    Table {
        caption: format!(
            "{}: {}. Goodput per phase in % of capacity ({} req/s).",
            scenario.name(),
            scenario.title,
            thousands(capacity_rps.round() as u64)
        ),
        headers,
        rows,
    }
}

fn scenario_row(run: &RunResult, with_recovery: bool) -> Vec<String> {
    let mut row = vec![run.pool.name().to_string()];
    row.extend(run.phases.iter().map(|p| format!("{:.1}", p.goodput_pct)));
    row.extend([
        format!("{:.1}", run.served_pct),
        thousands(run.outcomes.dead_handoffs),
        thousands(run.outcomes.late_handoffs),
        millis(run.latency.p50_ms),
        millis(run.latency.p99_ms),
        thousands(run.max_waiting as u64),
        format!("{:.2}", run.server.abandoned_ms / 1000.0),
    ]);
    if with_recovery {
        row.push(recovery(run.recovery));
        row.push(millis_or(
            run.recovery.and_then(|r| r.first_success_ms),
            "none",
        ));
    }
    if let Some(holders) = run.holders {
        row.push(format!("{} of {}", holders.stuck, holders.started));
        row.push(holders.revoked.map_or_else(|| "n/a".into(), thousands));
    }
    for shares in [run.classes, run.tenants].into_iter().flatten() {
        row.extend([
            format!("{:.1}", shares.first_pct),
            format!("{:.1}", shares.second_pct),
        ]);
    }
    row
}

/// The headline goodput of every pool in every scenario.
pub fn summary_table(report: &Report) -> Table {
    let mut headers = vec!["scenario (headline phase)".to_string()];
    headers.extend(report.pools.iter().map(|p| p.name.name().to_string()));
    let rows = report
        .scenarios
        .iter()
        .map(|s| {
            let phase = &s.scenario.phases[s.scenario.headline];
            let mut row = vec![format!(
                "{} ({} {}x)",
                s.scenario.name(),
                phase.name,
                phase.load
            )];
            row.extend(s.runs.iter().map(|r| format!("{:.1}", r.goodput_pct)));
            row
        })
        .collect();
    Table {
        caption: format!(
            "Goodput in % of capacity ({} req/s), headline phase of each scenario.",
            thousands(report.capacity_rps.round() as u64)
        ),
        headers,
        rows,
    }
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
