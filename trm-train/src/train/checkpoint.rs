//! The training state and its checkpoint file: weights, EMA weights, optimiser moments, the
//! ACT carry, the data position and the RNG position, in one safetensors file written
//! atomically (a temporary file, synced, then renamed over the old one); and its compact form
//! for committing (no carry, bf16 moments).

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::tensor::{Device, Tensor, TensorData, bf16};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::data::DataPosition;
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
                Some(Carry {
                    inner: InnerCarry {
                        z_h: Tensor::from_data(z_h.clone(), &inner),
                        z_l: Tensor::from_data(f.get("carry.z_L")?.clone(), &inner),
                    },
                    steps: ints("carry.steps")?.iter().map(|&s| s as u32).collect(),
                    halted: ints("carry.halted")?.iter().map(|&h| h != 0).collect(),
                    current: Batch {
                        inputs: ints("carry.inputs")?,
                        labels: ints("carry.labels")?,
                        puzzle_identifiers: ints("carry.puzzle_identifiers")?,
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

    /// Whether every weight (and EMA weight) is finite.
    pub fn weights_are_finite(&self) -> bool {
        let finite = |d: &TensorData| {
            d.clone()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .is_ok_and(|v| v.iter().all(|x| x.is_finite()))
        };
        self.model.state_dict().iter().all(|(_, d)| finite(d))
            && self
                .ema
                .iter()
                .flat_map(|e| e.shadow.values())
                .all(|t| finite(&t.to_data()))
    }

    /// Writes the checkpoint and the evaluated weights into `dir`, each atomically.
    pub fn save(&self, dir: &Path, config: &str) -> Result<()> {
        write_atomically(&dir.join(CHECKPOINT_FILE), &self.to_file(config))?;
        let weights = SafetensorsFile {
            tensors: self.eval_model().state_dict().into_iter().collect(),
            metadata: HashMap::from([
                ("config".into(), self.model.config.to_official_json()),
                ("step".into(), self.step.to_string()),
            ]),
        };
        write_atomically(&dir.join(WEIGHTS_FILE), &weights)
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
    out
}

/// Writes `file` to `path` through `path.tmp` (synced, then renamed).
pub fn write_atomically(path: &Path, file: &SafetensorsFile) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    file.write(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}
