//! `trm-sudoku`: the one home of Sudoku in the Tiny Recursive Model project.
//!
//! Without features the crate is `#![no_std]` and allocation-free, and the device runtime
//! (`trm-edge`, the firmware) uses it as is:
//! - [`Grid`], [`parse`], [`check_answer`] and [`find_conflict`]: the grid type, text parsing
//!   and the answer checker;
//! - [`encode`]/[`decode`]: the official token encoding used by the network;
//! - [`Symmetry`]: the validity-preserving transforms (digit relabelling, band and stack
//!   moves, transposition) used for augmentation in training and at test time;
//! - [`units`](unit_cells): rows, columns and boxes;
//! - [`rng`]: a small seedable generator (augmentations, latent noise).
//!
//! Feature `std` adds the host side:
//! - [`io`]: the puzzle files (Sudoku-Extreme CSV and plain lists), one reader for every tool;
//! - [`search`]: the exact solver, a backtracking search (uniqueness, search effort as a
//!   difficulty rating);
//! - [`generate`]: the puzzle generator used for training data.
//!
//! A grid is 81 cells in row-major order (cell `r * 9 + c`), each `0` (blank) or a digit `1..=9`.

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod check;
mod grid;
mod parse;
pub mod rng;
mod symmetry;
mod tokens;
mod units;

#[cfg(feature = "std")]
pub mod generate;
#[cfg(feature = "std")]
pub mod io;
#[cfg(feature = "std")]
pub mod search;

pub use check::{CheckError, Conflict, check_answer, find_conflict};
pub use grid::{CELLS, Grid, GridError};
pub use parse::{ParseError, parse};
pub use symmetry::{Symmetry, SymmetryError};
pub use tokens::{BLANK_TOKEN, PAD_TOKEN, TokenError, VOCAB_SIZE, decode, encode};
pub use units::{Unit, UnitKind, box_of, unit_cells};
