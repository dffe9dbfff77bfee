//! Tile products on Cortex-M with the DSP extension: the runtime multiplies [`TILE`] = 2
//! activation vectors at a time (two positions or two channels), so that every int8 weight
//! unpacked by `SXTB16` feeds two `SMLAD`s, one per vector.
//!
//! # int8 (the [`q8`] specification, bit for bit)
//! [`quantize_tile`] quantises each of the two vectors once per product by the [`q8`] rules,
//! straight into the 16-bit lanes `SMLAD` multiplies: per group of four columns `4g .. 4g+4`,
//! four little-endian words
//!
//! | word | low half | high half |
//! |---|---|---|
//! | 0 | `a₀[4g]` | `a₀[4g+2]` |
//! | 1 | `a₁[4g]` | `a₁[4g+2]` |
//! | 2 | `a₀[4g+1]` | `a₀[4g+3]` |
//! | 3 | `a₁[4g+1]` | `a₁[4g+3]` |
//!
//! (`a₀`, `a₁`: the two vectors), matching what `SXTB16 w` and `SXTB16 w, ROR #8` extract
//! from the four weights `q[4g .. 4g+4]` read as one word; the last group is padded with
//! zeros. Finite vectors take a short path: the largest magnitude is the largest of the
//! values' bit patterns with the sign cleared (the same value as [`q8::abs_max`]), and since
//! `|x·inv| ≤ 127·(1 + 2⁻²²) < 127.5` the rounding `x·inv + 1.5·2²³` leaves the quantised
//! value, ties to even, in the low 16 bits of the sum (no clamp, no NaN test, no conversion).
//! A vector holding a NaN or an infinity, or so small that `127 / m` overflows, takes
//! [`q8::quantize`] value by value (the same bits, slower).
//!
//! [`tile_q8`] multiplies two weight rows by the two vectors at a time (four i32 sums): per
//! group of four columns two weight loads, four `SXTB16`, two `LDRD` of activation words and
//! eight `SMLAD`, 16 instructions for 16 multiply-accumulates, sixteen groups per loop pass
//! (entered part-way, so any number of groups runs without a remainder loop). Where the
//! second row's padded last group still lies inside the weight matrix (every pair but the
//! last) the kernel runs over the padded groups, whose extra weight bytes meet zero
//! activations; the last pair handles the `k_len % 4` leftover columns one by one. An odd
//! last row is summed in portable code. [`tile_q8_pairs`] is the same computation in portable
//! Rust (tested against [`q8::matvec_q8`] on every host; the firmware's `selftest` checks the
//! `SMLAD` kernel on the target).
//!
//! # f32 and f16
//! [`tile_f32`] and [`tile_f16`] give every vector of the tile exactly what the dot kernels
//! ([`crate::kernels::generic::dot_f32`], [`super::dot_f16`]) give it alone: the same eight
//! accumulators, the same reduction ([`generic::reduce`]), the same f16 decoding, reading the
//! vector from its lane of the tile. A tile of 2 therefore changes no f32 or f16 result of the
//! firmware.
//!
//! # Target assumptions of the `SMLAD` kernel
//! Weights are read with unaligned word `LDR`s (rows start at any byte): ARMv7-M allows them
//! while `CCR.UNALIGN_TRP = 0`, the reset value, which the firmware keeps. The kernel names
//! `r9` as an operand, which `asm!` refuses where `r9` is reserved (the `ropi-rwpi`
//! relocation models use it as the static base): such builds are not supported.

#[cfg(trm_arm_dsp)]
use super::super::simd_allowed;
use super::lane16;
use crate::kernels::{TileShape, generic, q8};

/// Vectors per tile product on Cortex-M cores with the DSP extension.
pub const TILE: usize = 2;

/// Bytes of the quantised tile per group of four columns (two words per vector).
pub const GROUP_BYTES: usize = 8 * TILE;

/// Bytes of a quantised tile of `k_len` columns in this layout (`16·⌈k_len/4⌉`,
/// [`TileShape::tile_bytes`] of [`TileShape::CORTEX_M_DSP`]); `None` on overflow.
pub const fn tile_bytes(k_len: usize) -> Option<usize> {
    TileShape::CORTEX_M_DSP.tile_bytes(k_len)
}

/// [`lane16`] for a finite `v` with `|v·inv| < 127.5` (see the module docs): the low 16 bits
/// of `v·inv + 1.5·2²³`'s bit pattern are the rounded value.
#[inline(always)]
fn lane_fast(v: f32, inv: f32) -> u32 {
    (v * inv + q8::ROUND).to_bits() & 0xffff
}

