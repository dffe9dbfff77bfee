//! [`Model::from_bytes`]: validating a packed file and viewing its tensors in place.

use super::config::ModelConfig;
use super::error::FormatError;
use super::layout::{
    ALIGN, CRC, CRC_LEN, ENTRY_LEN, Entry, HEADER_LEN, decode_entry, decode_header,
};
use super::tensor::{DType, TensorId, TensorKind, required_tensors};
use crate::kernels::{Matrix, Weights};

/// A validated packed model, borrowing its bytes (zero-copy: weights are read in place, e.g.
/// from memory-mapped flash).
///
/// Construction checks everything the runtime relies on, so no later operation on a `Model`
/// can index out of bounds or overflow.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    config: ModelConfig,
    file: &'a [u8],
    table: &'a [u8],
    /// Table index of block 0 of each per-layer kind (`TensorKind::code() - 16`), if used.
    layer_base: [Option<usize>; 6],
    scratch_len: usize,
}

/// A stored tensor: its id, element type, shape and weights.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    /// Which tensor.
    pub id: TensorId,
    /// `[rows, cols]` (`cols = 1` for vectors).
    pub shape: [usize; 2],
    /// The values, viewed as a `[rows, cols]` matrix (vectors as `[n, 1]`).
    pub matrix: Matrix<'a>,
}

fn bad(index: usize, what: &'static str) -> FormatError {
    FormatError::BadTensor { index, what }
}

/// Checks that `offset..offset + len` is an aligned range inside `lo..hi`; returns its end.
fn range(
    index: usize,
    offset: usize,
    len: usize,
    lo: usize,
    hi: usize,
) -> Result<usize, FormatError> {
    if !offset.is_multiple_of(ALIGN) {
        return Err(bad(index, "offset not aligned to 64 bytes"));
    }
    if offset < lo {
        return Err(bad(index, "overlaps the previous tensor or the table"));
    }
    match offset.checked_add(len) {
        Some(end) if end <= hi => Ok(end),
        _ => Err(bad(index, "data out of bounds")),
    }
}

/// Checks entry `index` against the tensor the config expects there; returns the end of its
/// data (values and scales).
fn check_entry(
    index: usize,
    e: &Entry,
    cfg: &ModelConfig,
    lo: usize,
    hi: usize,
) -> Result<usize, FormatError> {
    let id = e.id.ok_or(bad(index, "unknown tensor kind"))?;
    let dtype = e.dtype.ok_or(bad(index, "unknown dtype"))?;
    if id.kind.f32_only() && dtype != DType::F32 {
        return Err(bad(index, "this tensor must be f32"));
    }
    let rank = if id.kind.is_vector() { 1 } else { 2 };
    if e.rank != rank || e.shape != id.kind.shape(cfg) {
        return Err(bad(index, "shape does not match the header's config"));
    }
    let numel = e.shape[0]
        .checked_mul(e.shape[1])
        .ok_or(bad(index, "shape overflows"))?;
    if Some(e.length) != numel.checked_mul(dtype.size()) {
        return Err(bad(index, "byte length != elements * dtype size"));
    }
    let end = range(index, e.offset, e.length, lo, hi)?;
    if dtype == DType::I8 {
        if Some(e.scale_length) != e.shape[0].checked_mul(4) {
            return Err(bad(index, "int8 scales are not one f32 per row"));
        }
        range(index, e.scale_offset, e.scale_length, end, hi)
    } else if e.scale_offset != 0 || e.scale_length != 0 {
        Err(bad(index, "scales on a non-int8 tensor"))
    } else {
        Ok(end)
    }
}

