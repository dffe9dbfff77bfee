//! Export to the packed `trm-edge` model file (`docs/model-format.md`): the weights of a
//! training run (EMA by default) or of an official state dict, with matrices stored as f32,
//! f16 or int8 (vectors, initial states and RoPE tables stay f32).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::{Device, TensorData};
use trm_edge::format::{
    DType, Model, ModelConfig, PosEncoding as EdgePos, TensorId, TensorKind, Variant, pack_to_vec,
    required_tensors,
};

use crate::model::layers::Rope;
use crate::model::{PosEncoding, SafetensorsFile, Trm, TrmConfig};

/// The packed-format description of a model configuration; an error for what the format
/// cannot hold (learned position encodings).
pub fn edge_config(c: &TrmConfig) -> Result<ModelConfig> {
    let mlp_t = c.mlp_t;
    let pos_encoding = match c.pos_encodings {
        PosEncoding::None => EdgePos::None,
        PosEncoding::Rope => EdgePos::Rope,
        PosEncoding::Learned => {
            bail!(
                "pos_encodings = \"learned\" cannot be exported (the packed format stores none or rope)"
            )
        }
    };
    let p = c.puzzle_emb_len();
    Ok(ModelConfig {
        variant: if mlp_t {
            Variant::MlpT
        } else {
            Variant::Attention
        },
        pos_encoding,
        hidden: c.hidden_size,
        mlp_inter: crate::model::config::swiglu_inter(c.expansion, c.hidden_size),
        mlp_t_inter: if mlp_t {
            crate::model::config::swiglu_inter(c.expansion, p + c.seq_len)
        } else {
            0
        },
        layers: c.l_layers,
        h_cycles: c.h_cycles,
        l_cycles: c.l_cycles,
        halt_max_steps: c.halt_max_steps,
        seq_len: c.seq_len,
        puzzle_emb_len: p,
        puzzle_emb_ndim: c.puzzle_emb_ndim,
        num_puzzle_ids: c.num_puzzle_identifiers,
        vocab: c.vocab_size,
        num_heads: c.num_heads,
        head_dim: c.head_dim(),
        rms_eps: c.rms_norm_eps as f32,
        rope_theta: c.rope_theta as f32,
        expansion: c.expansion as f32,
    })
}

/// Packs `tensors` (official state-dict names → values) of a model with configuration `cfg`,
/// matrices as `dtype`. RoPE tables are computed when the model uses them.
pub fn pack(
    cfg: &TrmConfig,
    tensors: &HashMap<String, TensorData>,
    dtype: DType,
) -> Result<Vec<u8>> {
    let ecfg = edge_config(cfg)?;
    let mut owned: HashMap<TensorId, ([usize; 2], Vec<f32>)> = HashMap::new();
    for (name, data) in tensors {
        let Some(id) = TensorId::from_official_name(name) else {
            continue;
        };
        let shape = match *data.shape().as_slice() {
            [n] => [n, 1],
            [r, c] => [r, c],
            ref s => bail!("{name}: unexpected shape {s:?}"),
        };
        let values = data
            .clone()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?;
        owned.insert(id, (shape, values));
    }
    if ecfg.pos_encoding == EdgePos::Rope {
        let rope = Rope::new(
            cfg.total_seq_len(),
            cfg.head_dim(),
            cfg.rope_theta,
            &Device::default(),
        );
        let s = [cfg.total_seq_len(), cfg.head_dim()];
        for (kind, t) in [
            (TensorKind::RopeCos, rope.cos),
            (TensorKind::RopeSin, rope.sin),
        ] {
            let v = t.into_data().convert::<f32>().try_into_vec::<f32>();
            owned.insert(TensorId::global(kind), (s, v.expect("f32 rope table")));
        }
    }
    let missing: Vec<String> = required_tensors(&ecfg)
        .filter(|id| !owned.contains_key(id))
        .map(|id| id.to_string())
        .collect();
    ensure!(
        missing.is_empty(),
        "weights missing: {}",
        missing.join(", ")
    );
    let tensors: Vec<_> = required_tensors(&ecfg)
        .map(|id| (id, owned[&id].0, &owned[&id].1))
        .collect();
    let out = pack_to_vec(&ecfg, dtype, &tensors).map_err(|e| anyhow::anyhow!("{e}"))?;
    Model::from_bytes(&out)
        .map_err(|e| anyhow::anyhow!("the packed file does not read back: {e}"))?;
    Ok(out)
}

/// Packs a burn model's weights.
pub fn pack_model(model: &Trm, dtype: DType) -> Result<Vec<u8>> {
    let tensors: HashMap<String, TensorData> = model.state_dict().into_iter().collect();
    pack(&model.config, &tensors, dtype)
}

/// Packs an official state dict saved as safetensors. The configuration is read from the
/// file's metadata: `config` (the official JSON, as in the reference fixtures) or
/// `model_config` (as `trm-train` writes it).
pub fn pack_official(path: &Path, dtype: DType) -> Result<Vec<u8>> {
    let file = SafetensorsFile::read(path)?;
    let json = file
        .meta("config")
        .or_else(|_| file.meta("model_config"))
        .with_context(|| {
            format!(
                "{} has no `config` metadata (the model configuration as official JSON)",
                path.display()
            )
        })?;
    let cfg = TrmConfig::from_official_json(json)
        .with_context(|| format!("{}: bad config metadata", path.display()))?;
    let tensors: HashMap<String, TensorData> = file
        .tensors
        .into_iter()
        .map(|(k, v)| {
            (
                crate::model::weights::strip_compile_prefix(&k).to_string(),
                v,
            )
        })
        .collect();
    pack(&cfg, &tensors, dtype).with_context(|| format!("packing {}", path.display()))
}
