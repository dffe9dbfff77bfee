//! Test-time scaling: several attempts at one puzzle with the same network, and a rule that
//! selects the answer, under a budget of **total** supervision steps (so a device bounds its
//! time whatever the number of attempts).
//!
//! Attempt 0 is always the plain run (fresh carry, the puzzle as given): with `K = 1` the
//! result equals [`Solver::solve`](super::Solver::solve) (with [`HaltPolicy::Check`](super::HaltPolicy::Check) under
//! [`Selection::Check`], [`HaltPolicy::Full`](super::HaltPolicy::Full) otherwise). Attempts `1..K` come from the
//! [`AttemptSource`]:
//!
//! - [`AttemptSource::Aug`]: a random [`Symmetry`] of the puzzle (digit relabelling,
//!   transpose, band/row and stack/column permutations), solved from a fresh carry, the answer
//!   mapped back;
//! - [`AttemptSource::Noise`]: the puzzle as given, from a fresh carry plus Gaussian noise on
//!   `H_init` and `L_init` (standard deviation [`AttemptOptions::noise`] times the RMS of each
//!   init vector, drawn independently per position and channel);
//! - [`AttemptSource::Steps`]: the plain run continued past its steps: attempt `k` is steps
//!   `k·N + 1 ..= (k+1)·N` of one chain, its answer the prediction at the end of the segment;
//! - [`AttemptSource::Mixed`]: round robin over the three: attempt `1 + 3j` is augmentation
//!   `j + 1`, `2 + 3j` noise draw `j + 1`, `3 + 3j` continuation `j + 1` of the plain chain.
//!   The draws are the very ones of the pure sources (augmentation `i` of `Mixed` is attempt
//!   `i` of `Aug`, etc.), so a mixed run's attempts are a subset of the pure runs' attempts.
//!   Mixed needs two more state buffers in the arena to keep the plain chain's carry
//!   ([`AttemptSolver::arena_len`]).
//!
//! Everything random is drawn from [`SplitMix64`] streams derived from
//! [`AttemptOptions::seed`] and the attempt's index: the same model, puzzle and options give
//! the same answer on every target.
//!
//! Selection ([`Selection`]):
//! - [`Selection::Check`]: every step's prediction (mapped back) is checked; the first one that
//!   passes the Sudoku check ends the whole search (the remaining budget is not spent).
//!   Without one, the per-cell vote over the attempts' final answers is taken when *it*
//!   passes the check, else the answer with the highest `q_halt`. (An answer failing the check
//!   can never be the unique solution, so among failing answers only a vote can still turn
//!   out exact; the `q_halt` answer is the most confident of the rest.)
//! - [`Selection::Q`]: every attempt runs its steps; the final answer with the highest `q_halt`
//!   (the first on ties; NaN counts as lowest).
//! - [`Selection::Vote`]: every attempt runs its steps; per cell the value most attempts
//!   predict (ties: the value of the highest-`q_halt` attempt among the tied, else the
//!   smallest).
//!
//! [`Selector`] is the selection on its own, fed one [`AttemptRecord`] at a time: the solver
//! uses it, and a measurement can replay the records of one long run for every prefix `K`
//! and every rule (as `trm-tts` does) and get exactly what the solver would return.

use core::fmt;
use core::ops::ControlFlow;

use super::{StepView, StopReason, predict};
use crate::format::Model;
use crate::rng::SplitMix64;
use crate::runtime::{RunError, take};
use crate::sudoku::{CELLS, Grid, Symmetry, check_answer, encode};

/// Where attempts `1..K` come from (attempt 0 is always the plain run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptSource {
    /// Symmetry augmentations of the puzzle, answers mapped back.
    Aug,
    /// Seeded Gaussian noise on the initial latents `H_init`, `L_init`.
    Noise,
    /// The plain run continued past its steps, segment by segment.
    Steps,
    /// Round robin over `Aug`, `Noise` and `Steps`.
    Mixed,
}

