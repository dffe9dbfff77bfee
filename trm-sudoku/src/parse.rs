//! Parsing the usual text forms of a Sudoku.
//!
//! Accepted: 81 cell characters, `1`-`9` for givens and `.` or `0` for blanks, either on one
//! line or laid out 9×9. Whitespace is ignored anywhere; in a multi-line layout the drawing
//! characters `|`, `+` and `-` are ignored too, so printed grids such as
//! `53. | .7. | ...` paste in directly.

use core::fmt;

use super::grid::{CELLS, Grid};

/// Why a text could not be read as a Sudoku grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A character that is neither a digit, a blank marker nor ignorable layout.
    BadChar {
        /// The offending character.
        ch: char,
        /// 0-based character position in the input text.
        position: usize,
        /// 0-based index of the cell it would have filled.
        cell: usize,
    },
    /// The text ended before 81 cells were read.
    TooFewCells {
        /// Number of cells found.
        found: usize,
    },
    /// A cell character appeared after the 81st cell.
    TooManyCells {
        /// 0-based character position of the first extra cell.
        position: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ParseError::BadChar { ch, position, cell } => write!(
                f,
                "bad character {ch:?} at position {} (cell {}, row {}, column {}): expected 1-9, '.' or '0'",
                position + 1,
                cell + 1,
                cell / 9 + 1,
                cell % 9 + 1
            ),
            ParseError::TooFewCells { found } => {
                write!(f, "too few cells: found {found}, expected {CELLS}")
            }
            ParseError::TooManyCells { position } => write!(
                f,
                "too many cells: a {}nd cell starts at position {}, expected {CELLS}",
                CELLS + 1,
                position + 1
            ),
        }
    }
}

/// Parses one grid from `text` (see the module docs for the accepted forms).
///
/// Blanks become `0`. The result may still contain conflicting givens; see
/// [`find_conflict`](super::find_conflict).
pub fn parse(text: &str) -> Result<Grid, ParseError> {
    let layout = text.contains('\n');
    let mut cells = [0u8; CELLS];
    let mut n = 0usize;
    for (position, ch) in text.chars().enumerate() {
        let value = match ch {
            '1'..='9' => ch as u8 - b'0',
            '.' | '0' => 0,
            c if c.is_whitespace() => continue,
            '|' | '+' | '-' if layout => continue,
            _ => {
                return Err(ParseError::BadChar {
                    ch,
                    position,
                    cell: n,
                });
            }
        };
        match cells.get_mut(n) {
            Some(slot) => *slot = value,
            None => return Err(ParseError::TooManyCells { position }),
        }
        n += 1;
    }
    if n < CELLS {
        return Err(ParseError::TooFewCells { found: n });
    }
    // Every value is 0..=9 by construction.
    Grid::from_cells(cells).map_err(|e| ParseError::BadChar {
        ch: '?',
        position: e.cell,
        cell: e.cell,
    })
}

impl core::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str =
        "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......";

    #[test]
    fn parses_a_line_with_dots_or_zeros() {
        let g = parse(LINE).unwrap();
        assert_eq!(g.cells()[0], 4);
        assert_eq!(g.cells()[1], 0);
        assert_eq!(g.filled(), 17);
        let zeros = LINE.replace('.', "0");
        assert_eq!(parse(&zeros).unwrap(), g);
    }

    #[test]
    fn parses_a_9x9_layout() {
        let text = "4 . . | . . . | 8 . 5\n. 3 . | . . . | . . .\n. . . | 7 . . | . . .\n------+-------+------\n\
                    . 2 . | . . . | . 6 .\n. . . | . 8 . | 4 . .\n. . . | . 1 . | . . .\n------+-------+------\n\
                    . . . | 6 . 3 | . 7 .\n5 . . | 2 . . | . . .\n1 . 4 | . . . | . . .\n";
        assert_eq!(parse(text).unwrap(), parse(LINE).unwrap());
    }

    #[test]
    fn names_the_bad_character_and_position() {
        let mut bad = [b'.'; 81];
        bad[10] = b'x';
        let text = core::str::from_utf8(&bad).unwrap();
        assert_eq!(
            parse(text),
            Err(ParseError::BadChar {
                ch: 'x',
                position: 10,
                cell: 10
            })
        );
        // Layout characters are only layout in a multi-line grid.
        bad[10] = b'|';
        let text = core::str::from_utf8(&bad).unwrap();
        assert!(matches!(
            parse(text),
            Err(ParseError::BadChar { ch: '|', .. })
        ));
    }

    #[test]
    fn counts_cells() {
        assert_eq!(
            parse(&LINE[..80]),
            Err(ParseError::TooFewCells { found: 80 })
        );
        let mut long = [b'.'; 82];
        long[81] = b'1';
        let text = core::str::from_utf8(&long).unwrap();
        assert_eq!(parse(text), Err(ParseError::TooManyCells { position: 81 }));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(text in ".{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn display_round_trips(cells in proptest::collection::vec(0u8..=9, 81)) {
            let mut a = [0u8; CELLS];
            a.copy_from_slice(&cells);
            let g = Grid::from_cells(a).unwrap();
            proptest::prop_assert_eq!(parse(&std::format!("{g}")), Ok(g));
        }
    }
}
