//! Helpers shared by the kernel tests (compiled for tests only).

use super::f16::f32_to_f16;
use std::vec::Vec;

/// A deterministic stream of values in `[-1, 1)` (xorshift64 of `seed | 1`).
pub(crate) fn uniform(seed: u64) -> impl FnMut() -> f32 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// `bytes` behind `offset` filler bytes, so that `&result[offset..]` starts misaligned.
pub(crate) fn shifted(bytes: &[u8], offset: usize) -> Vec<u8> {
    let mut v = std::vec![0xa5u8; offset];
    v.extend_from_slice(bytes);
    v
}

/// `w` as little-endian f32 bytes, binary16 bytes, and int8 values `(v · q_scale) as i8`.
pub(crate) fn encodings(w: &[f32], q_scale: f32) -> [Vec<u8>; 3] {
    [
        w.iter().flat_map(|a| a.to_le_bytes()).collect(),
        w.iter()
            .flat_map(|a| f32_to_f16(*a).to_le_bytes())
            .collect(),
        w.iter().map(|a| (a * q_scale) as i8 as u8).collect(),
    ]
}
