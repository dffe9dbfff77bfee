//! AVX2 + FMA dot products for x86_64.
//!
//! The kernels are compiled on every x86_64 build (`#[target_feature]`), but the crate only
//! calls them when the build enables `avx2` and `fma` statically (e.g.
//! `RUSTFLAGS="-C target-cpu=native"`): runtime detection needs `std`. The tests compare them
//! with the generic kernels whenever the host CPU has the features.

use core::arch::x86_64::{
    __m256, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_loadl_epi64, _mm_movehl_ps, _mm_shuffle_ps,
    _mm256_add_ps, _mm256_castps256_ps128, _mm256_cvtepi8_epi32, _mm256_cvtepi32_ps,
    _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps,
};

use crate::kernels::generic;

/// Horizontal sum of the four accumulators.
#[target_feature(enable = "avx2,fma")]
fn hsum(a: [__m256; 4]) -> f32 {
    let [a0, a1, a2, a3] = a;
    let s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    let v = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
    let v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    _mm_cvtss_f32(_mm_add_ss(v, _mm_shuffle_ps::<1>(v, v)))
}

/// AVX2/FMA version of [`generic::dot_f32`] (same contract, different summation order).
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot_f32_avx2(w: &[u8], x: &[f32]) -> f32 {
    let n = (w.len() / 4).min(x.len());
    let blocks = n / 32;
    let mut acc = [_mm256_setzero_ps(); 4];
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    for b in 0..blocks {
        for (j, a) in acc.iter_mut().enumerate() {
            let i = b * 32 + j * 8;
            // SAFETY: i + 8 <= blocks·32 <= n, and w holds >= 4n bytes, x >= n floats, so both
            // 32-byte loads are in bounds; `loadu` has no alignment requirement.
            let (wv, xv) = unsafe {
                (
                    _mm256_loadu_ps(wp.add(4 * i).cast::<f32>()),
                    _mm256_loadu_ps(xp.add(i)),
                )
            };
            *a = _mm256_fmadd_ps(wv, xv, *a);
        }
    }
    let done = blocks * 32;
    let tail = generic::dot_f32(
        w.get(4 * done..).unwrap_or(&[]),
        x.get(done..n).unwrap_or(&[]),
    );
    hsum(acc) + tail
}

/// AVX2/FMA version of [`generic::dot_i8`] (same contract, different summation order).
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot_i8_avx2(q: &[u8], x: &[f32]) -> f32 {
    let n = q.len().min(x.len());
    let blocks = n / 32;
    let mut acc = [_mm256_setzero_ps(); 4];
    let (qp, xp) = (q.as_ptr(), x.as_ptr());
    for b in 0..blocks {
        for (j, a) in acc.iter_mut().enumerate() {
            let i = b * 32 + j * 8;
            // SAFETY: i + 8 <= n <= q.len(), x.len(): the 8-byte load of q and the 8-float load
            // of x are in bounds; both intrinsics accept unaligned addresses.
            let (qv, xv) = unsafe {
                (
                    _mm_loadl_epi64(qp.add(i).cast()),
                    _mm256_loadu_ps(xp.add(i)),
                )
            };
            let wv = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(qv));
            *a = _mm256_fmadd_ps(wv, xv, *a);
        }
    }
    let done = blocks * 32;
    let tail = generic::dot_i8(q.get(done..).unwrap_or(&[]), x.get(done..n).unwrap_or(&[]));
    hsum(acc) + tail
}

/// Dispatch target when the build enables AVX2 and FMA.
#[cfg(all(target_feature = "avx2", target_feature = "fma"))]
pub fn dot_f32(w: &[u8], x: &[f32]) -> f32 {
    // SAFETY: the crate is compiled with avx2 and fma enabled (checked by the cfg above), so
    // every CPU running this code has them.
    unsafe { dot_f32_avx2(w, x) }
}

/// Dispatch target when the build enables AVX2 and FMA.
#[cfg(all(target_feature = "avx2", target_feature = "fma"))]
pub fn dot_i8(q: &[u8], x: &[f32]) -> f32 {
    // SAFETY: as in `dot_f32`: avx2 and fma are statically enabled for this build.
    unsafe { dot_i8_avx2(q, x) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn has_avx2_fma() -> bool {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }

    fn close(a: f32, b: f32, scale: f32) -> bool {
        (a - b).abs() <= 1e-5 * scale.max(1.0)
    }

    proptest! {
        #[test]
        fn avx2_matches_generic(
            w in proptest::collection::vec(-2f32..2.0, 0..300),
            x in proptest::collection::vec(-2f32..2.0, 0..300),
            q in proptest::collection::vec(any::<u8>(), 0..300),
            offset in 0usize..4,
        ) {
            if !has_avx2_fma() {
                return Ok(());
            }
            // Misalign the weight bytes on purpose.
            let mut wb: Vec<u8> = std::vec![0u8; offset];
            wb.extend(w.iter().flat_map(|v| v.to_le_bytes()));
            let wb = &wb[offset..];
            let scale: f32 = w.iter().zip(&x).map(|(a, b)| (a * b).abs()).sum();
            // SAFETY: the CPU has avx2 and fma (checked just above).
            let fast = unsafe { dot_f32_avx2(wb, &x) };
            prop_assert!(close(fast, generic::dot_f32(wb, &x), scale));
            let qscale: f32 = q.iter().zip(&x).map(|(&a, b)| (f32::from(a as i8) * b).abs()).sum();
            let mut qb: Vec<u8> = std::vec![0u8; offset];
            qb.extend(&q);
            let qb = &qb[offset..];
            // SAFETY: as above.
            let fast = unsafe { dot_i8_avx2(qb, &x) };
            prop_assert!(close(fast, generic::dot_i8(qb, &x), qscale));
        }
    }
}
