//! Validity-preserving symmetries of the Sudoku grid, and mapping answers back.
//!
//! A [`Symmetry`] is what the official dataset builder (`shuffle_sudoku` of
//! `build_sudoku_dataset.py`) applies to a training example, and what `trm-train` draws for its
//! augmentations ([`Symmetry::random_with`], feature `std`): a relabelling of the digits 1–9, an optional transpose, a permutation of the three
//! bands and of the rows inside each band, and the same for stacks and columns. Applied to a
//! puzzle and its solution it gives another puzzle and its solution, so a network can be asked
//! the transformed puzzle and its answer mapped back with [`Symmetry::invert`].

use super::grid::{CELLS, Grid};
use crate::rng::SplitMix64;

/// One symmetry of the grid. Fields are private and validated, so applying one never fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Symmetry {
    digit_map: [u8; 10],
    transpose: bool,
    row_perm: [u8; 9],
    col_perm: [u8; 9],
}

/// Parts given to [`Symmetry::new`] that do not form a validity-preserving symmetry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymmetryError {
    /// `digit_map` does not keep 0 (blank) and permute 1–9.
    DigitMap,
    /// `row_perm` is not a permutation that moves whole bands and rows inside bands.
    RowPerm,
    /// `col_perm` is not a permutation that moves whole stacks and columns inside stacks.
    ColPerm,
}

impl core::fmt::Display for SymmetryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::DigitMap => "digit map must fix 0 and permute 1-9",
            Self::RowPerm => "row permutation must keep bands together",
            Self::ColPerm => "column permutation must keep stacks together",
        })
    }
}

impl core::error::Error for SymmetryError {}

/// Whether `perm` is a permutation of 0..9 mapping each group of 3 slots onto one group of 3.
fn is_band_perm(perm: &[u8; 9]) -> bool {
    let mut seen = [false; 9];
    for (slot, &line) in perm.iter().enumerate() {
        let line = usize::from(line);
        match seen.get_mut(line) {
            Some(s) if !*s => *s = true,
            _ => return false,
        }
        // Every line of slot group g comes from the band of the group's first line.
        if line / 3 != usize::from(perm[slot - slot % 3]) / 3 {
            return false;
        }
    }
    true
}

impl Symmetry {
    /// The symmetry that changes nothing.
    pub const IDENTITY: Symmetry = Symmetry {
        digit_map: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        transpose: false,
        row_perm: [0, 1, 2, 3, 4, 5, 6, 7, 8],
        col_perm: [0, 1, 2, 3, 4, 5, 6, 7, 8],
    };

    /// A symmetry from its parts (the meaning of each is that of the accessors).
    pub fn new(
        digit_map: [u8; 10],
        transpose: bool,
        row_perm: [u8; 9],
        col_perm: [u8; 9],
    ) -> Result<Self, SymmetryError> {
        let mut seen = [false; 10];
        for &d in &digit_map {
            match seen.get_mut(usize::from(d)) {
                Some(s) if !*s => *s = true,
                _ => return Err(SymmetryError::DigitMap),
            }
        }
        if digit_map[0] != 0 {
            return Err(SymmetryError::DigitMap);
        }
        if !is_band_perm(&row_perm) {
            return Err(SymmetryError::RowPerm);
        }
        if !is_band_perm(&col_perm) {
            return Err(SymmetryError::ColPerm);
        }
        Ok(Self {
            digit_map,
            transpose,
            row_perm,
            col_perm,
        })
    }

    /// Draws a random symmetry, in the official order of draws: digits, transpose
    /// (probability 1/2), rows (bands, then rows in each band), columns likewise.
    pub fn random(rng: &mut SplitMix64) -> Self {
        let mut digits = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        rng.shuffle(&mut digits);
        let mut digit_map = [0u8; 10];
        digit_map[1..].copy_from_slice(&digits);
        let transpose = rng.next_u64() >> 63 == 1;
        let row_perm = Self::line_permutation(rng);
        let col_perm = Self::line_permutation(rng);
        Self {
            digit_map,
            transpose,
            row_perm,
            col_perm,
        }
    }

