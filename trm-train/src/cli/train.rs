//! `trm-train train` and the no-argument default run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::train::config::CPU_DEFAULT_TOML;
use crate::train::run::{CONFIG_FILE, stop_on_signals, stop_signal};
use crate::train::{RunOptions, TrainConfig, train};

/// Arguments of `train`.
#[derive(Debug, Args, Default)]
pub struct TrainArgs {
    /// TOML configuration (default: `configs/cpu-default.toml`, built in).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override one key, e.g. `--set model.hidden_size=128 --set train.lr=3e-4` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Run directory (default: `runs/<name>`, with a numeric suffix if that one is taken).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in DIR from its last checkpoint (its saved config, plus any `--set`).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "out"])]
    pub resume: Option<PathBuf>,
}

/// Runs `train`; `threads_given` says whether `--threads` already sized the thread pool.
pub fn run(args: TrainArgs, threads_given: bool) -> Result<ExitCode> {
    let (config, run_dir, resume) = match &args.resume {
        Some(dir) => {
            let saved = TrainConfig::read(&dir.join(CONFIG_FILE))
                .with_context(|| format!("{} is not a run directory", dir.display()))?;
            (saved.with_overrides(&args.sets)?, dir.clone(), true)
        }
        None => {
            let base = match &args.config {
                Some(path) => TrainConfig::read(path)?,
                None => TrainConfig::from_toml(CPU_DEFAULT_TOML)
                    .context("built-in configs/cpu-default.toml")?,
            };
            let config = base.with_overrides(&args.sets)?;
            let dir = match &args.out {
                Some(dir) => dir.clone(),
                None => free_run_dir(Path::new("runs"), &config.name),
            };
            (config, dir, false)
        }
    };
    config.validate()?;
    let threads = super::cap_threads(config.threads, "threads =");
    if !threads_given
        && threads > 0
        && let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
    {
        bail!("cannot start {threads} threads: {e}");
    }
    stop_on_signals();
    let summary = train(&RunOptions {
        config,
        run_dir,
        resume,
    })?;
    print!("{summary}");
    // Interrupted (and saved): the shell's code for death by that signal, 128 + its number.
    Ok(match stop_signal() {
        Some(signal) => ExitCode::from(u8::try_from(128 + signal).unwrap_or(130)),
        None => ExitCode::SUCCESS,
    })
}

/// `root/name`, or `root/name-2`, `-3`, ... when it already holds a run.
fn free_run_dir(root: &Path, name: &str) -> PathBuf {
    let taken = |p: &Path| p.join(CONFIG_FILE).exists();
    let first = root.join(name);
    if !taken(&first) {
        return first;
    }
    (2..)
        .map(|i| root.join(format!("{name}-{i}")))
        .find(|p| !taken(p))
        .expect("an unbounded range always has a free name")
}
