//! NEON tile kernels: `y[n·TILE + r] = Σ_k W[n, k]·x[k·TILE + r]` (the contract of
//! [`crate::kernels::generic::tile_f32`] and its f16/int8 siblings).
//!
//! Register block: [`NB`] = 4 weight rows × 16 tile lanes = 16 accumulators. Per 4 columns,
//! one 4-weight load per row and 16 activation loads feed 64 by-element fused multiply-adds
//! (`fmla v.4s, v.4s, v.s[e]`). Columns go in chunks of [`KC`], the partial sums through `y`
//! (exact f32 stores and loads). Each lane's sum runs over `k` in order, one rounding per
//! multiply-add, which is what the x86_64 AVX2 tile kernels compute: the two architectures give
//! the same bits. f16 and int8 rows are decoded exactly into an f32 panel of [`KC`] columns
//! first.

use core::arch::aarch64::{
    float32x4_t, vdupq_n_f32, vfmaq_f32, vfmaq_laneq_f32, vld1q_f32, vld1q_u8,
    vreinterpretq_f32_u8, vst1q_f32,
};

use crate::kernels::f16::f16_to_f32;
use crate::kernels::generic::TILE;

// The kernels work on groups of 16 tile lanes (four 4-lane registers).
const _: () = assert!(TILE.is_multiple_of(16) && TILE > 0);

/// Weight rows per register block (the row-count dispatch in [`tile`] has arms for 1..=4).
const NB: usize = 4;
const _: () = assert!(NB == 4);
/// Weight columns per chunk (`NB·KC·4` = 2 KiB of weights, `KC·TILE·4` of the tile).
const KC: usize = 128;
/// 16-lane groups per tile.
const GROUPS: usize = TILE / 16;

/// Accumulators of `R` rows × 16 lanes.
type Acc<const R: usize> = [[float32x4_t; 4]; R];

/// Decoded f32 weights: `NB` rows of `KC` columns (on the stack; f16 and int8 only).
type Panel = [[f32; KC]; NB];

/// The four 4-lane registers of lanes 0..16 at `p`.
///
/// # Safety
/// `p .. p + 16` must be readable.
#[inline(always)]
unsafe fn load16(p: *const f32) -> [float32x4_t; 4] {
    // SAFETY: the caller guarantees 16 readable floats; `ld1` needs no alignment beyond the
    // element's, which an f32 pointer has.
    unsafe {
        [
            vld1q_f32(p),
            vld1q_f32(p.add(4)),
            vld1q_f32(p.add(8)),
            vld1q_f32(p.add(12)),
        ]
    }
}

/// `acc[j] += Σ_{k < k_len} W(j, k)·x[k·TILE .. k·TILE + 16]`, `W(j, k)` the little-endian
/// f32 at byte `rows[j] + 4k` (any alignment).
///
/// # Safety
/// For `j < R`, `k < k_len`: `rows[j] + 4k .. + 4` readable; `x + TILE·k .. + 16` readable.
#[inline(always)]
unsafe fn block<const R: usize>(
    rows: [*const u8; R],
    x: *const f32,
    k_len: usize,
    acc: &mut Acc<R>,
) {
    let mut a = *acc;
    let mut k = 0;
    while k + 4 <= k_len {
        // SAFETY: k + 4 <= k_len: the 16 weight bytes at rows[j] + 4k and the activations of
        // columns k .. k + 4 are readable (caller contract); weights are loaded as bytes (no
        // alignment needed).
        unsafe {
            let w: [float32x4_t; R] =
                core::array::from_fn(|j| vreinterpretq_f32_u8(vld1q_u8(rows[j].add(4 * k))));
            macro_rules! column {
                ($e:literal) => {
                    let xv = load16(x.add(TILE * (k + $e)));
                    for (aj, wj) in a.iter_mut().zip(&w) {
                        for (ai, xi) in aj.iter_mut().zip(&xv) {
                            *ai = vfmaq_laneq_f32::<$e>(*ai, *xi, *wj);
                        }
                    }
                };
            }
            column!(0);
            column!(1);
            column!(2);
            column!(3);
        }
        k += 4;
    }
    while k < k_len {
        // SAFETY: k < k_len: 4 weight bytes at rows[j] + 4k and 16 activations at x + TILE·k
        // are readable (caller contract).
        unsafe {
            let xv = load16(x.add(TILE * k));
            for (aj, row) in a.iter_mut().zip(rows) {
                let b = row.add(4 * k);
                let wv = vdupq_n_f32(f32::from_le_bytes([*b, *b.add(1), *b.add(2), *b.add(3)]));
                for (ai, xi) in aj.iter_mut().zip(&xv) {
                    *ai = vfmaq_f32(*ai, *xi, wv);
                }
            }
        }
        k += 1;
    }
    *acc = a;
}

