//! [`Matrix`]: a weight matrix borrowed in place from a packed file, and its products.

use super::TILE;
use super::arch;
use super::f16::f16_to_f32;
use super::q8;
use crate::format::DType;

/// Storage of a `[rows, cols]` row-major weight matrix, as little-endian bytes.
#[derive(Clone, Copy, Debug)]
pub enum Weights<'a> {
    /// f32 values, `4·rows·cols` bytes.
    F32(&'a [u8]),
    /// binary16 values, `2·rows·cols` bytes.
    F16(&'a [u8]),
    /// int8 values (`rows·cols` bytes) and one f32 scale per row (`4·rows` bytes).
    I8 {
        /// The int8 values, row-major.
        values: &'a [u8],
        /// The per-row scales.
        scales: &'a [u8],
    },
}

/// The tile a build multiplies with and the layout of its quantised int8 tile: the one home of
/// the work buffer's size, for this build ([`TileShape::THIS`], [`Matrix::tile_work_len`]) or
/// another target (the firmware's build script runs on the host and sizes the Cortex-M arena
/// with [`crate::runtime::scratch_len_for`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileShape {
    /// Vectors per tile product ([`TILE`] of that target).
    pub tile: usize,
    /// Bytes of the quantised int8 tile per group of four columns (all vectors together).
    pub group_bytes: usize,
}

impl TileShape {
    /// This build's: [`TILE`] and the layout of [`arch::quantize_tile`].
    pub const THIS: Self = Self {
        tile: TILE,
        group_bytes: arch::Q8_GROUP_BYTES,
    };
    /// Cortex-M cores with the DSP extension (`thumbv7em`): tile of 2, 16-bit lanes.
    pub const CORTEX_M_DSP: Self = Self {
        tile: arch::cortex_m::TILE,
        group_bytes: arch::cortex_m::GROUP_BYTES,
    };
    /// Other microcontrollers: tile of 1 (matrix-vector products, no work buffer).
    pub const VECTOR: Self = Self {
        tile: 1,
        group_bytes: 4,
    };

    /// Bytes of a quantised tile of `k_len` columns (`group_bytes·⌈k_len/4⌉`); `None` on
    /// overflow.
    pub const fn tile_bytes(self, k_len: usize) -> Option<usize> {
        k_len.div_ceil(4).checked_mul(self.group_bytes)
    }

    /// f32 elements of the work buffer of an int8 tile product with `cols` columns: `tile`
    /// lane scales and the quantised tile ([`TileShape::tile_bytes`], in whole f32); 0 for a
    /// tile of 1, whose products are matrix-vector products. `None` on overflow.
    pub const fn work_len(self, cols: usize) -> Option<usize> {
        if self.tile == 1 {
            return Some(0);
        }
        match self.tile_bytes(cols) {
            Some(bytes) => bytes.div_ceil(4).checked_add(self.tile),
            None => None,
        }
    }
}

/// A `[rows, cols]` weight matrix (PyTorch `[out, in]` layout: `y = W x`).
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a> {
    rows: usize,
    cols: usize,
    weights: Weights<'a>,
}

impl<'a> Matrix<'a> {
    /// A view of `weights` as `[rows, cols]`; `None` if the byte lengths do not match exactly
    /// or `cols` is 0.
    pub fn new(rows: usize, cols: usize, weights: Weights<'a>) -> Option<Self> {
        let n = rows.checked_mul(cols)?;
        let ok = cols > 0
            && cols.checked_mul(4).is_some()
            && match weights {
                Weights::F32(b) => Some(b.len()) == n.checked_mul(4),
                Weights::F16(b) => Some(b.len()) == n.checked_mul(2),
                Weights::I8 { values, scales } => {
                    values.len() == n && Some(scales.len()) == rows.checked_mul(4)
                }
            };
        ok.then_some(Self {
            rows,
            cols,
            weights,
        })
    }

    /// Output size (rows).
    pub const fn rows(&self) -> usize {
        self.rows
    }

    /// Input size (columns).
    pub const fn cols(&self) -> usize {
        self.cols
    }

    /// Element type.
    pub const fn dtype(&self) -> DType {
        match self.weights {
            Weights::F32(_) => DType::F32,
            Weights::F16(_) => DType::F16,
            Weights::I8 { .. } => DType::I8,
        }
    }

