//! int8 kernels for Cortex-M cores with the DSP extension (ARMv7E-M: Cortex-M4, M7), in the
//! CMSIS-NN manner: `SXTB16` unpacks four int8 weights into two pairs of 16-bit lanes and
//! `SMLAD` does two 16 × 16-bit multiply-accumulates per instruction; and f16 kernels that
//! decode weights with the FPU's `VCVTB.F32.F16` (one instruction instead of the generic bit
//! manipulation) and otherwise run the generic kernels' arithmetic, so their results are
//! bit-identical to [`generic::dot_f16`] (the conversion is exact in IEEE mode, FPSCR.AHP = 0,
//! the reset value).
//!
//! # Numerics
//! The activations are f32, so a product first quantises `x` to i16 with one scale per
//! product: `s = max|x| / 32767`, `x̂[c] = round_half_away(x[c] / s)` (computed as
//! `x[c] · (32767 / max|x|)`, clamped to ±32767). The sum `Σ q[c]·x̂[c]` is exact in
//! integers (i32 per block of [`BLOCK`] columns, which cannot overflow even for `q = −128`,
//! then i64), and `y = s · Σ` (one f32 conversion and one product). Hence:
//! - error bound against the exact `Σ q[c]·x[c]`: `|y − Σ q·x| ≤ s/2 · Σ|q[c]| + 2⁻²²·|y|`
//!   (quantisation of `x`, then two f32 roundings), i.e. at most `max|x|·Σ|q| / 65534` plus
//!   2.4e-7 relative: see [`error_bound`];
//! - the result does not depend on the summation order: the portable [`matvec_i8_q16`] (the
//!   specification, tested on every host) and the DSP kernel give the same bits, which the
//!   firmware's `selftest` checks on the target;
//! - finite activations are assumed (NaN quantises to 0; an infinite `max|x|` gives NaN).
//!
//! Products with more than [`MAX_COLS`] columns (the i16 copy of `x` lives on the stack,
//! `2·MAX_COLS` bytes) and [`super::set_simd`]`(false)` use the generic f32 kernels.
//!
//! Cost (Cortex-M4, exact QEMU instruction counts in BENCHMARKS.md): the inner loop handles
//! two rows × four columns in 13 instructions (one `LDRD` of four activations shared by both
//! rows; per row one `LDR` of four weights, two `SXTB16`, two `SMLAD`), 1.625 instructions per
//! multiply-accumulate, plus the quantisation of `x` once per product and a few instructions
//! per row. CMSIS-NN's ≤ 1 instruction per MAC needs every unpacked weight to feed two
//! activation vectors (a 2 × 2 kernel over a tile of two positions), which the runtime's
//! one-vector products on Cortex-M (tile of 1) do not offer.

#[cfg(trm_arm_dsp)]
use super::simd_allowed;
use crate::kernels::generic;

/// Largest number of columns the quantised path handles (stack copy of `x`: 4 KiB).
pub const MAX_COLS: usize = 2048;
/// Columns per exact i32 partial sum: `512 · 128 · 32767 < 2³¹`.
pub const BLOCK: usize = 512;
/// Largest quantised activation magnitude.
const Q_MAX: f32 = 32767.0;

/// The quantisation of one activation vector: `x̂` packed for `SMLAD` and its scale.
///
/// Columns are grouped by four; group `g` holds two words: `x̂[4g] | x̂[4g+2] << 16` and
/// `x̂[4g+1] | x̂[4g+3] << 16`, matching what `SXTB16 w` and `SXTB16 w, ROR #8` extract from
/// the four weights `q[4g..4g+4]` read as one little-endian word. The last `cols % 4`
/// values are kept unpacked in `tail`.
struct Quantized {
    pairs: [u32; MAX_COLS / 2],
    tail: [i32; 3],
    scale: f32,
}

/// `round_half_away(v)` clamped to ±32767, for `|v| ≤ 32767` up to rounding.
fn q16(v: f32) -> i32 {
    let r = if v >= 0.0 { v + 0.5 } else { v - 0.5 };
    // `as` truncates toward zero and saturates (NaN gives 0); clamp to the symmetric range.
    (r as i32).clamp(-(Q_MAX as i32), Q_MAX as i32)
}

