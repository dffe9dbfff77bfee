//! The official token encoding of a Sudoku for the network.
//!
//! Token `0` is PAD (never a cell), `1` is a blank cell and `d + 1` is digit `d`, so the
//! vocabulary is 11 tokens. Labels use the same map on the solution (every cell `2..=10`).

use core::fmt;

use super::grid::{CELLS, Grid};

/// Padding token; never produced for a cell.
pub const PAD_TOKEN: u8 = 0;
/// Token of a blank cell.
pub const BLANK_TOKEN: u8 = 1;
/// Number of distinct tokens (PAD, blank, 9 digits).
pub const VOCAB_SIZE: usize = 11;

/// A token that does not stand for a cell value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenError {
    /// 0-based position of the token.
    pub position: usize,
    /// The token found (PAD or `>= 11`).
    pub token: u8,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "token {} at position {} is not a cell (expected 1 = blank or 2..=10 = digit)",
            self.token,
            self.position + 1
        )
    }
}

/// Encodes a grid as 81 tokens: blank → 1, digit `d` → `d + 1`.
pub fn encode(grid: &Grid) -> [u8; CELLS] {
    grid.cells().map(|v| v + 1)
}

/// Decodes 81 tokens back into a grid: 1 → blank, `d + 1` → digit `d`.
///
/// PAD (0) and tokens above 10 are errors; the first one is reported.
pub fn decode(tokens: &[u8; CELLS]) -> Result<Grid, TokenError> {
    let mut cells = [0u8; CELLS];
    for (position, (&token, cell)) in tokens.iter().zip(cells.iter_mut()).enumerate() {
        if token == PAD_TOKEN || token as usize >= VOCAB_SIZE {
            return Err(TokenError { position, token });
        }
        *cell = token - 1;
    }
    Grid::from_cells(cells).map_err(|e| TokenError {
        position: e.cell,
        token: e.value + 1,
    })
}

impl core::error::Error for TokenError {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encode_decode_round_trip(cells in proptest::array::uniform32(0u8..=9)) {
            let mut full = [0u8; CELLS];
            for (i, v) in full.iter_mut().enumerate() {
                *v = cells[i % 32];
            }
            let g = Grid::from_cells(full).unwrap();
            let t = encode(&g);
            prop_assert!(t.iter().all(|&x| (1..=10).contains(&x)));
            prop_assert_eq!(decode(&t).unwrap(), g);
        }
    }

    #[test]
    fn rejects_pad_and_out_of_range() {
        let mut t = [1u8; CELLS];
        t[7] = 0;
        assert_eq!(
            decode(&t),
            Err(TokenError {
                position: 7,
                token: 0
            })
        );
        t[7] = 11;
        assert_eq!(
            decode(&t),
            Err(TokenError {
                position: 7,
                token: 11
            })
        );
    }
}
