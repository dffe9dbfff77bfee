//! int8 kernels for Cortex-M cores with the DSP extension (ARMv7E-M: Cortex-M4, M7), in the
//! CMSIS-NN manner: `SXTB16` unpacks four int8 weights into two pairs of 16-bit lanes and
//! `SMLAD` does two 16 × 16-bit multiply-accumulates per instruction; and f16 kernels that
//! decode weights with the FPU's `VCVTB.F32.F16` (one instruction instead of the generic bit
//! manipulation) and otherwise run the generic kernels' arithmetic, so their results are
//! bit-identical to [`generic::dot_f16`] (the conversion is exact in IEEE mode, FPSCR.AHP = 0,
//! the reset value).
//!
//! # Numerics
//! Exactly [`q8`]'s, so the firmware's int8 products are bit-identical to every other
//! target's: the activation vector is quantised once per product by [`q8::quantize`] (values
//! in ±127, kept in 16-bit lanes for `SMLAD`), `SMLAD` sums wrap in i32 like the
//! specification's sums (it only sets the Q flag on overflow), and each row is rescaled by
//! [`q8::rescale`]. [`matvec_q8_pairs`] is the same computation in portable Rust on the
//! packed layout (tested against [`q8::matvec_q8`] on every host); the firmware's `selftest`
//! checks the DSP kernel against [`q8::matvec_q8`] on the target.
//!
//! Products with more than [`MAX_COLS`] columns (the i16 copy of `x` lives on the stack,
//! `2·MAX_COLS` bytes) and [`super::set_simd`]`(false)` use [`q8::matvec_q8`].
//!
//! The runtime multiplies two vectors at a time on these cores ([`TILE`] = 2): its tile
//! products use the 2 × 2 `SMLAD` kernel `tile_q8` (two weight rows × two activation vectors,
//! each unpacked weight feeding two `SMLAD`s; its portable model is [`tile_q8_pairs`]), after
//! [`quantize_tile`]. The one-vector `matvec_q8` serves the rest (the heads, a leftover odd
//! row).
//!
//! Cost (Cortex-M4, exact QEMU instruction counts in BENCHMARKS.md): the one-vector kernel
//! handles two rows × four columns in 13 instructions (one `LDRD` of four activations shared
//! by both rows; per row one `LDR` of four weights, two `SXTB16`, two `SMLAD`), 1.625
//! instructions per multiply-accumulate; the 2 × 2 tile kernel 16 instructions per 16
//! multiply-accumulates (1.0), plus its loop and per-row-pair overhead.

mod tile;

#[cfg(trm_arm_dsp)]
pub use tile::tile_q8;
pub use tile::{GROUP_BYTES, TILE, quantize_tile, tile_bytes, tile_f16, tile_f32, tile_q8_pairs};

#[cfg(trm_arm_dsp)]
use super::simd_allowed;
#[cfg(any(trm_arm_fp16, doc))]
use crate::kernels::generic;
use crate::kernels::q8;

/// Largest number of columns the packed path handles (stack copy of `x`: 4 KiB).
pub const MAX_COLS: usize = 2048;

/// The quantisation of one activation vector ([`q8`] steps 1–3), packed for `SMLAD`, and its
/// scale.
///
/// Columns are grouped by four; group `g` holds two words: `a[4g] | a[4g+2] << 16` and
/// `a[4g+1] | a[4g+3] << 16`, matching what `SXTB16 w` and `SXTB16 w, ROR #8` extract from
/// the four weights `q[4g..4g+4]` read as one little-endian word. The last `cols % 4`
/// values are kept unpacked in `tail`.
struct Quantized {
    pairs: [u32; MAX_COLS / 2],
    tail: [i32; 3],
    s_x: f32,
}

/// The 16-bit `SMLAD` lane of one activation: `q8::quantize(v, inv)` as a two's-complement
/// `u16` (in a `u32`).
#[inline(always)]
fn lane16(v: f32, inv: f32) -> u32 {
    u32::from(q8::quantize(v, inv) as i16 as u16)
}

/// Quantises `x` (at most [`MAX_COLS`] values; `None` if longer).
fn quantize(x: &[f32]) -> Option<Quantized> {
    if x.len() > MAX_COLS {
        return None;
    }
    let (s_x, inv) = q8::scales(q8::abs_max(x));
    let mut out = Quantized {
        pairs: [0; MAX_COLS / 2],
        tail: [0; 3],
        s_x,
    };
    let lane = |v: f32| lane16(v, inv);
    let (groups, tail) = x.as_chunks::<4>();
    for (g, pair) in groups.iter().zip(out.pairs.as_chunks_mut::<2>().0) {
        pair[0] = lane(g[0]) | (lane(g[2]) << 16);
        pair[1] = lane(g[1]) | (lane(g[3]) << 16);
    }
    for (t, &v) in out.tail.iter_mut().zip(tail) {
        *t = i32::from(q8::quantize(v, inv));
    }
    Some(out)
}