/// `R` rows of f32 weights (byte rows `stride` apart, from `w`) over `k_len` columns against
/// every 16-lane group of the tile `x`, added to `y` (written when `first`).
///
/// # Safety
/// `w + j·stride + 4k .. + 4` readable for `j < R`, `k < k_len`; `x .. x + TILE·k_len`
/// readable; `y .. y + TILE·R` readable and writable.
#[inline(always)]
unsafe fn block_groups<const R: usize>(
    w: *const u8,
    stride: usize,
    x: *const f32,
    k_len: usize,
    y: *mut f32,
    first: bool,
) {
    let rows: [*const u8; R] = core::array::from_fn(|j| w.wrapping_add(j * stride));
    for g in 0..GROUPS {
        // SAFETY: group g < GROUPS covers lanes 16g .. 16g + 16 <= TILE of every row of x and
        // y, inside the caller's buffers; the weights as the caller guarantees.
        unsafe {
            let (xg, yg) = (x.add(16 * g), y.add(16 * g));
            let mut acc: Acc<R> = if first {
                [[vdupq_n_f32(0.0); 4]; R]
            } else {
                core::array::from_fn(|j| load16(yg.add(TILE * j)))
            };
            block::<R>(rows, xg, k_len, &mut acc);
            for (j, aj) in acc.iter().enumerate() {
                let out = yg.add(TILE * j);
                for (i, ai) in aj.iter().enumerate() {
                    vst1q_f32(out.add(4 * i), *ai);
                }
            }
        }
    }
}

/// How a kernel reads its weight rows: f32 in place, or decoded into a [`Panel`] first.
trait Rows {
    /// Bytes per weight.
    const SIZE: usize;
    /// `R` rows × `k_len <= KC` columns from `w` (rows `cols` weights apart) against the tile
    /// chunk `x`, added to `y` (written when `first`).
    ///
    /// # Safety
    /// `w + SIZE·(j·cols + k)` readable (SIZE bytes) for `j < R`, `k < k_len`;
    /// `x .. x + TILE·k_len` readable; `y .. y + TILE·R` readable and writable.
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows<const R: usize>(
        w: *const u8,
        cols: usize,
        x: *const f32,
        k_len: usize,
        y: *mut f32,
        first: bool,
        panel: &mut Panel,
    );
}

/// f32 weights, read in place.
struct F32;
/// binary16 weights, decoded exactly.
struct F16;

impl Rows for F32 {
    const SIZE: usize = 4;
    unsafe fn rows<const R: usize>(
        w: *const u8,
        cols: usize,
        x: *const f32,
        k_len: usize,
        y: *mut f32,
        first: bool,
        _panel: &mut Panel,
    ) {
        // SAFETY: the caller's contract is `block_groups`'s with a stride of 4·cols bytes.
        unsafe { block_groups::<R>(w, 4 * cols, x, k_len, y, first) };
    }
}

/// Generates [`Rows`] for an encoding decoded into the panel by `$decode(ptr) -> f32`.
macro_rules! decoded_rows {
    ($ty:ident, $size:literal, $decode:ident) => {
        impl Rows for $ty {
            const SIZE: usize = $size;
            unsafe fn rows<const R: usize>(
                w: *const u8,
                cols: usize,
                x: *const f32,
                k_len: usize,
                y: *mut f32,
                first: bool,
                panel: &mut Panel,
            ) {
                let kn = k_len.min(KC);
                for (j, row) in panel.iter_mut().take(R).enumerate() {
                    for (k, v) in row.iter_mut().take(kn).enumerate() {
                        // SAFETY: j < R and k < kn <= k_len: the weight is readable (caller
                        // contract).
                        *v = unsafe { $decode(w.add($size * (j * cols + k))) };
                    }
                }
                // SAFETY: the panel holds R rows of KC floats (4·KC bytes apart) with kn
                // valid columns; x and y as the caller guarantees.
                unsafe { block_groups::<R>(panel.as_ptr().cast(), 4 * KC, x, kn, y, first) };
            }
        }
    };
}

/// The binary16 weight at `p`, exactly as f32.
///
/// # Safety
/// `p .. p + 2` must be readable.
unsafe fn decode_f16(p: *const u8) -> f32 {
    // SAFETY: two readable bytes (caller contract).
    f16_to_f32(u16::from_le_bytes(unsafe { [*p, *p.add(1)] }))
}

decoded_rows!(F16, 2, decode_f16);

