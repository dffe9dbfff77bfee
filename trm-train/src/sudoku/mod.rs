//! Host-side Sudoku tools. The grid type, parser, checker and token encoding live in
//! [`trm_edge::sudoku`] so the device runtime shares them.

pub mod augment;
pub mod generate;
pub mod io;
pub mod solver;
