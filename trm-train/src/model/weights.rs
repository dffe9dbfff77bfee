//! Official state-dict names, safetensors I/O and named traversal of the model's parameters.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{DType, Tensor, TensorData, bf16};

use super::trm::Trm;

/// Prefix of every official model tensor name (`ACTLossHead.model.inner`).
pub const OFFICIAL_PREFIX: &str = "model.inner.";
/// Extra prefix of checkpoints saved after `torch.compile`.
pub const COMPILE_PREFIX: &str = "_orig_mod.";

/// Official name of the puzzle-embedding buffer.
pub const PUZZLE_EMB_NAME: &str = "model.inner.puzzle_emb.weights";
/// Official name of the `H_init` buffer.
pub const H_INIT_NAME: &str = "model.inner.H_init";
/// Official name of the `L_init` buffer.
pub const L_INIT_NAME: &str = "model.inner.L_init";

/// Maps a burn module path (`l_level.layers.0.mlp.down_proj.weight`) to the official
/// state-dict name (`model.inner.L_level.layers.0.mlp.down_proj.weight`).
pub fn official_name(path: &[String]) -> String {
    let mut s = String::from(OFFICIAL_PREFIX);
    for (i, p) in path.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(if p == "l_level" { "L_level" } else { p });
    }
    s
}

/// A function applied to every trainable parameter with its official name.
pub trait NamedParamFn {
    /// Returns the new value of parameter `name` (same shape).
    fn apply<const D: usize>(&mut self, name: &str, value: Tensor<D>) -> Tensor<D>;
}

/// A read-only visit of every trainable parameter with its official name.
pub trait NamedParamVisit {
    /// Called once per parameter, in `model.parameters()` order.
    fn visit<const D: usize>(&mut self, name: &str, value: &Tensor<D>);
}

struct PathMapper<'a, F> {
    path: Vec<String>,
    f: &'a mut F,
}

impl<F: NamedParamFn> ModuleMapper for PathMapper<'_, F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = official_name(&self.path);
        let (id, value, mapper) = param.consume();
        let autodiff = value.is_autodiff();
        let require_grad = value.is_require_grad();
        let new = self.f.apply(&name, value).without_autodiff();
        let new = match (autodiff, require_grad) {
            (true, true) => new.autodiff().require_grad(),
            (true, false) => new.autodiff(),
            _ => new,
        };
        Param::from_mapped_value(id, new, mapper)
    }
}

struct PathVisitor<'a, F> {
    path: Vec<String>,
    f: &'a mut F,
}

impl<F: NamedParamVisit> ModuleVisitor for PathVisitor<'_, F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let name = official_name(&self.path);
        self.f.visit(&name, &param.val());
    }
}

impl Trm {
    /// Replaces every trainable parameter by `f(name, value)`; gradient tracking is kept.
    pub fn map_named_params<F: NamedParamFn>(self, f: &mut F) -> Self {
        let mut mapper = PathMapper {
            path: Vec::new(),
            f,
        };
        self.map(&mut mapper)
    }

    /// Visits every trainable parameter with its official name.
    pub fn visit_named_params<F: NamedParamVisit>(&self, f: &mut F) {
        let mut visitor = PathVisitor {
            path: Vec::new(),
            f,
        };
        self.visit(&mut visitor);
    }

    /// Official names of the trainable parameters, in traversal order.
    pub fn param_names(&self) -> Vec<String> {
        struct Names(Vec<String>);
        impl NamedParamVisit for Names {
            fn visit<const D: usize>(&mut self, name: &str, _: &Tensor<D>) {
                self.0.push(name.to_string());
            }
        }
        let mut n = Names(Vec::new());
        self.visit_named_params(&mut n);
        n.0
    }

    /// The state dict (official names, f32): trainable parameters and the buffers
    /// `H_init`, `L_init`, `puzzle_emb.weights`.
    pub fn state_dict(&self) -> Vec<(String, TensorData)> {
        struct Collect(Vec<(String, TensorData)>);
        impl NamedParamVisit for Collect {
            fn visit<const D: usize>(&mut self, name: &str, value: &Tensor<D>) {
                self.0.push((name.to_string(), value.to_data()));
            }
        }
        let mut c = Collect(Vec::new());
        self.visit_named_params(&mut c);
        c.0.push((H_INIT_NAME.into(), self.h_init.to_data()));
        c.0.push((L_INIT_NAME.into(), self.l_init.to_data()));
        if let Some(pe) = &self.puzzle_emb {
            c.0.push((PUZZLE_EMB_NAME.into(), pe.to_data()));
        }
        c.0
    }

