//! AVX2 + FMA (+ F16C) kernels for x86_64 and their runtime dispatch, without `std`; the
//! element-wise SwiGLU kernels also have an AVX-512F build (the same code on 16 lanes).
//!
//! The kernels are compiled on every x86_64 build (`#[target_feature]`) and chosen at run
//! time: `features()` executes `CPUID` and `XGETBV` once (the result is cached in an atomic),
//! and every public function here checks the cached bits before calling a kernel, falling back
//! to [`generic`] otherwise. A build that enables the features statically (e.g.
//! `-C target-cpu=native`) skips the `CPUID` probe for them.
//!
//! Safety argument, used by every `// SAFETY:` comment below: a `#[target_feature]` kernel is
//! only called after `avx2_fma()` (or `avx2_fma_f16c()`, `avx512f()`) returned `true`, which
//! means `CPUID` reported the instruction sets **and** `XCR0` shows that the operating system
//! saves the YMM (and for AVX-512, the ZMM and opmask) registers, so the instructions do not
//! fault; or the build enables the features for every CPU it may run on.

use core::arch::x86_64::{
    __cpuid, __cpuid_count, __m256, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_loadu_si128,
    _mm_movehl_ps, _mm_shuffle_ps, _mm256_add_ps, _mm256_castps256_ps128, _mm256_cvtph_ps,
    _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_setzero_ps,
    _mm256_storeu_ps, _xgetbv,
};
use core::sync::atomic::{AtomicU8, Ordering};

mod q8;

use super::simd_allowed;
use crate::kernels::f16::f16_to_f32;
use crate::kernels::generic::{self, TILE};
use crate::kernels::ops;

// The tile kernels below work on groups of 16 tile columns (two 8-lane registers).
const _: () = assert!(TILE.is_multiple_of(16) && TILE > 0);

/// Bit of [`FEATURES`]: detection has run.
const DETECTED: u8 = 1;
/// Bit of [`FEATURES`]: AVX2 and FMA usable (CPU support and OS-enabled YMM state).
const AVX2_FMA: u8 = 2;
/// Bit of [`FEATURES`]: F16C usable as well (only set together with [`AVX2_FMA`]).
const F16C: u8 = 4;
/// Bit of [`FEATURES`]: AVX-512F usable as well (CPU support and OS-enabled ZMM state; only set
/// together with [`AVX2_FMA`]). Used by the element-wise SwiGLU kernels (16 lanes).
const AVX512F: u8 = 8;

/// Bit of [`FEATURES`]: AVX-512 F, BW, VL and VNNI usable (ZMM state enabled; only set
/// together with [`AVX512F`]). Used by the int8 tile kernel (`vpdpbusd`).
const AVX512VNNI: u8 = 16;
/// Bit of [`FEATURES`]: AVX-VNNI usable (VEX `vpdpbusd` on 256-bit registers; only set
/// together with [`AVX2_FMA`]).
const AVXVNNI: u8 = 32;

/// Cached result of [`detect`]; 0 until the first query.
static FEATURES: AtomicU8 = AtomicU8::new(0);

/// `XGETBV(0)`: the XCR0 register (which register states the OS saves on context switch).
#[target_feature(enable = "xsave")]
fn xcr0() -> u64 {
    // SAFETY: XCR0 (index 0) always exists; `xsave` is enabled on this function and callers
    // only call it after CPUID reported OSXSAVE (the OS has enabled XGETBV).
    unsafe { _xgetbv(0) }
}

/// Probes the CPU and the OS: returns the [`AVX2_FMA`] / [`F16C`] bits (plus [`DETECTED`]).
fn detect() -> u8 {
    let mut bits = DETECTED;
    if cfg!(all(target_feature = "avx2", target_feature = "fma")) {
        bits |= AVX2_FMA;
        if cfg!(target_feature = "f16c") {
            bits |= F16C;
        }
    }
    if cfg!(target_env = "sgx") {
        // No CPUID inside an enclave: only the static features.
        return bits;
    }
    let max_leaf = __cpuid(0).eax;
    if max_leaf < 7 {
        return bits;
    }
    let ecx1 = __cpuid_count(1, 0).ecx;
    let (fma, osxsave, avx, f16c) = (
        ecx1 & (1 << 12) != 0,
        ecx1 & (1 << 27) != 0,
        ecx1 & (1 << 28) != 0,
        ecx1 & (1 << 29) != 0,
    );
    if !(osxsave && avx) {
        return bits;
    }
    // SAFETY: CPUID.1:ECX.OSXSAVE[bit 27] is set (checked just above), so the CPU has XGETBV
    // and the OS has enabled it; `xcr0` only reads register 0.
    let xcr0 = unsafe { xcr0() };
    // Bit 1: SSE (XMM) state, bit 2: AVX (upper YMM) state.
    if xcr0 & 0b110 != 0b110 {
        return bits;
    }
    let leaf7 = __cpuid_count(7, 0);
    let ebx7 = leaf7.ebx;
    let (avx2, avx512f) = (ebx7 & (1 << 5) != 0, ebx7 & (1 << 16) != 0);
    let (avx512bw, avx512vl) = (ebx7 & (1 << 30) != 0, ebx7 & (1 << 31) != 0);
    let avx512vnni = leaf7.ecx & (1 << 11) != 0;
    // Leaf 7 sub-leaf 1 (EAX bit 4: AVX-VNNI) exists when sub-leaf 0 reports it.
    let avxvnni = leaf7.eax >= 1 && __cpuid_count(7, 1).eax & (1 << 4) != 0;
    if avx2 && fma {
        bits |= AVX2_FMA;
        if f16c {
            bits |= F16C;
        }
        // Bits 5-7: opmask, upper halves of ZMM0-15, ZMM16-31 state.
        if avx512f && xcr0 & 0b1110_0000 == 0b1110_0000 {
            bits |= AVX512F;
            if avx512bw && avx512vl && avx512vnni {
                bits |= AVX512VNNI;
            }
        }
        if avxvnni {
            bits |= AVXVNNI;
        }
    }
    bits
}

