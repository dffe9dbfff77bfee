//! The run's charts: learning curves from `metrics.jsonl` and accuracy vs budget.

use std::path::Path;

use anyhow::Result;

use super::eval::BudgetReport;
use super::metrics::MetricsLine;
use crate::plot::{Panel, Series, draw_png};

/// File name of the learning-curve chart.
pub const LEARNING_CURVES_PNG: &str = "learning_curves.png";
/// File name of the accuracy-vs-budget chart.
pub const BUDGET_PNG: &str = "budget.png";

/// Draws the loss (left, log scale) and the training and held-out accuracies (right) against
/// the optimiser step into `path`.
pub fn learning_curves(lines: &[MetricsLine], path: &Path) -> Result<()> {
    let train = |f: fn(&super::metrics::TrainMetrics) -> f64| {
        lines
            .iter()
            .filter_map(|l| l.train.as_ref().map(|t| (l.step as f64, f(t))))
            .collect::<Vec<_>>()
    };
    let eval = |f: fn(&super::metrics::EvalMetrics) -> f64| {
        lines
            .iter()
            .filter_map(|l| l.eval.as_ref().map(|e| (l.step as f64, f(e))))
            .collect::<Vec<_>>()
    };
    let loss = Panel {
        title: "training loss".into(),
        x_label: "optimiser step".into(),
        y_label: "loss per sample (CE + 0.5 BCE)".into(),
        series: vec![Series::new("train loss", train(|t| t.loss))],
        log_y: true,
        ..Panel::default()
    };
    let acc = Panel {
        title: "accuracy".into(),
        x_label: "optimiser step".into(),
        y_label: "fraction".into(),
        series: vec![
            Series::new("train cell", train(|t| t.accuracy)),
            Series::new("train exact", train(|t| t.exact_accuracy)),
            Series::new("held-out cell", eval(|e| e.cell_accuracy)),
            Series::new("held-out exact", eval(|e| e.exact_accuracy)),
        ],
        y_range: Some(0.0..1.0),
        ..Panel::default()
    };
    draw_png(path, &[loss, acc])
}

/// Draws exact and cell accuracy against the supervision-step budget into `path`, with the
/// model's N_sup and the Q-halting policy's result in the title.
pub fn budget_chart(report: &BudgetReport, data_name: &str, path: &Path) -> Result<()> {
    let pts = |f: fn(&super::eval::BudgetRow) -> f64| {
        report
            .rows
            .iter()
            .map(|r| (r.steps as f64, f(r)))
            .collect::<Vec<_>>()
    };
    let panel = Panel {
        title: format!(
            "{data_name}: {} puzzles, N_sup {}, Q-halt policy {:.1}%",
            report.puzzles,
            report.n_sup,
            100.0 * report.q_policy_exact_accuracy,
        ),
        x_label: "supervision steps (budget)".into(),
        y_label: "fraction".into(),
        series: vec![
            Series::new("exact", pts(|r| r.exact_accuracy)),
            Series::new("cell", pts(|r| r.cell_accuracy)),
            Series::new("q_halt > 0", pts(|r| r.q_halt_rate)),
        ],
        y_range: Some(0.0..1.0),
        legend_upper_left: true,
        ..Panel::default()
    };
    draw_png(path, &[panel])
}