/// How the answer is selected among the attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// The first prediction that passes the Sudoku check (stops early); else a valid vote,
    /// else the highest `q_halt`.
    Check,
    /// The final answer with the highest `q_halt`.
    Q,
    /// The per-cell majority of the final answers.
    Vote,
}

/// What an attempt runs (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptKind {
    /// Fresh carry, the puzzle as given (attempt 0).
    Plain,
    /// Augmentation number `n` (`n ≥ 1`): a symmetry drawn from stream `n` of the seed.
    Aug(u32),
    /// Noise draw number `n` (`n ≥ 1`) on the initial latents.
    Noise(u32),
    /// Continuation number `n` (`n ≥ 1`) of the plain chain.
    Continue(u32),
}

impl AttemptKind {
    /// The kind of attempt `index` under `source`.
    pub const fn of(source: AttemptSource, index: usize) -> Self {
        if index == 0 {
            return Self::Plain;
        }
        let n = if index > u32::MAX as usize {
            u32::MAX
        } else {
            index as u32
        };
        match source {
            AttemptSource::Aug => Self::Aug(n),
            AttemptSource::Noise => Self::Noise(n),
            AttemptSource::Steps => Self::Continue(n),
            AttemptSource::Mixed => {
                let j = (n - 1) / 3 + 1;
                match (n - 1) % 3 {
                    0 => Self::Aug(j),
                    1 => Self::Noise(j),
                    _ => Self::Continue(j),
                }
            }
        }
    }
}

/// Stream ids of the derived generators.
const STREAM_AUG: u64 = 1;
const STREAM_NOISE: u64 = 2;

/// The symmetry of augmentation `n` under `seed` (identity for `n == 0`).
pub fn augmentation(seed: u64, n: u32) -> Symmetry {
    if n == 0 {
        return Symmetry::IDENTITY;
    }
    Symmetry::random(&mut SplitMix64::derive(seed, STREAM_AUG, u64::from(n)))
}

/// Default noise level of [`AttemptSource::Noise`]: standard deviation relative to the RMS of
/// `H_init` / `L_init`.
pub const DEFAULT_NOISE: f32 = 0.5;

/// Options of a multi-attempt solve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttemptOptions {
    /// Maximum number of attempts `K` (≥ 1).
    pub attempts: usize,
    /// Where attempts `1..K` come from.
    pub source: AttemptSource,
    /// How the answer is selected.
    pub select: Selection,
    /// Supervision steps of one attempt (≥ 1; usually the model's `halt_max_steps`).
    pub steps_per_attempt: usize,
    /// Total supervision steps over all attempts (≥ 1): attempts stop when it is spent, the
    /// last one possibly cut short.
    pub total_budget: usize,
    /// Seed of the augmentations and noise draws.
    pub seed: u64,
    /// Noise standard deviation relative to the RMS of each init vector (finite, ≥ 0).
    pub noise: f32,
    /// Row of the puzzle-embedding table (0 for Sudoku models).
    pub puzzle_id: usize,
}

impl AttemptOptions {
    /// `attempts` attempts of `halt_max_steps` steps each, total budget `attempts ·
    /// halt_max_steps`, seed 0, [`DEFAULT_NOISE`], puzzle id 0.
    pub const fn new(
        model: &Model<'_>,
        attempts: usize,
        source: AttemptSource,
        select: Selection,
    ) -> Self {
        let n = model.config().halt_max_steps;
        Self {
            attempts,
            source,
            select,
            steps_per_attempt: n,
            total_budget: attempts.saturating_mul(n),
            seed: 0,
            noise: DEFAULT_NOISE,
            puzzle_id: 0,
        }
    }
}

/// Why a multi-attempt solve could not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptError {
    /// The runtime refused (buffer sizes, budget of 0 steps, not a Sudoku model, …).
    Run(RunError),
    /// `attempts` is 0.
    NoAttempts,
    /// `noise` is negative or not finite.
    BadNoise,
}