    /// Draws a random symmetry with a `rand` generator, in the official order of draws (that
    /// of `shuffle_sudoku`): a shuffle of the digits 1–9, a transpose when a uniform draw in
    /// `[0, 1)` is below 1/2, then rows (a shuffle of the bands, then one of the rows in each
    /// band) and columns likewise. `trm-train`'s augmentations: the same seed gives the same
    /// training set.
    #[cfg(feature = "std")]
    pub fn random_with(rng: &mut impl rand::Rng) -> Self {
        use rand::seq::SliceRandom;
        let mut digits = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        digits.shuffle(rng);
        let mut digit_map = [0u8; 10];
        digit_map[1..].copy_from_slice(&digits);
        let transpose = rng.random::<f64>() < 0.5;
        let mut lines = || {
            let mut bands = [0u8, 1, 2];
            bands.shuffle(rng);
            let mut perm = [0u8; 9];
            for (group, band) in perm.chunks_exact_mut(3).zip(bands) {
                let mut inner = [0u8, 1, 2];
                inner.shuffle(rng);
                for (slot, k) in group.iter_mut().zip(inner) {
                    *slot = band * 3 + k;
                }
            }
            perm
        };
        let row_perm = lines();
        let col_perm = lines();
        Self {
            digit_map,
            transpose,
            row_perm,
            col_perm,
        }
    }

    fn line_permutation(rng: &mut SplitMix64) -> [u8; 9] {
        let mut bands = [0u8, 1, 2];
        rng.shuffle(&mut bands);
        let mut perm = [0u8; 9];
        for (group, band) in perm.chunks_exact_mut(3).zip(bands) {
            let mut inner = [0u8, 1, 2];
            rng.shuffle(&mut inner);
            for (slot, k) in group.iter_mut().zip(inner) {
                *slot = band * 3 + k;
            }
        }
        perm
    }

    /// `digit_map[d]` is the new digit of digit `d` (`digit_map[0] == 0`).
    pub const fn digit_map(&self) -> [u8; 10] {
        self.digit_map
    }

    /// Whether the grid is transposed before rows and columns are permuted.
    pub const fn transpose(&self) -> bool {
        self.transpose
    }

    /// New row `i` is (possibly transposed) old row `row_perm[i]`.
    pub const fn row_perm(&self) -> [u8; 9] {
        self.row_perm
    }

    /// New column `j` is (possibly transposed) old column `col_perm[j]`.
    pub const fn col_perm(&self) -> [u8; 9] {
        self.col_perm
    }

    /// The old cell that new cell `i` (`0..81`) comes from.
    fn source(&self, i: usize) -> usize {
        let r = usize::from(self.row_perm[(i / 9) % 9]);
        let c = usize::from(self.col_perm[i % 9]);
        if self.transpose { c * 9 + r } else { r * 9 + c }
    }

    /// The transformed grid: transpose, then `new[i] = old[row_perm[i / 9] · 9 +
    /// col_perm[i % 9]]`, then the digit map (the official order).
    pub fn apply(&self, grid: &Grid) -> Grid {
        let src = grid.cells();
        let mut out = [0u8; CELLS];
        for (i, cell) in out.iter_mut().enumerate() {
            *cell = self.digit_map[usize::from(src[self.source(i)])];
        }
        Grid::from_cells(out).unwrap_or(Grid::EMPTY)
    }

