//! Optimisers of the official recipe: AdamATan2 (a = b = 1) on every parameter, sign-SGD on the
//! puzzle embedding, and the warm-up + cosine learning-rate schedule.

use std::collections::HashMap;

use burn::config::Config;
use burn::tensor::{Gradients, Tensor, TensorData};

use super::trm::Trm;
use super::weights::{NamedParamFn, NamedParamVisit};

/// Hyper-parameters of AdamATan2 (`adam-atan2==0.0.3`, imoneoi).
#[derive(Config, Debug)]
pub struct AdamAtan2Config {
    /// Decoupled weight decay (applied to every parameter, biases and embeddings included).
    #[config(default = 1.0)]
    pub weight_decay: f64,
    /// β1.
    #[config(default = 0.9)]
    pub beta1: f64,
    /// β2.
    #[config(default = 0.95)]
    pub beta2: f64,
}

/// One AdamATan2 update of a single tensor (f32, no autodiff), with `t` the new step count:
///
/// ```text
/// p *= 1 − lr·wd
/// m  = m + (1 − β1)(g − m)
/// v  = v + (1 − β2)(g² − v)
/// p −= lr / (1 − β1^t) · atan2(m, sqrt(v) / sqrt(1 − β2^t))
/// ```
///
/// # Shapes
/// - `p`, `g`, `m`, `v`: same shape → `(p, m, v)` same shape
pub fn adam_atan2_update<const D: usize>(
    p: Tensor<D>,
    g: Tensor<D>,
    m: Tensor<D>,
    v: Tensor<D>,
    t: u64,
    lr: f64,
    cfg: &AdamAtan2Config,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let bc1 = 1.0 - cfg.beta1.powi(t as i32);
    let bc2_sqrt = (1.0 - cfg.beta2.powi(t as i32)).sqrt();
    let p = p.mul_scalar(1.0 - lr * cfg.weight_decay);
    let m = m.clone().add(g.clone().sub(m).mul_scalar(1.0 - cfg.beta1));
    let v = v.clone().add(g.square().sub(v).mul_scalar(1.0 - cfg.beta2));
    let upd = m
        .clone()
        .atan2(v.clone().sqrt().div_scalar(bc2_sqrt))
        .mul_scalar(lr / bc1);
    (p.sub(upd), m, v)
}

/// Where the gradients of an optimiser step come from.
pub enum GradSource<'a> {
    /// From `loss.backward()` (the model's parameters must be the graph's leaves).
    Autodiff(&'a Gradients),
    /// By official parameter name (e.g. recorded reference gradients).
    Named(&'a HashMap<String, TensorData>),
}

/// AdamATan2 with its state (`t` and, per official parameter name, `m` and `v`).
#[derive(Clone, Debug)]
pub struct AdamAtan2 {
    /// Hyper-parameters.
    pub config: AdamAtan2Config,
    /// Steps taken so far.
    pub t: u64,
    /// `(exp_avg, exp_avg_sq)` per official parameter name (inner backend, same shape as the
    /// parameter, stored flattened `[numel]`).
    pub state: HashMap<String, (Tensor<1>, Tensor<1>)>,
}

impl AdamAtan2 {
    /// A fresh optimiser (t = 0, zero moments created lazily).
    pub fn new(config: AdamAtan2Config) -> Self {
        Self {
            config,
            t: 0,
            state: HashMap::new(),
        }
    }

    /// One step at learning rate `lr` over every trainable parameter of `model`.
    ///
    /// A parameter without a gradient is updated with g = 0 (PyTorch would skip it; every TRM
    /// parameter is reached by the graph, so this does not happen in practice).
    pub fn step(&mut self, lr: f64, model: Trm, grads: GradSource<'_>) -> Trm {
        self.t += 1;
        struct Step<'a, 'g> {
            opt: &'a mut AdamAtan2,
            grads: GradSource<'g>,
            lr: f64,
        }
        impl NamedParamFn for Step<'_, '_> {
            fn apply<const D: usize>(&mut self, name: &str, value: Tensor<D>) -> Tensor<D> {
                let dims = value.dims();
                let n: usize = dims.iter().product();
                let device = value.device().without_autodiff();
                let g: Tensor<D> = match &self.grads {
                    GradSource::Autodiff(grads) => match value.grad(grads) {
                        Some(g) => g.without_autodiff(),
                        None => Tensor::zeros(dims, &device),
                    },
                    GradSource::Named(map) => match map.get(name) {
                        Some(d) => {
                            assert_eq!(d.shape().as_slice(), &dims, "gradient {name}: shape");
                            Tensor::from_data(d.clone().convert::<f32>(), &device)
                        }
                        None => Tensor::zeros(dims, &device),
                    },
                };
                let (m, v) =
                    self.opt.state.get(name).cloned().unwrap_or_else(|| {
                        (Tensor::zeros([n], &device), Tensor::zeros([n], &device))
                    });
                let (p, m, v) = adam_atan2_update(
                    value.without_autodiff(),
                    g,
                    m.reshape(dims),
                    v.reshape(dims),
                    self.opt.t,
                    self.lr,
                    &self.opt.config,
                );
                self.opt
                    .state
                    .insert(name.to_string(), (m.reshape([n]), v.reshape([n])));
                p
            }
        }
        let mut step = Step {
            opt: self,
            grads,
            lr,
        };
        model.map_named_params(&mut step)
    }
}

/// Gradients of every trainable parameter by official name (f32 host data).
pub fn named_grads(model: &Trm, grads: &Gradients) -> HashMap<String, TensorData> {
    struct Collect<'a>(&'a Gradients, HashMap<String, TensorData>);
    impl NamedParamVisit for Collect<'_> {
        fn visit<const D: usize>(&mut self, name: &str, value: &Tensor<D>) {
            if let Some(g) = value.grad(self.0) {
                self.1.insert(name.to_string(), g.into_data());
            }
        }
    }
    let mut c = Collect(grads, HashMap::new());
    model.visit_named_params(&mut c);
    c.1
}

