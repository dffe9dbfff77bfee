//! `trm-train compact`: a run's checkpoint in the compact form meant for committing.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;

use crate::train::TrainConfig;
use crate::train::checkpoint::{CHECKPOINT_FILE, write_atomically};
use crate::train::run::{CONFIG_FILE, load_state, train_device};

/// Arguments of `compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Run directory of `trm-train train` (its checkpoint and config).
    #[arg(long, value_name = "DIR")]
    pub checkpoint: PathBuf,
    /// Directory to write the compact checkpoint and the run's config into (created if
    /// missing; a run directory that `train --resume` accepts). Must differ from the source.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Runs `compact`.
pub fn run(args: CompactArgs) -> Result<ExitCode> {
    let src = &args.checkpoint;
    if !src.join(CHECKPOINT_FILE).is_file() {
        bail!("{} has no {CHECKPOINT_FILE}", src.display());
    }
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    ensure!(
        fs::canonicalize(src)? != fs::canonicalize(&args.out)?,
        "--out must not be the run directory itself (its full checkpoint resumes exactly)"
    );
    let cfg = TrainConfig::read(&src.join(CONFIG_FILE))
        .with_context(|| format!("{} is not a run directory", src.display()))?;
    let state = load_state(src, &cfg, &train_device())?;
    let out = args.out.join(CHECKPOINT_FILE);
    write_atomically(&out, &state.to_compact_file(&cfg.to_toml()))?;
    fs::copy(src.join(CONFIG_FILE), args.out.join(CONFIG_FILE))
        .with_context(|| format!("copying {CONFIG_FILE}"))?;
    let size = |p: &PathBuf| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} (step {}, {} bytes; the full checkpoint has {} bytes): weights and EMA exact, \
         Adam moments in bf16, no ACT carry; resume with `trm-train train --resume {}`",
        out.display(),
        state.step,
        size(&out),
        size(&src.join(CHECKPOINT_FILE)),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
