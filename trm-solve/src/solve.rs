//! Loading a packed model and solving puzzles with it, in parallel, answers streamed in input
//! order.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use rayon::ThreadPool;
use trm_edge::format::Model;
use trm_edge::solver::attempts::{AttemptOptions, AttemptSolver, Pick};
use trm_edge::solver::{SolveOptions, Solver, StepView, StopReason};
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
        // Models here are a few MB (the format allows up to 4 GiB); a larger input, or a
        // device that never ends (`/dev/zero`), is refused after reading one byte past 1 GiB.
        const MAX_MODEL: u64 = 1 << 30;
        use std::io::Read;
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_MODEL + 1).read_to_end(&mut bytes))
            .with_context(|| format!("cannot read model {}", path.display()))?;
        anyhow::ensure!(
            bytes.len() as u64 <= MAX_MODEL,
            "{} is larger than 1 GiB: not a model file trm-solve runs",
            path.display()
        );
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
#[derive(Clone, Debug)]
pub struct Solved {
    /// The puzzle as read.
    pub puzzle: Puzzle,
    /// The answer.
    pub answer: Answer,
    /// Wall time of this solve in seconds (the model only, not the solution count).
    pub seconds: f64,
    /// The puzzle's solutions by the exact solver, 2 for two or more ([`solution_count`]);
    /// `None` when the file gives a solution.
    pub solutions: Option<u32>,
    /// Every supervision step, in order, when tracing (`--trace`); empty otherwise.
    pub trace: Vec<StepView>,
}

impl Solved {
    /// Whether the answer equals the file's solution (`None` when the file has none).
    pub fn correct(&self) -> Option<bool> {
        self.puzzle.solution.map(|s| s == self.answer.grid)
    }
}

/// What a CPU solve watches beside the model.
#[derive(Clone, Copy, Debug, Default)]
pub struct Watch {
    /// Keep every supervision step's view in [`Solved::trace`] (`--trace`).
    pub trace: bool,
    /// Stop a puzzle at the end of the first supervision step that finishes after this much
    /// wall time (`--puzzle-time-limit`); its answer is that step's, with stop reason
    /// [`StopReason::Stopped`].
    pub puzzle_limit: Option<Duration>,
}

