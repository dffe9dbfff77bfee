//! Integer-activation int8 tile kernel with `SDOT` (the Armv8.2 dot-product extension,
//! `FEAT_DotProd`: Cortex-A75/A76/A78, Carmel, Neoverse, Apple M1 and later), chosen at run
//! time; [`crate::kernels::q8`] is its specification and the integer sums are exact, so it
//! gives the same bits.
//!
//! Register block: 4 weight rows × 16 tile lanes (16 accumulators of 4 lanes). The quantised
//! tile holds four columns of one lane in four consecutive bytes, so one 16-byte load gives
//! four lanes × four columns, and `sdot acc.4s, a.16b, w.4b[e]` adds the four products of
//! each lane with the four weights `w[4g .. 4g + 4]` (element `e` of a 16-byte load of the
//! weight row) into its i32 lane: per 16 columns, one weight load per row and 16 activation
//! loads feed 64 `sdot` (1,024 multiply-adds).
//!
//! Detection: a build for a CPU with the extension (`-C target-feature=+dotprod`) uses it
//! unconditionally; otherwise, on Linux, `ID_AA64ISAR0_EL1.DP` is read once with `MRS` (the
//! kernel traps EL0 reads of the ID registers and returns the sanitised value, the
//! `HWCAP_CPUID` ABI of Linux 4.11 and later; qemu-user does the same). Elsewhere the plain
//! [`crate::kernels::q8::tile_q8`] runs.

use core::arch::aarch64::{
    float32x4_t, int8x16_t, int32x4_t, vabsq_f32, vbslq_f32, vceqq_f32, vcombine_s8, vcombine_s16,
    vcvtnq_s32_f32, vcvtq_f32_s32, vdupq_laneq_s32, vdupq_n_f32, vdupq_n_s8, vdupq_n_s32,
    vget_low_s8, vld1q_f32, vld1q_s8, vld1q_u8, vmaxnmq_f32, vmaxq_f32, vminq_f32, vmovn_s16,
    vmovn_s32, vmull_high_s8, vmull_s8, vmulq_f32, vpadalq_s16, vpaddq_s16, vqtbl1q_s8,
    vreinterpretq_s8_s32, vreinterpretq_s32_s8, vst1q_f32, vst1q_s8,
};
use core::arch::asm;
use core::sync::atomic::{AtomicU8, Ordering};

use crate::kernels::TILE;
use crate::kernels::q8::{self, tile_bytes};

// Tiles are multiplied in blocks of 16 lanes.
const _: () = assert!(TILE.is_multiple_of(16) && TILE > 0);

/// Bit of [`FEATURES`]: detection has run.
const DETECTED: u8 = 1;
/// Bit of [`FEATURES`]: `SDOT` usable.
const DOTPROD: u8 = 2;

/// Cached result of [`detect`]; 0 until the first query.
static FEATURES: AtomicU8 = AtomicU8::new(0);

/// Probes the CPU (see the module docs).
fn detect() -> u8 {
    let mut bits = DETECTED;
    if cfg!(target_feature = "dotprod") {
        bits |= DOTPROD;
    }
    #[cfg(target_os = "linux")]
    {
        let isar0: u64;
        // SAFETY: Linux emulates EL0 reads of ID_AA64ISAR0_EL1 (HWCAP_CPUID, see the module
        // docs); the instruction only writes the named register.
        unsafe {
            asm!("mrs {}, ID_AA64ISAR0_EL1", out(reg) isar0, options(nomem, nostack, preserves_flags));
        }
        // Bits 47:44, DP: 1 = SDOT and UDOT.
        if (isar0 >> 44) & 0xf >= 1 {
            bits |= DOTPROD;
        }
    }
    bits
}

/// Whether this CPU has `SDOT` (ignoring [`super::super::set_simd`]).
pub fn cpu_has_dotprod() -> bool {
    let mut bits = FEATURES.load(Ordering::Relaxed);
    if bits & DETECTED == 0 {
        bits = detect();
        FEATURES.store(bits, Ordering::Relaxed);
    }
    bits & DOTPROD != 0
}

