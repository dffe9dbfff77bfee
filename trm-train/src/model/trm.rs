//! The TRM network (`TinyRecursiveReasoningModel_ACTV1_Inner`): input embedding, the recursion
//! of one supervision step and the output heads.

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::Rng;

use super::config::{PosEncoding, TrmConfig};
use super::layers::{CastedEmbedding, CastedLinear, ReasoningModule, Rope, trunc_normal};

/// The latent carry `(z_H, z_L)` = (answer y, latent z), both `[B, S, D]`, always detached.
#[derive(Clone, Debug)]
pub struct InnerCarry {
    /// Answer state y, `[B, S, D]`.
    pub z_h: Tensor<3>,
    /// Latent state z, `[B, S, D]`.
    pub z_l: Tensor<3>,
}

/// Result of one inner forward (one supervision step without the ACT bookkeeping).
#[derive(Clone, Debug)]
pub struct InnerOutput {
    /// The new carry (detached: no autodiff association).
    pub carry: InnerCarry,
    /// Token logits `[B, L, V]` (prefix positions dropped).
    pub logits: Tensor<3>,
    /// Halting logit from position 0, `[B]`.
    pub q_halt: Tensor<1>,
    /// Continue logit from position 0, `[B]` (unused by the loss with `no_ACT_continue`).
    pub q_continue: Tensor<1>,
}

/// The TRM network: one reasoning network applied `H_cycles·(L_cycles+1)` times per step.
///
/// Field names follow the official `state_dict` (`model.inner.<field>...`, `l_level` = `L_level`).
/// Trainable parameters are `Param`s; `puzzle_emb`, `h_init`, `l_init` are buffers (plain tensors).
#[derive(Module, Debug)]
pub struct Trm {
    /// Token embedding `[V, D]`, std `1/sqrt(D)`.
    pub embed_tokens: CastedEmbedding,
    /// Learned position embedding `[S, D]` (only with `pos_encodings = learned`).
    pub embed_pos: Option<CastedEmbedding>,
    /// Output head `[V, D]`.
    pub lm_head: CastedLinear,
    /// Q-head `[2, D]` + bias `[2]` (row 0 = halt, row 1 = continue).
    pub q_head: CastedLinear,
    /// The reasoning network (`L_level`).
    pub l_level: ReasoningModule,
    /// Puzzle-embedding table `[num_puzzle_identifiers, puzzle_emb_ndim]` (buffer, sign-SGD).
    pub puzzle_emb: Option<Tensor<2>>,
    /// Initial answer state `[D]` (buffer).
    pub h_init: Tensor<1>,
    /// Initial latent state `[D]` (buffer).
    pub l_init: Tensor<1>,
    /// RoPE tables (only with `pos_encodings = rope`).
    pub rope: Option<Rope>,
    /// The configuration.
    #[module(skip)]
    pub config: TrmConfig,
}

impl TrmConfig {
    /// Builds a model with the official initialisation: truncated LeCun normal weights, token
    /// embedding std `1/sqrt(D)`, Q-head weight 0 and bias −5, `H_init`/`L_init` truncated normal
    /// (std 1), zero puzzle embedding.
    pub fn init<R: Rng>(&self, rng: &mut R, device: &Device) -> Trm {
        self.validate().expect("invalid TrmConfig");
        let d = self.hidden_size;
        let embed_std = 1.0 / (d as f64).sqrt();
        let embed_tokens = CastedEmbedding::init(self.vocab_size, d, embed_std, rng, device);
        let embed_pos = (self.pos_encodings == PosEncoding::Learned)
            .then(|| CastedEmbedding::init(self.total_seq_len(), d, embed_std, rng, device));
        let lm_head = CastedLinear::init(d, self.vocab_size, false, rng, device);
        let q_head = CastedLinear {
            weight: Param::from_tensor(Tensor::zeros([2, d], device)),
            bias: Some(Param::from_tensor(Tensor::full([2], -5.0, device))),
        };
        let l_level = ReasoningModule::init(self, rng, device);
        let h_init = Tensor::from_data(TensorData::new(trunc_normal(d, 1.0, rng), [d]), device);
        let l_init = Tensor::from_data(TensorData::new(trunc_normal(d, 1.0, rng), [d]), device);
        let puzzle_emb = (self.puzzle_emb_ndim > 0)
            .then(|| Tensor::zeros([self.num_puzzle_identifiers, self.puzzle_emb_ndim], device));
        let rope = (self.pos_encodings == PosEncoding::Rope).then(|| {
            Rope::new(
                self.total_seq_len(),
                self.head_dim(),
                self.rope_theta,
                device,
            )
        });
        Trm {
            embed_tokens,
            embed_pos,
            lm_head,
            q_head,
            l_level,
            puzzle_emb,
            h_init,
            l_init,
            rope,
            config: self.clone(),
        }
    }
}

impl Trm {
    /// Looks the puzzle embedding up (eval mode: a plain, non-trainable lookup).
    ///
    /// # Shapes
    /// - `ids`: `[B]` → `[B, puzzle_emb_ndim]`
    pub fn puzzle_embedding(&self, ids: Tensor<1, Int>) -> Option<Tensor<2>> {
        self.puzzle_emb.as_ref().map(|w| w.clone().select(0, ids))
    }

