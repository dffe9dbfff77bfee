//! Writing answers (text, JSON lines, CSV) and the summary.

use std::io::{self, Write};

use clap::ValueEnum;
use serde_json::json;
use trm_edge::solver::StopReason;

use crate::solve::Solved;

/// Output format (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// The 81-character answer per line (`.` for a blank cell).
    Text,
    /// One JSON object per line.
    Json,
    /// A header line, then one CSV row per puzzle.
    Csv,
}

/// The columns of the CSV output (also the keys of the JSON objects).
pub const COLUMNS: [&str; 8] = [
    "line", "puzzle", "answer", "steps", "stop", "q_halt", "valid", "correct",
];

/// The name of a stop reason in the output.
pub fn stop_name(r: StopReason) -> &'static str {
    match r {
        StopReason::Budget => "budget",
        StopReason::QHalt => "q_halt",
        StopReason::Solved => "solved",
    }
}

/// Writes the header of `format` (CSV only).
pub fn header(out: &mut impl Write, format: OutputFormat) -> io::Result<()> {
    if format == OutputFormat::Csv {
        writeln!(out, "{}", COLUMNS.join(","))?;
    }
    Ok(())
}

/// Writes one result in `format`.
pub fn write(out: &mut impl Write, format: OutputFormat, s: &Solved) -> io::Result<()> {
    let sol = &s.solution;
    match format {
        OutputFormat::Text => writeln!(out, "{}", sol.grid),
        OutputFormat::Json => {
            let v = json!({
                "line": s.puzzle.line,
                "puzzle": s.puzzle.grid.to_string(),
                "answer": sol.grid.to_string(),
                "steps": sol.steps,
                "stop": stop_name(sol.reason),
                "q_halt": json_f32(sol.q.q_halt),
                "valid": sol.valid,
                "correct": s.correct(),
            });
            writeln!(out, "{v}")
        }
        OutputFormat::Csv => {
            let correct = s.correct().map_or(String::new(), |c| c.to_string());
            writeln!(
                out,
                "{},{},{},{},{},{},{},{}",
                s.puzzle.line,
                s.puzzle.grid,
                sol.grid,
                sol.steps,
                stop_name(sol.reason),
                sol.q.q_halt,
                sol.valid,
                correct
            )
        }
    }
}

/// `v` as a JSON number with the shortest decimal form of the f32 (as the CSV output writes
/// it), not of its f64 widening; `null` when not finite.
fn json_f32(v: f32) -> serde_json::Value {
    v.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// Running totals for the summary.
#[derive(Default)]
pub struct Totals {
    puzzles: usize,
    valid: usize,
    steps: usize,
    /// Puzzles with a solution in the file, and how many of them were answered exactly.
    with_solution: usize,
    exact: usize,
    /// Puzzles without one, and how many of them got an answer passing the Sudoku check.
    checked_valid: usize,
    latencies: Vec<f64>,
}

impl Totals {
    /// Adds one result.
    pub fn add(&mut self, s: &Solved) {
        self.puzzles += 1;
        self.valid += usize::from(s.solution.valid);
        self.steps += s.solution.steps;
        match s.correct() {
            Some(c) => {
                self.with_solution += 1;
                self.exact += usize::from(c);
            }
            None => self.checked_valid += usize::from(s.solution.valid),
        }
        self.latencies.push(s.seconds);
    }

    /// The summary lines (one figure per line); `seconds` is the wall time of solving.
    pub fn summary(&mut self, seconds: f64) -> Vec<String> {
        let n = self.puzzles;
        let pct = |k: usize| 100.0 * k as f64 / n.max(1) as f64;
        let without = n - self.with_solution;
        let basis = match (self.with_solution, without) {
            (_, 0) => "against the file's solutions".to_string(),
            (0, _) => "answers passing the Sudoku check; the file has no solutions".to_string(),
            (w, o) => {
                format!("{w} against the file's solutions, {o} without one by the Sudoku check")
            }
        };
        let exact = self.exact + self.checked_valid;
        self.latencies.sort_by(f64::total_cmp);
        vec![
            format!("puzzles: {n}"),
            format!("valid answers: {} ({:.2}%)", self.valid, pct(self.valid)),
            format!("exact: {:.2}% ({exact} of {n}; {basis})", pct(exact)),
            format!("mean steps: {:.2}", self.steps as f64 / n.max(1) as f64),
            format!("puzzles/s: {:.1}", n as f64 / seconds.max(1e-9)),
            format!(
                "latency p50: {:.3} ms",
                1e3 * percentile(&self.latencies, 0.50)
            ),
            format!(
                "latency p99: {:.3} ms",
                1e3 * percentile(&self.latencies, 0.99)
            ),
        ]
    }
}

/// The `q` quantile of sorted `xs` (nearest rank; 0 when empty).
fn percentile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let rank = (q * xs.len() as f64).ceil() as usize;
    xs[rank.clamp(1, xs.len()) - 1]
}
