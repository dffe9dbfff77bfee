//! Loading a packed model and solving puzzles with it, in parallel and in input order.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use rayon::prelude::*;
use trm_edge::format::Model;
use trm_edge::solver::{Solution, SolveOptions, Solver};

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

/// The result of one puzzle.
#[derive(Clone, Copy, Debug)]
pub struct Solved {
    /// The puzzle as read.
    pub puzzle: Puzzle,
    /// The solver's outcome.
    pub solution: Solution,
    /// Wall time of this solve in seconds.
    pub seconds: f64,
}

impl Solved {
    /// Whether the answer equals the file's solution (`None` when the file has none).
    pub fn correct(&self) -> Option<bool> {
        self.puzzle.solution.map(|s| s == self.solution.grid)
    }
}

/// Solves `puzzles` on the current rayon pool, one arena per worker; results in input order.
/// `tick` is called after each puzzle (progress).
pub fn solve_all(
    model: &Model<'_>,
    opts: &SolveOptions,
    puzzles: &[Puzzle],
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<Solved>> {
    let arena_len = Solver::arena_len(model);
    puzzles
        .par_iter()
        .map_init(
            || vec![0f32; arena_len],
            |arena, p| {
                let start = Instant::now();
                let mut solver = Solver::new(model, arena).map_err(|e| anyhow!("{e}"))?;
                let solution = solver
                    .solve(&p.grid, opts)
                    .map_err(|e| anyhow!("line {}: {e}", p.line))?;
                tick();
                Ok(Solved {
                    puzzle: *p,
                    solution,
                    seconds: start.elapsed().as_secs_f64(),
                })
            },
        )
        .collect()
}