/// The detected feature bits (runs [`detect`] on the first call, then reads the cache).
fn features() -> u8 {
    let cached = FEATURES.load(Ordering::Relaxed);
    if cached & DETECTED != 0 {
        return cached;
    }
    // Concurrent first calls may both detect; they store the same value.
    let bits = detect();
    FEATURES.store(bits, Ordering::Relaxed);
    bits
}

/// Whether this CPU (and OS) can run the AVX2 + FMA kernels, ignoring [`super::set_simd`].
pub fn cpu_has_avx2_fma() -> bool {
    features() & AVX2_FMA != 0
}

/// Whether this CPU (and OS) can run the AVX2 + FMA + F16C kernels, ignoring
/// [`super::set_simd`].
pub fn cpu_has_avx2_fma_f16c() -> bool {
    features() & (AVX2_FMA | F16C) == AVX2_FMA | F16C
}

/// Whether this CPU (and OS) can run the AVX-512F element-wise kernels, ignoring
/// [`super::set_simd`].
pub fn cpu_has_avx512f() -> bool {
    features() & (AVX2_FMA | AVX512F) == AVX2_FMA | AVX512F
}

/// Whether this CPU (and OS) can run the AVX-512 VNNI int8 kernel, ignoring
/// [`super::set_simd`].
pub fn cpu_has_avx512vnni() -> bool {
    let want = AVX2_FMA | AVX512F | AVX512VNNI;
    features() & want == want
}

/// Whether this CPU (and OS) can run the AVX-VNNI int8 kernel, ignoring [`super::set_simd`].
pub fn cpu_has_avxvnni() -> bool {
    features() & (AVX2_FMA | AVXVNNI) == AVX2_FMA | AVXVNNI
}

/// The integer int8 tile kernels.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Int8Kernel {
    Generic,
    Avx2,
    AvxVnni,
    Avx512Vnni,
}

/// The feature bits the kernels may use now: the detected ones, none after
/// `set_simd(false)`, and without those above the ceiling of [`super::set_kernels`].
fn allowed() -> u8 {
    if !simd_allowed() {
        return 0;
    }
    let mask = match super::limit() {
        super::LIMIT_AVX2 => AVX2_FMA | F16C,
        super::LIMIT_AVX_VNNI => AVX2_FMA | F16C | AVXVNNI,
        _ => u8::MAX,
    };
    features() & mask
}

/// Whether every bit of `want` is allowed now ([`allowed`]).
fn allows(want: u8) -> bool {
    allowed() & want == want
}

/// The int8 tile kernel the dispatcher uses now.
fn int8_kernel() -> Int8Kernel {
    if allows(AVX2_FMA | AVX512F | AVX512VNNI) {
        Int8Kernel::Avx512Vnni
    } else if allows(AVX2_FMA | AVXVNNI) {
        Int8Kernel::AvxVnni
    } else if allows(AVX2_FMA) {
        Int8Kernel::Avx2
    } else {
        Int8Kernel::Generic
    }
}

/// AVX-512F element-wise kernels usable and allowed.
fn avx512f() -> bool {
    allows(AVX2_FMA | AVX512F)
}

/// AVX2 + FMA kernels usable and allowed.
fn avx2_fma() -> bool {
    allows(AVX2_FMA)
}

/// AVX2 + FMA + F16C kernels usable and allowed.
fn avx2_fma_f16c() -> bool {
    allows(AVX2_FMA | F16C)
}

/// Name of the kernel set the dispatcher uses now (the int8 tile kernel in brackets).
pub fn kernel_set() -> &'static str {
    use Int8Kernel::{Avx512Vnni, AvxVnni};
    match (
        int8_kernel(),
        avx2_fma_f16c() && avx512f(),
        avx2_fma_f16c(),
        avx2_fma(),
    ) {
        (Avx512Vnni, true, ..) => "avx2+fma+f16c (avx512f element-wise, int8 avx512-vnni)",
        (AvxVnni, true, ..) => "avx2+fma+f16c (avx512f element-wise, int8 avx-vnni)",
        (_, true, ..) => "avx2+fma+f16c (avx512f element-wise, int8 avx2)",
        (AvxVnni, _, true, _) => "avx2+fma+f16c (int8 avx-vnni)",
        (_, _, true, _) => "avx2+fma+f16c (int8 avx2)",
        (AvxVnni, _, _, true) => "avx2+fma (int8 avx-vnni)",
        (_, _, _, true) => "avx2+fma (int8 avx2)",
        _ => "generic",
    }
}

/// [`crate::kernels::q8::quantize_tile`], with AVX2 where usable (same bits).
pub fn quantize_tile(x: &[f32], k_len: usize, q: &mut [u8], s_x: &mut [f32; TILE]) -> bool {
    if avx2_fma() {
        // SAFETY: AVX2 and FMA usable (checked just above).
        unsafe { q8::quantize_tile_avx2(x, k_len, q, s_x) }
    } else {
        crate::kernels::q8::quantize_tile(x, k_len, q, s_x)
    }
}

