//! The report's charts, drawn with plotters' SVG backend into strings that
//! the HTML page inlines: goodput and p99 over time per scenario (one line
//! per pool), and a summary of every scenario's headline goodput.
//!
//! Text is emitted as SVG `<text>` with a generic font family, so the page
//! needs no font file and renders offline.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Report, ScenarioReport};
use crate::base::LabError;
use crate::base::PoolKind;
use crate::metrics::{Capacity, RunResult};

const WIDTH: u32 = 576;
const HEIGHT: u32 = 320;
/// Room right of the plotting area for the legend.
const LEGEND_WIDTH: u32 = 96;
const FONT: &str = "sans-serif";

/// The colour of a pool's lines and bars, the same in every chart.
pub fn pool_color(pool: PoolKind) -> RGBColor {
    match pool {
        PoolKind::Stormpool => RGBColor(31, 119, 180),
        PoolKind::Deadpool => RGBColor(255, 127, 14),
        PoolKind::Bb8 => RGBColor(44, 160, 44),
        PoolKind::Prefix => RGBColor(214, 39, 40),
        PoolKind::StormpoolNoPropagation => RGBColor(148, 103, 189),
        PoolKind::MysqlAsync => RGBColor(140, 86, 75),
        PoolKind::Semaphore => RGBColor(127, 127, 127),
    }
}

/// The colour as CSS, for the HTML legend and tables.
pub fn pool_css(pool: PoolKind) -> String {
    let RGBColor(r, g, b) = pool_color(pool);
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn chart_error(e: impl std::fmt::Display) -> LabError {
    LabError::Chart(e.to_string())
}

/// One line of a time chart: `None` values leave a gap.
struct Line {
    pool: PoolKind,
    points: Vec<(f64, Option<f64>)>,
}

/// What a time chart shows.
struct TimeChart<'a> {
    /// What is plotted, for the caption.
    what: &'a str,
    y_desc: &'a str,
    /// The least top of the y axis.
    y_floor: f64,
    /// Dashed horizontal reference lines and their labels.
    references: Vec<(f64, String)>,
}

/// Goodput over time, in % of the nominal capacity, one line per pool; a
/// dashed line at the capacity, and one at the effective capacity where it
/// was measured.
pub fn goodput_over_time(report: &ScenarioReport, capacity: Capacity) -> Result<String, LabError> {
    let mut references = vec![(100.0, "capacity".to_string())];
    if let Some(effective) = capacity.of_nominal(capacity.effective_rps) {
        references[0].1 = "nominal capacity".into();
        references.push((effective, "effective".into()));
    }
    let chart = TimeChart {
        what: "goodput",
        y_desc: "goodput, % of capacity",
        y_floor: 110.0,
        references,
    };
    time_chart(report, &chart, |run, i| Some(run.series.goodput_pct[i]))
}

/// Success p99 latency over time, in ms, one line per pool, and a dashed
/// line at the recovery bound `bound_ms` (twice the service time, or the
/// query's measured time), labelled `bound`.
pub fn p99_over_time(
    report: &ScenarioReport,
    bound_ms: f64,
    bound: &str,
) -> Result<String, LabError> {
    let chart = TimeChart {
        what: "success p99",
        y_desc: "p99 latency, ms",
        y_floor: bound_ms * 1.5,
        references: vec![(bound_ms, bound.into())],
    };
    time_chart(report, &chart, |run, i| run.series.p99_ms[i])
}

fn lines(report: &ScenarioReport, value: impl Fn(&RunResult, usize) -> Option<f64>) -> Vec<Line> {
    report
        .runs
        .iter()
        .map(|run| {
            let bucket_s = run.series.bucket_ms / 1000.0;
            let points = (0..run.series.goodput_pct.len())
                .map(|i| ((i as f64 + 0.5) * bucket_s, value(run, i)))
                .collect();
            Line {
                pool: run.pool,
                points,
            }
        })
        .collect()
}

fn peak(lines: &[Line]) -> f64 {
    lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .fold(0.0, f64::max)
}

