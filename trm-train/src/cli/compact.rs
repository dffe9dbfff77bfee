//! `trm-train compact`: a run's checkpoint in the compact form meant for committing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail, ensure};
use clap::Args;

use crate::model::SafetensorsFile;
use crate::train::checkpoint::{AVERAGED_KEY, CHECKPOINT_FILE, SNAPSHOT_KEY, compact};
use crate::train::run::{CONFIG_FILE, RunFiles, read_run};

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
    // The config is kept as text: when `--out` is the source folder, the same file is written
    // back (a copy onto itself would empty it).
    let RunFiles {
        config_text,
        file,
        state,
        ..
    } = read_run(src)?;
    crate::atomic::create_dir(&args.out)?;
    compact(&file).write(&out)?;
    crate::atomic::write_bytes(&args.out.join(CONFIG_FILE), config_text.as_bytes())?;
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let next = match file.metadata.get(AVERAGED_KEY) {
        Some(steps) => format!("an average of checkpoints ({steps}), for eval and export"),
        None if file.metadata.contains_key(SNAPSHOT_KEY) => {
            "a weight snapshot, for eval, export and average".to_string()
        }
        None => format!(
            "resume with `trm-train train --resume {}`",
            args.out.display()
        ),
    };
    println!(
        "wrote {} (step {}, {} bytes; the full checkpoint has {} bytes): weights and EMA exact, \
         Adam moments in bf16, no ACT carry; {next}",
        out.display(),
        state.step,
        size(&out),
        size(&src_file),
    );
    Ok(ExitCode::SUCCESS)
}
