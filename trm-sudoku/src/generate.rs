//! Sudoku puzzle generator with guaranteed unique solutions.
//!
//! A puzzle is made in three steps:
//!
//! 1. [`random_solution`] fills an empty grid by randomized backtracking.
//! 2. The cells are visited in a random order and a clue is removed whenever
//!    the puzzle keeps exactly one solution (checked with
//!    [`solve`] at `limit = 2`). Removal stops at a
//!    clue count drawn uniformly from the requested range, once the rating
//!    also reaches `min_rating`, or at the lower bound of the range, or when
//!    no further clue can be removed (the puzzle is then minimal).
//! 3. The attempt is accepted when the clue count lies in the range and the
//!    rating (solver guesses at `limit = 2`, see
//!    [`SolveOutcome::guesses`](crate::search::SolveOutcome::guesses)) is at
//!    least `min_rating`; otherwise a new grid is drawn, up to
//!    [`MAX_ATTEMPTS`] times.
//!
//! [`generate`] runs many such searches in parallel with rayon. Puzzle `i`
//! uses its own random stream derived from `(seed, i)` only (see
//! [`puzzle_rng`]), so the output is identical for any thread count.

use crate::search::solve;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Fewest clues a uniquely solvable Sudoku can have.
pub const MIN_CLUES: usize = 17;

/// Attempts (fresh solution grids) [`generate_one`] makes per puzzle before it
/// gives up with [`GenError::GaveUp`].
pub const MAX_ATTEMPTS: u32 = 100_000;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenSpec {
    /// Accepted number of givens (clues), inclusive; must lie within
    /// `17..=81` and be non-empty. The clue count of each puzzle is aimed at a
    /// value drawn uniformly from this range (fewer clues are reached only
    /// when the rating requires it, never below the lower bound).
    pub clues: RangeInclusive<usize>,
    /// Minimum difficulty rating: solver guesses at `limit = 2`
    /// ([`SolveOutcome::guesses`](crate::search::SolveOutcome::guesses)).
    /// `0` accepts any puzzle; random puzzles rarely exceed ~10.
    pub min_rating: u32,
}

impl Default for GenSpec {
    /// Any unique puzzle: `clues = 17..=81`, `min_rating = 0`.
    fn default() -> Self {
        GenSpec {
            clues: MIN_CLUES..=81,
            min_rating: 0,
        }
    }
}

/// One generated puzzle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generated {
    /// The puzzle, row-major, `0` = blank, `1..=9` = given.
    pub puzzle: [u8; 81],
    /// Its unique solution, row-major digits `1..=9`.
    pub solution: [u8; 81],
    /// Number of givens in `puzzle`.
    pub clues: usize,
    /// Difficulty rating: solver guesses for `puzzle` at `limit = 2`.
    pub rating: u32,
}

/// Why generation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GenError {
    /// The clue range is empty or reaches outside `17..=81`.
    #[error("invalid clue range {lo}..={hi}: it must be non-empty and within 17..=81")]
    InvalidClues {
        /// Lower bound of the requested range.
        lo: usize,
        /// Upper bound of the requested range.
        hi: usize,
    },
    /// No attempt met the spec within the attempt budget (the spec is
    /// impossible or far too rare, e.g. a very high `min_rating`).
    #[error(
        "gave up after {attempts} attempts: no unique puzzle with {lo}..={hi} clues and rating >= {min_rating}"
    )]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// Lower bound of the requested clue range.
        lo: usize,
        /// Upper bound of the requested clue range.
        hi: usize,
        /// Requested minimum rating.
        min_rating: u32,
    },
}

impl GenSpec {
    /// Checks the clue range: non-empty and within `17..=81`.
    pub fn validate(&self) -> Result<(), GenError> {
        let (lo, hi) = (*self.clues.start(), *self.clues.end());
        if lo > hi || lo < MIN_CLUES || hi > 81 {
            return Err(GenError::InvalidClues { lo, hi });
        }
        Ok(())
    }
}

/// A random complete (solved) grid, row-major digits `1..=9`.
///
/// Built by backtracking over the most constrained empty cell with the
/// candidate digits in random order; every valid grid can come out, though
/// not with exactly uniform probability.
pub fn random_solution(rng: &mut impl Rng) -> [u8; 81] {
    let mut g = Filler {
        grid: [0; 81],
        rows: [0; 9],
        cols: [0; 9],
        boxes: [0; 9],
    };
    let filled = g.fill(rng);
    debug_assert!(filled, "an empty grid always has a completion");
    g.grid
}

