//! Generator → CSV → reader → dataset builder → tokens → device-side checker, end to end.

use trm_edge::sudoku::{Grid, check_answer, decode};
use trm_sudoku::generate::{GenSpec, generate};
use trm_sudoku::io::{ExtremeWriter, Format, Reader};
use trm_sudoku::search::solve;
use trm_train::dataset::{DatasetSpec, build};

#[test]
fn generated_puzzles_survive_the_whole_data_pipeline() {
    let spec = GenSpec {
        clues: 25..=35,
        min_rating: 0,
    };
    let puzzles = generate(&spec, 24, 3, |_| {}).unwrap();

    let mut w = ExtremeWriter::new(Vec::new()).unwrap();
    for g in &puzzles {
        let (p, s) = (
            Grid::from_cells(g.puzzle).unwrap(),
            Grid::from_cells(g.solution).unwrap(),
        );
        w.write("pipeline", &p, &s, g.rating).unwrap();
    }
    let csv = w.finish().unwrap();
    let records: Vec<_> = Reader::new(csv.as_slice(), Format::Extreme)
        .map(Result::unwrap)
        .collect();
    assert_eq!(records.len(), 24);

    let mut base = Vec::new();
    for (r, g) in records.iter().zip(&puzzles) {
        assert_eq!(*r.puzzle.cells(), g.puzzle);
        assert_eq!(r.rating, Some(g.rating));
        assert!((25..=35).contains(&r.puzzle.filled()));
        let out = solve(r.puzzle.cells(), 2);
        assert!(out.is_unique());
        assert_eq!(
            out.guesses, g.rating,
            "the rating is the solver's guess count"
        );
        base.push((r.puzzle, r.solution.unwrap()));
    }

    let spec = DatasetSpec {
        augmentations: 10,
        test_augmentations: 0,
        test_puzzles: 4,
        seed: 1,
    };
    let data = build(&base, &spec).unwrap();
    assert_eq!(data.train.len(), 20 * 11);
    assert_eq!(data.test.len(), 4);
    for (x, y) in data.train.inputs.iter().zip(&data.train.labels) {
        let (p, s) = (decode(x).unwrap(), decode(y).unwrap());
        check_answer(&p, &s).unwrap();
        assert!(
            solve(p.cells(), 2).is_unique(),
            "augmentation keeps uniqueness"
        );
    }
}
