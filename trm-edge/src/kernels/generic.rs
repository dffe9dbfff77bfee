//! Scalar reference kernels: the specification every architecture kernel is tested against.
//!
//! Weights are little-endian byte slices read in place (any alignment). Dot products use
//! eight independent f32 accumulators (summed pairwise at the end) so that the compiler can
//! vectorise them; lengths are `min` of the two operands, extra elements are ignored.

use super::f16::f16_to_f32;

/// Lanes of the accumulator array (also of the Cortex-M kernels that reproduce these sums).
pub(crate) const LANES: usize = 8;

/// Sums the lanes pairwise: `((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7))`; every kernel that must
/// give these dot products' bits reduces with this function.
#[inline(always)]
pub(crate) fn reduce(acc: [f32; LANES]) -> f32 {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))
}

/// `Σ w[i]·x[i]` for `w` = f32 little-endian bytes (`4·n` bytes), `n = min(w.len()/4, x.len())`.
pub fn dot_f32(w: &[u8], x: &[f32]) -> f32 {
    let (ws, _) = w.as_chunks::<4>();
    let n = ws.len().min(x.len());
    let (ws, xs) = (ws.get(..n).unwrap_or(&[]), x.get(..n).unwrap_or(&[]));
    let (wb, wt) = ws.as_chunks::<LANES>();
    let (xb, xt) = xs.as_chunks::<LANES>();
    let mut acc = [0f32; LANES];
    for (wc, xc) in wb.iter().zip(xb) {
        for ((a, wv), xv) in acc.iter_mut().zip(wc).zip(xc) {
            *a += f32::from_le_bytes(*wv) * xv;
        }
    }
    let tail: f32 = wt
        .iter()
        .zip(xt)
        .map(|(wv, xv)| f32::from_le_bytes(*wv) * xv)
        .sum();
    reduce(acc) + tail
}

/// `Σ w[i]·x[i]` for `w` = binary16 little-endian bytes (`2·n` bytes).
pub fn dot_f16(w: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ws, _) = w.as_chunks::<2>();
    let n = ws.len().min(x.len());
    let (ws, xs) = (ws.get(..n).unwrap_or(&[]), x.get(..n).unwrap_or(&[]));
    let (wb, wt) = ws.as_chunks::<LANES>();
    let (xb, xt) = xs.as_chunks::<LANES>();
    for (wc, xc) in wb.iter().zip(xb) {
        // Convert a block first, then multiply: both loops vectorise.
        let mut wf = [0f32; LANES];
        for (o, b) in wf.iter_mut().zip(wc) {
            *o = f16_to_f32(u16::from_le_bytes(*b));
        }
        for ((a, wv), xv) in acc.iter_mut().zip(wf).zip(xc) {
            *a += wv * xv;
        }
    }
    let tail: f32 = wt
        .iter()
        .zip(xt)
        .map(|(wv, xv)| f16_to_f32(u16::from_le_bytes(*wv)) * xv)
        .sum();
    reduce(acc) + tail
}

/// `Σ a[i]·b[i]` of two activation vectors (`n = min` of the lengths).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (a.get(..n).unwrap_or(&[]), b.get(..n).unwrap_or(&[]));
    let (ab, at) = a.as_chunks::<LANES>();
    let (bb, bt) = b.as_chunks::<LANES>();
    let mut acc = [0f32; LANES];
    for (ac, bc) in ab.iter().zip(bb) {
        for ((s, av), bv) in acc.iter_mut().zip(ac).zip(bc) {
            *s += av * bv;
        }
    }
    let tail: f32 = at.iter().zip(bt).map(|(av, bv)| av * bv).sum();
    reduce(acc) + tail
}

/// `y[r] = Σ_c W[r, c]·x[c]` for f32 weights `w` `[rows, cols]` (`rows = w.len() / (4·cols)`);
/// a shorter `y` truncates the product, `cols = 0` does nothing.
pub fn matvec_f32(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    let Some(row_bytes) = cols.checked_mul(4).filter(|&b| b > 0) else {
        return;
    };
    for (row, out) in w.chunks_exact(row_bytes).zip(y) {
        *out = dot_f32(row, x);
    }
}

/// [`matvec_f32`] for binary16 weights (`2·cols` bytes per row).
pub fn matvec_f16(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    let Some(row_bytes) = cols.checked_mul(2).filter(|&b| b > 0) else {
        return;
    };
    for (row, out) in w.chunks_exact(row_bytes).zip(y) {
        *out = dot_f16(row, x);
    }
}

/// Width of an activation tile: the tile kernels ([`tile_f32`], …) compute this many
/// positions (or channels) per pass over a weight matrix, so that every weight loaded feeds
/// `TILE` multiply-adds. 32 on x86_64 and aarch64: on x86_64 two 16-position groups of two
/// AVX2 registers each, a block of weights loaded or converted once for both (measured faster
/// than 16 for int8 and at hidden 128, equal for f32 at 64; 64 was slower); aarch64 uses the
/// same width so that its scalar path computes exactly what x86_64's does (the runtime's
/// leftover rows depend on the width). 2 on Cortex-M cores with the DSP extension (the int8
/// kernel's 2 × 2 blocks, [`super::arch::cortex_m`]). 1 elsewhere (other microcontrollers: no
/// extra working memory, and a tile product is then a matrix-vector product, see
/// [`super::Matrix::matmul_tile`]).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub const TILE: usize = 32;
/// Width of an activation tile (see the x86_64/aarch64 definition).
#[cfg(trm_arm_dsp)]
pub const TILE: usize = super::arch::cortex_m::TILE;
/// Width of an activation tile (see the x86_64/aarch64 definition).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", trm_arm_dsp)))]
pub const TILE: usize = 1;