    /// The storage.
    pub const fn weights(&self) -> Weights<'a> {
        self.weights
    }

    /// Rows `start..start + count` as a matrix; `None` when out of range.
    pub fn row_range(&self, start: usize, count: usize) -> Option<Self> {
        let end = start.checked_add(count)?;
        if end > self.rows {
            return None;
        }
        let (a, b) = (start * self.cols, end * self.cols);
        let weights = match self.weights {
            Weights::F32(w) => Weights::F32(w.get(4 * a..4 * b)?),
            Weights::F16(w) => Weights::F16(w.get(2 * a..2 * b)?),
            Weights::I8 { values, scales } => Weights::I8 {
                values: values.get(a..b)?,
                scales: scales.get(4 * start..4 * end)?,
            },
        };
        Self::new(count, self.cols, weights)
    }

    /// `y = W x`: `y[r] = Σ_c W[r, c]·x[c]`; for int8 weights with integer activations, as
    /// [`q8`] specifies (bit-identical on every target).
    ///
    /// # Shapes
    /// - `x`: `[cols]`, `y`: `[rows]` (shorter buffers truncate the product, never panic)
    pub fn matvec(&self, x: &[f32], y: &mut [f32]) {
        match self.weights {
            Weights::F32(w) => arch::matvec_f32(w, self.cols, x, y),
            Weights::F16(w) => arch::matvec_f16(w, self.cols, x, y),
            Weights::I8 { values, scales } => arch::matvec_q8(values, scales, self.cols, x, y),
        }
    }

    /// f32 elements of the `work` buffer [`Matrix::matmul_tile`] needs for int8 weights with
    /// `cols` columns ([`TileShape::work_len`] of [`TileShape::THIS`]): [`TILE`] activation
    /// scales and the quantised tile in the layout of [`arch::quantize_tile`] (four int8 values
    /// per element; two 16-bit ones on Cortex-M with the DSP extension); 0 with `TILE = 1`.
    /// Unused for f32 and f16 weights. `None` on overflow.
    pub const fn tile_work_len(cols: usize) -> Option<usize> {
        TileShape::THIS.work_len(cols)
    }

    /// Tile product `Yᵀ = W Xᵀ` for [`TILE`] input vectors at once, with the tile stored
    /// transposed: `y[n·TILE + r] = Σ_c W[n, c]·x[c·TILE + r]` (each weight read feeds `TILE`
    /// multiply-adds). f32 and f16 sums: over `c` in order by the generic kernels and the
    /// x86_64 and aarch64 SIMD ones (see [`super::generic::tile_f32`]); on Cortex-M with the
    /// DSP extension each vector exactly as the dot kernels sum it alone (eight lanes, see
    /// [`arch::cortex_m`]). int8 weights quantise each tile column once into `work`
    /// and multiply in integers as [`q8`] specifies: bit for bit one [`Matrix::matvec`] per
    /// column (a `work` shorter than [`Matrix::tile_work_len`] gives the same bits, slowly).
    /// With `TILE = 1` this is [`Matrix::matvec`] (same kernels, same results).
    ///
    /// # Shapes
    /// - `x`: `[cols, TILE]`, `y`: `[rows, TILE]` (shorter buffers truncate, never panic);
    ///   `work`: [`Matrix::tile_work_len`]`(cols)`
    pub fn matmul_tile(&self, x: &[f32], y: &mut [f32], work: &mut [f32]) {
        if TILE == 1 {
            self.matvec(x, y);
            return;
        }
        match self.weights {
            Weights::F32(w) => arch::tile_f32(w, self.cols, x, y),
            Weights::F16(w) => arch::tile_f16(w, self.cols, x, y),
            Weights::I8 { values, scales } => {
                let k_len = self.cols.min(x.len() / TILE);
                let Some((s_x, rest)) = work.split_first_chunk_mut::<TILE>() else {
                    q8::tile_q8_unbuffered(values, scales, self.cols, x, y);
                    return;
                };
                let q = arch::f32_as_bytes_mut(rest);
                if arch::quantize_tile(x, k_len, q, s_x) {
                    arch::tile_q8(values, scales, self.cols, k_len, q, s_x, y);
                } else {
                    q8::tile_q8_unbuffered(values, scales, self.cols, x, y);
                }
            }
        }
    }

    /// `Y = X Wᵀ` for `n` input rows, one [`Matrix::matvec`] per row.
    ///
    /// # Shapes
    /// - `x`: `[n, cols]`, `y`: `[n, rows]`
    pub fn matmul(&self, x: &[f32], y: &mut [f32]) {
        for (xr, yr) in x
            .chunks_exact(self.cols)
            .zip(y.chunks_exact_mut(self.rows.max(1)))
        {
            self.matvec(xr, yr);
        }
    }

    /// Dequantises the whole matrix, row-major, into `out` (a shorter buffer receives a
    /// prefix).
    ///
    /// # Shapes
    /// - `out`: `[rows · cols]`
    pub fn to_f32(&self, out: &mut [f32]) {
        for (r, chunk) in out.chunks_mut(self.cols).enumerate() {
            self.row_into(r, chunk);
        }
    }

    /// Dequantises row `r` into `out` (for embedding lookups); `false` if `r` is out of range.
    ///
    /// # Shapes
    /// - `out`: `[cols]` (a shorter buffer receives a prefix)
    pub fn row_into(&self, r: usize, out: &mut [f32]) -> bool {
        let Some(row) = self.row_range(r, 1) else {
            return false;
        };
        match row.weights {
            Weights::F32(w) => {
                for (o, b) in out.iter_mut().zip(w.as_chunks::<4>().0) {
                    *o = f32::from_le_bytes(*b);
                }
            }
            Weights::F16(w) => {
                for (o, b) in out.iter_mut().zip(w.as_chunks::<2>().0) {
                    *o = f16_to_f32(u16::from_le_bytes(*b));
                }
            }
            Weights::I8 { values, scales } => {
                let s = scales
                    .as_chunks::<4>()
                    .0
                    .first()
                    .map_or(0.0, |s| f32::from_le_bytes(*s));
                for (o, &q) in out.iter_mut().zip(values) {
                    *o = f32::from(q as i8) * s;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{encodings, uniform};
    use proptest::prelude::*;
    use std::vec::Vec;

    /// FNV-1a over the bits of `y`.
    fn bits_hash(y: &[f32]) -> u64 {
        y.iter()
            .flat_map(|v| v.to_bits().to_le_bytes())
            .fold(0xcbf2_9ce4_8422_2325, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            })
    }

    /// The SIMD tile kernels of x86_64 (AVX2) and aarch64 (NEON) give the same bits: for f32
    /// and f16 both sum each lane over `k` in order with one fused multiply-add per step; int8
    /// products are integer sums (the same bits on every target and kernel). The expected hashes
    /// were computed by the AVX2 kernels; CI runs this test on x86_64 and, under
    /// `qemu-aarch64`, on aarch64 (`trm-solve/tests/aarch64.rs`).
    #[test]
    fn simd_tile_bits_are_the_same_on_x86_64_and_aarch64() {
        // The AVX-512F element-wise kernels do not touch the tile product.
        let set = arch::kernel_set();
        let fused = set.starts_with("avx2+fma+f16c") || set.starts_with("neon");
        if !fused || TILE != 32 {
            // Another kernel set (no F16C, scalar, microcontroller tile of 1): nothing to
            // compare; in CI the x86_64 and aarch64 runners must have the fused kernels.
            trm_testkit::missing_input(&std::format!(
                "simd_tile_bits_are_the_same_on_x86_64_and_aarch64: kernel set {}, TILE {TILE}",
                arch::kernel_set()
            ));
            return;
        }
        let (rows, cols) = (13, 300);
        let mut next = uniform(0x9e37_79b9_7f4a_7c15);
        let w: Vec<f32> = (0..rows * cols).map(|_| next()).collect();
        let x: Vec<f32> = (0..cols * TILE).map(|_| next()).collect();
        let [wf, wh, wq] = encodings(&w, 127.0);
        let scales: Vec<u8> = (0..rows)
            .flat_map(|r| (0.01 * (r + 1) as f32).to_le_bytes())
            .collect();
        let mut hashes = Vec::new();
        for weights in [
            Weights::F32(&wf),
            Weights::F16(&wh),
            Weights::I8 {
                values: &wq,
                scales: &scales,
            },
        ] {
            let mut y = std::vec![0f32; rows * TILE];
            let mut work = std::vec![0f32; Matrix::tile_work_len(cols).unwrap()];
            Matrix::new(rows, cols, weights)
                .unwrap()
                .matmul_tile(&x, &mut y, &mut work);
            hashes.push(bits_hash(&y));
        }
        assert_eq!(
            hashes,
            [
                0xf0f7_f285_7dd2_e225,
                0xa806_0721_5c00_b0ce,
                0x04d7_8d94_53ed_bc3d
            ],
            "{hashes:#x?}"
        );
    }

    /// int8 tile products with every work-buffer length (too short: the unbuffered path), short
    /// `x` and `y`, and non-finite activations: the same bits whatever the buffer, no panic.
    #[test]
    fn int8_tile_work_buffer_lengths_and_non_finite_inputs() {
        let (rows, cols) = (5, 19);
        let mut next = uniform(3);
        let w: Vec<f32> = (0..rows * cols).map(|_| next()).collect();
        let [_, _, wq] = encodings(&w, 127.0);
        let scales: Vec<u8> = (0..rows)
            .flat_map(|r| (0.1 * (r + 1) as f32).to_le_bytes())
            .collect();
        let m = Matrix::new(
            rows,
            cols,
            Weights::I8 {
                values: &wq,
                scales: &scales,
            },
        )
        .unwrap();
        let mut x: Vec<f32> = (0..cols * TILE).map(|_| next() * 4.0).collect();
        x[3] = f32::NAN;
        x[TILE + 1] = f32::INFINITY;
        x[2 * TILE + 2] = -f32::INFINITY;
        x[5] = f32::MAX;
        let full = Matrix::tile_work_len(cols).unwrap();
        let mut want = std::vec![0f32; rows * TILE];
        m.matmul_tile(&x, &mut want, &mut std::vec![0f32; full]);
        for len in 0..=full + 2 {
            let mut y = std::vec![0f32; rows * TILE];
            m.matmul_tile(&x, &mut y, &mut std::vec![0f32; len]);
            assert_eq!(bits_hash(&y), bits_hash(&want), "work {len}");
        }
        // Short x (fewer columns) and y (fewer rows): truncated, never a panic.
        for (xl, yl) in [(0, rows * TILE), (7 * TILE + 3, 2 * TILE + 1), (x.len(), 0)] {
            let mut y = std::vec![1f32; yl];
            m.matmul_tile(&x[..xl], &mut y, &mut std::vec![0f32; full]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// A tile product equals one matrix-vector product per tile column, for every dtype
        /// (int8 with its row scales, bit for bit), whatever kernels the dispatcher picks.
        #[test]
        fn tile_product_matches_matvec_per_column(
            rows in 1usize..20,
            cols in 1usize..80,
            seed in any::<u64>(),
        ) {
            let mut next = uniform(seed);
            let w: Vec<f32> = (0..rows * cols).map(|_| next()).collect();
            let xt: Vec<f32> = (0..cols * TILE).map(|_| next()).collect();
            let [wf, wh, wq] = encodings(&w, 127.0);
            let scales: Vec<u8> = (0..rows).flat_map(|r| (0.01 * (r + 1) as f32).to_le_bytes()).collect();
            for weights in [
                Weights::F32(&wf),
                Weights::F16(&wh),
                Weights::I8 { values: &wq, scales: &scales },
            ] {
                let m = Matrix::new(rows, cols, weights).unwrap();
                let mut y = std::vec![0f32; rows * TILE];
                let mut work = std::vec![0f32; Matrix::tile_work_len(cols).unwrap()];
                m.matmul_tile(&xt, &mut y, &mut work);
                for r in 0..TILE {
                    let x: Vec<f32> = (0..cols).map(|k| xt[k * TILE + r]).collect();
                    let mut want = std::vec![0f32; rows];
                    m.matvec(&x, &mut want);
                    for (n, v) in want.iter().enumerate() {
                        let got = y[n * TILE + r];
                        if m.dtype() == DType::I8 {
                            // Integer activations: the same bits.
                            prop_assert_eq!(got.to_bits(), v.to_bits(), "{},{}", n, r);
                        }
                        prop_assert!((got - v).abs() <= 1e-5 * cols as f32, "{n},{r}: {got} vs {v}");
                    }
                }
            }
        }
    }
}
