//! Small packed models for tests (feature `models`): configurations (a hidden-16 TRM-MLP Sudoku
//! one, and tiny ones of either variant), deterministic random weights, a model that echoes its
//! input, and model bytes at a flash-like aligned address.

use trm_edge::format::{
    DType, ModelConfig, PosEncoding, TensorId, TensorKind, Variant, pack_to_vec, required_tensors,
};

/// A TRM-MLP Sudoku configuration with hidden size 16 (4 supervision steps).
pub fn small_config() -> ModelConfig {
    ModelConfig {
        variant: Variant::MlpT,
        pos_encoding: PosEncoding::None,
        hidden: 16,
        mlp_inter: 32,
        mlp_t_inter: 32,
        layers: 2,
        h_cycles: 2,
        l_cycles: 2,
        halt_max_steps: 4,
        seq_len: 81,
        puzzle_emb_len: 1,
        puzzle_emb_ndim: 16,
        num_puzzle_ids: 1,
        vocab: 11,
        num_heads: 2,
        head_dim: 8,
        rms_eps: 1e-5,
        rope_theta: 10000.0,
        expansion: 4.0,
    }
}

/// Packs `f(id, shape)` for every tensor of `cfg`, matrices stored as `dtype`.
pub fn pack_with(
    cfg: &ModelConfig,
    dtype: DType,
    mut f: impl FnMut(TensorId, [usize; 2]) -> Vec<f32>,
) -> Vec<u8> {
    let owned: Vec<(TensorId, [usize; 2], Vec<f32>)> = required_tensors(cfg)
        .map(|id| {
            let shape = id.kind.shape(cfg);
            (id, shape, f(id, shape))
        })
        .collect();
    pack(cfg, &owned, dtype)
}

/// Random weights ([`Rng`] from `seed`) scaled by `1.7/√cols`; its answers are noise. With
/// `q_bias`, the Q-head bias is `[q_bias, −q_bias]` (so `q_halt` leans one way).
pub fn random_model(cfg: &ModelConfig, seed: u64, dtype: DType, q_bias: Option<f32>) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    pack_with(cfg, dtype, |id, shape| {
        if let (TensorKind::QHeadBias, Some(q)) = (id.kind, q_bias) {
            return vec![q, -q];
        }
        let scale = 1.7 / (shape[1] as f32).sqrt();
        (0..shape[0] * shape[1])
            .map(|_| rng.uniform() * scale)
            .collect()
    })
}

/// A model that answers its input: one-hot embeddings, identity LM head, zero blocks (each
/// cell's state stays a positive multiple of its token's one-hot vector). A full grid comes
/// back solved; blanks stay blank. `q_halt` is `q_bias` on every step.
pub fn echo_model(cfg: &ModelConfig, q_bias: f32) -> Vec<u8> {
    pack_with(cfg, DType::F32, |id, shape| {
        let mut v = vec![0f32; shape[0] * shape[1]];
        match id.kind {
            TensorKind::Embed | TensorKind::LmHead => {
                for t in 0..shape[0] {
                    v[t * shape[1] + t] = 1.0;
                }
            }
            TensorKind::QHeadBias => v = vec![q_bias, -q_bias],
            _ => {}
        }
        v
    })
}

/// A small configuration of `variant` with `seq_len` answer tokens and `vocab` tokens.
pub fn tiny_config(variant: Variant, seq_len: usize, vocab: usize) -> ModelConfig {
    let attention = variant == Variant::Attention;
    ModelConfig {
        variant,
        pos_encoding: if attention {
            PosEncoding::Rope
        } else {
            PosEncoding::None
        },
        hidden: 8,
        mlp_inter: 12,
        mlp_t_inter: if attention { 0 } else { 16 },
        layers: 2,
        h_cycles: 2,
        l_cycles: 2,
        halt_max_steps: 4,
        seq_len,
        puzzle_emb_len: 2,
        puzzle_emb_ndim: 12,
        num_puzzle_ids: 2,
        vocab,
        num_heads: 2,
        head_dim: 4,
        rms_eps: 1e-5,
        rope_theta: 10000.0,
        expansion: 4.0,
    }
}

/// Deterministic pseudo-random numbers (xorshift64*), uniform in `[-1, 1)`.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next value in `[-1, 1)`.
    pub fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        v as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// Random values for every tensor of `cfg` (RoPE tables are the real ones).
pub fn random_tensors(cfg: &ModelConfig, seed: u64) -> Vec<(TensorId, [usize; 2], Vec<f32>)> {
    let mut rng = Rng::new(seed);
    required_tensors(cfg)
        .map(|id| {
            let shape = id.kind.shape(cfg);
            let n = shape[0] * shape[1];
            let data = match id.kind {
                TensorKind::RopeCos | TensorKind::RopeSin => {
                    rope_table(cfg, id.kind == TensorKind::RopeCos)
                }
                _ => {
                    let std = 1.0 / (shape[1] as f32).sqrt();
                    (0..n).map(|_| rng.uniform() * std * 1.7).collect()
                }
            };
            (id, shape, data)
        })
        .collect()
}

/// RoPE tables `[S, hd]` as the official code builds them (in f32).
pub fn rope_table(cfg: &ModelConfig, cos: bool) -> Vec<f32> {
    let hd = cfg.head_dim;
    let half = hd / 2;
    let mut out = Vec::new();
    for p in 0..cfg.seq_total() {
        for j in 0..hd {
            let inv = 1.0f32 / cfg.rope_theta.powf((2 * (j % half)) as f32 / hd as f32);
            let f = p as f32 * inv;
            out.push(if cos { f.cos() } else { f.sin() });
        }
    }
    out
}

/// Packs `tensors`, storing every tensor that may be quantised as `dtype`.
pub fn pack(
    cfg: &ModelConfig,
    tensors: &[(TensorId, [usize; 2], Vec<f32>)],
    dtype: DType,
) -> Vec<u8> {
    pack_to_vec(cfg, dtype, tensors).expect("pack_to_vec")
}

/// Copies `bytes` to a 64-byte aligned address (as a model placed in flash would be).
pub fn aligned(bytes: &[u8]) -> AlignedBytes {
    let mut buf = vec![0u8; bytes.len() + 64];
    let offset = buf.as_ptr().align_offset(64);
    buf[offset..offset + bytes.len()].copy_from_slice(bytes);
    AlignedBytes {
        buf,
        offset,
        len: bytes.len(),
    }
}

/// Bytes at a 64-byte aligned address.
pub struct AlignedBytes {
    buf: Vec<u8>,
    offset: usize,
    len: usize,
}

impl AlignedBytes {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.offset..self.offset + self.len]
    }
}