/// Generates the scalar tile kernel of one weight encoding: `$size` bytes per weight,
/// `$decode` turns those bytes into an f32.
macro_rules! tile_kernel {
    ($(#[$doc:meta])* $name:ident, $size:literal, $decode:expr) => {
        $(#[$doc])*
        pub fn $name(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
            let Some(row_bytes) = cols.checked_mul($size).filter(|&b| b > 0) else {
                return;
            };
            let k_len = cols.min(x.len() / TILE);
            let (xs, _) = x.as_chunks::<TILE>();
            let (ys, _) = y.as_chunks_mut::<TILE>();
            for (row, out) in w.chunks_exact(row_bytes).zip(ys) {
                let mut acc = [0f32; TILE];
                let (ws, _) = row.as_chunks::<$size>();
                for (wb, xk) in ws.iter().zip(xs).take(k_len) {
                    let wv: f32 = $decode(*wb);
                    for (a, xv) in acc.iter_mut().zip(xk) {
                        *a += wv * xv;
                    }
                }
                *out = acc;
            }
        }
    };
}

tile_kernel!(
    /// Tile product for f32 weights `w` `[rows, cols]` (`4·cols` bytes per row) and a
    /// *transposed* activation tile: `y[n·TILE + r] = Σ_k W[n, k]·x[k·TILE + r]`, summed in
    /// order `k = 0, 1, …` from `0.0` (one rounding for the product, one for the sum).
    ///
    /// # Shapes
    /// - `x`: `[cols, TILE]` (column `r` of the tile is input vector `r`); `y`: `[rows, TILE]`
    ///
    /// Shorter buffers truncate: `k` runs over `min(cols, x.len() / TILE)` and the rows over
    /// `min(rows, y.len() / TILE)`; `cols = 0` does nothing.
    tile_f32,
    4,
    f32::from_le_bytes
);
tile_kernel!(
    /// [`tile_f32`] for binary16 weights (`2·cols` bytes per row, decoded exactly).
    tile_f16,
    2,
    |b| f16_to_f32(u16::from_le_bytes(b))
);
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(v: &[f32]) -> std::vec::Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    proptest! {
        #[test]
        fn dots_agree_with_a_plain_sum(
            v in proptest::collection::vec((-4f32..4.0, -4f32..4.0), 0..70),
        ) {
            let w: std::vec::Vec<f32> = v.iter().map(|p| p.0).collect();
            let x: std::vec::Vec<f32> = v.iter().map(|p| p.1).collect();
            let exact: f64 = v.iter().map(|(a, b)| *a as f64 * *b as f64).sum();
            let tol = 1e-5 * (1.0 + v.len() as f64) * 16.0;
            prop_assert!((dot_f32(&bytes(&w), &x) as f64 - exact).abs() < tol);
            prop_assert!((dot(&w, &x) as f64 - exact).abs() < tol);
            // Mismatched lengths use the common prefix.
            let n = v.len() / 2;
            let half: f64 = v[..n].iter().map(|(a, b)| *a as f64 * *b as f64).sum();
            prop_assert!((dot_f32(&bytes(&w[..n]), &x) as f64 - half).abs() < tol);
            prop_assert!((dot_f32(&bytes(&w), &x[..n]) as f64 - half).abs() < tol);
        }
    }

    #[test]
    fn tile_kernels_equal_per_column_sums() {
        let (rows, cols) = (5, 7);
        let w: std::vec::Vec<f32> = (0..rows * cols).map(|i| (i as f32 * 0.37).sin()).collect();
        let x: std::vec::Vec<f32> = (0..cols * TILE).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut y = std::vec![9.0f32; rows * TILE];
        tile_f32(&bytes(&w), cols, &x, &mut y);
        for n in 0..rows {
            for r in 0..TILE {
                let mut want = 0f32;
                for k in 0..cols {
                    want += w[n * cols + k] * x[k * TILE + r];
                }
                assert_eq!(y[n * TILE + r], want);
            }
        }
        // f16 decodes its weights (exactly, for these small integers) and uses the same order.
        let q: std::vec::Vec<u8> = (0..rows * cols).map(|i| (i * 37 % 255) as u8).collect();
        let qf: std::vec::Vec<f32> = q.iter().map(|&v| f32::from(v as i8)).collect();
        let (mut yq, mut yf) = (std::vec![0f32; rows * TILE], std::vec![0f32; rows * TILE]);
        tile_f32(&bytes(&qf), cols, &x, &mut yf);
        let h: std::vec::Vec<u8> = qf
            .iter()
            .flat_map(|v| super::super::f16::f32_to_f16(*v).to_le_bytes())
            .collect();
        tile_f16(&h, cols, &x, &mut yq);
        assert_eq!(yq, yf);
        // Short buffers truncate; nothing past them is written.
        let mut short = std::vec![9.0f32; 2 * TILE + 3];
        tile_f32(&bytes(&w), cols, &x[..3 * TILE], &mut short);
        assert_eq!(short[2 * TILE..], [9.0; 3]);
    }
}
