//! Integer-activation int8 kernels for x86_64 ([`crate::kernels::q8`] is their
//! specification; integer sums are exact, so every kernel gives the same bits):
//! - [`quantize_tile_avx2`]: the tile quantisation, 8 lanes at a time;
//! - [`avx2`]: `vpmaddubsw` + `vpmaddwd` (every AVX2 CPU);
//! - [`vnni512`]: AVX-512 VNNI `vpdpbusd` on 512-bit registers;
//! - [`vnni256_evex`] / [`avxvnni`]: the same 256-bit kernel source with the AVX-512 VL
//!   encoding (testable on AVX-512 VNNI machines) and with AVX-VNNI (VEX, Alder Lake and later).
//!
//! # Sums without saturation
//! `vpmaddubsw` multiplies unsigned by signed bytes and adds adjacent pairs into i16 with
//! saturation. The kernel passes `|w|` (unsigned, `0..=128`; `vpabsb` of −128 is the byte
//! 0x80, which as unsigned is 128) and `a·sgn(w)` (`vpsignb`; `|a| ≤ 127`, so the negation
//! never wraps): each product is `|w|·a·sgn(w) = w·a`, and a pair sums to at most
//! `2·128·127 = 32,512 < 32,767`, so it never saturates. `vpmaddwd` by ones then adds the two
//! pairs into i32 exactly. This needs activations in `−127..=127`, which the quantisation
//! guarantees.
//!
//! `vpdpbusd` also takes unsigned × signed bytes but sums four products into i32 without
//! saturation. The kernel feeds it `a + 128` (`0..=254`, the activation byte XOR 0x80) and
//! the weights, and subtracts `128·Σ_k w[n, k]` per row at the end: in wrapping i32
//! arithmetic `Σ (a + 128)·w − 128·Σ w = Σ a·w` exactly.

use core::arch::x86_64::{
    __m256, __m256i, _CMP_ORD_Q, _mm256_abs_epi8, _mm256_add_epi32, _mm256_and_ps, _mm256_cmp_ps,
    _mm256_cvtepi32_ps, _mm256_cvtps_epi32, _mm256_loadu_ps, _mm256_loadu_si256, _mm256_madd_epi16,
    _mm256_maddubs_epi16, _mm256_max_ps, _mm256_min_ps, _mm256_mul_ps, _mm256_packs_epi16,
    _mm256_packs_epi32, _mm256_set1_epi16, _mm256_set1_epi32, _mm256_set1_ps, _mm256_setr_epi8,
    _mm256_setzero_ps, _mm256_setzero_si256, _mm256_shuffle_epi8, _mm256_sign_epi8,
    _mm256_storeu_ps, _mm256_storeu_si256, _mm256_sub_epi32, _mm256_xor_si256,
};

use crate::kernels::TILE;
use crate::kernels::q8::{self, tile_bytes};

// Tiles are quantised and multiplied in blocks of 16 lanes (one 512-bit or two 256-bit
// registers per group of four columns).
const _: () = assert!(TILE.is_multiple_of(16) && TILE > 0);

/// [`q8::tile_rows`] for this layout.
#[inline]
fn tile_rows(
    w: &[u8],
    w_scales: &[u8],
    cols: usize,
    k_len: usize,
    q: &[u8],
    y: &[f32],
) -> Option<usize> {
    q8::tile_rows(q8::SHAPE, (w, w_scales, cols), (k_len, q), y)
}

/// `Σ_{k < k_len} w[k]` in wrapping i32 (the VNNI correction), vectorised by the compiler.
#[inline]
fn row_sum(row: &[u8], k_len: usize) -> i32 {
    row.iter()
        .take(k_len)
        .fold(0i32, |s, &v| s.wrapping_add(i32::from(v as i8)))
}

/// The four weights `w[4g .. 4g + 4]` of a row as one little-endian word, zero past `k_len`.
///
/// # Safety
/// `row .. row + min(4g + 4, k_len)` readable.
#[inline(always)]
unsafe fn weight_word(row: *const u8, g: usize, k_len: usize) -> i32 {
    if 4 * g + 4 <= k_len {
        // SAFETY: 4g + 4 <= k_len bytes are readable (caller contract); unaligned read.
        unsafe { row.add(4 * g).cast::<i32>().read_unaligned() }
    } else {
        let mut b = [0u8; 4];
        for (j, o) in b.iter_mut().enumerate() {
            if 4 * g + j < k_len {
                // SAFETY: 4g + j < k_len: readable (caller contract).
                *o = unsafe { *row.add(4 * g + j) };
            }
        }
        i32::from_le_bytes(b)
    }
}