/// Packs the quantised values of a group of four columns (`cols[j]` = column `4g + j`, both
/// vectors) into its four words.
#[inline(always)]
fn pack_group(
    cols: &[[f32; TILE]; 4],
    inv: &[f32; TILE],
    lane: impl Fn(f32, f32) -> u32,
) -> [u32; 4] {
    let t = |j: usize, r: usize| lane(cols[j][r], inv[r]);
    [
        t(0, 0) | (t(2, 0) << 16),
        t(0, 1) | (t(2, 1) << 16),
        t(1, 0) | (t(3, 0) << 16),
        t(1, 1) | (t(3, 1) << 16),
    ]
}

/// Quantises the transposed tile `x` `[k_len, TILE]` (`x[k·TILE + r]` = value `k` of vector
/// `r`) into `q` in this module's layout and the two scales into `s_x`: the values and scales
/// of [`q8::quantize_tile`]. Returns `false`, writing nothing, when `x` holds fewer than
/// `k_len·TILE` values or `q` fewer than [`tile_bytes`]`(k_len)` bytes.
pub fn quantize_tile(x: &[f32], k_len: usize, q: &mut [u8], s_x: &mut [f32; TILE]) -> bool {
    let (Some(x), Some(q)) = (
        k_len.checked_mul(TILE).and_then(|n| x.get(..n)),
        tile_bytes(k_len).and_then(|n| q.get_mut(..n)),
    ) else {
        return false;
    };
    let (cols, _) = x.as_chunks::<TILE>();
    // Largest |x| as bit patterns: the float order of finite non-negative values; a NaN or an
    // infinity shows as ≥ 0x7f80_0000.
    let mut top = [0u32; TILE];
    for c in cols {
        for (m, v) in top.iter_mut().zip(c) {
            let b = v.to_bits() & 0x7fff_ffff;
            if b > *m {
                *m = b;
            }
        }
    }
    let mut inv = [0f32; TILE];
    let mut fast = true;
    for (r, ((s, i), m)) in s_x.iter_mut().zip(&mut inv).zip(top).enumerate() {
        let m = if m < 0x7f80_0000 {
            f32::from_bits(m)
        } else {
            fast = false;
            cols.iter().fold(0f32, |m, c| {
                let a = c.get(r).map_or(0.0, |v| v.abs());
                if a > m { a } else { m }
            })
        };
        (*s, *i) = q8::scales(m);
        fast &= i.is_finite();
    }
    let (groups, tail) = cols.as_chunks::<4>();
    let (out, _) = q.as_chunks_mut::<GROUP_BYTES>();
    let mut last = [[0f32; TILE]; 4];
    for (l, c) in last.iter_mut().zip(tail) {
        *l = *c;
    }
    let write = |o: &mut [u8; GROUP_BYTES], words: [u32; 4]| {
        for (b, w) in o.as_chunks_mut::<4>().0.iter_mut().zip(words) {
            *b = w.to_le_bytes();
        }
    };
    let full = groups.iter().chain((!tail.is_empty()).then_some(&last));
    if fast {
        for (o, g) in out.iter_mut().zip(full) {
            write(o, pack_group(g, &inv, lane_fast));
        }
    } else {
        for (o, g) in out.iter_mut().zip(full) {
            write(o, pack_group(g, &inv, lane16));
        }
    }
    true
}

/// Quantised value of vector `lane`, column `c`, from a tile in this layout (0 outside it).
#[inline]
fn act(q: &[u8], lane: usize, c: usize) -> i32 {
    let (g, j) = (c / 4, c % 4);
    let at = g * GROUP_BYTES + (j % 2) * 8 + lane * 4 + (j / 2) * 2;
    q.get(at..at + 2)
        .map_or(0, |b| i32::from(i16::from_le_bytes([b[0], b[1]])))
}

/// The four sums of `out.len()` row pairs over groups `0..groups` in portable Rust, as `i32`
/// bit patterns in `out[p]` = `[row 0 · a₀, row 0 · a₁, row 1 · a₀, row 1 · a₁]` of pair `p`
/// (rows `2p`, `2p + 1`; `rows` starts at row 0, rows are `stride` bytes apart), wrapping like
/// `SMLAD`. Stops at the first pair whose bytes `rows` does not hold.
fn pairs_portable(rows: &[u8], stride: usize, q: &[u8], groups: usize, out: &mut [[f32; 4]]) {
    let (qg, _) = q.as_chunks::<GROUP_BYTES>();
    let qg = qg.get(..groups).unwrap_or(qg);
    let half = |b: &[u8; GROUP_BYTES], at: usize| i32::from(i16::from_le_bytes([b[at], b[at + 1]]));
    for (p, o) in out.iter_mut().enumerate() {
        let mut acc = [0i32; 4];
        for (r, a) in acc.chunks_exact_mut(TILE).enumerate() {
            let row = (2 * p + r).checked_mul(stride).and_then(|start| {
                let end = start.checked_add(groups.checked_mul(4)?)?;
                rows.get(start..end)
            });
            let Some(row) = row else {
                return;
            };
            for (w, x) in row.as_chunks::<4>().0.iter().zip(qg) {
                let w = w.map(|v| i32::from(v as i8));
                for (lane, a) in a.iter_mut().enumerate() {
                    let at = 4 * lane;
                    let s0 = w[0] * half(x, at) + w[2] * half(x, at + 2);
                    let s1 = w[1] * half(x, at + 8) + w[3] * half(x, at + 10);
                    *a = a.wrapping_add(s0).wrapping_add(s1);
                }
            }
        }
        *o = acc.map(|a| f32::from_bits(a as u32));
    }
}