/// `acc += Σ_{j<4} a[4l + j]·w[4E + j]` per i32 lane `l`: `sdot` by element `E` when `DOT`,
/// else plain NEON (`smull`/`smull2` into i16 — `|a·w| ≤ 16,256` — `addp` of pairs of
/// products — at most 32,512, no overflow — and `sadalp` into the i32 lanes: 4 instructions
/// per 16 products, the weight broadcast shared by the lanes).
///
/// # Safety
/// With `DOT`, the CPU must have `SDOT` (the callers are `dotprod` functions).
#[inline(always)]
unsafe fn dot4<const DOT: bool, const E: i32>(
    acc: int32x4_t,
    a: int8x16_t,
    w: int8x16_t,
) -> int32x4_t {
    if !DOT {
        // SAFETY: register-only NEON intrinsics; NEON is baseline on this target.
        return unsafe {
            let wb = vreinterpretq_s8_s32(vdupq_laneq_s32::<E>(vreinterpretq_s32_s8(w)));
            let lo = vmull_s8(vget_low_s8(a), vget_low_s8(wb));
            let hi = vmull_high_s8(a, wb);
            vpadalq_s16(acc, vpaddq_s16(lo, hi))
        };
    }
    let mut acc = acc;
    // SAFETY: register-only instruction, available per the caller contract.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {w:v}.4b[{e}]",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            w = in(vreg) w,
            e = const E,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// Sixteen weights `row[16c .. 16c + 16]`, zero at and past `k_len` (the last chunk of a
/// row; out of line, as it runs once per row and tile).
///
/// # Safety
/// `row .. row + min(16c + 16, k_len)` readable.
#[cold]
#[inline(never)]
unsafe fn weights_tail(row: *const u8, c: usize, k_len: usize) -> int8x16_t {
    let mut b = [0i8; 16];
    for (j, o) in b.iter_mut().enumerate() {
        if 16 * c + j < k_len {
            // SAFETY: 16c + j < k_len: readable (caller contract).
            *o = unsafe { *row.add(16 * c + j) } as i8;
        }
    }
    // SAFETY: `b` holds 16 bytes; NEON is baseline here.
    unsafe { vld1q_s8(b.as_ptr()) }
}

/// `R` rows from `w` (`cols` bytes apart) over `k_len` columns of the quantised tile `q`,
/// lanes `16h .. 16h + 16`, rescaled into `y` (rows `TILE` floats apart).
///
/// # Safety
/// With `DOT`, the CPU has `SDOT`; `w + j·cols .. + k_len` readable for `j < R`;
/// `q .. q + tile_bytes(k_len)` readable; `y .. y + R·TILE` writable; `16h + 16 <= TILE`;
/// `w_scales` holds at least `R` scales.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn row_block<const R: usize, const DOT: bool>(
    w: *const u8,
    cols: usize,
    k_len: usize,
    q: *const u8,
    h: usize,
    w_scales: &[[u8; 4]],
    s_x: &[f32; TILE],
    y: *mut f32,
) {
    let groups = k_len.div_ceil(4);
    // SAFETY: register-only NEON intrinsic (NEON is baseline here).
    let mut acc = [[unsafe { vdupq_n_s32(0) }; 4]; R];
    let full = k_len / 16;
    for c in 0..k_len.div_ceil(16) {
        // SAFETY: NEON is baseline here.
        let mut wv = [unsafe { vdupq_n_s8(0) }; R];
        for (j, wj) in wv.iter_mut().enumerate() {
            // SAFETY: row j < R holds k_len readable bytes (caller contract): 16 at 16c when
            // c < full, else the tail.
            *wj = unsafe {
                if c < full {
                    vld1q_s8(w.add(j * cols + 16 * c).cast())
                } else {
                    weights_tail(w.add(j * cols), c, k_len)
                }
            };
        }
        macro_rules! group {
            ($e:literal) => {
                let g = 4 * c + $e;
                if c < full || g < groups {
                    // SAFETY: g < groups: (g·TILE + 16h + 4i)·4 + 16 <= tile_bytes(k_len)
                    // bytes of q are readable; `SDOT` is available with `DOT` (caller
                    // contract).
                    unsafe {
                        let p = q.add((g * TILE + 16 * h) * 4);
                        let a: [int8x16_t; 4] = [
                            vld1q_s8(p.cast()),
                            vld1q_s8(p.add(16).cast()),
                            vld1q_s8(p.add(32).cast()),
                            vld1q_s8(p.add(48).cast()),
                        ];
                        for (accj, wj) in acc.iter_mut().zip(&wv) {
                            for (s, ai) in accj.iter_mut().zip(&a) {
                                *s = dot4::<DOT, $e>(*s, *ai, *wj);
                            }
                        }
                    }
                }
            };
        }
        group!(0);
        group!(1);
        group!(2);
        group!(3);
    }
    for (j, accj) in acc.iter().enumerate() {
        let s_w = w_scales.get(j).map_or(0.0, |b| f32::from_le_bytes(*b));
        // SAFETY: register-only NEON intrinsic (NEON is baseline here).
        let s_w = unsafe { vdupq_n_f32(s_w) };
        for (i, s) in accj.iter().enumerate() {
            let lane = 16 * h + 4 * i;
            // SAFETY: lane + 4 <= TILE: s_x holds 4 floats there and row j < R of y has TILE
            // writable floats (caller contract).
            unsafe {
                let sx = vld1q_f32(s_x.as_ptr().add(lane));
                let v = vmulq_f32(vmulq_f32(vcvtq_f32_s32(*s), sx), s_w);
                vst1q_f32(y.add(j * TILE + lane), v);
            }
        }
    }
}