/// [`crate::kernels::q8::tile_q8`] with the best integer kernel this CPU has (AVX-512 VNNI,
/// AVX-VNNI, AVX2), same bits.
pub fn tile_q8(
    w: &[u8],
    w_scales: &[u8],
    cols: usize,
    k_len: usize,
    q: &[u8],
    s_x: &[f32; TILE],
    y: &mut [f32],
) {
    match int8_kernel() {
        // SAFETY: CPUID reported AVX-512 F/BW/VL/VNNI with OS-enabled ZMM state
        // (`cpu_has_avx512vnni`).
        Int8Kernel::Avx512Vnni => unsafe { q8::vnni512::tile(w, w_scales, cols, k_len, q, s_x, y) },
        // SAFETY: CPUID reported AVX-VNNI, AVX2 and FMA with OS-enabled YMM state
        // (`cpu_has_avxvnni`).
        Int8Kernel::AvxVnni => unsafe { q8::avxvnni::tile(w, w_scales, cols, k_len, q, s_x, y) },
        // SAFETY: CPUID reported AVX2 and FMA with OS-enabled YMM state (`cpu_has_avx2_fma`).
        Int8Kernel::Avx2 => unsafe { q8::avx2::tile(w, w_scales, cols, k_len, q, s_x, y) },
        Int8Kernel::Generic => crate::kernels::q8::tile_q8(w, w_scales, cols, k_len, q, s_x, y),
    }
}

/// [`crate::kernels::q8::matvec_q8`] compiled for AVX2 (the compiler vectorises the integer
/// dot products; same bits).
#[target_feature(enable = "avx2,fma")]
fn matvec_q8_avx2(w: &[u8], w_scales: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    crate::kernels::q8::matvec_q8(w, w_scales, cols, x, y);
}

/// [`crate::kernels::q8::matvec_q8`], compiled for AVX2 where usable.
pub fn matvec_q8(w: &[u8], w_scales: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    if avx2_fma() {
        // SAFETY: AVX2 and FMA usable (checked just above).
        unsafe { matvec_q8_avx2(w, w_scales, cols, x, y) }
    } else {
        crate::kernels::q8::matvec_q8(w, w_scales, cols, x, y);
    }
}

// ---------------------------------------------------------------------------------------------
// Kernels. Contract of each: that of the `generic` function of the same name (different
// summation order). Loads are unaligned (`loadu`, `loadl`), so any slice address works.

/// Horizontal sum of two accumulators.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum2(a: __m256, b: __m256) -> f32 {
    let s = _mm256_add_ps(a, b);
    let v = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
    let v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    _mm_cvtss_f32(_mm_add_ss(v, _mm_shuffle_ps::<1>(v, v)))
}

/// Horizontal sum of four accumulators.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum4(a: [__m256; 4]) -> f32 {
    let [a0, a1, a2, a3] = a;
    hsum2(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))
}

/// Eight f32 weights from `p`.
///
/// # Safety
/// `p .. p + 32` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn load_f32(p: *const u8) -> __m256 {
    // SAFETY: the caller guarantees 32 readable bytes; `loadu` needs no alignment; AVX is
    // enabled on this function and it is only reached from AVX2 kernels (see module docs).
    unsafe { _mm256_loadu_ps(p.cast::<f32>()) }
}

/// Eight binary16 weights from `p`, converted exactly to f32 (`vcvtph2ps`).
///
/// # Safety
/// `p .. p + 16` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_f16(p: *const u8) -> __m256 {
    // SAFETY: the caller guarantees 16 readable bytes; `loadu_si128` needs no alignment; the
    // function is only reached from F16C kernels (see module docs).
    let h = unsafe { _mm_loadu_si128(p.cast()) };
    _mm256_cvtph_ps(h)
}

/// Eight activations `x[i .. i + 8]`.
///
/// # Safety
/// `i + 8 <= x.len()`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn load_x(x: &[f32], i: usize) -> __m256 {
    // SAFETY: the caller guarantees `i + 8 <= x.len()`; `loadu` needs no alignment.
    unsafe { _mm256_loadu_ps(x.as_ptr().add(i)) }
}

