//! The ACT wrapper (`TinyRecursiveReasoningModel_ACTV1`): carry across supervision steps,
//! reset of halted rows, step counting and the halting rule.

use burn::module::Module;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use rand::Rng;

use super::trm::{InnerCarry, Trm};

/// One batch of puzzles, host side, row-major.
///
/// Tokens: 0 = PAD, 1 = blank, `d + 1` for digit d. Labels: `d + 1` for every cell
/// (−100 = ignored).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Input tokens, `[B·L]`.
    pub inputs: Vec<i32>,
    /// Target tokens, `[B·L]`.
    pub labels: Vec<i32>,
    /// Puzzle identifiers, `[B]`.
    pub puzzle_identifiers: Vec<i32>,
}

impl Batch {
    /// Number of rows B.
    pub fn batch_size(&self) -> usize {
        self.puzzle_identifiers.len()
    }

    /// Tokens per row L.
    pub fn seq_len(&self) -> usize {
        self.inputs.len() / self.batch_size().max(1)
    }

    /// Input tokens as a tensor `[B, L]`.
    pub fn inputs_tensor(&self, device: &Device) -> Tensor<2, Int> {
        let (b, l) = (self.batch_size(), self.seq_len());
        Tensor::from_data(TensorData::new(self.inputs.clone(), [b, l]), device)
    }

    /// Labels as a tensor `[B, L]`.
    pub fn labels_tensor(&self, device: &Device) -> Tensor<2, Int> {
        let (b, l) = (self.batch_size(), self.seq_len());
        Tensor::from_data(TensorData::new(self.labels.clone(), [b, l]), device)
    }

    /// Puzzle identifiers as a tensor `[B]`.
    pub fn ids_tensor(&self, device: &Device) -> Tensor<1, Int> {
        let b = self.batch_size();
        Tensor::from_data(
            TensorData::new(self.puzzle_identifiers.clone(), [b]),
            device,
        )
    }

    /// Rows of `new` where `take_new[b]`, else rows of `current` (official
    /// `torch.where(halted, batch, current_data)`).
    pub fn merge(current: &Batch, new: &Batch, take_new: &[bool]) -> Batch {
        let l = new.seq_len();
        let mut out = current.clone();
        for (b, &t) in take_new.iter().enumerate() {
            if t {
                out.inputs[b * l..(b + 1) * l].copy_from_slice(&new.inputs[b * l..(b + 1) * l]);
                out.labels[b * l..(b + 1) * l].copy_from_slice(&new.labels[b * l..(b + 1) * l]);
                out.puzzle_identifiers[b] = new.puzzle_identifiers[b];
            }
        }
        out
    }
}

/// The ACT carry persisting across calls: latent state, steps, halted flags and the rows
/// currently being worked on.
#[derive(Clone, Debug)]
pub struct Carry {
    /// `(z_H, z_L)`, `[B, S, D]` each.
    pub inner: InnerCarry,
    /// Supervision steps taken by each row, `[B]`.
    pub steps: Vec<u32>,
    /// Whether each row halted after the previous call, `[B]`.
    pub halted: Vec<bool>,
    /// The rows being solved (`current_data`).
    pub current: Batch,
}

/// Train or eval behaviour of the ACT wrapper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Halt when `q_halt > 0` (plus exploration) or at `halt_max_steps`; the puzzle embedding is a
    /// per-row gradient leaf.
    Train,
    /// Halt only at `halt_max_steps` (evaluation always runs N_sup steps).
    Eval,
}

/// Outputs of one ACT call.
#[derive(Clone, Debug)]
pub struct StepOutput {
    /// Token logits `[B, L, V]`.
    pub logits: Tensor<3>,
    /// Halting logits `[B]`.
    pub q_halt: Tensor<1>,
    /// Continue logits `[B]`.
    pub q_continue: Tensor<1>,
    /// Train mode on an autodiff device: the per-row puzzle-embedding leaf
    /// (`puzzle_emb.local_weights`, `[B, puzzle_emb_ndim]`) whose gradient feeds sign-SGD.
    pub puzzle_emb_local: Option<Tensor<2>>,
}

