//! The training state and its checkpoint file: weights, EMA weights, optimiser moments, the
//! ACT carry, the data position and the RNG position, in one safetensors file written
//! atomically (a temporary file, synced, then renamed over the old one); and its compact form
//! for committing (no carry, bf16 moments).
//!
//! Every checkpoint carries a CRC-32 of its tensors and metadata (`checksum`): a flipped byte
//! is refused on load instead of resuming silently. Every value a resume indexes with (the
//! carry's tokens, labels, step counts, puzzle ids) and every shape is checked as well, so a
//! damaged or foreign file gives an error naming what is wrong, never a panic.

use std::collections::HashMap;

use std::path::Path;

use anyhow::{Context, Result, ensure};
use burn::tensor::{Device, Tensor, TensorData, bf16};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::puzzles::DataPosition;
use crate::model::loss::IGNORE_LABEL_ID;
use crate::model::{
    AdamAtan2, AdamAtan2Config, Batch, Carry, Ema, InnerCarry, SafetensorsFile, Trm, TrmConfig,
};

/// File name of the checkpoint inside a run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// File name of the evaluated (EMA) weights in the official state-dict layout.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// `format` metadata value of a checkpoint.
pub const FORMAT: &str = "trm-train-checkpoint-v1";
/// `compact` metadata value of a [`compact`] checkpoint.
pub const COMPACT_NOTE: &str = "no ACT carry; Adam moments in bf16";
/// Metadata key of the checksum ([`seal`], [`verify_checksum`]).
pub const CHECKSUM_KEY: &str = "checksum";
/// Metadata key of an [`average`] of checkpoints (its value names the averaged steps).
pub const AVERAGED_KEY: &str = "averaged";
/// Metadata key of a [`snapshot`] of a run's weights (`train.keep_every`).
pub const SNAPSHOT_KEY: &str = "snapshot";
/// Folder of a run directory that holds its [`snapshot`]s, one `step-N` folder each.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// Stream of the ChaCha8 generator that drives the halting exploration.
const EXPLORATION_STREAM: u64 = 0x7472_6d5f_6578_706c;

/// Everything that changes while training; restoring it continues the run exactly.
#[derive(Clone, Debug)]
pub struct TrainState {
    /// Optimiser steps taken.
    pub step: u64,
    /// The model (on the autodiff device).
    pub model: Trm,
    /// AdamATan2 with its moments.
    pub opt: AdamAtan2,
    /// The weight average (absent when `ema_rate = 0`).
    pub ema: Option<Ema>,
    /// The ACT carry of the streaming batch (absent before the first step).
    pub carry: Option<Carry>,
    /// Where the data sampler is.
    pub data: DataPosition,
    /// The halting-exploration generator.
    pub rng: ChaCha8Rng,
}

/// The exploration generator of a run with `seed`, at word position 0.
pub fn exploration_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(EXPLORATION_STREAM);
    rng
}

impl TrainState {
    /// A fresh state: the model initialised from `seed`, a fresh optimiser and EMA.
    pub fn fresh(
        cfg: &TrmConfig,
        adam: AdamAtan2Config,
        ema_rate: f64,
        seed: u64,
        device: &Device,
    ) -> Self {
        let model = cfg.init(&mut ChaCha8Rng::seed_from_u64(seed), device);
        let ema = (ema_rate > 0.0).then(|| Ema::new(&model, ema_rate));
        Self {
            step: 0,
            model,
            opt: AdamAtan2::new(adam),
            ema,
            carry: None,
            data: DataPosition::default(),
            rng: exploration_rng(seed),
        }
    }

    /// Makes the weight average follow `rate`, the resumed run's `train.ema_rate` (a checkpoint
    /// restores the average with the rate it was saved with): a changed rate applies from the
    /// next step, a rate > 0 without an average starts one at the current weights, and 0 drops
    /// the average. Returns what changed, for the run's log.
    pub fn set_ema_rate(&mut self, rate: f64) -> Option<String> {
        match (self.ema.as_ref().map(|e| e.mu), rate > 0.0) {
            (Some(old), true) if old != rate => {
                if let Some(ema) = &mut self.ema {
                    ema.mu = rate;
                }
                Some(format!(
                    "EMA rate {old} (checkpoint) -> {rate} (train.ema_rate) from this step"
                ))
            }
            (None, true) => {
                self.ema = Some(Ema::new(&self.model, rate));
                Some(format!(
                    "EMA started at the current weights with rate {rate} (the checkpoint had none)"
                ))
            }
            (Some(old), false) => {
                self.ema = None;
                Some(format!(
                    "EMA (rate {old}) dropped: train.ema_rate = 0, so evaluation and export use \
                     the raw weights"
                ))
            }
            _ => None,
        }
    }