/// Quantises `x` (at most [`MAX_COLS`] values) to i16 with one scale.
fn quantize(x: &[f32]) -> Quantized {
    let mut out = Quantized {
        pairs: [0; MAX_COLS / 2],
        tail: [0; 3],
        scale: 0.0,
    };
    let max = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    if max == 0.0 || x.len() > MAX_COLS {
        return out;
    }
    let inv = Q_MAX / max;
    out.scale = max / Q_MAX;
    let (groups, tail) = x.as_chunks::<4>();
    for (g, pair) in groups.iter().zip(out.pairs.as_chunks_mut::<2>().0) {
        let [a, b, c, d] = g.map(|v| q16(v * inv));
        pair[0] = (a as u16 as u32) | ((c as u16 as u32) << 16);
        pair[1] = (b as u16 as u32) | ((d as u16 as u32) << 16);
    }
    for (t, v) in out.tail.iter_mut().zip(tail) {
        *t = q16(v * inv);
    }
    out
}

/// The two 16-bit lanes of a word as signed values.
fn lanes(w: u32) -> (i32, i32) {
    (
        i32::from(w as u16 as i16),
        i32::from((w >> 16) as u16 as i16),
    )
}

/// `Σ q[c]·x̂[c]` over whole groups `g0..g1` of one row (portable; exact in i32 per block).
fn row_sum_portable(q: &[u8], xq: &Quantized, groups: core::ops::Range<usize>) -> i64 {
    let mut total = 0i64;
    let mut g = groups.start;
    while g < groups.end {
        let end = (g + BLOCK / 4).min(groups.end);
        let mut acc = 0i32;
        for k in g..end {
            let (Some(w), Some(p)) = (q.get(4 * k..4 * k + 4), xq.pairs.get(2 * k..2 * k + 2))
            else {
                break;
            };
            let (x0, x2) = lanes(p[0]);
            let (x1, x3) = lanes(p[1]);
            let w = |i: usize| i32::from(w[i] as i8);
            // Bounded by |q| ≤ 128, |x̂| ≤ 32767 and BLOCK: no overflow.
            acc = acc.wrapping_add(w(0) * x0 + w(2) * x2 + w(1) * x1 + w(3) * x3);
        }
        total += i64::from(acc);
        g = end;
    }
    total
}

/// The tail columns (`4·groups ..`) of one row.
fn tail_sum(q: &[u8], xq: &Quantized, groups: usize) -> i64 {
    q.get(4 * groups..)
        .unwrap_or(&[])
        .iter()
        .zip(xq.tail)
        .map(|(&w, x)| i64::from(w as i8) * i64::from(x))
        .sum()
}

/// The portable specification of the DSP kernel: `y[r] = s · Σ_c q[r, c]·x̂[c]` with the
/// quantisation described in the module docs (same contract as [`generic::matvec_i8`]
/// otherwise: `rows = q.len() / cols`, a shorter `y` truncates, `cols = 0` does nothing).
/// Products wider than [`MAX_COLS`] use [`generic::matvec_i8`].
pub fn matvec_i8_q16(q: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    if cols == 0 {
        return;
    }
    let x = x.get(..cols).unwrap_or(x);
    if x.len() > MAX_COLS || x.len() < cols {
        generic::matvec_i8(q, cols, x, y);
        return;
    }
    let xq = quantize(x);
    let groups = cols / 4;
    for (row, out) in q.chunks_exact(cols).zip(y) {
        let sum = row_sum_portable(row, &xq, 0..groups) + tail_sum(row, &xq, groups);
        *out = sum as f32 * xq.scale;
    }
}

/// The bound of the module docs for one row: `max|x| · Σ|q| / 65534 + 2⁻²²·|y|`.
pub fn error_bound(q: &[u8], x: &[f32], y: f32) -> f32 {
    let max = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let sum_q: f32 = q
        .iter()
        .take(x.len())
        .map(|&w| f32::from(w as i8).abs())
        .sum();
    max * sum_q / (2.0 * Q_MAX) * (1.0 + 1e-6) + y.abs() * 2.4e-7
}