/// `o[j] ← rescale(bits of o[j] as i32, s_x[j % 2], s_w[j / 2])` for the four sums of a pair,
/// `s` its two rows' scale bytes (iterated with the sums: no index to check per pair).
#[inline(always)]
fn rescale_pair(o: &mut [f32; 4], s_x: &[f32; TILE], s: &[[u8; 4]; 2]) {
    let s_w = s.map(f32::from_le_bytes);
    for (j, v) in o.iter_mut().enumerate() {
        *v = q8::rescale(v.to_bits() as i32, s_x[j % TILE], s_w[j / TILE]);
    }
}

/// The tile product on this layout, the row-pair sums by `pairs` (the contract of
/// [`pairs_portable`], called with `groups ≥ 1` whole groups of pairs that lie inside `rows`
/// and `q`).
#[inline(always)]
fn drive(
    w: &[u8],
    w_scales: &[u8],
    cols: usize,
    (k_len, q, s_x): (usize, &[u8], &[f32; TILE]),
    y: &mut [f32],
    pairs: impl Fn(&[u8], usize, &[u8], usize, &mut [[f32; 4]]),
) {
    let shape = TileShape::CORTEX_M_DSP;
    let Some(rows) = q8::tile_rows(shape, (w, w_scales, cols), (k_len, q), y) else {
        return;
    };
    let (scales, _) = w_scales.as_chunks::<4>();
    let (scales, _) = scales.as_chunks::<2>();
    let (ys, _) = y.as_chunks_mut::<{ 2 * TILE }>();
    let n_pairs = rows / 2;
    // Pairs whose second row's padded last group stays inside `w` run over the padded groups
    // (the extra bytes meet zero activations): pair `p` reads up to
    // `(2p + 1)·cols + 4·padded` (`4·padded` ≤ `tile_bytes(k_len)`, no overflow).
    let padded = k_len.div_ceil(4);
    let inside = cols
        .checked_add(4 * padded)
        .and_then(|end| w.len().checked_sub(end))
        .map_or(0, |room| room / cols / 2 + 1)
        .min(n_pairs);
    let (ys_in, ys_rest) = ys.split_at_mut(inside.min(ys.len()));
    if padded == 0 {
        // No columns: every sum is 0 (`pairs` needs at least one group).
        ys_in.fill([0.0; 4]);
    } else if !ys_in.is_empty() {
        pairs(w, cols, q, padded, ys_in);
    }
    for (o, s) in ys_in.iter_mut().zip(scales) {
        rescale_pair(o, s_x, s);
    }
    // The pairs left (the last one, when the padding would leave `w`): whole groups, then the
    // leftover columns one by one. Row offsets stay below `rows·cols ≤ w.len()`.
    let whole = k_len / 4;
    for (p, (o, s)) in ys_rest
        .iter_mut()
        .zip(scales.get(inside..).unwrap_or(&[]))
        .enumerate()
        .map(|(p, os)| (inside + p, os))
        .take(n_pairs - inside)
    {
        let Some(pair_rows) = w.get(2 * p * cols..) else {
            return;
        };
        *o = [0.0; 4];
        if whole > 0 {
            pairs(pair_rows, cols, q, whole, core::slice::from_mut(o));
        }
        for c in 4 * whole..k_len {
            for (r, a) in o.chunks_exact_mut(TILE).enumerate() {
                let wv = pair_rows
                    .get(r * cols + c)
                    .map_or(0, |&b| i32::from(b as i8));
                for (lane, a) in a.iter_mut().enumerate() {
                    let v = (a.to_bits() as i32).wrapping_add(wv * act(q, lane, c));
                    *a = f32::from_bits(v as u32);
                }
            }
        }
        rescale_pair(o, s_x, s);
    }
    if rows % 2 == 1 {
        let n = rows - 1;
        let (Some(row), Some(out)) = (
            w.get(n * cols..n * cols + k_len),
            y.get_mut(n * TILE..n * TILE + TILE),
        ) else {
            return;
        };
        let s_w = q8::row_scale(w_scales, n);
        for (lane, o) in out.iter_mut().enumerate() {
            let acc = row.iter().enumerate().fold(0i32, |a, (c, &wv)| {
                a.wrapping_add(i32::from(wv as i8) * act(q, lane, c))
            });
            *o = q8::rescale(acc, s_x[lane], s_w);
        }
    }
}