fn time_chart(
    report: &ScenarioReport,
    chart: &TimeChart<'_>,
    value: impl Fn(&RunResult, usize) -> Option<f64>,
) -> Result<String, LabError> {
    let lines = lines(report, value);
    let y_max = (peak(&lines) * 1.08).max(chart.y_floor);
    let caption = format!("{}: {} over time", report.scenario.name(), chart.what);
    let x_max = report.scenario.duration().as_secs_f64();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let axes = Axes {
            x: 0.0..x_max,
            y: 0.0..y_max,
            x_desc: Some("time, s"),
            y_desc: chart.y_desc,
        };
        let mut ctx = styled_chart(&root, &caption, axes)?;
        // Phase boundaries and names; hang phases shaded.
        let grey = BLACK.mix(0.35);
        for (i, (start, phase)) in report
            .scenario
            .phase_starts()
            .iter()
            .zip(&report.scenario.phases)
            .enumerate()
        {
            let x = start.as_secs_f64();
            if phase.hang {
                let end = x + phase.duration.as_secs_f64();
                ctx.draw_series(std::iter::once(Rectangle::new(
                    [(x, 0.0), (end, y_max)],
                    RGBColor(214, 39, 40).mix(0.12).filled(),
                )))
                .map_err(chart_error)?;
            }
            if x > 0.0 {
                ctx.draw_series(DashedLineSeries::new(
                    [(x, 0.0), (x, y_max)],
                    4,
                    4,
                    grey.stroke_width(1),
                ))
                .map_err(chart_error)?;
            }
            let label = report.scenario.phase_label(i);
            // Alternate heights, so that a short phase's name does not
            // overwrite the next one's.
            let y = y_max * if i % 2 == 0 { 0.97 } else { 0.91 };
            ctx.draw_series(std::iter::once(Text::new(
                label,
                (x + x_max * 0.01, y),
                (FONT, 11).into_font().color(&grey),
            )))
            .map_err(chart_error)?;
        }
        for (k, (y_ref, ref_label)) in chart.references.iter().enumerate() {
            let y_ref = *y_ref;
            ctx.draw_series(DashedLineSeries::new(
                [(0.0, y_ref), (x_max, y_ref)],
                6,
                4,
                BLACK.mix(0.6).stroke_width(1),
            ))
            .map_err(chart_error)?;
            // The second label under its line, clear of the first one's.
            let v = if k == 0 { VPos::Bottom } else { VPos::Top };
            ctx.draw_series(std::iter::once(Text::new(
                ref_label.clone(),
                (x_max * 0.99, y_ref),
                (FONT, 11)
                    .into_font()
                    .color(&BLACK.mix(0.6))
                    .pos(Pos::new(HPos::Right, v)),
            )))
            .map_err(chart_error)?;
        }
        // Pools that behave alike draw the same line: the first pools are
        // drawn last and thinnest, so an overlap shows as nested bands.
        for (j, line) in lines.iter().enumerate().rev() {
            draw_line(&mut ctx, line, 2 + 2 * j as u32)?;
        }
        let pools: Vec<PoolKind> = lines.iter().map(|l| l.pool).collect();
        legend(&root, WIDTH, &pools, false)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

/// Draws the legend in the room right of the plotting area, clear of the
/// data: a line (or a box, for bars) and the name of each pool.
fn legend(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    width: u32,
    pools: &[PoolKind],
    boxes: bool,
) -> Result<(), LabError> {
    let x = (width - LEGEND_WIDTH) as i32 + 8;
    for (i, &pool) in pools.iter().enumerate() {
        let y = 48 + 20 * i as i32;
        let color = pool_color(pool);
        if boxes {
            root.draw(&Rectangle::new(
                [(x, y - 6), (x + 14, y + 6)],
                color.filled(),
            ))
        } else {
            root.draw(&PathElement::new(
                vec![(x, y), (x + 18, y)],
                color.stroke_width(3),
            ))
        }
        .map_err(chart_error)?;
        root.draw(&Text::new(
            pool.name(),
            (x + 24, y),
            (FONT, 12)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(chart_error)?;
    }
    Ok(())
}

/// The axes of a chart; without an x description, the x axis has no labels
/// (the caller writes its own).
struct Axes<'a> {
    x: Range<f64>,
    y: Range<f64>,
    x_desc: Option<&'a str>,
    y_desc: &'a str,
}

/// A chart in the report's style: caption, light grid, room for the legend
/// on the right.
fn styled_chart<'a, 'b: 'a>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    axes: Axes<'_>,
) -> Result<Chart<'a, 'b>, LabError> {
    let mut ctx = ChartBuilder::on(root)
        .caption(caption, (FONT, 16))
        .margin(10)
        .margin_right(LEGEND_WIDTH)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(axes.x, axes.y)
        .map_err(chart_error)?;
    let mut mesh = ctx.configure_mesh();
    mesh.y_desc(axes.y_desc)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 12))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08));
    match axes.x_desc {
        Some(desc) => mesh.x_desc(desc),
        None => mesh.disable_x_mesh().x_labels(0),
    };
    mesh.draw().map_err(chart_error)?;
    Ok(ctx)
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Draws a line with gaps where values are missing.
fn draw_line(ctx: &mut Chart<'_, '_>, line: &Line, width: u32) -> Result<(), LabError> {
    let color = pool_color(line.pool);
    let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for &(x, y) in &line.points {
        match (y, segments.last_mut()) {
            (Some(y), Some(segment)) => segment.push((x, y)),
            (None, Some(segment)) if !segment.is_empty() => segments.push(Vec::new()),
            _ => {}
        }
    }
    for segment in segments.into_iter().filter(|s| !s.is_empty()) {
        // A lone point would be invisible as a line: draw it as a dot.
        if segment.len() == 1 {
            let dots = segment
                .into_iter()
                .map(|p| Circle::new(p, width, color.filled()));
            ctx.draw_series(dots).map_err(chart_error)?;
        } else {
            ctx.draw_series(LineSeries::new(segment, color.stroke_width(width)))
                .map_err(chart_error)?;
        }
    }
    Ok(())
}

