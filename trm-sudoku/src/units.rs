//! The 27 units (9 rows, 9 columns, 9 boxes) of a Sudoku grid.

use core::fmt;

/// Which family a [`Unit`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitKind {
    /// A row, numbered top to bottom.
    Row,
    /// A column, numbered left to right.
    Column,
    /// A 3×3 box, numbered row-major (box 0 top-left, box 8 bottom-right).
    Box,
}

/// One of the 27 units; `index` is `0..9` within its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit {
    /// Row, column or box.
    pub kind: UnitKind,
    /// Index `0..9` within the kind (0-based).
    pub index: u8,
}

impl Unit {
    /// All 27 units: rows 0..9, then columns 0..9, then boxes 0..9.
    pub const ALL: [Unit; 27] = {
        let mut all = [Unit {
            kind: UnitKind::Row,
            index: 0,
        }; 27];
        let mut i = 0;
        while i < 9 {
            all[i] = Unit {
                kind: UnitKind::Row,
                index: i as u8,
            };
            all[9 + i] = Unit {
                kind: UnitKind::Column,
                index: i as u8,
            };
            all[18 + i] = Unit {
                kind: UnitKind::Box,
                index: i as u8,
            };
            i += 1;
        }
        all
    };
}

impl fmt::Display for Unit {
    /// 1-based, as people count: `row 3`, `column 7`, `box 1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            UnitKind::Row => "row",
            UnitKind::Column => "column",
            UnitKind::Box => "box",
        };
        write!(f, "{kind} {}", self.index + 1)
    }
}

/// The box (`0..9`, row-major) that holds cell `cell` (`0..81`).
pub const fn box_of(cell: usize) -> usize {
    (cell / 27) * 3 + (cell % 9) / 3
}

/// The 9 cell indices of `unit`, in reading order.
pub const fn unit_cells(unit: Unit) -> [usize; 9] {
    let i = unit.index as usize % 9;
    let mut cells = [0usize; 9];
    let mut k = 0;
    while k < 9 {
        cells[k] = match unit.kind {
            UnitKind::Row => i * 9 + k,
            UnitKind::Column => k * 9 + i,
            UnitKind::Box => (i / 3) * 27 + (i % 3) * 3 + (k / 3) * 9 + k % 3,
        };
        k += 1;
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_is_in_exactly_three_units() {
        let mut seen = [0u8; 81];
        for unit in Unit::ALL {
            for c in unit_cells(unit) {
                seen[c] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n == 3));
    }

    #[test]
    fn box_of_matches_box_cells() {
        for b in 0..9u8 {
            for c in unit_cells(Unit {
                kind: UnitKind::Box,
                index: b,
            }) {
                assert_eq!(box_of(c), b as usize);
            }
        }
    }
}
