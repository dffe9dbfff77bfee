//! `trm-train`: the host side of the Tiny Recursive Model project.
//!
//! - [`sudoku`]: exact solver, puzzle generator, augmentation and file formats;
//! - [`dataset`]: the tokenised N × K augmented training set, split by base puzzle;
//! - [`cli`]: the `trm-train` command line.

#![deny(missing_docs)]

pub mod cli;
pub mod dataset;
pub mod paths;
pub mod progress;
pub mod stats;
pub mod sudoku;