/// [`q8::tile_q8`]'s contract on this module's layout (`q` as [`quantize_tile`] writes it;
/// `y[n·TILE + r]` for row `n`, vector `r`), in portable Rust: the model of the `SMLAD`
/// kernel, the same bits.
pub fn tile_q8_pairs(
    w: &[u8],
    w_scales: &[u8],
    cols: usize,
    k_len: usize,
    q: &[u8],
    s_x: &[f32; TILE],
    y: &mut [f32],
) {
    drive(w, w_scales, cols, (k_len, q, s_x), y, pairs_portable);
}

#[cfg(trm_arm_dsp)]
mod dsp {
    use super::GROUP_BYTES;
    use core::arch::asm;

    /// One group of four columns: two weight words (row 0 post-incremented, row 1 at
    /// `stride`), two `LDRD`s of activation words, four `SXTB16`, eight `SMLAD`; every
    /// instruction a 32-bit encoding, so that a group is exactly 64 bytes of code (the entry
    /// jump counts on it).
    macro_rules! group {
        () => {
            concat!(
                "ldr.w r10, [r0, r1]\n",
                "ldr r9, [r0], #4\n",
                "ldrd r12, lr, [r2], #8\n",
                "sxtb16 r11, r9\n",
                "smlad r3, r11, r12, r3\n",
                "smlad r4, r11, lr, r4\n",
                "sxtb16 r11, r10\n",
                "smlad r5, r11, r12, r5\n",
                "smlad r8, r11, lr, r8\n",
                "ldrd r12, lr, [r2], #8\n",
                "sxtb16 r9, r9, ror #8\n",
                "smlad r3, r9, r12, r3\n",
                "smlad r4, r9, lr, r4\n",
                "sxtb16 r10, r10, ror #8\n",
                "smlad r5, r10, r12, r5\n",
                "smlad r8, r10, lr, r8\n",
            )
        };
    }

    /// The sums of `pairs` row pairs over groups `0..groups` with `SMLAD`, written to `out` as
    /// four `i32` per pair (see `super::pairs_portable`).
    ///
    /// # Safety
    /// `groups ≥ 1`, `pairs ≥ 1`; `rows` must point to `(2·pairs − 1)·stride + 4·groups`
    /// readable bytes; `q` to `GROUP_BYTES·groups` readable bytes and `out` to `16·pairs`
    /// writable bytes, both 4-byte aligned (`LDRD`, `STM`); `out`'s bytes must not overlap
    /// `rows`' or `q`'s (the block stores sums while it still reads both). Unaligned weight
    /// loads need `CCR.UNALIGN_TRP = 0` (see the module docs).
    #[inline(always)]
    pub(super) unsafe fn pairs(
        rows: *const u8,
        stride: usize,
        q: *const u8,
        groups: usize,
        pairs: usize,
        out: *mut f32,
    ) {
        const _: () = assert!(GROUP_BYTES == 16);
        // SAFETY: the caller guarantees the bytes: pair `p` reads row `2p` at
        // `rows + 2p·stride .. + 4·groups` and row `2p + 1` `stride` bytes further, `q .. q +
        // 16·groups` (word-aligned for `LDRD`), and writes `out + 16p .. + 16` (word-aligned
        // for `STM`); unaligned `LDR` of weights is allowed on ARMv7E-M. The block keeps its
        // loop state in 24 bytes it reserves below the stack pointer (8-byte alignment kept)
        // and releases: the row-0 end of the current pair, the output pointer, the pairs left,
        // the entry address, the start of `q` and the step from a row-0 end to the next
        // pair's row 0. Each pair runs its groups in passes of sixteen, the first pass entered
        // `((−groups) mod 16)·64` bytes into the body (one group = 64 bytes of 32-bit
        // instructions). Every register it changes is an operand; the flags are not preserved
        // (no `preserves_flags`).
        unsafe {
            asm!(
                "sub sp, sp, #24",
                "str r12, [sp, #4]",
                "str r11, [sp, #8]",
                "str r2, [sp, #16]",
                "lsl r9, r10, #2",
                "rsb r11, r9, r1, lsl #1",
                "str r11, [sp, #20]",
                "add r9, r0, r9",
                "str r9, [sp]",
                "rsb r10, r10, #0",
                "and r10, r10, #15",
                "adr.w r9, 3f",
                "add r9, r9, r10, lsl #6",
                "orr r9, r9, #1",
                "str r9, [sp, #12]",
                "4:",
                "mov r3, #0",
                "mov r4, #0",
                "mov r5, #0",
                "mov r8, #0",
                "ldr r9, [sp, #12]",
                "bx r9",
                ".p2align 2",
                "3:",
                group!(),
                group!(),
                group!(),
                group!(),
                group!(),
                group!(),
                group!(),
                group!(),
                group!(),
                group!(),
                group!(),
                group!(),
                group!(),
                group!(),
                group!(),
                group!(),
                "ldr r9, [sp]",
                "cmp r0, r9",
                "bne 3b",
                "ldr r9, [sp, #4]",
                "stm r9!, {{r3, r4, r5, r8}}",
                "str r9, [sp, #4]",
                "ldr r9, [sp, #8]",
                "subs r9, r9, #1",
                "beq 5f",
                "str r9, [sp, #8]",
                "ldr r9, [sp, #20]",
                "add r0, r0, r9",
                "ldr r9, [sp]",
                "add r9, r9, r1, lsl #1",
                "str r9, [sp]",
                "ldr r2, [sp, #16]",
                "b 4b",
                "5:",
                "add sp, sp, #24",
                inout("r0") rows => _,
                in("r1") stride,
                inout("r2") q => _,
                out("r3") _,
                out("r4") _,
                out("r5") _,
                out("r8") _,
                out("r9") _,
                inout("r10") groups => _,
                inout("r11") pairs => _,
                inout("r12") out => _,
                out("lr") _,
            );
        }
    }
}

