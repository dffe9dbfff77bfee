//! `trm-train average`: the mean of several checkpoints' weights, for evaluation and export.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, ensure};
use clap::Args;

use crate::model::SafetensorsFile;
use crate::train::TrainConfig;
use crate::train::checkpoint::{AVERAGED_KEY, CHECKPOINT_FILE, average};
use crate::train::run::{CONFIG_FILE, RunFiles, read_run, restore, train_device};

/// Arguments of `average`.
#[derive(Debug, Args)]
pub struct AverageArgs {
    /// Run directories (or copies of one at several steps) whose checkpoints are averaged: two
    /// or more, all of the same model shape.
    #[arg(required = true, num_args = 2.., value_name = "DIR")]
    pub checkpoints: Vec<PathBuf>,
    /// Directory to write the averaged checkpoint, the newest source's config and the averaged
    /// EMA weights (`model.safetensors`) into, created if missing. It may already hold an
    /// average (replaced), never a training checkpoint.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Runs `average`.
pub fn run(args: AverageArgs) -> Result<ExitCode> {
    let out_file = args.out.join(CHECKPOINT_FILE);
    if out_file.is_file() {
        let existing = SafetensorsFile::read(&out_file)?;
        ensure!(
            existing.metadata.contains_key(AVERAGED_KEY),
            "{} holds a training checkpoint; give an empty directory or one that holds an average",
            out_file.display()
        );
    }
    let mut seen = Vec::new();
    let mut sources = Vec::new();
    for dir in &args.checkpoints {
        let canonical = fs::canonicalize(dir)
            .with_context(|| format!("{} is not a run directory", dir.display()))?;
        ensure!(
            !seen.contains(&canonical),
            "{} is given twice (each checkpoint counts once)",
            dir.display()
        );
        seen.push(canonical);
        // Each source must restore as a training state of its own config.
        let RunFiles {
            config_text,
            file,
            state,
            ..
        } = read_run(dir)?;
        sources.push((dir.display().to_string(), state.step, config_text, file));
    }
    let newest = (0..sources.len())
        .max_by_key(|&i| (sources[i].1, i))
        .context("no checkpoints to average")?;
    let files: Vec<(String, &SafetensorsFile)> =
        sources.iter().map(|s| (s.0.clone(), &s.3)).collect();
    let averaged = average(&files, newest)?;
    // The result must restore as well (shapes, checksum), with the newest source's config.
    let config_text = &sources[newest].2;
    let state = restore(
        &averaged,
        &TrainConfig::from_toml(config_text)?,
        &train_device(),
    )
    .context("the averaged checkpoint does not restore")?;
    crate::atomic::create_dir(&args.out)?;
    averaged.write(&out_file)?;
    crate::atomic::write_bytes(&args.out.join(CONFIG_FILE), config_text.as_bytes())?;
    state.save_weights(&args.out)?;
    println!(
        "wrote {}: the mean of {} checkpoints' weights and EMA weights ({}), config of step {}; \
         evaluate or export it like a run directory (`train --resume` refuses it)",
        args.out.display(),
        sources.len(),
        averaged.metadata[AVERAGED_KEY],
        sources[newest].1
    );
    Ok(ExitCode::SUCCESS)
}
