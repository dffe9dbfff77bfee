//! PNG line charts (plotters, bitmap backend): learning curves and accuracy vs budget.
//!
//! Text is drawn with a TrueType font found on the system (`TRM_PLOT_FONT`, else DejaVu Sans
//! or Liberation Sans in the usual places); without one the charts are drawn without text
//! and [`font_found`] says so.

use std::ops::Range;
use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

pub use trm_plot::font_found;

/// One line of a chart: a legend label and its points `(x, y)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Points in drawing order.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series named `label` with `points`.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
        }
    }
}

/// One panel: title, axis names, series and the y range (`None`: fitted to the data).
#[derive(Clone, Debug, Default)]
pub struct Panel {
    /// Caption above the panel.
    pub title: String,
    /// Name of the x axis.
    pub x_label: String,
    /// Name of the y axis.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Fixed y range, e.g. `0.0..1.0` for accuracies.
    pub y_range: Option<Range<f64>>,
    /// Logarithmic y axis (losses).
    pub log_y: bool,
    /// Legend in the upper left corner instead of the lower right.
    pub legend_upper_left: bool,
}

const PANEL_W: u32 = 640;
const PANEL_H: u32 = 440;
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws `panels` side by side into the PNG file `path` (640 × 440 pixels per panel).
pub fn draw_png(path: &Path, panels: &[Panel]) -> Result<()> {
    let n = panels.len().max(1) as u32;
    let root = BitMapBackend::new(path, (PANEL_W * n, PANEL_H)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let areas = root.split_evenly((1, n as usize));
    for (panel, area) in panels.iter().zip(&areas) {
        draw_panel(area, panel).map_err(|e| err(&e.to_string()))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw_panel(area: &Area<'_>, panel: &Panel) -> DrawResult {
    let text = font_found();
    let pts = || panel.series.iter().flat_map(|s| s.points.iter().copied());
    let (x0, x1) = bounds(pts().map(|p| p.0), 0.0..1.0);
    let y = panel
        .y_range
        .clone()
        .unwrap_or_else(|| pad(bounds(pts().map(|p| p.1), 0.0..1.0)));
    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if text {
        builder
            .caption(&panel.title, ("sans-serif", 16))
            .x_label_area_size(40)
            .y_label_area_size(60);
    }
    if panel.log_y {
        let lo = pts()
            .map(|p| p.1)
            .filter(|v| *v > 0.0)
            .fold(f64::MAX, f64::min);
        let hi = pts().map(|p| p.1).fold(f64::MIN, f64::max);
        let (lo, hi) = if lo <= hi {
            (lo * 0.9, hi * 1.1)
        } else {
            (0.1, 10.0)
        };
        let mut chart = builder.build_cartesian_2d(x0..x1, (lo..hi).log_scale())?;
        mesh(&mut chart.configure_mesh(), panel, text).draw()?;
        lines(&mut chart, panel, text)
    } else {
        let mut chart = builder.build_cartesian_2d(x0..x1, y)?;
        mesh(&mut chart.configure_mesh(), panel, text).draw()?;
        lines(&mut chart, panel, text)
    }
}

fn mesh<'m, 'a, 'b, X, Y>(
    m: &'m mut plotters::chart::MeshStyle<'a, 'b, X, Y, BitMapBackend<'a>>,
    panel: &'m Panel,
    text: bool,
) -> &'m mut plotters::chart::MeshStyle<'a, 'b, X, Y, BitMapBackend<'a>>
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>
        + plotters::coord::ranged1d::ValueFormatter<f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>
        + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    if text {
        m.x_desc(panel.x_label.as_str())
            .y_desc(panel.y_label.as_str())
            .x_label_formatter(&|v| format!("{v}"))
            .label_style(("sans-serif", 14))
    } else {
        m.x_labels(0).y_labels(0)
    }
}

fn lines<'a, X, Y>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>,
    panel: &Panel,
    text: bool,
) -> DrawResult
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    for (i, s) in panel.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let style = ShapeStyle::from(&color).stroke_width(2);
        if s.points.len() == 1 {
            chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        }
        let drawn = chart.draw_series(LineSeries::new(s.points.iter().copied(), style))?;
        if text {
            drawn.label(s.label.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
    }
    if text && !panel.series.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .position(if panel.legend_upper_left {
                SeriesLabelPosition::UpperLeft
            } else {
                SeriesLabelPosition::LowerRight
            })
            .draw()?;
    }
    Ok(())
}

/// `min..max` of `values`, or `empty` when there are none; a single value is widened by 1.
fn bounds(values: impl Iterator<Item = f64>, empty: Range<f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        (empty.start, empty.end)
    } else if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

fn pad((lo, hi): (f64, f64)) -> Range<f64> {
    let m = (hi - lo) * 0.05;
    (lo - m)..(hi + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png_with_and_without_points() {
        let dir = std::env::temp_dir().join(format!("trm-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chart.png");
        let panels = [
            Panel {
                title: "loss".into(),
                x_label: "step".into(),
                y_label: "loss".into(),
                series: vec![Series::new(
                    "train",
                    vec![(1.0, 2.0), (2.0, 1.0), (3.0, 0.5)],
                )],
                log_y: true,
                ..Panel::default()
            },
            Panel {
                title: "accuracy".into(),
                series: vec![
                    Series::new("eval", vec![(1.0, 0.5)]),
                    Series::new("none", vec![]),
                ],
                y_range: Some(0.0..1.0),
                ..Panel::default()
            },
        ];
        draw_png(&path, &panels).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 1000, "{} bytes", bytes.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