/// Generates a single-row dot product and a four-row matrix-vector product for one weight
/// encoding: `$load` reads eight weights, `$size` bytes per weight, `$generic_dot` handles
/// the tail columns.
macro_rules! kernels {
    ($feat:literal, $load:ident, $size:literal, $dot:ident, $matvec:ident, $generic_dot:path) => {
        /// AVX2 dot product of one little-endian weight row with `x` (same contract as the
        /// generic kernel of that encoding; `n = min(weights in w, x.len())`).
        #[target_feature(enable = $feat)]
        pub(crate) fn $dot(w: &[u8], x: &[f32]) -> f32 {
            let n = (w.len() / $size).min(x.len());
            let blocks = n / 32;
            let mut acc = [_mm256_setzero_ps(); 4];
            let wp = w.as_ptr();
            for b in 0..blocks {
                for (j, a) in acc.iter_mut().enumerate() {
                    let i = b * 32 + j * 8;
                    // SAFETY: i + 8 <= blocks·32 <= n, w holds >= n·size bytes and x >= n
                    // floats, so both loads are in bounds; the features of `$feat` are enabled
                    // here and this kernel is only called after detection (module docs).
                    let (wv, xv) = unsafe { ($load(wp.add($size * i)), load_x(x, i)) };
                    *a = _mm256_fmadd_ps(wv, xv, *a);
                }
            }
            let done = blocks * 32;
            let tail = $generic_dot(
                w.get($size * done..).unwrap_or(&[]),
                x.get(done..n).unwrap_or(&[]),
            );
            hsum4(acc) + tail
        }

        /// AVX2 `y[r] = Σ_c W[r, c]·x[c]` for `W` `[rows, cols]` (contract of the generic
        /// matvec of that encoding), four rows at a time so that each activation load feeds
        /// four FMAs.
        #[target_feature(enable = $feat)]
        pub(crate) fn $matvec(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
            let Some(row_bytes) = cols.checked_mul($size).filter(|&b| b > 0) else {
                return;
            };
            let n = cols.min(x.len());
            let blocks = n / 16;
            let done = blocks * 16;
            let xt = x.get(done..n).unwrap_or(&[]);
            let quads = w.chunks_exact(4 * row_bytes).zip(y.chunks_exact_mut(4));
            let quad_rows = 4 * quads.len();
            for (wq, yq) in quads {
                let p = wq.as_ptr();
                let mut acc = [_mm256_setzero_ps(); 8];
                for b in 0..blocks {
                    let i = b * 16;
                    // SAFETY: i + 16 <= n <= x.len() and, for rows r < 4, the 16 weights at
                    // byte r·row_bytes + i·size lie inside row r of `wq` (i + 16 <= n <= cols);
                    // the features of `$feat` are enabled here and this kernel is only called
                    // after detection (module docs).
                    unsafe {
                        let (x0, x1) = (load_x(x, i), load_x(x, i + 8));
                        for (r, pair) in acc.chunks_exact_mut(2).enumerate() {
                            let at = p.add(r * row_bytes + $size * i);
                            pair[0] = _mm256_fmadd_ps($load(at), x0, pair[0]);
                            pair[1] = _mm256_fmadd_ps($load(at.add($size * 8)), x1, pair[1]);
                        }
                    }
                }
                for ((row, pair), out) in
                    wq.chunks_exact(row_bytes).zip(acc.chunks_exact(2)).zip(yq)
                {
                    let tail = $generic_dot(row.get($size * done..).unwrap_or(&[]), xt);
                    *out = hsum2(pair[0], pair[1]) + tail;
                }
            }
            let rest = w.get(quad_rows * row_bytes..).unwrap_or(&[]);
            let y_rest = y.get_mut(quad_rows..).unwrap_or(&mut []);
            for (row, out) in rest.chunks_exact(row_bytes).zip(y_rest) {
                *out = $dot(row, x);
            }
        }
    };
}

kernels!(
    "avx2,fma",
    load_f32,
    4,
    dot_f32_avx2,
    matvec_f32_avx2,
    generic::dot_f32
);
kernels!(
    "avx2,fma,f16c",
    load_f16,
    2,
    dot_f16_f16c,
    matvec_f16_f16c,
    generic::dot_f16
);

// ---------------------------------------------------------------------------------------------
// Tile kernels: `y[n][0..TILE] = Σ_k W[n, k]·x[k][0..TILE]` (contract of `generic::tile_*`).
// The work is split into blocks of up to `NB` weight rows × `KC` columns; each block is
// multiplied against every 16-position group of the tile (`TILE / 16` of them) while its
// weights stay in L1, with a register block of `NB` rows × 16 positions = 12 accumulators
// (per column `k`: two activation loads and `NB` weight broadcasts feed `2·NB` FMAs). The
// accumulators go through `y` between column blocks (exact f32 stores and loads), so every sum
// still runs over `k` in order. f16 and int8 rows are converted to f32 (exactly) into a stack
// panel once per block, so the sums are the f32 kernel's on the decoded weights.

/// Weight rows per register block (the row-count dispatch of `tile_kernel!` has arms for
/// 1..=6).
const NB: usize = 6;
const _: () = assert!(NB == 6);
/// Weight columns per block: `NB·KC·4` = 3 KiB of weights and `KC·TILE·4` bytes of the tile
/// are live while a block runs.
const KC: usize = 128;
/// 16-position groups per tile.
const GROUPS: usize = TILE / 16;

/// f32 rows of converted weights: `NB` rows of `KC` columns (one per kernel call, on the
/// stack; only the f16 and int8 kernels fill it).
type Panel = [[f32; KC]; NB];

/// `acc[j] += Σ_{k < k_len} W(j, k)·x[k·TILE .. k·TILE + 16]`, `W(j, k)` the f32 at
/// `w + j·stride + k` (any alignment).
///
/// # Safety
/// For `j < R`, `k < k_len`: `w + j·stride + k` is readable as an f32 (4 bytes) and
/// `x + k·TILE .. x + k·TILE + 16` is readable.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_block<const R: usize>(
    w: *const f32,
    stride: usize,
    x: *const f32,
    k_len: usize,
    acc: &mut [[__m256; 2]; R],
) {
    let mut a = *acc;
    // One base pointer per row, so that each broadcast is a `[row + 4k]` address. `black_box`
    // keeps the compiler from folding them back into one pointer plus multiples of the stride,
    // which costs an add per row per column.
    let rows: [*const f32; R] =
        core::hint::black_box(core::array::from_fn(|j| w.wrapping_add(j * stride)));
    for k in 0..k_len {
        // SAFETY: k < k_len, so x + TILE·k .. + 16 and every weight rows[j] + k = w + j·stride
        // + k (j < R) are readable (caller contract); `loadu`/`read_unaligned` need no
        // alignment.
        unsafe {
            let x0 = _mm256_loadu_ps(x.add(TILE * k));
            let x1 = _mm256_loadu_ps(x.add(TILE * k + 8));
            for (aj, row) in a.iter_mut().zip(rows) {
                let wv = _mm256_set1_ps(row.add(k).read_unaligned());
                aj[0] = _mm256_fmadd_ps(wv, x0, aj[0]);
                aj[1] = _mm256_fmadd_ps(wv, x1, aj[1]);
            }
        }
    }
    *acc = a;
}

