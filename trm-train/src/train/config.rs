//! The training configuration: one TOML file (`configs/*.toml`) with the model, the data, the
//! optimiser and the run length, plus `--set key=value` overrides.
//!
//! Every section rejects unknown keys, and an override of a key that does not exist is an
//! error naming it, so a typo never silently falls back to a default.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::model::{PosEncoding, TrmConfig};

/// The configuration of the default run (`trm-train` with no arguments): `configs/cpu-default.toml`.
pub const CPU_DEFAULT_TOML: &str = include_str!("../../../configs/cpu-default.toml");

/// Everything a training run needs; saved as `config.toml` in the run directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Run name: the run directory is `runs/<name>` unless `--out` says otherwise.
    pub name: String,
    /// Seed of the model initialisation, the sampling order and the halting exploration.
    pub seed: u64,
    /// Worker threads (0 = all cores; `--threads` on the command line takes precedence).
    pub threads: usize,
    /// Compute backend: `"ndarray"` (CPU, default), `"wgpu"` or `"cuda"` (cargo features of
    /// the same names).
    pub backend: Backend,
    /// Wall-clock budget of one invocation in minutes (0 = none); when it is spent the run
    /// evaluates, writes its checkpoint and stops (continue it with `--resume`).
    pub max_minutes: f64,
    /// The model.
    pub model: ModelSection,
    /// The training and evaluation data.
    pub data: DataSection,
    /// Optimisation, logging, evaluation and checkpoint intervals.
    pub train: TrainSection,
}

/// Where the model trains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn-ndarray on the CPU (rayon threads, SIMD kernels).
    #[default]
    Ndarray,
    /// burn-wgpu: Vulkan, Metal or DX12 (`--features wgpu`).
    Wgpu,
    /// burn-cuda: NVIDIA GPUs (`--features cuda`).
    Cuda,
}

/// The model section: the fields of [`TrmConfig`] with TOML-friendly values
/// (`pos_encodings = "none" | "rope" | "learned"`). `batch_size` is taken from
/// `train.global_batch_size`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// Width of the puzzle embedding (0 disables it).
    pub puzzle_emb_ndim: usize,
    /// Prefix positions of the puzzle embedding (0 = `ceil(puzzle_emb_ndim / hidden_size)`).
    pub puzzle_emb_len: usize,
    /// T: recursion processes per supervision step (`H_cycles`).
    pub h_cycles: usize,
    /// n: latent updates per recursion process (`L_cycles`).
    pub l_cycles: usize,
    /// Blocks of the reasoning network (`L_layers`).
    pub l_layers: usize,
    /// Hidden size D.
    pub hidden_size: usize,
    /// SwiGLU expansion.
    pub expansion: f64,
    /// Attention heads (TRM-Att).
    pub num_heads: usize,
    /// `"none"`, `"rope"` or `"learned"`.
    pub pos_encodings: String,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// N_sup: maximum supervision steps (`halt_max_steps`).
    pub halt_max_steps: usize,
    /// Probability of a random minimum number of steps in training.
    pub halt_exploration_prob: f64,
    /// Token-mixing MLP (TRM-MLP) instead of attention (TRM-Att).
    pub mlp_t: bool,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self::from_trm(&TrmConfig::new())
    }
}

impl ModelSection {
    /// The section describing `c`.
    pub fn from_trm(c: &TrmConfig) -> Self {
        Self {
            puzzle_emb_ndim: c.puzzle_emb_ndim,
            puzzle_emb_len: c.puzzle_emb_len,
            h_cycles: c.h_cycles,
            l_cycles: c.l_cycles,
            l_layers: c.l_layers,
            hidden_size: c.hidden_size,
            expansion: c.expansion,
            num_heads: c.num_heads,
            pos_encodings: c.pos_encodings.as_str().to_string(),
            rms_norm_eps: c.rms_norm_eps,
            rope_theta: c.rope_theta,
            halt_max_steps: c.halt_max_steps,
            halt_exploration_prob: c.halt_exploration_prob,
            mlp_t: c.mlp_t,
        }
    }

    /// The model configuration for a global batch of `batch_size` (Sudoku: 81 cells, 11 tokens,
    /// one puzzle identifier).
    pub fn to_trm(&self, batch_size: usize) -> Result<TrmConfig> {
        let pos = PosEncoding::parse(&self.pos_encodings).context("model.pos_encodings")?;
        let c = TrmConfig::new()
            .with_batch_size(batch_size)
            .with_seq_len(81)
            .with_vocab_size(11)
            .with_num_puzzle_identifiers(1)
            .with_puzzle_emb_ndim(self.puzzle_emb_ndim)
            .with_puzzle_emb_len(self.puzzle_emb_len)
            .with_h_cycles(self.h_cycles)
            .with_l_cycles(self.l_cycles)
            .with_l_layers(self.l_layers)
            .with_hidden_size(self.hidden_size)
            .with_expansion(self.expansion)
            .with_num_heads(self.num_heads)
            .with_pos_encodings(pos)
            .with_rms_norm_eps(self.rms_norm_eps)
            .with_rope_theta(self.rope_theta)
            .with_halt_max_steps(self.halt_max_steps)
            .with_halt_exploration_prob(self.halt_exploration_prob)
            .with_mlp_t(self.mlp_t);
        ensure!(self.hidden_size > 0, "model.hidden_size must be > 0");
        c.validate().context("invalid [model] section")?;
        Ok(c)
    }
}