/// The two 16-bit lanes of a word as signed values.
fn lanes(w: u32) -> (i32, i32) {
    (
        i32::from(w as u16 as i16),
        i32::from((w >> 16) as u16 as i16),
    )
}

/// `Σ q[c]·a[c]` over the whole groups `0..groups` of one row, wrapping in i32 (what the
/// `SMLAD` loop computes).
fn row_sum_portable(q: &[u8], xq: &Quantized, groups: usize) -> i32 {
    let mut acc = 0i32;
    for k in 0..groups {
        let (Some(w), Some(p)) = (q.get(4 * k..4 * k + 4), xq.pairs.get(2 * k..2 * k + 2)) else {
            break;
        };
        let (x0, x2) = lanes(p[0]);
        let (x1, x3) = lanes(p[1]);
        let w = |i: usize| i32::from(w[i] as i8);
        acc = acc
            .wrapping_add(w(0) * x0 + w(2) * x2)
            .wrapping_add(w(1) * x1 + w(3) * x3);
    }
    acc
}

/// `Σ q[c]·a[c]` over the tail columns `4·groups..` of a row (at most 3 products).
fn tail_sum(row: &[u8], xq: &Quantized, groups: usize) -> i32 {
    let mut s = 0i32;
    for (&w, x) in row.get(4 * groups..).unwrap_or(&[]).iter().zip(xq.tail) {
        s = s.wrapping_add(i32::from(w as i8) * x);
    }
    s
}

/// [`q8::matvec_q8`] on the `SMLAD` layout in portable Rust (the same bits; the contract of
/// [`q8::matvec_q8`]).
pub fn matvec_q8_pairs(w: &[u8], w_scales: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    if cols == 0 {
        return;
    }
    let x = x.get(..cols).unwrap_or(x);
    let Some(xq) = quantize(x) else {
        q8::matvec_q8(w, w_scales, cols, x, y);
        return;
    };
    let groups = x.len() / 4;
    let rows = w_scales.len() / 4;
    for (n, (row, out)) in w.chunks_exact(cols).zip(y).take(rows).enumerate() {
        let acc = row_sum_portable(row, &xq, groups).wrapping_add(tail_sum(row, &xq, groups));
        *out = q8::rescale(acc, xq.s_x, q8::row_scale(w_scales, n));
    }
}

#[cfg(trm_arm_dsp)]
mod dsp {
    use super::Quantized;
    use core::arch::asm;

    /// Adds `Σ` over groups `0..n` of two rows `stride` bytes apart to `(a0, a1)`.
    ///
    /// # Safety
    /// `1 ≤ n`; `row0` and `row0 + stride` must each point to `4·n` readable bytes;
    /// `n ≤ MAX_COLS / 4`. The sums wrap in i32, as the specification's do.
    #[inline(always)]
    pub(super) unsafe fn two_rows(
        row0: *const u8,
        stride: usize,
        xq: &Quantized,
        n: usize,
        a0: &mut i32,
        a1: &mut i32,
    ) {
        // SAFETY: the loop runs `n ≥ 1` times and reads `n` words from `row0` and from
        // `row0 + stride` and `n` double words from `pairs` (`n ≤ MAX_COLS / 4` bounds it);
        // the caller guarantees the rows. Unaligned `LDR` is allowed on ARMv7E-M (weights may
        // sit at any byte address); `pairs` is word-aligned as `LDRD` needs. Only the named
        // registers and the flags change; memory is only read.
        unsafe {
            asm!(
                "2:",
                "ldrd {xa}, {xb}, [{xp}], #8",
                "ldr {w}, [{q}, {stride}]",
                "sxtb16 {t}, {w}",
                "smlad {a1}, {t}, {xa}, {a1}",
                "sxtb16 {t}, {w}, ror #8",
                "smlad {a1}, {t}, {xb}, {a1}",
                "ldr {w}, [{q}], #4",
                "sxtb16 {t}, {w}",
                "smlad {a0}, {t}, {xa}, {a0}",
                "sxtb16 {t}, {w}, ror #8",
                "smlad {a0}, {t}, {xb}, {a0}",
                "subs {n}, {n}, #1",
                "bne 2b",
                q = inout(reg) row0 => _,
                xp = inout(reg) xq.pairs.as_ptr() => _,
                n = inout(reg) n => _,
                stride = in(reg) stride,
                a0 = inout(reg) *a0,
                a1 = inout(reg) *a1,
                xa = out(reg) _,
                xb = out(reg) _,
                w = out(reg) _,
                t = out(reg) _,
                options(nostack, readonly),
            );
        }
    }