/// Loads `R` rows of 16 partial sums from `y + TILE·j`.
///
/// # Safety
/// `y + TILE·j .. + 16` must be readable for `j < R`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn load_rows<const R: usize>(y: *const f32) -> [[__m256; 2]; R] {
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for (j, aj) in acc.iter_mut().enumerate() {
        // SAFETY: j < R, so y + TILE·j .. + 16 is readable (caller contract).
        unsafe {
            aj[0] = _mm256_loadu_ps(y.add(TILE * j));
            aj[1] = _mm256_loadu_ps(y.add(TILE * j + 8));
        }
    }
    acc
}

/// Stores `R` accumulated rows of 16 to `y + TILE·j`.
///
/// # Safety
/// `y + TILE·j .. + 16` must be writable for `j < R`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn store_rows<const R: usize>(acc: &[[__m256; 2]; R], y: *mut f32) {
    for (j, aj) in acc.iter().enumerate() {
        // SAFETY: j < R, so y + TILE·j .. + 16 is writable (caller contract).
        unsafe {
            _mm256_storeu_ps(y.add(TILE * j), aj[0]);
            _mm256_storeu_ps(y.add(TILE * j + 8), aj[1]);
        }
    }
}

/// `R` rows of f32 weights (`stride` floats apart) over `k_len` columns against every
/// 16-position group of the tile `x`, added to `y` (or written, when `first`).
///
/// # Safety
/// `w + j·stride + k` readable for `j < R`, `k < k_len`; `x .. x + TILE·k_len` readable;
/// `y .. y + TILE·R` readable and writable.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn block_groups<const R: usize>(
    w: *const f32,
    stride: usize,
    x: *const f32,
    k_len: usize,
    y: *mut f32,
    first: bool,
) {
    for g in 0..GROUPS {
        // SAFETY: group g < GROUPS covers lanes 16g .. 16g + 16 <= TILE of every row of x and
        // y, inside the caller's buffers; the weights as the caller guarantees.
        unsafe {
            let (xg, yg) = (x.add(16 * g), y.add(16 * g));
            let mut acc = if first {
                [[_mm256_setzero_ps(); 2]; R]
            } else {
                load_rows::<R>(yg)
            };
            tile_block::<R>(w, stride, xg, k_len, &mut acc);
            store_rows::<R>(&acc, yg);
        }
    }
}

/// `R` rows of f32 weights over `k_len` columns starting at `w` (`cols` floats from one row to
/// the next) against the tile chunk `x`, added to `y` (written when `first`).
///
/// # Safety
/// `w + 4·(j·cols + k)` readable for `j < R`, `k < k_len`; `x .. x + TILE·k_len` readable;
/// `y .. y + TILE·R` readable and writable.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_f32<const R: usize>(
    w: *const u8,
    cols: usize,
    x: *const f32,
    k_len: usize,
    y: *mut f32,
    first: bool,
    _panel: &mut Panel,
) {
    // SAFETY: the caller's contract is `block_groups`'s with stride `cols`.
    unsafe { block_groups::<R>(w.cast(), cols, x, k_len, y, first) };
}

/// Converts `n` f16 weights at `src` to f32 at `dst` (exact, `vcvtph2ps`).
///
/// # Safety
/// `src .. src + 2n` readable, `dst .. dst + n` writable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn convert_f16(src: *const u8, dst: *mut f32, n: usize) {
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n: 16 readable bytes at src + 2i, 8 writable floats at dst + i.
        unsafe { _mm256_storeu_ps(dst.add(i), load_f16(src.add(2 * i))) };
        i += 8;
    }
    while i < n {
        // SAFETY: i < n: 2 readable bytes at src + 2i, one writable float at dst + i.
        unsafe {
            let h = u16::from_le_bytes([*src.add(2 * i), *src.add(2 * i + 1)]);
            *dst.add(i) = f16_to_f32(h);
        }
        i += 1;
    }
}

/// Generates the f16 row-block function: `R` rows × `k_len <= KC` columns converted
/// to an f32 panel, then [`block_groups`] on the panel.
macro_rules! rows_converted {
    ($feat:literal, $name:ident, $convert:ident, $size:literal) => {
        /// `R` rows of converted weights (`$size` bytes each) over `k_len` columns starting at
        /// `w` (`cols` weights from one row to the next) against the tile chunk `x`, added to
        /// `y` (written when `first`).
        ///
        /// # Safety
        /// `w + size·(j·cols + k)` readable for `j < R`, `k < k_len`; `k_len <= KC`;
        /// `x .. x + TILE·k_len` readable; `y .. y + TILE·R` readable and writable.
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn $name<const R: usize>(
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
                // SAFETY: columns 0 .. kn <= k_len of row j < R are readable (caller
                // contract); the panel row holds KC >= kn floats.
                unsafe { $convert(w.add($size * j * cols), row.as_mut_ptr(), kn) };
            }
            // SAFETY: the panel holds R rows of KC floats (stride KC) with kn valid columns;
            // x and y as the caller guarantees.
            unsafe { block_groups::<R>(panel.as_ptr().cast(), KC, x, kn, y, first) };
        }
    };
}

rows_converted!("avx2,fma,f16c", rows_f16, convert_f16, 2);

