//! The writer: packs f32 tensors (converted to the requested dtypes) into a caller buffer.

use super::config::ModelConfig;
use super::error::WriteError;
use super::layout::{
    CRC, CRC_LEN, ENTRY_LEN, Entry, HEADER_LEN, Header, align_up, encode_entry, encode_header,
};
use super::quantize::{encode_f16, encode_f32, quantize_row_i8};
use super::read::Model;
use super::tensor::{DType, TensorId, required_tensors};
use crate::kernels::f16::f32_to_f16;

/// One tensor handed to the writer: f32 values and the dtype to store them as.
#[derive(Clone, Copy, Debug)]
pub struct TensorInput<'a> {
    /// Which tensor.
    pub id: TensorId,
    /// `[rows, cols]` as in the official state dict (`[out, in]`); vectors are `[n, 1]`.
    pub shape: [usize; 2],
    /// Storage type. Vectors and RoPE tables must be [`DType::F32`].
    pub dtype: DType,
    /// Row-major values, `rows · cols` of them.
    pub data: &'a [f32],
}

/// Where one tensor goes in the file.
#[derive(Clone, Copy)]
struct Placement<'t, 'a> {
    input: &'t TensorInput<'a>,
    entry: Entry,
}

fn too_large<T>(v: Option<T>) -> Result<T, WriteError> {
    v.ok_or(WriteError::TooLarge)
}

/// Checks `input` against `cfg` and returns the entry it gets at offset `start`, with the
/// end of its data.
fn place<'t, 'a>(
    cfg: &ModelConfig,
    id: TensorId,
    tensors: &'t [TensorInput<'a>],
    start: usize,
) -> Result<(Placement<'t, 'a>, usize), WriteError> {
    let mut found = tensors.iter().filter(|t| t.id == id);
    let input = found.next().ok_or(WriteError::Missing { id })?;
    if found.next().is_some() {
        return Err(WriteError::Duplicate { id });
    }
    let expected = id.kind.shape(cfg);
    if input.shape != expected {
        return Err(WriteError::Shape {
            id,
            expected,
            found: input.shape,
        });
    }
    let numel = too_large(expected[0].checked_mul(expected[1]))?;
    if input.data.len() != numel {
        return Err(WriteError::DataLength { id });
    }
    if id.kind.f32_only() && input.dtype != DType::F32 {
        return Err(WriteError::DtypeNotAllowed { id });
    }
    if input.data.iter().any(|v| !v.is_finite()) {
        return Err(WriteError::NonFinite { id });
    }
    // Checked on the encoded value: |v| >= 65520 rounds to infinity in binary16.
    if input.dtype == DType::F16
        && let Some(&value) = input.data.iter().find(|&&v| !f16_is_finite(f32_to_f16(v)))
    {
        return Err(WriteError::F16Range { id, value });
    }
    let offset = too_large(align_up(start))?;
    let length = too_large(numel.checked_mul(input.dtype.size()))?;
    let mut end = too_large(offset.checked_add(length))?;
    let (mut scale_offset, mut scale_length) = (0, 0);
    if input.dtype == DType::I8 {
        scale_offset = too_large(align_up(end))?;
        scale_length = too_large(expected[0].checked_mul(4))?;
        end = too_large(scale_offset.checked_add(scale_length))?;
    }
    let entry = Entry {
        id: Some(id),
        dtype: Some(input.dtype),
        rank: if id.kind.is_vector() { 1 } else { 2 },
        shape: expected,
        offset,
        length,
        scale_offset,
        scale_length,
    };
    Ok((Placement { input, entry }, end))
}

