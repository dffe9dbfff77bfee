//! Tensor identities, element types and the shapes a configuration implies.

use core::fmt;

use super::config::{ModelConfig, PosEncoding, Variant};

/// Element type of a stored tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// IEEE-754 binary32, little-endian.
    F32,
    /// IEEE-754 binary16, little-endian (converted from f32 with round-to-nearest-even).
    F16,
    /// Symmetric int8 per output channel (row): `w[r, c] ≈ scale[r] · q[r, c]`, `q ∈ [-127, 127]`,
    /// with one f32 scale per row stored in a separate aligned block.
    I8,
}

impl DType {
    /// Code in the tensor table.
    pub const fn code(self) -> u8 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::I8 => 2,
        }
    }

    /// The dtype of a table code.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::F32),
            1 => Some(Self::F16),
            2 => Some(Self::I8),
            _ => None,
        }
    }

    /// Bytes per element (scales of int8 not included).
    pub const fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
            Self::I8 => 1,
        }
    }
}

/// What a tensor is; the code is stored in the table (`u16`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TensorKind {
    /// Token embedding `[V, D]` (`embed_tokens.embedding_weight`).
    Embed,
    /// Output head `[V, D]` (`lm_head.weight`).
    LmHead,
    /// Q-head weight `[2, D]`, row 0 = halt, row 1 = continue (`q_head.weight`).
    QHeadWeight,
    /// Q-head bias `[2]` (`q_head.bias`), f32 only.
    QHeadBias,
    /// Puzzle-embedding table `[num_puzzle_ids, puzzle_emb_ndim]` (`puzzle_emb.weights`).
    PuzzleEmb,
    /// Initial answer state `[D]` (`H_init`), f32 only.
    HInit,
    /// Initial latent state `[D]` (`L_init`), f32 only.
    LInit,
    /// RoPE cosine table `[S, hd]`, f32 only (the non-persistent `rotary_emb.cos_cached`).
    RopeCos,
    /// RoPE sine table `[S, hd]`, f32 only.
    RopeSin,
    /// Per block: channel SwiGLU fused gate/up `[2·I, D]` (rows `0..I` gate, `I..2I` up).
    MlpGateUp,
    /// Per block: channel SwiGLU down projection `[D, I]`.
    MlpDown,
    /// Per block: token-mixing SwiGLU fused gate/up `[2·It, S]`.
    MlpTGateUp,
    /// Per block: token-mixing SwiGLU down projection `[S, It]`.
    MlpTDown,
    /// Per block: attention `qkv_proj` `[3·D, D]` (outputs `[q heads | k heads | v heads]`).
    AttnQkv,
    /// Per block: attention `o_proj` `[D, D]`.
    AttnOut,
}

impl TensorKind {
    /// Every kind, in code order.
    pub const ALL: [TensorKind; 15] = [
        Self::Embed,
        Self::LmHead,
        Self::QHeadWeight,
        Self::QHeadBias,
        Self::PuzzleEmb,
        Self::HInit,
        Self::LInit,
        Self::RopeCos,
        Self::RopeSin,
        Self::MlpGateUp,
        Self::MlpDown,
        Self::MlpTGateUp,
        Self::MlpTDown,
        Self::AttnQkv,
        Self::AttnOut,
    ];

    /// Code in the tensor table.
    pub const fn code(self) -> u16 {
        match self {
            Self::Embed => 1,
            Self::LmHead => 2,
            Self::QHeadWeight => 3,
            Self::QHeadBias => 4,
            Self::PuzzleEmb => 5,
            Self::HInit => 6,
            Self::LInit => 7,
            Self::RopeCos => 8,
            Self::RopeSin => 9,
            Self::MlpGateUp => 16,
            Self::MlpDown => 17,
            Self::MlpTGateUp => 18,
            Self::MlpTDown => 19,
            Self::AttnQkv => 20,
            Self::AttnOut => 21,
        }
    }

    /// The kind of a table code.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.code() == code)
    }

    /// Whether one tensor of this kind exists per block (`layer` = block index).
    pub const fn per_layer(self) -> bool {
        self.code() >= 16
    }

    /// Whether the tensor is a vector (rank 1).
    pub const fn is_vector(self) -> bool {
        matches!(self, Self::QHeadBias | Self::HInit | Self::LInit)
    }

    /// Whether the tensor must be stored as f32 (vectors and RoPE tables).
    pub const fn f32_only(self) -> bool {
        self.is_vector() || matches!(self, Self::RopeCos | Self::RopeSin)
    }

    /// Whether a model with `cfg` has this tensor.
    pub const fn used_by(self, cfg: &ModelConfig) -> bool {
        let mlp_t = matches!(cfg.variant, Variant::MlpT);
        let rope = matches!(cfg.pos_encoding, PosEncoding::Rope);
        match self {
            Self::PuzzleEmb => cfg.puzzle_emb_ndim > 0,
            Self::RopeCos | Self::RopeSin => rope,
            Self::MlpTGateUp | Self::MlpTDown => mlp_t,
            Self::AttnQkv | Self::AttnOut => !mlp_t,
            _ => true,
        }
    }

    /// `[rows, cols]` of this tensor under `cfg` (`cols = 1` for vectors).
    pub const fn shape(self, cfg: &ModelConfig) -> [usize; 2] {
        let d = cfg.hidden;
        match self {
            Self::Embed | Self::LmHead => [cfg.vocab, d],
            Self::QHeadWeight => [2, d],
            Self::QHeadBias => [2, 1],
            Self::PuzzleEmb => [cfg.num_puzzle_ids, cfg.puzzle_emb_ndim],
            Self::HInit | Self::LInit => [d, 1],
            Self::RopeCos | Self::RopeSin => [cfg.seq_total(), cfg.head_dim],
            Self::MlpGateUp => [2 * cfg.mlp_inter, d],
            Self::MlpDown => [d, cfg.mlp_inter],
            Self::MlpTGateUp => [2 * cfg.mlp_t_inter, cfg.seq_total()],
            Self::MlpTDown => [cfg.seq_total(), cfg.mlp_t_inter],
            Self::AttnQkv => [3 * d, d],
            Self::AttnOut => [d, d],
        }
    }

    /// The official state-dict name after `model.inner.` (per-layer names after
    /// `L_level.layers.{i}.`).
    pub const fn official_suffix(self) -> &'static str {
        match self {
            Self::Embed => "embed_tokens.embedding_weight",
            Self::LmHead => "lm_head.weight",
            Self::QHeadWeight => "q_head.weight",
            Self::QHeadBias => "q_head.bias",
            Self::PuzzleEmb => "puzzle_emb.weights",
            Self::HInit => "H_init",
            Self::LInit => "L_init",
            Self::RopeCos => "rotary_emb.cos_cached",
            Self::RopeSin => "rotary_emb.sin_cached",
            Self::MlpGateUp => "mlp.gate_up_proj.weight",
            Self::MlpDown => "mlp.down_proj.weight",
            Self::MlpTGateUp => "mlp_t.gate_up_proj.weight",
            Self::MlpTDown => "mlp_t.down_proj.weight",
            Self::AttnQkv => "self_attn.qkv_proj.weight",
            Self::AttnOut => "self_attn.o_proj.weight",
        }
    }
}