/// The tile product for weights read as `T`, on [`super::super::tile_schedule`]: column chunks
/// of [`KC`], within a chunk blocks of [`NB`] rows (the last one 1..NB).
fn tile<T: Rows>(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    let Some(row_bytes) = cols.checked_mul(T::SIZE).filter(|&b| b > 0) else {
        return;
    };
    let k_len = cols.min(x.len() / TILE);
    let rows = (w.len() / row_bytes).min(y.len() / TILE);
    let (wp, xp, yp) = (w.as_ptr(), x.as_ptr(), y.as_mut_ptr());
    let mut panel: Panel = [[0.0; KC]; NB];
    let p = &mut panel;
    super::super::tile_schedule(rows, k_len, NB, KC, |n, r, k0, kn| {
        let first = k0 == 0;
        let wb = wp.wrapping_add(T::SIZE * k0 + n * row_bytes);
        let (xk, yb) = (xp.wrapping_add(TILE * k0), yp.wrapping_add(TILE * n));
        // SAFETY: rows n .. n + r <= rows lie inside `w` (rows <= w.len() / row_bytes) and `y`
        // (rows <= y.len() / TILE); columns k0 .. k0 + kn <= k_len <= cols of them are
        // readable, and TILE·(k0 + kn) <= x.len().
        unsafe {
            match r {
                NB => T::rows::<NB>(wb, cols, xk, kn, yb, first, p),
                1 => T::rows::<1>(wb, cols, xk, kn, yb, first, p),
                2 => T::rows::<2>(wb, cols, xk, kn, yb, first, p),
                3 => T::rows::<3>(wb, cols, xk, kn, yb, first, p),
                _ => {}
            }
        }
    });
}

/// NEON [`crate::kernels::generic::tile_f32`] (same contract; sums as the AVX2 kernel's).
pub(super) fn tile_f32(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    tile::<F32>(w, cols, x, y);
}

/// NEON [`crate::kernels::generic::tile_f16`] (same contract; sums as the AVX2 kernel's).
pub(super) fn tile_f16(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    tile::<F16>(w, cols, x, y);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::generic;
    use crate::kernels::testing::{encodings, shifted, uniform};
    use proptest::prelude::*;
    use std::vec::Vec;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Every NEON tile kernel against the scalar one: random shapes (rows not a multiple
        /// of NB, columns across several KC chunks and not a multiple of 4), misaligned
        /// weights, short x and y.
        #[test]
        fn neon_tiles_match_generic(
            rows in 0usize..11,
            cols in 1usize..300,
            x_cols in 0usize..300,
            seed in any::<u64>(),
            w_off in 0usize..8,
            y_short in 0usize..20,
        ) {
            let mut next = uniform(seed);
            let w: Vec<f32> = (0..rows * cols).map(|_| next() * 2.0).collect();
            let x: Vec<f32> = (0..x_cols.min(cols) * TILE + x_cols % 5).map(|_| next()).collect();
            let [wf, wh, _] = encodings(&w, 60.0).map(|b| shifted(&b, w_off));
            let ylen = (rows * TILE).saturating_sub(y_short);
            let tol = 1e-6 * cols as f32 * 2.0;
            for (which, bytes) in [(0, &wf[w_off..]), (1, &wh[w_off..])] {
                let mut fast = std::vec![7.0f32; ylen];
                let mut slow = std::vec![7.0f32; ylen];
                match which {
                    0 => (tile_f32(bytes, cols, &x, &mut fast), generic::tile_f32(bytes, cols, &x, &mut slow)),
                    _ => (tile_f16(bytes, cols, &x, &mut fast), generic::tile_f16(bytes, cols, &x, &mut slow)),
                };
                for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
                    prop_assert!((a - b).abs() <= tol, "{which} at {i}: {a} vs {b}");
                }
            }
        }
    }

    /// One multiply-add per step, in column order: on small integers (exact in f32) the NEON
    /// kernel and the scalar one agree exactly, whatever the grouping.
    #[test]
    fn exact_on_integers() {
        let (rows, cols) = (7, 261);
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7) % 13) as f32 - 6.0)
            .collect();
        let x: Vec<f32> = (0..cols * TILE)
            .map(|i| ((i * 5) % 11) as f32 - 5.0)
            .collect();
        let [wb, _, _] = encodings(&w, 1.0);
        let (mut a, mut b) = (std::vec![0f32; rows * TILE], std::vec![1f32; rows * TILE]);
        tile_f32(&wb, cols, &x, &mut a);
        generic::tile_f32(&wb, cols, &x, &mut b);
        assert_eq!(a, b);
    }
}