/// AVX2 [`q8::quantize_tile`] (same contract and bits: `vcvtps2dq` rounds to nearest even in
/// the default MXCSR mode, on values already clamped to ±127; NaN is masked to 0 first).
#[target_feature(enable = "avx2,fma")]
pub(super) fn quantize_tile_avx2(
    x: &[f32],
    k_len: usize,
    q: &mut [u8],
    s_x: &mut [f32; TILE],
) -> bool {
    let Some(n) = k_len.checked_mul(TILE) else {
        return false;
    };
    if x.len() < n || q.len() < tile_bytes(k_len) {
        return false;
    }
    const V: usize = TILE / 8;
    let abs = _mm256_set1_ps(f32::from_bits(0x7fff_ffff));
    let mut m = [_mm256_setzero_ps(); V];
    let xp = x.as_ptr();
    for k in 0..k_len {
        for (i, mi) in m.iter_mut().enumerate() {
            // SAFETY: k < k_len, so k·TILE + 8i + 8 <= n <= x.len() floats are readable.
            let v = unsafe { _mm256_loadu_ps(xp.add(k * TILE + 8 * i)) };
            // `max(v, m)` is `v > m ? v : m`: a NaN value keeps m, as the spec's fold does.
            *mi = _mm256_max_ps(_mm256_and_ps(v, abs), *mi);
        }
    }
    let mut inv = [0f32; TILE];
    for (i, mi) in m.iter().enumerate() {
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` holds 8 writable floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), *mi) };
        for (j, &mv) in lanes.iter().enumerate() {
            let (s, iv) = q8::scales(mv);
            s_x[8 * i + j] = s;
            inv[8 * i + j] = iv;
        }
    }
    let (lo, hi) = (_mm256_set1_ps(-q8::Q_MAX), _mm256_set1_ps(q8::Q_MAX));
    // Within each 128-bit half: bytes `4j + r` (column j, lane r) to `4r + j`.
    let transpose = _mm256_setr_epi8(
        0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10,
        14, 3, 7, 11, 15,
    );
    let qp = q.as_mut_ptr();
    for g in 0..k_len.div_ceil(4) {
        for i in 0..V {
            // SAFETY: inv holds TILE floats, 8i + 8 <= TILE.
            let iv = unsafe { _mm256_loadu_ps(inv.as_ptr().add(8 * i)) };
            let col = |j: usize| -> __m256i {
                let k = 4 * g + j;
                if k >= k_len {
                    return _mm256_setzero_si256();
                }
                // SAFETY: k < k_len: k·TILE + 8i + 8 <= n <= x.len() floats are readable.
                let p = _mm256_mul_ps(unsafe { _mm256_loadu_ps(xp.add(k * TILE + 8 * i)) }, iv);
                let p = _mm256_and_ps(p, _mm256_cmp_ps::<_CMP_ORD_Q>(p, p));
                _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(p, lo), hi))
            };
            let (c0, c1, c2, c3) = (col(0), col(1), col(2), col(3));
            let b = _mm256_packs_epi16(_mm256_packs_epi32(c0, c1), _mm256_packs_epi32(c2, c3));
            // SAFETY: (g·TILE + 8i)·4 + 32 <= tile_bytes(k_len) <= q.len() (checked above).
            unsafe {
                _mm256_storeu_si256(
                    qp.add((g * TILE + 8 * i) * 4).cast(),
                    _mm256_shuffle_epi8(b, transpose),
                );
            }
        }
    }
    true
}

/// Writes `y[n·TILE ..][..8] = (f32(acc) · s_x) · s_w`, eight lanes starting at `lane`.
///
/// # Safety
/// `y .. y + 8` writable; `lane + 8 <= TILE`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn store_scaled(y: *mut f32, acc: __m256i, s_x: &[f32; TILE], lane: usize, s_w: __m256) {
    // SAFETY: lane + 8 <= TILE (caller contract), so s_x has 8 floats there; y as guaranteed.
    unsafe {
        let sx = _mm256_loadu_ps(s_x.as_ptr().add(lane));
        let v = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), sx), s_w);
        _mm256_storeu_ps(y, v);
    }
}

/// The AVX2 `vpmaddubsw` kernel.
pub(super) mod avx2 {
    use super::*;

    /// 256-bit registers per group of four columns.
    const V: usize = TILE / 8;

    /// `R` rows from `w` (`cols` bytes apart) over `k_len` columns of the quantised tile `q`,
    /// rescaled into `y` (rows `TILE` floats apart).
    ///
    /// # Safety
    /// `w + j·cols .. + k_len` readable for `j < R`; `q .. q + tile_bytes(k_len)` readable;
    /// `y .. y + R·TILE` writable; `w_scales` holds at least `R` scales.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn row_block<const R: usize>(
        w: *const u8,
        cols: usize,
        k_len: usize,
        q: *const u8,
        w_scales: &[[u8; 4]],
        s_x: &[f32; TILE],
        y: *mut f32,
    ) {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_si256(); V]; R];
        for g in 0..k_len.div_ceil(4) {
            let mut a = [_mm256_setzero_si256(); V];
            for (i, ai) in a.iter_mut().enumerate() {
                // SAFETY: (g·TILE + 8i)·4 + 32 <= tile_bytes(k_len): readable.
                *ai = unsafe { _mm256_loadu_si256(q.add((g * TILE + 8 * i) * 4).cast()) };
            }
            for (j, accj) in acc.iter_mut().enumerate() {
                // SAFETY: row j < R holds k_len readable bytes (caller contract).
                let wb = _mm256_set1_epi32(unsafe { weight_word(w.add(j * cols), g, k_len) });
                let wabs = _mm256_abs_epi8(wb);
                for (s, ai) in accj.iter_mut().zip(a) {
                    // Products |w|·(a·sgn w) = w·a; pairs ≤ 32,512: no saturation (module
                    // docs).
                    let p = _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(ai, wb));
                    *s = _mm256_add_epi32(*s, _mm256_madd_epi16(p, ones));
                }
            }
        }
        for (j, accj) in acc.iter().enumerate() {
            let s_w = _mm256_set1_ps(w_scales.get(j).map_or(0.0, |b| f32::from_le_bytes(*b)));
            for (i, s) in accj.iter().enumerate() {
                // SAFETY: row j < R of y has TILE writable floats; 8i + 8 <= TILE.
                unsafe { store_scaled(y.add(j * TILE + 8 * i), *s, s_x, 8 * i, s_w) };
            }
        }
    }

    /// AVX2 [`q8::tile_q8`] (same contract and bits).
    #[target_feature(enable = "avx2,fma")]
    pub(in super::super) fn tile(
        w: &[u8],
        w_scales: &[u8],
        cols: usize,
        k_len: usize,
        q: &[u8],
        s_x: &[f32; TILE],
        y: &mut [f32],
    ) {
        let Some(rows) = tile_rows(w, w_scales, cols, k_len, q, y) else {
            return;
        };
        let (scales, _) = w_scales.as_chunks::<4>();
        let (wp, qp, yp) = (w.as_ptr(), q.as_ptr(), y.as_mut_ptr());
        let mut n = 0;
        while n < rows {
            let r = 2.min(rows - n);
            let ws = scales.get(n..).unwrap_or(&[]);
            // SAFETY: rows n .. n + r <= rows lie inside w (cols bytes each, k_len <= cols),
            // w_scales and y (rows <= y.len() / TILE); q holds tile_bytes(k_len) bytes.
            unsafe {
                let (wn, yn) = (wp.add(n * cols), yp.add(n * TILE));
                if r == 2 {
                    row_block::<2>(wn, cols, k_len, qp, ws, s_x, yn);
                } else {
                    row_block::<1>(wn, cols, k_len, qp, ws, s_x, yn);
                }
            }
            n += r;
        }
    }
}

/// Generates a `vpdpbusd` kernel module for one register width.
macro_rules! vnni_kernel {
    (
        $(#[$doc:meta])* $module:ident, $feat:literal, $vec:ty, $bytes:literal, $rows:literal,
        zero = $zero:path, load = $load:path, set1 = $set1:path, xor = $xor:path,
        dp = $dp:path, split = $split:expr
    ) => {
        $(#[$doc])*
        pub(super) mod $module {
            use super::*;

            /// Lanes (i32) per register.
            const L: usize = $bytes / 4;
            /// Registers per group of four columns.
            const V: usize = TILE / L;

            /// `R` rows from `w` (`cols` bytes apart) over `k_len` columns of the quantised
            /// tile `q`, rescaled into `y` (rows `TILE` floats apart).
            ///
            /// # Safety
            /// `w + j·cols .. + k_len` readable for `j < R`; `q .. q + tile_bytes(k_len)`
            /// readable; `y .. y + R·TILE` writable; `w_scales` holds at least `R` scales.
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn row_block<const R: usize>(
                w: *const u8,
                cols: usize,
                k_len: usize,
                q: *const u8,
                w_scales: &[[u8; 4]],
                s_x: &[f32; TILE],
                y: *mut f32,
            ) {
                let bias = $set1(0x8080_8080u32 as i32);
                let mut acc: [[$vec; V]; R] = [[$zero(); V]; R];
                for g in 0..k_len.div_ceil(4) {
                    let mut a: [$vec; V] = [$zero(); V];
                    for (i, ai) in a.iter_mut().enumerate() {
                        // SAFETY: (g·TILE + L·i)·4 + $bytes <= tile_bytes(k_len): readable.
                        // `a + 128` as unsigned bytes (see the module docs).
                        *ai = $xor(unsafe { $load(q.add((g * TILE + L * i) * 4).cast()) }, bias);
                    }
                    for (j, accj) in acc.iter_mut().enumerate() {
                        // SAFETY: row j < R holds k_len readable bytes (caller contract).
                        let wb = $set1(unsafe { weight_word(w.add(j * cols), g, k_len) });
                        for (s, ai) in accj.iter_mut().zip(a) {
                            *s = $dp(*s, ai, wb);
                        }
                    }
                }
                for (j, accj) in acc.iter().enumerate() {
                    // SAFETY: row j < R holds k_len readable bytes (caller contract).
                    let row = unsafe { core::slice::from_raw_parts(w.add(j * cols), k_len) };
                    let corr = $set1(row_sum(row, k_len).wrapping_mul(128));
                    let s_w = _mm256_set1_ps(
                        w_scales.get(j).map_or(0.0, |b| f32::from_le_bytes(*b)),
                    );
                    for (i, s) in accj.iter().enumerate() {
                        let halves: [__m256i; $bytes / 32] = $split(*s, corr);
                        for (h, v) in halves.iter().enumerate() {
                            let lane = L * i + 8 * h;
                            // SAFETY: row j < R of y has TILE writable floats; lane + 8 <= TILE.
                            unsafe { store_scaled(y.add(j * TILE + lane), *v, s_x, lane, s_w) };
                        }
                    }
                }
            }

            /// `vpdpbusd` [`q8::tile_q8`] (same contract and bits).
            #[target_feature(enable = $feat)]
            pub(in super::super) fn tile(
                w: &[u8],
                w_scales: &[u8],
                cols: usize,
                k_len: usize,
                q: &[u8],
                s_x: &[f32; TILE],
                y: &mut [f32],
            ) {
                let Some(rows) = tile_rows(w, w_scales, cols, k_len, q, y) else {
                    return;
                };
                let (scales, _) = w_scales.as_chunks::<4>();
                let (wp, qp, yp) = (w.as_ptr(), q.as_ptr(), y.as_mut_ptr());
                let mut n = 0;
                while n < rows {
                    let r = $rows.min(rows - n);
                    let ws = scales.get(n..).unwrap_or(&[]);
                    // SAFETY: rows n .. n + r <= rows lie inside w (cols bytes each, k_len <=
                    // cols), w_scales and y (rows <= y.len() / TILE); q holds
                    // tile_bytes(k_len) bytes.
                    unsafe {
                        let (wn, yn) = (wp.add(n * cols), yp.add(n * TILE));
                        if r == $rows {
                            row_block::<$rows>(wn, cols, k_len, qp, ws, s_x, yn);
                        } else {
                            row_block::<1>(wn, cols, k_len, qp, ws, s_x, yn);
                            n += 1;
                            continue;
                        }
                    }
                    n += r;
                }
            }
        }
    };
}

vnni_kernel!(
    /// AVX-512 VNNI: 512-bit `vpdpbusd`, 8 rows × 32 lanes (16 accumulators).
    vnni512,
    "avx512f,avx512bw,avx512vnni,avx2,fma",
    core::arch::x86_64::__m512i,
    64,
    8,
    zero = core::arch::x86_64::_mm512_setzero_si512,
    load = core::arch::x86_64::_mm512_loadu_si512,
    set1 = core::arch::x86_64::_mm512_set1_epi32,
    xor = core::arch::x86_64::_mm512_xor_si512,
    dp = core::arch::x86_64::_mm512_dpbusd_epi32,
    split = |s, c| {
        let v = core::arch::x86_64::_mm512_sub_epi32(s, c);
        [
            core::arch::x86_64::_mm512_castsi512_si256(v),
            core::arch::x86_64::_mm512_extracti64x4_epi64::<1>(v),
        ]
    }
);

vnni_kernel!(
    #[cfg(test)]
    /// AVX-512 VNNI on 256-bit registers (EVEX `vpdpbusd ymm`), 3 rows × 32 lanes: the source
    /// of [`avxvnni`] with another encoding, so that AVX-512 machines test that code.
    vnni256_evex,
    "avx512f,avx512vl,avx512vnni,avx2,fma",
    __m256i,
    32,
    3,
    zero = _mm256_setzero_si256,
    load = _mm256_loadu_si256,
    set1 = _mm256_set1_epi32,
    xor = _mm256_xor_si256,
    dp = core::arch::x86_64::_mm256_dpbusd_epi32,
    split = |s, c| [_mm256_sub_epi32(s, c)]
);

vnni_kernel!(
    /// AVX-VNNI (VEX `vpdpbusd ymm`), 3 rows × 32 lanes.
    avxvnni,
    "avxvnni,avx2,fma",
    __m256i,
    32,
    3,
    zero = _mm256_setzero_si256,
    load = _mm256_loadu_si256,
    set1 = _mm256_set1_epi32,
    xor = _mm256_xor_si256,
    dp = core::arch::x86_64::_mm256_dpbusd_avx_epi32,
    split = |s, c| [_mm256_sub_epi32(s, c)]
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::arch::x86_64::{cpu_has_avx2_fma, cpu_has_avx512vnni, cpu_has_avxvnni};
    use crate::kernels::testing::{check_q8_quantize, check_q8_tile};

    /// A tile kernel under test.
    type Kernel = unsafe fn(&[u8], &[u8], usize, usize, &[u8], &[f32; TILE], &mut [f32]);

    /// [`check_q8_tile`] when the CPU has `feature`, else says which feature is missing (the
    /// one skip that is not a failure in CI: the machine cannot run the instructions).
    fn check_if(has: bool, feature: &str, name: &str, kernel: Kernel) {
        if has {
            check_q8_tile(name, &|w, s, c, k, q, x, y| {
                // SAFETY: the caller checked that the CPU has the kernel's features.
                unsafe { kernel(w, s, c, k, q, x, y) }
            });
        } else {
            std::eprintln!("SKIPPED {name}: this CPU lacks {feature}");
        }
    }

    #[test]
    fn avx2_int8_tile_is_bit_identical_to_the_spec() {
        check_if(cpu_has_avx2_fma(), "AVX2/FMA", "avx2 int8 tile", avx2::tile);
    }

    #[test]
    fn avx512_vnni_int8_tile_is_bit_identical_to_the_spec() {
        let has = cpu_has_avx512vnni();
        check_if(has, "AVX512-VNNI", "avx512-vnni int8 tile", vnni512::tile);
        check_if(
            has,
            "AVX512-VNNI",
            "avx512-vnni 256-bit int8 tile",
            vnni256_evex::tile,
        );
    }

    #[test]
    fn avx_vnni_int8_tile_is_bit_identical_to_the_spec() {
        check_if(
            cpu_has_avxvnni(),
            "AVX-VNNI",
            "avx-vnni int8 tile",
            avxvnni::tile,
        );
    }

    #[test]
    fn avx2_quantisation_is_bit_identical_to_the_spec() {
        if !cpu_has_avx2_fma() {
            std::eprintln!("SKIPPED avx2 quantisation: this CPU lacks AVX2/FMA");
            return;
        }
        check_q8_quantize("avx2 quantisation", &|x, k, q, s| {
            // SAFETY: AVX2 and FMA usable (checked above).
            unsafe { quantize_tile_avx2(x, k, q, s) }
        });
    }
}
