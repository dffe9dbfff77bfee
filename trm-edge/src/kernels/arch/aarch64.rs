//! NEON dot products and tile kernels ([`tile`]) for little-endian aarch64 (NEON is part of the
//! base ISA there), and their dispatchers (NEON unless [`super::set_simd`]`(false)`).

mod q8;
mod tile;

pub use q8::{cpu_has_dotprod, cpu_has_i8mm, quantize_tile, tile_q8};

use core::arch::aarch64::{
    float32x4_t, vaddq_f32, vaddvq_f32, vdupq_n_f32, vfmaq_f32, vld1q_f32, vld1q_u8,
    vreinterpretq_f32_u8,
};

use super::simd_allowed;
use crate::kernels::generic;

/// Horizontal sum of the four accumulators.
fn hsum(a: [float32x4_t; 4]) -> f32 {
    let [a0, a1, a2, a3] = a;
    // SAFETY: NEON is mandatory on aarch64 (`target_feature = "neon"` is on for every
    // aarch64 target this module is compiled for); these intrinsics only touch registers.
    unsafe { vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3))) }
}

/// NEON version of [`generic::dot_f32`] (same contract, different summation order).
fn dot_f32_neon(w: &[u8], x: &[f32]) -> f32 {
    let n = (w.len() / 4).min(x.len());
    let blocks = n / 16;
    // SAFETY: register-only intrinsic; NEON is always present on aarch64.
    let mut acc = [unsafe { vdupq_n_f32(0.0) }; 4];
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    for b in 0..blocks {
        for (j, a) in acc.iter_mut().enumerate() {
            let i = b * 16 + j * 4;
            // SAFETY: i + 4 <= n, w holds >= 4n bytes and x >= n floats, so the 16-byte loads
            // are in bounds; the weights are loaded as bytes (no alignment requirement) and x is
            // a properly aligned f32 slice.
            *a = unsafe {
                let wv = vreinterpretq_f32_u8(vld1q_u8(wp.add(4 * i)));
                vfmaq_f32(*a, wv, vld1q_f32(xp.add(i)))
            };
        }
    }
    let done = blocks * 16;
    let tail = generic::dot_f32(
        w.get(4 * done..).unwrap_or(&[]),
        x.get(done..n).unwrap_or(&[]),
    );
    hsum(acc) + tail
}

/// [`generic::dot_f32`], with NEON unless SIMD is switched off.
pub fn dot_f32(w: &[u8], x: &[f32]) -> f32 {
    if simd_allowed() {
        dot_f32_neon(w, x)
    } else {
        generic::dot_f32(w, x)
    }
}

/// [`generic::matvec_f32`], with NEON unless SIMD is switched off.
pub fn matvec_f32(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    let Some(row_bytes) = cols.checked_mul(4).filter(|&b| b > 0) else {
        return;
    };
    if simd_allowed() {
        for (row, out) in w.chunks_exact(row_bytes).zip(y) {
            *out = dot_f32_neon(row, x);
        }
    } else {
        generic::matvec_f32(w, cols, x, y);
    }
}

/// [`generic::tile_f32`], with NEON unless SIMD is switched off (the same bits as the AVX2
/// kernel).
pub fn tile_f32(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    if simd_allowed() {
        tile::tile_f32(w, cols, x, y);
    } else {
        generic::tile_f32(w, cols, x, y);
    }
}

/// [`generic::tile_f16`], with NEON unless SIMD is switched off.
pub fn tile_f16(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    if simd_allowed() {
        tile::tile_f16(w, cols, x, y);
    } else {
        generic::tile_f16(w, cols, x, y);
    }
}

/// Name of the kernel set in use: `"neon"` (`"neon (int8 smmla)"` where the CPU has FEAT_I8MM,
/// `"neon (int8 sdot)"` where it has the dot-product extension, unless
/// [`super::set_kernels`] capped the kernels below them), or `"generic"` after
/// `set_simd(false)`.
pub fn kernel_set() -> &'static str {
    if !simd_allowed() {
        "generic"
    } else if q8::smmla_allowed() {
        "neon (int8 smmla)"
    } else if q8::sdot_allowed() {
        "neon (int8 sdot)"
    } else {
        "neon"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    proptest! {
        #[test]
        fn neon_matches_generic(
            w in proptest::collection::vec(-2f32..2.0, 0..300),
            x in proptest::collection::vec(-2f32..2.0, 0..300),
        ) {
            let wb: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
            let scale: f32 = w.iter().zip(&x).map(|(a, b)| (a * b).abs()).sum::<f32>().max(1.0);
            prop_assert!((dot_f32_neon(&wb, &x) - generic::dot_f32(&wb, &x)).abs() <= 1e-5 * scale);
        }
    }
}
