//! Small packed models for tests (feature `models`): a hidden-16 TRM-MLP Sudoku
//! configuration, random weights and a model that echoes its input.

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
    pack_to_vec(cfg, dtype, &owned).expect("pack_to_vec")
}

/// Random weights (xorshift from `seed`) scaled by `1.7/√cols`; its answers are noise. With
/// `q_bias`, the Q-head bias is `[q_bias, −q_bias]` (so `q_halt` leans one way).
pub fn random_model(cfg: &ModelConfig, seed: u64, dtype: DType, q_bias: Option<f32>) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    pack_with(cfg, dtype, |id, shape| {
        if let (TensorKind::QHeadBias, Some(q)) = (id.kind, q_bias) {
            return vec![q, -q];
        }
        let scale = 1.7 / (shape[1] as f32).sqrt();
        (0..shape[0] * shape[1])
            .map(|_| {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                let v = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
                (v as f32 / (1u64 << 23) as f32 - 1.0) * scale
            })
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