    /// Fits the ACT carry to `batch_size` rows, the resumed run's `train.global_batch_size`: a
    /// carry saved with another batch size is dropped, so every row starts a fresh puzzle.
    /// Returns what changed, for the run's log.
    pub fn fit_batch_size(&mut self, batch_size: usize) -> Option<String> {
        let rows = self.carry.as_ref()?.steps.len();
        (rows != batch_size).then(|| {
            self.carry = None;
            format!(
                "batch size {rows} (checkpoint) -> {batch_size} (train.global_batch_size): \
                 every row starts a fresh puzzle"
            )
        })
    }

    /// The model that is evaluated and exported: the EMA weights when there is an EMA.
    pub fn eval_model(&self) -> Trm {
        match &self.ema {
            Some(ema) => ema.apply_to(&self.model),
            None => self.model.clone(),
        }
    }

    /// The checkpoint of this state; `config` (the run's TOML) is stored in the metadata.
    pub fn to_file(&self, config: &str) -> SafetensorsFile {
        let mut f = SafetensorsFile::default();
        for (name, data) in self.model.state_dict() {
            f.tensors.insert(format!("model.{name}"), data);
        }
        if let Some(ema) = &self.ema {
            for (name, t) in &ema.shadow {
                f.tensors.insert(format!("ema.{name}"), t.to_data());
            }
        }
        for (name, (m, v)) in &self.opt.state {
            f.tensors.insert(format!("adam.m.{name}"), m.to_data());
            f.tensors.insert(format!("adam.v.{name}"), v.to_data());
        }
        if let Some(c) = &self.carry {
            let (b, l) = (c.current.batch_size(), c.current.seq_len());
            let cur = &c.current;
            let steps: Vec<i32> = c.steps.iter().map(|&s| s as i32).collect();
            let halted: Vec<i32> = c.halted.iter().map(|&h| h as i32).collect();
            let entries = [
                ("carry.z_H", c.inner.z_h.to_data()),
                ("carry.z_L", c.inner.z_l.to_data()),
                ("carry.steps", TensorData::new(steps, [b])),
                ("carry.halted", TensorData::new(halted, [b])),
                ("carry.inputs", TensorData::new(cur.inputs.clone(), [b, l])),
                ("carry.labels", TensorData::new(cur.labels.clone(), [b, l])),
                (
                    "carry.puzzle_identifiers",
                    TensorData::new(cur.puzzle_identifiers.clone(), [b]),
                ),
            ];
            for (k, v) in entries {
                f.tensors.insert(k.into(), v);
            }
        }
        let meta = [
            ("format", FORMAT.to_string()),
            ("step", self.step.to_string()),
            ("adam_t", self.opt.t.to_string()),
            ("data_epoch", self.data.epoch.to_string()),
            ("data_cursor", self.data.cursor.to_string()),
            ("rng_word_pos", self.rng.get_word_pos().to_string()),
            (
                "ema_rate",
                self.ema.as_ref().map_or(0.0, |e| e.mu).to_string(),
            ),
            ("config", config.to_string()),
            ("model_config", self.model.config.to_official_json()),
        ];
        for (k, v) in meta {
            f.metadata.insert(k.into(), v);
        }
        seal(&mut f);
        f
    }