impl<'a> Model<'a> {
    /// Validates a packed model and returns a view of it.
    ///
    /// `bytes` may be longer than the file (e.g. a flash partition): only the first
    /// `file_len` bytes (from the header) are used. Weights are not copied; tensors may start
    /// at any address (kernels read them with `from_le_bytes`), although 64-byte alignment of
    /// `bytes` makes SIMD loads aligned.
    ///
    /// Checks, in order: magic, version, length ([`FormatError::Truncated`]), CRC-32, header
    /// fields and config, then every table entry (canonical order, known kind and dtype, shape
    /// from the config, aligned non-overlapping in-bounds data, int8 scales).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, FormatError> {
        let h = decode_header(bytes)?;
        if h.file_len < HEADER_LEN + CRC_LEN {
            return Err(FormatError::BadHeader {
                what: "file length smaller than a header",
            });
        }
        let file = bytes.get(..h.file_len).ok_or(FormatError::Truncated {
            needed: h.file_len,
            got: bytes.len(),
        })?;
        let (content, trailer) = file.split_at(h.file_len - CRC_LEN);
        let stored = super::layout::u32_at(trailer, 0).unwrap_or(0);
        let computed = CRC.checksum(content);
        if stored != computed {
            return Err(FormatError::CrcMismatch { stored, computed });
        }
        let cfg = h.config;
        cfg.validate()?;
        let scratch_len = crate::runtime::scratch_len(&cfg).ok_or(FormatError::BadConfig {
            what: "working memory size overflows",
        })?;
        let bad_header = |what| FormatError::BadHeader { what };
        if h.tensor_count != required_tensors(&cfg).count() {
            return Err(bad_header("tensor count does not match the config"));
        }
        let table_end = h
            .tensor_count
            .checked_mul(ENTRY_LEN)
            .and_then(|n| n.checked_add(HEADER_LEN))
            .ok_or(bad_header("tensor table too large"))?;
        let table = content
            .get(HEADER_LEN..table_end)
            .ok_or(bad_header("tensor table out of bounds"))?;
        if !h.data_offset.is_multiple_of(ALIGN)
            || h.data_offset < table_end
            || h.data_offset > content.len()
        {
            return Err(bad_header("data offset"));
        }
        let mut lo = h.data_offset;
        let mut layer_base = [None; 6];
        let entries = table.chunks_exact(ENTRY_LEN);
        for (index, (raw, want)) in entries.zip(required_tensors(&cfg)).enumerate() {
            let e = decode_entry(raw).ok_or(bad(index, "reserved bytes are not zero"))?;
            match e.id {
                Some(id) if id == want => {}
                Some(id) if id.key() > want.key() => {
                    return Err(FormatError::MissingTensor { id: want });
                }
                _ => return Err(bad(index, "unexpected tensor (wrong id or order)")),
            }
            lo = check_entry(index, &e, &cfg, lo, content.len())?;
            if want.kind.per_layer()
                && want.layer == 0
                && let Some(slot) = layer_base.get_mut(usize::from(want.kind.code() - 16))
            {
                *slot = Some(index);
            }
        }
        Ok(Self {
            config: cfg,
            file,
            table,
            layer_base,
            scratch_len,
        })
    }

    /// The model configuration from the header.
    pub const fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The whole file (CRC trailer included).
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.file
    }

    /// f32 elements of working memory [`crate::runtime`] needs (see
    /// [`Model::scratch_bytes`]).
    pub const fn scratch_len(&self) -> usize {
        self.scratch_len
    }

    /// Bytes of working memory one supervision step needs (`4 · scratch_len()`), besides the
    /// caller's carry, input embedding and logits buffers. Independent of the expansion × sequence
    /// product: see [`crate::runtime`].
    pub const fn scratch_bytes(&self) -> usize {
        self.scratch_len * 4
    }

    /// Table entry `index` as a view.
    fn entry(&self, index: usize) -> Option<TensorView<'a>> {
        let raw = self
            .table
            .get(index.checked_mul(ENTRY_LEN)?..)?
            .get(..ENTRY_LEN)?;
        let e = decode_entry(raw)?;
        let id = e.id?;
        let values = self.file.get(e.offset..e.offset.checked_add(e.length)?)?;
        let weights = match e.dtype? {
            DType::F32 => Weights::F32(values),
            DType::F16 => Weights::F16(values),
            DType::I8 => Weights::I8 {
                values,
                scales: self
                    .file
                    .get(e.scale_offset..e.scale_offset.checked_add(e.scale_length)?)?,
            },
        };
        Some(TensorView {
            id,
            shape: e.shape,
            matrix: Matrix::new(e.shape[0], e.shape[1], weights)?,
        })
    }

    /// Number of tensors in the table.
    pub const fn tensor_count(&self) -> usize {
        self.table.len() / ENTRY_LEN
    }

    /// Every tensor, in table order.
    pub fn tensors(&self) -> impl Iterator<Item = TensorView<'a>> + '_ {
        (0..self.tensor_count()).filter_map(|i| self.entry(i))
    }

    /// The tensor `id`, if this model has it.
    pub fn tensor(&self, id: TensorId) -> Option<TensorView<'a>> {
        if !id.used_by(&self.config) {
            return None;
        }
        if id.kind.per_layer() {
            let base = (*self.layer_base.get(usize::from(id.kind.code() - 16))?)?;
            return self.entry(base.checked_add(usize::from(id.layer))?);
        }
        self.tensors().find(|t| t.id == id)
    }

    /// The matrix of tensor `id` (`None` if absent).
    pub(crate) fn matrix(&self, kind: TensorKind, layer: usize) -> Option<Matrix<'a>> {
        let layer = u16::try_from(layer).ok()?;
        self.tensor(TensorId { kind, layer }).map(|t| t.matrix)
    }
}
