//! Compute kernels: f32 activations against f32 or f16 weights, and int8 weights against
//! activations quantised to int8 ([`q8`]), weights read in place.
//!
//! [`generic`] holds the scalar reference kernels (the specification); [`arch`] holds the
//! SIMD versions and their run-time dispatch (the only place with `unsafe`); [`Matrix`] dispatches products to them;
//! [`ops`] holds the element-wise pieces of a block (RMSNorm, SwiGLU, softmax, RoPE).
//! Tile products ([`Matrix::matmul_tile`]) multiply [`TILE`] activation vectors at once, so
//! that each weight read feeds `TILE` multiply-adds.

pub mod arch;
pub mod f16;
pub mod generic;
mod matrix;
pub mod ops;
pub mod q8;
#[cfg(test)]
mod testing;

pub use generic::TILE;
pub use matrix::{Matrix, TileShape, Weights};