/// Where the puzzles come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataSource {
    /// The built-in generator (`clues_min..=clues_max` givens, rating ≥ `min_rating`); the
    /// result is cached under `cache_dir`.
    Generate,
    /// A file: Sudoku-Extreme CSV or a plain list (format detected; puzzles without a solution
    /// are solved, and must be uniquely solvable).
    File,
}

/// The data section. Base puzzles are split into `puzzles` for training and `eval_puzzles`
/// held out (by base puzzle, before augmentation) for evaluation; each training puzzle gets
/// `augmentations` random symmetries (official recipe: 1000 × 1000).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// `"generate"` or `"file"`.
    pub source: DataSource,
    /// The puzzle file when `source = "file"`.
    pub path: String,
    /// Fewest givens of generated puzzles.
    pub clues_min: usize,
    /// Most givens of generated puzzles.
    pub clues_max: usize,
    /// Minimum rating (solver guesses) of generated puzzles.
    pub min_rating: u32,
    /// Base puzzles for training (the first ones of the file / generated set after the shuffle).
    pub puzzles: usize,
    /// Augmented copies per training puzzle, besides the original.
    pub augmentations: usize,
    /// Held-out base puzzles for evaluation (not augmented).
    pub eval_puzzles: usize,
    /// Seed of the generator, the split and the augmentations.
    pub seed: u64,
    /// Folder of the generated-set cache.
    pub cache_dir: String,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            source: DataSource::Generate,
            path: String::new(),
            clues_min: 30,
            clues_max: 40,
            min_rating: 0,
            puzzles: 1000,
            augmentations: 1000,
            eval_puzzles: 1000,
            seed: 1,
            cache_dir: "runs/cache".into(),
        }
    }
}

/// Optimisation and bookkeeping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// Rows per ACT call (one optimiser step).
    pub global_batch_size: usize,
    /// Optimiser steps of the whole run.
    pub steps: u64,
    /// Peak learning rate of AdamATan2.
    pub lr: f64,
    /// Final ratio of the cosine decay (1 = constant after warm-up, the Sudoku recipe).
    pub lr_min_ratio: f64,
    /// Linear warm-up steps.
    pub warmup_steps: u64,
    /// Step at which the cosine decay to `lr_min_ratio · lr` starts (0 = right after the
    /// warm-up, the official schedule). Later, the rate stays at `lr` until then and anneals
    /// over the remaining steps: `--resume RUN --set train.lr_decay_start=S --set train.steps=E
    /// --set train.lr_min_ratio=0` anneals a copy of a constant-rate run from step S to E.
    pub lr_decay_start: u64,
    /// AdamATan2 decoupled weight decay.
    pub weight_decay: f64,
    /// AdamATan2 β1.
    pub beta1: f64,
    /// AdamATan2 β2.
    pub beta2: f64,
    /// Peak learning rate of the puzzle-embedding sign-SGD.
    pub puzzle_emb_lr: f64,
    /// Weight decay of the puzzle-embedding sign-SGD.
    pub puzzle_emb_weight_decay: f64,
    /// EMA rate μ of the evaluated weights (0 = evaluate the raw weights).
    pub ema_rate: f64,
    /// Steps between metric lines.
    pub log_every: u64,
    /// Steps between evaluations (0 = only at the end).
    pub eval_every: u64,
    /// Held-out puzzles evaluated each time (at most `data.eval_puzzles`; 0 = all).
    pub eval_size: usize,
    /// Rows per evaluation batch.
    pub eval_batch_size: usize,
    /// Steps between checkpoints (0 = only at the end).
    pub checkpoint_every: u64,
    /// Steps between kept weight snapshots (0 = none): `snapshots/step-N/` in the run directory
    /// holds the weights and EMA weights of step N with the run's config, the inputs of
    /// `trm-train average`.
    pub keep_every: u64,
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            global_batch_size: 768,
            steps: 65_000,
            lr: 1e-4,
            lr_min_ratio: 1.0,
            warmup_steps: 2000,
            lr_decay_start: 0,
            weight_decay: 1.0,
            beta1: 0.9,
            beta2: 0.95,
            puzzle_emb_lr: 1e-4,
            puzzle_emb_weight_decay: 1.0,
            ema_rate: 0.999,
            log_every: 50,
            eval_every: 5000,
            eval_size: 0,
            eval_batch_size: 256,
            checkpoint_every: 1000,
            keep_every: 0,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            name: "trm".into(),
            seed: 0,
            threads: 0,
            backend: Backend::Ndarray,
            max_minutes: 0.0,
            model: ModelSection::default(),
            data: DataSection::default(),
            train: TrainSection::default(),
        }
    }
}