    /// Adds `Σ` over groups `0..n` of one row to `a`.
    ///
    /// # Safety
    /// As [`two_rows`], for one row.
    #[inline(always)]
    pub(super) unsafe fn one_row(row: *const u8, xq: &Quantized, n: usize, a: &mut i32) {
        // SAFETY: as in `two_rows`, for one row.
        unsafe {
            asm!(
                "2:",
                "ldrd {xa}, {xb}, [{xp}], #8",
                "ldr {w}, [{q}], #4",
                "sxtb16 {t}, {w}",
                "smlad {a}, {t}, {xa}, {a}",
                "sxtb16 {t}, {w}, ror #8",
                "smlad {a}, {t}, {xb}, {a}",
                "subs {n}, {n}, #1",
                "bne 2b",
                q = inout(reg) row => _,
                xp = inout(reg) xq.pairs.as_ptr() => _,
                n = inout(reg) n => _,
                a = inout(reg) *a,
                xa = out(reg) _,
                xb = out(reg) _,
                w = out(reg) _,
                t = out(reg) _,
                options(nostack, readonly),
            );
        }
    }
}

/// [`q8::matvec_q8`] with `SMLAD` (identical results), two rows at a time; products wider
/// than [`MAX_COLS`] or with `x` shorter than `cols` use [`q8::matvec_q8`].
#[cfg(trm_arm_dsp)]
fn matvec_q8_dsp(w: &[u8], w_scales: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    if cols == 0 {
        return;
    }
    let quantised = x.get(..cols).and_then(quantize);
    let Some(xq) = quantised else {
        q8::matvec_q8(w, w_scales, cols, x, y);
        return;
    };
    let groups = cols / 4;
    let n_rows = w_scales.len() / 4;
    let mut rows = w
        .chunks_exact(cols)
        .zip(y.iter_mut())
        .take(n_rows)
        .enumerate();
    while let Some((n, (r0, y0))) = rows.next() {
        let mut a0 = tail_sum(r0, &xq, groups);
        match rows.next() {
            Some((_, (r1, y1))) => {
                let mut a1 = tail_sum(r1, &xq, groups);
                if groups > 0 {
                    // SAFETY: `r1` starts `cols` bytes after `r0` (consecutive exact chunks of
                    // `w`), each holds `cols ≥ 4·groups` bytes; `1 ≤ groups ≤ MAX_COLS / 4`, so
                    // `pairs` is in bounds.
                    unsafe { dsp::two_rows(r0.as_ptr(), cols, &xq, groups, &mut a0, &mut a1) };
                }
                *y0 = q8::rescale(a0, xq.s_x, q8::row_scale(w_scales, n));
                *y1 = q8::rescale(a1, xq.s_x, q8::row_scale(w_scales, n + 1));
            }
            None => {
                if groups > 0 {
                    // SAFETY: `r0` holds `cols ≥ 4·groups` bytes; `1 ≤ groups ≤ MAX_COLS / 4`.
                    unsafe { dsp::one_row(r0.as_ptr(), &xq, groups, &mut a0) };
                }
                *y0 = q8::rescale(a0, xq.s_x, q8::row_scale(w_scales, n));
            }
        }
    }
}