/// The row-pair sums with the `SMLAD` kernel (the contract of [`pairs_portable`]); the
/// portable sums where its preconditions do not hold (never in the runtime: its buffers are
/// word-aligned and `drive` passes pairs inside `w`). Inlined, so the 1 KiB `asm!` body is in
/// the image at both of `drive`'s calls: out of line, the call and its register saves cost
/// 0.065% more instructions per step at hidden 64 (`firmware/bench.sh`).
#[cfg(trm_arm_dsp)]
#[inline(always)]
fn pairs_dsp(rows: &[u8], stride: usize, q: &[u8], groups: usize, out: &mut [[f32; 4]]) {
    let n = out.len();
    let inside = groups >= 1
        && n >= 1
        && (2 * n - 1)
            .checked_mul(stride)
            .zip(groups.checked_mul(4))
            .and_then(|(a, b)| a.checked_add(b))
            .is_some_and(|b| b <= rows.len())
        && groups
            .checked_mul(GROUP_BYTES)
            .is_some_and(|b| b <= q.len())
        && q.as_ptr().align_offset(4) == 0;
    if inside {
        // SAFETY: checked just above: `groups ≥ 1`, `n ≥ 1` pairs, `(2n − 1)·stride +
        // 4·groups ≤ rows.len()`, `16·groups ≤ q.len()`, `q` word-aligned; `out` holds `n`
        // arrays of four f32 (16 bytes each, word-aligned) and, borrowed mutably while `rows`
        // and `q` are borrowed shared, overlaps neither. `CCR.UNALIGN_TRP` is 0 (module docs).
        unsafe {
            dsp::pairs(
                rows.as_ptr(),
                stride,
                q.as_ptr(),
                groups,
                n,
                out.as_mut_ptr().cast(),
            )
        }
    } else {
        pairs_portable(rows, stride, q, groups, out);
    }
}

/// [`q8::tile_q8`]'s contract on this module's layout with the `SMLAD` kernel, or the portable
/// [`tile_q8_pairs`] after [`super::super::set_simd`]`(false)` (the same bits either way).
#[cfg(trm_arm_dsp)]
pub fn tile_q8(
    w: &[u8],
    w_scales: &[u8],
    cols: usize,
    k_len: usize,
    q: &[u8],
    s_x: &[f32; TILE],
    y: &mut [f32],
) {
    if simd_allowed() {
        drive(w, w_scales, cols, (k_len, q, s_x), y, pairs_dsp);
    } else {
        drive(w, w_scales, cols, (k_len, q, s_x), y, pairs_portable);
    }
}

/// `Σ_k w[k]·x[k·TILE + LANE]` with the arithmetic of [`crate::kernels::generic::dot_f32`]
/// (eight accumulators, [`generic::reduce`], then the tail), `decode` turning `SIZE` weight
/// bytes into f32 (exactly), over `min(w.len() / SIZE, x.len() / TILE)` terms.
#[inline(always)]
fn lane_dot<const SIZE: usize, const LANE: usize>(
    w: &[u8],
    x: &[f32],
    decode: impl Fn(&[[u8; SIZE]; generic::LANES]) -> [f32; generic::LANES],
    decode_one: impl Fn([u8; SIZE]) -> f32,
) -> f32 {
    const LANES: usize = generic::LANES;
    let (ws, _) = w.as_chunks::<SIZE>();
    let (xs, _) = x.as_chunks::<TILE>();
    let n = ws.len().min(xs.len());
    let (ws, xs) = (ws.get(..n).unwrap_or(&[]), xs.get(..n).unwrap_or(&[]));
    let (wb, wt) = ws.as_chunks::<LANES>();
    let (xb, xt) = xs.as_chunks::<LANES>();
    let pick = |v: &[f32; TILE]| if LANE == 0 { v[0] } else { v[TILE - 1] };
    let mut acc = [0f32; LANES];
    for (wc, xc) in wb.iter().zip(xb) {
        let wf = decode(wc);
        for ((a, wv), xv) in acc.iter_mut().zip(wf).zip(xc) {
            *a += wv * pick(xv);
        }
    }
    let tail: f32 = wt
        .iter()
        .zip(xt)
        .map(|(wv, xv)| decode_one(*wv) * pick(xv))
        .sum();
    generic::reduce(acc) + tail
}