/// Generates a tile kernel from a row-block function, on [`super::tile_schedule`]: columns in
/// chunks of [`KC`] (the chunk of the tile, `KC·TILE` floats, stays in L1 while every row
/// block passes over it), within a chunk blocks of [`NB`] rows (the last one 1..NB).
macro_rules! tile_kernel {
    ($feat:literal, $name:ident, $rows:ident, $size:literal) => {
        /// AVX2 tile kernel (contract of the generic tile kernel of that encoding).
        #[target_feature(enable = $feat)]
        pub(crate) fn $name(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
            let Some(row_bytes) = cols.checked_mul($size).filter(|&b| b > 0) else {
                return;
            };
            let k_len = cols.min(x.len() / TILE);
            let rows = (w.len() / row_bytes).min(y.len() / TILE);
            let (wp, xp, yp) = (w.as_ptr(), x.as_ptr(), y.as_mut_ptr());
            let mut panel: Panel = [[0.0; KC]; NB];
            let p = &mut panel;
            super::tile_schedule(rows, k_len, NB, KC, |n, r, k0, kn| {
                let first = k0 == 0;
                let wb = wp.wrapping_add($size * k0 + n * row_bytes);
                let (xk, yb) = (xp.wrapping_add(TILE * k0), yp.wrapping_add(TILE * n));
                // SAFETY: rows n .. n + r <= rows lie inside `w` (rows <= w.len() / row_bytes)
                // and `y` (rows <= y.len() / TILE); columns k0 .. k0 + kn <= k_len <= cols of
                // them are readable, and TILE·(k0 + kn) <= x.len().
                unsafe {
                    match r {
                        NB => $rows::<NB>(wb, cols, xk, kn, yb, first, p),
                        1 => $rows::<1>(wb, cols, xk, kn, yb, first, p),
                        2 => $rows::<2>(wb, cols, xk, kn, yb, first, p),
                        3 => $rows::<3>(wb, cols, xk, kn, yb, first, p),
                        4 => $rows::<4>(wb, cols, xk, kn, yb, first, p),
                        5 => $rows::<5>(wb, cols, xk, kn, yb, first, p),
                        _ => {}
                    }
                }
            });
        }
    };
}

tile_kernel!("avx2,fma", tile_f32_avx2, rows_f32, 4);
tile_kernel!("avx2,fma,f16c", tile_f16_f16c, rows_f16, 2);

/// [`ops::swiglu`] compiled for AVX2 + FMA: the same code (so the same bits, as [`ops::exp`]
/// uses no FMA), vectorised 8 lanes wide by the compiler.
#[target_feature(enable = "avx2,fma")]
fn swiglu_avx2(gate: &mut [f32], up: &[f32]) {
    ops::swiglu(gate, up);
}

/// [`ops::swiglu`] compiled for AVX-512F: the same code on 16 lanes (same bits, see
/// [`swiglu_avx2`]).
#[target_feature(enable = "avx512f")]
fn swiglu_avx512(gate: &mut [f32], up: &[f32]) {
    ops::swiglu(gate, up);
}

/// [`ops::swiglu_backward`] compiled for AVX-512F (same bits, see [`swiglu_avx512`]).
#[target_feature(enable = "avx512f")]
fn swiglu_backward_avx512(
    gate: &[f32],
    up: &[f32],
    da: &[f32],
    d_gate: &mut [f32],
    d_up: &mut [f32],
) {
    ops::swiglu_backward(gate, up, da, d_gate, d_up);
}

/// [`ops::swiglu_backward`] compiled for AVX2 + FMA (same bits, see [`swiglu_avx2`]).
#[target_feature(enable = "avx2,fma")]
fn swiglu_backward_avx2(
    gate: &[f32],
    up: &[f32],
    da: &[f32],
    d_gate: &mut [f32],
    d_up: &mut [f32],
) {
    ops::swiglu_backward(gate, up, da, d_gate, d_up);
}

/// [`ops::softmax`] compiled for AVX2 + FMA (same bits, see [`swiglu_avx2`]).
#[target_feature(enable = "avx2,fma")]
fn softmax_avx2(v: &mut [f32]) {
    ops::softmax(v);
}

// ---------------------------------------------------------------------------------------------
// Dispatchers (safe): kernel when detected and allowed, generic otherwise.

/// [`generic::dot_f32`], with AVX2 + FMA when available.
pub fn dot_f32(w: &[u8], x: &[f32]) -> f32 {
    if avx2_fma() {
        // SAFETY: `avx2_fma()` is true: CPUID reported AVX2 and FMA and XCR0 shows YMM state
        // enabled by the OS (or the build enables both for every target CPU).
        unsafe { dot_f32_avx2(w, x) }
    } else {
        generic::dot_f32(w, x)
    }
}

/// [`generic::dot_f16`], with AVX2 + FMA + F16C when available.
pub fn dot_f16(w: &[u8], x: &[f32]) -> f32 {
    if avx2_fma_f16c() {
        // SAFETY: `avx2_fma_f16c()` is true: AVX2, FMA, F16C and OS-enabled YMM state were
        // detected.
        unsafe { dot_f16_f16c(w, x) }
    } else {
        generic::dot_f16(w, x)
    }
}

/// [`generic::matvec_f32`], with AVX2 + FMA when available.
pub fn matvec_f32(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    if avx2_fma() {
        // SAFETY: `avx2_fma()` is true: AVX2, FMA and OS-enabled YMM state were detected.
        unsafe { matvec_f32_avx2(w, cols, x, y) }
    } else {
        generic::matvec_f32(w, cols, x, y)
    }
}

/// [`generic::matvec_f16`], with AVX2 + FMA + F16C when available.
pub fn matvec_f16(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    if avx2_fma_f16c() {
        // SAFETY: `avx2_fma_f16c()` is true: AVX2, FMA, F16C and OS-enabled YMM state were
        // detected.
        unsafe { matvec_f16_f16c(w, cols, x, y) }
    } else {
        generic::matvec_f16(w, cols, x, y)
    }
}

