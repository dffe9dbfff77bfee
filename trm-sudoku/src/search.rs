//! Exact Sudoku solver: constraint propagation plus depth-first search.
//!
//! The solver proves uniqueness (`limit = 2`) or enumerates up to `limit`
//! solutions of a 9×9 puzzle given as `[u8; 81]` (row-major, `0` = blank,
//! `1..=9` = digit). It never allocates on the heap and never panics on bad
//! input: a puzzle whose givens conflict, or that contains a byte above 9,
//! simply has zero solutions.
//!
//! # Representation
//!
//! The board is split into three horizontal *bands* of 27 cells (three rows).
//! For every digit and every band the state keeps a 27-bit mask of the cells
//! where that digit is still possible (bit `9 * row_in_band + column`), so a
//! global cell index `i` lives in band `i / 27` at bit `i % 27`. A placed
//! cell keeps exactly one digit bit set.
//!
//! # Propagation (the "forced moves")
//!
//! Repeated until nothing changes:
//!
//! 1. **Band step**, for every (digit, band) mask that changed: the nine
//!    *mini-rows* (a row segment of three cells inside one box) that still
//!    hold the digit must contain a placement of the digit once per row and
//!    once per box of the band; cells in mini-rows that belong to no such
//!    placement are removed (this is pointing/claiming "locked candidates"
//!    within the band). A row or box of the band left with a single cell is
//!    a hidden single and is placed.
//! 2. **Naked singles**: a cell with one candidate left is placed.
//! 3. **Column hidden singles**: a digit with one possible cell in a column
//!    is placed.
//!
//! A contradiction is a cell without candidates, or a row, column or box in
//! which a digit has no possible cell.
//!
//! # Search and the difficulty rating
//!
//! When propagation stalls, the solver branches on a bivalue cell (two
//! candidates left), choosing the one with the most unsolved peers (first in
//! row-major order on ties); without a bivalue cell it takes the first
//! unsolved cell with the fewest candidates. The candidates of that cell are
//! tried in ascending order. Every such trial — one candidate value assumed at a branching cell —
//! counts as one *guess*; [`SolveOutcome::guesses`] is the total over the
//! whole search until `limit` solutions were found or the search space was
//! exhausted. It is therefore deterministic for a given puzzle and limit, is
//! `0` for puzzles solved by propagation alone, and is at least `2` otherwise
//! when `limit >= 2` (both values of the first bivalue cell are tried).

/// Mask of the 27 cells of one band.
const BAND_ALL: u32 = (1 << 27) - 1;

/// `SHRINK[row]`: for a 9-bit row segment, bit `k` is set when box `k` of the
/// row (columns `3k..3k+3`) holds at least one bit.
const SHRINK: [u8; 512] = {
    let mut t = [0u8; 512];
    let mut x = 0;
    while x < 512 {
        let mut k = 0;
        while k < 3 {
            if x & (7 << (3 * k)) != 0 {
                t[x] |= 1 << k;
            }
            k += 1;
        }
        x += 1;
    }
    t
};

/// `POP9[x]`: number of set bits of a 9-bit value (no reliance on a POPCNT
/// instruction, which baseline x86-64 lacks).
const POP9: [u8; 512] = {
    let mut t = [0u8; 512];
    let mut x = 0;
    while x < 512 {
        t[x] = (x as u32).count_ones() as u8;
        x += 1;
    }
    t
};

/// `PERM[minirows]`: the union of all placements of one digit in a band (one
/// mini-row per row and per box, i.e. a 3×3 permutation matrix; bit
/// `3 * row + box`) that fit inside the given 9-bit set of mini-rows.
const PERM: [u16; 512] = {
    const PERMS: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let mut t = [0u16; 512];
    let mut s = 0;
    while s < 512 {
        let mut p = 0;
        while p < 6 {
            let m =
                (1u16 << PERMS[p][0]) | (1u16 << (3 + PERMS[p][1])) | (1u16 << (6 + PERMS[p][2]));
            if s as u16 & m == m {
                t[s] |= m;
            }
            p += 1;
        }
        s += 1;
    }
    t
};