/// Validates the inputs and computes `(data_offset, file_len)`.
fn plan(cfg: &ModelConfig, tensors: &[TensorInput<'_>]) -> Result<(usize, usize), WriteError> {
    cfg.validate().map_err(WriteError::Config)?;
    if let Some(t) = tensors.iter().find(|t| !t.id.used_by(cfg)) {
        return Err(WriteError::Unexpected { id: t.id });
    }
    let count = required_tensors(cfg).count();
    let table_end = too_large(
        count
            .checked_mul(ENTRY_LEN)
            .and_then(|n| n.checked_add(HEADER_LEN)),
    )?;
    let data_offset = too_large(align_up(table_end))?;
    let mut end = data_offset;
    for id in required_tensors(cfg) {
        end = place(cfg, id, tensors, end)?.1;
    }
    let file_len = too_large(end.checked_add(CRC_LEN))?;
    if u32::try_from(file_len).is_err() {
        return Err(WriteError::TooLarge);
    }
    Ok((data_offset, file_len))
}

/// Whether binary16 bits `h` are a finite value (exponent field not all ones).
const fn f16_is_finite(h: u16) -> bool {
    h & 0x7c00 != 0x7c00
}

/// Exact size in bytes of the packed file for these inputs (what [`write_model`] writes).
///
/// Fails with the same errors as [`write_model`] (except [`WriteError::BufferTooSmall`]).
pub fn packed_size(cfg: &ModelConfig, tensors: &[TensorInput<'_>]) -> Result<usize, WriteError> {
    plan(cfg, tensors).map(|(_, len)| len)
}

/// Packs a model into `out` and returns the number of bytes written (= [`packed_size`]).
///
/// `tensors` must hold exactly the tensors the config uses ([`required_tensors`]), in any
/// order. Each is stored as its `dtype`: f32 as is, f16 rounded to nearest even, int8
/// quantised per row (see [`super::quantize::quantize_row_i8`]). Padding is zero; the
/// result is checked with [`Model::from_bytes`] before returning.
pub fn write_model(
    cfg: &ModelConfig,
    tensors: &[TensorInput<'_>],
    out: &mut [u8],
) -> Result<usize, WriteError> {
    let (data_offset, file_len) = plan(cfg, tensors)?;
    let got = out.len();
    let out = out.get_mut(..file_len).ok_or(WriteError::BufferTooSmall {
        needed: file_len,
        got,
    })?;
    out.fill(0);
    let header = Header {
        file_len,
        tensor_count: required_tensors(cfg).count(),
        data_offset,
        config: *cfg,
    };
    encode_header(&header, out);
    let mut end = data_offset;
    for (i, id) in required_tensors(cfg).enumerate() {
        let (p, next) = place(cfg, id, tensors, end)?;
        end = next;
        let at = HEADER_LEN + i * ENTRY_LEN;
        if let Some(dst) = out.get_mut(at..at + ENTRY_LEN) {
            encode_entry(&p.entry, dst);
        }
        write_values(&p, out);
    }
    let (content, trailer) = out.split_at_mut(file_len - CRC_LEN);
    trailer.copy_from_slice(&CRC.checksum(content).to_le_bytes());
    Model::from_bytes(out).map_err(WriteError::Config)?;
    Ok(file_len)
}

/// Packs a model into a new vector: [`packed_size`] and [`write_model`] in one call, for host
/// tools (export, tests, benches, the firmware's build script). Needs the `alloc` feature.
///
/// `tensors` holds `(id, [rows, cols], row-major f32 values)` for exactly the tensors the config
/// uses. Weight matrices are stored as `dtype`; vectors and RoPE tables
/// ([`super::TensorKind::f32_only`]) stay f32 whatever `dtype` is.
#[cfg(feature = "alloc")]
pub fn pack_to_vec<D: AsRef<[f32]>>(
    cfg: &ModelConfig,
    dtype: DType,
    tensors: &[(TensorId, [usize; 2], D)],
) -> Result<alloc::vec::Vec<u8>, WriteError> {
    let inputs: alloc::vec::Vec<TensorInput<'_>> = tensors
        .iter()
        .map(|(id, shape, data)| TensorInput {
            id: *id,
            shape: *shape,
            dtype: if id.kind.f32_only() {
                DType::F32
            } else {
                dtype
            },
            data: data.as_ref(),
        })
        .collect();
    let mut out = alloc::vec![0u8; packed_size(cfg, &inputs)?];
    let written = write_model(cfg, &inputs, &mut out)?;
    out.truncate(written);
    Ok(out)
}

/// Encodes one tensor's values (and int8 scales) at its placement.
fn write_values(p: &Placement<'_, '_>, out: &mut [u8]) {
    let e = &p.entry;
    let data = p.input.data;
    // Int8 scales follow the values, so splitting there gives both regions at once.
    let split = if e.scale_length > 0 {
        e.scale_offset
    } else {
        e.offset + e.length
    };
    let (head, tail) = out.split_at_mut(split.min(out.len()));
    let Some(dst) = head.get_mut(e.offset..e.offset + e.length) else {
        return;
    };
    match p.input.dtype {
        DType::F32 => encode_f32(data, dst),
        DType::F16 => encode_f16(data, dst),
        DType::I8 => {
            let cols = e.shape[1].max(1);
            let scales = tail.get_mut(..e.scale_length).unwrap_or(&mut []);
            let rows = data.chunks_exact(cols).zip(dst.chunks_exact_mut(cols));
            for ((row, q), s) in rows.zip(scales.as_chunks_mut::<4>().0) {
                *s = quantize_row_i8(row, q).to_le_bytes();
            }
        }
    }
}
