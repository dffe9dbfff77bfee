//! Test-time scaling measurements for `trm-edge`'s multi-attempt solver
//! ([`trm_edge::solver::attempts`]): exact accuracy against total supervision steps per
//! puzzle, for every attempt source, selection rule and number of attempts `K`, against the
//! single run given the same steps.
//!
//! One puzzle costs three runs of `K_max` attempts (sources `Aug`, `Noise`, `Steps`, every
//! attempt run to its end); everything else is replayed from their records with the same
//! [`Selector`] the solver uses, so a replayed figure is exactly what
//! [`AttemptSolver::solve`] returns with those options (a test checks it):
//! - `K` attempts of a pure source are the first `K` records of its run;
//! - `Mixed` attempts are the pure runs' attempts (see the module docs of
//!   [`trm_edge::solver::attempts`]);
//! - the single run with `K · N` steps is the end of segment `K` of the `Steps` run
//!   (`baseline/full`); with the check halting policy it is `steps/check`.

pub mod plot;
pub mod report;
pub mod sets;

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};
use serde::{Deserialize, Serialize};
use trm_edge::format::Model;
use trm_edge::solver::attempts::{
    AttemptKind, AttemptOptions, AttemptRecord, AttemptSolution, AttemptSolver, AttemptSource,
    Selection, Selector,
};
use trm_edge::sudoku::{Grid, check_answer};

/// The key of the single run given `K · N` steps (answer after the last step).
pub const BASELINE: &str = "baseline/full";

/// Whether `answer` is exact: equal to `solution` when known, else passing the Sudoku check
/// (the same for uniquely solvable puzzles, which every evaluation set here is).
pub fn is_exact(puzzle: &Grid, solution: Option<&Grid>, answer: &Grid) -> bool {
    match solution {
        Some(s) => s == answer,
        None => check_answer(puzzle, answer).is_ok(),
    }
}

/// One method at one `K`: was the answer exact, and how many steps did it spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Exact answer.
    pub exact: bool,
    /// Total supervision steps spent.
    pub steps: usize,
}

/// Selects among the first `k` of `records` with `rule`, as a live solve would.
pub fn replay(
    records: &[AttemptRecord],
    rule: Selection,
    k: usize,
    puzzle: &Grid,
) -> Option<AttemptSolution> {
    let mut sel = Selector::new(rule);
    for r in records.iter().take(k) {
        if sel.add(r) {
            break;
        }
    }
    sel.finish(puzzle)
}

/// The records of a `Mixed` run of `k` attempts, taken from the pure runs' records.
pub fn mixed_records(
    aug: &[AttemptRecord],
    noise: &[AttemptRecord],
    steps: &[AttemptRecord],
    k: usize,
) -> Result<Vec<AttemptRecord>> {
    (0..k)
        .map(|index| {
            let (from, j) = match AttemptKind::of(AttemptSource::Mixed, index) {
                AttemptKind::Plain => (steps, 0),
                AttemptKind::Aug(j) => (aug, j),
                AttemptKind::Noise(j) => (noise, j),
                AttemptKind::Continue(j) => (steps, j),
            };
            let r = from.get(j as usize).ok_or_else(|| {
                anyhow!("mixed attempt {index} needs a pure attempt {j} that was not run")
            })?;
            Ok(AttemptRecord { index, ..*r })
        })
        .collect()
}

/// The runs one puzzle needs: `k_max` attempts of `Aug`, `Noise` and `Steps`, with the
/// seed, noise and steps per attempt of `base` (every attempt runs to its end).
pub fn run_sources(
    model: &Model<'_>,
    arena: &mut [f32],
    puzzle: &Grid,
    base: &AttemptOptions,
    k_max: usize,
) -> Result<[Vec<AttemptRecord>; 3]> {
    let mut solver = AttemptSolver::new(model, arena).map_err(|e| anyhow!("{e}"))?;
    let mut out: [Vec<AttemptRecord>; 3] = Default::default();
    for (slot, source) in out.iter_mut().zip([
        AttemptSource::Aug,
        AttemptSource::Noise,
        AttemptSource::Steps,
    ]) {
        let opts = AttemptOptions {
            attempts: k_max,
            source,
            select: Selection::Vote,
            total_budget: k_max.saturating_mul(base.steps_per_attempt),
            ..*base
        };
        solver
            .solve_observed(puzzle, &opts, &mut |r| slot.push(*r))
            .map_err(|e| anyhow!("{e}"))?;
    }
    Ok(out)
}

/// Every method's outcome at every `K` of `ks` (keys `source/rule` and [`BASELINE`]) from the
/// records of [`run_sources`].
pub fn outcomes(
    runs: &[Vec<AttemptRecord>; 3],
    ks: &[usize],
    puzzle: &Grid,
    solution: Option<&Grid>,
) -> Result<BTreeMap<String, Vec<Outcome>>> {
    let [aug, noise, steps] = runs;
    let k_max = ks.iter().copied().max().unwrap_or(1);
    let mixed = mixed_records(aug, noise, steps, k_max)?;
    let mut out = BTreeMap::new();
    for source in AttemptSource::ALL {
        let sname = source.name();
        let recs = match source {
            AttemptSource::Aug => aug,
            AttemptSource::Noise => noise,
            AttemptSource::Steps => steps,
            AttemptSource::Mixed => &mixed,
        };
        for rule in Selection::ALL {
            let rname = rule.name();
            let row = ks
                .iter()
                .map(|&k| {
                    let s = replay(recs, rule, k, puzzle).ok_or_else(|| anyhow!("no attempts"))?;
                    Ok(Outcome {
                        exact: is_exact(puzzle, solution, &s.grid),
                        steps: s.total_steps,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            out.insert(format!("{sname}/{rname}"), row);
        }
    }
    let base = ks
        .iter()
        .map(|&k| {
            let last = steps
                .get(k.saturating_sub(1))
                .ok_or_else(|| anyhow!("steps run has fewer than {k} segments"))?;
            Ok(Outcome {
                exact: is_exact(puzzle, solution, &last.grid),
                steps: steps.iter().take(k).map(|r| r.steps).sum(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    out.insert(BASELINE.to_string(), base);
    Ok(out)
}
