//! Solving one Sudoku with a packed model: supervision steps under a budget and a halting
//! policy, all in one caller-provided arena; [`attempts`]: several attempts and a selection
//! rule under a total step budget; [`names`]: the names of options and outcomes.

pub mod attempts;
pub mod names;

use core::ops::ControlFlow;

use crate::format::Model;
use crate::kernels::ops::argmax;
use crate::runtime::{RunError, StepOutput};
use crate::sudoku::{CELLS, Grid, VOCAB_SIZE, check_answer, encode};

/// When to stop before the budget is spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HaltPolicy {
    /// Always run the whole budget (the official evaluation).
    Full,
    /// Stop when the Q-head says so (`q_halt > 0`).
    Q,
    /// Stop as soon as the predicted grid is a valid completion of the puzzle.
    Check,
    /// Stop on either condition.
    QCheck,
}

impl HaltPolicy {
    /// The one halting decision after supervision step `steps` of a run with `budget` steps:
    /// `valid`: the predicted grid passes the Sudoku check, `q_halt`: the Q head's logit.
    /// A valid answer outranks `q_halt > 0`, and both outrank the budget. `None`: go on.
    pub fn decide(
        self,
        valid: bool,
        q_halt: f32,
        steps: usize,
        budget: usize,
    ) -> Option<StopReason> {
        match self {
            HaltPolicy::Check | HaltPolicy::QCheck if valid => Some(StopReason::Solved),
            HaltPolicy::Q | HaltPolicy::QCheck if q_halt > 0.0 => Some(StopReason::QHalt),
            _ if steps >= budget => Some(StopReason::Budget),
            _ => None,
        }
    }
}

/// Why [`Solver::solve`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The budget of supervision steps was spent.
    Budget,
    /// `q_halt > 0` (policies [`HaltPolicy::Q`], [`HaltPolicy::QCheck`]).
    QHalt,
    /// The prediction passed the Sudoku check (policies [`HaltPolicy::Check`],
    /// [`HaltPolicy::QCheck`]; takes precedence over `QHalt` in the same step).
    Solved,
    /// The step observer returned [`ControlFlow::Break`] ([`Solver::solve_traced`]).
    Stopped,
}

/// Options of one solve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SolveOptions {
    /// Maximum supervision steps (≥ 1; the official evaluation uses `halt_max_steps`).
    pub budget: usize,
    /// Halting policy.
    pub policy: HaltPolicy,
    /// Row of the puzzle-embedding table (0 for Sudoku models).
    pub puzzle_id: usize,
}

impl SolveOptions {
    /// The official evaluation: `halt_max_steps` steps, [`HaltPolicy::Full`], puzzle id 0.
    pub const fn official(model: &Model<'_>) -> Self {
        Self {
            budget: model.config().halt_max_steps,
            policy: HaltPolicy::Full,
            puzzle_id: 0,
        }
    }
}

/// The outcome of one solve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Solution {
    /// The predicted grid (argmax over all tokens per cell; PAD and blank predictions give a
    /// blank cell).
    pub grid: Grid,
    /// Supervision steps run (`1..=budget`).
    pub steps: usize,
    /// Why it stopped.
    pub reason: StopReason,
    /// Q-head outputs of the last step.
    pub q: StepOutput,
    /// Whether `grid` is a complete, valid grid keeping every given of the puzzle.
    pub valid: bool,
}

/// What a step observer sees after every supervision step ([`Solver::solve_traced`],
/// [`AttemptSolver::solve_traced`](attempts::AttemptSolver::solve_traced)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepView {
    /// Attempt index (0 = the plain run; always 0 for [`Solver::solve_traced`]).
    pub attempt: usize,
    /// What that attempt runs.
    pub kind: attempts::AttemptKind,
    /// Step within the attempt (`1..=steps`).
    pub step: usize,
    /// Steps run so far by the whole solve, this one included (over all attempts).
    pub total_steps: usize,
    /// The predicted grid after this step, in the puzzle's frame.
    pub grid: Grid,
    /// Q-head outputs of this step.
    pub q: StepOutput,
    /// Whether `grid` passes the Sudoku check.
    pub valid: bool,
}

/// A solver: a model plus an arena holding `x`, `z_h`, `z_l`, logits and scratch.
pub struct Solver<'m, 'a> {
    model: &'m Model<'m>,
    arena: &'a mut [f32],
}