/// Every scenario's headline goodput, as grouped bars (one group per
/// scenario, one bar per pool).
pub fn summary(report: &Report) -> Result<String, LabError> {
    let groups = report.scenarios.len().max(1);
    let pools = report.pools.len().max(1);
    let width = (130 * groups as u32 + LEGEND_WIDTH).clamp(WIDTH, 1200);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 380)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let axes = Axes {
            x: 0.0..groups as f64,
            y: 0.0..110.0,
            x_desc: None,
            y_desc: "goodput, % of capacity",
        };
        let caption = if report.effective_capacity_rps.is_some() {
            "Goodput in the headline phase of each scenario, % of capacity (dashed: effective)"
        } else {
            "Goodput in the headline phase of each scenario, % of capacity"
        };
        let mut ctx = styled_chart(&root, caption, axes)?;
        let bar = 0.8 / pools as f64;
        for (j, info) in report.pools.iter().enumerate() {
            let color = pool_color(info.name);
            let bars = report.scenarios.iter().enumerate().filter_map(|(i, s)| {
                let run = s.runs.iter().find(|r| r.pool == info.name)?;
                let x0 = i as f64 + 0.1 + j as f64 * bar;
                let y = run.goodput_pct.min(110.0);
                Some(Rectangle::new(
                    [(x0, 0.0), (x0 + bar * 0.9, y)],
                    color.filled(),
                ))
            });
            ctx.draw_series(bars).map_err(chart_error)?;
            let values = report.scenarios.iter().enumerate().filter_map(|(i, s)| {
                let run = s.runs.iter().find(|r| r.pool == info.name)?;
                let x = i as f64 + 0.1 + (j as f64 + 0.45) * bar;
                Some(Text::new(
                    format!("{:.0}", run.goodput_pct),
                    (x, run.goodput_pct.min(110.0)),
                    (FONT, 10)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, VPos::Bottom)),
                ))
            });
            ctx.draw_series(values).map_err(chart_error)?;
        }
        let capacity = report.capacity();
        if let Some(effective) = capacity.of_nominal(capacity.effective_rps) {
            ctx.draw_series(DashedLineSeries::new(
                [(0.0, effective), (groups as f64, effective)],
                6,
                4,
                BLACK.mix(0.6).stroke_width(1),
            ))
            .map_err(chart_error)?;
        }
        let pools: Vec<PoolKind> = report.pools.iter().map(|p| p.name).collect();
        legend(&root, width, &pools, true)?;
        group_labels(&root, &ctx, report)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

/// Writes each scenario's name under its group of bars.
fn group_labels(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    ctx: &Chart<'_, '_>,
    report: &Report,
) -> Result<(), LabError> {
    for (i, s) in report.scenarios.iter().enumerate() {
        let (x, y) = ctx.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw(&Text::new(
            s.scenario.name(),
            (x, y + 8),
            (FONT, 12)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(chart_error)?;
    }
    Ok(())
}
