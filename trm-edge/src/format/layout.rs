//! Byte layout of a packed file: constants, the fixed header and table entries.
//!
//! Everything is little-endian. See `docs/model-format.md` for the full description.

use super::config::{ModelConfig, PosEncoding, Variant};
use super::error::FormatError;
use super::tensor::{DType, TensorId, TensorKind};

/// First 8 bytes of every packed model.
pub const MAGIC: [u8; 8] = *b"TRMEDGE\x1a";
/// Format version written and accepted by this crate.
pub const VERSION: u32 = 1;
/// Bytes of the fixed header (magic included); the tensor table follows it.
pub const HEADER_LEN: usize = 128;
/// Bytes of one tensor table entry.
pub const ENTRY_LEN: usize = 32;
/// Alignment (from the start of the file) of the data and of every tensor and scale block.
pub const ALIGN: usize = 64;
/// Bytes of the CRC-32 trailer.
pub const CRC_LEN: usize = 4;

/// CRC-32/ISO-HDLC (the zlib / PNG CRC-32), over every byte before the trailer.
pub(crate) const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The fixed header, decoded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Header {
    /// Total file length in bytes, CRC trailer included.
    pub file_len: usize,
    /// Entries in the tensor table.
    pub tensor_count: usize,
    /// Offset of the tensor data region (aligned to [`ALIGN`]).
    pub data_offset: usize,
    /// The model.
    pub config: ModelConfig,
}

/// One tensor table entry, decoded but not yet checked against a config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Which tensor (`None` when the code is unknown).
    pub id: Option<TensorId>,
    /// Element type (`None` when the code is unknown).
    pub dtype: Option<DType>,
    /// 1 or 2.
    pub rank: u8,
    /// `[rows, cols]`, `cols = 1` for vectors.
    pub shape: [usize; 2],
    /// Offset of the values from the start of the file.
    pub offset: usize,
    /// Bytes of the values.
    pub length: usize,
    /// Offset of the f32 row scales (int8 only, else 0).
    pub scale_offset: usize,
    /// Bytes of the row scales (int8: `4 · rows`, else 0).
    pub scale_length: usize,
}

/// Rounds `n` up to a multiple of [`ALIGN`]; `None` on overflow.
pub const fn align_up(n: usize) -> Option<usize> {
    match n.checked_add(ALIGN - 1) {
        Some(v) => Some(v / ALIGN * ALIGN),
        None => None,
    }
}

