//! The training data set: N base puzzles × K augmentations, tokenised.
//!
//! Mirrors the official `build_sudoku_dataset.py`: every base puzzle contributes itself plus
//! `augmentations` random symmetries of itself ([`Symmetry::random_with`]), all kept together as one
//! *group*, so a training epoch can draw one example per base puzzle. The train/test split is
//! made on base puzzles, so no augmentation of a test puzzle is ever in train. Everything is
//! deterministic for a seed and independent of the number of threads.
//!
//! The public sets in `shared/data/sudoku/` are evaluation sets: never pass them here.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use trm_edge::sudoku::{CELLS, Grid, Symmetry, check_answer, encode};

/// How to build a data set from base puzzles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetSpec {
    /// Augmented copies per training base puzzle, besides the original (official: 1000).
    pub augmentations: usize,
    /// Augmented copies per test base puzzle, besides the original (official: 0).
    pub test_augmentations: usize,
    /// Number of base puzzles held out for test.
    pub test_puzzles: usize,
    /// Seed for the split and the augmentations.
    pub seed: u64,
}

/// Tokenised examples of one split, grouped by base puzzle.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// Input tokens per example, `[examples][81]`: 1 = blank, `d + 1` = given digit `d`.
    pub inputs: Vec<[u8; CELLS]>,
    /// Label tokens per example, `[examples][81]`: `d + 1` for the solution digit of every cell.
    pub labels: Vec<[u8; CELLS]>,
    /// `group_starts[g]..group_starts[g + 1]` are the examples of base puzzle `g`;
    /// `groups() + 1` entries, the last equal to `len()`.
    pub group_starts: Vec<usize>,
}

impl Split {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// True when the split holds no example.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Number of base puzzles (groups).
    pub fn groups(&self) -> usize {
        self.group_starts.len().saturating_sub(1)
    }

    /// The example indices of group `g`.
    pub fn group(&self, g: usize) -> std::ops::Range<usize> {
        self.group_starts[g]..self.group_starts[g + 1]
    }
}

/// A train split and a test split, disjoint by base puzzle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// Training examples.
    pub train: Split,
    /// Held-out examples.
    pub test: Split,
}

/// Why a data set could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DatasetError {
    /// More test puzzles were asked for than base puzzles exist.
    #[error("asked for {test} test puzzles but only {base} base puzzles were given")]
    TooFewPuzzles {
        /// Requested test puzzles.
        test: usize,
        /// Available base puzzles.
        base: usize,
    },
    /// A base pair is not a puzzle with its solution.
    #[error("base puzzle {index}: the solution does not solve the puzzle: {reason}")]
    BadPair {
        /// 0-based index into the base list.
        index: usize,
        /// What the checker found.
        reason: String,
    },
}

/// Builds the data set from `(puzzle, solution)` pairs.
///
/// The base list is shuffled with `spec.seed`; the first `spec.test_puzzles` go to test.
/// Group `g` of each split holds the original followed by its augmentations, drawn from a
/// generator seeded by `(seed, base index)`.
pub fn build(base: &[(Grid, Grid)], spec: &DatasetSpec) -> Result<Dataset, DatasetError> {
    let order = split_order(base, spec)?;
    let (test_ids, train_ids) = order.split_at(spec.test_puzzles);
    Ok(Dataset {
        train: build_split(base, train_ids, spec.augmentations, spec.seed),
        test: build_split(base, test_ids, spec.test_augmentations, spec.seed),
    })
}

/// The test split of [`build`] alone (the same puzzles in the same order), without building
/// the augmented training split: what evaluating a run's held-out puzzles needs.
pub fn build_test(base: &[(Grid, Grid)], spec: &DatasetSpec) -> Result<Split, DatasetError> {
    let order = split_order(base, spec)?;
    let test_ids = &order[..spec.test_puzzles];
    Ok(build_split(
        base,
        test_ids,
        spec.test_augmentations,
        spec.seed,
    ))
}

/// Checks `base` and shuffles its indices with `spec.seed`; the first `spec.test_puzzles` are
/// the test split.
fn split_order(base: &[(Grid, Grid)], spec: &DatasetSpec) -> Result<Vec<usize>, DatasetError> {
    if spec.test_puzzles > base.len() {
        return Err(DatasetError::TooFewPuzzles {
            test: spec.test_puzzles,
            base: base.len(),
        });
    }
    if let Some((index, err)) = base
        .iter()
        .enumerate()
        .find_map(|(i, (p, s))| check_answer(p, s).err().map(|e| (i, e)))
    {
        return Err(DatasetError::BadPair {
            index,
            reason: err.to_string(),
        });
    }
    let mut order: Vec<usize> = (0..base.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(spec.seed));
    Ok(order)
}