impl From<RunError> for AttemptError {
    fn from(e: RunError) -> Self {
        Self::Run(e)
    }
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Run(e) => e.fmt(f),
            Self::NoAttempts => f.write_str("the number of attempts is 0"),
            Self::BadNoise => f.write_str("the noise level must be finite and non-negative"),
        }
    }
}

impl core::error::Error for AttemptError {}

/// The first prediction of an attempt that passed the Sudoku check.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FirstValid {
    /// Step within the attempt (`1..=steps`).
    pub step: usize,
    /// The answer (mapped back to the puzzle's frame).
    pub grid: Grid,
    /// `q_halt` at that step.
    pub q_halt: f32,
}

/// What one attempt produced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttemptRecord {
    /// Attempt index (0 = plain).
    pub index: usize,
    /// What it ran.
    pub kind: AttemptKind,
    /// Supervision steps it ran.
    pub steps: usize,
    /// The prediction after its last step, in the puzzle's frame.
    pub grid: Grid,
    /// `q_halt` after its last step.
    pub q_halt: f32,
    /// Whether `grid` passes the Sudoku check.
    pub valid: bool,
    /// The first step whose prediction passed the check, if any.
    pub first_valid: Option<FirstValid>,
}

/// How the returned answer was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// The first answer passing the Sudoku check.
    Check,
    /// The highest `q_halt`.
    Q,
    /// The per-cell vote.
    Vote,
}

/// The outcome of a multi-attempt solve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttemptSolution {
    /// The selected answer (in the puzzle's frame).
    pub grid: Grid,
    /// Whether it passes the Sudoku check.
    pub valid: bool,
    /// How it was chosen.
    pub pick: Pick,
    /// The attempt it comes from (`None` for a vote).
    pub attempt: Option<usize>,
    /// `q_halt` of that attempt's answer; for a vote, the highest final `q_halt`.
    pub q_halt: f32,
    /// Supervision steps spent over all attempts (≤ the total budget).
    pub total_steps: usize,
    /// Attempts run (≤ `attempts`).
    pub attempts: usize,
}

impl AttemptSolution {
    /// The stop reason of the search as a single run would report it: `Solved` when the answer
    /// is an attempt's that passed the Sudoku check (pick `check`), else `Budget` (the attempts
    /// or the total budget ran out before one did).
    pub fn stop(&self) -> StopReason {
        if self.pick == Pick::Check {
            StopReason::Solved
        } else {
            StopReason::Budget
        }
    }
}

/// Total order on `q_halt` with NaN lowest.
fn q_key(q: f32) -> f32 {
    if q.is_nan() { f32::NEG_INFINITY } else { q }
}

/// The selection rule, fed one attempt at a time (heap-free: per-cell vote counters and two
/// grids).
#[derive(Clone, Debug)]
pub struct Selector {
    rule: Selection,
    steps: usize,
    attempts: usize,
    found: Option<(usize, FirstValid)>,
    best: Option<(usize, Grid, f32)>,
    votes: [[u16; 10]; CELLS],
}

impl Selector {
    /// An empty selector for `rule`.
    pub const fn new(rule: Selection) -> Self {
        Self {
            rule,
            steps: 0,
            attempts: 0,
            found: None,
            best: None,
            votes: [[0; 10]; CELLS],
        }
    }

    /// Adds the next attempt. Returns `true` when the search is over ([`Selection::Check`]
    /// found a valid answer); further records are then ignored.
    ///
    /// Steps are counted as a live solve spends them: under [`Selection::Check`] an attempt
    /// with a valid prediction counts only up to its first valid step.
    pub fn add(&mut self, rec: &AttemptRecord) -> bool {
        if self.done() {
            return true;
        }
        self.attempts += 1;
        if self.rule == Selection::Check
            && let Some(fv) = rec.first_valid
        {
            self.steps = self.steps.saturating_add(fv.step);
            self.found = Some((rec.index, fv));
            return true;
        }
        self.steps = self.steps.saturating_add(rec.steps);
        if self
            .best
            .is_none_or(|(_, _, q)| q_key(rec.q_halt) > q_key(q))
        {
            self.best = Some((rec.index, rec.grid, rec.q_halt));
        }
        for (counts, &v) in self.votes.iter_mut().zip(rec.grid.cells()) {
            if let Some(c) = counts.get_mut(usize::from(v)) {
                *c = c.saturating_add(1);
            }
        }
        false
    }

