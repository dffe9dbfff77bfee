//! The model description stored in the header of a packed file.

use super::error::FormatError;

/// Which token mixer the blocks use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// TRM-MLP: a SwiGLU over the sequence axis (`mlp_t`), no attention.
    MlpT,
    /// TRM-Att: non-causal multi-head self-attention.
    Attention,
}

/// Positional encoding of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PosEncoding {
    /// Nothing is added (TRM-MLP, or attention without positions).
    None,
    /// Rotary embedding on q and k inside attention (tables stored in the file).
    Rope,
}

/// Upper bound on every size in the header; keeps all products far from `u32`/`usize` overflow
/// checks failing in surprising places and rejects garbage early.
pub const MAX_DIM: usize = 1 << 16;
/// Upper bound on the number of blocks, recursion counts and supervision steps.
pub const MAX_COUNT: usize = 1 << 10;

/// The configuration of a packed Tiny Recursive Model (official names in parentheses).
///
/// Notation used in shape docs across the crate: `D` hidden size, `L` answer length (81),
/// `P` puzzle-embedding prefix length, `S = P + L`, `V` vocabulary, `I` channel-MLP inner
/// width, `It` token-mixing inner width, `nh` heads, `hd` head dimension.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelConfig {
    /// Token mixer of the blocks (`mlp_t`).
    pub variant: Variant,
    /// Positional encoding (`pos_encodings`); `Rope` only with [`Variant::Attention`].
    pub pos_encoding: PosEncoding,
    /// Hidden size `D` (`hidden_size`).
    pub hidden: usize,
    /// Inner width `I` of the channel SwiGLU (rows of `gate_up_proj` = `2·I`), exact as trained.
    pub mlp_inter: usize,
    /// Inner width `It` of the token-mixing SwiGLU; 0 for [`Variant::Attention`].
    pub mlp_t_inter: usize,
    /// Blocks of the single reasoning network (`L_layers`).
    pub layers: usize,
    /// `T`: answer updates per supervision step (`H_cycles`).
    pub h_cycles: usize,
    /// `n`: latent updates per answer update (`L_cycles`).
    pub l_cycles: usize,
    /// `N_sup`: supervision steps of an official evaluation (`halt_max_steps`).
    pub halt_max_steps: usize,
    /// Answer tokens `L` (`seq_len`, 81 for Sudoku).
    pub seq_len: usize,
    /// Puzzle-embedding prefix positions `P` (`puzzle_emb_len`, resolved, may be 0).
    pub puzzle_emb_len: usize,
    /// Width of one puzzle-embedding row (`puzzle_emb_ndim`, `<= P·D`; 0 = no table).
    pub puzzle_emb_ndim: usize,
    /// Rows of the puzzle-embedding table (`num_puzzle_identifiers`).
    pub num_puzzle_ids: usize,
    /// Vocabulary `V` (`vocab_size`, 11 for Sudoku).
    pub vocab: usize,
    /// Attention heads `nh` (`num_heads`; informational for [`Variant::MlpT`]).
    pub num_heads: usize,
    /// Head dimension `hd` (`D / nh`; informational for [`Variant::MlpT`]).
    pub head_dim: usize,
    /// RMSNorm epsilon (`rms_norm_eps`), added to the mean square.
    pub rms_eps: f32,
    /// RoPE base (`rope_theta`); informational (the tables are stored).
    pub rope_theta: f32,
    /// SwiGLU expansion (`expansion`); informational (the inner widths are stored).
    pub expansion: f32,
}

impl ModelConfig {
    /// Sequence length inside the model, `S = P + L`.
    pub const fn seq_total(&self) -> usize {
        self.puzzle_emb_len + self.seq_len
    }

    /// Network calls of one supervision step, `T·(n + 1)`.
    pub const fn calls_per_step(&self) -> usize {
        self.h_cycles * (self.l_cycles + 1)
    }

