//! `trm-train export`: a run's weights (or an official state dict) as a packed model file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use trm_edge::format::{DType, Model};

use super::eval::Weights;
use crate::export::{pack_model, pack_official};
use crate::train::TrainConfig;
use crate::train::checkpoint::CHECKPOINT_FILE;
use crate::train::run::{CONFIG_FILE, load_state, refuse_run_file, train_device};

/// Storage type of the weight matrices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportDType {
    /// 32-bit floats (exact).
    F32,
    /// IEEE half precision, round to nearest even.
    F16,
    /// Symmetric int8 per output channel with f32 scales.
    Int8,
}

impl From<ExportDType> for DType {
    fn from(d: ExportDType) -> Self {
        match d {
            ExportDType::F32 => DType::F32,
            ExportDType::F16 => DType::F16,
            ExportDType::Int8 => DType::I8,
        }
    }
}

/// Arguments of `export`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["checkpoint", "official"]))]
pub struct ExportArgs {
    /// Run directory of `trm-train train` (its checkpoint).
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// Official PyTorch state dict as safetensors, with the model config in its `config`
    /// metadata (as the reference fixtures and `model.safetensors` of a run).
    #[arg(long, value_name = "FILE")]
    pub official: Option<PathBuf>,
    /// Storage type of the weight matrices.
    #[arg(long, value_enum)]
    pub dtype: ExportDType,
    /// Weights of a checkpoint to export.
    #[arg(long, value_enum, default_value_t = Weights::Ema)]
    pub weights: Weights,
    /// Output file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Runs `export`.
pub fn run(args: ExportArgs) -> Result<ExitCode> {
    refuse_run_file(&args.out)?;
    let bytes = match (&args.checkpoint, &args.official) {
        (Some(dir), None) => {
            if !dir.join(CHECKPOINT_FILE).is_file() {
                bail!("{} has no {CHECKPOINT_FILE}", dir.display());
            }
            let cfg = TrainConfig::read(&dir.join(CONFIG_FILE))
                .with_context(|| format!("{} is not a run directory", dir.display()))?;
            let state = load_state(dir, &cfg, &train_device())?;
            let model = match args.weights {
                Weights::Ema => state.eval_model(),
                Weights::Raw => state.model.clone(),
            };
            pack_model(&model, args.dtype.into())?
        }
        (None, Some(file)) => pack_official(file, args.dtype.into())?,
        _ => bail!("give exactly one of --checkpoint and --official"),
    };
    crate::atomic::write_bytes(&args.out, &bytes)?;
    let model = Model::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let c = model.config();
    println!(
        "wrote {} ({} bytes, {:?}): {:?} hidden {}, {} layers, T={} n={} N_sup={}, scratch {} bytes",
        args.out.display(),
        bytes.len(),
        args.dtype,
        c.variant,
        c.hidden,
        c.layers,
        c.h_cycles,
        c.l_cycles,
        c.halt_max_steps,
        model.scratch_bytes()
    );
    Ok(ExitCode::SUCCESS)
}
