//! Writing answers (text, JSON lines, CSV) and the summary.

use std::io::{self, Write};

use clap::ValueEnum;
use serde_json::json;
use trm_edge::solver::StopReason;
use trm_edge::solver::attempts::Pick;

use crate::solve::{AttemptInfo, Solved};

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

/// The columns of the CSV output (also the keys of the JSON objects). `solutions`: the
/// puzzle's solutions by the exact solver, `0`, `1` or `2` (two or more), checked when the file
/// gives no solution (empty/`null` when it does).
pub const COLUMNS: [&str; 9] = [
    "line",
    "puzzle",
    "answer",
    "steps",
    "stop",
    "q_halt",
    "valid",
    "correct",
    "solutions",
];

/// The extra columns (and JSON keys) of multi-attempt mode (`--attempts`): attempts run, how
/// the answer was picked (`check|q|vote`) and the attempt it comes from (empty/`null` for a
/// vote).
pub const ATTEMPT_COLUMNS: [&str; 3] = ["attempts", "pick", "attempt"];

/// Writes the header of `format` (CSV only); `attempts`: multi-attempt mode.
pub fn header(out: &mut impl Write, format: OutputFormat, attempts: bool) -> io::Result<()> {
    if format == OutputFormat::Csv {
        write!(out, "{}", COLUMNS.join(","))?;
        if attempts {
            write!(out, ",{}", ATTEMPT_COLUMNS.join(","))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Writes one result in `format`.
pub fn write(out: &mut impl Write, format: OutputFormat, s: &Solved) -> io::Result<()> {
    let sol = &s.answer;
    match format {
        OutputFormat::Text => writeln!(out, "{}", sol.grid),
        OutputFormat::Json => {
            let mut v = json!({
                "line": s.puzzle.line,
                "puzzle": s.puzzle.grid.to_string(),
                "answer": sol.grid.to_string(),
                "steps": sol.steps,
                "stop": sol.stop.name(),
                "q_halt": json_f32(sol.q_halt),
                "valid": sol.valid,
                "correct": s.correct(),
                "solutions": s.solutions,
            });
            if let (Some(a), Some(obj)) = (sol.attempts, v.as_object_mut()) {
                obj.insert("attempts".into(), a.attempts.into());
                obj.insert("pick".into(), a.pick.name().into());
                obj.insert("attempt".into(), a.attempt.into());
            }
            writeln!(out, "{v}")
        }
        OutputFormat::Csv => {
            let correct = s.correct().map_or(String::new(), |c| c.to_string());
            let solutions = s.solutions.map_or(String::new(), |n| n.to_string());
            write!(
                out,
                "{},{},{},{},{},{},{},{},{}",
                s.puzzle.line,
                s.puzzle.grid,
                sol.grid,
                sol.steps,
                sol.stop.name(),
                sol.q_halt,
                sol.valid,
                correct,
                solutions
            )?;
            if let Some(AttemptInfo {
                attempts,
                pick,
                attempt,
            }) = sol.attempts
            {
                let attempt = attempt.map_or(String::new(), |a| a.to_string());
                write!(out, ",{attempts},{},{attempt}", pick.name())?;
            }
            writeln!(out)
        }
    }
}

/// `v` as a JSON number with the shortest decimal form of the f32 (as the CSV output writes
/// it), not of its f64 widening; `null` when not finite.
pub fn json_f32(v: f32) -> serde_json::Value {
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
    /// Multi-attempt mode: the largest total steps of one puzzle, attempts run, and how many
    /// answers were picked by check, q and vote.
    max_steps: usize,
    attempts: Option<(usize, [usize; 3])>,
    /// Puzzles without a solution in the file that have none, and that have more than one.
    no_solution: usize,
    several_solutions: usize,
    /// Puzzles stopped by `--puzzle-time-limit`.
    stopped: usize,
}

impl Totals {
    /// Adds one result.
    pub fn add(&mut self, s: &Solved) {
        self.puzzles += 1;
        self.valid += usize::from(s.answer.valid);
        self.steps += s.answer.steps;
        self.max_steps = self.max_steps.max(s.answer.steps);
        if let Some(a) = s.answer.attempts {
            let (runs, picks) = self.attempts.get_or_insert((0, [0; 3]));
            *runs += a.attempts;
            picks[match a.pick {
                Pick::Check => 0,
                Pick::Q => 1,
                Pick::Vote => 2,
            }] += 1;
        }
        match s.correct() {
            Some(c) => {
                self.with_solution += 1;
                self.exact += usize::from(c);
            }
            None => self.checked_valid += usize::from(s.answer.valid),
        }
        self.latencies.push(s.seconds);
        self.stopped += usize::from(s.answer.stop == StopReason::Stopped);
        match s.solutions {
            Some(0) => self.no_solution += 1,
            Some(n) if n > 1 => self.several_solutions += 1,
            _ => {}
        }
    }

    /// Puzzles found to have no solution or more than one.
    pub fn not_unique(&self) -> usize {
        self.no_solution + self.several_solutions
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
        let mean = |k: usize| k as f64 / n.max(1) as f64;
        let mut lines = vec![
            format!("puzzles: {n}"),
            format!("valid answers: {} ({:.2}%)", self.valid, pct(self.valid)),
            format!("exact: {:.2}% ({exact} of {n}; {basis})", pct(exact)),
            format!("mean steps: {:.2}", mean(self.steps)),
        ];
        if let Some((runs, [check, q, vote])) = self.attempts {
            lines.push(format!(
                "total supervision steps per puzzle: mean {:.2}, max {} (all attempts)",
                mean(self.steps),
                self.max_steps
            ));
            lines.push(format!("mean attempts: {:.2}", mean(runs)));
            lines.push(format!("picked by: check {check}, q {q}, vote {vote}"));
        }
        lines.extend([
            format!("puzzles/s: {:.1}", n as f64 / seconds.max(1e-9)),
            format!(
                "latency p50: {:.3} ms",
                1e3 * percentile(&self.latencies, 0.50)
            ),
            format!(
                "latency p99: {:.3} ms",
                1e3 * percentile(&self.latencies, 0.99)
            ),
        ]);
        if self.stopped > 0 {
            lines.push(format!("stopped by --puzzle-time-limit: {}", self.stopped));
        }
        if self.no_solution > 0 {
            lines.push(format!("puzzles with no solution: {}", self.no_solution));
        }
        if self.several_solutions > 0 {
            lines.push(format!(
                "puzzles with more than one solution: {}",
                self.several_solutions
            ));
        }
        lines
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