    /// Restores a state from a checkpoint for a model of configuration `cfg`.
    pub fn from_file(
        f: &SafetensorsFile,
        cfg: &TrmConfig,
        adam: AdamAtan2Config,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        ensure!(
            f.meta("format")? == FORMAT,
            "not a trm-train checkpoint (format {:?})",
            f.meta("format")?
        );
        verify_checksum(f)?;
        let num = |k: &str| -> Result<u64> {
            f.meta(k)?
                .parse()
                .with_context(|| format!("checkpoint metadata {k} is not a number"))
        };
        let inner = device.clone().without_autodiff();
        let prefixed = |prefix: &str| -> HashMap<String, TensorData> {
            f.tensors
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(prefix).map(|n| (n.to_string(), v.clone())))
                .collect()
        };
        let model = cfg
            .init(&mut ChaCha8Rng::seed_from_u64(seed), device)
            .load_state_dict(&prefixed("model."))
            .context("checkpoint weights do not fit the configured model")?;
        let sizes: HashMap<String, usize> = model
            .state_dict()
            .into_iter()
            .map(|(k, d)| (k, d.num_elements()))
            .collect();
        let same_size = |what: &str, name: &str, d: &TensorData| -> Result<()> {
            let want = sizes
                .get(name)
                .with_context(|| format!("checkpoint has {what}{name} for no parameter"))?;
            ensure!(
                d.num_elements() == *want,
                "checkpoint tensor {what}{name} has {} values, its parameter {want}",
                d.num_elements()
            );
            Ok(())
        };
        let flat = |d: &TensorData| -> Result<Tensor<1>> {
            let v = d
                .clone()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let n = v.len();
            Ok(Tensor::from_data(TensorData::new(v, [n]), &inner))
        };

        let mut opt = AdamAtan2::new(adam);
        opt.t = num("adam_t")?;
        let ms = prefixed("adam.m.");
        let vs = prefixed("adam.v.");
        for (name, m) in &ms {
            let v = vs
                .get(name)
                .with_context(|| format!("checkpoint has adam.m.{name} without adam.v.{name}"))?;
            same_size("adam.m.", name, m)?;
            same_size("adam.v.", name, v)?;
            opt.state.insert(name.clone(), (flat(m)?, flat(v)?));
        }

        let ema_rate: f64 = f.meta("ema_rate")?.parse().context("ema_rate")?;
        let ema = if ema_rate > 0.0 {
            let mut ema = Ema::new(&model, ema_rate);
            for (name, t) in prefixed("ema.") {
                ensure!(
                    ema.shadow.contains_key(&name),
                    "checkpoint EMA has unknown parameter {name}"
                );
                same_size("ema.", &name, &t)?;
                ema.shadow.insert(name, flat(&t)?);
            }
            Some(ema)
        } else {
            None
        };

        let carry = match f.tensors.get("carry.z_H") {
            None => None,
            Some(z_h) => {
                let ints = |k: &str| -> Result<Vec<i32>> {
                    f.get(k)?
                        .clone()
                        .convert::<i32>()
                        .try_to_vec::<i32>()
                        .map_err(|e| anyhow::anyhow!("{k}: {e:?}"))
                };
                let z_l = f.get("carry.z_L")?;
                let [b, s, d] = match *z_h.shape().as_slice() {
                    [b, s, d] => [b, s, d],
                    ref other => anyhow::bail!("checkpoint carry.z_H has shape {other:?}"),
                };
                let (l, h) = (cfg.seq_len, cfg.hidden_size);
                ensure!(
                    [s, d] == [cfg.total_seq_len(), h] && z_l.shape().as_slice() == [b, s, d],
                    "checkpoint carry has shapes {:?} and {:?}, the model [B, {}, {h}]",
                    z_h.shape().as_slice(),
                    z_l.shape().as_slice(),
                    cfg.total_seq_len()
                );
                let checked = |k: &str, len: usize, ok: &dyn Fn(i32) -> bool| -> Result<Vec<i32>> {
                    let v = ints(k)?;
                    ensure!(
                        v.len() == len,
                        "checkpoint {k} has {} values, expected {len}",
                        v.len()
                    );
                    if let Some(bad) = v.iter().find(|&&x| !ok(x)) {
                        anyhow::bail!("checkpoint {k} holds {bad}, out of range");
                    }
                    Ok(v)
                };
                let vocab = i32::try_from(cfg.vocab_size).unwrap_or(i32::MAX);
                let ids = i32::try_from(cfg.num_puzzle_identifiers).unwrap_or(i32::MAX);
                let max_steps = i32::try_from(cfg.halt_max_steps).unwrap_or(i32::MAX);
                Some(Carry {
                    inner: InnerCarry {
                        z_h: Tensor::from_data(z_h.clone(), &inner),
                        z_l: Tensor::from_data(z_l.clone(), &inner),
                    },
                    steps: checked("carry.steps", b, &|x| (0..=max_steps).contains(&x))?
                        .iter()
                        .map(|&s| s as u32)
                        .collect(),
                    halted: checked("carry.halted", b, &|x| x == 0 || x == 1)?
                        .iter()
                        .map(|&h| h != 0)
                        .collect(),
                    current: Batch {
                        inputs: checked("carry.inputs", b * l, &|x| (0..vocab).contains(&x))?,
                        labels: checked("carry.labels", b * l, &|x| {
                            x == IGNORE_LABEL_ID || (0..vocab).contains(&x)
                        })?,
                        puzzle_identifiers: checked("carry.puzzle_identifiers", b, &|x| {
                            (0..ids).contains(&x)
                        })?,
                    },
                })
            }
        };