    /// The inverse transformation: `invert(apply(g)) == g` for every grid `g`. Maps an answer
    /// found for `apply(puzzle)` back to an answer of `puzzle`.
    pub fn invert(&self, grid: &Grid) -> Grid {
        let mut back = [0u8; 10];
        for (d, &m) in self.digit_map.iter().enumerate() {
            back[usize::from(m)] = d as u8;
        }
        let src = grid.cells();
        let mut out = [0u8; CELLS];
        for (i, &v) in src.iter().enumerate() {
            out[self.source(i)] = back[usize::from(v)];
        }
        Grid::from_cells(out).unwrap_or(Grid::EMPTY)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{check_answer, parse};
    use super::*;
    use proptest::prelude::*;

    const PUZZLE: &str =
        "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";
    const SOLUTION: &str =
        "534678912672195348198342567859761423426853791713924856961537284287419635345286179";

    fn grid(cells: &[u8]) -> Grid {
        let mut a = [0u8; CELLS];
        a.copy_from_slice(cells);
        Grid::from_cells(a).unwrap()
    }

    proptest! {
        #[test]
        fn invert_undoes_apply(seed in any::<u64>(), cells in proptest::collection::vec(0u8..=9, 81)) {
            let g = grid(&cells);
            let s = Symmetry::random(&mut SplitMix64::new(seed));
            prop_assert_eq!(s.invert(&s.apply(&g)), g);
            prop_assert_eq!(s.apply(&s.invert(&g)), g);
            // Its parts are valid and rebuild it.
            let r = Symmetry::new(s.digit_map(), s.transpose(), s.row_perm(), s.col_perm());
            prop_assert_eq!(r, Ok(s));
        }

        #[test]
        fn keeps_puzzle_and_solution_valid(seed in any::<u64>()) {
            let (p, sol) = (parse(PUZZLE).unwrap(), parse(SOLUTION).unwrap());
            let s = Symmetry::random(&mut SplitMix64::new(seed));
            let (ap, asol) = (s.apply(&p), s.apply(&sol));
            prop_assert_eq!(ap.filled(), p.filled());
            prop_assert!(check_answer(&ap, &asol).is_ok());
        }
    }

    #[test]
    fn identity_and_known_moves() {
        let p = parse(PUZZLE).unwrap();
        assert_eq!(Symmetry::IDENTITY.apply(&p), p);
        let t = Symmetry::new(
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            true,
            Symmetry::IDENTITY.row_perm(),
            Symmetry::IDENTITY.col_perm(),
        )
        .unwrap();
        let tp = t.apply(&p);
        for r in 0..9 {
            for c in 0..9 {
                assert_eq!(tp.get(r, c), p.get(c, r));
            }
        }
    }

    #[test]
    fn rejects_invalid_parts() {
        let id = Symmetry::IDENTITY;
        let bad_digits = [1, 0, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(
            Symmetry::new(bad_digits, false, id.row_perm(), id.col_perm()),
            Err(SymmetryError::DigitMap)
        );
        let dup = [0, 1, 1, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(
            Symmetry::new(dup, false, id.row_perm(), id.col_perm()),
            Err(SymmetryError::DigitMap)
        );
        // Rows 2 and 3 swapped: crosses a band boundary.
        let rows = [0, 1, 3, 2, 4, 5, 6, 7, 8];
        assert_eq!(
            Symmetry::new(id.digit_map(), false, rows, id.col_perm()),
            Err(SymmetryError::RowPerm)
        );
        let cols = [0, 1, 2, 3, 4, 5, 6, 7, 9];
        assert_eq!(
            Symmetry::new(id.digit_map(), false, id.row_perm(), cols),
            Err(SymmetryError::ColPerm)
        );
        // Whole bands swapped is fine.
        let bands = [3, 4, 5, 0, 1, 2, 6, 7, 8];
        assert!(Symmetry::new(id.digit_map(), false, bands, id.col_perm()).is_ok());
    }

    /// The `rand` draw (training augmentations): every class of move occurs, bands stay
    /// bands, and a puzzle stays a puzzle with the same number of givens.
    #[test]
    fn random_with_draws_every_class_of_move() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let id = Symmetry::IDENTITY;
        let (p, s) = (parse(PUZZLE).unwrap(), parse(SOLUTION).unwrap());
        let mut counts = [0u32; 7];
        let band_of = |p: &[u8; 9]| [p[0] / 3, p[3] / 3, p[6] / 3];
        let shuffled = |p: &[u8; 9]| p.chunks(3).any(|c| c[0] % 3 != 0 || c[1] % 3 != 1);
        for _ in 0..200 {
            let a = Symmetry::random_with(&mut rng);
            assert!(Symmetry::new(a.digit_map, a.transpose, a.row_perm, a.col_perm).is_ok());
            let (ap, as_) = (a.apply(&p), a.apply(&s));
            assert_eq!(ap.filled(), p.filled());
            assert!(check_answer(&ap, &as_).is_ok());
            for (n, hit) in counts.iter_mut().zip([
                a.digit_map != id.digit_map,
                a.transpose,
                !a.transpose,
                band_of(&a.row_perm) != [0, 1, 2],
                shuffled(&a.row_perm),
                band_of(&a.col_perm) != [0, 1, 2],
                shuffled(&a.col_perm),
            ]) {
                *n += u32::from(hit);
            }
        }
        assert!(counts.iter().all(|&n| n > 20), "{counts:?}");
    }
}