/// `EXPAND[minirows]`: the 27-bit cell mask covered by a 9-bit mini-row set.
const EXPAND: [u32; 512] = {
    let mut t = [0u32; 512];
    let mut s = 0;
    while s < 512 {
        let mut m = 0;
        while m < 9 {
            if s & (1 << m) != 0 {
                let row = m / 3;
                let bx = m % 3;
                t[s] |= 7 << (9 * row + 3 * bx);
            }
            m += 1;
        }
        s += 1;
    }
    t
};

/// Cells of each box inside a band, computed once.
const BOXES: [u32; 3] = {
    let mut t = [0u32; 3];
    let mut k = 0;
    while k < 3 {
        let mut r = 0;
        while r < 3 {
            t[k] |= 7 << (9 * r + 3 * k);
            r += 1;
        }
        k += 1;
    }
    t
};

/// `BAND_PEERS[bit]`: the other cells of the same row and box inside the band.
const BAND_PEERS: [u32; 27] = {
    let mut t = [0u32; 27];
    let mut i = 0;
    while i < 27 {
        let r = i / 9;
        let c = i % 9;
        let mut j = 0;
        while j < 27 {
            if j != i && (j / 9 == r || (j % 9) / 3 == c / 3) {
                t[i] |= 1 << j;
            }
            j += 1;
        }
        i += 1;
    }
    t
};

/// Column `c` within a band: bits `c`, `c + 9`, `c + 18`.
const fn column(c: usize) -> u32 {
    (1 | (1 << 9) | (1 << 18)) << c
}

/// Result of an exact search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SolveOutcome {
    /// The first solution found (row-major digits `1..=9`), or `None` when the
    /// puzzle has no solution or is invalid.
    pub solution: Option<[u8; 81]>,
    /// Number of solutions found, capped at the `limit` passed to [`solve`].
    pub solutions: u32,
    /// Difficulty rating: number of guesses (candidate values assumed at a
    /// branching cell) made during the search; see the module documentation.
    pub guesses: u32,
}

impl SolveOutcome {
    /// `true` when exactly one solution was found. Only meaningful as a
    /// uniqueness proof when the search ran with `limit >= 2`.
    pub fn is_unique(&self) -> bool {
        self.solutions == 1
    }
}

/// Candidate state of a (partially) solved board.
#[derive(Clone, Copy)]
struct State {
    /// Candidate cells, index `3 * digit + band` (digit 0-based).
    f: [u32; 27],
    /// Value of `f` when that (digit, band) was last processed by the band step.
    prev: [u32; 27],
    /// Placed cells per band.
    solved: [u32; 3],
}

/// Search bookkeeping shared across the recursion.
struct Ctx {
    limit: u32,
    solutions: u32,
    guesses: u32,
    solution: Option<[u8; 81]>,
}

impl State {
    fn new() -> Self {
        State {
            f: [BAND_ALL; 27],
            prev: [0; 27],
            solved: [0; 3],
        }
    }

    /// Places digit `d` (0-based) at `bit` of band `b`. Returns `false` when
    /// the digit is no longer a candidate there.
    #[inline(always)]
    fn place(&mut self, d: usize, b: usize, bit: usize) -> bool {
        let m = 1u32 << bit;
        if self.f[3 * d + b] & m == 0 {
            return false;
        }
        if self.solved[b] & m != 0 {
            return true;
        }
        self.solved[b] |= m;
        let mut e = 0;
        while e < 9 {
            self.f[3 * e + b] &= !m;
            e += 1;
        }
        let i = 3 * d + b;
        self.f[i] = (self.f[i] & !BAND_PEERS[bit]) | m;
        let col = column(bit % 9);
        let (j, k) = match b {
            0 => (i + 1, i + 2),
            1 => (i - 1, i + 1),
            _ => (i - 2, i - 1),
        };
        self.f[j] &= !col;
        self.f[k] &= !col;
        true
    }