pub(crate) fn u32_at(bytes: &[u8], off: usize) -> Option<u32> {
    let b = bytes.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn usize_at(bytes: &[u8], off: usize) -> Option<usize> {
    u32_at(bytes, off).and_then(|v| usize::try_from(v).ok())
}

fn u16_at(bytes: &[u8], off: usize) -> Option<u16> {
    let b = bytes.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn f32_at(bytes: &[u8], off: usize) -> Option<f32> {
    u32_at(bytes, off).map(f32::from_bits)
}

/// Byte offsets of the header fields after magic (8), version (4) and header length (4).
mod field {
    pub const VERSION: usize = 8;
    pub const HEADER_LEN: usize = 12;
    pub const FILE_LEN: usize = 16;
    pub const TENSOR_COUNT: usize = 20;
    pub const TABLE_OFFSET: usize = 24;
    pub const DATA_OFFSET: usize = 28;
    pub const VARIANT: usize = 32;
    pub const POS_ENCODING: usize = 33;
    pub const RESERVED16: usize = 34;
    pub const HIDDEN: usize = 36;
    pub const MLP_INTER: usize = 40;
    pub const MLP_T_INTER: usize = 44;
    pub const LAYERS: usize = 48;
    pub const H_CYCLES: usize = 52;
    pub const L_CYCLES: usize = 56;
    pub const HALT_MAX_STEPS: usize = 60;
    pub const SEQ_LEN: usize = 64;
    pub const PUZZLE_EMB_LEN: usize = 68;
    pub const PUZZLE_EMB_NDIM: usize = 72;
    pub const NUM_PUZZLE_IDS: usize = 76;
    pub const VOCAB: usize = 80;
    pub const NUM_HEADS: usize = 84;
    pub const HEAD_DIM: usize = 88;
    pub const RMS_EPS: usize = 92;
    pub const ROPE_THETA: usize = 96;
    pub const EXPANSION: usize = 100;
    pub const RESERVED: usize = 104;
}

/// Writes `v` at `off` (the caller guarantees the range is inside `out`).
fn put(out: &mut [u8], off: usize, v: &[u8]) {
    if let Some(dst) = out.get_mut(off..off + v.len()) {
        dst.copy_from_slice(v);
    }
}

fn put_u32(out: &mut [u8], off: usize, v: usize) {
    put(out, off, &(v as u32).to_le_bytes());
}

/// Encodes the fixed header into `out[..HEADER_LEN]` (sizes must fit in `u32`, which the
/// writer checks first).
pub fn encode_header(h: &Header, out: &mut [u8]) {
    use field::*;
    let c = &h.config;
    if let Some(head) = out.get_mut(..super::layout::HEADER_LEN) {
        head.fill(0);
    }
    put(out, 0, &MAGIC);
    put_u32(out, VERSION, super::layout::VERSION as usize);
    put_u32(out, HEADER_LEN, super::layout::HEADER_LEN);
    put_u32(out, FILE_LEN, h.file_len);
    put_u32(out, TENSOR_COUNT, h.tensor_count);
    put_u32(out, TABLE_OFFSET, super::layout::HEADER_LEN);
    put_u32(out, DATA_OFFSET, h.data_offset);
    let variant = match c.variant {
        Variant::MlpT => 0u8,
        Variant::Attention => 1,
    };
    let pos = match c.pos_encoding {
        PosEncoding::None => 0u8,
        PosEncoding::Rope => 1,
    };
    put(out, VARIANT, &[variant]);
    put(out, POS_ENCODING, &[pos]);
    for (off, v) in [
        (HIDDEN, c.hidden),
        (MLP_INTER, c.mlp_inter),
        (MLP_T_INTER, c.mlp_t_inter),
        (LAYERS, c.layers),
        (H_CYCLES, c.h_cycles),
        (L_CYCLES, c.l_cycles),
        (HALT_MAX_STEPS, c.halt_max_steps),
        (SEQ_LEN, c.seq_len),
        (PUZZLE_EMB_LEN, c.puzzle_emb_len),
        (PUZZLE_EMB_NDIM, c.puzzle_emb_ndim),
        (NUM_PUZZLE_IDS, c.num_puzzle_ids),
        (VOCAB, c.vocab),
        (NUM_HEADS, c.num_heads),
        (HEAD_DIM, c.head_dim),
    ] {
        put_u32(out, off, v);
    }
    put(out, RMS_EPS, &c.rms_eps.to_le_bytes());
    put(out, ROPE_THETA, &c.rope_theta.to_le_bytes());
    put(out, EXPANSION, &c.expansion.to_le_bytes());
}

/// Decodes and range-checks the fixed header. `bytes` must start at the file start; only the
/// first [`HEADER_LEN`] bytes are read. Magic and version are checked first, so a wrong file
/// says so even when it is short.
pub fn decode_header(bytes: &[u8]) -> Result<Header, FormatError> {
    use field::*;
    let truncated = FormatError::Truncated {
        needed: super::layout::HEADER_LEN + CRC_LEN,
        got: bytes.len(),
    };
    match bytes.get(..8) {
        Some(m) if m == MAGIC => {}
        Some(_) => return Err(FormatError::BadMagic),
        None if MAGIC.starts_with(bytes) => return Err(truncated),
        None => return Err(FormatError::BadMagic),
    }
    let version = u32_at(bytes, VERSION).ok_or(truncated)?;
    if version != super::layout::VERSION {
        return Err(FormatError::UnsupportedVersion { found: version });
    }
    let head = bytes.get(..super::layout::HEADER_LEN).ok_or(truncated)?;
    let bad = |what| FormatError::BadHeader { what };
    let get = |off| usize_at(head, off).ok_or(bad("field out of range"));
    if get(HEADER_LEN)? != super::layout::HEADER_LEN {
        return Err(bad("header length"));
    }
    if get(TABLE_OFFSET)? != super::layout::HEADER_LEN {
        return Err(bad("table offset"));
    }
    if u16_at(head, RESERVED16) != Some(0)
        || head
            .get(RESERVED..)
            .is_none_or(|r| r.iter().any(|&b| b != 0))
    {
        return Err(bad("reserved bytes are not zero"));
    }
    let variant = match head.get(VARIANT) {
        Some(0) => Variant::MlpT,
        Some(1) => Variant::Attention,
        _ => return Err(bad("unknown variant")),
    };
    let pos_encoding = match head.get(POS_ENCODING) {
        Some(0) => PosEncoding::None,
        Some(1) => PosEncoding::Rope,
        _ => return Err(bad("unknown positional encoding")),
    };
    let f = |off| f32_at(head, off).ok_or(bad("field out of range"));
    let config = ModelConfig {
        variant,
        pos_encoding,
        hidden: get(HIDDEN)?,
        mlp_inter: get(MLP_INTER)?,
        mlp_t_inter: get(MLP_T_INTER)?,
        layers: get(LAYERS)?,
        h_cycles: get(H_CYCLES)?,
        l_cycles: get(L_CYCLES)?,
        halt_max_steps: get(HALT_MAX_STEPS)?,
        seq_len: get(SEQ_LEN)?,
        puzzle_emb_len: get(PUZZLE_EMB_LEN)?,
        puzzle_emb_ndim: get(PUZZLE_EMB_NDIM)?,
        num_puzzle_ids: get(NUM_PUZZLE_IDS)?,
        vocab: get(VOCAB)?,
        num_heads: get(NUM_HEADS)?,
        head_dim: get(HEAD_DIM)?,
        rms_eps: f(RMS_EPS)?,
        rope_theta: f(ROPE_THETA)?,
        expansion: f(EXPANSION)?,
    };
    Ok(Header {
        file_len: get(FILE_LEN)?,
        tensor_count: get(TENSOR_COUNT)?,
        data_offset: get(DATA_OFFSET)?,
        config,
    })
}

/// Encodes table entry `e` into `out[..ENTRY_LEN]` (`e.id`, `e.dtype` must be `Some`).
pub fn encode_entry(e: &Entry, out: &mut [u8]) {
    if let Some(dst) = out.get_mut(..ENTRY_LEN) {
        dst.fill(0);
    }
    let (code, layer) = e.id.map_or((0, 0), |id| (id.kind.code(), id.layer));
    put(out, 0, &code.to_le_bytes());
    put(out, 2, &layer.to_le_bytes());
    put(out, 4, &[e.dtype.map_or(u8::MAX, DType::code), e.rank]);
    for (off, v) in [
        (8, e.shape[0]),
        (12, e.shape[1]),
        (16, e.offset),
        (20, e.length),
        (24, e.scale_offset),
        (28, e.scale_length),
    ] {
        put_u32(out, off, v);
    }
}

/// Decodes one table entry from `raw` (exactly [`ENTRY_LEN`] bytes); `None` if `raw` is short
/// or the reserved bytes are not zero.
pub fn decode_entry(raw: &[u8]) -> Option<Entry> {
    if raw.len() != ENTRY_LEN || u16_at(raw, 6)? != 0 {
        return None;
    }
    let kind = TensorKind::from_code(u16_at(raw, 0)?);
    let layer = u16_at(raw, 2)?;
    Some(Entry {
        id: kind.map(|kind| TensorId { kind, layer }),
        dtype: DType::from_code(*raw.get(4)?),
        rank: *raw.get(5)?,
        shape: [usize_at(raw, 8)?, usize_at(raw, 12)?],
        offset: usize_at(raw, 16)?,
        length: usize_at(raw, 20)?,
        scale_offset: usize_at(raw, 24)?,
        scale_length: usize_at(raw, 28)?,
    })
}
