//! Host-side Sudoku: the file formats, the exact solver and the generator live in
//! [`trm_sudoku`] (feature `std`), re-exported here; [`augment`] draws training augmentations.

pub mod augment;
pub use trm_sudoku::{generate, io, solver};