impl Trm {
    /// A fresh carry: every row halted, so the first call resets all rows to `H_init`/`L_init`
    /// and takes every row from its batch.
    pub fn fresh_carry(&self, batch: &Batch) -> Carry {
        let b = batch.batch_size();
        Carry {
            inner: self.initial_carry(b),
            steps: vec![0; b],
            halted: vec![true; b],
            current: batch.clone(),
        }
    }

    /// Resets the rows flagged in `reset` to `(H_init, L_init)`.
    ///
    /// # Shapes
    /// - `carry`: `[B, S, D]` ×2, `reset`: `[B]` → `[B, S, D]` ×2
    pub fn reset_carry(&self, reset: &[bool], carry: InnerCarry) -> InnerCarry {
        if !reset.iter().any(|&r| r) {
            return carry;
        }
        let [b, s, d] = carry.z_h.dims();
        let init = self.initial_carry(b);
        if reset.iter().all(|&r| r) {
            return init;
        }
        let device = carry.z_h.device();
        let mask =
            Tensor::<3, Bool>::from_data(TensorData::new(reset.to_vec(), [b, 1, 1]), &device)
                .expand([b, s, d]);
        InnerCarry {
            z_h: carry.z_h.mask_where(mask.clone(), init.z_h),
            z_l: carry.z_l.mask_where(mask, init.z_l),
        }
    }

