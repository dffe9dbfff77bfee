//! Checking grids: conflicting givens, and whether a proposed answer solves a puzzle.

use core::fmt;

use super::grid::{CELLS, Grid};
use super::units::{Unit, unit_cells};

/// Two cells of one unit hold the same digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The unit where the digit repeats.
    pub unit: Unit,
    /// The repeated digit, `1..=9`.
    pub digit: u8,
    /// The two cells (`0..81`, first < second) holding it.
    pub cells: (usize, usize),
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "digit {} appears twice in {} (cells {} and {})",
            self.digit,
            self.unit,
            self.cells.0 + 1,
            self.cells.1 + 1
        )
    }
}

/// The first conflict among the filled cells of `grid`, scanning rows, columns, then boxes.
///
/// A puzzle with a conflict has no solution.
pub fn find_conflict(grid: &Grid) -> Option<Conflict> {
    let cells = grid.cells();
    for unit in Unit::ALL {
        // first[d] = 1 + cell index where digit d was first seen in this unit, 0 if unseen.
        let mut first = [0usize; 10];
        for c in unit_cells(unit) {
            let d = cells[c] as usize;
            if d == 0 {
                continue;
            }
            if first[d] != 0 {
                return Some(Conflict {
                    unit,
                    digit: d as u8,
                    cells: (first[d] - 1, c),
                });
            }
            first[d] = c + 1;
        }
    }
    None
}

/// Why a proposed answer does not solve its puzzle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// A cell of the answer is blank.
    Incomplete {
        /// 0-based index of the first blank cell.
        cell: usize,
    },
    /// A unit of the answer repeats a digit.
    Conflict(Conflict),
    /// The answer changes a given of the puzzle.
    GivenChanged {
        /// 0-based index of the cell.
        cell: usize,
        /// The puzzle's given digit.
        given: u8,
        /// The answer's digit.
        found: u8,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CheckError::Incomplete { cell } => write!(f, "cell {} is blank", cell + 1),
            CheckError::Conflict(c) => c.fmt(f),
            CheckError::GivenChanged { cell, given, found } => {
                write!(f, "cell {} changes the given {given} to {found}", cell + 1)
            }
        }
    }
}

/// Checks that `answer` is a complete, valid grid that keeps every given of `puzzle`.
///
/// Complete: no blank cell. Valid: every row, column and box holds 1–9 exactly once
/// (81 filled cells and no repeat imply that). Givens: every filled cell of `puzzle`
/// holds the same digit in `answer`.
pub fn check_answer(puzzle: &Grid, answer: &Grid) -> Result<(), CheckError> {
    let (p, a) = (puzzle.cells(), answer.cells());
    if let Some(cell) = a.iter().position(|&v| v == 0) {
        return Err(CheckError::Incomplete { cell });
    }
    for cell in 0..CELLS {
        if p[cell] != 0 && p[cell] != a[cell] {
            return Err(CheckError::GivenChanged {
                cell,
                given: p[cell],
                found: a[cell],
            });
        }
    }
    match find_conflict(answer) {
        Some(c) => Err(CheckError::Conflict(c)),
        None => Ok(()),
    }
}

impl core::error::Error for CheckError {}

#[cfg(test)]
mod tests {
    use super::super::{UnitKind, parse};
    use super::*;

    const PUZZLE: &str =
        "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";
    const SOLUTION: &str =
        "534678912672195348198342567859761423426853791713924856961537284287419635345286179";

    #[test]
    fn accepts_the_solution() {
        let (p, s) = (parse(PUZZLE).unwrap(), parse(SOLUTION).unwrap());
        assert_eq!(find_conflict(&p), None);
        assert_eq!(check_answer(&p, &s), Ok(()));
    }

    #[test]
    fn rejects_blank_changed_and_repeated() {
        let (p, s) = (parse(PUZZLE).unwrap(), parse(SOLUTION).unwrap());
        let mut blank = s;
        blank.set(5, 0).unwrap();
        assert_eq!(
            check_answer(&p, &blank),
            Err(CheckError::Incomplete { cell: 5 })
        );
        // Swapping two cells of row 0 keeps rows valid but breaks columns; cell 0 is a given.
        let mut swapped = s;
        swapped.set(0, 3).unwrap();
        swapped.set(1, 5).unwrap();
        swapped.set(2, 4).unwrap();
        assert_eq!(
            check_answer(&p, &swapped),
            Err(CheckError::GivenChanged {
                cell: 0,
                given: 5,
                found: 3
            })
        );
        let free = parse(&"0".repeat(81)).unwrap();
        match check_answer(&free, &swapped) {
            Err(CheckError::Conflict(c)) => assert_eq!(c.unit.kind, UnitKind::Column),
            other => panic!("expected a column conflict, got {other:?}"),
        }
    }

    #[test]
    fn finds_conflicting_givens() {
        let mut text = PUZZLE.as_bytes().to_vec();
        text[2] = b'5'; // row 0 now has two 5s
        let g = parse(core::str::from_utf8(&text).unwrap()).unwrap();
        let c = find_conflict(&g).unwrap();
        assert_eq!((c.unit.kind, c.digit, c.cells), (UnitKind::Row, 5, (0, 2)));
    }
}
