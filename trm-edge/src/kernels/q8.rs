//! Integer-activation int8 products: the specification every int8 kernel reproduces bit for
//! bit (x86_64 AVX2 and VNNI, aarch64, Cortex-M, the scalar fallback).
//!
//! An int8 matrix (values `w[n, k]` in `-128..=127`, one f32 scale `s_w[n]` per row) times an
//! f32 vector `x` of `K` values is, exactly:
//! 1. `m = max_k |x[k]|`, NaN values ignored (`m = 0` when every value is 0 or NaN);
//! 2. `s_x = m / 127` and `inv = 127 / m` when `m > 0` (two f32 divisions, rounded to nearest
//!    even), else `s_x = inv = 0`;
//! 3. `a[k] = rne(clamp(x[k]·inv, −127, 127))` as i8: the f32 product, clamped, rounded to the
//!    nearest integer with ties to even; a NaN product gives 0 (`∞·0`, NaN inputs);
//! 4. `acc[n] = Σ_k w[n, k]·a[k]` in i32, wrapping on overflow. `|w·a| ≤ 128·127 = 16,256`, so
//!    the sum is exact (the order does not matter) for `K ≤ 132,104` columns;
//! 5. `y[n] = (f32(acc[n]) · s_x) · s_w[n]`: the conversion rounded to nearest even, then two
//!    f32 products in that order.
//!
//! A tile product ([`super::Matrix::matmul_tile`]) quantises each of its [`TILE`] input
//! vectors (tile columns) on its own by these rules, so it equals one matrix-vector product per
//! column, bit for bit, whatever the tile width: a Cortex-M (tile of 2 with the DSP extension,
//! 1 without) and an x86_64 or aarch64 host (tile of 32) compute the same int8 products.
//!
//! Layout of a quantised tile (the kernels' input, written by [`quantize_tile`]): columns in
//! groups of four, `q[(g·TILE + r)·4 + j] = a_r[4g + j]` for lane `r` and column `4g + j`, the
//! last group padded with zeros; so that four consecutive bytes hold four columns of one lane,
//! what `vpdpbusd`, `vpmaddubsw` + `vpmaddwd` and `SDOT` sum into one 32-bit lane.

use super::{TILE, TileShape};

/// Largest quantised activation magnitude (the range is symmetric: −127 ..= 127).
pub const Q_MAX: f32 = 127.0;

/// `1.5·2²³`: `(v + ROUND) − ROUND` rounds `|v| ≤ 2²²` to an integer, ties to even (the sum
/// lies where the f32 spacing is 1).
pub(crate) const ROUND: f32 = 12_582_912.0;

/// Largest `K` whose products [`matvec_q8`] quantises once into a stack buffer; wider products
/// quantise every activation again per row (same bits, slower).
pub const MAX_COLS: usize = 2048;

/// `max |v|` over `x`, NaN values ignored (step 1).
pub fn abs_max(x: &[f32]) -> f32 {
    x.iter().fold(0f32, |m, v| {
        let a = v.abs();
        if a > m { a } else { m }
    })
}

/// `(s_x, inv)` for a vector whose largest magnitude is `m` (step 2).
pub fn scales(m: f32) -> (f32, f32) {
    if m > 0.0 {
        (m / Q_MAX, Q_MAX / m)
    } else {
        (0.0, 0.0)
    }
}

/// One quantised activation `rne(clamp(v·inv, −127, 127))`, 0 for a NaN product (step 3).
pub fn quantize(v: f32, inv: f32) -> i8 {
    let p = v * inv;
    if p.is_nan() {
        return 0;
    }
    let c = p.clamp(-Q_MAX, Q_MAX);
    // |c| ≤ 127: the sum rounds to an integer, the difference is exact; `as` is then exact.
    ((c + ROUND) - ROUND) as i8
}

/// `(f32(acc) · s_x) · s_w` (step 5).
pub fn rescale(acc: i32, s_x: f32, s_w: f32) -> f32 {
    acc as f32 * s_x * s_w
}

/// `Σ w[k]·a[k]` in wrapping i32 over the common length (step 4).
#[inline]
pub fn dot(w: &[u8], a: &[i8]) -> i32 {
    w.iter().zip(a).fold(0i32, |s, (&w, &a)| {
        s.wrapping_add(i32::from(w as i8) * i32::from(a))
    })
}