    /// Whether the search is over.
    pub const fn done(&self) -> bool {
        self.found.is_some()
    }

    /// Supervision steps counted so far.
    pub const fn steps(&self) -> usize {
        self.steps
    }

    /// The per-cell vote of the attempts added so far.
    pub fn vote(&self) -> Grid {
        let tie = self.best.map(|(_, g, _)| g);
        let mut cells = [0u8; CELLS];
        for (i, (cell, counts)) in cells.iter_mut().zip(&self.votes).enumerate() {
            let max = counts.iter().copied().max().unwrap_or(0);
            let preferred = tie.map(|g| g.cells()[i]);
            *cell = match preferred {
                Some(p) if counts.get(usize::from(p)) == Some(&max) => p,
                _ => counts.iter().position(|&c| c == max).unwrap_or(0) as u8,
            };
        }
        Grid::from_cells(cells).unwrap_or(Grid::EMPTY)
    }

    /// The selected answer for `puzzle`; `None` before any attempt was added.
    pub fn finish(&self, puzzle: &Grid) -> Option<AttemptSolution> {
        let (steps, attempts) = (self.steps, self.attempts);
        if let Some((index, fv)) = self.found {
            return Some(AttemptSolution {
                grid: fv.grid,
                valid: true,
                pick: Pick::Check,
                attempt: Some(index),
                q_halt: fv.q_halt,
                total_steps: steps,
                attempts,
            });
        }
        let (index, grid, q) = self.best?;
        let by_q = AttemptSolution {
            grid,
            valid: check_answer(puzzle, &grid).is_ok(),
            pick: Pick::Q,
            attempt: Some(index),
            q_halt: q,
            total_steps: steps,
            attempts,
        };
        let vote = || {
            let g = self.vote();
            AttemptSolution {
                grid: g,
                valid: check_answer(puzzle, &g).is_ok(),
                pick: Pick::Vote,
                attempt: None,
                ..by_q
            }
        };
        Some(match self.rule {
            Selection::Q => by_q,
            Selection::Vote => vote(),
            Selection::Check => {
                let v = vote();
                if v.valid { v } else { by_q }
            }
        })
    }
}

/// A multi-attempt solver: a model plus an arena (see [`AttemptSolver::arena_len`]).
pub struct AttemptSolver<'m, 'a> {
    model: &'m Model<'m>,
    arena: &'a mut [f32],
}

impl<'m, 'a> AttemptSolver<'m, 'a> {
    /// f32 elements of arena needed for `source`: [`Solver::arena_len`](super::Solver::arena_len),
    /// plus `2·S·D` for [`AttemptSource::Mixed`] (the saved plain chain).
    pub const fn arena_len(model: &Model<'_>, source: AttemptSource) -> usize {
        let base = super::Solver::arena_len(model);
        match source {
            AttemptSource::Mixed => base + 2 * model.state_len(),
            _ => base,
        }
    }

    /// A solver on `arena`. Fails for models that do not read 81 cells with the 11-token
    /// vocabulary, or an arena shorter than the single solver's; [`AttemptSource::Mixed`]
    /// needs more, checked by [`AttemptSolver::solve`].
    pub fn new(model: &'m Model<'m>, arena: &'a mut [f32]) -> Result<Self, RunError> {
        super::check_workspace(model, arena, super::Solver::arena_len(model))?;
        Ok(Self { model, arena })
    }