    /// One ACT call (one supervision step):
    /// 1. rows halted after the previous call are reset and replaced by the rows of `batch`,
    /// 2. one inner forward ([`Trm::inner_forward`]), `steps += 1`,
    /// 3. `halted = steps >= halt_max_steps`, and in [`Mode::Train`] (when `halt_max_steps > 1`)
    ///    also `| q_halt > 0`, then `& steps >= min_halt_steps` where `min_halt_steps` is
    ///    `U{2..=N_sup}` with probability `halt_exploration_prob`, else 0 (official exploration).
    ///
    /// In eval mode the model runs on the inner backend (no graph). `rng` is only used for
    /// exploration.
    ///
    /// # Shapes
    /// - batch rows `B`; outputs: logits `[B, L, V]`, q `[B]`
    pub fn act_step<R: Rng>(
        &self,
        carry: Carry,
        batch: &Batch,
        mode: Mode,
        rng: &mut R,
    ) -> (Carry, StepOutput) {
        let cfg = &self.config;
        let model = match mode {
            Mode::Train => self.clone(),
            Mode::Eval => self.valid(),
        };
        let device = model.h_init.device();
        let inner = model.reset_carry(&carry.halted, carry.inner);
        let steps: Vec<u32> = carry
            .steps
            .iter()
            .zip(&carry.halted)
            .map(|(&s, &h)| if h { 0 } else { s })
            .collect();
        let current = Batch::merge(&carry.current, batch, &carry.halted);

        let pe = model.puzzle_embedding(current.ids_tensor(&device));
        let (pe, local) = match (mode, pe) {
            (Mode::Train, Some(pe)) if pe.is_autodiff() => {
                let leaf = pe.detach().require_grad();
                (Some(leaf.clone()), Some(leaf))
            }
            (_, pe) => (pe, None),
        };
        let x = model.input_embeddings(current.inputs_tensor(&device), pe);
        let out = model.inner_forward(inner, x);

        let steps: Vec<u32> = steps.iter().map(|s| s + 1).collect();
        let max = cfg.halt_max_steps as u32;
        let mut halted: Vec<bool> = steps.iter().map(|&s| s >= max).collect();
        if mode == Mode::Train && cfg.halt_max_steps > 1 {
            let q: Vec<f32> = out
                .q_halt
                .clone()
                .into_data()
                .try_to_vec::<f32>()
                .expect("q_halt is f32");
            for (b, h) in halted.iter_mut().enumerate() {
                *h |= q[b] > 0.0;
                if cfg.halt_exploration_prob > 0.0 {
                    let explore = rng.random::<f64>() < cfg.halt_exploration_prob;
                    let min_steps = if explore {
                        rng.random_range(2..=max)
                    } else {
                        0
                    };
                    *h &= steps[b] >= min_steps;
                }
            }
        }
        let new_carry = Carry {
            inner: out.carry,
            steps,
            halted,
            current,
        };
        (
            new_carry,
            StepOutput {
                logits: out.logits,
                q_halt: out.q_halt,
                q_continue: out.q_continue,
                puzzle_emb_local: local,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TrmConfig;
    use burn::module::Param;
    use rand::SeedableRng;

    fn setup(exploration: f64, q_bias: f32) -> (Trm, Batch, rand_chacha::ChaCha8Rng) {
        #[allow(deprecated)]
        let dev = Device::ndarray().autodiff();
        let cfg = TrmConfig::new()
            .with_hidden_size(16)
            .with_puzzle_emb_ndim(16)
            .with_puzzle_emb_len(1)
            .with_seq_len(4)
            .with_h_cycles(2)
            .with_l_cycles(1)
            .with_halt_max_steps(3)
            .with_halt_exploration_prob(exploration);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut model = cfg.init(&mut rng, &dev);
        model.q_head.bias = Some(Param::from_tensor(Tensor::full([2], q_bias, &dev)));
        let batch = Batch {
            inputs: vec![1, 2, 3, 4, 5, 6, 7, 8],
            labels: vec![2, 3, 4, 5, 6, 7, 8, 9],
            puzzle_identifiers: vec![0, 0],
        };
        (model, batch, rng)
    }

    #[test]
    fn eval_runs_exactly_halt_max_steps_without_a_graph() {
        let (model, batch, mut rng) = setup(0.0, 5.0);
        let mut carry = model.fresh_carry(&batch);
        for step in 1..=3u32 {
            let (c, out) = model.act_step(carry, &batch, Mode::Eval, &mut rng);
            assert!(!out.logits.is_tracked() && !out.logits.is_autodiff());
            assert!(out.puzzle_emb_local.is_none());
            assert_eq!(c.steps, vec![step; 2]);
            assert_eq!(
                c.halted,
                vec![step == 3; 2],
                "q_halt > 0 is ignored in eval"
            );
            carry = c;
        }
        // The next call resets every row (steps restart at 1).
        let (c, _) = model.act_step(carry, &batch, Mode::Eval, &mut rng);
        assert_eq!(c.steps, vec![1; 2]);
    }

    #[test]
    fn train_halts_on_positive_q_and_exploration_delays_it() {
        let (model, batch, mut rng) = setup(0.0, 5.0);
        let carry = model.fresh_carry(&batch);
        let (c, out) = model.act_step(carry, &batch, Mode::Train, &mut rng);
        assert!(out.logits.is_tracked());
        assert!(out.puzzle_emb_local.is_some());
        assert_eq!(c.halted, vec![true; 2]);

        let (model, batch, mut rng) = setup(0.0, -5.0);
        let (c, _) = model.act_step(model.fresh_carry(&batch), &batch, Mode::Train, &mut rng);
        assert_eq!(c.halted, vec![false; 2]);

        // Exploration with probability 1: at least 2 steps before halting.
        let (model, batch, mut rng) = setup(1.0, 5.0);
        let (c, _) = model.act_step(model.fresh_carry(&batch), &batch, Mode::Train, &mut rng);
        assert_eq!(c.halted, vec![false; 2]);
    }

    #[test]
    fn halted_rows_are_reset_and_refilled() {
        let (model, batch, mut rng) = setup(0.0, -5.0);
        let (mut c, _) = model.act_step(model.fresh_carry(&batch), &batch, Mode::Train, &mut rng);
        c.halted = vec![true, false];
        let new = Batch {
            inputs: vec![9, 9, 9, 9, 8, 8, 8, 8],
            labels: vec![10; 8],
            puzzle_identifiers: vec![0, 0],
        };
        let reset = model.reset_carry(&c.halted, c.inner.clone());
        let init = model.initial_carry(2);
        let row = |t: &Tensor<3>, r: usize| {
            t.clone()
                .narrow(0, r, 1)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        assert_eq!(row(&reset.z_h, 0), row(&init.z_h, 0));
        assert_eq!(row(&reset.z_l, 0), row(&init.z_l, 0));
        assert_eq!(row(&reset.z_h, 1), row(&c.inner.z_h, 1));
        let (c2, _) = model.act_step(c, &new, Mode::Train, &mut rng);
        assert_eq!(c2.steps, vec![1, 2]);
        assert_eq!(c2.current.inputs, vec![9, 9, 9, 9, 5, 6, 7, 8]);
    }
}
