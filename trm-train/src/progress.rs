//! Progress output for long work: [`bar`] for counted work (drawn on a terminal, silent
//! otherwise) and [`TrainProgress`] for a training run (a bar on a terminal, plain lines
//! otherwise).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::train::metrics::{EvalMetrics, TrainMetrics};

/// A bar of `len` items labelled `what`, drawn on stderr only when it is a terminal.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg:>10} [{bar:40.cyan/blue}] {pos}/{len} ({per_sec}, ETA {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// Where a training run's progress goes: an indicatif bar (loss, accuracy, steps/s, ETA) when
/// stdout is a terminal, plain lines at every log interval otherwise.
pub struct TrainProgress {
    bar: Option<ProgressBar>,
    total: u64,
}

impl TrainProgress {
    /// A reporter for a run of `total` steps, currently at `step`; draws a bar only when
    /// stdout is a terminal.
    pub fn new(step: u64, total: u64) -> Self {
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
            let style = ProgressStyle::with_template(
                "{spinner} [{bar:30.cyan/blue}] {pos}/{len} {msg} ({per_sec}, ETA {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_position(step);
            bar.reset_eta();
            bar
        });
        Self { bar, total }
    }

    /// A line of text (above the bar when there is one).
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => println!("{text}"),
        }
    }

    /// The step counter moved to `step`.
    pub fn step(&self, step: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(step);
        }
    }

    /// A log interval ended at `step`.
    pub fn interval(&self, step: u64, lr: f64, m: &TrainMetrics, eta_s: f64) {
        let msg = format!(
            "loss {:.4} acc {:.3} exact {:.3} steps {:.2}",
            m.loss, m.accuracy, m.exact_accuracy, m.mean_steps
        );
        match &self.bar {
            Some(bar) => bar.set_message(msg),
            None => println!(
                "step {step}/{} | lr {lr:.2e} | {msg} | q-acc {:.3} | {:.2} steps/s, {:.0} samples/s | ETA {}",
                self.total,
                m.q_halt_accuracy,
                m.steps_per_s,
                m.samples_per_s,
                hms(eta_s)
            ),
        }
    }

    /// An evaluation finished at `step`.
    pub fn eval(&self, step: u64, e: &EvalMetrics) {
        self.line(&format!(
            "eval @ step {step}: exact accuracy {:.2}%, cell accuracy {:.2}%, q-halt accuracy {:.2}% ({} puzzles, {:.1} s)",
            100.0 * e.exact_accuracy,
            100.0 * e.cell_accuracy,
            100.0 * e.q_halt_accuracy,
            e.puzzles,
            e.seconds
        ));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `1h02m03s`-style duration.
pub fn hms(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "?".into();
    }
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}
