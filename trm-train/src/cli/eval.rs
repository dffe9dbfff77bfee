//! `trm-train eval`: accuracy of a run's model as a function of the supervision-step budget,
//! as a table and PNG charts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, ValueEnum};

use crate::progress;
use crate::train::TrainConfig;
use crate::train::checkpoint::CHECKPOINT_FILE;
use crate::train::eval::{BudgetReport, batch_of, evaluate_budgets};
use crate::train::metrics::{METRICS_FILE, MetricsLog};
use crate::train::plots::{BUDGET_PNG, LEARNING_CURVES_PNG, budget_chart, learning_curves};
use crate::train::puzzles::{load_held_out, read_pairs, rows};
use crate::train::run::{CONFIG_FILE, device_for, load_state};

/// Which weights of the checkpoint to evaluate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Weights {
    /// The exponential moving average (what training evaluates and export ships).
    #[default]
    Ema,
    /// The raw optimised weights.
    Raw,
}

/// Arguments of `eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Run directory (holds config.toml and checkpoint.safetensors).
    #[arg(long, value_name = "DIR")]
    pub checkpoint: PathBuf,
    /// Puzzle file (81-character lines, `puzzle,solution` lines or Sudoku-Extreme CSV);
    /// default: the run's held-out generated puzzles.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Largest supervision-step budget (default: the model's N_sup; more continues past it),
    /// at most 1024 (the report keeps one line per step)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub max_steps: Option<u16>,
    /// Evaluate at most this many puzzles (default: all).
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
    /// Weights to evaluate.
    #[arg(long, value_enum, default_value_t = Weights::Ema)]
    pub weights: Weights,
    /// Puzzles per forward pass (default: the run's train.eval_batch_size), 1..=65536.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub batch: Option<u32>,
    /// Where the charts and `budget.json` go (default: DIR/eval).
    #[arg(long, value_name = "OUT")]
    pub out: Option<PathBuf>,
}

/// Runs `eval`.
pub fn run(args: EvalArgs) -> Result<ExitCode> {
    let dir = &args.checkpoint;
    if !dir.join(CHECKPOINT_FILE).is_file() {
        bail!(
            "{} has no {CHECKPOINT_FILE}: pass the run directory of `trm-train train`",
            dir.display()
        );
    }
    let cfg = TrainConfig::read(&dir.join(CONFIG_FILE))
        .with_context(|| format!("{} is not a run directory", dir.display()))?;
    let state = load_state(dir, &cfg, &device_for(cfg.backend)?)?;
    let model = match args.weights {
        Weights::Ema => state.eval_model(),
        Weights::Raw => state.model.clone(),
    };
    let batch = args
        .batch
        .map_or(cfg.train.eval_batch_size, |b| b as usize)
        .max(1);
    let (batches, count, name) = match &args.data {
        Some(path) => {
            let pairs = read_pairs(path, args.count)?;
            let batches: Vec<_> = pairs.chunks(batch).map(batch_of).collect();
            (batches, pairs.len(), file_name(path))
        }
        None => {
            // The held-out examples are already tokenised: batch them as training does. Only
            // the test split is built (the run's augmented training set is not needed).
            let test = load_held_out(&cfg.data, &mut |s| eprintln!("{s}"))?;
            let n = test.len().min(args.count.unwrap_or(usize::MAX));
            let idx: Vec<usize> = (0..n).collect();
            let batches: Vec<_> = idx.chunks(batch).map(|c| rows(&test, c)).collect();
            (batches, n, "held-out generated".to_string())
        }
    };
    ensure!(count > 0, "no puzzles to evaluate");
    let max_steps = args
        .max_steps
        .map_or(model.config.halt_max_steps, usize::from);
    ensure!(max_steps >= 1, "--max-steps must be at least 1");

    eprintln!(
        "eval: step {} of {} ({} weights), {} puzzles from {name}, budgets 1..={max_steps}",
        state.step,
        dir.display(),
        match args.weights {
            Weights::Ema => "EMA",
            Weights::Raw => "raw",
        },
        count
    );
    let bar = progress::bar(count as u64, "eval");
    let report = evaluate_budgets(&model, &batches, max_steps, &mut |n| {
        bar.set_position(n as u64)
    });
    bar.finish_and_clear();
    print!("{}", table(&report, &name));

    let out = args.out.clone().unwrap_or_else(|| dir.join("eval"));
    crate::atomic::create_dir(&out)?;
    let json = out.join("budget.json");
    crate::atomic::write_bytes(
        &json,
        (serde_json::to_string_pretty(&report)? + "\n").as_bytes(),
    )?;
    budget_chart(&report, &name, &out.join(BUDGET_PNG))?;
    let mut written = vec![json, out.join(BUDGET_PNG)];
    let metrics = dir.join(METRICS_FILE);
    if metrics.is_file() {
        learning_curves(&MetricsLog::read(&metrics)?, &out.join(LEARNING_CURVES_PNG))?;
        written.push(out.join(LEARNING_CURVES_PNG));
    }
    for f in written {
        println!("wrote {}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

/// The report as a text table: one row per budget, then the Q-halting policy.
pub fn table(r: &BudgetReport, name: &str) -> String {
    let mut s = format!(
        "\n{name}: {} puzzles, N_sup {} ({:.1} s)\n budget | exact %  | cell %  | q_halt>0 %\n--------+----------+---------+-----------\n",
        r.puzzles, r.n_sup, r.seconds
    );
    for row in &r.rows {
        let mark = if row.steps == r.n_sup { "*" } else { " " };
        s += &format!(
            " {:>5}{mark} | {:>8.2} | {:>7.2} | {:>9.1}\n",
            row.steps,
            100.0 * row.exact_accuracy,
            100.0 * row.cell_accuracy,
            100.0 * row.q_halt_rate
        );
    }
    s += &format!(
        "(* = N_sup)\nexact accuracy at N_sup: {:.2}%\nQ-halt policy (stop at first q_halt > 0): exact {:.2}%, mean halting step {:.2}\nq-halt accuracy (final q_halt >= 0 <=> solved): {:.2}%\n",
        100.0 * r.at_n_sup().map_or(0.0, |row| row.exact_accuracy),
        100.0 * r.q_policy_exact_accuracy,
        r.mean_halt_step,
        100.0 * r.q_halt_accuracy
    );
    s
}
