//! The report's plots, as SVG: throughput against requests in flight, one panel
//! per mix, a line per system; and latency CDFs, one panel per workload, a line per
//! system. Drawn from the rows alone, so a partial run plots what it measured.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use plotters::coord::{Shift, ranged1d::Ranged};
use plotters::prelude::*;

use crate::report::{Report, Row};
use crate::systems::Kind;

/// The mixes plotted against requests in flight, as their rows' names begin.
const MIXES: [&str; 3] = ["write", "read", "90/10 read/write"];
/// The workloads whose latency CDFs are plotted.
const CDF_WORKLOADS: [&str; 4] = [
    "write, 1 × 1 in flight, at the leader",
    "write, 32 × 8 in flight",
    "90/10 read/write, 8 × 4 in flight",
    "read, 32 × 8 in flight",
];

/// Writes `throughput.svg` and `latency-cdf.svg` into `dir`; returns the files written
/// (none when the report has no rows to plot).
pub fn write_plots(report: &Report, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let throughput = dir.join("throughput.svg");
    if throughput_plot(report, &throughput)? {
        written.push(throughput);
    }
    let cdf = dir.join("latency-cdf.svg");
    if cdf_plot(report, &cdf)? {
        written.push(cdf);
    }
    Ok(written)
}

/// The systems in the report, in its order.
fn systems(report: &Report) -> Vec<Kind> {
    let mut kinds: Vec<Kind> = Vec::new();
    for row in &report.rows {
        if !kinds.contains(&row.system) {
            kinds.push(row.system);
        }
    }
    kinds
}

/// `clients × in_flight` of a closed-loop row named "<mix>, C × F in flight".
fn in_flight(row: &Row, mix: &str) -> Option<u32> {
    let shape = row.workload.strip_prefix(mix)?.strip_prefix(", ")?.strip_suffix(" in flight")?;
    let (clients, each) = shape.split_once(" × ")?;
    Some(clients.trim().parse::<u32>().ok()? * each.trim().parse::<u32>().ok()?)
}

fn color(index: usize) -> RGBColor {
    const COLORS: [RGBColor; 5] = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x94, 0x67, 0xbd),
    ];
    COLORS[index % COLORS.len()]
}

/// One panel: its title, and a line (a system and its points) per system.
type Panel<'a, P> = (&'a str, Vec<(Kind, P)>);

fn draw_error<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow!("drawing a plot: {error:?}")
}

/// A white SVG canvas for `panels` panels side by side.
fn canvas(path: &Path, panels: usize) -> Result<DrawingArea<SVGBackend<'_>, Shift>> {
    let root = SVGBackend::new(path, (420 * panels as u32, 380)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    Ok(root)
}

/// `kind`'s line, in the colour of its place in the report, with its legend entry.
fn line<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    kind: Kind,
    index: usize,
    points: impl IntoIterator<Item = (X::ValueType, Y::ValueType)>,
) -> Result<()>
where
    X: Ranged,
    Y: Ranged,
    X::ValueType: Clone + 'static,
    Y::ValueType: Clone + 'static,
{
    let style = color(index).stroke_width(2);
    chart
        .draw_series(LineSeries::new(points, style))
        .map_err(draw_error)?
        .label(kind.name())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
    Ok(())
}

/// The panel's legend: a line per system.
fn legend<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Result<()>
where
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(draw_error)
}

fn throughput_plot(report: &Report, path: &Path) -> Result<bool> {
    let kinds = systems(report);
    let panels: Vec<Panel<'_, Vec<(u32, f64)>>> = MIXES
        .iter()
        .map(|mix| {
            let lines = kinds
                .iter()
                .map(|&kind| {
                    let mut points: Vec<(u32, f64)> = report
                        .rows
                        .iter()
                        .filter(|r| r.system == kind)
                        .filter_map(|r| Some((in_flight(r, mix)?, r.throughput?)))
                        .collect();
                    points.sort_by_key(|p| p.0);
                    (kind, points)
                })
                .filter(|(_, points)| !points.is_empty())
                .collect();
            (*mix, lines)
        })
        .filter(|(_, lines): &Panel<'_, _>| !lines.is_empty())
        .collect();
    if panels.is_empty() {
        return Ok(false);
    }
    let root = canvas(path, panels.len())?;
    for (area, (mix, lines)) in root.split_evenly((1, panels.len())).iter().zip(&panels) {
        let most = lines.iter().flat_map(|(_, p)| p.iter().map(|p| p.1)).fold(1.0, f64::max);
        let widest = lines.iter().flat_map(|(_, p)| p.iter().map(|p| p.0)).max().unwrap_or(1);
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{mix}: ops/s"), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d((1u32..widest.max(2)).log_scale(), 0f64..most * 1.1)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_desc("requests in flight")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(draw_error)?;
        for (kind, points) in lines {
            let index = kinds.iter().position(|k| k == kind).unwrap_or(0);
            line(&mut chart, *kind, index, points.iter().copied())?;
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color(index).filled())))
                .map_err(draw_error)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    root.present().map_err(draw_error)?;
    Ok(true)
}