/// Backtracking state of [`random_solution`]: digits used per unit as bit masks.
struct Filler {
    grid: [u8; 81],
    rows: [u16; 9],
    cols: [u16; 9],
    boxes: [u16; 9],
}

impl Filler {
    fn fill(&mut self, rng: &mut impl Rng) -> bool {
        let mut best: Option<(usize, u16)> = None;
        for i in 0..81 {
            if self.grid[i] != 0 {
                continue;
            }
            let (r, c) = (i / 9, i % 9);
            let cand = !(self.rows[r] | self.cols[c] | self.boxes[3 * (r / 3) + c / 3]) & 0x3fe;
            if best.is_none_or(|(_, m)| cand.count_ones() < m.count_ones()) {
                best = Some((i, cand));
                if cand.count_ones() <= 1 {
                    break;
                }
            }
        }
        let Some((i, cand)) = best else {
            return true;
        };
        let mut digits = [0u8; 9];
        let mut n = 0;
        for v in 1..=9u8 {
            if cand & (1 << v) != 0 {
                digits[n] = v;
                n += 1;
            }
        }
        digits[..n].shuffle(rng);
        let (r, c) = (i / 9, i % 9);
        let bx = 3 * (r / 3) + c / 3;
        for &v in &digits[..n] {
            let m = 1u16 << v;
            self.grid[i] = v;
            self.rows[r] |= m;
            self.cols[c] |= m;
            self.boxes[bx] |= m;
            if self.fill(rng) {
                return true;
            }
            self.grid[i] = 0;
            self.rows[r] &= !m;
            self.cols[c] &= !m;
            self.boxes[bx] &= !m;
        }
        false
    }
}

/// One attempt: a fresh grid, then clue removal. `None` when the result
/// misses the spec.
fn attempt(spec: &GenSpec, rng: &mut ChaCha8Rng) -> Option<Generated> {
    let (lo, hi) = (*spec.clues.start(), *spec.clues.end());
    let solution = random_solution(rng);
    let target = rng.random_range(lo..=hi);
    let mut order: [usize; 81] = std::array::from_fn(|i| i);
    order.shuffle(rng);
    let mut puzzle = solution;
    let mut clues = 81;
    let mut rating = 0;
    for &cell in &order {
        if clues <= lo || (clues <= target && rating >= spec.min_rating) {
            break;
        }
        puzzle[cell] = 0;
        let out = solve(&puzzle, 2);
        if out.is_unique() {
            clues -= 1;
            rating = out.guesses;
        } else {
            puzzle[cell] = solution[cell];
        }
    }
    (clues <= hi && rating >= spec.min_rating).then_some(Generated {
        puzzle,
        solution,
        clues,
        rating,
    })
}

/// Generates one puzzle meeting `spec`, drawing fresh grids until one
/// qualifies (at most `max_attempts`).
fn generate_with_budget(
    spec: &GenSpec,
    rng: &mut ChaCha8Rng,
    max_attempts: u32,
) -> Result<Generated, GenError> {
    spec.validate()?;
    for _ in 0..max_attempts {
        if let Some(g) = attempt(spec, rng) {
            return Ok(g);
        }
    }
    Err(GenError::GaveUp {
        attempts: max_attempts,
        lo: *spec.clues.start(),
        hi: *spec.clues.end(),
        min_rating: spec.min_rating,
    })
}

/// Generates one puzzle meeting `spec`, retrying with fresh grids until one
/// qualifies.
///
/// Errors: [`GenError::InvalidClues`] for a bad clue range,
/// [`GenError::GaveUp`] after [`MAX_ATTEMPTS`] failed attempts.
pub fn generate_one(spec: &GenSpec, rng: &mut ChaCha8Rng) -> Result<Generated, GenError> {
    generate_with_budget(spec, rng, MAX_ATTEMPTS)
}

/// The random stream used for puzzle `index` of a [`generate`] run with
/// `seed`: `ChaCha8Rng::seed_from_u64(seed)` switched to stream `index`.
pub fn puzzle_rng(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}