/// The tile product of one weight encoding: `y[n·TILE + r]` = the dot kernel's value for row
/// `n` and vector `r`.
#[inline(always)]
fn tile_by_lanes<const SIZE: usize>(
    w: &[u8],
    cols: usize,
    x: &[f32],
    y: &mut [f32],
    dot0: impl Fn(&[u8], &[f32]) -> f32,
    dot1: impl Fn(&[u8], &[f32]) -> f32,
) {
    let Some(row_bytes) = cols.checked_mul(SIZE).filter(|&b| b > 0) else {
        return;
    };
    let x = x.get(..cols.saturating_mul(TILE)).unwrap_or(x);
    let (ys, _) = y.as_chunks_mut::<TILE>();
    for (row, out) in w.chunks_exact(row_bytes).zip(ys) {
        out[0] = dot0(row, x);
        out[TILE - 1] = dot1(row, x);
    }
}

/// Tile product for f32 weights (`4·cols` bytes per row) and a transposed tile `x`
/// `[cols, TILE]`: `y[n·TILE + r]` is exactly [`crate::kernels::generic::dot_f32`] of row `n`
/// and vector `r` (what a matrix-vector product gives that vector). Shorter buffers truncate.
pub fn tile_f32(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    fn decode(b: &[[u8; 4]; generic::LANES]) -> [f32; generic::LANES] {
        b.map(f32::from_le_bytes)
    }
    tile_by_lanes::<4>(
        w,
        cols,
        x,
        y,
        |r, x| lane_dot::<4, 0>(r, x, decode, f32::from_le_bytes),
        |r, x| lane_dot::<4, 1>(r, x, decode, f32::from_le_bytes),
    );
}

/// Eight binary16 values → f32 (exactly), by bit manipulation.
#[inline(always)]
fn f16x8_soft(b: &[[u8; 2]; generic::LANES]) -> [f32; generic::LANES] {
    b.map(f16x1_soft)
}

/// One binary16 value → f32 (exactly), by bit manipulation.
#[inline(always)]
fn f16x1_soft(b: [u8; 2]) -> f32 {
    crate::kernels::f16::f16_to_f32(u16::from_le_bytes(b))
}

