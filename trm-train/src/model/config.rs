//! Model configuration: every knob of the official `TinyRecursiveReasoningModel_ACTV1Config`.

use burn::config::Config;

/// Positional encoding of the model (`pos_encodings` in the official config).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum PosEncoding {
    /// No positional encoding (TRM-MLP: the token-mixing MLP is position aware by itself).
    None,
    /// Rotary position embedding inside attention (TRM-Att).
    Rope,
    /// Learned absolute position embedding added to the input embedding.
    Learned,
}

impl PosEncoding {
    /// Parses the official string (`"none"`, `"rope"`, `"learned"`).
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "none" => Ok(Self::None),
            "rope" => Ok(Self::Rope),
            "learned" => Ok(Self::Learned),
            other => anyhow::bail!("unknown pos_encodings {other:?}"),
        }
    }

    /// The official string of this encoding.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Rope => "rope",
            Self::Learned => "learned",
        }
    }
}

/// Configuration of a Tiny Recursive Model (official names in parentheses).
///
/// Defaults are the paper's Sudoku recipe (TRM-MLP, hidden 512, T=3, n=6, N_sup=16).
/// Notation used in the shape docs: `B` batch, `L = seq_len` (81 cells), `P = puzzle_emb_len`,
/// `S = P + L` (sequence inside the model), `D = hidden_size`, `V = vocab_size`.
#[derive(Config, Debug, PartialEq)]
pub struct TrmConfig {
    /// Batch size the model was configured with (`batch_size`; informational, any B works).
    #[config(default = 768)]
    pub batch_size: usize,
    /// Number of answer tokens per example (`seq_len`, 81 for Sudoku).
    #[config(default = 81)]
    pub seq_len: usize,
    /// Vocabulary size (`vocab_size`: 0 = PAD, 1 = blank, 2..=10 digits).
    #[config(default = 11)]
    pub vocab_size: usize,
    /// Number of distinct puzzle identifiers (`num_puzzle_identifiers`).
    #[config(default = 1)]
    pub num_puzzle_identifiers: usize,
    /// Width of the puzzle embedding (`puzzle_emb_ndim`, 0 disables it).
    #[config(default = 512)]
    pub puzzle_emb_ndim: usize,
    /// Number of prefix positions reserved for the puzzle embedding (`puzzle_emb_len`,
    /// 0 means `ceil(puzzle_emb_ndim / hidden_size)`).
    #[config(default = 16)]
    pub puzzle_emb_len: usize,
    /// Supervision steps T per ACT step (`H_cycles`).
    #[config(default = 3)]
    pub h_cycles: usize,
    /// Latent updates n per cycle (`L_cycles`).
    #[config(default = 6)]
    pub l_cycles: usize,
    /// Number of blocks of the single reasoning network (`L_layers`).
    #[config(default = 2)]
    pub l_layers: usize,
    /// Hidden size D (`hidden_size`).
    #[config(default = 512)]
    pub hidden_size: usize,
    /// SwiGLU expansion factor (`expansion`).
    #[config(default = 4.0)]
    pub expansion: f64,
    /// Attention heads (`num_heads`).
    #[config(default = 8)]
    pub num_heads: usize,
    /// Positional encoding (`pos_encodings`).
    #[config(default = "PosEncoding::None")]
    pub pos_encodings: PosEncoding,
    /// Epsilon of the scale-free RMSNorm (`rms_norm_eps`).
    #[config(default = 1e-5)]
    pub rms_norm_eps: f64,
    /// RoPE base (`rope_theta`).
    #[config(default = 10000.0)]
    pub rope_theta: f64,
    /// Maximum number of supervision steps N_sup (`halt_max_steps`).
    #[config(default = 16)]
    pub halt_max_steps: usize,
    /// Probability of a random minimum number of steps in training (`halt_exploration_prob`).
    #[config(default = 0.1)]
    pub halt_exploration_prob: f64,
    /// Skip the extra Q-continue target pass (`no_ACT_continue`; only `true` is implemented).
    #[config(default = true)]
    pub no_act_continue: bool,
    /// Token-mixing MLP over the sequence instead of self-attention (`mlp_t`).
    #[config(default = true)]
    pub mlp_t: bool,
}

