//! The packed model file: a versioned, checksummed, self-describing container that the
//! runtime reads in place (zero-copy) from flash or memory.
//!
//! Layout (all little-endian; the full description is `docs/model-format.md`):
//!
//! | bytes | content |
//! |---|---|
//! | 0..128 | header: [`MAGIC`], [`VERSION`], lengths, the [`ModelConfig`] |
//! | 128.. | tensor table, 32 bytes per tensor, canonical order ([`required_tensors`]) |
//! | 64-aligned | tensor data (f32, f16 or int8 + f32 row scales), each block 64-aligned |
//! | last 4 | CRC-32/ISO-HDLC of everything before it |
//!
//! [`Model::from_bytes`] validates a file; [`write_model`] (with [`packed_size`]) writes one
//! into a caller buffer, converting f32 tensors to the requested [`DType`].

mod config;
mod error;
mod layout;
#[cfg(feature = "official")]
pub mod official;
pub mod quantize;
mod read;
mod tensor;
mod write;

pub use config::{MAX_COUNT, MAX_DIM, ModelConfig, PosEncoding, Variant, swiglu_inter};
pub use error::{FormatError, WriteError};
pub use layout::{ALIGN, CRC_LEN, ENTRY_LEN, HEADER_LEN, MAGIC, VERSION};
pub use read::{Model, TensorView};
pub use tensor::{DType, TensorId, TensorKind, required_tensors};
#[cfg(feature = "alloc")]
pub use write::pack_to_vec;
pub use write::{TensorInput, packed_size, write_model};