impl<'m, 'a> Solver<'m, 'a> {
    /// f32 elements of arena a solver needs: `3·S·D + L·V + scratch_len`.
    pub const fn arena_len(model: &Model<'_>) -> usize {
        3 * model.state_len() + model.logits_len() + model.scratch_len()
    }

    /// A solver on `arena` (at least [`Solver::arena_len`] elements). Fails for models that
    /// do not read 81 cells with the 11-token vocabulary.
    pub fn new(model: &'m Model<'m>, arena: &'a mut [f32]) -> Result<Self, RunError> {
        check_workspace(model, arena, Self::arena_len(model))?;
        Ok(Self { model, arena })
    }

    /// Runs supervision steps on `puzzle` from a fresh carry until the policy or the budget
    /// stops it. Deterministic: the same model, puzzle and options give the same result.
    pub fn solve(&mut self, puzzle: &Grid, opts: &SolveOptions) -> Result<Solution, RunError> {
        self.solve_traced(puzzle, opts, |_| ControlFlow::Continue(()))
    }

    /// [`Solver::solve`], calling `on_step` after every supervision step with what that step
    /// predicts; the arithmetic is the same, so is the result. [`ControlFlow::Break`] ends the
    /// solve at that step with [`StopReason::Stopped`] (unless the policy or the budget stops
    /// it there anyway): a caller's wall-clock limit, or a viewer that has seen enough.
    pub fn solve_traced(
        &mut self,
        puzzle: &Grid,
        opts: &SolveOptions,
        mut on_step: impl FnMut(&StepView) -> ControlFlow<()>,
    ) -> Result<Solution, RunError> {
        if opts.budget == 0 {
            return Err(RunError::ZeroBudget);
        }
        let m = self.model;
        let n = m.state_len();
        let (x, rest) = crate::runtime::take(self.arena, n)?;
        let (z_h, rest) = crate::runtime::take(rest, n)?;
        let (z_l, rest) = crate::runtime::take(rest, n)?;
        let (logits, scratch) = crate::runtime::take(rest, m.logits_len())?;
        m.embed_input(&encode(puzzle), opts.puzzle_id, x)?;
        m.reset_carry(z_h, z_l)?;
        let mut steps = 0;
        loop {
            let q = m.step(x, z_h, z_l, logits, scratch)?;
            steps += 1;
            let grid = predict(logits);
            let valid = check_answer(puzzle, &grid).is_ok();
            let view = StepView {
                attempt: 0,
                kind: attempts::AttemptKind::Plain,
                step: steps,
                total_steps: steps,
                grid,
                q,
                valid,
            };
            let stop = on_step(&view).is_break().then_some(StopReason::Stopped);
            let decided = opts.policy.decide(valid, q.q_halt, steps, opts.budget);
            if let Some(reason) = decided.or(stop) {
                return Ok(Solution {
                    grid,
                    steps,
                    reason,
                    q,
                    valid,
                });
            }
        }
    }
}

/// The checks every solver makes on its model and caller-owned arena: a Sudoku model (81
/// cells, the Sudoku vocabulary) and an arena of at least `needed` values.
pub(crate) fn check_workspace(
    model: &Model<'_>,
    arena: &[f32],
    needed: usize,
) -> Result<(), RunError> {
    let cfg = model.config();
    if cfg.seq_len != CELLS || cfg.vocab != VOCAB_SIZE {
        return Err(RunError::NotSudoku);
    }
    if arena.len() < needed {
        return Err(RunError::BufferSize {
            buffer: "arena",
            needed,
            got: arena.len(),
        });
    }
    Ok(())
}

/// The grid predicted by `logits` `[81, 11]`: per cell the argmax token `t`, digit `t − 1`
/// for `t ≥ 2`, blank otherwise.
pub fn predict(logits: &[f32]) -> Grid {
    let mut cells = [0u8; CELLS];
    for (cell, row) in cells.iter_mut().zip(logits.chunks_exact(VOCAB_SIZE)) {
        let t = argmax(row);
        *cell = if (2..VOCAB_SIZE).contains(&t) {
            (t - 1) as u8
        } else {
            0
        };
    }
    Grid::from_cells(cells).unwrap_or(Grid::EMPTY)
}
