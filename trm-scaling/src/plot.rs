//! The accuracy-vs-compute chart: one panel per set and selection rule, exact accuracy
//! against mean total supervision steps per puzzle (log scale), one line per attempt source
//! plus the single run given the same steps.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use crate::BASELINE;
use crate::report::SetSummary;
use trm_edge::solver::attempts::{AttemptSource, Selection};

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(0, 0, 0),
];
const W: u32 = 520;
const H: u32 = 380;

type Res = std::result::Result<(), Box<dyn std::error::Error>>;

/// Draws the chart of `sets` into the PNG file `path`.
pub fn draw(path: &Path, sets: &[SetSummary]) -> Result<()> {
    let rows = sets.len().max(1);
    let root = BitMapBackend::new(path, (W * Selection::ALL.len() as u32, H * rows as u32))
        .into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let areas = root.split_evenly((rows, Selection::ALL.len()));
    for (r, set) in sets.iter().enumerate() {
        // One y scale per set, so the rules compare at a glance.
        let y_max = set
            .methods
            .keys()
            .flat_map(|m| points(set, m))
            .map(|p| p.1)
            .fold(0.0, f64::max);
        let y_max = (y_max * 1.1).clamp(1.0, 100.0);
        for (c, rule) in Selection::NAMES.iter().enumerate() {
            if let Some(area) = areas.get(r * Selection::ALL.len() + c) {
                panel(area, set, rule, y_max).map_err(|e| err(&e.to_string()))?;
            }
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    set: &SetSummary,
    rule: &str,
    y_max: f64,
) -> Res {
    let text = trm_plot::font_found();
    let mut series: Vec<(String, Vec<(f64, f64)>)> = AttemptSource::NAMES
        .iter()
        .map(|s| (s.to_string(), points(set, &format!("{s}/{rule}"))))
        .collect();
    series.push(("single run".into(), points(set, BASELINE)));
    let all = || series.iter().flat_map(|(_, p)| p.iter().copied());
    let x_max = all().map(|p| p.0).fold(1.0, f64::max) * 1.3;
    let x_min = all().map(|p| p.0).fold(x_max, f64::min).max(0.5) / 1.3;
    let mut b = ChartBuilder::on(area);
    b.margin(10);
    if text {
        b.caption(
            format!("{} ({} puzzles), select {rule}", set.name, set.puzzles),
            ("sans-serif", 16),
        )
        .x_label_area_size(36)
        .y_label_area_size(48);
    }
    let mut chart = b.build_cartesian_2d((x_min..x_max).log_scale(), 0.0..y_max)?;
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(WHITE);
    if text {
        mesh.x_desc("mean total supervision steps per puzzle")
            .y_desc("exact %")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .label_style(("sans-serif", 13));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw()?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let style = ShapeStyle::from(&color).stroke_width(2);
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        let drawn = chart.draw_series(LineSeries::new(pts.iter().copied(), style))?;
        if text {
            drawn.label(name.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    Ok(())
}

/// (mean steps, exact %) of `method` at every `K`.
fn points(set: &SetSummary, method: &str) -> Vec<(f64, f64)> {
    let n = set.methods.get(method).map_or(0, Vec::len);
    (0..n)
        .filter_map(|i| set.point(method, i))
        .map(|(acc, steps)| (steps.max(0.5), acc))
        .collect()
}