        let mut rng = exploration_rng(seed);
        rng.set_word_pos(
            f.meta("rng_word_pos")?
                .parse()
                .context("checkpoint metadata rng_word_pos")?,
        );
        Ok(Self {
            step: num("step")?,
            model,
            opt,
            ema,
            carry,
            data: DataPosition {
                epoch: num("data_epoch")?,
                cursor: num("data_cursor")?,
            },
            rng,
        })
    }

    /// The largest weight magnitude among the weights and EMA weights, with its tensor's
    /// name (infinite when a value is NaN or infinite).
    pub fn largest_weight(&self) -> (f32, String) {
        let largest = |d: &TensorData| {
            d.clone()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_or(f32::INFINITY, |v| {
                    v.iter().fold(0f32, |m, x| {
                        if x.is_finite() {
                            m.max(x.abs())
                        } else {
                            f32::INFINITY
                        }
                    })
                })
        };
        let model = self
            .model
            .state_dict()
            .into_iter()
            .map(|(n, d)| (largest(&d), n));
        let ema = self
            .ema
            .iter()
            .flat_map(|e| e.shadow.iter())
            .map(|(n, t)| (largest(&t.to_data()), format!("ema.{n}")));
        model.chain(ema).fold(
            (0.0, String::new()),
            |best, x| if x.0 > best.0 { x } else { best },
        )
    }

    /// Writes the checkpoint and the evaluated weights into `dir`, each atomically.
    pub fn save(&self, dir: &Path, config: &str) -> Result<()> {
        self.to_file(config).write(dir.join(CHECKPOINT_FILE))?;
        self.save_weights(dir)
    }

    /// Writes the evaluated weights (EMA when there is one) in the official state-dict layout
    /// into `dir`, atomically.
    pub fn save_weights(&self, dir: &Path) -> Result<()> {
        let weights = SafetensorsFile {
            tensors: self.eval_model().state_dict().into_iter().collect(),
            metadata: HashMap::from([
                ("config".into(), self.model.config.to_official_json()),
                ("step".into(), self.step.to_string()),
            ]),
        };
        weights.write(dir.join(WEIGHTS_FILE))
    }
}

/// The compact form of checkpoint `f`, for committing and carrying a run to another machine:
/// every tensor and metadata entry as in `f` except the ACT carry (dropped: a resume starts
/// every row of the streaming batch afresh, as at a data stage change; it is also the one part
/// tied to the run's batch size) and the Adam moments (rounded to bf16, half their size), plus
/// a `compact` metadata entry. Weights and EMA weights stay exact. Resuming from it continues
/// the run, not bit for bit. At hidden 128 with batch 64: 6.3 MB instead of 13.8 (the carry
/// was 5.4 MB of it).
pub fn compact(f: &SafetensorsFile) -> SafetensorsFile {
    let mut out = f.clone();
    out.tensors.retain(|k, _| !k.starts_with("carry."));
    for (name, t) in out.tensors.iter_mut() {
        if name.starts_with("adam.") {
            *t = t.clone().convert::<bf16>();
        }
    }
    out.metadata.insert("compact".into(), COMPACT_NOTE.into());
    seal(&mut out);
    out
}

/// Whether checkpoint tensor `name` is a weight or an EMA weight (not an Adam moment or part of
/// the ACT carry).
fn is_weight(name: &str) -> bool {
    name.starts_with("model.") || name.starts_with("ema.")
}

/// The snapshot of checkpoint `f` that `train.keep_every` keeps: its weights and EMA weights
/// exactly, its metadata, and a [`SNAPSHOT_KEY`] entry; no ACT carry and no Adam moments (a
/// third of the size). For evaluation, export and [`average`]: `train --resume` refuses it.
pub fn snapshot(f: &SafetensorsFile) -> SafetensorsFile {
    let mut out = f.clone();
    out.tensors.retain(|k, _| is_weight(k));
    out.metadata
        .insert(SNAPSHOT_KEY.into(), "weights and EMA weights only".into());
    seal(&mut out);
    out
}