    /// Input embedding x: `sqrt(D) · concat([puzzle prefix, E[inputs]])` (plus the learned
    /// position embedding, scaled by 1/√2, when configured).
    ///
    /// `puzzle_emb` is the per-row puzzle embedding (see [`Trm::puzzle_embedding`]; in training a
    /// leaf tensor whose gradient feeds the sign-SGD optimiser).
    ///
    /// # Shapes
    /// - `inputs`: `[B, L]`, `puzzle_emb`: `[B, puzzle_emb_ndim]` → `[B, S, D]`
    pub fn input_embeddings(
        &self,
        inputs: Tensor<2, Int>,
        puzzle_emb: Option<Tensor<2>>,
    ) -> Tensor<3> {
        let cfg = &self.config;
        let d = cfg.hidden_size;
        let [b, _] = inputs.dims();
        let mut emb = self.embed_tokens.forward(inputs);
        if let Some(pe) = puzzle_emb {
            let p = cfg.puzzle_emb_len();
            let [_, ndim] = pe.dims();
            let pad = p * d - ndim;
            let pe = if pad > 0 {
                let zeros = Tensor::zeros([b, pad], &pe.device());
                Tensor::cat(vec![pe, zeros], 1)
            } else {
                pe
            };
            emb = Tensor::cat(vec![pe.reshape([b, p, d]), emb], 1);
        }
        if let Some(pos) = &self.embed_pos {
            let w = pos.embedding_weight.val();
            let [s, _] = w.dims();
            // The official literal (not exactly 1/sqrt(2)).
            #[allow(clippy::approx_constant)]
            let scale = 0.707106781;
            emb = emb.add(w.reshape([1, s, d])).mul_scalar(scale);
        }
        emb.mul_scalar((d as f64).sqrt())
    }

    /// One call of the reasoning network: `L_level(h, injection)`.
    ///
    /// # Shapes
    /// - `h`, `injection`: `[B, S, D]` → `[B, S, D]`
    pub fn l_level_call(&self, h: Tensor<3>, injection: Tensor<3>) -> Tensor<3> {
        self.l_level.forward(h, injection, self.rope.as_ref())
    }

    /// The initial carry broadcast to a batch: `(H_init, L_init)` at every position.
    ///
    /// # Shapes
    /// - returns `z_H`, `z_L`: `[B, S, D]`
    pub fn initial_carry(&self, batch_size: usize) -> InnerCarry {
        let (s, d) = (self.config.total_seq_len(), self.config.hidden_size);
        let bcast = |t: &Tensor<1>| {
            t.clone()
                .without_autodiff()
                .reshape([1, 1, d])
                .expand([batch_size, s, d])
        };
        InnerCarry {
            z_h: bcast(&self.h_init),
            z_l: bcast(&self.l_init),
        }
    }

    /// One supervision step (official inner forward): `H_cycles − 1` cycles without gradient,
    /// each `L_cycles` times `z_L = f(z_L, z_H + x)` then `z_H = f(z_H, z_L)`, then the last
    /// cycle with gradient (when the model lives on an autodiff device). The heads read the final
    /// z_H: logits from positions `P..S`, Q-logits from position 0.
    ///
    /// The no-grad cycles run on the inner backend ([`Module::valid`]) so no graph is recorded.
    ///
    /// # Shapes
    /// - `carry`: `[B, S, D]` ×2, `x`: `[B, S, D]` (from [`Trm::input_embeddings`])
    /// - returns logits `[B, L, V]`, q_halt/q_continue `[B]`, carry `[B, S, D]` ×2
    pub fn inner_forward(&self, carry: InnerCarry, x: Tensor<3>) -> InnerOutput {
        let cfg = &self.config;
        let mut z_h = carry.z_h.without_autodiff();
        let mut z_l = carry.z_l.without_autodiff();
        if cfg.h_cycles > 1 {
            let ng = self.valid();
            let xg = x.clone().without_autodiff();
            for _ in 0..cfg.h_cycles - 1 {
                for _ in 0..cfg.l_cycles {
                    z_l = ng.l_level_call(z_l, z_h.clone().add(xg.clone()));
                }
                z_h = ng.l_level_call(z_h, z_l.clone());
            }
        }
        for _ in 0..cfg.l_cycles {
            z_l = self.l_level_call(z_l, z_h.clone().add(x.clone()));
        }
        z_h = self.l_level_call(z_h, z_l.clone());
        self.heads(z_h, z_l)
    }

    /// Output heads on the final state.
    ///
    /// # Shapes
    /// - `z_h`, `z_l`: `[B, S, D]` → logits `[B, L, V]`, q `[B]` ×2
    pub fn heads(&self, z_h: Tensor<3>, z_l: Tensor<3>) -> InnerOutput {
        let cfg = &self.config;
        let [b, _, d] = z_h.dims();
        let p = cfg.puzzle_emb_len();
        let logits = self.lm_head.forward(z_h.clone().narrow(1, p, cfg.seq_len));
        let q = self
            .q_head
            .forward(z_h.clone().narrow(1, 0, 1).reshape([b, d]));
        let q_halt = q.clone().narrow(1, 0, 1).reshape([b]);
        let q_continue = q.narrow(1, 1, 1).reshape([b]);
        InnerOutput {
            carry: InnerCarry {
                z_h: z_h.without_autodiff(),
                z_l: z_l.without_autodiff(),
            },
            logits,
            q_halt,
            q_continue,
        }
    }
}