impl TrainConfig {
    /// Parses a TOML document (missing keys keep their defaults, unknown keys are errors).
    pub fn from_toml(text: &str) -> Result<Self> {
        let table: toml::Table = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        // An empty file (truncated, or never written) must not silently become the defaults.
        ensure!(
            !table.is_empty(),
            "the config is empty: no keys (a run directory's config.toml holds every key; \
             start from configs/cpu-default.toml)"
        );
        let c: Self = table.try_into().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(c)
    }

    /// Reads a TOML file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("bad config {}", path.display()))
    }

    /// The configuration as TOML (every key, so the file documents the whole run).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a TrainConfig always serialises")
    }

    /// Applies `key=value` overrides (`model.hidden_size=128`, `train.lr=3e-4`, `name=x`).
    /// The value is read as TOML (`1e-4`, `true`, `"text"`); a bare word is taken as a
    /// string. A key that does not exist is an error naming it.
    pub fn with_overrides(&self, sets: &[String]) -> Result<Self> {
        if sets.is_empty() {
            return Ok(self.clone());
        }
        let mut table = toml::Table::try_from(self)?;
        for set in sets {
            let (key, raw) = set
                .split_once('=')
                .with_context(|| format!("--set {set:?}: expected key=value"))?;
            let key = key.trim();
            let value = parse_value(raw.trim());
            set_key(&mut table, key, value).with_context(|| format!("--set {set}"))?;
        }
        let c = table
            .try_into::<Self>()
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("after --set overrides")?;
        Ok(c)
    }

    /// Checks the values the loop relies on; errors name the key.
    pub fn validate(&self) -> Result<()> {
        self.trm()?;
        let t = &self.train;
        ensure!(
            (1..=65536).contains(&t.global_batch_size),
            "train.global_batch_size must be in 1..=65536"
        );
        ensure!(
            (1..=65536).contains(&t.eval_batch_size),
            "train.eval_batch_size must be in 1..=65536"
        );
        for (key, v) in [("train.beta1", t.beta1), ("train.beta2", t.beta2)] {
            ensure!((0.0..1.0).contains(&v), "{key} must be in [0, 1)");
        }
        for (key, v) in [
            ("train.weight_decay", t.weight_decay),
            ("train.puzzle_emb_weight_decay", t.puzzle_emb_weight_decay),
            ("train.puzzle_emb_lr", t.puzzle_emb_lr),
        ] {
            ensure!(v.is_finite() && v >= 0.0, "{key} must be finite and >= 0");
        }
        ensure!(
            t.lr_min_ratio.is_finite() && (0.0..=1.0).contains(&t.lr_min_ratio),
            "train.lr_min_ratio must be in [0, 1]"
        );
        ensure!(t.steps > 0, "train.steps must be > 0");
        ensure!(
            t.lr_decay_start < t.steps,
            "train.lr_decay_start ({}) must be below train.steps ({}): the decay runs from it to \
             the last step",
            t.lr_decay_start,
            t.steps
        );
        ensure!(t.lr > 0.0 && t.lr.is_finite(), "train.lr must be > 0");
        ensure!(t.log_every > 0, "train.log_every must be > 0");
        ensure!(t.eval_batch_size > 0, "train.eval_batch_size must be > 0");
        ensure!(
            (0.0..1.0).contains(&t.ema_rate),
            "train.ema_rate must be in [0, 1)"
        );
        ensure!(
            self.max_minutes >= 0.0 && self.max_minutes.is_finite(),
            "max_minutes must be >= 0"
        );
        let d = &self.data;
        ensure!(d.puzzles > 0, "data.puzzles must be > 0");
        ensure!(d.eval_puzzles > 0, "data.eval_puzzles must be > 0");
        ensure!(
            d.puzzles <= 10_000_000 && d.eval_puzzles <= 1_000_000,
            "data.puzzles (at most 10,000,000) or data.eval_puzzles (at most 1,000,000) too large"
        );
        ensure!(
            d.augmentations <= 10_000
                && (d.puzzles as u64).saturating_mul(d.augmentations as u64 + 1) <= 200_000_000,
            "data.augmentations = {} is too large: the training set (puzzles x (augmentations + \
             1)) must stay within 200,000,000 examples",
            d.augmentations
        );
        if d.source == DataSource::File {
            ensure!(
                !d.path.is_empty(),
                "data.path is required with source = \"file\""
            );
        } else {
            ensure!(
                d.clues_min <= d.clues_max && d.clues_min >= 17 && d.clues_max <= 81,
                "data.clues_min..data.clues_max must be a non-empty range within 17..81"
            );
        }
        ensure!(!self.name.is_empty(), "name must not be empty");
        ensure!(
            !self.name.contains(['/', '\\']) && self.name != "." && self.name != "..",
            "name {:?} must be a plain folder name (no / or \\, not . or ..): runs go to runs/<name>; \
             use --out DIR for another place",
            self.name
        );
        Ok(())
    }

    /// The model configuration.
    pub fn trm(&self) -> Result<TrmConfig> {
        self.model.to_trm(self.train.global_batch_size)
    }

    /// The cache folder of generated sets.
    pub fn cache_dir(&self) -> PathBuf {
        PathBuf::from(&self.data.cache_dir)
    }
}

