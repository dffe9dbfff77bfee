//! Training: `trm-train train` and the default run.
//!
//! - [`config`]: [`TrainConfig`] (TOML, `--set key=value` overrides),
//! - [`data`]: base puzzles (generated and cached, or from a file), the sampler,
//! - [`run`]: the loop ([`train`]) and the evaluation ([`evaluate`]),
//! - [`checkpoint`]: [`TrainState`] and its atomic checkpoint file,
//! - [`metrics`]: `metrics.jsonl` and the run [`Summary`],
//! - [`report`]: progress bar or plain lines.
//!
//! A run directory holds `config.toml` (the resolved configuration), `metrics.jsonl`,
//! `checkpoint.safetensors` (weights, EMA weights, AdamATan2 moments, ACT carry, data and RNG
//! position) and `model.safetensors` (the EMA weights in the official layout).

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod metrics;
pub mod report;
pub mod run;

pub use checkpoint::TrainState;
pub use config::TrainConfig;
pub use metrics::{EvalMetrics, Summary};
pub use run::{RunOptions, evaluate, train};