fn cdf_plot(report: &Report, path: &Path) -> Result<bool> {
    let kinds = systems(report);
    let panels: Vec<Panel<'_, &[(f64, f64)]>> = CDF_WORKLOADS
        .iter()
        .map(|workload| {
            let lines = kinds
                .iter()
                .filter_map(|&kind| {
                    let row = report.find(kind, workload)?;
                    (!row.cdf.is_empty()).then_some((kind, row.cdf.as_slice()))
                })
                .collect();
            (*workload, lines)
        })
        .filter(|(_, lines): &Panel<'_, _>| !lines.is_empty())
        .collect();
    if panels.is_empty() {
        return Ok(false);
    }
    let root = canvas(path, panels.len())?;
    for (area, (workload, lines)) in root.split_evenly((1, panels.len())).iter().zip(&panels) {
        let all = lines.iter().flat_map(|(_, cdf)| cdf.iter().map(|p| p.1));
        let (low, high) = all.fold((f64::MAX, 0.01f64), |(lo, hi), ms| (lo.min(ms), hi.max(ms)));
        let low = (low * 0.8).max(0.005);
        let mut chart = ChartBuilder::on(area)
            .caption(*workload, ("sans-serif", 14))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d((low..high * 1.25).log_scale(), 0f64..100f64)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_desc("latency, ms")
            .y_desc("percentile")
            // Few labels: a log axis over two decades would print every step.
            .x_labels(6)
            .x_label_formatter(&|v| format!("{v:.2}"))
            .draw()
            .map_err(draw_error)?;
        for (kind, cdf) in lines {
            let index = kinds.iter().position(|k| k == kind).unwrap_or(0);
            line(&mut chart, *kind, index, cdf.iter().map(|&(q, ms)| (ms, q * 100.0)))?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    }
    root.present().map_err(draw_error)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(system: Kind, workload: &str, throughput: f64) -> Row {
        Row {
            system,
            workload: workload.into(),
            ops: 1000,
            throughput: Some(throughput),
            latency_ms: Some([0.5, 1.0, 2.0]),
            errors: 0,
            cpu_per_kop: None,
            rss: (0, 0),
            secs: None,
            stages: Vec::new(),
            cdf: vec![(0.5, 0.5), (0.99, 1.0), (0.999, 2.0)],
        }
    }

    #[test]
    fn shapes_are_read_from_row_names() {
        let r = row(Kind::Baton, "write, 32 × 8 in flight", 1.0);
        assert_eq!(in_flight(&r, "write"), Some(256));
        assert_eq!(in_flight(&r, "read"), None);
        let r = row(Kind::Baton, "write, 1 × 1 in flight, at the leader", 1.0);
        assert_eq!(in_flight(&r, "write"), None, "not a row of the closed-loop shapes");
    }

    #[test]
    fn plots_hold_a_line_per_system() {
        let tmp = tempfile::tempdir().unwrap();
        let mut report = Report::default();
        for (kind, scale) in [(Kind::Baton, 2.0), (Kind::ZooKeeper, 1.0)] {
            for (shape, base) in [("1 × 1", 100.0), ("8 × 4", 1000.0), ("32 × 8", 5000.0)] {
                let name = format!("write, {shape} in flight");
                report.rows.push(row(kind, &name, base * scale));
            }
        }
        let written = write_plots(&report, tmp.path()).unwrap();
        assert_eq!(
            written,
            [tmp.path().join("throughput.svg"), tmp.path().join("latency-cdf.svg")]
        );
        let svg = std::fs::read_to_string(&written[0]).unwrap();
        assert!(svg.contains("baton") && svg.contains("zookeeper"), "a legend entry per system");
        for (index, kind) in ["baton", "zookeeper"].iter().enumerate() {
            let RGBColor(r, g, b) = color(index);
            let stroke = format!("stroke=\"#{r:02X}{g:02X}{b:02X}\"");
            assert_eq!(svg.matches(&stroke).count(), 2, "{kind}: its line and its legend's");
        }
    }
}
