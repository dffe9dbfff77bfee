//! Evaluation as a function of the supervision-step budget: run every puzzle for up to
//! `max_steps` ACT steps (past N_sup when asked) and record, after each step, what the answer
//! would be if the run stopped there; also the answer of the Q-halting policy (stop at the
//! first step with `q_halt > 0`).

use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use trm_edge::sudoku::{CELLS, Grid, encode};

use crate::model::{Batch, IGNORE_LABEL_ID, Mode, Trm};

/// Accuracy after exactly `steps` supervision steps (the `full` policy with that budget).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetRow {
    /// Supervision steps run (1-based).
    pub steps: usize,
    /// Fraction of puzzles whose predicted grid equals the solution.
    pub exact_accuracy: f64,
    /// Fraction of cells predicted correctly (mean over puzzles).
    pub cell_accuracy: f64,
    /// Fraction of puzzles whose Q-head says halt (`q_halt > 0`) at this step.
    pub q_halt_rate: f64,
}

/// The whole evaluation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetReport {
    /// Puzzles evaluated.
    pub puzzles: usize,
    /// The model's N_sup (`halt_max_steps`).
    pub n_sup: usize,
    /// One row per budget `1..=max_steps`.
    pub rows: Vec<BudgetRow>,
    /// Exact accuracy when each puzzle stops at its first `q_halt > 0` (else at `max_steps`).
    pub q_policy_exact_accuracy: f64,
    /// Mean step at which the Q-halting policy stops.
    pub mean_halt_step: f64,
    /// Fraction of puzzles whose `q_halt ≥ 0` at the last step matches "solved" (as training).
    pub q_halt_accuracy: f64,
    /// Seconds the evaluation took.
    pub seconds: f64,
}

impl BudgetReport {
    /// The row of the model's own budget N_sup (or the last one when fewer steps ran).
    pub fn at_n_sup(&self) -> Option<&BudgetRow> {
        self.rows
            .iter()
            .find(|r| r.steps == self.n_sup)
            .or(self.rows.last())
    }
}

/// A batch of puzzles with their solutions, tokenised as in training (puzzle id 0).
pub fn batch_of(pairs: &[(Grid, Grid)]) -> Batch {
    let mut inputs = Vec::with_capacity(pairs.len() * CELLS);
    let mut labels = Vec::with_capacity(pairs.len() * CELLS);
    for (p, s) in pairs {
        inputs.extend(encode(p).iter().map(|&t| t as i32));
        labels.extend(encode(s).iter().map(|&t| t as i32));
    }
    Batch {
        inputs,
        labels,
        puzzle_identifiers: vec![0; pairs.len()],
    }
}

#[derive(Clone, Copy, Default)]
struct Sums {
    exact: usize,
    cells: f64,
    q_halt: usize,
}

/// Evaluates `model` on `batches` for budgets `1..=max_steps`; `progress` is called with the
/// number of puzzles done after each batch.
pub fn evaluate_budgets(
    model: &Trm,
    batches: &[Batch],
    max_steps: usize,
    progress: &mut dyn FnMut(usize),
) -> BudgetReport {
    let start = Instant::now();
    let max_steps = max_steps.max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut sums = vec![Sums::default(); max_steps];
    let (mut puzzles, mut q_exact, mut halt_steps, mut q_ok) = (0usize, 0usize, 0usize, 0usize);
    for batch in batches {
        let b = batch.batch_size();
        let mut carry = model.fresh_carry(batch);
        let mut first_halt: Vec<Option<bool>> = vec![None; b];
        let mut halt_at = vec![max_steps; b];
        let mut last = (vec![false; b], vec![0f32; b]);
        for (s, sum) in sums.iter_mut().enumerate() {
            if s > 0 {
                // Keep every row going past N_sup: never reset the carry.
                carry.halted.iter_mut().for_each(|h| *h = false);
            }
            let (c, out) = model.act_step(carry, batch, Mode::Eval, &mut rng);
            carry = c;
            let logits = to_vec(out.logits.into_data());
            let q = to_vec(out.q_halt.into_data());
            let (exact, cells) = score(&logits, &batch.labels, b);
            for r in 0..b {
                sum.exact += exact[r] as usize;
                sum.cells += cells[r];
                sum.q_halt += (q[r] > 0.0) as usize;
                if first_halt[r].is_none() && q[r] > 0.0 {
                    first_halt[r] = Some(exact[r]);
                    halt_at[r] = s + 1;
                }
            }
            last = (exact, q);
        }
        for r in 0..b {
            q_exact += first_halt[r].unwrap_or(last.0[r]) as usize;
            halt_steps += halt_at[r];
            q_ok += ((last.1[r] >= 0.0) == last.0[r]) as usize;
        }
        puzzles += b;
        progress(puzzles);
    }
    let div = puzzles.max(1) as f64;
    BudgetReport {
        puzzles,
        n_sup: model.config.halt_max_steps,
        rows: sums
            .iter()
            .enumerate()
            .map(|(s, m)| BudgetRow {
                steps: s + 1,
                exact_accuracy: m.exact as f64 / div,
                cell_accuracy: m.cells / div,
                q_halt_rate: m.q_halt as f64 / div,
            })
            .collect(),
        q_policy_exact_accuracy: q_exact as f64 / div,
        mean_halt_step: halt_steps as f64 / div,
        q_halt_accuracy: q_ok as f64 / div,
        seconds: start.elapsed().as_secs_f64(),
    }
}

fn to_vec(data: burn::tensor::TensorData) -> Vec<f32> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .expect("converted to f32")
}

/// Per row: solved exactly, and the fraction of labelled cells right (argmax, first maximum).
fn score(logits: &[f32], labels: &[i32], b: usize) -> (Vec<bool>, Vec<f64>) {
    let l = labels.len() / b.max(1);
    let v = logits.len() / labels.len().max(1);
    let mut exact = vec![true; b];
    let mut cells = vec![0.0; b];
    for r in 0..b {
        let (mut right, mut counted) = (0usize, 0usize);
        for i in 0..l {
            let lab = labels[r * l + i];
            if lab == IGNORE_LABEL_ID {
                continue;
            }
            let row = &logits[(r * l + i) * v..(r * l + i + 1) * v];
            let best = (0..v).fold(0, |best, k| if row[k] > row[best] { k } else { best });
            counted += 1;
            if best as i32 == lab {
                right += 1;
            } else {
                exact[r] = false;
            }
        }
        cells[r] = right as f64 / counted.max(1) as f64;
    }
    (exact, cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_uses_first_maximum_and_skips_ignored_labels() {
        // 2 rows × 2 cells × 3 classes.
        let logits = [
            0.0, 1.0, 1.0, /* → 1 */ 2.0, 0.0, 0.0, /* → 0 */
            0.0, 0.0, 3.0, /* → 2 */ 5.0, 0.0, 0.0, /* → 0, ignored */
        ];
        let labels = [1, 1, 2, IGNORE_LABEL_ID];
        let (exact, cells) = score(&logits, &labels, 2);
        assert_eq!(exact, vec![false, true]);
        assert_eq!(cells, vec![0.5, 1.0]);
    }
}