/// The weight average of checkpoints `files` (named by their source, for errors): the
/// checkpoint `files[newest]` with every weight and EMA weight replaced by its mean over all of
/// them (summed in f64), without ACT carry and Adam moments, and with an [`AVERAGED_KEY`]
/// metadata entry naming the steps. Averaging checkpoints of one run a few hundred steps apart
/// smooths the swings a single checkpoint shows (an EMA over a longer window). It is for
/// evaluation and export: `train --resume` refuses it. All must have the same weight names and
/// shapes.
pub fn average(files: &[(String, &SafetensorsFile)], newest: usize) -> Result<SafetensorsFile> {
    let (base_name, base) = files.get(newest).context("no checkpoint to average")?;
    let mut out = SafetensorsFile {
        tensors: HashMap::new(),
        metadata: base.metadata.clone(),
    };
    for (name, t) in base.tensors.iter().filter(|(k, _)| is_weight(k)) {
        let mut sum = vec![0f64; t.num_elements()];
        for (source, f) in files {
            let u = f.tensors.get(name).with_context(|| {
                format!("{source} has no {name}, which {base_name} has: not the same model")
            })?;
            ensure!(
                u.shape() == t.shape(),
                "{name} has shape {:?} in {source}, {:?} in {base_name}: not the same model",
                u.shape().as_slice(),
                t.shape().as_slice()
            );
            let v = u
                .clone()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("{source}: {name}: {e:?}"))?;
            for (s, x) in sum.iter_mut().zip(v) {
                *s += f64::from(x);
            }
        }
        let n = files.len() as f64;
        let mean: Vec<f32> = sum.into_iter().map(|s| (s / n) as f32).collect();
        out.tensors
            .insert(name.clone(), TensorData::new(mean, t.shape().clone()));
    }
    for (source, f) in files {
        if let Some(extra) = f
            .tensors
            .keys()
            .find(|k| is_weight(k) && !base.tensors.contains_key(*k))
        {
            anyhow::bail!("{source} has {extra}, which {base_name} has not: not the same model");
        }
    }
    let mut steps: Vec<u64> = files
        .iter()
        .map(|(source, f)| {
            f.meta("step")?
                .parse()
                .with_context(|| format!("{source}: checkpoint metadata step is not a number"))
        })
        .collect::<Result<_>>()?;
    steps.sort_unstable();
    let steps: Vec<String> = steps.iter().map(u64::to_string).collect();
    out.metadata
        .insert(AVERAGED_KEY.into(), format!("steps {}", steps.join(", ")));
    out.metadata.remove("compact");
    seal(&mut out);
    Ok(out)
}

/// CRC-32 (ISO-HDLC) over every tensor (name, dtype, shape, bytes, in name order) and every
/// metadata entry but the checksum itself (in key order), as 8 hex digits.
fn checksum(f: &SafetensorsFile) -> String {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let mut digest = CRC.digest();
    let mut field = |bytes: &[u8]| {
        digest.update(&(bytes.len() as u64).to_le_bytes());
        digest.update(bytes);
    };
    let mut names: Vec<&String> = f.tensors.keys().collect();
    names.sort();
    for name in names {
        let t = &f.tensors[name];
        field(name.as_bytes());
        field(format!("{:?}{:?}", t.dtype(), t.shape().as_slice()).as_bytes());
        field(t.as_bytes());
    }
    let mut keys: Vec<&String> = f.metadata.keys().filter(|k| *k != CHECKSUM_KEY).collect();
    keys.sort();
    for key in keys {
        field(key.as_bytes());
        field(f.metadata[key].as_bytes());
    }
    format!("crc32:{:08x}", digest.finalize())
}

/// Stores the checksum of `f` in its metadata.
pub fn seal(f: &mut SafetensorsFile) {
    let sum = checksum(f);
    f.metadata.insert(CHECKSUM_KEY.into(), sum);
}

/// Checks the stored checksum. Checkpoints written before checksums existed have none and
/// pass.
pub fn verify_checksum(f: &SafetensorsFile) -> Result<()> {
    if let Some(stored) = f.metadata.get(CHECKSUM_KEY) {
        let actual = checksum(f);
        ensure!(
            *stored == actual,
            "the checkpoint is damaged: its checksum is {stored}, its contents give {actual}"
        );
    }
    Ok(())
}
