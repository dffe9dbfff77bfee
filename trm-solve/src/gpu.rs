//! `--backend wgpu|cuda`: batched inference with the burn model of `trm-train` on a GPU (or
//! on burn-ndarray with `--backend ndarray`, for checks). Same answers as the CPU path on the
//! same f32 weights; int8/f16 files are dequantized to f32 first.

use std::time::Instant;

use anyhow::{Result, anyhow};
use trm_edge::format::Model;
use trm_edge::solver::SolveOptions;
use trm_train::infer::{inference_device, solve_batch, trm_from_packed};
use trm_train::model::Trm;
use trm_train::train::config::Backend;

use crate::input::Puzzle;
use crate::solve::{Answer, Solved};

/// A packed model loaded onto a burn device.
pub struct GpuSolver {
    trm: Trm,
    batch: usize,
}

impl GpuSolver {
    /// Loads `model` on `backend`'s device; `batch` puzzles run together.
    pub fn new(model: &Model<'_>, backend: Backend, batch: usize) -> Result<Self> {
        let device = inference_device(backend)?;
        let trm = trm_from_packed(model, &device)?;
        Ok(Self {
            trm,
            batch: batch.max(1),
        })
    }

    /// Solves `puzzles` in batches, in input order. Each puzzle's time is its batch's wall
    /// time (a puzzle's answer is ready when its batch is). `tick` is called per puzzle.
    pub fn solve_all(
        &self,
        opts: &SolveOptions,
        puzzles: &[Puzzle],
        tick: &(dyn Fn() + Sync),
    ) -> Result<Vec<Solved>> {
        let mut out = Vec::with_capacity(puzzles.len());
        for chunk in puzzles.chunks(self.batch) {
            let start = Instant::now();
            let grids: Vec<_> = chunk.iter().map(|p| p.grid).collect();
            let solutions = solve_batch(&self.trm, &grids, opts).map_err(|e| {
                anyhow!(
                    "lines {}..={}: {e:#}",
                    chunk[0].line,
                    chunk[chunk.len() - 1].line
                )
            })?;
            let seconds = start.elapsed().as_secs_f64();
            for (p, solution) in chunk.iter().zip(solutions) {
                tick();
                out.push(Solved {
                    puzzle: *p,
                    answer: Answer {
                        grid: solution.grid,
                        steps: solution.steps,
                        stop: solution.reason,
                        q_halt: solution.q.q_halt,
                        valid: solution.valid,
                        attempts: None,
                    },
                    seconds,
                    solutions: crate::solve::solution_count(p),
                    trace: Vec::new(),
                });
            }
        }
        Ok(out)
    }
}
