//! `trm-edge`: the `#![no_std]`, heap-free side of the Tiny Recursive Model project.
//!
//! Everything here runs on a microcontroller as well as on a Linux host: no allocation,
//! no panics reachable from input (every fallible operation returns a typed error), and
//! the caller owns all memory.
//!
//! - [`sudoku`]: the grid type, text parsing, the answer checker, the official token
//!   encoding and the symmetries (the `trm-sudoku` crate, re-exported);
//! - [`format`]: the packed model file (reader, validating and zero-copy, and writer with f16
//!   and int8 quantisation);
//! - [`kernels`]: matrix-vector products on f32/f16/int8 weights (scalar reference kernels and
//!   AVX2/NEON versions) and the element-wise pieces of a block;
//! - [`runtime`]: one supervision step of TRM on caller buffers (teacher-forcing friendly);
//! - [`solver`]: solving a Sudoku under a step budget and a halting policy, and with several
//!   attempts under a total step budget ([`solver::attempts`]);
//! - [`rng`]: a small seedable generator (augmentations, latent noise; from `trm-sudoku`).
//!
//! Feature `alloc` (off by default; host tools only) adds `format::pack_to_vec`, which packs
//! a model into a `Vec`. Nothing in the runtime allocates, with or without it.

#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod format;
pub mod kernels;
pub mod protocol;
pub mod runtime;
pub mod solver;
pub use trm_sudoku as sudoku;
pub use trm_sudoku::rng;