/// [`q8::tile_q8`] with [`row_block`]s (same contract and bits).
///
/// # Safety
/// With `DOT`, the CPU must have `SDOT` ([`cpu_has_dotprod`]).
#[inline(always)]
unsafe fn tile_impl<const DOT: bool>(
    w: &[u8],
    w_scales: &[u8],
    cols: usize,
    k_len: usize,
    q: &[u8],
    s_x: &[f32; TILE],
    y: &mut [f32],
) {
    if cols == 0 || k_len > cols || q.len() < tile_bytes(k_len) {
        return;
    }
    let rows = (w.len() / cols).min(w_scales.len() / 4).min(y.len() / TILE);
    let (scales, _) = w_scales.as_chunks::<4>();
    let (wp, qp, yp) = (w.as_ptr(), q.as_ptr(), y.as_mut_ptr());
    let mut n = 0;
    while n < rows {
        let r = 4.min(rows - n);
        let ws = scales.get(n..).unwrap_or(&[]);
        for h in 0..TILE / 16 {
            // SAFETY: rows n .. n + r <= rows lie inside w (cols bytes each, k_len <= cols),
            // w_scales and y (rows <= y.len() / TILE); q holds tile_bytes(k_len) bytes;
            // 16h + 16 <= TILE; `SDOT` is available with `DOT` (caller contract).
            unsafe {
                let (wn, yn) = (wp.add(n * cols), yp.add(n * TILE));
                match r {
                    4 => row_block::<4, DOT>(wn, cols, k_len, qp, h, ws, s_x, yn),
                    3 => row_block::<3, DOT>(wn, cols, k_len, qp, h, ws, s_x, yn),
                    2 => row_block::<2, DOT>(wn, cols, k_len, qp, h, ws, s_x, yn),
                    _ => row_block::<1, DOT>(wn, cols, k_len, qp, h, ws, s_x, yn),
                }
            }
        }
        n += r;
    }
}

/// `SDOT` [`q8::tile_q8`] (same contract and bits).
///
/// # Safety
/// The CPU must have `SDOT` ([`cpu_has_dotprod`]).
#[target_feature(enable = "dotprod")]
pub(super) unsafe fn tile_dotprod(
    w: &[u8],
    w_scales: &[u8],
    cols: usize,
    k_len: usize,
    q: &[u8],
    s_x: &[f32; TILE],
    y: &mut [f32],
) {
    // SAFETY: the CPU has SDOT (caller contract).
    unsafe { tile_impl::<true>(w, w_scales, cols, k_len, q, s_x, y) }
}

/// Plain NEON [`q8::tile_q8`] for CPUs without `SDOT` (same contract and bits).
pub(super) fn tile_neon(
    w: &[u8],
    w_scales: &[u8],
    cols: usize,
    k_len: usize,
    q: &[u8],
    s_x: &[f32; TILE],
    y: &mut [f32],
) {
    // SAFETY: without DOT the kernel uses baseline NEON only.
    unsafe { tile_impl::<false>(w, w_scales, cols, k_len, q, s_x, y) }
}