/// Quantises `x` into `a` (the common length) and returns `s_x`: steps 1–3 for one vector.
pub fn quantize_vec(x: &[f32], a: &mut [i8]) -> f32 {
    let n = x.len().min(a.len());
    let x = x.get(..n).unwrap_or(&[]);
    let (s_x, inv) = scales(abs_max(x));
    for (o, &v) in a.iter_mut().zip(x) {
        *o = quantize(v, inv);
    }
    s_x
}

/// The row scale `s_w[n]` from the little-endian scale bytes (0 when missing).
#[inline(always)]
pub(crate) fn row_scale(w_scales: &[u8], n: usize) -> f32 {
    w_scales
        .as_chunks::<4>()
        .0
        .get(n)
        .map_or(0.0, |b| f32::from_le_bytes(*b))
}

/// `y[n] = rescale(Σ_k w[n, k]·a[k], s_x, s_w[n])` for int8 weights `w` `[rows, cols]` and
/// their row scales `w_scales` (`4·rows` bytes), `x` quantised by steps 1–3 over its first
/// `min(cols, x.len())` values. `rows = min(w.len() / cols, w_scales.len() / 4, y.len())`; a
/// shorter `y` truncates, `cols = 0` does nothing.
#[inline]
pub fn matvec_q8(w: &[u8], w_scales: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    if cols == 0 {
        return;
    }
    let x = x.get(..cols).unwrap_or(x);
    let mut buf = [0i8; MAX_COLS];
    let (s_x, inv) = scales(abs_max(x));
    let quantised = buf.get_mut(..x.len()).map(|a| {
        for (o, &v) in a.iter_mut().zip(x) {
            *o = quantize(v, inv);
        }
        &*a
    });
    for (n, (row, out)) in w.chunks_exact(cols).zip(y).enumerate() {
        if n >= w_scales.len() / 4 {
            break;
        }
        let acc = match quantised {
            Some(a) => dot(row, a),
            None => row.iter().zip(x).fold(0i32, |s, (&w, &v)| {
                s.wrapping_add(i32::from(w as i8) * i32::from(quantize(v, inv)))
            }),
        };
        *out = rescale(acc, s_x, row_scale(w_scales, n));
    }
}

/// Bytes of the quantised tile per group of four columns (four int8 values per lane).
pub const GROUP_BYTES: usize = 4 * TILE;

/// Bytes of a quantised tile of `k_len` columns (`⌈k_len/4⌉·4·TILE`).
pub const fn tile_bytes(k_len: usize) -> usize {
    k_len.div_ceil(4) * GROUP_BYTES
}

/// Quantises the transposed tile `x` `[k_len, TILE]` (lane `r` = input vector `r`, values
/// `x[k·TILE + r]`) lane by lane (steps 1–3) into `q` in the layout of the module docs, and
/// the lane scales `s_x` into `s_x`. Returns `false`, writing nothing, when `x` holds fewer
/// than `k_len·TILE` values or `q` fewer than [`tile_bytes`]`(k_len)` bytes.
pub fn quantize_tile(x: &[f32], k_len: usize, q: &mut [u8], s_x: &mut [f32; TILE]) -> bool {
    let (Some(x), Some(q)) = (
        k_len.checked_mul(TILE).and_then(|n| x.get(..n)),
        q.get_mut(..tile_bytes(k_len)),
    ) else {
        return false;
    };
    let mut m = [0f32; TILE];
    for xk in x.as_chunks::<TILE>().0 {
        for (m, v) in m.iter_mut().zip(xk) {
            let a = v.abs();
            if a > *m {
                *m = a;
            }
        }
    }
    let mut inv = [0f32; TILE];
    for ((s, i), m) in s_x.iter_mut().zip(&mut inv).zip(m) {
        (*s, *i) = scales(m);
    }
    q.fill(0);
    for (k, xk) in x.as_chunks::<TILE>().0.iter().enumerate() {
        let (g, j) = (k / 4, k % 4);
        for (r, (&v, &i)) in xk.iter().zip(&inv).enumerate() {
            if let Some(o) = q.get_mut((g * TILE + r) * 4 + j) {
                *o = quantize(v, i) as u8;
            }
        }
    }
    true
}

/// The tile and layout of this module's quantised tile ([`tile_bytes`]).
pub(crate) const SHAPE: TileShape = TileShape {
    tile: TILE,
    group_bytes: GROUP_BYTES,
};