/// Solves one puzzle on `arena`; with `trace`, every step's view is pushed to it; past
/// `limit` (wall time from `start`), the solve stops after the current step.
fn solve_one(
    model: &Model<'_>,
    mode: &Mode,
    arena: &mut [f32],
    p: &Puzzle,
    mut trace: Option<&mut Vec<StepView>>,
    (start, limit): (Instant, Option<Duration>),
) -> Result<Answer> {
    let err = |e: &dyn std::fmt::Display| anyhow!("line {}: {e}", p.line);
    let mut timed_out = false;
    let mut on_step = |v: &StepView| {
        if let Some(t) = trace.as_deref_mut() {
            t.push(*v);
        }
        match limit {
            Some(l) if start.elapsed() >= l => {
                timed_out = true;
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        }
    };
    match mode {
        Mode::Single(opts) => {
            let mut solver = Solver::new(model, arena).map_err(|e| anyhow!("{e}"))?;
            let s = solver
                .solve_traced(&p.grid, opts, on_step)
                .map_err(|e| err(&e))?;
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
            let s = solver
                .solve_traced(&p.grid, opts, &mut on_step, &mut |_| {})
                .map_err(|e| err(&e))?;
            Ok(Answer {
                grid: s.grid,
                steps: s.total_steps,
                stop: if timed_out {
                    StopReason::Stopped
                } else {
                    s.stop()
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

/// Solves `puzzles` on `pool`, calling `ready` on the calling thread with every run of answers
/// that extends the finished prefix of the input, in input order, as soon as it does (so an
/// answer is written when it and all earlier puzzles are done).
///
/// One worker per pool thread takes the next unstarted puzzle in input order, so answers finish
/// nearly in order and few wait for an earlier one. No puzzle is started once `deadline` has
/// passed, or after an error (a puzzle's or `ready`'s); puzzles already running finish. Returns
/// how many puzzles were attempted: always the first ones of `puzzles`, each passed to `ready`.
/// With `watch.trace`, each answer carries every step's view ([`Solved::trace`]); with
/// `watch.puzzle_limit`, a puzzle stops at the first step boundary past it.
pub fn solve_in_order(
    pool: &ThreadPool,
    model: &Model<'_>,
    mode: &Mode,
    puzzles: &[Puzzle],
    deadline: Option<Instant>,
    watch: Watch,
    ready: &mut dyn FnMut(&[Solved]) -> Result<()>,
) -> Result<usize> {
    let arena_len = match mode {
        Mode::Single(_) => Solver::arena_len(model),
        Mode::Attempts(o) => AttemptSolver::arena_len(model, o.source),
    };
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let workers = pool.current_num_threads().min(puzzles.len());
    let (tx, rx) = mpsc::channel::<(usize, Result<Solved>)>();
    let result = pool.in_place_scope(|scope| {
        for _ in 0..workers {
            let (tx, next, stop) = (tx.clone(), &next, &stop);
            scope.spawn(move |_| {
                let mut arena = vec![0f32; arena_len];
                // The deadline is checked before a puzzle is taken: every puzzle taken is
                // solved, so the puzzles attempted are always a prefix of the input.
                while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = puzzles.get(i) else { break };
                    let solved = solve_puzzle(model, mode, &mut arena, p, watch);
                    if solved.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    if tx.send((i, solved)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // `pending[k]`: the result of puzzle `done + k`, once it is in.
        let mut pending: VecDeque<Option<Result<Solved>>> = VecDeque::new();
        let mut done = 0usize;
        let mut batch = Vec::new();
        let mut result = Ok(());
        for (i, solved) in rx {
            if result.is_err() {
                continue; // drain until the workers stop
            }
            let k = i - done;
            if pending.len() <= k {
                pending.resize_with(k + 1, || None);
            }
            pending[k] = Some(solved);
            batch.clear();
            let mut failed = None;
            while let Some(Some(_)) = pending.front() {
                let Some(Some(solved)) = pending.pop_front() else {
                    break;
                };
                done += 1;
                match solved {
                    Ok(s) => batch.push(s),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            // A puzzle's error comes after the answers before it are written.
            if !batch.is_empty() {
                result = ready(&batch);
            }
            if let (Ok(()), Some(e)) = (&result, failed) {
                result = Err(e);
            }
            if result.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
        }
        result
    });
    result.map(|()| next.load(Ordering::Relaxed).min(puzzles.len()))
}

/// Solves one puzzle (and counts its solutions, [`solution_count`]) on `arena`, as `watch`
/// says.
fn solve_puzzle(
    model: &Model<'_>,
    mode: &Mode,
    arena: &mut [f32],
    p: &Puzzle,
    watch: Watch,
) -> Result<Solved> {
    let solutions = solution_count(p);
    let mut steps = Vec::new();
    let start = Instant::now();
    let answer = solve_one(
        model,
        mode,
        arena,
        p,
        watch.trace.then_some(&mut steps),
        (start, watch.puzzle_limit),
    )?;
    Ok(Solved {
        puzzle: *p,
        answer,
        seconds: start.elapsed().as_secs_f64(),
        solutions,
        trace: steps,
    })
}

/// The puzzle's solutions by the exact solver, capped at 2 (two or more), when the file gives
/// no solution; `None` when it does (the reader has checked that one already). Fast: the
/// search stops at the second solution (tens of microseconds on hard puzzles).
pub fn solution_count(p: &Puzzle) -> Option<u32> {
    match p.solution {
        Some(_) => None,
        None => Some(trm_sudoku::search::solve(p.grid.cells(), 2).solutions),
    }
}

/// What is wrong with a puzzle of `solutions` ([`solution_count`]): `None` for one solution or
/// when not checked.
pub fn uniqueness_problem(solutions: Option<u32>) -> Option<&'static str> {
    match solutions? {
        0 => Some("the puzzle has no solution"),
        1 => None,
        _ => Some("the puzzle has more than one solution"),
    }
}
