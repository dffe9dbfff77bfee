//! What a run measures: training metrics summed over a log interval, evaluation results, the
//! `metrics.jsonl` file (one JSON object per line) and the final summary.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::model::Metrics;

/// File name of the metric log inside a run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// Training metrics summed over the steps of one log interval (official `train_batch`
/// metrics: losses per row of the batch, the others per halted row).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IntervalSums {
    /// Optimiser steps in the interval.
    pub steps: u64,
    /// Rows processed (batch size × steps).
    pub rows: u64,
    /// Seconds spent in training steps.
    pub seconds: f64,
    /// Sums of the official metrics.
    pub m: Metrics,
    /// Σ (lm_loss + 0.5 · q_halt_loss) over the steps.
    pub loss: f64,
}

impl IntervalSums {
    /// Adds one step's metrics.
    pub fn add(&mut self, m: &Metrics, rows: usize, seconds: f64) {
        self.steps += 1;
        self.rows += rows as u64;
        self.seconds += seconds;
        self.loss += m.lm_loss + 0.5 * m.q_halt_loss as f64;
        self.m.count += m.count;
        self.m.accuracy += m.accuracy;
        self.m.exact_accuracy += m.exact_accuracy;
        self.m.q_halt_accuracy += m.q_halt_accuracy;
        self.m.steps += m.steps;
        self.m.lm_loss += m.lm_loss;
        self.m.q_halt_loss += m.q_halt_loss;
    }

    /// The interval's averages.
    pub fn averages(&self) -> TrainMetrics {
        let rows = self.rows.max(1) as f64;
        let halted = self.m.count.max(1) as f64;
        TrainMetrics {
            loss: self.loss / rows,
            lm_loss: self.m.lm_loss / rows,
            q_halt_loss: self.m.q_halt_loss as f64 / rows,
            accuracy: self.m.accuracy as f64 / halted,
            exact_accuracy: self.m.exact_accuracy as f64 / halted,
            q_halt_accuracy: self.m.q_halt_accuracy as f64 / halted,
            mean_steps: self.m.steps as f64 / halted,
            halted: self.m.count as u64,
            samples_per_s: self.rows as f64 / self.seconds.max(1e-9),
            steps_per_s: self.steps as f64 / self.seconds.max(1e-9),
        }
    }
}

/// Averages of one log interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainMetrics {
    /// `(lm_loss + 0.5·q_halt_loss)` per row.
    pub loss: f64,
    /// Stable-max cross-entropy per row.
    pub lm_loss: f64,
    /// Q-halt BCE per row.
    pub q_halt_loss: f64,
    /// Cell accuracy of the rows that halted.
    pub accuracy: f64,
    /// Fraction of halted rows solved exactly.
    pub exact_accuracy: f64,
    /// Fraction of halted rows whose `q_halt ≥ 0` matched "solved".
    pub q_halt_accuracy: f64,
    /// Mean supervision steps of the halted rows.
    pub mean_steps: f64,
    /// Rows that halted in the interval.
    pub halted: u64,
    /// Training rows per second.
    pub samples_per_s: f64,
    /// Optimiser steps per second.
    pub steps_per_s: f64,
}

/// Evaluation of the (EMA) model on held-out puzzles, always running N_sup steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    /// Puzzles evaluated.
    pub puzzles: usize,
    /// Fraction of puzzles solved exactly after N_sup steps.
    pub exact_accuracy: f64,
    /// Fraction of cells right after N_sup steps.
    pub cell_accuracy: f64,
    /// Fraction of puzzles whose final `q_halt ≥ 0` matched "solved".
    pub q_halt_accuracy: f64,
    /// Seconds the evaluation took.
    pub seconds: f64,
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsLine {
    /// Optimiser step at the end of the interval.
    pub step: u64,
    /// Learning rate of that step.
    pub lr: f64,
    /// Seconds since the start of this invocation.
    pub elapsed_s: f64,
    /// Training metrics of the interval (absent when the line only carries an evaluation).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub train: Option<TrainMetrics>,
    /// Evaluation at this step.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub eval: Option<EvalMetrics>,
}

/// Appends lines to `metrics.jsonl`.
pub struct MetricsLog {
    path: PathBuf,
}

impl MetricsLog {
    /// The log of run directory `dir`. A fresh run starts an empty file; a resumed one drops
    /// the lines after `keep_until` (written after the checkpoint it resumes from).
    pub fn open(dir: &Path, keep_until: Option<u64>) -> Result<Self> {
        let path = dir.join(METRICS_FILE);
        let kept = match keep_until {
            None => String::new(),
            Some(step) => {
                let text = fs::read_to_string(&path).unwrap_or_default();
                let mut kept = String::new();
                for line in text.lines() {
                    let keep = serde_json::from_str::<MetricsLine>(line)
                        .map(|l| l.step <= step)
                        .unwrap_or(false);
                    if keep {
                        kept.push_str(line);
                        kept.push('\n');
                    }
                }
                kept
            }
        };
        crate::atomic::write_bytes(&path, kept.as_bytes())?;
        Ok(Self { path })
    }