/// The argument checks every int8 tile kernel shares (the contract of [`tile_q8`]) for a kernel
/// of tile and layout `shape`: the number of rows to compute, or `None` when nothing may be
/// written: `cols = 0`, `k_len > cols`, or `q` shorter than the quantised tile of `k_len`
/// columns (or that size overflows).
#[inline]
pub(crate) fn tile_rows(
    shape: TileShape,
    (w, w_scales, cols): (&[u8], &[u8], usize),
    (k_len, q): (usize, &[u8]),
    y: &[f32],
) -> Option<usize> {
    if cols == 0 || k_len > cols || q.len() < shape.tile_bytes(k_len)? {
        return None;
    }
    Some(
        (w.len() / cols)
            .min(w_scales.len() / 4)
            .min(y.len() / shape.tile.max(1)),
    )
}

/// Tile product on a quantised tile: `y[n·TILE + r] = rescale(Σ_{k < k_len} w[n, k]·a_r[k],
/// s_x[r], s_w[n])`, `q` as written by [`quantize_tile`] for `k_len ≤ cols` columns.
/// `rows = min(w.len() / cols, w_scales.len() / 4, y.len() / TILE)`; nothing is written when
/// `q` is shorter than [`tile_bytes`]`(k_len)`, `k_len > cols` or `cols = 0`.
pub fn tile_q8(
    w: &[u8],
    w_scales: &[u8],
    cols: usize,
    k_len: usize,
    q: &[u8],
    s_x: &[f32; TILE],
    y: &mut [f32],
) {
    let Some(rows) = tile_rows(SHAPE, (w, w_scales, cols), (k_len, q), y) else {
        return;
    };
    let (groups, _) = q.as_chunks::<4>();
    let (blocks, _) = groups.as_chunks::<TILE>();
    let (ys, _) = y.as_chunks_mut::<TILE>();
    for (n, (row, out)) in w.chunks_exact(cols).zip(ys).take(rows).enumerate() {
        let mut acc = [0i32; TILE];
        let row = row.get(..k_len).unwrap_or(row);
        for (wg, block) in row.chunks(4).zip(blocks) {
            let mut wv = [0i32; 4];
            for (o, &b) in wv.iter_mut().zip(wg) {
                *o = i32::from(b as i8);
            }
            // Four products of at most 16,384 each: no overflow before the wrapping add.
            for (a, lane) in acc.iter_mut().zip(block) {
                let l = lane.map(|v| i32::from(v as i8));
                *a = a.wrapping_add(wv[0] * l[0] + wv[1] * l[1] + wv[2] * l[2] + wv[3] * l[3]);
            }
        }
        let s_w = row_scale(w_scales, n);
        for ((o, a), s) in out.iter_mut().zip(acc).zip(s_x) {
            *o = rescale(a, *s, s_w);
        }
    }
}