    /// Loads the trainable parameters and buffers from a state dict with official names
    /// (`_orig_mod.` prefixes already stripped, see [`strip_compile_prefix`]). Every tensor the
    /// model needs must be present with the exact shape; extra entries are ignored.
    pub fn load_state_dict(self, dict: &HashMap<String, TensorData>) -> anyhow::Result<Self> {
        struct Load<'a> {
            dict: &'a HashMap<String, TensorData>,
            err: Option<anyhow::Error>,
        }
        impl NamedParamFn for Load<'_> {
            fn apply<const D: usize>(&mut self, name: &str, value: Tensor<D>) -> Tensor<D> {
                match lookup(self.dict, name, &value.dims()) {
                    Ok(data) => Tensor::from_data(data, &value.device()),
                    Err(e) => {
                        self.err.get_or_insert(e);
                        value
                    }
                }
            }
        }
        let mut load = Load { dict, err: None };
        let mut model = self.map_named_params(&mut load);
        if let Some(e) = load.err {
            return Err(e);
        }
        let device = model.h_init.device();
        model.h_init = Tensor::from_data(lookup(dict, H_INIT_NAME, &model.h_init.dims())?, &device);
        model.l_init = Tensor::from_data(lookup(dict, L_INIT_NAME, &model.l_init.dims())?, &device);
        if let Some(pe) = &model.puzzle_emb {
            let dims = pe.dims();
            model.puzzle_emb = Some(Tensor::from_data(
                lookup(dict, PUZZLE_EMB_NAME, &dims)?,
                &device,
            ));
        }
        Ok(model)
    }

    /// Replaces the puzzle-embedding table (`[num_ids, ndim]`).
    pub fn with_puzzle_emb(mut self, weights: Tensor<2>) -> Self {
        self.puzzle_emb = Some(weights);
        self
    }
}

fn lookup(
    dict: &HashMap<String, TensorData>,
    name: &str,
    dims: &[usize],
) -> anyhow::Result<TensorData> {
    let data = dict
        .get(name)
        .with_context(|| format!("tensor {name} missing from the state dict"))?;
    ensure!(
        data.shape().as_slice() == dims,
        "tensor {name}: shape {:?} in the file, the model expects {dims:?}",
        data.shape().as_slice()
    );
    Ok(data.clone().convert::<f32>())
}

/// Strips the `torch.compile` prefix `_orig_mod.` from a state-dict name.
pub fn strip_compile_prefix(name: &str) -> &str {
    name.strip_prefix(COMPILE_PREFIX).unwrap_or(name)
}

/// A safetensors file read into memory: tensors (names with `_orig_mod.` stripped) and the
/// `__metadata__` string map.
#[derive(Clone, Debug, Default)]
pub struct SafetensorsFile {
    /// Tensors by name; F32/F64/BF16/I32/I64/U8/BOOL keep their dtype.
    pub tensors: HashMap<String, TensorData>,
    /// `__metadata__` (all values are strings).
    pub metadata: HashMap<String, String>,
}

impl SafetensorsFile {
    /// Reads a safetensors file.
    pub fn read(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_bytes(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// Parses safetensors bytes.
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        use safetensors::{Dtype, SafeTensors};
        let (_, meta) = SafeTensors::read_metadata(bytes)?;
        let metadata = meta.metadata().clone().unwrap_or_default();
        let st = SafeTensors::deserialize(bytes)?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let shape = view.shape().to_vec();
            let raw = view.data();
            let data = match view.dtype() {
                Dtype::F32 => TensorData::new(le_vec::<4, f32>(raw, f32::from_le_bytes), shape),
                Dtype::F64 => TensorData::new(le_vec::<8, f64>(raw, f64::from_le_bytes), shape),
                Dtype::I32 => TensorData::new(le_vec::<4, i32>(raw, i32::from_le_bytes), shape),
                Dtype::I64 => TensorData::new(le_vec::<8, i64>(raw, i64::from_le_bytes), shape),
                Dtype::U8 => TensorData::new(raw.to_vec(), shape),
                Dtype::BF16 => TensorData::new(le_vec::<2, bf16>(raw, bf16::from_le_bytes), shape),
                Dtype::BOOL => TensorData::new(raw.iter().map(|&b| b != 0).collect(), shape),
                other => bail!("tensor {name}: unsupported dtype {other:?}"),
            };
            tensors.insert(strip_compile_prefix(&name).to_string(), data);
        }
        Ok(Self { tensors, metadata })
    }