/// [`generic::tile_f32`], with AVX2 + FMA when available.
pub fn tile_f32(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    if avx2_fma() {
        // SAFETY: `avx2_fma()` is true: AVX2, FMA and OS-enabled YMM state were detected.
        unsafe { tile_f32_avx2(w, cols, x, y) }
    } else {
        generic::tile_f32(w, cols, x, y)
    }
}

/// [`generic::tile_f16`], with AVX2 + FMA + F16C when available.
pub fn tile_f16(w: &[u8], cols: usize, x: &[f32], y: &mut [f32]) {
    if avx2_fma_f16c() {
        // SAFETY: `avx2_fma_f16c()` is true: AVX2, FMA, F16C and OS-enabled YMM state were
        // detected.
        unsafe { tile_f16_f16c(w, cols, x, y) }
    } else {
        generic::tile_f16(w, cols, x, y)
    }
}

/// [`ops::swiglu`], vectorised with AVX-512F or AVX2 when available (identical results).
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    if avx512f() {
        // SAFETY: `avx512f()` is true: AVX-512F and OS-enabled ZMM state were detected.
        unsafe { swiglu_avx512(gate, up) }
    } else if avx2_fma() {
        // SAFETY: `avx2_fma()` is true: AVX2, FMA and OS-enabled YMM state were detected.
        unsafe { swiglu_avx2(gate, up) }
    } else {
        ops::swiglu(gate, up)
    }
}

/// [`ops::swiglu_backward`], vectorised with AVX-512F or AVX2 when available (identical
/// results).
pub fn swiglu_backward(gate: &[f32], up: &[f32], da: &[f32], d_gate: &mut [f32], d_up: &mut [f32]) {
    if avx512f() {
        // SAFETY: `avx512f()` is true: AVX-512F and OS-enabled ZMM state were detected.
        unsafe { swiglu_backward_avx512(gate, up, da, d_gate, d_up) }
    } else if avx2_fma() {
        // SAFETY: `avx2_fma()` is true: AVX2, FMA and OS-enabled YMM state were detected.
        unsafe { swiglu_backward_avx2(gate, up, da, d_gate, d_up) }
    } else {
        ops::swiglu_backward(gate, up, da, d_gate, d_up)
    }
}

