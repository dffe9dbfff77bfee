//! Integer-activation int8 tile kernels with `SMMLA` (the int8 matrix multiply-accumulate
//! extension, `FEAT_I8MM`: Cortex-A510/A710/X2, Neoverse V1/N2/V2, Apple M2 and later) and
//! `SDOT` (the Armv8.2 dot-product extension, `FEAT_DotProd`: Cortex-A75/A76/A78, Carmel,
//! Neoverse, Apple M1 and later), chosen at run time (`SMMLA` first), else plain NEON;
//! [`crate::kernels::q8`] is their specification and the integer sums are exact, so they give
//! the same bits.
//!
//! `SDOT` register block: 4 weight rows × 16 tile lanes (16 accumulators of 4 lanes). The
//! quantised tile holds four columns of one lane in four consecutive bytes, so one 16-byte load
//! gives four lanes × four columns, and `sdot acc.4s, a.16b, w.4b[e]` adds the four products of
//! each lane with the four weights `w[4g .. 4g + 4]` (element `e` of a 16-byte load of the
//! weight row) into its i32 lane: per 16 columns, one weight load per row and 16 activation
//! loads feed 64 `sdot` (1,024 multiply-adds).
//!
//! `SMMLA` register block: 8 weight rows × 8 tile lanes (16 accumulators, each a 2 × 2 block of
//! two rows × two lanes). `smmla acc.4s, w.16b, a.16b` multiplies two rows × eight columns by
//! two lanes × eight columns: 32 multiply-adds, twice `sdot`'s. The weights of a row pair come
//! from two 8-byte loads; the activations of two lanes × eight columns from `zip1`/`zip2` of
//! two groups of four columns of the tile's layout ([`mmla_step`]): per 16 columns, 32 `smmla`
//! (1,024 multiply-adds) in 63 instructions ([`mmla_loop_8x8`]).
//!
//! Detection: a build for a CPU with an extension (`-C target-feature=+dotprod`, `+i8mm`) uses
//! it unconditionally; otherwise, on Linux, `ID_AA64ISAR0_EL1.DP` and `ID_AA64ISAR1_EL1.I8MM`
//! are read once with `MRS` (the kernel traps EL0 reads of the ID registers and returns the
//! sanitised value, the `HWCAP_CPUID` ABI of Linux 4.11 and later; qemu-user does the same).
//! Elsewhere the plain NEON kernel runs.

