//! Sudoku core: grids, parsing, checking and the official token encoding.
//!
//! A grid is 81 cells in row-major order (cell `r * 9 + c`), each `0` (blank) or a digit `1..=9`.

mod check;
mod grid;
mod parse;
mod symmetry;
mod tokens;
mod units;

pub use check::{CheckError, Conflict, check_answer, find_conflict};
pub use grid::{CELLS, Grid, GridError};
pub use parse::{ParseError, parse};
pub use symmetry::{Symmetry, SymmetryError};
pub use tokens::{BLANK_TOKEN, PAD_TOKEN, TokenError, VOCAB_SIZE, decode, encode};
pub use units::{Unit, UnitKind, box_of, unit_cells};
