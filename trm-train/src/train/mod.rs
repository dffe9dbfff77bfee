//! Training: `trm-train train` and the default run.
//!
//! - [`config`]: [`TrainConfig`] (TOML, `--set key=value` overrides),
//! - [`puzzles`]: the run's puzzles (generated and cached, or from a file), the sampler and the
//!   evaluation batches,
//! - [`run`]: the loop ([`train`]) and the evaluation ([`evaluate`]),
//! - [`checkpoint`]: [`TrainState`] and its atomic checkpoint file,
//! - [`metrics`]: `metrics.jsonl` and the run [`Summary`],
//! - [`eval`]: evaluation — accuracy as a function of the supervision-step budget
//!   (`trm-train eval`),
//! - [`plots`]: learning curves and accuracy-vs-budget charts (PNG).
//!
//! A run directory holds `config.toml` (the resolved configuration), `metrics.jsonl`,
//! `checkpoint.safetensors` (weights, EMA weights, AdamATan2 moments, ACT carry, data and RNG
//! position), `model.safetensors` (the EMA weights in the official layout), `report.txt` (the
//! final summary) and `plots/learning_curves.png`.

pub mod checkpoint;
pub mod config;
pub mod eval;
pub mod metrics;
pub mod plots;
pub mod puzzles;
pub mod run;

pub use checkpoint::TrainState;
pub use config::TrainConfig;
pub use metrics::{EvalMetrics, Summary};
pub use run::{RunOptions, evaluate, train};