/// Generates `count` puzzles meeting `spec`, in parallel on the rayon pool.
///
/// Puzzle `i` is `generate_one(spec, &mut puzzle_rng(seed, i))`, so the
/// result (in index order) depends only on `(spec, count, seed)`, not on the
/// number of threads. `progress` is called after each finished puzzle with
/// the number finished so far (calls may come from any thread, and the
/// numbers can arrive slightly out of order).
///
/// Errors: [`GenError::InvalidClues`] for a bad clue range (checked before
/// any work), [`GenError::GaveUp`] if any puzzle exhausted its attempts.
pub fn generate(
    spec: &GenSpec,
    count: usize,
    seed: u64,
    progress: impl Fn(usize) + Sync,
) -> Result<Vec<Generated>, GenError> {
    spec.validate()?;
    let done = AtomicUsize::new(0);
    (0..count)
        .into_par_iter()
        .map(|i| {
            let g = generate_one(spec, &mut puzzle_rng(seed, i as u64));
            progress(done.fetch_add(1, Ordering::Relaxed) + 1);
            g
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_subset(puzzle: &[u8; 81], solution: &[u8; 81]) -> bool {
        puzzle.iter().zip(solution).all(|(&p, &s)| p == 0 || p == s)
    }

    fn check(g: &Generated, spec: &GenSpec) {
        assert!(spec.clues.contains(&g.clues));
        assert_eq!(g.puzzle.iter().filter(|&&v| v != 0).count(), g.clues);
        assert!(is_subset(&g.puzzle, &g.solution));
        let out = solve(&g.puzzle, 2);
        assert!(out.is_unique());
        assert_eq!(out.solution, Some(g.solution));
        assert_eq!(out.guesses, g.rating);
        assert!(g.rating >= spec.min_rating);
    }

    #[test]
    fn random_solutions_are_valid_and_vary() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let a = random_solution(&mut rng);
        let b = random_solution(&mut rng);
        assert_ne!(a, b);
        for s in [a, b] {
            let out = solve(&s, 2);
            assert!(out.is_unique());
            assert_eq!(out.solution, Some(s));
        }
    }

    #[test]
    fn generate_one_meets_spec() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for spec in [
            GenSpec {
                clues: 30..=40,
                min_rating: 0,
            },
            GenSpec {
                clues: 45..=45,
                min_rating: 0,
            },
            GenSpec::default(),
            GenSpec {
                clues: 17..=40,
                min_rating: 2,
            },
        ] {
            for _ in 0..5 {
                let g = generate_one(&spec, &mut rng).unwrap();
                check(&g, &spec);
            }
        }
    }

    #[test]
    fn generate_is_deterministic_across_thread_counts() {
        let spec = GenSpec {
            clues: 25..=35,
            min_rating: 0,
        };
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| generate(&spec, 12, 42, |_| {}).unwrap())
        };
        let one = run(1);
        let two = run(2);
        assert_eq!(one, two);
        assert_eq!(one.len(), 12);
        for g in &one {
            check(g, &spec);
        }
        assert_eq!(one[3], generate_one(&spec, &mut puzzle_rng(42, 3)).unwrap());
        let other = generate(&spec, 12, 43, |_| {}).unwrap();
        assert_ne!(one, other);
    }

    #[test]
    fn progress_counts_every_puzzle() {
        let calls = AtomicUsize::new(0);
        let max = AtomicUsize::new(0);
        let spec = GenSpec {
            clues: 40..=50,
            min_rating: 0,
        };
        let out = generate(&spec, 9, 5, |n| {
            calls.fetch_add(1, Ordering::Relaxed);
            max.fetch_max(n, Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(out.len(), 9);
        assert_eq!(calls.into_inner(), 9);
        assert_eq!(max.into_inner(), 9);
        assert!(generate(&spec, 0, 5, |_| {}).unwrap().is_empty());
    }

    #[test]
    fn invalid_specs_are_rejected() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for clues in [16..=30, 30..=82, RangeInclusive::new(40, 39), 0..=0] {
            let spec = GenSpec {
                clues,
                min_rating: 0,
            };
            assert!(matches!(
                generate_one(&spec, &mut rng),
                Err(GenError::InvalidClues { .. })
            ));
            assert!(matches!(
                generate(&spec, 3, 0, |_| {}),
                Err(GenError::InvalidClues { .. })
            ));
        }
    }

    #[test]
    fn impossible_spec_gives_up() {
        let spec = GenSpec {
            clues: 70..=81,
            min_rating: 1000,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let err = generate_with_budget(&spec, &mut rng, 5).unwrap_err();
        assert!(matches!(err, GenError::GaveUp { attempts: 5, .. }));
        assert!(err.to_string().contains("gave up"));
    }
}