/// Two binary16 values (low and high half of `w`) → f32 with `VCVTB`/`VCVTT.F32.F16`
/// (exact; IEEE half precision, FPSCR.AHP = 0).
///
/// Stable Rust cannot name FPU registers in `asm!` on this target (the `vfp2` feature is
/// unstable), so the instruction borrows `s0`/`s1` and puts their values back.
#[cfg(trm_arm_fp16)]
#[inline(always)]
fn f16x2_to_f32(w: u32) -> [f32; 2] {
    let (lo, hi): (u32, u32);
    // SAFETY: saves s0/s1 in two core registers, converts, moves the results out and restores
    // s0/s1, so every FPU register keeps its value; no memory, stack or flags are touched.
    unsafe {
        core::arch::asm!(
            "vmov {t0}, {t1}, s0, s1",
            "vmov s0, {w}",
            "vcvtt.f32.f16 s1, s0",
            "vcvtb.f32.f16 s0, s0",
            "vmov {lo}, {hi}, s0, s1",
            "vmov s0, s1, {t0}, {t1}",
            w = in(reg) w,
            t0 = out(reg) _,
            t1 = out(reg) _,
            lo = out(reg) lo,
            hi = out(reg) hi,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    [f32::from_bits(lo), f32::from_bits(hi)]
}

/// Eight binary16 values → f32 with the FPU's `VCVTB`/`VCVTT` (exact), two per conversion.
#[cfg(trm_arm_fp16)]
#[inline(always)]
fn f16x8_hw(b: &[[u8; 2]; generic::LANES]) -> [f32; generic::LANES] {
    let mut out = [0f32; generic::LANES];
    for (o, p) in out
        .as_chunks_mut::<2>()
        .0
        .iter_mut()
        .zip(b.as_chunks::<2>().0)
    {
        *o = f16x2_to_f32(u32::from_le_bytes([p[0][0], p[0][1], p[1][0], p[1][1]]));
    }
    out
}

/// One binary16 value → f32 with the FPU's `VCVTB` (exact).
#[cfg(trm_arm_fp16)]
#[inline(always)]
fn f16x1_hw(b: [u8; 2]) -> f32 {
    f16x2_to_f32(u32::from(u16::from_le_bytes(b)))[0]
}

/// [`generic::dot_f16`] with hardware conversion: the same lanes, order and reduction
/// ([`generic::reduce`]), so the same bits.
#[cfg(trm_arm_fp16)]
fn dot_f16_hw(w: &[u8], x: &[f32]) -> f32 {
    const LANES: usize = generic::LANES;
    let mut acc = [0f32; LANES];
    let (ws, _) = w.as_chunks::<2>();
    let n = ws.len().min(x.len());
    let (ws, xs) = (ws.get(..n).unwrap_or(&[]), x.get(..n).unwrap_or(&[]));
    let (wb, wt) = ws.as_chunks::<LANES>();
    let (xb, xt) = xs.as_chunks::<LANES>();
    for (wc, xc) in wb.iter().zip(xb) {
        for ((a, wv), xv) in acc.iter_mut().zip(f16x8_hw(wc)).zip(xc) {
            *a += wv * xv;
        }
    }
    let tail: f32 = wt.iter().zip(xt).map(|(wv, xv)| f16x1_hw(*wv) * xv).sum();
    generic::reduce(acc) + tail
}

/// [`generic::dot_f16`], with the FPU's f16 conversion unless SIMD is switched off (identical
/// results either way).
#[cfg(trm_arm_fp16)]
pub fn dot_f16(w: &[u8], x: &[f32]) -> f32 {
    if simd_allowed() {
        dot_f16_hw(w, x)
    } else {
        generic::dot_f16(w, x)
    }
}

/// [`generic::matvec_f16`], with the FPU's f16 conversion unless SIMD is switched off.
#[cfg(trm_arm_fp16)]
pub fn matvec_f16(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    let Some(row_bytes) = cols.checked_mul(2).filter(|&b| b > 0) else {
        return;
    };
    if simd_allowed() {
        for (row, out) in w.chunks_exact(row_bytes).zip(y) {
            *out = dot_f16_hw(row, x);
        }
    } else {
        generic::matvec_f16(w, cols, x, y);
    }
}

/// [`q8::matvec_q8`] with the DSP kernel unless SIMD is switched off (identical results
/// either way).
#[cfg(trm_arm_dsp)]
pub fn matvec_q8(w: &[u8], w_scales: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    if simd_allowed() {
        matvec_q8_dsp(w, w_scales, cols, x, y);
    } else {
        q8::matvec_q8(w, w_scales, cols, x, y);
    }
}

/// Name of the kernel set in use: `"dsp"` (int8 products with `SMLAD`, f16 weights decoded by
/// the FPU on hard-float targets; f32 weights use the generic kernels), or `"generic"` after
/// `set_simd(false)`.
#[cfg(trm_arm_dsp)]
pub fn kernel_set() -> &'static str {
    if simd_allowed() { "dsp" } else { "generic" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    proptest! {
        /// The packed `SMLAD` layout gives the specification's bits, for awkward lengths
        /// (tails, beyond MAX_COLS), int8 values including −128, outliers and NaN.
        #[test]
        fn packed_layout_matches_the_spec(
            cols in 1usize..2100,
            rows in 1usize..4,
            seed in any::<u64>(),
            scale in 1e-3f32..1e3,
        ) {
            let mut s = seed | 1;
            let mut next = || {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s
            };
            let q: Vec<u8> = (0..rows * cols).map(|_| next() as u8).collect();
            let scales: Vec<u8> = (0..rows).flat_map(|r| (0.01 * (r + 1) as f32).to_le_bytes()).collect();
            let x: Vec<f32> = (0..cols)
                .map(|i| if i % 61 == 3 { f32::NAN } else {
                    ((next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
                })
                .collect();
            let (mut y, mut spec) = (std::vec![0f32; rows], std::vec![1f32; rows]);
            matvec_q8_pairs(&q, &scales, cols, &x, &mut y);
            q8::matvec_q8(&q, &scales, cols, &x, &mut spec);
            prop_assert_eq!(y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                spec.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
    }
}