    /// Band step for mask `i = 3 * digit + band`. Returns `false` on contradiction.
    #[inline(always)]
    fn band_update(&mut self, i: usize) -> bool {
        let a = self.f[i];
        let s = SHRINK[(a & 511) as usize] as usize
            | (SHRINK[((a >> 9) & 511) as usize] as usize) << 3
            | (SHRINK[(a >> 18) as usize & 511] as usize) << 6;
        let pm = PERM[s];
        if pm == 0 {
            return false;
        }
        let a = a & EXPAND[pm as usize];
        self.f[i] = a;
        let b = i % 3;
        let d = i / 3;
        let mut singles = 0;
        let mut r = 0;
        while r < 3 {
            let x = (a >> (9 * r)) & 511;
            if x & (x - 1) == 0 {
                singles |= x << (9 * r);
            }
            let y = a & BOXES[r];
            if y & (y - 1) == 0 {
                singles |= y;
            }
            r += 1;
        }
        singles &= !self.solved[b];
        while singles != 0 {
            let bit = singles.trailing_zeros() as usize;
            singles &= singles - 1;
            if !self.place(d, b, bit) {
                return false;
            }
        }
        true
    }

    /// Naked singles in every band. Returns `None` on contradiction, else
    /// whether anything was placed.
    #[inline(always)]
    fn naked_singles(&mut self) -> Option<bool> {
        let mut progress = false;
        let mut b = 0;
        while b < 3 {
            let mut ones = 0;
            let mut twos = 0;
            let mut d = 0;
            while d < 9 {
                let x = self.f[3 * d + b];
                twos |= ones & x;
                ones |= x;
                d += 1;
            }
            if ones != BAND_ALL {
                return None;
            }
            let mut singles = ones & !twos & !self.solved[b];
            while singles != 0 {
                progress = true;
                let bit = singles.trailing_zeros() as usize;
                singles &= singles - 1;
                let m = 1u32 << bit;
                let mut d = 0;
                while d < 9 && self.f[3 * d + b] & m == 0 {
                    d += 1;
                }
                if d == 9 || !self.place(d, b, bit) {
                    return None;
                }
            }
            b += 1;
        }
        Some(progress)
    }

    /// Hidden singles in columns. Returns `None` on contradiction, else
    /// whether anything was placed.
    #[inline(always)]
    fn column_singles(&mut self) -> Option<bool> {
        let mut progress = false;
        let mut d = 0;
        while d < 9 {
            let mut ones = 0;
            let mut twos = 0;
            let mut b = 0;
            while b < 3 {
                let a = self.f[3 * d + b];
                let r0 = a & 511;
                let r1 = (a >> 9) & 511;
                let r2 = a >> 18;
                let o = r0 | r1 | r2;
                let t = (r0 & r1) | (r2 & (r0 | r1));
                twos |= t | (ones & o);
                ones |= o;
                b += 1;
            }
            if ones != 511 {
                return None;
            }
            let sc = ones & !twos;
            if sc != 0 {
                let spread = sc | (sc << 9) | (sc << 18);
                let mut b = 0;
                while b < 3 {
                    let mut cells = self.f[3 * d + b] & spread & !self.solved[b];
                    while cells != 0 {
                        progress = true;
                        let bit = cells.trailing_zeros() as usize;
                        cells &= cells - 1;
                        if !self.place(d, b, bit) {
                            return None;
                        }
                    }
                    b += 1;
                }
            }
            d += 1;
        }
        Some(progress)
    }

    /// Runs all propagation rules to a fixpoint. Returns `false` on contradiction.
    fn propagate(&mut self) -> bool {
        loop {
            loop {
                let mut dirty = 0u32;
                for (i, (x, y)) in self.f.iter().zip(&self.prev).enumerate() {
                    dirty |= ((x != y) as u32) << i;
                }
                if dirty == 0 {
                    break;
                }
                while dirty != 0 {
                    let i = dirty.trailing_zeros() as usize;
                    dirty &= dirty - 1;
                    if !self.band_update(i) {
                        return false;
                    }
                    self.prev[i] = self.f[i];
                }
            }
            match self.naked_singles() {
                None => return false,
                Some(true) => continue,
                Some(false) => {}
            }
            match self.column_singles() {
                None => return false,
                Some(true) => continue,
                Some(false) => return true,
            }
        }
    }