/// [`quantize_tile`] then [`tile_q8`] without a buffer: every activation is quantised again
/// for every row (same bits as the buffered path, much slower). The fallback of
/// [`super::Matrix::matmul_tile`] when its work buffer is too short.
pub fn tile_q8_unbuffered(w: &[u8], w_scales: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    if cols == 0 {
        return;
    }
    let k_len = cols.min(x.len() / TILE);
    let xs = x.as_chunks::<TILE>().0.get(..k_len).unwrap_or(&[]);
    let mut m = [0f32; TILE];
    for xk in xs {
        for (m, v) in m.iter_mut().zip(xk) {
            let a = v.abs();
            if a > *m {
                *m = a;
            }
        }
    }
    let mut s_x = [0f32; TILE];
    let mut inv = [0f32; TILE];
    for ((s, i), m) in s_x.iter_mut().zip(&mut inv).zip(m) {
        (*s, *i) = scales(m);
    }
    let (ys, _) = y.as_chunks_mut::<TILE>();
    for (n, (row, out)) in w.chunks_exact(cols).zip(ys).enumerate() {
        if n >= w_scales.len() / 4 {
            break;
        }
        let mut acc = [0i32; TILE];
        for (&wv, xk) in row.iter().zip(xs) {
            for ((a, &v), &i) in acc.iter_mut().zip(xk).zip(&inv) {
                *a = a.wrapping_add(i32::from(wv as i8) * i32::from(quantize(v, i)));
            }
        }
        let s_w = row_scale(w_scales, n);
        for ((o, a), s) in out.iter_mut().zip(acc).zip(s_x) {
            *o = rescale(a, s, s_w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::uniform;
    use proptest::prelude::*;
    use std::vec::Vec;

    #[test]
    fn quantize_rounds_half_to_even_and_clamps() {
        // inv = 1: the value itself is rounded.
        for (v, want) in [
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (-2.5, -2),
            (126.5, 126),
            (127.49, 127),
            (300.0, 127),
            (-300.0, -127),
            (f32::INFINITY, 127),
            (f32::NEG_INFINITY, -127),
            (f32::NAN, 0),
        ] {
            assert_eq!(quantize(v, 1.0), want, "{v}");
        }
        // ∞·0 is NaN: 0.
        assert_eq!(quantize(f32::INFINITY, 0.0), 0);
        assert_eq!(scales(0.0), (0.0, 0.0));
        assert_eq!(abs_max(&[f32::NAN, -3.0, 2.0]), 3.0);
        assert_eq!(abs_max(&[f32::NAN]), 0.0);
        // The largest magnitude maps to ±127 exactly.
        let (s, inv) = scales(0.3);
        assert_eq!(quantize(-0.3, inv), -127);
        assert_eq!(s, 0.3 / 127.0);
    }

    /// The int8 product against a plain f64 computation of the same quantised values, and its
    /// error against the f32 product: at most half a quantisation step per activation.
    #[test]
    fn matvec_is_the_documented_arithmetic() {
        let (rows, cols) = (7, 45);
        let mut next = uniform(5);
        let w: Vec<u8> = (0..rows * cols)
            .map(|_| (next() * 128.0) as i8 as u8)
            .collect();
        let ws: Vec<f32> = (0..rows).map(|r| 0.01 + 0.001 * r as f32).collect();
        let wsb: Vec<u8> = ws.iter().flat_map(|s| s.to_le_bytes()).collect();
        let x: Vec<f32> = (0..cols).map(|_| next() * 3.0).collect();
        let mut y = std::vec![0f32; rows];
        matvec_q8(&w, &wsb, cols, &x, &mut y);
        let m = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        for n in 0..rows {
            let row = &w[n * cols..(n + 1) * cols];
            let acc: i64 = row
                .iter()
                .zip(&x)
                .map(|(&q, &v)| {
                    let a = f64::from(v * (127.0 / m)).round_ties_even();
                    i64::from(q as i8) * a as i64
                })
                .sum();
            let want = acc as f32 * (m / 127.0) * ws[n];
            assert_eq!(y[n].to_bits(), want.to_bits(), "row {n}");
            let exact: f32 = row
                .iter()
                .zip(&x)
                .map(|(&q, v)| f32::from(q as i8) * v)
                .sum();
            let bound: f32 = row.iter().map(|&q| f32::from(q as i8).abs()).sum::<f32>() * m / 254.0
                * 1.001
                + 1e-5;
            assert!((y[n] / ws[n] - exact).abs() <= bound, "row {n}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Tile products equal one matrix-vector product per tile column, bit for bit, with the
        /// buffer and without; the buffer too short writes nothing.
        #[test]
        fn tile_equals_matvec_per_column(
            rows in 0usize..9,
            cols in 1usize..40,
            k_short in 0usize..3,
            seed in any::<u64>(),
        ) {
            let mut next = uniform(seed);
            let w: Vec<u8> = (0..rows * cols).map(|_| (next() * 128.0) as i8 as u8).collect();
            let wsb: Vec<u8> = (0..rows).flat_map(|r| (0.02 * (r + 1) as f32).to_le_bytes()).collect();
            let k_len = cols.saturating_sub(k_short).max(1);
            let x: Vec<f32> = (0..k_len * TILE).map(|i| next() * (1 + i % 3) as f32).collect();
            let mut q = std::vec![0u8; tile_bytes(k_len)];
            let mut s_x = [0f32; TILE];
            prop_assert!(quantize_tile(&x, k_len, &mut q, &mut s_x));
            let mut y = std::vec![0f32; rows * TILE];
            tile_q8(&w, &wsb, cols, k_len, &q, &s_x, &mut y);
            let mut y2 = std::vec![0f32; rows * TILE];
            tile_q8_unbuffered(&w, &wsb, cols, &x, &mut y2);
            prop_assert_eq!(&y, &y2);
            for r in 0..TILE {
                let xr: Vec<f32> = (0..k_len).map(|k| x[k * TILE + r]).collect();
                let mut want = std::vec![0f32; rows];
                matvec_q8(&w, &wsb, cols, &xr, &mut want);
                for n in 0..rows {
                    prop_assert_eq!(y[n * TILE + r].to_bits(), want[n].to_bits());
                }
            }
            let mut short = std::vec![0u8; tile_bytes(k_len) - 1];
            prop_assert!(!quantize_tile(&x, k_len, &mut short, &mut s_x));
        }
    }
}
