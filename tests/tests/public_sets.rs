//! Every public evaluation set in `shared/data/sudoku/` is read by the project's reader,
//! solved uniquely by the exact solver, and the solution passes the device-side checker.

use trm_edge::sudoku::{Grid, check_answer};
use trm_sudoku::io::{Format, Reader};
use trm_sudoku::search::solve;
use trm_testkit::require_sudoku_data;

const SETS: [(&str, usize); 7] = [
    ("17clue.txt", 49_158),
    ("forum_hardest_1106.txt", 375),
    ("forum_hardest_1905_11plus.txt", 48_766),
    ("kaggle3m_rated_5000.txt", 5_000),
    ("norvig_hardest11.txt", 11),
    ("top1465.txt", 1_465),
    ("top95.txt", 95),
];

#[test]
fn every_public_puzzle_has_exactly_one_solution() {
    let Some(dir) = require_sudoku_data() else {
        return;
    };
    for (name, count) in SETS {
        let reader = Reader::open(&dir.join(name)).unwrap();
        assert_eq!(reader.format(), Format::Plain, "{name}");
        let mut n = 0;
        for record in reader {
            let r = record.unwrap_or_else(|e| panic!("{name}: {e}"));
            let out = solve(r.puzzle.cells(), 2);
            assert_eq!(out.solutions, 1, "{name} line {}", r.line);
            let found = Grid::from_cells(out.solution.unwrap()).unwrap();
            check_answer(&r.puzzle, &found)
                .unwrap_or_else(|e| panic!("{name} line {}: {e}", r.line));
            if let Some(given) = r.solution {
                assert_eq!(
                    given, found,
                    "{name} line {}: solution differs from the file's",
                    r.line
                );
            }
            n += 1;
        }
        assert_eq!(n, count, "{name}");
    }
}