fn build_split(base: &[(Grid, Grid)], ids: &[usize], augmentations: usize, seed: u64) -> Split {
    let groups: Vec<Vec<([u8; CELLS], [u8; CELLS])>> = ids
        .par_iter()
        .map(|&i| {
            let (p, s) = &base[i];
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(i as u64 + 1);
            let mut group = Vec::with_capacity(augmentations + 1);
            group.push((encode(p), encode(s)));
            for _ in 0..augmentations {
                let sym = Symmetry::random_with(&mut rng);
                let (ap, as_) = (sym.apply(p), sym.apply(s));
                group.push((encode(&ap), encode(&as_)));
            }
            group
        })
        .collect();
    let mut split = Split {
        group_starts: vec![0],
        ..Split::default()
    };
    for group in groups {
        for (inputs, labels) in group {
            split.inputs.push(inputs);
            split.labels.push(labels);
        }
        split.group_starts.push(split.inputs.len());
    }
    split
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use trm_edge::sudoku::{decode, parse};

    fn base() -> Vec<(Grid, Grid)> {
        let p = parse(
            "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79",
        )
        .unwrap();
        let s = parse(
            "534678912672195348198342567859761423426853791713924856961537284287419635345286179",
        )
        .unwrap();
        // Ten distinct base puzzles: symmetries of one.
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        (0..10)
            .map(|_| {
                let sym = Symmetry::random_with(&mut rng);
                (sym.apply(&p), sym.apply(&s))
            })
            .collect()
    }

    #[test]
    fn builds_groups_split_by_base_puzzle() {
        let spec = DatasetSpec {
            augmentations: 5,
            test_augmentations: 0,
            test_puzzles: 3,
            seed: 9,
        };
        let d = build(&base(), &spec).unwrap();
        assert_eq!((d.train.groups(), d.train.len()), (7, 7 * 6));
        assert_eq!((d.test.groups(), d.test.len()), (3, 3));
        for split in [&d.train, &d.test] {
            for (x, y) in split.inputs.iter().zip(&split.labels) {
                let (p, s) = (decode(x).unwrap(), decode(y).unwrap());
                assert!(check_answer(&p, &s).is_ok());
            }
        }
        // No solution grid of a test group appears in train (augmentations keep the
        // base puzzle's solution up to symmetry; here base puzzles are distinct grids).
        let test_originals: HashSet<_> = d.test.labels.iter().collect();
        let train_originals: HashSet<_> = (0..d.train.groups())
            .map(|g| &d.train.labels[d.train.group(g).start])
            .collect();
        assert!(test_originals.is_disjoint(&train_originals));
    }

    #[test]
    fn the_test_split_alone_equals_the_full_builds() {
        for (test_puzzles, test_augmentations, seed) in [(3, 0, 9), (4, 2, 1), (10, 0, 3)] {
            let spec = DatasetSpec {
                augmentations: 5,
                test_augmentations,
                test_puzzles,
                seed,
            };
            assert_eq!(
                build_test(&base(), &spec).unwrap(),
                build(&base(), &spec).unwrap().test
            );
        }
        let too_many = DatasetSpec {
            augmentations: 0,
            test_augmentations: 0,
            test_puzzles: 11,
            seed: 0,
        };
        assert!(build_test(&base(), &too_many).is_err());
    }

    #[test]
    fn is_deterministic_for_a_seed() {
        let spec = DatasetSpec {
            augmentations: 3,
            test_augmentations: 1,
            test_puzzles: 2,
            seed: 4,
        };
        assert_eq!(
            build(&base(), &spec).unwrap(),
            build(&base(), &spec).unwrap()
        );
        let other = DatasetSpec {
            seed: 5,
            ..spec.clone()
        };
        assert_ne!(
            build(&base(), &spec).unwrap(),
            build(&base(), &other).unwrap()
        );
    }

    #[test]
    fn rejects_bad_requests() {
        let spec = DatasetSpec {
            augmentations: 0,
            test_augmentations: 0,
            test_puzzles: 11,
            seed: 0,
        };
        assert_eq!(
            build(&base(), &spec),
            Err(DatasetError::TooFewPuzzles { test: 11, base: 10 })
        );
        let mut b = base();
        b[4].1 = b[4].0;
        let spec = DatasetSpec {
            test_puzzles: 1,
            ..spec
        };
        assert!(matches!(
            build(&b, &spec),
            Err(DatasetError::BadPair { index: 4, .. })
        ));
    }
}