/// One tensor of a model: its kind and, for per-block kinds, the block index (else 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TensorId {
    /// What the tensor is.
    pub kind: TensorKind,
    /// Block index for per-layer kinds, 0 otherwise.
    pub layer: u16,
}

/// Prefix of every official model tensor name.
const PREFIX: &str = "model.inner.";
/// Extra prefix of checkpoints saved after `torch.compile`.
const COMPILE_PREFIX: &str = "_orig_mod.";
/// Prefix of per-block names after [`PREFIX`].
const LAYERS: &str = "L_level.layers.";

impl TensorId {
    /// A model-wide tensor.
    pub const fn global(kind: TensorKind) -> Self {
        Self { kind, layer: 0 }
    }

    /// Tensor `kind` of block `layer`.
    pub const fn layer(kind: TensorKind, layer: u16) -> Self {
        Self { kind, layer }
    }

    /// Sort key of the canonical table order: `code << 16 | layer`.
    pub const fn key(self) -> u32 {
        ((self.kind.code() as u32) << 16) | self.layer as u32
    }

    /// Maps an official state-dict name (optionally with the `_orig_mod.` prefix of compiled
    /// checkpoints) to its id; `None` for names the packed format does not store.
    ///
    /// RoPE tables are not in official checkpoints; `model.inner.rotary_emb.cos_cached` /
    /// `sin_cached` are accepted for them.
    pub fn from_official_name(name: &str) -> Option<Self> {
        let name = name.strip_prefix(COMPILE_PREFIX).unwrap_or(name);
        let rest = name.strip_prefix(PREFIX)?;
        if let Some(layer_rest) = rest.strip_prefix(LAYERS) {
            let (index, suffix) = layer_rest.split_once('.')?;
            let layer: u16 = index.parse().ok()?;
            return TensorKind::ALL
                .iter()
                .find(|k| k.per_layer() && k.official_suffix() == suffix)
                .map(|&kind| Self { kind, layer });
        }
        TensorKind::ALL
            .iter()
            .find(|k| !k.per_layer() && k.official_suffix() == rest)
            .map(|&kind| Self::global(kind))
    }

    /// Whether a model with `cfg` has this tensor (kind used and block index in range).
    pub const fn used_by(self, cfg: &ModelConfig) -> bool {
        self.kind.used_by(cfg)
            && if self.kind.per_layer() {
                (self.layer as usize) < cfg.layers
            } else {
                self.layer == 0
            }
    }
}

impl fmt::Display for TensorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind.per_layer() {
            write!(
                f,
                "{PREFIX}{LAYERS}{}.{}",
                self.layer,
                self.kind.official_suffix()
            )
        } else {
            write!(f, "{PREFIX}{}", self.kind.official_suffix())
        }
    }
}

/// Every tensor a model with `cfg` stores, in canonical table order (ascending [`TensorId::key`]).
pub fn required_tensors(cfg: &ModelConfig) -> impl Iterator<Item = TensorId> + '_ {
    TensorKind::ALL
        .into_iter()
        .filter(move |k| k.used_by(cfg))
        .flat_map(move |kind| {
            let n = if kind.per_layer() { cfg.layers } else { 1 };
            (0..n).map(move |layer| TensorId {
                kind,
                layer: layer as u16,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn official_names_round_trip() {
        for name in [
            "model.inner.embed_tokens.embedding_weight",
            "_orig_mod.model.inner.L_level.layers.1.mlp_t.gate_up_proj.weight",
            "model.inner.L_level.layers.0.self_attn.o_proj.weight",
            "model.inner.H_init",
        ] {
            let id = TensorId::from_official_name(name).unwrap();
            assert_eq!(id.to_string(), name.trim_start_matches("_orig_mod."));
        }
        assert_eq!(TensorId::from_official_name("model.inner.nope"), None);
        assert_eq!(
            TensorId::from_official_name("model.inner.L_level.layers.x.mlp.down_proj.weight"),
            None
        );
    }

    #[test]
    fn codes_are_sorted_and_unique() {
        for w in TensorKind::ALL.windows(2) {
            assert!(w[0].code() < w[1].code());
        }
        for k in TensorKind::ALL {
            assert_eq!(TensorKind::from_code(k.code()), Some(k));
        }
    }
}
