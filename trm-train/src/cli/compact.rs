//! `trm-train compact`: a run's checkpoint in the compact form meant for committing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;

use crate::model::SafetensorsFile;
use crate::train::TrainConfig;
use crate::train::checkpoint::{CHECKPOINT_FILE, TrainState, compact};
use crate::train::run::{CONFIG_FILE, adam_config, train_device};

/// Arguments of `compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Run directory of `trm-train train` (its checkpoint and config).
    #[arg(long, value_name = "DIR")]
    pub checkpoint: PathBuf,
    /// Directory to write the compact checkpoint and the run's config into (created if
    /// missing; a run directory that `train --resume` accepts). It may already hold a compact
    /// checkpoint (replaced), not a full one.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Runs `compact`.
pub fn run(args: CompactArgs) -> Result<ExitCode> {
    let src = &args.checkpoint;
    let src_file = src.join(CHECKPOINT_FILE);
    if !src_file.is_file() {
        bail!("{} has no {CHECKPOINT_FILE}", src.display());
    }
    let out = args.out.join(CHECKPOINT_FILE);
    // Never replace a full checkpoint (it is the only exact copy of that run's state).
    if out.is_file() {
        let existing = SafetensorsFile::read(&out)?;
        ensure!(
            existing.metadata.contains_key("compact"),
            "{} holds a full checkpoint; give an empty or compact-checkpoint directory",
            out.display()
        );
    }
    // Validate the source completely (it must restore as a training state) before writing.
    // The config is read as text first: when `--out` is the source folder, the same file is
    // written back (a copy onto itself would empty it).
    let config_path = src.join(CONFIG_FILE);
    let config_text = fs::read_to_string(&config_path)
        .with_context(|| format!("{} is not a run directory", src.display()))?;
    let cfg = TrainConfig::from_toml(&config_text)
        .with_context(|| format!("bad config {}", config_path.display()))?;
    let file = SafetensorsFile::read(&src_file)?;
    let state = TrainState::from_file(
        &file,
        &cfg.trm()?,
        adam_config(&cfg),
        cfg.seed,
        &train_device(),
    )
    .with_context(|| format!("restoring {}", src_file.display()))?;
    crate::atomic::create_dir(&args.out)?;
    compact(&file).write(&out)?;
    crate::atomic::write_bytes(&args.out.join(CONFIG_FILE), config_text.as_bytes())?;
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} (step {}, {} bytes; the full checkpoint has {} bytes): weights and EMA exact, \
         Adam moments in bf16, no ACT carry; resume with `trm-train train --resume {}`",
        out.display(),
        state.step,
        size(&out),
        size(&src_file),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