/// Hyper-parameters of the sign-SGD puzzle-embedding optimiser
/// (`CastedSparseEmbeddingSignSGD_Distributed`).
#[derive(Config, Debug)]
pub struct SignSgdConfig {
    /// Decoupled weight decay of the touched rows.
    #[config(default = 1.0)]
    pub weight_decay: f64,
}

/// One sign-SGD step on the puzzle-embedding table: `G[id] = Σ_{b: ids_b = id} grad[b]`, then
/// `w[id] ← w[id]·(1 − lr·wd) − lr·sign(G[id])` for the ids present in the batch only.
///
/// Runs on the host (the table is small for Sudoku: one row).
///
/// # Shapes
/// - `weights`: `[N, E]`, `local_grad`: `[B, E]`, `ids`: `[B]` → `[N, E]`
pub fn sign_sgd_step(
    weights: Tensor<2>,
    local_grad: Tensor<2>,
    ids: &[i32],
    lr: f64,
    cfg: &SignSgdConfig,
) -> Tensor<2> {
    let device = weights.device();
    let [n, e] = weights.dims();
    let mut w: Vec<f32> = weights
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 weights");
    let g: Vec<f32> = local_grad
        .without_autodiff()
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 grads");
    let mut acc: Vec<(usize, Vec<f32>)> = Vec::new();
    for (b, &id) in ids.iter().enumerate() {
        let id = id as usize;
        assert!(id < n, "puzzle id {id} out of range {n}");
        let row = &g[b * e..(b + 1) * e];
        match acc.iter_mut().find(|(i, _)| *i == id) {
            Some((_, sum)) => sum.iter_mut().zip(row).for_each(|(s, x)| *s += x),
            None => acc.push((id, row.to_vec())),
        }
    }
    let decay = (1.0 - lr * cfg.weight_decay) as f32;
    let lr = lr as f32;
    for (id, sum) in acc {
        for (wv, gv) in w[id * e..(id + 1) * e].iter_mut().zip(sum) {
            let sign = if gv > 0.0 {
                1.0
            } else if gv < 0.0 {
                -1.0
            } else {
                0.0
            };
            *wv = *wv * decay + (-lr) * sign;
        }
    }
    Tensor::from_data(TensorData::new(w, [n, e]), &device)
}

/// The official learning-rate schedule (`cosine_schedule_with_warmup_lr_lambda`): linear warm-up
/// from 0, then cosine from `base_lr` down to `min_ratio · base_lr` (`min_ratio = 1` gives a
/// constant rate, as in the Sudoku recipe).
///
/// `decay_start` holds the rate at `base_lr` until that step and runs the cosine from there to
/// `total_steps` (warm-up, stable, decay): a constant-rate run can be forked and annealed at any
/// step. At 0 (or any step inside the warm-up) the cosine starts right after the warm-up, which
/// is the official schedule.
#[derive(Config, Debug)]
pub struct LrSchedule {
    /// Peak learning rate.
    pub base_lr: f64,
    /// Warm-up steps (official 2000).
    #[config(default = 2000)]
    pub warmup_steps: u64,
    /// Total optimiser steps.
    pub total_steps: u64,
    /// Final ratio of the cosine (`lr_min_ratio`).
    #[config(default = 1.0)]
    pub min_ratio: f64,
    /// First step of the cosine (`lr_decay_start`; 0 = the end of the warm-up).
    #[config(default = 0)]
    pub decay_start: u64,
}