    fn is_solved(&self) -> bool {
        self.solved[0] & self.solved[1] & self.solved[2] == BAND_ALL
    }

    fn grid(&self) -> [u8; 81] {
        let mut g = [0u8; 81];
        for d in 0..9 {
            for b in 0..3 {
                let mut m = self.f[3 * d + b] & self.solved[b];
                while m != 0 {
                    let bit = m.trailing_zeros() as usize;
                    m &= m - 1;
                    g[27 * b + bit] = d as u8 + 1;
                }
            }
        }
        g
    }

    /// Candidate digits (bit `d` = digit `d + 1`) of the cell at `bit` of band `b`.
    fn cell_mask(&self, b: usize, bit: usize) -> u32 {
        let mut m = 0;
        for d in 0..9 {
            m |= ((self.f[3 * d + b] >> bit) & 1) << d;
        }
        m
    }

    /// Number of unsolved peers (same row, column or box) of a cell.
    #[inline(always)]
    fn open_peers(&self, b: usize, bit: usize) -> u32 {
        let x = !self.solved[b] & BAND_PEERS[bit];
        let mut n = POP9[(x & 511) as usize] as u32
            + POP9[((x >> 9) & 511) as usize] as u32
            + POP9[(x >> 18) as usize] as u32;
        let c = bit % 9;
        for ob in 0..3 {
            if ob != b {
                let v = (!self.solved[ob] >> c) & (1 | (1 << 9) | (1 << 18));
                n += (v + (v >> 9) + (v >> 18)) & 3;
            }
        }
        n
    }

    /// Chooses the branching cell: the first bivalue cell, else the first
    /// unsolved cell with the fewest candidates. Returns (band, bit, digits).
    fn choose(&self) -> (usize, usize, u32) {
        let mut best = (3, 0);
        let mut best_score = 0;
        for b in 0..3 {
            let mut ones = 0;
            let mut twos = 0;
            let mut threes = 0;
            for d in 0..9 {
                let x = self.f[3 * d + b];
                threes |= twos & x;
                twos |= ones & x;
                ones |= x;
            }
            let mut biv = twos & !threes;
            while biv != 0 {
                let bit = biv.trailing_zeros() as usize;
                biv &= biv - 1;
                let score = self.open_peers(b, bit) + 1;
                if score > best_score {
                    best_score = score;
                    best = (b, bit);
                }
            }
        }
        if best.0 < 3 {
            return (best.0, best.1, self.cell_mask(best.0, best.1));
        }
        let mut best = (0, 0, 0);
        let mut best_n = u32::MAX;
        for b in 0..3 {
            let mut open = !self.solved[b] & BAND_ALL;
            while open != 0 {
                let bit = open.trailing_zeros() as usize;
                open &= open - 1;
                let m = self.cell_mask(b, bit);
                let n = m.count_ones();
                if n < best_n {
                    best_n = n;
                    best = (b, bit, m);
                }
            }
        }
        best
    }
}

/// Depth-first search from `st`; the last candidate of each branching cell
/// is tried in place (no copy).
fn search(st: &mut State, ctx: &mut Ctx) {
    loop {
        if !st.propagate() {
            return;
        }
        if st.is_solved() {
            ctx.solutions += 1;
            if ctx.solution.is_none() {
                ctx.solution = Some(st.grid());
            }
            return;
        }
        let (b, bit, mut digits) = st.choose();
        if digits == 0 {
            return;
        }
        loop {
            let d = digits.trailing_zeros() as usize;
            digits &= digits - 1;
            ctx.guesses += 1;
            if digits == 0 {
                if !st.place(d, b, bit) {
                    return;
                }
                break;
            }
            let mut child = *st;
            if child.place(d, b, bit) {
                search(&mut child, ctx);
            }
            if ctx.solutions >= ctx.limit {
                return;
            }
        }
    }
}