impl TrmConfig {
    /// Parses the official config JSON (as stored in the fixture metadata `config`, or in the
    /// official `all_config.yaml` `arch` section converted to JSON). Missing keys keep the
    /// defaults; unknown keys are ignored.
    pub fn from_official_json(json: &str) -> anyhow::Result<Self> {
        let v: serde_json::Value = serde_json::from_str(json)?;
        let obj = v
            .as_object()
            .ok_or_else(|| anyhow::anyhow!("config JSON is not an object"))?;
        let mut c = Self::new();
        let uint = |k: &str, d: usize| -> anyhow::Result<usize> {
            match obj.get(k) {
                None => Ok(d),
                Some(x) => x
                    .as_u64()
                    .map(|x| x as usize)
                    .ok_or_else(|| anyhow::anyhow!("config key {k} is not an unsigned integer")),
            }
        };
        let float = |k: &str, d: f64| -> anyhow::Result<f64> {
            match obj.get(k) {
                None => Ok(d),
                Some(x) => x
                    .as_f64()
                    .ok_or_else(|| anyhow::anyhow!("config key {k} is not a number")),
            }
        };
        let boolean = |k: &str, d: bool| -> anyhow::Result<bool> {
            match obj.get(k) {
                None => Ok(d),
                Some(x) => x
                    .as_bool()
                    .ok_or_else(|| anyhow::anyhow!("config key {k} is not a bool")),
            }
        };
        c.batch_size = uint("batch_size", c.batch_size)?;
        c.seq_len = uint("seq_len", c.seq_len)?;
        c.vocab_size = uint("vocab_size", c.vocab_size)?;
        c.num_puzzle_identifiers = uint("num_puzzle_identifiers", c.num_puzzle_identifiers)?;
        c.puzzle_emb_ndim = uint("puzzle_emb_ndim", c.puzzle_emb_ndim)?;
        c.puzzle_emb_len = uint("puzzle_emb_len", c.puzzle_emb_len)?;
        c.h_cycles = uint("H_cycles", c.h_cycles)?;
        c.l_cycles = uint("L_cycles", c.l_cycles)?;
        c.l_layers = uint("L_layers", c.l_layers)?;
        c.hidden_size = uint("hidden_size", c.hidden_size)?;
        c.expansion = float("expansion", c.expansion)?;
        c.num_heads = uint("num_heads", c.num_heads)?;
        if let Some(p) = obj.get("pos_encodings") {
            let s = p
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("pos_encodings is not a string"))?;
            c.pos_encodings = PosEncoding::parse(s)?;
        }
        c.rms_norm_eps = float("rms_norm_eps", c.rms_norm_eps)?;
        c.rope_theta = float("rope_theta", c.rope_theta)?;
        c.halt_max_steps = uint("halt_max_steps", c.halt_max_steps)?;
        c.halt_exploration_prob = float("halt_exploration_prob", c.halt_exploration_prob)?;
        c.no_act_continue = boolean("no_ACT_continue", c.no_act_continue)?;
        c.mlp_t = boolean("mlp_t", c.mlp_t)?;
        if let Some(dt) = obj.get("forward_dtype").and_then(|x| x.as_str())
            && dt != "float32"
        {
            anyhow::bail!("forward_dtype {dt:?} is not supported (only float32)");
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks the invariants the model relies on.
    pub fn validate(&self) -> anyhow::Result<()> {
        use anyhow::ensure;
        // Sizes far beyond any TRM (the paper's largest: hidden 512, 8 heads, sequence 900)
        // are refused here with their name, instead of failing an allocation later.
        for (key, value, max) in [
            ("hidden_size", self.hidden_size, 8192),
            ("num_heads", self.num_heads, 256),
            ("seq_len", self.seq_len, 4096),
            ("vocab_size", self.vocab_size, 65536),
            ("puzzle_emb_len", self.puzzle_emb_len, 1024),
            ("puzzle_emb_ndim", self.puzzle_emb_ndim, 65536),
            (
                "num_puzzle_identifiers",
                self.num_puzzle_identifiers,
                1 << 24,
            ),
            ("H_cycles", self.h_cycles, 64),
            ("L_cycles", self.l_cycles, 64),
            ("L_layers", self.l_layers, 64),
            ("halt_max_steps", self.halt_max_steps, 1024),
        ] {
            ensure!(value <= max, "{key} = {value} is too large (at most {max})");
        }
        ensure!(self.hidden_size >= 1, "hidden_size must be >= 1");
        ensure!(
            self.seq_len >= 1 && self.vocab_size >= 2,
            "seq_len must be >= 1 and vocab_size >= 2"
        );
        ensure!(
            self.expansion.is_finite() && self.expansion > 0.0 && self.expansion <= 16.0,
            "expansion must be in (0, 16], got {}",
            self.expansion
        );
        ensure!(
            self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0,
            "rms_norm_eps must be > 0"
        );
        ensure!(
            self.rope_theta.is_finite() && self.rope_theta > 0.0,
            "rope_theta must be > 0"
        );
        ensure!(
            (0.0..=1.0).contains(&self.halt_exploration_prob),
            "halt_exploration_prob must be in [0, 1]"
        );
        ensure!(
            self.num_heads >= 1 && self.hidden_size.is_multiple_of(self.num_heads),
            "hidden_size must be divisible by num_heads (>= 1)"
        );
        if self.mlp_t {
            ensure!(
                self.pos_encodings == PosEncoding::None,
                "the MLP model (mlp_t = true) takes no positional encoding: set pos_encodings = \"none\""
            );
        } else if self.pos_encodings == PosEncoding::Rope {
            ensure!(
                self.head_dim().is_multiple_of(2),
                "rope needs an even head size (hidden_size / num_heads = {})",
                self.head_dim()
            );
        }
        anyhow::ensure!(self.h_cycles >= 1, "H_cycles must be >= 1");
        anyhow::ensure!(self.l_layers >= 1, "L_layers must be >= 1");
        anyhow::ensure!(self.halt_max_steps >= 1, "halt_max_steps must be >= 1");
        anyhow::ensure!(
            self.no_act_continue,
            "no_ACT_continue = false (Q-continue target pass) is not implemented"
        );
        anyhow::ensure!(
            self.puzzle_emb_ndim <= self.puzzle_emb_len() * self.hidden_size,
            "puzzle_emb_ndim does not fit into puzzle_emb_len * hidden_size"
        );
        Ok(())
    }

    /// Number of puzzle-embedding prefix positions P (official
    /// `-(puzzle_emb_ndim // -hidden_size)` when `puzzle_emb_len == 0`).
    pub fn puzzle_emb_len(&self) -> usize {
        if self.puzzle_emb_len == 0 {
            self.puzzle_emb_ndim.div_ceil(self.hidden_size)
        } else {
            self.puzzle_emb_len
        }
    }

    /// Sequence length inside the model, S = P + seq_len.
    pub fn total_seq_len(&self) -> usize {
        self.puzzle_emb_len() + self.seq_len
    }

    /// Head dimension `hidden_size / num_heads`.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    /// The official config as JSON (official key names).
    pub fn to_official_json(&self) -> String {
        serde_json::json!({
            "batch_size": self.batch_size,
            "seq_len": self.seq_len,
            "vocab_size": self.vocab_size,
            "num_puzzle_identifiers": self.num_puzzle_identifiers,
            "puzzle_emb_ndim": self.puzzle_emb_ndim,
            "puzzle_emb_len": self.puzzle_emb_len,
            "H_cycles": self.h_cycles,
            "H_layers": 0,
            "L_cycles": self.l_cycles,
            "L_layers": self.l_layers,
            "hidden_size": self.hidden_size,
            "expansion": self.expansion,
            "num_heads": self.num_heads,
            "pos_encodings": self.pos_encodings.as_str(),
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "halt_max_steps": self.halt_max_steps,
            "halt_exploration_prob": self.halt_exploration_prob,
            "no_ACT_continue": self.no_act_continue,
            "mlp_t": self.mlp_t,
            "forward_dtype": "float32",
        })
        .to_string()
    }
}

/// Inner width of the official SwiGLU for an input width `n`:
/// `ceil(round(expansion * n * 2 / 3) / 256) * 256` (Python's round-half-even).
pub fn swiglu_inter(expansion: f64, n: usize) -> usize {
    let inter = (expansion * n as f64 * 2.0 / 3.0).round_ties_even() as usize;
    inter.div_ceil(256) * 256
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inter_sizes_match_the_reference() {
        assert_eq!(swiglu_inter(4.0, 64), 256);
        assert_eq!(swiglu_inter(4.0, 97), 512);
        assert_eq!(swiglu_inter(4.0, 512), 1536);
    }

    #[test]
    fn validate_refuses_what_would_panic_or_exhaust_memory_later() {
        let ok = TrmConfig::new();
        ok.validate().unwrap();
        type Break = fn(&mut TrmConfig);
        let cases: [(&str, Break); 6] = [
            ("hidden_size = 1000000000 is too large", |c| {
                c.hidden_size = 1_000_000_000
            }),
            ("expansion must be in (0, 16]", |c| c.expansion = 0.0),
            ("expansion must be in (0, 16]", |c| c.expansion = f64::NAN),
            ("divisible by num_heads", |c| c.num_heads = 0),
            ("takes no positional encoding", |c| {
                c.mlp_t = true;
                c.pos_encodings = PosEncoding::Rope;
            }),
            ("rope needs an even head size", |c| {
                c.mlp_t = false;
                c.pos_encodings = PosEncoding::Rope;
                c.hidden_size = 18;
                c.num_heads = 2;
                c.puzzle_emb_ndim = 18;
            }),
        ];
        for (message, break_it) in cases {
            let mut c = ok.clone();
            break_it(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(message), "{message}: {e}");
        }
    }

    #[test]
    fn official_json_round_trips() {
        let c = TrmConfig::new().with_hidden_size(64).with_mlp_t(false);
        let back = TrmConfig::from_official_json(&c.to_official_json()).unwrap();
        assert_eq!(c, back);
    }
}