/// [`ops::softmax`], vectorised with AVX2 when available (identical results).
pub fn softmax(v: &mut [f32]) {
    if avx2_fma() {
        // SAFETY: `avx2_fma()` is true: AVX2, FMA and OS-enabled YMM state were detected.
        unsafe { softmax_avx2(v) }
    } else {
        ops::softmax(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::f16::f32_to_f16;
    use crate::kernels::testing::{encodings, shifted, uniform};
    use proptest::prelude::*;
    use std::vec::Vec;

    /// `|a − b| <= 1e-5 · max(1, Σ|w·x|)` (f32 reassociation bound with margin).
    fn close(a: f32, b: f32, scale: f32) -> bool {
        (a - b).abs() <= 1e-5 * scale.max(1.0)
    }

    #[test]
    fn detection_agrees_with_std() {
        let std_avx2_fma =
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        assert_eq!(cpu_has_avx2_fma(), std_avx2_fma);
        assert_eq!(
            cpu_has_avx2_fma_f16c(),
            std_avx2_fma && std::is_x86_feature_detected!("f16c")
        );
        // Cached: a second query gives the same bits.
        assert_eq!(features(), features());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn simd_dots_match_generic(
            v in proptest::collection::vec((-2f32..2.0, -2f32..2.0), 0..300),
            x_extra in 0usize..5,
            w_off in 0usize..8,
            x_off in 0usize..4,
        ) {
            if !cpu_has_avx2_fma_f16c() {
                return Ok(());
            }
            // Misaligned weight bytes (offset 0..8) and activations (offset 0..4 floats), and
            // an x longer than the row (extra elements must be ignored).
            let xs: Vec<f32> = (0..x_off)
                .map(|i| i as f32)
                .chain(v.iter().map(|t| t.1))
                .chain((0..x_extra).map(|i| 100.0 + i as f32))
                .collect();
            let x = &xs[x_off..];
            let wf: Vec<u8> = v.iter().flat_map(|t| t.0.to_le_bytes()).collect();
            let wh: Vec<u8> = v.iter().flat_map(|t| f32_to_f16(t.0).to_le_bytes()).collect();
            let (wf, wh) = (shifted(&wf, w_off), shifted(&wh, w_off));
            let (wf, wh) = (&wf[w_off..], &wh[w_off..]);
            let scale: f32 = v.iter().map(|t| (t.0 * t.1).abs()).sum();
            // SAFETY: the CPU has AVX2, FMA and F16C with OS-enabled YMM state
            // (`cpu_has_avx2_fma_f16c()` checked above); the kernels take safe slices.
            let (f, h) = unsafe { (dot_f32_avx2(wf, x), dot_f16_f16c(wh, x)) };
            prop_assert!(close(f, generic::dot_f32(wf, x), scale));
            prop_assert!(close(h, generic::dot_f16(wh, x), scale));
        }

        #[test]
        fn simd_matvecs_match_generic(
            rows in 0usize..11,
            cols in 1usize..70,
            seed in any::<u64>(),
            w_off in 0usize..8,
            x_off in 0usize..4,
            y_short in 0usize..3,
        ) {
            if !cpu_has_avx2_fma_f16c() {
                return Ok(());
            }
            let mut next = uniform(seed);
            let w: Vec<f32> = (0..rows * cols).map(|_| next() * 2.0).collect();
            let xs: Vec<f32> = (0..x_off + cols).map(|_| next()).collect();
            let x = &xs[x_off..];
            let [wf, wh, _] = encodings(&w, 60.0);
            let (wf, wh) = (shifted(&wf, w_off), shifted(&wh, w_off));
            let (wf, wh) = (&wf[w_off..], &wh[w_off..]);
            // A shorter y truncates; the untouched tail must stay as it was.
            let ylen = rows.saturating_sub(y_short);
            let tol = 1e-5 * cols as f32 * 2.0;
            for (which, bytes) in [(0, wf), (1, wh)] {
                let mut fast = std::vec![7.0f32; ylen];
                let mut slow = std::vec![7.0f32; ylen];
                // SAFETY: the CPU has AVX2, FMA and F16C with OS-enabled YMM state
                // (`cpu_has_avx2_fma_f16c()` checked above).
                unsafe {
                    match which {
                        0 => matvec_f32_avx2(bytes, cols, x, &mut fast),
                        _ => matvec_f16_f16c(bytes, cols, x, &mut fast),
                    }
                }
                match which {
                    0 => generic::matvec_f32(bytes, cols, x, &mut slow),
                    _ => generic::matvec_f16(bytes, cols, x, &mut slow),
                }
                for (a, b) in fast.iter().zip(&slow) {
                    prop_assert!((a - b).abs() <= tol, "{which}: {a} vs {b}");
                }
            }
        }

        #[test]
        fn simd_tiles_match_generic(
            rows in 0usize..15,
            cols in 1usize..300,
            x_cols in 0usize..300,
            seed in any::<u64>(),
            w_off in 0usize..8,
            y_short in 0usize..20,
        ) {
            if !cpu_has_avx2_fma_f16c() {
                return Ok(());
            }
            let mut next = uniform(seed);
            let w: Vec<f32> = (0..rows * cols).map(|_| next() * 2.0).collect();
            // x may be shorter than cols·TILE (then k is truncated) and not a whole tile.
            let x: Vec<f32> = (0..x_cols.min(cols) * TILE + x_cols % 5).map(|_| next()).collect();
            let [wf, wh, _] = encodings(&w, 60.0);
            let (wf, wh) = (shifted(&wf, w_off), shifted(&wh, w_off));
            let (wf, wh) = (&wf[w_off..], &wh[w_off..]);
            let ylen = (rows * TILE).saturating_sub(y_short);
            let tol = 1e-6 * cols as f32 * 2.0;
            for (which, bytes) in [(0, wf), (1, wh)] {
                let mut fast = std::vec![7.0f32; ylen];
                let mut slow = std::vec![7.0f32; ylen];
                // SAFETY: the CPU has AVX2, FMA and F16C with OS-enabled YMM state
                // (`cpu_has_avx2_fma_f16c()` checked above).
                unsafe {
                    match which {
                        0 => tile_f32_avx2(bytes, cols, &x, &mut fast),
                        _ => tile_f16_f16c(bytes, cols, &x, &mut fast),
                    }
                }
                match which {
                    0 => generic::tile_f32(bytes, cols, &x, &mut slow),
                    _ => generic::tile_f16(bytes, cols, &x, &mut slow),
                }
                for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
                    prop_assert!((a - b).abs() <= tol, "{which} at {i}: {a} vs {b}");
                }
            }
        }

        #[test]
        fn simd_elementwise_is_bit_identical(
            v in proptest::collection::vec((-100f32..100.0, -3f32..3.0), 0..100),
        ) {
            if !cpu_has_avx2_fma() {
                return Ok(());
            }
            let (mut g1, up): (Vec<f32>, Vec<f32>) = v.iter().copied().unzip();
            let mut g2 = g1.clone();
            // SAFETY: AVX2 and FMA with OS-enabled YMM state (checked above).
            unsafe { swiglu_avx2(&mut g1, &up) };
            ops::swiglu(&mut g2, &up);
            prop_assert_eq!(&g1, &g2);
            let mut s1: Vec<f32> = v.iter().map(|p| p.0).collect();
            let mut s2 = s1.clone();
            // SAFETY: as above.
            unsafe { softmax_avx2(&mut s1) };
            ops::softmax(&mut s2);
            prop_assert_eq!(s1, s2);
            let da: std::vec::Vec<f32> = up.iter().map(|u| u * 0.7 - 0.1).collect();
            let gate: std::vec::Vec<f32> = v.iter().map(|p| p.0).collect();
            let n = gate.len();
            let (mut dg1, mut du1, mut dg2, mut du2) =
                (std::vec![0f32; n], std::vec![0f32; n], std::vec![0f32; n], std::vec![0f32; n]);
            // SAFETY: as above.
            unsafe { swiglu_backward_avx2(&gate, &up, &da, &mut dg1, &mut du1) };
            ops::swiglu_backward(&gate, &up, &da, &mut dg2, &mut du2);
            prop_assert_eq!(&dg1, &dg2);
            prop_assert_eq!(&du1, &du2);
            if cpu_has_avx512f() {
                let mut g3 = v.iter().map(|p| p.0).collect::<std::vec::Vec<f32>>();
                // SAFETY: AVX-512F with OS-enabled ZMM state (checked just above).
                unsafe { swiglu_avx512(&mut g3, &up) };
                prop_assert_eq!(&g3, &g2);
                let (mut dg3, mut du3) = (std::vec![0f32; n], std::vec![0f32; n]);
                // SAFETY: as above.
                unsafe { swiglu_backward_avx512(&gate, &up, &da, &mut dg3, &mut du3) };
                prop_assert_eq!(&dg3, &dg2);
                prop_assert_eq!(&du3, &du2);
            }
        }
    }
}
