//! Validity-preserving Sudoku symmetries, exactly as the official dataset builder applies them.
//!
//! One [`Augmentation`] draws, in this order (mirroring `shuffle_sudoku` of the official
//! `dataset/build_sudoku_dataset.py`): a digit permutation of 1–9 (blank stays blank), a
//! transpose with probability 0.5, a permutation of the three bands and of the rows inside each
//! band, and the same for stacks and columns. It is applied identically to a puzzle and its
//! solution: transpose first, then `new[i] = x[row_perm[i / 9] * 9 + col_perm[i % 9]]`, then
//! the digit map.

use rand::Rng;
use rand::seq::SliceRandom;
use trm_edge::sudoku::{CELLS, Grid};

/// One drawn symmetry of the Sudoku grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Augmentation {
    /// `digit_map[d]` is the new digit for digit `d`; `digit_map[0] == 0` (blank stays blank).
    pub digit_map: [u8; 10],
    /// Transpose the grid before permuting rows and columns.
    pub transpose: bool,
    /// New row `i` is old row `row_perm[i]` (bands and rows within bands permuted).
    pub row_perm: [u8; 9],
    /// New column `j` is old column `col_perm[j]` (stacks and columns within stacks permuted).
    pub col_perm: [u8; 9],
}

impl Augmentation {
    /// The transformation that changes nothing.
    pub const IDENTITY: Augmentation = Augmentation {
        digit_map: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        transpose: false,
        row_perm: [0, 1, 2, 3, 4, 5, 6, 7, 8],
        col_perm: [0, 1, 2, 3, 4, 5, 6, 7, 8],
    };

    /// Draws a random symmetry, in the official order of draws.
    pub fn random(rng: &mut impl Rng) -> Augmentation {
        let mut digits = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        digits.shuffle(rng);
        let mut digit_map = [0u8; 10];
        digit_map[1..].copy_from_slice(&digits);
        let transpose = rng.random::<f64>() < 0.5;
        let row_perm = Self::line_permutation(rng);
        let col_perm = Self::line_permutation(rng);
        Augmentation {
            digit_map,
            transpose,
            row_perm,
            col_perm,
        }
    }

    /// A permutation of 9 lines that keeps bands (groups of 3) together:
    /// the bands are shuffled, then the lines inside each band.
    fn line_permutation(rng: &mut impl Rng) -> [u8; 9] {
        let mut bands = [0u8, 1, 2];
        bands.shuffle(rng);
        let mut perm = [0u8; 9];
        for (slot, band) in bands.iter().enumerate() {
            let mut inner = [0u8, 1, 2];
            inner.shuffle(rng);
            for k in 0..3 {
                perm[slot * 3 + k] = band * 3 + inner[k];
            }
        }
        perm
    }

    /// Applies the symmetry to one grid (a puzzle or a solution).
    pub fn apply(&self, grid: &Grid) -> Grid {
        let src = grid.cells();
        let mut out = [0u8; CELLS];
        for (i, cell) in out.iter_mut().enumerate() {
            let (r, c) = (self.row_perm[i / 9] as usize, self.col_perm[i % 9] as usize);
            let from = if self.transpose { c * 9 + r } else { r * 9 + c };
            *cell = self.digit_map[src[from] as usize];
        }
        // digit_map maps 0..=9 onto 0..=9, so every cell stays in range.
        Grid::from_cells(out).expect("a digit permutation keeps cells in 0..=9")
    }

    /// Applies the symmetry to a puzzle and its solution alike.
    pub fn apply_pair(&self, puzzle: &Grid, solution: &Grid) -> (Grid, Grid) {
        (self.apply(puzzle), self.apply(solution))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use trm_edge::sudoku::{check_answer, parse};

    const PUZZLE: &str =
        "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";
    const SOLUTION: &str =
        "534678912672195348198342567859761423426853791713924856961537284287419635345286179";

    proptest! {
        #[test]
        fn keeps_a_valid_pair_with_the_same_givens(seed in any::<u64>()) {
            let (p, s) = (parse(PUZZLE).unwrap(), parse(SOLUTION).unwrap());
            let aug = Augmentation::random(&mut ChaCha8Rng::seed_from_u64(seed));
            let (ap, as_) = aug.apply_pair(&p, &s);
            prop_assert_eq!(ap.filled(), p.filled());
            prop_assert!(check_answer(&ap, &as_).is_ok());
        }
    }

    #[test]
    fn identity_changes_nothing() {
        let p = parse(PUZZLE).unwrap();
        assert_eq!(Augmentation::IDENTITY.apply(&p), p);
    }

    #[test]
    fn transpose_moves_row_zero_to_column_zero() {
        let s = parse(SOLUTION).unwrap();
        let t = Augmentation {
            transpose: true,
            ..Augmentation::IDENTITY
        }
        .apply(&s);
        for k in 0..9 {
            assert_eq!(t.cells()[k * 9], s.cells()[k]);
        }
    }

    #[test]
    fn every_transform_class_occurs() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let id = Augmentation::IDENTITY;
        let (mut digits, mut transposed, mut straight) = (0, 0, 0);
        let (mut bands, mut rows_in_band, mut stacks, mut cols_in_stack) = (0, 0, 0, 0);
        let band_of = |p: &[u8; 9]| [p[0] / 3, p[3] / 3, p[6] / 3];
        for _ in 0..200 {
            let a = Augmentation::random(&mut rng);
            digits += (a.digit_map != id.digit_map) as u32;
            transposed += a.transpose as u32;
            straight += !a.transpose as u32;
            bands += (band_of(&a.row_perm) != [0, 1, 2]) as u32;
            rows_in_band += a.row_perm.chunks(3).any(|c| c[0] % 3 != 0 || c[1] % 3 != 1) as u32;
            stacks += (band_of(&a.col_perm) != [0, 1, 2]) as u32;
            cols_in_stack += a.col_perm.chunks(3).any(|c| c[0] % 3 != 0 || c[1] % 3 != 1) as u32;
            // Bands stay bands: each group of three lines comes from one band.
            for p in [a.row_perm, a.col_perm] {
                for c in p.chunks(3) {
                    assert!(c.iter().all(|&x| x / 3 == c[0] / 3));
                }
            }
        }
        for (name, n) in [
            ("digit permutation", digits),
            ("transpose", transposed),
            ("no transpose", straight),
            ("band permutation", bands),
            ("row-in-band permutation", rows_in_band),
            ("stack permutation", stacks),
            ("column-in-stack permutation", cols_in_stack),
        ] {
            assert!(n > 20, "{name} occurred only {n} times in 200 draws");
        }
    }
}