    /// Solves `puzzle` with up to `opts.attempts` attempts and selects the answer.
    pub fn solve(
        &mut self,
        puzzle: &Grid,
        opts: &AttemptOptions,
    ) -> Result<AttemptSolution, AttemptError> {
        self.solve_observed(puzzle, opts, &mut |_| {})
    }

    /// [`AttemptSolver::solve`], calling `observe` with every attempt's record as it ends.
    pub fn solve_observed(
        &mut self,
        puzzle: &Grid,
        opts: &AttemptOptions,
        observe: &mut dyn FnMut(&AttemptRecord),
    ) -> Result<AttemptSolution, AttemptError> {
        self.solve_traced(puzzle, opts, &mut |_| ControlFlow::Continue(()), observe)
    }

    /// [`AttemptSolver::solve_observed`], also calling `on_step` after every supervision step
    /// of every attempt with what that step predicts (mapped back to the puzzle's frame); the
    /// arithmetic is the same, so is the result. [`ControlFlow::Break`] ends the search at
    /// that step: the attempt under way ends there (its record is observed and added) and the
    /// answer is selected from the attempts so far.
    pub fn solve_traced(
        &mut self,
        puzzle: &Grid,
        opts: &AttemptOptions,
        on_step: &mut dyn FnMut(&StepView) -> ControlFlow<()>,
        observe: &mut dyn FnMut(&AttemptRecord),
    ) -> Result<AttemptSolution, AttemptError> {
        if opts.attempts == 0 {
            return Err(AttemptError::NoAttempts);
        }
        if opts.steps_per_attempt == 0 || opts.total_budget == 0 {
            return Err(RunError::ZeroBudget.into());
        }
        if !opts.noise.is_finite() || opts.noise < 0.0 {
            return Err(AttemptError::BadNoise);
        }
        let m = self.model;
        let needed = Self::arena_len(m, opts.source);
        if self.arena.len() < needed {
            return Err(RunError::BufferSize {
                buffer: "arena",
                needed,
                got: self.arena.len(),
            }
            .into());
        }
        let n = m.state_len();
        let (x, rest) = take(self.arena, n)?;
        let (z_h, rest) = take(rest, n)?;
        let (z_l, rest) = take(rest, n)?;
        let (logits, rest) = take(rest, m.logits_len())?;
        let (scratch, rest) = take(rest, m.scratch_len())?;
        // The plain chain's carry, kept across other attempts (Mixed only).
        let (saved_h, rest) = take(
            rest,
            if opts.source == AttemptSource::Mixed {
                n
            } else {
                0
            },
        )?;
        let (saved_l, _) = take(rest, saved_h.len())?;

        let mut selector = Selector::new(opts.select);
        let mut used = 0usize;
        for index in 0..opts.attempts {
            if used >= opts.total_budget {
                break;
            }
            let steps = opts.steps_per_attempt.min(opts.total_budget - used);
            let kind = AttemptKind::of(opts.source, index);
            let symmetry = match kind {
                AttemptKind::Aug(a) => augmentation(opts.seed, a),
                _ => Symmetry::IDENTITY,
            };
            match kind {
                AttemptKind::Plain | AttemptKind::Aug(_) | AttemptKind::Noise(_) => {
                    m.embed_input(&encode(&symmetry.apply(puzzle)), opts.puzzle_id, x)?;
                    m.reset_carry(z_h, z_l)?;
                    if let AttemptKind::Noise(j) = kind {
                        perturb(z_h, z_l, m.config().hidden, opts, j);
                    }
                }
                AttemptKind::Continue(_) => {
                    if !saved_h.is_empty() {
                        m.embed_input(&encode(puzzle), opts.puzzle_id, x)?;
                        z_h.copy_from_slice(saved_h);
                        z_l.copy_from_slice(saved_l);
                    }
                }
            }
            let stop_on_valid = opts.select == Selection::Check;
            let mut first_valid = None;
            let mut last = None;
            let mut interrupted = false;
            for step in 1..=steps {
                let q = m.step(x, z_h, z_l, logits, scratch)?;
                let grid = symmetry.invert(&predict(logits));
                let valid = check_answer(puzzle, &grid).is_ok();
                if valid && first_valid.is_none() {
                    first_valid = Some(FirstValid {
                        step,
                        grid,
                        q_halt: q.q_halt,
                    });
                }
                last = Some((step, grid, q.q_halt, valid));
                let view = StepView {
                    attempt: index,
                    kind,
                    step,
                    total_steps: used + step,
                    grid,
                    q,
                    valid,
                };
                interrupted = on_step(&view).is_break();
                if (valid && stop_on_valid) || interrupted {
                    break;
                }
            }
            let Some((ran, grid, q_halt, valid)) = last else {
                break;
            };
            if !saved_h.is_empty() && matches!(kind, AttemptKind::Plain | AttemptKind::Continue(_))
            {
                saved_h.copy_from_slice(z_h);
                saved_l.copy_from_slice(z_l);
            }
            used += ran;
            let rec = AttemptRecord {
                index,
                kind,
                steps: ran,
                grid,
                q_halt,
                valid,
                first_valid,
            };
            observe(&rec);
            if selector.add(&rec) || interrupted {
                break;
            }
        }
        selector
            .finish(puzzle)
            .ok_or(AttemptError::Run(RunError::Internal))
    }
}

