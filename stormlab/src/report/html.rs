//! The HTML report: one self-contained page (inline CSS and SVG, no script,
//! no external font or stylesheet) that a browser opens offline.

use std::fmt::Write;

use super::charts::{self, pool_css};
use super::table::{scenario_table, summary_table, thousands, Table};
use super::Report;
use crate::base::LabError;
use crate::calibration::Calibration;
use crate::metrics::{RECOVERY_WINDOW, RECOVERY_WINDOWS};

const STYLE: &str = "
body { font-family: sans-serif; margin: 2em auto; max-width: 1180px; color: #222;
       line-height: 1.45; padding: 0 1em; }
h1 { margin-bottom: 0.2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.params { color: #555; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
caption { text-align: left; color: #555; padding-bottom: 0.3em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #e4e4e4; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f5f5f5; font-weight: 600; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.4em;
          border-radius: 2px; vertical-align: baseline; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.chart svg { max-width: 100%; height: auto; border: 1px solid #eee; }
.notes { color: #8a5a00; }
dt { font-weight: 600; margin-top: 0.5em; }
";

/// The whole page.
pub fn render(report: &Report) -> Result<String, LabError> {
    let mut page = String::new();
    let p = &report.params;
    page += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    page += "<title>stormlab report</title>\n<style>";
    page += STYLE;
    page += "</style>\n</head>\n<body>\n<h1>stormlab: pools in a timeout storm</h1>\n";
    let _ = writeln!(
        page,
        "<p class=\"params\">{} database, {} connections, {} ms service time \
         (capacity {:.0} req/s), {} ms deadlines, max_hold {} ms and max_orphans {} \
         where a scenario sets a hold limit, duration scale {}, seed {}, {} clock; \
         stormlab {}, suite wall time {:.1} s.</p>",
        report.backend,
        p.connections,
        p.service.as_millis(),
        report.capacity_rps,
        p.deadline.as_millis(),
        p.max_hold.as_millis(),
        p.max_orphans,
        p.scale,
        p.seed,
        p.clock.name(),
        report.version,
        report.wall_time_s,
    );
    let _ = writeln!(
        page,
        "<p class=\"params\">Machine: {}.</p>",
        escape(&report.machine.describe())
    );
    if let Some(calibration) = &report.calibration {
        page += &calibration_html(report, calibration);
    }
    page += HOW_TO_READ;
    page += "<h2>Pools</h2>\n<ul>\n";
    for info in &report.pools {
        let _ = writeln!(
            page,
            "<li><span class=\"swatch\" style=\"background:{}\"></span><b>{}</b>: {}</li>",
            pool_css(info.name),
            info.name.name(),
            escape(info.description)
        );
    }
    page += "</ul>\n<h2>Summary</h2>\n";
    let _ = writeln!(
        page,
        "<div class=\"chart\" id=\"chart-summary\">{}</div>",
        charts::summary(report)?
    );
    page += &table_html(&summary_table(report));
    for s in &report.scenarios {
        let name = s.scenario.name();
        let _ = writeln!(
            page,
            "<section id=\"{name}\">\n<h2>{}</h2>\n<p>{}</p>",
            escape(s.scenario.title),
            escape(&s.scenario.description)
        );
        page += &table_html(&scenario_table(report.capacity(), s));
        let notes: Vec<String> = s
            .runs
            .iter()
            .flat_map(|r| {
                r.notes
                    .iter()
                    .map(move |n| format!("{}: {n}", r.pool.name()))
            })
            .collect();
        if !notes.is_empty() {
            page += "<ul class=\"notes\">\n";
            for note in notes {
                let _ = writeln!(page, "<li>{}</li>", escape(&note));
            }
            page += "</ul>\n";
        }
        let bound_ms = report.recovery_rule.bound.as_secs_f64() * 1000.0;
        let bound = if report.recovery_rule.bound == p.service * 2 {
            "2x service time"
        } else {
            "recovery bound"
        };
        let _ = writeln!(
            page,
            "<div class=\"charts\">\n<div class=\"chart\" id=\"chart-{name}-goodput\">{}</div>\n\
             <div class=\"chart\" id=\"chart-{name}-p99\">{}</div>\n</div>\n</section>",
            charts::goodput_over_time(s, report.capacity())?,
            charts::p99_over_time(s, bound_ms, bound)?
        );
    }
    page += &definitions(report);
    page += "</body>\n</html>\n";
    Ok(page)
}

const HOW_TO_READ: &str = "<h2>How to read this report</h2>
<p>Each scenario offers the same load to every pool (open-loop Poisson arrivals; the
closed loop's workers in <code>closed-loop</code>), over the same database (the embedded
simulation, or the live server named above), and every client gives up at its deadline
whatever the pool does. <b>Goodput</b> is what counts: requests whose query finished before their
deadline, per second, as a percentage of what the database can serve. Under 2x
overload a good pool stays near 100% of capacity (it serves half of the requests, in
time); a pool that hands connections to requests that have already given up, or too
late for their query to finish, spends the database on dead work and its goodput
collapses. <b>Dead hand-offs</b> and <b>late hand-offs</b> count that waste; the
<b>recovery</b> column says how long a pool takes to serve at normal latency again once
the load drops. In the charts, dashed vertical lines separate the phases; the dashed
horizontal lines are the capacity, nominal and effective (goodput), or the recovery
bound (p99). In real time on the simulated database the effective capacity is measured
first, loads are multiples of it, and goodput is given as % of nominal / % of
effective.</p>
";

fn definitions(report: &Report) -> String {
    let rule = &report.recovery_rule;
    let bound = format!("{:.1}", rule.bound.as_secs_f64() * 1000.0);
    let quantile = rule.quantile_name();
    let bound_is = if report.calibration.is_some() {
        "2x the time a query takes on this machine, connections / effective capacity: on \
         the wall clock a simulated query waits for the next millisecond tick of the timer \
         after its service time"
            .to_string()
    } else if report.backend == "simulated" {
        "2x the service time".to_string()
    } else {
        "2x the statement's latency on the idle server; the p90 rather than the p99, \
         because on a real machine scheduling stalls of a few ms make the p99 of a 100 ms \
         window in every pool alike"
            .to_string()
    };
    format!(
        "<h2>Definitions</h2>\n<dl>\n\
<dt>Capacity</dt><dd>connections / service time: the most requests per second the \
database can serve (the nominal capacity).</dd>\n\
<dt>Effective capacity</dt><dd>(real time on the simulated database) the most requests \
per second served in a saturated closed loop on this machine: the best median of three \
rounds through a tokio semaphore in front of a stack of connections (the least a pool \
can be) and through every pool of the run, measured before the scenarios. On the wall \
clock a query costs more than its service time, so this, not the nominal capacity, is \
the most any pool can serve.</dd>\n\
<dt>Acquire wait</dt><dd>from the start of an attempt to the pool's hand-off, for the \
attempts handed a connection (closed loop: p50, p99 and max).</dd>\n\
<dt>Shed, timeouts, other errors</dt><dd>attempts rejected by the pool's overload \
detection; attempts that timed out in the pool or were abandoned at their deadline; \
every other error (wedged, too many waiters, connect, query). Shed % is of all \
attempts.</dd>\n\
<dt>Critical % of possible</dt><dd>(priority mix) critical requests served in time, as % \
of the most that could be: the critical arrivals, or the (effective) capacity over the \
load if that is fewer.</dd>\n\
<dt>Goodput</dt><dd>successful requests (query finished before the deadline) per second, \
counted when they finish, as % of the nominal capacity (and, in real time, \
\"/\" % of the effective one); per phase in the tables, per bucket of time in the \
charts (where a second dashed line marks the effective capacity).</dd>\n\
<dt>Served %</dt><dd>client requests served in time by any of their attempts \
(retries included), as % of the requests.</dd>\n\
<dt>Dead hand-off</dt><dd>the pool yielded a connection to a request at or after its \
deadline (the client had given up).</dd>\n\
<dt>Late hand-off</dt><dd>the request got its connection before its deadline, but its \
query did not finish by then; the rest of the query runs on the server for nobody.</dd>\n\
<dt>p50 / p99</dt><dd>latency of successful attempts, from the attempt's start to the \
end of its query, over the whole run.</dd>\n\
<dt>Max waiting</dt><dd>the most requests waiting for a connection at once, sampled \
every 10 ms (the pool's own count where it has one: the pre-fix model counts the \
expired requests still listed).</dd>\n\
<dt>Dead work</dt><dd>server time spent on queries whose client had already given up, \
in seconds: counted exactly by the simulation; on a live server estimated by sampling \
the server's sessions every few milliseconds (each statement is tagged with its request), \
including what the pool left running after the load ended.</dd>\n\
<dt>Recovery</dt><dd>from the start of the phase where the load drops: a {window} ms \
window is good if it has a success and a success {quantile} of at most {bound} ms \
({bound_is}); the pool has recovered at the end of the first of {windows} back-to-back \
good windows, the first starting at the drop at the earliest (so {window} ms is the \
least recovery time), the windows sliding in 10 ms steps. \"never\": no {windows} good \
windows in a row fit in the load.</dd>\n\
<dt>First success</dt><dd>from the same start, when the first request was served in time.</dd>\n\
<dt>Holders stuck</dt><dd>(wedged scenarios) of the jobs without a deadline started as the \
wedge starts, one per connection, those still holding a connection with their query hanging \
when the run ended. They are not requests: no other measure counts them.</dd>\n\
<dt>Revoked</dt><dd>connections the pool took back for being held past its hold limit \
(max_hold): the query is cancelled on the server and a new connection takes the slot, at \
most max_orphans revoked connections still held at a time. n/a: the pool has no hold \
limit.</dd>\n</dl>\n",
        window = RECOVERY_WINDOW.as_millis(),
        windows = RECOVERY_WINDOWS,
    )
}

/// The effective capacity and how it was measured.
fn calibration_html(report: &Report, calibration: &Calibration) -> String {
    let mut table = Table {
        caption: format!(
            "Requests served per second in a saturated closed loop ({} workers, {} ms \
             rounds); the best median is the effective capacity.",
            calibration.workers,
            calibration.round.as_millis()
        ),
        headers: vec!["pool".into()],
        rows: Vec::new(),
    };
    let rounds = calibration.pools.first().map_or(0, |p| p.rounds_rps.len());
    for i in 0..rounds {
        table.headers.push(format!("round {}", i + 1));
    }
    table
        .headers
        .extend(["median".into(), "% of nominal".into()]);
    for p in &calibration.pools {
        let mut row = vec![p.pool.name().to_string()];
        row.extend(p.rounds_rps.iter().map(|r| format!("{r:.0}")));
        row.push(format!("{:.0}", p.median_rps));
        row.push(format!("{:.1}", 100.0 * p.median_rps / report.capacity_rps));
        table.rows.push(row);
    }
    format!(
        "<h2>Capacity</h2>\n<p>Nominal: {} req/s (connections / service time). \
         <b>Effective: {} req/s</b>, {:.1}% of nominal, reached by {} in a saturated \
         closed loop on this machine: on the wall clock a query costs more than its \
         service time (timer ticks, wake-ups, the pool's own work). Goodput is given as \
         % of nominal / % of effective.</p>\n{}",
        thousands(report.capacity_rps.round() as u64),
        thousands(calibration.effective_rps.round() as u64),
        calibration.effective_pct,
        calibration.best.name(),
        table_html(&table)
    )
}

fn table_html(table: &Table) -> String {
    let mut out = format!(
        "<table>\n<caption>{}</caption>\n<tr>",
        escape(&table.caption)
    );
    for h in &table.headers {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out += "</tr>\n";
    for row in &table.rows {
        out += "<tr>";
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out += "</tr>\n";
    }
    out + "</table>\n"
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