/// [`tile_f32`] for binary16 weights (`2·cols` bytes per row): each vector gets exactly the
/// value of the f16 dot kernel (on hard-float targets the FPU's `VCVTB`/`VCVTT` unless SIMD is
/// switched off; the conversion is exact either way, so the bits are
/// [`crate::kernels::generic::dot_f16`]'s).
pub fn tile_f16(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    #[cfg(trm_arm_fp16)]
    if simd_allowed() {
        tile_by_lanes::<2>(
            w,
            cols,
            x,
            y,
            |r, x| lane_dot::<2, 0>(r, x, super::f16x8_hw, super::f16x1_hw),
            |r, x| lane_dot::<2, 1>(r, x, super::f16x8_hw, super::f16x1_hw),
        );
        return;
    }
    tile_by_lanes::<2>(
        w,
        cols,
        x,
        y,
        |r, x| lane_dot::<2, 0>(r, x, f16x8_soft, f16x1_soft),
        |r, x| lane_dot::<2, 1>(r, x, f16x8_soft, f16x1_soft),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::generic;
    use crate::kernels::testing::{q8_activations, uniform};
    use proptest::prelude::*;
    use std::vec::Vec;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|v| v.to_bits()).collect()
    }

    /// Column `r` of a transposed tile.
    fn column(x: &[f32], r: usize) -> Vec<f32> {
        x.chunks_exact(TILE).map(|c| c[r]).collect()
    }

    /// What `y` holds before a product: negative values and NaNs (a sum left unwritten shows
    /// as a wrong value, or as −0 where the scale is 0).
    fn stale(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| match i % 3 {
                0 => -7.0,
                1 => -f32::NAN,
                _ => f32::from_bits(0xffff_0001),
            })
            .collect()
    }

    /// The tile product on this layout against one [`q8::matvec_q8`] per vector, bit for bit.
    fn check_tile(w: &[u8], scales: &[u8], cols: usize, x: &[f32], y_len: usize) {
        let k_len = x.len() / TILE;
        let mut q = std::vec![0xa5u8; tile_bytes(k_len).unwrap() + 5];
        let mut s_x = [9f32; TILE];
        assert!(quantize_tile(x, k_len, &mut q, &mut s_x));
        let mut y = stale(y_len);
        tile_q8_pairs(w, scales, cols, k_len, &q, &s_x, &mut y);
        let rows = (w.len() / cols).min(scales.len() / 4).min(y_len / TILE);
        for r in 0..TILE {
            let mut want = std::vec![0f32; rows];
            let xr = column(x, r);
            let row_bytes: Vec<u8> = w
                .chunks_exact(cols)
                .take(rows)
                .flat_map(|row| row[..k_len].iter().copied())
                .collect();
            q8::matvec_q8(&row_bytes, scales, k_len.max(1), &xr, &mut want);
            if k_len == 0 {
                want.fill(0.0);
            }
            let got: Vec<f32> = y.chunks_exact(TILE).take(rows).map(|c| c[r]).collect();
            assert_eq!(
                bits(&got),
                bits(&want),
                "rows {rows} cols {cols} k_len {k_len} lane {r}"
            );
        }
        // Nothing written past the rows.
        assert_eq!(bits(&y[rows * TILE..]), bits(&stale(y_len)[rows * TILE..]));
    }

    /// No columns (`k_len = 0`, what `Matrix::matmul_tile` passes for an `x` shorter than one
    /// tile row): every output is `rescale(0, s_x, s_w)` = +0, whatever `y` held and whatever
    /// the vectors' scales, as [`q8::tile_q8`] writes.
    #[test]
    fn no_columns_give_zero_sums() {
        for (rows, cols) in [(1, 1), (2, 1), (2, 4), (3, 5), (6, 8), (7, 13)] {
            let w = std::vec![0x55u8; rows * cols];
            let scales: Vec<u8> = (0..rows)
                .flat_map(|r| (0.5 + r as f32).to_le_bytes())
                .collect();
            for s_x in [[0f32; TILE], [0.25, 3.0]] {
                let mut y = stale(rows * TILE);
                tile_q8_pairs(&w, &scales, cols, 0, &[], &s_x, &mut y);
                assert_eq!(
                    bits(&y),
                    std::vec![0; rows * TILE],
                    "rows {rows} cols {cols}"
                );
            }
        }
    }

    /// Sizes whose byte counts overflow `usize` are refused (nothing written, `false`), never
    /// an arithmetic overflow.
    #[test]
    fn overflowing_sizes_write_nothing() {
        let (w, scales) = ([1u8; 16], [0u8; 16]);
        let x = [1f32; 8];
        let mut q = [0u8; 64];
        let mut s_x = [5f32; TILE];
        for k_len in [
            usize::MAX,
            usize::MAX - 3,
            usize::MAX / 2,
            usize::MAX / 16 + 1,
        ] {
            assert!(!quantize_tile(&x, k_len, &mut q, &mut s_x));
            assert_eq!(s_x, [5.0; TILE]);
            for cols in [4, k_len, usize::MAX] {
                let mut y = stale(8);
                tile_q8_pairs(&w, &scales, cols, k_len, &q, &s_x, &mut y);
                assert_eq!(bits(&y), bits(&stale(8)), "cols {cols} k_len {k_len}");
            }
        }
        // Huge `cols` with a small `k_len`: no row fits, nothing written.
        let mut y = stale(8);
        tile_q8_pairs(&w, &scales, usize::MAX, 3, &q, &s_x, &mut y);
        assert_eq!(bits(&y), bits(&stale(8)));
        assert_eq!(tile_bytes(usize::MAX), None);
    }

    /// The portable quantiser against the specification: values (unpacked from the layout)
    /// and scales, for every column count up to 40, long vectors with NaN, infinities and
    /// outliers (the exact path), and tiny vectors whose `127 / m` overflows.
    #[test]
    fn quantize_tile_is_the_specification() {
        let mut next = uniform(17);
        for k_len in (0..41).chain([82, 97, 127, 128, 129, 513, 600]) {
            for case in 0..3 {
                let mut x = match case {
                    0 => (0..k_len * TILE).map(|_| next() * 5.0).collect(),
                    1 => q8_activations(&mut next, k_len * TILE),
                    _ => (0..k_len * TILE)
                        .map(|_| next() * 1e-38)
                        .collect::<Vec<f32>>(),
                };
                if case == 0 && k_len > 3 {
                    // Exact ties after scaling: the largest value 127, others at halves.
                    x[0] = 127.0;
                    x[2] = 2.5;
                    x[4] = -0.5;
                    x[6] = 126.5;
                }
                let mut q = std::vec![0xa5u8; tile_bytes(k_len).unwrap()];
                let mut s_x = [0f32; TILE];
                assert!(quantize_tile(&x, k_len, &mut q, &mut s_x));
                for (r, s_r) in s_x.iter().enumerate() {
                    let xr = column(&x, r);
                    let mut a = std::vec![0i8; k_len];
                    let s = q8::quantize_vec(&xr, &mut a);
                    assert_eq!(s_r.to_bits(), s.to_bits(), "k_len {k_len} case {case}");
                    let got: Vec<i32> = (0..k_len).map(|c| act(&q, r, c)).collect();
                    let want: Vec<i32> = a.iter().map(|&v| i32::from(v)).collect();
                    assert_eq!(got, want, "k_len {k_len} case {case} lane {r}");
                    // Padding columns are zero.
                    for c in k_len..k_len.div_ceil(4) * 4 {
                        assert_eq!(act(&q, r, c), 0);
                    }
                }
                if k_len > 0 {
                    let mut short = std::vec![3u8; tile_bytes(k_len).unwrap() - 1];
                    assert!(!quantize_tile(&x, k_len, &mut short, &mut s_x));
                    assert!(short.iter().all(|&b| b == 3));
                    assert!(!quantize_tile(&x[..x.len() - 1], k_len, &mut q, &mut s_x));
                }
            }
        }
    }

    /// Odd row counts (the last row alone), every column count modulo 4 (the padded groups of
    /// inner pairs, the leftover columns of the last pair), weights −128 and 127, NaN and
    /// outlier activations, a lane of zeros, short `y` and scales.
    #[test]
    fn tile_pairs_match_the_specification_on_awkward_shapes() {
        let mut next = uniform(23);
        for rows in 0..7 {
            for cols in (1..14).chain([81, 82, 97, 128, 130]) {
                let mut w: Vec<u8> = (0..rows * cols)
                    .map(|i| match i % 11 {
                        3 => 0x80,
                        7 => 0x7f,
                        _ => (next() * 128.0) as i8 as u8,
                    })
                    .collect();
                if let Some(v) = w.last_mut() {
                    *v = 0x80;
                }
                let scales: Vec<u8> = (0..rows)
                    .flat_map(|r| (0.01 * (r + 1) as f32).to_le_bytes())
                    .collect();
                let mut x = q8_activations(&mut next, cols * TILE);
                check_tile(&w, &scales, cols, &x, rows * TILE);
                check_tile(&w, &scales, cols, &x, rows * TILE + 1);
                check_tile(&w, &scales, cols, &x, (rows * TILE).saturating_sub(1));
                check_tile(
                    &w,
                    &scales[..scales.len().saturating_sub(4)],
                    cols,
                    &x,
                    rows * TILE,
                );
                // Fewer quantised columns than the weights have.
                let k_short = cols.saturating_sub(1 + cols % 3);
                check_tile(&w, &scales, cols, &x[..k_short * TILE], rows * TILE);
                // One vector all zeros (a half-empty tile).
                for c in x.chunks_exact_mut(TILE) {
                    c[1] = 0.0;
                }
                check_tile(&w, &scales, cols, &x, rows * TILE);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn tile_pairs_match_the_specification(
            rows in 1usize..9,
            cols in 1usize..300,
            seed in any::<u64>(),
            scale in 1e-3f32..1e3,
        ) {
            let mut next = uniform(seed);
            let w: Vec<u8> = (0..rows * cols).map(|_| (next() * 128.0) as i8 as u8).collect();
            let scales: Vec<u8> = (0..rows).flat_map(|r| (0.02 * (r + 1) as f32).to_le_bytes()).collect();
            let x: Vec<f32> = (0..cols * TILE).map(|_| next() * scale).collect();
            check_tile(&w, &scales, cols, &x, rows * TILE);
        }

        /// f32 and f16 tile products give each vector exactly the dot kernels' value.
        #[test]
        fn float_tiles_equal_the_dot_kernels(
            rows in 1usize..6,
            cols in 1usize..70,
            seed in any::<u64>(),
        ) {
            let mut next = uniform(seed);
            let wv: Vec<f32> = (0..rows * cols).map(|_| next()).collect();
            let x: Vec<f32> = (0..cols * TILE).map(|_| next() * 3.0).collect();
            let wf: Vec<u8> = wv.iter().flat_map(|v| v.to_le_bytes()).collect();
            let wh: Vec<u8> = wv
                .iter()
                .flat_map(|v| crate::kernels::f16::f32_to_f16(*v).to_le_bytes())
                .collect();
            let (mut yf, mut yh) = (std::vec![0f32; rows * TILE], std::vec![0f32; rows * TILE]);
            tile_f32(&wf, cols, &x, &mut yf);
            tile_f16(&wh, cols, &x, &mut yh);
            for r in 0..TILE {
                let xr = column(&x, r);
                for n in 0..rows {
                    let f = generic::dot_f32(&wf[4 * n * cols..4 * (n + 1) * cols], &xr);
                    let h = generic::dot_f16(&wh[2 * n * cols..2 * (n + 1) * cols], &xr);
                    prop_assert_eq!(yf[n * TILE + r].to_bits(), f.to_bits());
                    prop_assert_eq!(yh[n * TILE + r].to_bits(), h.to_bits());
                }
            }
        }
    }
}
