//! `trm-train`: the host side of the Tiny Recursive Model project.
//!
//! - [`dataset`]: the tokenised N × K augmented training set, split by base puzzle;
//! - [`model`]: TRM in burn (config, layers, ACT wrapper, loss, optimisers, weights);
//! - [`export`]: packing weights into the `trm-edge` model file (f32, f16, int8);
//! - [`infer`]: packed models on burn backends, batched solving (the GPU path of `trm-solve`);
//! - [`train`]: the training loop, its configuration, checkpoints and metrics;
//! - [`plot`]: PNG charts (learning curves, accuracy vs supervision-step budget);
//! - [`cli`]: the `trm-train` command line;
//! - [`atomic`]: how every output file is written (atomically, never over a device or link).

#![deny(missing_docs)]

pub mod atomic;
pub mod cli;
pub mod dataset;
pub mod export;
pub mod infer;
pub mod model;
pub mod plot;
pub mod progress;
pub mod stats;
pub mod train;
