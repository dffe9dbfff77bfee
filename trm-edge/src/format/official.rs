//! The official TRM code's files on the host (feature `official`): its config JSON as a
//! [`ModelConfig`], and an official-layout safetensors file (the reference fixtures:
//! `model.inner.*` weights, `aux.rope.*` tables, the config JSON in the `config` metadata)
//! packed into a model file. The one reader of both for the tools without burn (the
//! firmware's build script, the parity tests); `trm-train` reads the same JSON into its burn
//! model's configuration.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::config::{ModelConfig, PosEncoding, Variant, swiglu_inter};
use super::tensor::{DType, TensorId, TensorKind};
use super::write::pack_to_vec;

/// The packed-format configuration of an official config JSON. Every key the format needs
/// must be present; `mlp_t` (default `false`) and `pos_encodings` (default `"none"`) may be
/// missing; `puzzle_emb_len = 0` means `ceil(puzzle_emb_ndim / hidden_size)`, as officially.
pub fn model_config(json: &str) -> Result<ModelConfig, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("config JSON: {e}"))?;
    let u = |k: &str| -> Result<usize, String> {
        v[k].as_u64()
            .and_then(|x| usize::try_from(x).ok())
            .ok_or_else(|| format!("config key {k} is missing or not an unsigned integer"))
    };
    let f = |k: &str| -> Result<f64, String> {
        v[k].as_f64()
            .ok_or_else(|| format!("config key {k} is missing or not a number"))
    };
    let hidden = u("hidden_size")?;
    let num_heads = u("num_heads")?;
    if hidden == 0 || num_heads == 0 {
        return Err("hidden_size and num_heads must be > 0".into());
    }
    let ndim = u("puzzle_emb_ndim")?;
    let p = match u("puzzle_emb_len")? {
        0 => ndim.div_ceil(hidden),
        p => p,
    };
    let mlp_t = match &v["mlp_t"] {
        serde_json::Value::Null => false,
        x => x.as_bool().ok_or("config key mlp_t is not a bool")?,
    };
    let pos_encoding = match v["pos_encodings"].as_str() {
        None | Some("none") => PosEncoding::None,
        Some("rope") => PosEncoding::Rope,
        Some(other) => return Err(format!("pos_encodings {other:?} cannot be packed")),
    };
    let expansion = f("expansion")?;
    let seq_len = u("seq_len")?;
    Ok(ModelConfig {
        variant: if mlp_t {
            Variant::MlpT
        } else {
            Variant::Attention
        },
        pos_encoding,
        hidden,
        mlp_inter: swiglu_inter(expansion, hidden),
        mlp_t_inter: if mlp_t {
            swiglu_inter(expansion, p + seq_len)
        } else {
            0
        },
        layers: u("L_layers")?,
        h_cycles: u("H_cycles")?,
        l_cycles: u("L_cycles")?,
        halt_max_steps: u("halt_max_steps")?,
        seq_len,
        puzzle_emb_len: p,
        puzzle_emb_ndim: ndim,
        num_puzzle_ids: u("num_puzzle_identifiers")?,
        vocab: u("vocab_size")?,
        num_heads,
        head_dim: hidden / num_heads,
        rms_eps: f("rms_norm_eps")? as f32,
        rope_theta: f("rope_theta")? as f32,
        expansion: expansion as f32,
    })
}

/// Packs an official-layout safetensors file (F32 tensors; see the module docs) into a model
/// file with matrices stored as `dtype`. Returns the configuration with the bytes.
pub fn pack_official(raw: &[u8], dtype: DType) -> Result<(ModelConfig, Vec<u8>), String> {
    let header_len = raw
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or("not a safetensors file: shorter than its 8-byte header length")?;
    let header_end = header_len
        .checked_add(8)
        .filter(|&e| e <= raw.len())
        .ok_or("not a safetensors file: the header runs past the end")?;
    let header: serde_json::Value = serde_json::from_slice(&raw[8..header_end])
        .map_err(|e| format!("safetensors header: {e}"))?;
    let data = &raw[header_end..];
    let json = header["__metadata__"]["config"]
        .as_str()
        .ok_or("no `config` metadata (the official config JSON)")?;
    let cfg = model_config(json)?;
    let entries = header
        .as_object()
        .ok_or("safetensors header is not an object")?;
    let mut owned: Vec<(TensorId, [usize; 2], Vec<f32>)> = Vec::new();
    for (name, entry) in entries {
        let id = match name.as_str() {
            "aux.rope.cos" => TensorId::global(TensorKind::RopeCos),
            "aux.rope.sin" => TensorId::global(TensorKind::RopeSin),
            n if n.starts_with("model.inner.") => match TensorId::from_official_name(n) {
                Some(id) => id,
                None => continue,
            },
            _ => continue,
        };
        if entry["dtype"] != "F32" {
            return Err(format!(
                "{name}: dtype {}, only F32 is packed",
                entry["dtype"]
            ));
        }
        let dims: Vec<usize> = entry["shape"]
            .as_array()
            .ok_or_else(|| format!("{name}: no shape"))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{name}: bad shape"))?;
        let shape = match dims[..] {
            [n] => [n, 1],
            [r, c] => [r, c],
            _ => return Err(format!("{name}: shape {dims:?}")),
        };
        let offsets = entry["data_offsets"].as_array();
        let range = offsets
            .and_then(|o| Some((o.first()?.as_u64()?, o.get(1)?.as_u64()?)))
            .and_then(|(a, b)| Some(usize::try_from(a).ok()?..usize::try_from(b).ok()?))
            .filter(|r| r.start <= r.end && r.end <= data.len())
            .ok_or_else(|| format!("{name}: bad data_offsets"))?;
        let values = data[range]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        owned.push((id, shape, values));
    }
    let bytes = pack_to_vec(&cfg, dtype, &owned).map_err(|e| e.to_string())?;
    Ok((cfg, bytes))
}