/// Solves `puzzle` exactly, stopping once `limit` solutions have been found.
///
/// `puzzle` is row-major with `0` for blanks and `1..=9` for givens. Use
/// `limit = 2` to prove uniqueness ([`SolveOutcome::is_unique`]) and
/// `limit = 1` to just find a solution; a `limit` of 0 is treated as 1.
/// Conflicting givens or bytes above 9 yield `solutions == 0`.
pub fn solve(puzzle: &[u8; 81], limit: u32) -> SolveOutcome {
    let mut ctx = Ctx {
        limit: limit.max(1),
        solutions: 0,
        guesses: 0,
        solution: None,
    };
    let mut st = State::new();
    let mut ok = true;
    for (i, &v) in puzzle.iter().enumerate() {
        if v > 9 {
            ok = false;
            break;
        }
        if v != 0 && !st.place(v as usize - 1, i / 27, i % 27) {
            ok = false;
            break;
        }
    }
    if ok {
        search(&mut st, &mut ctx);
    }
    SolveOutcome {
        solution: ctx.solution,
        solutions: ctx.solutions,
        guesses: ctx.guesses,
    }
}

/// Difficulty rating of a puzzle: `Some(guesses)` from [`solve`] with
/// `limit = 2` when the puzzle has exactly one solution, `None` otherwise.
pub fn rate(puzzle: &[u8; 81]) -> Option<u32> {
    let out = solve(puzzle, 2);
    out.is_unique().then_some(out.guesses)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 81 characters of a data-file line, parsed by the project's parser.
    fn parse_line(line: &str) -> Option<[u8; 81]> {
        let head = line.get(..81)?;
        crate::parse(head).ok().map(|g| *g.cells())
    }
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A few hard puzzles (first lines of `top1465.txt`), always available.
    const HARD: [&str; 3] = [
        "4...3.......6..8..........1....5..9..8....6...7.2........1.27..5.3....4.9........",
        "7.8...3.....2.1...5.........4.....263...8.......1...9..9.6....4....7.5...........",
        "7.8...3.....6.1...5.........4.....263...8.......1...9..9.2....4....7.5...........",
    ];

    /// `true` when `s` is a complete valid grid that agrees with the givens of `p`.
    fn valid_solution(p: &[u8; 81], s: &[u8; 81]) -> bool {
        use crate::{Grid, check_answer};
        match (Grid::from_cells(*p), Grid::from_cells(*s)) {
            (Ok(p), Ok(s)) => check_answer(&p, &s).is_ok(),
            _ => false,
        }
    }

    /// Plain backtracking reference: number of solutions, capped at `limit`.
    fn reference_count(g: &mut [u8; 81], limit: u32) -> u32 {
        let mut best: Option<(usize, u16)> = None;
        for i in 0..81 {
            if g[i] != 0 {
                continue;
            }
            let (r, c) = (i / 9, i % 9);
            let mut used = 0u16;
            for k in 0..9 {
                used |= 1 << g[9 * r + k];
                used |= 1 << g[9 * k + c];
                used |= 1 << g[27 * (r / 3) + 3 * (c / 3) + 9 * (k / 3) + k % 3];
            }
            let cand = !used & 0x3fe;
            if best.is_none_or(|(_, m)| cand.count_ones() < m.count_ones()) {
                best = Some((i, cand));
            }
        }
        let Some((i, cand)) = best else {
            return 1;
        };
        let mut n = 0;
        for v in 1..=9u8 {
            if cand & (1 << v) != 0 {
                g[i] = v;
                n += reference_count(g, limit - n);
                g[i] = 0;
                if n >= limit {
                    break;
                }
            }
        }
        n
    }

    /// `true` when two equal givens share a row, column or box.
    fn givens_conflict(g: &[u8; 81]) -> bool {
        (0..81).any(|i| {
            (0..81).any(|j| {
                i != j
                    && g[i] != 0
                    && g[i] == g[j]
                    && (i / 9 == j / 9
                        || i % 9 == j % 9
                        || (i / 27 == j / 27 && (i % 9) / 3 == (j % 9) / 3))
            })
        })
    }

    #[test]
    fn hard_puzzles_are_unique_and_rated() {
        for line in HARD {
            let p = parse_line(line).unwrap();
            let out = solve(&p, 2);
            assert!(out.is_unique());
            assert!(valid_solution(&p, &out.solution.unwrap()));
            assert!(out.guesses >= 2);
            assert_eq!(rate(&p), Some(out.guesses));
            // Deterministic.
            assert_eq!(solve(&p, 2), out);
            // limit 1 finds the same solution with no more guesses.
            let one = solve(&p, 1);
            assert_eq!(one.solutions, 1);
            assert_eq!(one.solution, out.solution);
            assert!(one.guesses <= out.guesses);
        }
    }

    #[test]
    fn empty_grid_has_many_solutions() {
        let out = solve(&[0; 81], 2);
        assert_eq!(out.solutions, 2);
        assert!(!out.is_unique());
        assert!(valid_solution(&[0; 81], &out.solution.unwrap()));
        assert_eq!(solve(&[0; 81], 10).solutions, 10);
        assert_eq!(rate(&[0; 81]), None);
    }

    #[test]
    fn full_grid_needs_no_guess() {
        let p = parse_line(HARD[0]).unwrap();
        let s = solve(&p, 1).solution.unwrap();
        let out = solve(&s, 2);
        assert!(out.is_unique());
        assert_eq!(out.guesses, 0);
        assert_eq!(out.solution, Some(s));
    }

    #[test]
    fn invalid_inputs_have_no_solution() {
        let mut p = [0u8; 81];
        p[0] = 5;
        p[8] = 5; // same row
        assert_eq!(solve(&p, 2).solutions, 0);
        let mut p = [0u8; 81];
        p[0] = 5;
        p[72] = 5; // same column
        assert_eq!(solve(&p, 2).solutions, 0);
        let mut p = [0u8; 81];
        p[0] = 5;
        p[20] = 5; // same box
        assert_eq!(solve(&p, 2).solutions, 0);
        let mut p = [0u8; 81];
        p[40] = 10;
        let out = solve(&p, 2);
        assert_eq!(out.solutions, 0);
        assert_eq!(out.solution, None);
        assert_eq!(solve(&[255; 81], 2).solutions, 0);
        // A solved grid with one cell changed.
        let mut s = solve(&parse_line(HARD[1]).unwrap(), 1).solution.unwrap();
        s[0] = s[0] % 9 + 1;
        assert_eq!(solve(&s, 2).solutions, 0);
        // Givens that are consistent but unsolvable: 1..8 in row 0 and a 9 in
        // column 8 further down.
        let mut p = [0u8; 81];
        for (k, cell) in p.iter_mut().take(8).enumerate() {
            *cell = k as u8 + 1;
        }
        p[9 * 5 + 8] = 9;
        assert_eq!(solve(&p, 2).solutions, 0);
    }

    #[test]
    fn agrees_with_reference_on_random_puzzles() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let base = solve(&parse_line(HARD[2]).unwrap(), 1).solution.unwrap();
        for _ in 0..300 {
            // Relabel digits for variety, then blank a random subset.
            let mut perm: Vec<u8> = (1..=9).collect();
            perm.shuffle(&mut rng);
            let mut p = base.map(|v| perm[v as usize - 1]);
            let clues = rng.random_range(22..=40);
            let mut cells: Vec<usize> = (0..81).collect();
            cells.shuffle(&mut rng);
            for &c in &cells[clues..] {
                p[c] = 0;
            }
            // Sometimes add a random (possibly conflicting) given.
            if rng.random_bool(0.2) {
                p[rng.random_range(0..81)] = rng.random_range(1..=9);
            }
            let out = solve(&p, 2);
            let expect = if givens_conflict(&p) {
                0
            } else {
                reference_count(&mut p.clone(), 2)
            };
            assert_eq!(out.solutions, expect, "{p:?}");
            if expect > 0 {
                assert!(valid_solution(&p, &out.solution.unwrap()));
            } else {
                assert_eq!(out.solution, None);
            }
        }
    }
}
