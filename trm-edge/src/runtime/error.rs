//! Why a runtime call could not run.

use core::fmt;

/// An error of the runtime: a caller buffer of the wrong size or an input out of range.
/// Model-file problems are caught earlier, by [`crate::format::Model::from_bytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunError {
    /// A caller buffer has the wrong length.
    BufferSize {
        /// Which buffer (`"x"`, `"z_h"`, `"z_l"`, `"logits"`, `"scratch"`, `"tokens"`, `"arena"`).
        buffer: &'static str,
        /// Length needed (f32 elements, or tokens).
        needed: usize,
        /// Length given.
        got: usize,
    },
    /// A token is outside the vocabulary.
    Token {
        /// 0-based position.
        position: usize,
        /// The token.
        token: u8,
    },
    /// The puzzle id is not a row of the puzzle-embedding table.
    PuzzleId {
        /// The id asked for.
        id: usize,
        /// Rows in the table.
        count: usize,
    },
    /// The model does not read 81 cells with the 11-token Sudoku vocabulary.
    NotSudoku,
    /// A supervision budget of 0 steps.
    ZeroBudget,
    /// A tensor the validated model should have is missing (a bug, never expected).
    Internal,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferSize {
                buffer,
                needed,
                got,
            } => write!(f, "buffer {buffer} has length {got}, needs {needed}"),
            Self::Token { position, token } => {
                write!(
                    f,
                    "token {token} at position {position} is outside the vocabulary"
                )
            }
            Self::PuzzleId { id, count } => {
                write!(f, "puzzle id {id} out of range (table has {count} rows)")
            }
            Self::NotSudoku => write!(f, "the model is not a Sudoku model (81 cells, 11 tokens)"),
            Self::ZeroBudget => write!(f, "the supervision-step budget is 0"),
            Self::Internal => write!(f, "internal error: a validated tensor is missing"),
        }
    }
}

impl core::error::Error for RunError {}