use core::arch::aarch64::{
    float32x4_t, int8x16_t, int32x4_t, vabsq_f32, vaddq_u8, vbslq_f32, vceqq_f32, vcombine_s8,
    vcombine_s16, vcvtnq_s32_f32, vcvtq_f32_s32, vdupq_laneq_s32, vdupq_n_f32, vdupq_n_s8,
    vdupq_n_s32, vdupq_n_u8, vget_low_s8, vld1q_f32, vld1q_s8, vld1q_u8, vmaxnmq_f32, vmaxq_f32,
    vminq_f32, vmovn_s16, vmovn_s32, vmull_high_s8, vmull_s8, vmulq_f32, vmulq_n_f32, vpadalq_s16,
    vpaddq_s16, vqtbl1q_s8, vreinterpretq_s8_s32, vreinterpretq_s8_s64, vreinterpretq_s32_s8,
    vreinterpretq_s32_s64, vreinterpretq_s64_s8, vreinterpretq_s64_s32, vst1q_f32, vst1q_s8,
    vzip1q_s32, vzip1q_s64, vzip2q_s32, vzip2q_s64,
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
/// Bit of [`FEATURES`]: `SMMLA` usable.
const I8MM: u8 = 4;

/// Cached result of [`detect`]; 0 until the first query.
static FEATURES: AtomicU8 = AtomicU8::new(0);

/// Probes the CPU (see the module docs).
fn detect() -> u8 {
    let mut bits = DETECTED;
    if cfg!(target_feature = "dotprod") {
        bits |= DOTPROD;
    }
    if cfg!(target_feature = "i8mm") {
        bits |= I8MM;
    }
    #[cfg(target_os = "linux")]
    {
        let (isar0, isar1): (u64, u64);
        // SAFETY: Linux emulates EL0 reads of ID_AA64ISAR0_EL1 and ID_AA64ISAR1_EL1
        // (HWCAP_CPUID, see the module docs); the instructions only write the named registers.
        unsafe {
            asm!(
                "mrs {0}, ID_AA64ISAR0_EL1",
                "mrs {1}, ID_AA64ISAR1_EL1",
                out(reg) isar0,
                out(reg) isar1,
                options(nomem, nostack, preserves_flags),
            );
        }
        // ISAR0 bits 47:44, DP: 1 = SDOT and UDOT.
        if (isar0 >> 44) & 0xf >= 1 {
            bits |= DOTPROD;
        }
        // ISAR1 bits 55:52, I8MM: 1 = SMMLA, UMMLA, USMMLA, USDOT and SUDOT.
        if (isar1 >> 52) & 0xf >= 1 {
            bits |= I8MM;
        }
    }
    bits
}

/// [`FEATURES`], probing the CPU on the first call.
fn features() -> u8 {
    let mut bits = FEATURES.load(Ordering::Relaxed);
    if bits & DETECTED == 0 {
        bits = detect();
        FEATURES.store(bits, Ordering::Relaxed);
    }
    bits
}

/// Whether this CPU has `SDOT` (ignoring [`super::super::set_simd`]).
pub fn cpu_has_dotprod() -> bool {
    features() & DOTPROD != 0
}

/// Whether this CPU has `SMMLA` (ignoring [`super::super::set_simd`]).
pub fn cpu_has_i8mm() -> bool {
    features() & I8MM != 0
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

/// The weights `row[k0 .. k_len]`, zero-padded to 16 bytes (the last chunk of a row,
/// `k0 < k_len < k0 + 16`): the 16 bytes that end at `k_len`, their last `t = k_len − k0` moved
/// to the front by `tbl` (indices `i + 16 − t`; those of 16 and more, `i ≥ t`, read as zero).
/// A row shorter than 16 bytes is copied byte by byte.
///
/// # Safety
/// `row .. row + k_len` readable; `k0 < k_len < k0 + 16`.
#[inline(always)]
unsafe fn weights_tail(row: *const u8, k0: usize, k_len: usize) -> int8x16_t {
    const IOTA: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
    if k_len < 16 {
        // SAFETY: the caller's contract.
        return unsafe { weights_short(row, k0, k_len) };
    }
    let t = (k_len - k0) as u8;
    // SAFETY: k_len >= 16, so row + k_len − 16 .. row + k_len is readable (caller contract);
    // the rest are register-only NEON intrinsics (NEON is baseline here).
    unsafe {
        let idx = vaddq_u8(vld1q_u8(IOTA.as_ptr()), vdupq_n_u8(16u8.wrapping_sub(t)));
        vqtbl1q_s8(vld1q_s8(row.add(k_len - 16).cast()), idx)
    }
}

/// `row[k0 .. k_len]` (`k_len < 16`), zero-padded to 16 bytes.
///
/// # Safety
/// `row .. row + k_len` readable.
#[cold]
#[inline(never)]
unsafe fn weights_short(row: *const u8, k0: usize, k_len: usize) -> int8x16_t {
    let mut b = [0i8; 16];
    for (j, o) in (k0..k_len).zip(&mut b) {
        // SAFETY: j < k_len: readable (caller contract).
        *o = unsafe { *row.add(j) } as i8;
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
                    weights_tail(w.add(j * cols), 16 * c, k_len)
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
    let Some(rows) = q8::tile_rows(q8::SHAPE, (w, w_scales, cols), (k_len, q), y) else {
        return;
    };
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

/// `acc += [w₀·a₀, w₀·a₁, w₁·a₀, w₁·a₁]`: `smmla`, with `w` two weight rows and `a` two
/// activation lanes of eight int8 columns each (bytes 0–7 and 8–15), every dot product over the
/// eight columns summed into its i32 lane.
///
/// # Safety
/// The CPU must have `SMMLA` (the callers are `i8mm` functions).
#[inline(always)]
unsafe fn mmla(acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: register-only instruction, available per the caller contract.
    unsafe {
        asm!(
            "smmla {acc:v}.4s, {w:v}.16b, {a:v}.16b",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            a = in(vreg) a,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// Columns `k0 .. k0 + 8` (`k0` a multiple of 8) against lanes `l0 .. l0 + 2V` of the
/// quantised tile `q`: `acc[p][v] += smmla(w[p], a_v)` for the row pairs' weights `w[p]` (two
/// rows × eight columns) and the activation vectors `a_v` (lanes `l0 + 2v`, `l0 + 2v + 1` ×
/// eight columns). The tile holds four columns of a lane in four bytes, groups of four columns
/// `4·TILE` bytes apart: a 16-byte load of group `k0/4` gives lanes `l .. l + 4` × four
/// columns, the same load of the next group the next four, and `zip1`/`zip2` of their 32-bit
/// lanes give two lanes × eight columns. Without `second` the next group is read as zeros.
///
/// # Safety
/// The CPU has `SMMLA`; `k0 < k_len`, and `k0 + 4 < k_len` with `second`;
/// `q .. q + tile_bytes(k_len)` readable; `l0 + 2V <= TILE`; `V` even.
#[inline(always)]
unsafe fn mmla_step<const P: usize, const V: usize>(
    acc: &mut [[int32x4_t; V]; P],
    w: &[int8x16_t; P],
    k0: usize,
    second: bool,
    q: *const u8,
    l0: usize,
) {
    for u in 0..V / 2 {
        // SAFETY: group k0/4 exists (k0 < k_len) and the next one when `second`: their bytes
        // ((g·TILE + l0 + 4u)·4 .. + 16, l0 + 4u + 4 <= TILE) lie within tile_bytes(k_len);
        // `SMMLA` is available (caller contract).
        unsafe {
            let p = q.add((k0 / 4 * TILE + l0 + 4 * u) * 4);
            let g0 = vreinterpretq_s32_s8(vld1q_s8(p.cast()));
            let g1 = if second {
                vreinterpretq_s32_s8(vld1q_s8(p.add(4 * TILE).cast()))
            } else {
                vdupq_n_s32(0)
            };
            let a0 = vreinterpretq_s8_s32(vzip1q_s32(g0, g1));
            let a1 = vreinterpretq_s8_s32(vzip2q_s32(g0, g1));
            for (accp, wp) in acc.iter_mut().zip(w) {
                accp[2 * u] = mmla(accp[2 * u], *wp, a0);
                accp[2 * u + 1] = mmla(accp[2 * u + 1], *wp, a1);
            }
        }
    }
}

/// [`mmla_step`] on columns `k0 .. k0 + 16` of full rows (`k0 + 16 <= k_len`): a 16-byte
/// load per row, and `zip1`/`zip2` of a pair's 64-bit halves give its weights for the first and
/// the second eight columns.
///
/// # Safety
/// As [`mmla_step`], with `k0 + 16 <= k_len` and `pairs[p][i] .. + k_len` readable.
#[inline(always)]
unsafe fn mmla_cols16<const P: usize, const V: usize>(
    acc: &mut [[int32x4_t; V]; P],
    pairs: &[[*const u8; 2]; P],
    k0: usize,
    q: *const u8,
    l0: usize,
) {
    // SAFETY: NEON is baseline here.
    let (mut lo, mut hi) = ([unsafe { vdupq_n_s8(0) }; P], [unsafe { vdupq_n_s8(0) }; P]);
    for ((l, h), [a, b]) in lo.iter_mut().zip(&mut hi).zip(pairs) {
        // SAFETY: k0 + 16 <= k_len bytes of each row are readable (caller contract); the rest
        // are register-only NEON intrinsics.
        unsafe {
            let ra = vreinterpretq_s64_s8(vld1q_s8(a.add(k0).cast()));
            let rb = vreinterpretq_s64_s8(vld1q_s8(b.add(k0).cast()));
            *l = vreinterpretq_s8_s64(vzip1q_s64(ra, rb));
            *h = vreinterpretq_s8_s64(vzip2q_s64(ra, rb));
        }
    }
    // SAFETY: k0 + 16 <= k_len, so all four groups exist; the rest is the caller contract.
    unsafe {
        mmla_step(acc, &lo, k0, true, q, l0);
        mmla_step(acc, &hi, k0 + 8, true, q, l0);
    }
}

/// The hot loop of [`tile_i8mm`] for a full block of four row pairs × eight lanes, in assembly
/// (so that the 16 accumulators stay in registers: the compiler's version of the same loop
/// shuffles them between registers): `n >= 1` chunks of 16 columns, each two halves of eight
/// columns as [`mmla_step`] computes them, the weights of a pair from `ldr d` and
/// `ld1 {v.d}[1]`. 63 instructions per chunk: 32 `smmla` (1,024 multiply-adds), 16 weight and
/// 4 activation loads, 8 `zip`, 3 for the loop. `acc[4p + v]` is `acc[p][v]` of
/// [`mmla_step`].
///
/// # Safety
/// The CPU has `SMMLA`; `rows[i] .. + 16n` readable (rows `2p` and `2p + 1` are pair `p`); `q`
/// at group `g` and lane `l0` of the quantised tile (`(g·TILE + l0)·4` bytes in) with groups
/// `g .. g + 4n` and lanes `l0 .. l0 + 8` inside it.
#[inline(always)]
unsafe fn mmla_loop_8x8(acc: &mut [int32x4_t; 16], rows: [*const u8; 8], q: *const u8, n: usize) {
    const G: usize = 4 * TILE;
    const _: () = assert!(3 * G <= 1008, "ldp offsets");
    // Eight columns: activations of lanes (0, 1), (2, 3), (4, 5), (6, 7) in t, a0, a2, a1
    // from groups at byte offsets $g0 and $g1, then each pair's weights times the four.
    macro_rules! eight_columns {
        ($g0:literal, $g1:literal) => {
            concat!(
                "ldp {a0:q}, {a1:q}, [{q}, #",
                $g0,
                "]\n",
                "ldp {a2:q}, {a3:q}, [{q}, #",
                $g1,
                "]\n",
                "zip1 {t:v}.4s, {a0:v}.4s, {a2:v}.4s\n",
                "zip2 {a0:v}.4s, {a0:v}.4s, {a2:v}.4s\n",
                "zip1 {a2:v}.4s, {a1:v}.4s, {a3:v}.4s\n",
                "zip2 {a1:v}.4s, {a1:v}.4s, {a3:v}.4s\n",
                "ldr {w0:d}, [{r0}], #8\n",
                "ld1 {{{w0:v}.d}}[1], [{r1}], #8\n",
                "ldr {w1:d}, [{r2}], #8\n",
                "ld1 {{{w1:v}.d}}[1], [{r3}], #8\n",
                "smmla {c0:v}.4s, {w0:v}.16b, {t:v}.16b\n",
                "smmla {c1:v}.4s, {w0:v}.16b, {a0:v}.16b\n",
                "smmla {c2:v}.4s, {w0:v}.16b, {a2:v}.16b\n",
                "smmla {c3:v}.4s, {w0:v}.16b, {a1:v}.16b\n",
                "ldr {w0:d}, [{r4}], #8\n",
                "ld1 {{{w0:v}.d}}[1], [{r5}], #8\n",
                "smmla {c4:v}.4s, {w1:v}.16b, {t:v}.16b\n",
                "smmla {c5:v}.4s, {w1:v}.16b, {a0:v}.16b\n",
                "smmla {c6:v}.4s, {w1:v}.16b, {a2:v}.16b\n",
                "smmla {c7:v}.4s, {w1:v}.16b, {a1:v}.16b\n",
                "ldr {w1:d}, [{r6}], #8\n",
                "ld1 {{{w1:v}.d}}[1], [{r7}], #8\n",
                "smmla {c8:v}.4s, {w0:v}.16b, {t:v}.16b\n",
                "smmla {c9:v}.4s, {w0:v}.16b, {a0:v}.16b\n",
                "smmla {c10:v}.4s, {w0:v}.16b, {a2:v}.16b\n",
                "smmla {c11:v}.4s, {w0:v}.16b, {a1:v}.16b\n",
                "smmla {c12:v}.4s, {w1:v}.16b, {t:v}.16b\n",
                "smmla {c13:v}.4s, {w1:v}.16b, {a0:v}.16b\n",
                "smmla {c14:v}.4s, {w1:v}.16b, {a2:v}.16b\n",
                "smmla {c15:v}.4s, {w1:v}.16b, {a1:v}.16b\n",
            )
        };
    }
    let [
        c0,
        c1,
        c2,
        c3,
        c4,
        c5,
        c6,
        c7,
        c8,
        c9,
        c10,
        c11,
        c12,
        c13,
        c14,
        c15,
    ] = acc;
    // SAFETY: `n >= 1` chunks: the loads stay inside the rows (16n bytes each, eight per load)
    // and the tile (groups g .. g + 4n, 32 bytes from lane l0) per the caller contract; only
    // the named registers and flags are written; `SMMLA` is available (caller contract).
    unsafe {
        asm!(
            "2:",
            eight_columns!("0", "{g1}"),
            eight_columns!("{g2}", "{g3}"),
            "add {q}, {q}, #{g4}",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            c0 = inout(vreg) *c0, c1 = inout(vreg) *c1, c2 = inout(vreg) *c2,
            c3 = inout(vreg) *c3, c4 = inout(vreg) *c4, c5 = inout(vreg) *c5,
            c6 = inout(vreg) *c6, c7 = inout(vreg) *c7, c8 = inout(vreg) *c8,
            c9 = inout(vreg) *c9, c10 = inout(vreg) *c10, c11 = inout(vreg) *c11,
            c12 = inout(vreg) *c12, c13 = inout(vreg) *c13, c14 = inout(vreg) *c14,
            c15 = inout(vreg) *c15,
            t = out(vreg) _, a0 = out(vreg) _, a1 = out(vreg) _, a2 = out(vreg) _,
            a3 = out(vreg) _, w0 = out(vreg) _, w1 = out(vreg) _,
            r0 = inout(reg) rows[0] => _, r1 = inout(reg) rows[1] => _,
            r2 = inout(reg) rows[2] => _, r3 = inout(reg) rows[3] => _,
            r4 = inout(reg) rows[4] => _, r5 = inout(reg) rows[5] => _,
            r6 = inout(reg) rows[6] => _, r7 = inout(reg) rows[7] => _,
            q = inout(reg) q => _,
            n = inout(reg) n => _,
            g1 = const G, g2 = const 2 * G, g3 = const 3 * G, g4 = const 4 * G,
            options(nostack, readonly),
        );
    }
}

/// Rows `0 .. 2P` (`0 .. 2P − 1` when `ODD`) from `w` (`cols` bytes apart) over `k_len`
/// columns of the quantised tile `q`, lanes `l0 .. l0 + 2V`, rescaled into `y` (rows `TILE`
/// floats apart). With `ODD` the last pair multiplies its first row twice and stores one.
///
/// # Safety
/// The CPU has `SMMLA`; `w + j·cols .. + k_len` readable for each row `j`;
/// `q .. q + tile_bytes(k_len)` readable; `y .. y + rows·TILE` writable; `l0 + 2V <= TILE`;
/// `V` even; `s_w[j]` is row `j`'s scale.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn mmla_block<const P: usize, const ODD: bool, const V: usize>(
    w: *const u8,
    cols: usize,
    k_len: usize,
    q: *const u8,
    l0: usize,
    s_w: &[f32; 2 * MMLA_PAIRS],
    s_x: &[f32; TILE],
    y: *mut f32,
) {
    let rows = 2 * P - usize::from(ODD);
    let mut pairs = [[w; 2]; P];
    for (p, pair) in pairs.iter_mut().enumerate() {
        for (i, row) in pair.iter_mut().enumerate() {
            // SAFETY: min(2p + i, rows − 1) < rows lies inside w (caller contract).
            *row = unsafe { w.add((2 * p + i).min(rows - 1) * cols) };
        }
    }
    // SAFETY: register-only NEON intrinsic (NEON is baseline here).
    let mut acc = [[unsafe { vdupq_n_s32(0) }; V]; P];
    let mut k0 = 0;
    let chunks = k_len / 16;
    if let (Ok(acc16), Ok(rows8)) = (
        <&mut [int32x4_t; 16]>::try_from(acc.as_flattened_mut()),
        <[*const u8; 8]>::try_from(pairs.as_flattened()),
    ) && V == 4
        && chunks > 0
    {
        // SAFETY: four pairs of rows with k_len >= 16·chunks readable bytes, lanes
        // l0 .. l0 + 8 <= TILE, groups 0 .. 4·chunks <= ⌈k_len/4⌉ of the tile (caller contract).
        unsafe { mmla_loop_8x8(acc16, rows8, q.add(l0 * 4), chunks) };
        k0 = 16 * chunks;
    }
    while k0 + 16 <= k_len {
        // SAFETY: k0 + 16 <= k_len; the rest is the caller contract.
        unsafe { mmla_cols16(&mut acc, &pairs, k0, q, l0) };
        k0 += 16;
    }
    while k0 < k_len {
        // The last 1–15 columns, eight at a time: weights zero past k_len, a second group of
        // four only if it exists.
        // SAFETY: NEON is baseline here.
        let mut w = [unsafe { vdupq_n_s8(0) }; P];
        for (wp, [a, b]) in w.iter_mut().zip(&pairs) {
            // SAFETY: k0 < k_len < k0 + 16 and the rows hold k_len readable bytes; the rest
            // are register-only NEON intrinsics.
            *wp = unsafe {
                let (ta, tb) = (weights_tail(*a, k0, k_len), weights_tail(*b, k0, k_len));
                vreinterpretq_s8_s64(vzip1q_s64(
                    vreinterpretq_s64_s8(ta),
                    vreinterpretq_s64_s8(tb),
                ))
            };
        }
        // SAFETY: k0 < k_len; the rest is the caller contract.
        unsafe { mmla_step(&mut acc, &w, k0, k0 + 4 < k_len, q, l0) };
        k0 += 8;
    }
    // Row 2p + i, lanes l0 + 4u .. + 4: half i of the pair's 2 × 2 blocks with lanes
    // (l0 + 4u, + 1) and (l0 + 4u + 2, + 3).
    for (p, accp) in acc.iter().enumerate() {
        for i in 0..2 {
            let j = 2 * p + i;
            if j >= rows {
                break;
            }
            for u in 0..V / 2 {
                let lane = l0 + 4 * u;
                // SAFETY: register-only NEON intrinsics; lane + 4 <= TILE, so s_x holds four
                // floats there, and row j < rows of y has TILE writable floats (caller
                // contract).
                unsafe {
                    let (x0, x1) = (
                        vreinterpretq_s64_s32(accp[2 * u]),
                        vreinterpretq_s64_s32(accp[2 * u + 1]),
                    );
                    let s = if i == 0 {
                        vzip1q_s64(x0, x1)
                    } else {
                        vzip2q_s64(x0, x1)
                    };
                    let sx = vld1q_f32(s_x.as_ptr().add(lane));
                    let v = vmulq_f32(vcvtq_f32_s32(vreinterpretq_s32_s64(s)), sx);
                    vst1q_f32(y.add(j * TILE + lane), vmulq_n_f32(v, s_w[j]));
                }
            }
        }
    }
}

/// Row pairs per [`mmla_block`] of [`tile_i8mm`].
const MMLA_PAIRS: usize = 4;
/// Two-lane activation vectors per [`mmla_block`] of [`tile_i8mm`].
const MMLA_VECS: usize = 4;
const _: () = assert!(TILE.is_multiple_of(2 * MMLA_VECS) && MMLA_VECS.is_multiple_of(2));

/// `SMMLA` [`q8::tile_q8`] (same contract and bits): register blocks of `2·MMLA_PAIRS` weight
/// rows × `2·MMLA_VECS` lanes ([`mmla_block`]).
///
/// # Safety
/// The CPU must have `SMMLA` ([`cpu_has_i8mm`]).
#[target_feature(enable = "i8mm")]
pub(super) unsafe fn tile_i8mm(
    w: &[u8],
    w_scales: &[u8],
    cols: usize,
    k_len: usize,
    q: &[u8],
    s_x: &[f32; TILE],
    y: &mut [f32],
) {
    let Some(rows) = q8::tile_rows(q8::SHAPE, (w, w_scales, cols), (k_len, q), y) else {
        return;
    };
    let (scales, _) = w_scales.as_chunks::<4>();
    let (wp, qp, yp) = (w.as_ptr(), q.as_ptr(), y.as_mut_ptr());
    const L: usize = 2 * MMLA_VECS;
    let mut n = 0;
    while n < rows {
        let r = (2 * MMLA_PAIRS).min(rows - n);
        let mut s_w = [0f32; 2 * MMLA_PAIRS];
        for (s, b) in s_w.iter_mut().zip(scales.get(n..n + r).unwrap_or(&[])) {
            *s = f32::from_le_bytes(*b);
        }
        let ws = &s_w;
        for h in 0..TILE / L {
            // SAFETY: rows n .. n + r <= rows lie inside w (cols bytes each, k_len <= cols),
            // and y (rows <= y.len() / TILE), s_w holds their scales; q holds
            // tile_bytes(k_len) bytes;
            // L·h + L <= TILE; `SMMLA` is available (caller contract).
            unsafe {
                let (wn, yn, l0) = (wp.add(n * cols), yp.add(n * TILE), L * h);
                match r {
                    8 => mmla_block::<4, false, MMLA_VECS>(wn, cols, k_len, qp, l0, ws, s_x, yn),
                    7 => mmla_block::<4, true, MMLA_VECS>(wn, cols, k_len, qp, l0, ws, s_x, yn),
                    6 => mmla_block::<3, false, MMLA_VECS>(wn, cols, k_len, qp, l0, ws, s_x, yn),
                    5 => mmla_block::<3, true, MMLA_VECS>(wn, cols, k_len, qp, l0, ws, s_x, yn),
                    4 => mmla_block::<2, false, MMLA_VECS>(wn, cols, k_len, qp, l0, ws, s_x, yn),
                    3 => mmla_block::<2, true, MMLA_VECS>(wn, cols, k_len, qp, l0, ws, s_x, yn),
                    2 => mmla_block::<1, false, MMLA_VECS>(wn, cols, k_len, qp, l0, ws, s_x, yn),
                    _ => mmla_block::<1, true, MMLA_VECS>(wn, cols, k_len, qp, l0, ws, s_x, yn),
                }
            }
        }
        n += r;
    }
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

/// Whether the `SMMLA` kernel may run: the CPU has it and [`super::super::set_kernels`] did not
/// cap the kernels at `SDOT` or plain NEON.
pub(super) fn smmla_allowed() -> bool {
    let limit = super::super::limit();
    cpu_has_i8mm() && limit != super::super::LIMIT_NEON && limit != super::super::LIMIT_SDOT
}

/// [`q8::tile_q8`] with `SMMLA` where the CPU has it, else `SDOT`, else plain NEON.
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
    } else if smmla_allowed() {
        // SAFETY: `SMMLA` reported by the CPU (`smmla_allowed` checks `cpu_has_i8mm`).
        unsafe { tile_i8mm(w, w_scales, cols, k_len, q, s_x, y) }
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
    fn smmla_int8_tile_is_bit_identical_to_the_spec() {
        if !cpu_has_i8mm() {
            std::eprintln!("SKIPPED smmla int8 tile: this CPU lacks FEAT_I8MM (SMMLA)");
            return;
        }
        check_q8_tile("smmla int8 tile", &|w, s, c, k, q, x, y| {
            // SAFETY: the CPU has SMMLA (checked above).
            unsafe { tile_i8mm(w, s, c, k, q, x, y) }
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
