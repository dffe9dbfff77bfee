//! The [`Grid`] type: 81 cells, `0` for blank, `1..=9` for digits.

use core::fmt;

/// Number of cells in a Sudoku grid.
pub const CELLS: usize = 81;

/// A 9×9 Sudoku grid (a puzzle, a partial answer or a solution).
///
/// Cells are row-major (`r * 9 + c`); each holds `0` (blank) or a digit `1..=9`.
/// The invariant "every cell is `0..=9`" is upheld by every constructor, so the
/// cell values can be used to index 10-entry tables without a check.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Grid([u8; CELLS]);

/// A cell value outside `0..=9` was given to [`Grid::from_cells`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridError {
    /// Cell index `0..81` of the bad value.
    pub cell: usize,
    /// The value found there.
    pub value: u8,
}

impl fmt::Display for GridError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cell {} (row {}, column {}) holds {}, expected 0 (blank) or a digit 1-9",
            self.cell,
            self.cell / 9 + 1,
            self.cell % 9 + 1,
            self.value
        )
    }
}

impl Grid {
    /// The grid with every cell blank.
    pub const EMPTY: Grid = Grid([0; CELLS]);

    /// Builds a grid from 81 cell values, each `0` (blank) or `1..=9`.
    pub fn from_cells(cells: [u8; CELLS]) -> Result<Grid, GridError> {
        match cells.iter().position(|&v| v > 9) {
            Some(cell) => Err(GridError {
                cell,
                value: cells[cell],
            }),
            None => Ok(Grid(cells)),
        }
    }

    /// The 81 cell values, row-major, `0` = blank.
    pub const fn cells(&self) -> &[u8; CELLS] {
        &self.0
    }

    /// The value at row `r`, column `c` (both `0..9`), or `None` outside the grid.
    pub fn get(&self, r: usize, c: usize) -> Option<u8> {
        if r < 9 && c < 9 {
            Some(self.0[r * 9 + c])
        } else {
            None
        }
    }

    /// Sets cell `cell` (`0..81`) to `value` (`0..=9`).
    pub fn set(&mut self, cell: usize, value: u8) -> Result<(), GridError> {
        if cell >= CELLS || value > 9 {
            return Err(GridError { cell, value });
        }
        self.0[cell] = value;
        Ok(())
    }

    /// Number of filled (non-blank) cells; for a puzzle, its number of givens (clues).
    pub fn filled(&self) -> usize {
        self.0.iter().filter(|&&v| v != 0).count()
    }

    /// True when no cell is blank.
    pub fn is_full(&self) -> bool {
        self.0.iter().all(|&v| v != 0)
    }

    /// Writes the 81-character form (`.` for blanks) into `out` and returns it as text.
    pub fn write_line<'a>(&self, out: &'a mut [u8; CELLS]) -> &'a str {
        for (o, &v) in out.iter_mut().zip(self.0.iter()) {
            *o = if v == 0 { b'.' } else { b'0' + v };
        }
        // Every byte is ASCII ('.' or '1'..='9'), so this never fails.
        core::str::from_utf8(out).unwrap_or("")
    }
}

impl fmt::Display for Grid {
    /// The 81-character line form, `.` for blanks (the format of the data files).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; CELLS];
        f.write_str(self.write_line(&mut buf))
    }
}

impl fmt::Debug for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Grid({self})")
    }
}

impl core::error::Error for GridError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_values_above_nine() {
        let mut cells = [0u8; CELLS];
        cells[40] = 10;
        assert_eq!(
            Grid::from_cells(cells),
            Err(GridError {
                cell: 40,
                value: 10
            })
        );
    }

    #[test]
    fn set_checks_bounds() {
        let mut g = Grid::EMPTY;
        assert!(g.set(81, 1).is_err());
        assert!(g.set(0, 10).is_err());
        g.set(80, 9).unwrap();
        assert_eq!(g.get(8, 8), Some(9));
        assert_eq!(g.get(9, 0), None);
        assert_eq!(g.filled(), 1);
    }
}
