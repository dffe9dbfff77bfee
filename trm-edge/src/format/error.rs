//! Why a packed model file was rejected, or could not be written.

use core::fmt;

use super::tensor::TensorId;

/// A packed model file that cannot be used. Every check of [`crate::format::Model::from_bytes`]
/// has its own variant; none of them panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The first 8 bytes are not [`crate::format::MAGIC`].
    BadMagic,
    /// The file has another format version than [`crate::format::VERSION`].
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
    },
    /// The input is shorter than the header says (or than a header).
    Truncated {
        /// Bytes the file needs.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// The CRC-32 trailer does not match the content.
    CrcMismatch {
        /// CRC-32 stored in the trailer.
        stored: u32,
        /// CRC-32 computed over the content.
        computed: u32,
    },
    /// A header field is out of range or inconsistent.
    BadHeader {
        /// Which field.
        what: &'static str,
    },
    /// The model configuration is invalid (see [`crate::format::ModelConfig::validate`]).
    BadConfig {
        /// Which invariant.
        what: &'static str,
    },
    /// Table entry `index` is malformed (unknown id or dtype, bad shape, out of bounds, ...).
    BadTensor {
        /// 0-based entry index in the table.
        index: usize,
        /// What is wrong with it.
        what: &'static str,
    },
    /// A tensor the configuration needs is absent.
    MissingTensor {
        /// The missing tensor.
        id: TensorId,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadMagic => write!(f, "not a packed TRM model (bad magic)"),
            Self::UnsupportedVersion { found } => write!(
                f,
                "packed model format version {found} is not supported (expected {})",
                super::layout::VERSION
            ),
            Self::Truncated { needed, got } => {
                write!(f, "packed model truncated: needs {needed} bytes, got {got}")
            }
            Self::CrcMismatch { stored, computed } => write!(
                f,
                "packed model corrupted: CRC-32 {computed:#010x} != stored {stored:#010x}"
            ),
            Self::BadHeader { what } => write!(f, "bad header: {what}"),
            Self::BadConfig { what } => write!(f, "bad model config: {what}"),
            Self::BadTensor { index, what } => write!(f, "tensor table entry {index}: {what}"),
            Self::MissingTensor { id } => write!(f, "missing tensor {id}"),
        }
    }
}

impl core::error::Error for FormatError {}

/// Why [`crate::format::write_model`] could not pack a model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WriteError {
    /// The configuration is invalid.
    Config(FormatError),
    /// A tensor the configuration needs was not given.
    Missing {
        /// The tensor.
        id: TensorId,
    },
    /// A tensor was given twice.
    Duplicate {
        /// The tensor.
        id: TensorId,
    },
    /// A tensor that this configuration does not use was given.
    Unexpected {
        /// The tensor.
        id: TensorId,
    },
    /// A tensor's shape differs from what the configuration implies.
    Shape {
        /// The tensor.
        id: TensorId,
        /// Expected `[rows, cols]` (`cols = 1` for vectors).
        expected: [usize; 2],
        /// Given shape.
        found: [usize; 2],
    },
    /// `data.len()` is not `rows · cols`.
    DataLength {
        /// The tensor.
        id: TensorId,
    },
    /// This tensor must be stored as f32 (vectors, RoPE tables).
    DtypeNotAllowed {
        /// The tensor.
        id: TensorId,
    },
    /// A value is NaN or infinite.
    NonFinite {
        /// The tensor.
        id: TensorId,
    },
    /// A value of a tensor stored as f16 lies beyond the f16 range (it would become infinite).
    F16Range {
        /// The tensor.
        id: TensorId,
        /// The first such value.
        value: f32,
    },
    /// The output buffer is smaller than [`crate::format::packed_size`].
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// The file would exceed 4 GiB (offsets are `u32`).
    TooLarge,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Config(e) => e.fmt(f),
            Self::Missing { id } => write!(f, "tensor {id} is missing"),
            Self::Duplicate { id } => write!(f, "tensor {id} given twice"),
            Self::Unexpected { id } => write!(f, "tensor {id} is not used by this config"),
            Self::Shape {
                id,
                expected,
                found,
            } => write!(f, "tensor {id}: shape {found:?}, expected {expected:?}"),
            Self::DataLength { id } => write!(f, "tensor {id}: data length != rows * cols"),
            Self::DtypeNotAllowed { id } => write!(f, "tensor {id} must be stored as f32"),
            Self::NonFinite { id } => write!(f, "tensor {id} holds NaN or infinity"),
            Self::F16Range { id, value } => write!(
                f,
                "tensor {id} holds {value}, beyond the f16 range (|v| < 65520); store it as f32 \
                 or int8"
            ),
            Self::BufferTooSmall { needed, got } => {
                write!(
                    f,
                    "output buffer too small: needs {needed} bytes, got {got}"
                )
            }
            Self::TooLarge => write!(f, "packed model would exceed 4 GiB"),
        }
    }
}

impl core::error::Error for WriteError {}