    /// `√D` as f32 (rounded from f64, as PyTorch rounds the Python float): the input scale.
    pub fn embed_scale(&self) -> f32 {
        libm::sqrt(self.hidden as f64) as f32
    }

    /// Checks every invariant the runtime relies on, with overflow-free size arithmetic.
    pub fn validate(&self) -> Result<(), FormatError> {
        let bad = |what: &'static str| Err(FormatError::BadConfig { what });
        let dims = [
            self.hidden,
            self.mlp_inter,
            self.mlp_t_inter,
            self.seq_len,
            self.puzzle_emb_len,
            self.num_puzzle_ids,
            self.vocab,
            self.num_heads,
            self.head_dim,
        ];
        if dims.iter().any(|&d| d > MAX_DIM) {
            return bad("a size exceeds 65536");
        }
        let counts = [
            self.layers,
            self.h_cycles,
            self.l_cycles,
            self.halt_max_steps,
        ];
        if counts.iter().any(|&c| c > MAX_COUNT) {
            return bad("a count exceeds 1024");
        }
        if self.hidden == 0 || self.mlp_inter == 0 || self.seq_len == 0 || self.vocab == 0 {
            return bad("hidden, mlp_inter, seq_len and vocab must be > 0");
        }
        if self.layers == 0 || self.h_cycles == 0 || self.halt_max_steps == 0 {
            return bad("layers, H_cycles and halt_max_steps must be > 0");
        }
        if self.seq_total() > MAX_DIM {
            return bad("P + L exceeds 65536");
        }
        if self.puzzle_emb_ndim > self.puzzle_emb_len.saturating_mul(self.hidden) {
            return bad("puzzle_emb_ndim exceeds puzzle_emb_len * hidden");
        }
        if self.puzzle_emb_ndim > 0 && self.num_puzzle_ids == 0 {
            return bad("a puzzle embedding needs at least one puzzle id");
        }
        if !(self.rms_eps.is_finite() && self.rms_eps >= 0.0) {
            return bad("rms_eps must be finite and >= 0");
        }
        match self.variant {
            Variant::MlpT => {
                if self.mlp_t_inter == 0 {
                    return bad("mlp_t needs mlp_t_inter > 0");
                }
                if self.pos_encoding != PosEncoding::None {
                    return bad("mlp_t takes no positional encoding");
                }
            }
            Variant::Attention => {
                if self.mlp_t_inter != 0 {
                    return bad("attention models have mlp_t_inter = 0");
                }
                if self.num_heads == 0
                    || self.num_heads.checked_mul(self.head_dim) != Some(self.hidden)
                {
                    return bad("num_heads * head_dim must equal hidden");
                }
                if self.pos_encoding == PosEncoding::Rope && !self.head_dim.is_multiple_of(2) {
                    return bad("RoPE needs an even head_dim");
                }
            }
        }
        Ok(())
    }
}

/// Inner width of the official SwiGLU for input width `n`:
/// `ceil(round_half_even(expansion · n · 2 / 3) / 256) · 256` (`models/layers.py`).
///
/// For the exporter; the packed file stores the exact widths. Examples: `(4, 64) → 256`,
/// `(4, 97) → 512`, `(4, 512) → 1536`.
pub fn swiglu_inter(expansion: f64, n: usize) -> usize {
    let raw = libm::rint(expansion * n as f64 * 2.0 / 3.0);
    let raw = if raw.is_finite() && raw > 0.0 {
        raw as usize
    } else {
        0
    };
    raw.div_ceil(256).saturating_mul(256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inter_sizes_match_the_official_rounding() {
        assert_eq!(swiglu_inter(4.0, 64), 256);
        assert_eq!(swiglu_inter(4.0, 97), 512);
        assert_eq!(swiglu_inter(4.0, 512), 1536);
        assert_eq!(swiglu_inter(4.0, 128), 512);
    }
}
