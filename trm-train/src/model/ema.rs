//! Exponential moving average of the weights (official `EMAHelper`, μ = 0.999).

use std::collections::HashMap;

use burn::tensor::Tensor;

use super::trm::Trm;
use super::weights::{NamedParamFn, NamedParamVisit};

/// Shadow copy of every trainable parameter, updated as
/// `shadow = (1 − μ)·param + μ·shadow` after each optimiser step. Buffers (puzzle embedding,
/// `H_init`, `L_init`) are not averaged: [`Ema::apply_to`] keeps the model's own buffers, as the
/// official `ema_copy` does.
#[derive(Clone, Debug)]
pub struct Ema {
    /// μ (official 0.999).
    pub mu: f64,
    /// Shadow values by official parameter name, flattened `[numel]`, inner backend.
    pub shadow: HashMap<String, Tensor<1>>,
}

impl Ema {
    /// Starts the average at the current weights.
    pub fn new(model: &Trm, mu: f64) -> Self {
        struct Init(HashMap<String, Tensor<1>>);
        impl NamedParamVisit for Init {
            fn visit<const D: usize>(&mut self, name: &str, value: &Tensor<D>) {
                let n = value.dims().iter().product::<usize>();
                self.0.insert(
                    name.to_string(),
                    value.clone().without_autodiff().reshape([n]),
                );
            }
        }
        let mut init = Init(HashMap::new());
        model.visit_named_params(&mut init);
        Self { mu, shadow: init.0 }
    }

    /// `shadow = (1 − μ)·param + μ·shadow` for every parameter.
    pub fn update(&mut self, model: &Trm) {
        struct Upd<'a>(&'a mut Ema);
        impl NamedParamVisit for Upd<'_> {
            fn visit<const D: usize>(&mut self, name: &str, value: &Tensor<D>) {
                let n = value.dims().iter().product::<usize>();
                let p = value.clone().without_autodiff().reshape([n]);
                let mu = self.0.mu;
                let s = self.0.shadow.remove(name).unwrap_or_else(|| p.clone());
                let s = p.mul_scalar(1.0 - mu).add(s.mul_scalar(mu));
                self.0.shadow.insert(name.to_string(), s);
            }
        }
        model.visit_named_params(&mut Upd(self));
    }

    /// A copy of `model` whose trainable parameters are the averaged ones.
    pub fn apply_to(&self, model: &Trm) -> Trm {
        struct Put<'a>(&'a Ema);
        impl NamedParamFn for Put<'_> {
            fn apply<const D: usize>(&mut self, name: &str, value: Tensor<D>) -> Tensor<D> {
                match self.0.shadow.get(name) {
                    Some(s) => s.clone().reshape(value.dims()),
                    None => value,
                }
            }
        }
        model.clone().map_named_params(&mut Put(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TrmConfig;
    use crate::model::weights::NamedParamFn;
    use burn::tensor::Device;
    use rand::SeedableRng;

    #[test]
    fn ema_follows_the_official_update() {
        #[allow(deprecated)]
        let dev = Device::ndarray();
        let cfg = TrmConfig::new()
            .with_hidden_size(16)
            .with_puzzle_emb_ndim(16);
        let model = cfg.init(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3), &dev);
        let mut ema = Ema::new(&model, 0.9);
        struct AddOne;
        impl NamedParamFn for AddOne {
            fn apply<const D: usize>(&mut self, _: &str, v: Tensor<D>) -> Tensor<D> {
                v.add_scalar(1.0)
            }
        }
        let moved = model.clone().map_named_params(&mut AddOne);
        ema.update(&moved);
        let avg = ema.apply_to(&moved);
        let (a, m) = (avg.state_dict(), model.state_dict());
        for ((name, got), (_, orig)) in a.iter().zip(&m) {
            let got = got.try_to_vec::<f32>().unwrap();
            let orig = orig.try_to_vec::<f32>().unwrap();
            let buffer = name.ends_with("_init") || name.contains("puzzle_emb");
            for (g, o) in got.iter().zip(&orig) {
                let want = if buffer { *o } else { o + 0.1 };
                assert!((g - want).abs() < 1e-6, "{name}: {g} vs {want}");
            }
        }
    }
}