/// Adds noise draw `draw` to a fresh carry: per buffer, `noise · rms(init) · N(0, 1)` on every
/// element, `init` being the first row (every row of a fresh carry holds the init vector).
fn perturb(z_h: &mut [f32], z_l: &mut [f32], d: usize, opts: &AttemptOptions, draw: u32) {
    let mut rng = SplitMix64::derive(opts.seed, STREAM_NOISE, u64::from(draw));
    for buf in [z_h, z_l] {
        let row = buf.get(..d).unwrap_or(&[]);
        let ms = row.iter().map(|v| v * v).sum::<f32>() / d.max(1) as f32;
        let sigma = opts.noise * libm::sqrtf(ms);
        let mut pairs = buf.chunks_exact_mut(2);
        for pair in &mut pairs {
            let (a, b) = rng.normal_pair();
            pair[0] += sigma * a;
            pair[1] += sigma * b;
        }
        for v in pairs.into_remainder() {
            *v += sigma * rng.normal_pair().0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sudoku::parse;

    const PUZZLE: &str =
        "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";
    const SOLUTION: &str =
        "534678912672195348198342567859761423426853791713924856961537284287419635345286179";

    fn rec(
        index: usize,
        grid: Grid,
        q_halt: f32,
        steps: usize,
        fv: Option<usize>,
    ) -> AttemptRecord {
        let puzzle = parse(PUZZLE).unwrap();
        AttemptRecord {
            index,
            kind: AttemptKind::of(AttemptSource::Aug, index),
            steps,
            grid,
            q_halt,
            valid: check_answer(&puzzle, &grid).is_ok(),
            first_valid: fv.map(|step| FirstValid { step, grid, q_halt }),
        }
    }

    /// The solution with cell `cell` changed to `v` (not valid).
    fn broken(cell: usize, v: u8) -> Grid {
        let mut g = parse(SOLUTION).unwrap();
        g.set(cell, v).unwrap();
        g
    }

    #[test]
    fn check_takes_the_first_valid_and_counts_its_steps() {
        let (p, s) = (parse(PUZZLE).unwrap(), parse(SOLUTION).unwrap());
        let mut sel = Selector::new(Selection::Check);
        assert!(sel.finish(&p).is_none());
        assert!(!sel.add(&rec(0, broken(3, 1), 5.0, 16, None)));
        assert!(sel.add(&rec(1, s, -2.0, 16, Some(3))));
        // Ignored once done.
        assert!(sel.add(&rec(2, broken(4, 1), 9.0, 16, Some(1))));
        let out = sel.finish(&p).unwrap();
        assert_eq!((out.pick, out.attempt, out.grid), (Pick::Check, Some(1), s));
        assert_eq!((out.total_steps, out.attempts, out.q_halt), (19, 2, -2.0));
        assert!(out.valid);
    }

    #[test]
    fn q_takes_the_highest_q_halt_nan_lowest_first_on_ties() {
        let p = parse(PUZZLE).unwrap();
        let mut sel = Selector::new(Selection::Q);
        for (i, q) in [f32::NAN, 1.0, 3.0, 3.0, -1.0].into_iter().enumerate() {
            // Q never stops early, even on a valid answer.
            assert!(!sel.add(&rec(i, broken(i, 9), q, 4, Some(1))));
        }
        let out = sel.finish(&p).unwrap();
        assert_eq!((out.pick, out.attempt, out.q_halt), (Pick::Q, Some(2), 3.0));
        assert_eq!(
            (out.grid, out.total_steps, out.attempts),
            (broken(2, 9), 20, 5)
        );
        let mut nan = Selector::new(Selection::Q);
        nan.add(&rec(0, broken(0, 9), f32::NAN, 4, None));
        assert_eq!(nan.finish(&p).unwrap().attempt, Some(0));
    }

    #[test]
    fn vote_is_a_per_cell_majority_with_q_breaking_ties() {
        let (p, s) = (parse(PUZZLE).unwrap(), parse(SOLUTION).unwrap());
        let mut sel = Selector::new(Selection::Vote);
        // Each attempt is wrong in a different cell: the vote is the solution.
        for i in 0..3 {
            sel.add(&rec(i, broken(10 + i, 9), 0.0, 2, None));
        }
        let out = sel.finish(&p).unwrap();
        assert_eq!((out.pick, out.attempt, out.grid), (Pick::Vote, None, s));
        assert!(out.valid);
        // Two attempts, one cell disagrees: the higher q_halt wins the tie.
        let mut tie = Selector::new(Selection::Vote);
        tie.add(&rec(0, broken(2, 9), -1.0, 2, None));
        tie.add(&rec(1, broken(2, 8), 2.0, 2, None));
        let g = tie.finish(&p).unwrap().grid;
        assert_eq!(g.cells()[2], 8);
        assert_eq!(g.cells()[3], s.cells()[3]);
    }

    #[test]
    fn check_falls_back_to_a_valid_vote_else_to_q() {
        let (p, s) = (parse(PUZZLE).unwrap(), parse(SOLUTION).unwrap());
        let mut sel = Selector::new(Selection::Check);
        for i in 0..3 {
            sel.add(&rec(i, broken(10 + i, 9), i as f32, 2, None));
        }
        let out = sel.finish(&p).unwrap();
        assert_eq!((out.pick, out.grid, out.valid), (Pick::Vote, s, true));
        let mut sel = Selector::new(Selection::Check);
        sel.add(&rec(0, broken(10, 9), 0.0, 2, None));
        sel.add(&rec(1, broken(11, 9), 1.0, 2, None));
        let out = sel.finish(&p).unwrap();
        assert_eq!(
            (out.pick, out.attempt, out.valid),
            (Pick::Q, Some(1), false)
        );
        assert_eq!(out.total_steps, 4);
    }

    #[test]
    fn kinds_of_mixed_cycle_over_the_sources() {
        let kinds: [AttemptKind; 7] =
            core::array::from_fn(|i| AttemptKind::of(AttemptSource::Mixed, i));
        assert_eq!(
            kinds,
            [
                AttemptKind::Plain,
                AttemptKind::Aug(1),
                AttemptKind::Noise(1),
                AttemptKind::Continue(1),
                AttemptKind::Aug(2),
                AttemptKind::Noise(2),
                AttemptKind::Continue(2),
            ]
        );
        assert_eq!(
            AttemptKind::of(AttemptSource::Steps, 3),
            AttemptKind::Continue(3)
        );
    }
}