    /// Writes tensors and metadata (f32 / f64 / bf16 / i32 / i64 / bool tensors) to a
    /// safetensors file, atomically ([`crate::atomic`]).
    pub fn write(&self, path: impl AsRef<Path>) -> anyhow::Result<()> {
        crate::atomic::write_bytes(path.as_ref(), &self.to_bytes()?)
    }

    /// The safetensors bytes of tensors and metadata: the same file always gives the same
    /// bytes (tensors by name, metadata keys sorted).
    pub fn to_bytes(&self) -> anyhow::Result<Vec<u8>> {
        use safetensors::Dtype;
        let mut names: Vec<&String> = self.tensors.keys().collect();
        names.sort();
        let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for name in names {
            let t = &self.tensors[name];
            let shape = t.shape().as_slice().to_vec();
            let (dtype, bytes) = match t.dtype() {
                DType::F32 => (Dtype::F32, t.as_bytes().to_vec()),
                DType::F64 => (Dtype::F64, t.as_bytes().to_vec()),
                DType::I32 => (Dtype::I32, t.as_bytes().to_vec()),
                DType::I64 => (Dtype::I64, t.as_bytes().to_vec()),
                DType::BF16 => (Dtype::BF16, t.as_bytes().to_vec()),
                DType::Bool(_) => (
                    Dtype::BOOL,
                    t.try_to_vec::<bool>()
                        .map_err(|e| anyhow::anyhow!("{e:?}"))?
                        .into_iter()
                        .map(u8::from)
                        .collect(),
                ),
                other => bail!("tensor {name}: unsupported dtype {other:?}"),
            };
            owned.push((name.clone(), dtype, shape, bytes));
        }
        let views = owned
            .iter()
            .map(|(n, d, s, b)| {
                Ok((
                    n.clone(),
                    safetensors::tensor::TensorView::new(*d, s.clone(), b)?,
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let meta = (!self.metadata.is_empty()).then(|| self.metadata.clone());
        let mut bytes = safetensors::serialize(views, meta)?;
        sort_header_metadata(&mut bytes)?;
        Ok(bytes)
    }

    /// A tensor by name, or an error naming it.
    pub fn get(&self, name: &str) -> anyhow::Result<&TensorData> {
        self.tensors
            .get(name)
            .with_context(|| format!("tensor {name} missing"))
    }

    /// A metadata value by key, or an error naming it.
    pub fn meta(&self, key: &str) -> anyhow::Result<&str> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .with_context(|| format!("metadata key {key} missing"))
    }
}

/// Rewrites the `__metadata__` object of a safetensors header with its keys sorted
/// (`safetensors::serialize` writes them in hash-map order, which differs from run to run).
/// The header keeps its length: the same pairs in another order.
fn sort_header_metadata(bytes: &mut [u8]) -> anyhow::Result<()> {
    use std::collections::BTreeMap;
    let len = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
    let header = &bytes[8..8 + len];
    let mut top: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header)?;
    let Some(meta) = top.remove("__metadata__") else {
        return Ok(());
    };
    let meta: BTreeMap<String, String> = serde_json::from_value(meta)?;
    // `__metadata__` first, as safetensors writes it, then the tensors (by name, as written).
    let mut sorted = serde_json::to_vec(&serde_json::json!({ "__metadata__": meta }))?;
    sorted.pop();
    for (name, info) in top {
        sorted.push(b',');
        sorted.extend(serde_json::to_vec(&name)?);
        sorted.push(b':');
        sorted.extend(serde_json::to_vec(&info)?);
    }
    sorted.push(b'}');
    ensure!(
        sorted.len() <= len,
        "safetensors header grew from {len} to {} bytes when sorted",
        sorted.len()
    );
    bytes[8..8 + sorted.len()].copy_from_slice(&sorted);
    bytes[8 + sorted.len()..8 + len].fill(b' ');
    Ok(())
}

fn le_vec<const N: usize, T>(raw: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunk of N bytes")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TrmConfig;
    use burn::tensor::Device;
    use rand::SeedableRng;

    #[allow(deprecated)]
    fn cpu() -> Device {
        Device::ndarray()
    }

    #[test]
    fn the_same_file_gives_the_same_bytes() {
        let file = || {
            let mut f = SafetensorsFile::default();
            for i in 0..12 {
                f.metadata.insert(format!("key{i}"), format!("value {i}"));
                f.tensors
                    .insert(format!("t{i}"), TensorData::new(vec![i as f32; 3], [3]));
            }
            f
        };
        let (a, b) = (file().to_bytes().unwrap(), file().to_bytes().unwrap());
        assert!(a == b, "two writes of the same file differ");
        let back = SafetensorsFile::from_bytes(&a).unwrap();
        assert_eq!(back.metadata, file().metadata);
        assert_eq!(back.tensors.len(), 12);
        assert_eq!(back.get("t7").unwrap().as_slice::<f32>().unwrap(), [7.0; 3]);
    }

    #[test]
    fn state_dict_round_trips_through_safetensors() {
        let dev = cpu();
        let cfg = TrmConfig::new()
            .with_hidden_size(16)
            .with_puzzle_emb_ndim(16)
            .with_puzzle_emb_len(2)
            .with_num_heads(2)
            .with_mlp_t(false)
            .with_pos_encodings(crate::model::PosEncoding::Rope);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let a = cfg.init(&mut rng, &dev);
        let file = SafetensorsFile {
            tensors: a
                .state_dict()
                .into_iter()
                .map(|(k, v)| (format!("{COMPILE_PREFIX}{k}"), v))
                .collect(),
            metadata: [("config".to_string(), cfg.to_official_json())].into(),
        };
        let path =
            std::env::temp_dir().join(format!("trm-weights-{}.safetensors", std::process::id()));
        file.write(&path).unwrap();
        let back = SafetensorsFile::read(&path).unwrap();
        std::fs::remove_file(&path).ok();
        let cfg2 = TrmConfig::from_official_json(back.meta("config").unwrap()).unwrap();
        assert_eq!(cfg, cfg2);
        let b = cfg2
            .init(&mut rand_chacha::ChaCha8Rng::seed_from_u64(2), &dev)
            .load_state_dict(&back.tensors)
            .unwrap();
        let (sa, sb) = (a.state_dict(), b.state_dict());
        assert_eq!(sa.len(), sb.len());
        for ((na, da), (nb, db)) in sa.iter().zip(&sb) {
            assert_eq!(na, nb);
            assert_eq!(da, db, "{na}");
        }
        // Official init of the Q-head: weight 0, bias -5.
        let bias = a.q_head.bias.as_ref().unwrap().val().into_data();
        assert_eq!(bias.try_to_vec::<f32>().unwrap(), vec![-5.0, -5.0]);
    }

    #[test]
    fn missing_or_misshaped_tensors_are_errors() {
        let dev = cpu();
        let cfg = TrmConfig::new()
            .with_hidden_size(16)
            .with_puzzle_emb_ndim(16);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let model = cfg.init(&mut rng, &dev);
        let mut dict: HashMap<String, TensorData> = model.state_dict().into_iter().collect();
        dict.remove("model.inner.lm_head.weight");
        let err = model.clone().load_state_dict(&dict).unwrap_err();
        assert!(err.to_string().contains("lm_head.weight"), "{err}");
        dict.insert(
            "model.inner.lm_head.weight".into(),
            TensorData::new(vec![0f32; 3], [3]),
        );
        let err = model.load_state_dict(&dict).unwrap_err();
        assert!(err.to_string().contains("shape"), "{err}");
    }
}