/// A TOML value, or the text itself as a string when it is not one.
fn parse_value(raw: &str) -> toml::Value {
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| raw.into()),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Sets `a.b.c` in `table`; every part must exist and the new value must have the old one's
/// type (an integer is accepted where a float is expected).
fn set_key(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = table;
    for (i, part) in parts.iter().enumerate() {
        let path = parts[..=i].join(".");
        if i + 1 == parts.len() {
            let Some(old) = cur.get(*part) else {
                bail!(
                    "unknown config key `{path}` (known here: {})",
                    known_keys(cur)
                );
            };
            if old.is_table() {
                bail!("config key `{path}` is a section, not a value");
            }
            let value = match (old, value) {
                (toml::Value::Float(_), toml::Value::Integer(n)) => toml::Value::Float(n as f64),
                (old, v) if old.type_str() != v.type_str() => bail!(
                    "config key `{path}` expects a {}, got {} `{v}`",
                    old.type_str(),
                    v.type_str()
                ),
                (_, v) => v,
            };
            cur.insert(part.to_string(), value);
            return Ok(());
        }
        match cur.get(*part) {
            Some(toml::Value::Table(_)) => {}
            Some(_) => bail!("config key `{path}` is a value, not a section"),
            None => bail!(
                "unknown config section `{path}` (known here: {})",
                known_keys(cur)
            ),
        }
        cur = match cur.get_mut(*part) {
            Some(toml::Value::Table(t)) => t,
            _ => unreachable!("checked above"),
        };
    }
    bail!("empty config key")
}

/// The keys of a table, sorted, for error messages.
fn known_keys(t: &toml::Table) -> String {
    let mut k: Vec<&str> = t.keys().map(String::as_str).collect();
    k.sort_unstable();
    k.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses_and_round_trips() {
        let c = TrainConfig::from_toml(CPU_DEFAULT_TOML).unwrap();
        c.validate().unwrap();
        assert_eq!(TrainConfig::from_toml(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn overrides_set_values_and_name_unknown_keys() {
        let c = TrainConfig::default();
        let o = c
            .with_overrides(&[
                "model.hidden_size=128".into(),
                "train.lr=1".into(),
                "name=abc".into(),
                "data.source=file".into(),
            ])
            .unwrap();
        assert_eq!(o.model.hidden_size, 128);
        assert_eq!(o.train.lr, 1.0);
        assert_eq!(o.name, "abc");
        assert_eq!(o.data.source, DataSource::File);
        let e = c
            .with_overrides(&["model.hiden_size=3".into()])
            .unwrap_err();
        assert!(format!("{e:#}").contains("model.hiden_size"), "{e:#}");
        let e = c.with_overrides(&["modl.x=3".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("modl"), "{e:#}");
        let e = c.with_overrides(&["train.steps=abc".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("train.steps"), "{e:#}");
        for empty in ["", "\n  \n", "# only a comment\n"] {
            let e = TrainConfig::from_toml(empty).unwrap_err().to_string();
            assert!(e.contains("the config is empty"), "{e}");
        }
        let e = TrainConfig::from_toml("[model]\nhiden_size = 3\n").unwrap_err();
        assert!(format!("{e:#}").contains("hiden_size"), "{e:#}");
    }

    #[test]
    fn a_decay_start_at_or_past_the_last_step_is_refused() {
        let c = TrainConfig::default();
        let ok = c
            .with_overrides(&["train.steps=100".into(), "train.lr_decay_start=99".into()])
            .unwrap();
        ok.validate().unwrap();
        for start in ["100", "5000"] {
            let bad = c
                .with_overrides(&[
                    "train.steps=100".into(),
                    format!("train.lr_decay_start={start}"),
                ])
                .unwrap();
            let e = bad.validate().unwrap_err().to_string();
            assert!(
                e.contains("train.lr_decay_start") && e.contains("below train.steps"),
                "{e}"
            );
        }
    }
}
