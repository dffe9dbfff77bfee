//! Loading a packed model and solving puzzles with it, in parallel and in input order.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use rayon::prelude::*;
use trm_edge::format::Model;
use trm_edge::solver::attempts::{AttemptOptions, AttemptSolver, Pick};
use trm_edge::solver::{SolveOptions, Solver, StopReason};
use trm_edge::sudoku::Grid;

use crate::input::Puzzle;

/// A model file's bytes, copied to a 64-byte aligned address (aligned SIMD loads).
pub struct ModelBytes {
    buf: Vec<u8>,
    offset: usize,
    len: usize,
}

impl ModelBytes {
    /// Reads `path`; the error names the file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read model {}", path.display()))?;
        let mut buf = vec![0u8; bytes.len() + 64];
        let offset = buf.as_ptr().align_offset(64).min(64);
        buf[offset..offset + bytes.len()].copy_from_slice(&bytes);
        Ok(Self {
            buf,
            offset,
            len: bytes.len(),
        })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.offset..self.offset + self.len]
    }

    /// Validates the bytes as a packed model the Sudoku solver can run; errors name `path`.
    pub fn model(&self, path: &Path) -> Result<Model<'_>> {
        let model = Model::from_bytes(self.bytes())
            .map_err(|e| anyhow!("{}: not a usable packed model: {e}", path.display()))?;
        let mut probe = vec![0f32; Solver::arena_len(&model)];
        Solver::new(&model, &mut probe)
            .map_err(|e| anyhow!("{}: cannot solve Sudoku with it: {e}", path.display()))?;
        Ok(model)
    }
}

/// One run per puzzle (`--halt`), or several attempts and a selection (`--attempts`).
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// [`Solver::solve`] with these options.
    Single(SolveOptions),
    /// [`AttemptSolver::solve`] with these options.
    Attempts(AttemptOptions),
}

/// What a multi-attempt solve adds to an answer.
#[derive(Clone, Copy, Debug)]
pub struct AttemptInfo {
    /// Attempts run.
    pub attempts: usize,
    /// How the answer was chosen.
    pub pick: Pick,
    /// The attempt it comes from (`None` for a vote).
    pub attempt: Option<usize>,
}

/// The answer to one puzzle, from either mode.
#[derive(Clone, Copy, Debug)]
pub struct Answer {
    /// The predicted grid.
    pub grid: Grid,
    /// Supervision steps spent (over all attempts).
    pub steps: usize,
    /// Why it stopped.
    pub stop: StopReason,
    /// `q_halt` of the answer.
    pub q_halt: f32,
    /// Whether the answer passes the Sudoku check.
    pub valid: bool,
    /// Present in multi-attempt mode.
    pub attempts: Option<AttemptInfo>,
}

/// The result of one puzzle.
#[derive(Clone, Copy, Debug)]
pub struct Solved {
    /// The puzzle as read.
    pub puzzle: Puzzle,
    /// The answer.
    pub answer: Answer,
    /// Wall time of this solve in seconds.
    pub seconds: f64,
}

impl Solved {
    /// Whether the answer equals the file's solution (`None` when the file has none).
    pub fn correct(&self) -> Option<bool> {
        self.puzzle.solution.map(|s| s == self.answer.grid)
    }
}

/// Solves one puzzle on `arena`.
fn solve_one(model: &Model<'_>, mode: &Mode, arena: &mut [f32], p: &Puzzle) -> Result<Answer> {
    let err = |e: &dyn std::fmt::Display| anyhow!("line {}: {e}", p.line);
    match mode {
        Mode::Single(opts) => {
            let mut solver = Solver::new(model, arena).map_err(|e| anyhow!("{e}"))?;
            let s = solver.solve(&p.grid, opts).map_err(|e| err(&e))?;
            Ok(Answer {
                grid: s.grid,
                steps: s.steps,
                stop: s.reason,
                q_halt: s.q.q_halt,
                valid: s.valid,
                attempts: None,
            })
        }
        Mode::Attempts(opts) => {
            let mut solver = AttemptSolver::new(model, arena).map_err(|e| anyhow!("{e}"))?;
            let s = solver.solve(&p.grid, opts).map_err(|e| err(&e))?;
            Ok(Answer {
                grid: s.grid,
                steps: s.total_steps,
                stop: if s.pick == Pick::Check {
                    StopReason::Solved
                } else {
                    StopReason::Budget
                },
                q_halt: s.q_halt,
                valid: s.valid,
                attempts: Some(AttemptInfo {
                    attempts: s.attempts,
                    pick: s.pick,
                    attempt: s.attempt,
                }),
            })
        }
    }
}

/// Solves `puzzles` on the current rayon pool, one arena per worker; results in input order.
/// `tick` is called after each puzzle (progress).
pub fn solve_all(
    model: &Model<'_>,
    mode: &Mode,
    puzzles: &[Puzzle],
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<Solved>> {
    let arena_len = match mode {
        Mode::Single(_) => Solver::arena_len(model),
        Mode::Attempts(o) => AttemptSolver::arena_len(model, o.source),
    };
    puzzles
        .par_iter()
        .map_init(
            || vec![0f32; arena_len],
            |arena, p| {
                let start = Instant::now();
                let answer = solve_one(model, mode, arena, p)?;
                tick();
                Ok(Solved {
                    puzzle: *p,
                    answer,
                    seconds: start.elapsed().as_secs_f64(),
                })
            },
        )
        .collect()
}