#[cfg(trm_arm_dsp)]
mod dsp {
    use super::Quantized;
    use core::arch::asm;

    /// Adds `Σ` over groups `0..n` of two rows `stride` bytes apart to `(a0, a1)`.
    ///
    /// # Safety
    /// `1 ≤ n`; `row0` and `row0 + stride` must each point to `4·n` readable bytes;
    /// `n ≤ MAX_COLS / 4`; the sums must not overflow i32 (`4·n ≤ BLOCK` columns).
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

/// `Σ q[c]·x̂[c]` over the tail columns `4·groups..` of a row, in i32 (at most 3 products).
#[cfg(trm_arm_dsp)]
fn tail_i32(row: &[u8], xq: &Quantized, groups: usize) -> i32 {
    let mut s = 0i32;
    for (&w, x) in row.get(4 * groups..).unwrap_or(&[]).iter().zip(xq.tail) {
        s += i32::from(w as i8) * x;
    }
    s
}

/// [`matvec_i8_q16`] with `SMLAD` (identical results), two rows at a time. Products of at
/// most [`BLOCK`] columns (every product of the shipped models) sum in i32 and convert with
/// one `VCVT`; wider ones fall back to [`matvec_i8_q16`]'s portable code.
#[cfg(trm_arm_dsp)]
fn matvec_i8_dsp(q: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    if cols == 0 {
        return;
    }
    if cols > BLOCK || x.len() < cols {
        matvec_i8_q16(q, cols, x, y);
        return;
    }
    let xq = quantize(x.get(..cols).unwrap_or(x));
    let groups = cols / 4;
    let mut rows = q.chunks_exact(cols).zip(y.iter_mut());
    loop {
        let Some((r0, y0)) = rows.next() else { break };
        let mut a0 = tail_i32(r0, &xq, groups);
        match rows.next() {
            Some((r1, y1)) => {
                let mut a1 = tail_i32(r1, &xq, groups);
                if groups > 0 {
                    // SAFETY: `r1` starts `cols` bytes after `r0` (consecutive exact chunks of
                    // `q`), each holds `cols ≥ 4·groups` bytes; `1 ≤ groups ≤ BLOCK / 4`, so
                    // the i32 sums cannot overflow and `pairs` is in bounds.
                    unsafe { dsp::two_rows(r0.as_ptr(), cols, &xq, groups, &mut a0, &mut a1) };
                }
                *y0 = a0 as f32 * xq.scale;
                *y1 = a1 as f32 * xq.scale;
            }
            None => {
                if groups > 0 {
                    // SAFETY: `r0` holds `cols ≥ 4·groups` bytes; `1 ≤ groups ≤ BLOCK / 4`.
                    unsafe { dsp::one_row(r0.as_ptr(), &xq, groups, &mut a0) };
                }
                *y0 = a0 as f32 * xq.scale;
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

/// [`generic::dot_f16`] with hardware conversion: the same lanes, order and reduction, so the
/// same bits.
#[cfg(trm_arm_fp16)]
fn dot_f16_hw(w: &[u8], x: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut acc = [0f32; LANES];
    let (ws, _) = w.as_chunks::<2>();
    let n = ws.len().min(x.len());
    let (ws, xs) = (ws.get(..n).unwrap_or(&[]), x.get(..n).unwrap_or(&[]));
    let (wb, wt) = ws.as_chunks::<LANES>();
    let (xb, xt) = xs.as_chunks::<LANES>();
    for (wc, xc) in wb.iter().zip(xb) {
        let mut wf = [0f32; LANES];
        for (o, b) in wf
            .as_chunks_mut::<2>()
            .0
            .iter_mut()
            .zip(wc.as_chunks::<2>().0)
        {
            *o = f16x2_to_f32(u32::from_le_bytes([b[0][0], b[0][1], b[1][0], b[1][1]]));
        }
        for ((a, wv), xv) in acc.iter_mut().zip(wf).zip(xc) {
            *a += wv * xv;
        }
    }
    let tail: f32 = wt
        .iter()
        .zip(xt)
        .map(|(wv, xv)| f16x2_to_f32(u32::from(u16::from_le_bytes(*wv)))[0] * xv)
        .sum();
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    (((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))) + tail
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

/// [`generic::matvec_i8`]'s contract with the DSP kernel ([`matvec_i8_q16`] numerics) unless
/// SIMD is switched off.
#[cfg(trm_arm_dsp)]
pub fn matvec_i8(q: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    if simd_allowed() {
        matvec_i8_dsp(q, cols, x, y);
    } else {
        generic::matvec_i8(q, cols, x, y);
    }
}

/// [`generic::dot_i8`]'s contract with the DSP kernel unless SIMD is switched off.
#[cfg(trm_arm_dsp)]
pub fn dot_i8(q: &[u8], x: &[f32]) -> f32 {
    let n = q.len().min(x.len());
    let mut y = [0f32; 1];
    if n == 0 {
        return 0.0;
    }
    matvec_i8(q.get(..n).unwrap_or(&[]), n, x, &mut y);
    y[0]
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
        /// The quantised kernel stays within its stated bound of the exact sum, for every
        /// row, with awkward lengths (tails, several blocks) and int8 values including −128.
        #[test]
        fn q16_is_within_its_bound(
            cols in 1usize..1100,
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
            let x: Vec<f32> = (0..cols)
                .map(|_| ((next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale)
                .collect();
            let mut y = std::vec![0f32; rows];
            matvec_i8_q16(&q, cols, &x, &mut y);
            for (r, row) in q.chunks_exact(cols).enumerate() {
                let exact: f64 = row
                    .iter()
                    .zip(&x)
                    .map(|(&w, &v)| f64::from(w as i8) * f64::from(v))
                    .sum();
                let bound = f64::from(error_bound(row, &x, y[r]));
                prop_assert!((f64::from(y[r]) - exact).abs() <= bound,
                    "row {r}: {} vs {exact}, bound {bound}", y[r]);
                let mut g = [0f32; 1];
                generic::matvec_i8(row, cols, &x, &mut g);
                // The generic kernel's own f32 rounding: below 1e-5 of Σ|q·x| here.
                let mag: f64 = row
                    .iter()
                    .zip(&x)
                    .map(|(&w, &v)| (f64::from(w as i8) * f64::from(v)).abs())
                    .sum();
                prop_assert!(f64::from((g[0] - y[r]).abs()) <= bound + 1e-5 * mag);
            }
        }
    }

    #[test]
    fn q16_edge_cases() {
        let mut y = [1f32; 2];
        // Zero activations, zero columns, a short y, a too-wide product (generic path).
        matvec_i8_q16(&[1, 2, 3, 4], 2, &[0.0, 0.0], &mut y);
        assert_eq!(y, [0.0, 0.0]);
        matvec_i8_q16(&[1, 2], 0, &[1.0], &mut y);
        assert_eq!(y, [0.0, 0.0]);
        let mut one = [0f32; 1];
        matvec_i8_q16(&[1, 2, 3, 4], 2, &[1.0, 1.0], &mut one);
        assert_eq!(one, [3.0]);
        let wide = std::vec![1u8; MAX_COLS + 1];
        let xs = std::vec![0.5f32; MAX_COLS + 1];
        matvec_i8_q16(&wide, MAX_COLS + 1, &xs, &mut one);
        assert_eq!(one[0], (MAX_COLS + 1) as f32 * 0.5);
        // Exactly representable activations are exact: x̂ = x · 32767 / max.
        let q = [127u8, 0x81, 5, 7, 9];
        let x = [32767.0f32, -32767.0, 1.0, 2.0, 3.0];
        matvec_i8_q16(&q, 5, &x, &mut one);
        assert_eq!(
            one[0],
            (127.0 * 32767.0 + 127.0 * 32767.0 + 5.0 + 14.0 + 27.0) as f32
        );
    }
}