/// NEON [`q8::quantize_tile`] (same contract and bits: `fmaxnm` ignores NaN as the spec's
/// maximum does, NaN products are masked to 0, `fcvtns` rounds to nearest with ties to even
/// on values already clamped to ±127).
pub(super) fn quantize_tile_neon(
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
    const V: usize = TILE / 4;
    let xp = x.as_ptr();
    // SAFETY (every block below): NEON is baseline on this target; loads and stores stay
    // inside `x` (k < k_len: k·TILE + 4i + 4 <= n <= x.len()), `inv`/`m` (4i + 4 <= TILE) and
    // `q` ((g·TILE + 4i)·4 + 16 <= tile_bytes(k_len) <= q.len()), as checked above.
    // SAFETY: register-only NEON intrinsic.
    let mut m: [float32x4_t; V] = [unsafe { vdupq_n_f32(0.0) }; V];
    for k in 0..k_len {
        for (i, mi) in m.iter_mut().enumerate() {
            // SAFETY: see above.
            *mi = unsafe { vmaxnmq_f32(*mi, vabsq_f32(vld1q_f32(xp.add(k * TILE + 4 * i)))) };
        }
    }
    let mut inv = [0f32; TILE];
    for (i, mi) in m.iter().enumerate() {
        let mut lanes = [0f32; 4];
        // SAFETY: see above.
        unsafe { vst1q_f32(lanes.as_mut_ptr(), *mi) };
        for (j, &mv) in lanes.iter().enumerate() {
            let (s, iv) = q8::scales(mv);
            s_x[4 * i + j] = s;
            inv[4 * i + j] = iv;
        }
    }
    // Bytes `4j + r` (column j, lane r) to `4r + j`.
    const TRANSPOSE: [u8; 16] = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];
    // SAFETY: see above.
    let (lo, hi, idx) = unsafe {
        (
            vdupq_n_f32(-q8::Q_MAX),
            vdupq_n_f32(q8::Q_MAX),
            vld1q_u8(TRANSPOSE.as_ptr()),
        )
    };
    let qp = q.as_mut_ptr();
    for g in 0..k_len.div_ceil(4) {
        for i in 0..V {
            // SAFETY: see above.
            unsafe {
                let iv = vld1q_f32(inv.as_ptr().add(4 * i));
                let col = |j: usize| -> int32x4_t {
                    let k = 4 * g + j;
                    if k >= k_len {
                        return vdupq_n_s32(0);
                    }
                    let p = vmulq_f32(vld1q_f32(xp.add(k * TILE + 4 * i)), iv);
                    let p = vbslq_f32(vceqq_f32(p, p), p, vdupq_n_f32(0.0));
                    vcvtnq_s32_f32(vminq_f32(vmaxq_f32(p, lo), hi))
                };
                let c01 = vcombine_s16(vmovn_s32(col(0)), vmovn_s32(col(1)));
                let c23 = vcombine_s16(vmovn_s32(col(2)), vmovn_s32(col(3)));
                let b = vcombine_s8(vmovn_s16(c01), vmovn_s16(c23));
                vst1q_s8(qp.add((g * TILE + 4 * i) * 4).cast(), vqtbl1q_s8(b, idx));
            }
        }
    }
    true
}

/// [`q8::quantize_tile`] with NEON unless SIMD is switched off (the same bits).
pub fn quantize_tile(x: &[f32], k_len: usize, q: &mut [u8], s_x: &mut [f32; TILE]) -> bool {
    if super::simd_allowed() {
        quantize_tile_neon(x, k_len, q, s_x)
    } else {
        q8::quantize_tile(x, k_len, q, s_x)
    }
}

/// Whether the `SDOT` kernel may run: the CPU has it and [`super::super::set_kernels`] did not
/// cap the kernels at plain NEON.
pub(super) fn sdot_allowed() -> bool {
    cpu_has_dotprod() && super::super::limit() != super::super::LIMIT_NEON
}

/// [`q8::tile_q8`] with `SDOT` where the CPU has it, else plain NEON.
pub fn tile_q8(
    w: &[u8],
    w_scales: &[u8],
    cols: usize,
    k_len: usize,
    q: &[u8],
    s_x: &[f32; TILE],
    y: &mut [f32],
) {
    if !super::simd_allowed() {
        q8::tile_q8(w, w_scales, cols, k_len, q, s_x, y);
    } else if sdot_allowed() {
        // SAFETY: `SDOT` reported by the CPU (`sdot_allowed` checks `cpu_has_dotprod`).
        unsafe { tile_dotprod(w, w_scales, cols, k_len, q, s_x, y) }
    } else {
        tile_neon(w, w_scales, cols, k_len, q, s_x, y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_q8_quantize, check_q8_tile};

    #[test]
    fn sdot_int8_tile_is_bit_identical_to_the_spec() {
        if !cpu_has_dotprod() {
            std::eprintln!("SKIPPED sdot int8 tile: this CPU lacks FEAT_DotProd (SDOT)");
            return;
        }
        check_q8_tile("sdot int8 tile", &|w, s, c, k, q, x, y| {
            // SAFETY: the CPU has SDOT (checked above).
            unsafe { tile_dotprod(w, s, c, k, q, x, y) }
        });
    }

    #[test]
    fn neon_int8_tile_is_bit_identical_to_the_spec() {
        check_q8_tile("neon int8 tile", &tile_neon);
    }

    #[test]
    fn neon_quantisation_is_bit_identical_to_the_spec() {
        check_q8_quantize("neon quantisation", &quantize_tile_neon);
    }
}
