//! The `trm-train` command line. The interface is fixed so it can be scripted:
//!
//! ```text
//! trm-train data generate --count N --seed S [--clues A..B] [--min-rating R] --out FILE.csv
//! trm-train data check FILE
//! trm-train train [--config FILE.toml] [--set key=value ...] [--out DIR] [--resume DIR]
//! trm-train eval --checkpoint DIR [--data FILE] [--max-steps N] [--count N]
//! trm-train export (--checkpoint DIR | --official FILE.safetensors) --dtype f32|f16|int8 --out FILE
//! trm-train compact --checkpoint DIR --out DIR2
//! trm-train average DIR DIR... --out DIR2
//! trm-train            # the default run: `train` with configs/cpu-default.toml
//! ```

mod average;
mod compact;
mod data;
mod eval;
mod export;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Train Tiny Recursive Models on Sudoku; generate and check Sudoku data.
#[derive(Debug, Parser)]
#[command(name = "trm-train", version, about, long_about = None)]
pub struct Cli {
    /// Worker threads for parallel work (default: all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate and check Sudoku data files.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Train a TRM (default config: configs/cpu-default.toml; `trm-train` alone runs it).
    Train(train::TrainArgs),
    /// Evaluate a run: accuracy per supervision-step budget (table + PNG), learning curves.
    Eval(eval::EvalArgs),
    /// Pack a run's weights (EMA by default) or an official state dict into a trm-edge model file.
    Export(export::ExportArgs),
    /// Write a run's checkpoint in compact form (no ACT carry, bf16 Adam moments), to commit.
    Compact(compact::CompactArgs),
    /// Average the weights of several checkpoints of a run, for eval and export.
    Average(average::AverageArgs),
}

/// Parses the process arguments and runs the command; the exit code is the process's.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads.map(|n| cap_threads(n, "--threads"))
        && let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
    {
        eprintln!("error: cannot start {n} threads: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Some(Command::Data(cmd)) => data::run(cmd),
        Some(Command::Train(args)) => train::run(args, cli.threads.is_some()),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::Export(args)) => export::run(args),
        Some(Command::Compact(args)) => compact::run(args),
        Some(Command::Average(args)) => average::run(args),
        None => train::run(train::TrainArgs::default(), cli.threads.is_some()),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}

/// `n` worker threads capped at the available parallelism (more only add switching, and
/// thousands of threads cost seconds to start); says so when it caps. 0 stays 0 (one per core).
pub fn cap_threads(n: usize, what: &str) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    if n > cores {
        eprintln!("{what} {n} capped to {cores} (available parallelism)");
        cores
    } else {
        n
    }
}