    /// Appends one line.
    pub fn append(&self, line: &MetricsLine) -> Result<()> {
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        writeln!(f, "{}", serde_json::to_string(line)?)?;
        Ok(())
    }

    /// Every line of a metrics file.
    pub fn read(path: &Path) -> Result<Vec<MetricsLine>> {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        text.lines()
            .map(|l| serde_json::from_str(l).with_context(|| format!("bad line {l:?}")))
            .collect()
    }
}

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// All `train.steps` were taken.
    Finished,
    /// The wall-clock budget (`max_minutes`) was spent.
    TimeBudget,
    /// SIGINT (Ctrl-C) or SIGTERM arrived: the step under way was finished and saved.
    Interrupted,
}

/// The result of one invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Steps done at the end.
    pub step: u64,
    /// Steps of the whole run (`train.steps`).
    pub total_steps: u64,
    /// Steps done by this invocation.
    pub steps_this_run: u64,
    /// Why it stopped.
    pub stopped: StopReason,
    /// Wall-clock seconds of this invocation.
    pub seconds: f64,
    /// Training steps per second (evaluation excluded).
    pub steps_per_s: f64,
    /// The last evaluation.
    pub eval: Option<EvalMetrics>,
    /// Metrics of the last log interval.
    pub last_train: Option<TrainMetrics>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dir = self.run_dir.display();
        let why = match self.stopped {
            StopReason::Finished => "all steps done",
            StopReason::TimeBudget => "time budget spent",
            StopReason::Interrupted => "interrupted by a signal; saved",
        };
        writeln!(
            f,
            "\n== run summary: step {}/{} ({why}); {} steps in {:.0} s ({:.2} steps/s)",
            self.step, self.total_steps, self.steps_this_run, self.seconds, self.steps_per_s
        )?;
        if let Some(e) = &self.eval {
            writeln!(
                f,
                "   held-out eval (EMA weights, {} puzzles): exact accuracy {:.1}%, cell accuracy {:.1}%",
                e.puzzles,
                100.0 * e.exact_accuracy,
                100.0 * e.cell_accuracy
            )?;
        }
        if let Some(t) = &self.last_train {
            writeln!(
                f,
                "   last training interval: loss {:.4}, cell accuracy {:.1}%, exact {:.1}%, mean steps {:.2}",
                t.loss,
                100.0 * t.accuracy,
                100.0 * t.exact_accuracy,
                t.mean_steps
            )?;
        }
        writeln!(
            f,
            "   files: {dir}/config.toml (resolved config), {dir}/{METRICS_FILE},"
        )?;
        writeln!(
            f,
            "          {dir}/{} (weights, EMA, optimiser, carry, data and RNG position),",
            super::checkpoint::CHECKPOINT_FILE
        )?;
        writeln!(
            f,
            "          {dir}/{} (EMA weights, official layout), {dir}/report.txt,",
            super::checkpoint::WEIGHTS_FILE
        )?;
        writeln!(f, "          {dir}/plots/learning_curves.png")?;
        writeln!(
            f,
            "   evaluate: cargo run -p trm-train --release -- eval --checkpoint {dir} [--data FILE]"
        )?;
        match self.stopped {
            StopReason::TimeBudget | StopReason::Interrupted => writeln!(
                f,
                "   continue: cargo run -p trm-train --release -- train --resume {dir}"
            ),
            StopReason::Finished => writeln!(
                f,
                "   train longer: cargo run -p trm-train --release -- train --resume {dir} --set train.steps={}",
                // Past the step reached, which a resume with a lower `train.steps` leaves above it.
                self.total_steps.max(self.step).max(1) * 2
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The suggested `train.steps` lies past the step reached, also after a resume with a
    /// lower `train.steps` than the run's step.
    #[test]
    fn train_longer_suggests_more_steps_than_done() {
        let mut s = Summary {
            run_dir: PathBuf::from("runs/x"),
            step: 173,
            total_steps: 10,
            steps_this_run: 0,
            stopped: StopReason::Finished,
            seconds: 1.0,
            steps_per_s: 0.0,
            eval: None,
            last_train: None,
        };
        assert!(s.to_string().contains("--set train.steps=346"), "{s}");
        (s.step, s.total_steps) = (100, 100);
        assert!(s.to_string().contains("--set train.steps=200"), "{s}");
    }
}