impl LrSchedule {
    /// Learning rate of optimiser step `step` (the official `train_state.step`, 1 for the first
    /// batch).
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.base_lr * step as f64 / self.warmup_steps.max(1) as f64;
        }
        let start = self.decay_start.max(self.warmup_steps);
        if step < start {
            return self.base_lr;
        }
        let progress = ((step - start) as f64
            / (self.total_steps.saturating_sub(start)).max(1) as f64)
            .min(1.0);
        let cos = 0.5 * (1.0 + (std::f64::consts::PI * 0.5 * 2.0 * progress).cos());
        self.base_lr * (self.min_ratio + ((1.0 - self.min_ratio) * cos).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn schedule_warms_up_then_follows_cosine() {
        let s = LrSchedule::new(1e-4, 100)
            .with_warmup_steps(10)
            .with_min_ratio(0.0);
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(5) - 0.5e-4).abs() < 1e-12);
        assert!((s.lr(10) - 1e-4).abs() < 1e-12);
        assert!((s.lr(55) - 0.5e-4).abs() < 1e-12);
        assert!(s.lr(100).abs() < 1e-12);
        let c = LrSchedule::new(1e-4, 100).with_warmup_steps(10);
        assert_eq!(c.lr(70), 1e-4);
    }

    #[test]
    fn decay_start_holds_the_rate_then_anneals_to_the_end() {
        let s = LrSchedule::new(1e-4, 100)
            .with_warmup_steps(10)
            .with_min_ratio(0.0)
            .with_decay_start(60);
        assert!((s.lr(5) - 0.5e-4).abs() < 1e-12);
        assert_eq!(s.lr(10), 1e-4);
        assert_eq!(s.lr(59), 1e-4);
        assert_eq!(s.lr(60), 1e-4);
        assert!((s.lr(80) - 0.5e-4).abs() < 1e-12);
        assert!(s.lr(100).abs() < 1e-12);
        assert!(s.lr(120).abs() < 1e-12);
        // Inside the warm-up it is the official schedule.
        let o = LrSchedule::new(1e-4, 100)
            .with_warmup_steps(10)
            .with_min_ratio(0.0);
        for step in 0..=100 {
            assert_eq!(o.clone().with_decay_start(4).lr(step), o.lr(step));
        }
    }

    #[allow(deprecated)]
    fn cpu() -> Device {
        Device::ndarray()
    }

    #[test]
    fn first_adam_atan2_step_is_a_scaled_sign() {
        let dev = cpu();
        let p = Tensor::<1>::from_data([1.0f32, 1.0, 1.0], &dev);
        let g = Tensor::<1>::from_data([3.0f32, -1e-6, 0.0], &dev);
        let z = Tensor::<1>::zeros([3], &dev);
        let cfg = AdamAtan2Config::new();
        let (p, m, _) = adam_atan2_update(p, g, z.clone(), z, 1, 1e-4, &cfg);
        let p = p.into_data().try_to_vec::<f32>().unwrap();
        let decayed = 1.0 - 1e-4;
        let step = 1e-4 * (0.1f64).atan() / 0.1;
        assert!((p[0] as f64 - (decayed - step)).abs() < 1e-7);
        assert!((p[1] as f64 - (decayed + step)).abs() < 1e-7);
        assert!((p[2] as f64 - decayed).abs() < 1e-7);
        let m = m.into_data().try_to_vec::<f32>().unwrap();
        assert!((m[0] - 0.3).abs() < 1e-6);
    }

    #[test]
    fn sign_sgd_sums_duplicate_ids_and_skips_absent_rows() {
        let dev = cpu();
        let w = Tensor::<2>::from_data([[1.0f32, 1.0], [2.0, 2.0], [3.0, 3.0]], &dev);
        let g = Tensor::<2>::from_data([[1.0f32, -1.0], [-3.0, 0.5], [0.0, 0.0]], &dev);
        let cfg = SignSgdConfig::new().with_weight_decay(1.0);
        let out = sign_sgd_step(w, g, &[0, 0, 2], 0.1, &cfg);
        let out = out.into_data().try_to_vec::<f32>().unwrap();
        // Row 0: G = [-2, -0.5] → w·0.9 + 0.1; row 1 untouched; row 2: G = 0 → decay only.
        let want = [1.0, 1.0, 2.0, 2.0, 2.7, 2.7];
        for (o, w) in out.iter().zip(want) {
            assert!((o - w).abs() < 1e-6, "{out:?}");
        }
    }
}
