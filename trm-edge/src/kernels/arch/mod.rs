//! The seam for SIMD: per-architecture kernels, chosen **at run time** on x86_64 (no `std`
//! needed) and at compile time elsewhere.
//!
//! `unsafe` lives only below this module. Every function re-exported here has the contract of
//! the [`super::generic`] function of the same name (the SIMD kernels differ only in rounding:
//! summation order, and one rounding per fused multiply-add).
//! Selection:
//! - x86_64: [`x86_64`] detects AVX2, FMA, F16C and the VNNI extensions once with
//!   `CPUID`/`XGETBV` (cached in an atomic) and uses the AVX2 + FMA kernels for f32 weights,
//!   the F16C kernels for f16 weights and the integer kernels (AVX2, AVX-512 VNNI, AVX-VNNI)
//!   for int8 weights where the CPU and OS support them; a default `cargo build` gets them;
//! - little-endian aarch64 (NEON is baseline): the `aarch64` module: dot products for f32
//!   weights, tile products for f32 and f16 weights, and integer int8 kernels (SMMLA where the
//!   CPU has FEAT_I8MM, else SDOT where it has the dot-product extension, else plain NEON);
//! - Cortex-M with the DSP extension: [`cortex_m`] int8 (`SMLAD`) and f16 (`VCVTB`) kernels;
//! - everything else: the generic kernels.
//!
//! int8 weights always run on integer activations; [`super::q8`] is their specification.
//!
//! [`set_simd`]`(false)` forces the generic kernels everywhere (tests, benchmarks), and
//! [`set_kernels`] caps them at a named set (an AVX2-only CPU on one with AVX-512, say).

#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

#[cfg(all(
    target_arch = "aarch64",
    target_endian = "little",
    target_feature = "neon"
))]
pub mod aarch64;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;
// Cortex-M DSP (SMLAD) int8 kernels; the portable specification builds everywhere.
pub mod cortex_m;

/// The block schedule of the SIMD tile kernels: the columns `0..k_len` in chunks of `kc`, and
/// within each chunk the rows `0..rows` in blocks of `nb` (the last one shorter). Calls
/// `block(n, r, k0, kn)` for rows `n .. n + r` (`1 <= r <= nb`) and columns `k0 .. k0 + kn`;
/// `k0 == 0` is the first chunk, whose sums start from zero (later chunks add to `y`). With
/// `k_len = 0` there is one chunk of no columns (the kernels then write zeros).
#[cfg(any(
    target_arch = "x86_64",
    all(
        target_arch = "aarch64",
        target_endian = "little",
        target_feature = "neon"
    )
))]
#[inline(always)]
fn tile_schedule(
    rows: usize,
    k_len: usize,
    nb: usize,
    kc: usize,
    mut block: impl FnMut(usize, usize, usize, usize),
) {
    // Zero-sized blocks would never advance.
    let (nb, kc) = (nb.max(1), kc.max(1));
    let mut k0 = 0;
    loop {
        let kn = kc.min(k_len - k0);
        let mut n = 0;
        while n < rows {
            let r = nb.min(rows - n);
            block(n, r, k0, kn);
            n += r;
        }
        k0 += kn;
        if k0 >= k_len {
            break;
        }
    }
}

/// Whether SIMD kernels may be used (default `true`).
static SIMD: AtomicBool = AtomicBool::new(true);

/// Allows (`true`, the default) or forbids (`false`) the SIMD kernels process-wide; with
/// `false` every product runs the scalar [`super::generic`] kernels, so that both paths can be
/// compared and timed in one binary. Takes effect for the next kernel call on every thread.
pub fn set_simd(enabled: bool) {
    SIMD.store(enabled, Ordering::Relaxed);
}

/// The setting of [`set_simd`] (not whether the CPU has SIMD: see [`kernel_set`]).
pub fn simd_enabled() -> bool {
    SIMD.load(Ordering::Relaxed)
}

/// The kernel sets a process can restrict itself to with [`set_kernels`]: to compare them in
/// one binary, or to time a CPU that lacks an extension on one that has it. Every choice gives
/// the same int8 bits ([`super::q8`] is exact); f32 and f16 sums may round differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// The best kernels this CPU has (the default).
    Auto,
    /// The scalar reference kernels only (`set_simd(false)`).
    Generic,
    /// x86_64: AVX2, FMA and F16C only, as on a CPU without AVX-512 and VNNI (int8 products
    /// on `vpmaddubsw`/`vpmaddwd`).
    Avx2,
    /// x86_64: AVX2, FMA and F16C plus AVX-VNNI (`vpdpbusd` on 256-bit registers), no AVX-512.
    AvxVnni,
    /// aarch64: NEON without the dot-product extension (int8 products on `smull`/`sadalp`).
    Neon,
    /// aarch64: NEON with the dot-product extension but without FEAT_I8MM (int8 products on
    /// `SDOT`, not `SMMLA`).
    Sdot,
}

impl Kernels {
    /// Every choice, in the order of [`Kernels::name`]'s help text.
    pub const ALL: [Kernels; 6] = [
        Kernels::Auto,
        Kernels::Generic,
        Kernels::Avx2,
        Kernels::AvxVnni,
        Kernels::Neon,
        Kernels::Sdot,
    ];

    /// The choice's name on command lines: `auto`, `generic`, `avx2`, `avx-vnni`, `neon`,
    /// `sdot`.
    pub const fn name(self) -> &'static str {
        match self {
            Kernels::Auto => "auto",
            Kernels::Generic => "generic",
            Kernels::Avx2 => "avx2",
            Kernels::AvxVnni => "avx-vnni",
            Kernels::Neon => "neon",
            Kernels::Sdot => "sdot",
        }
    }
}

impl core::fmt::Display for Kernels {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for Kernels {
    type Err = UnknownKernels;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kernels::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or(UnknownKernels)
    }
}

/// A name that is none of [`Kernels::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownKernels;

impl core::fmt::Display for UnknownKernels {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("unknown kernel set; expected one of")?;
        for k in Kernels::ALL {
            write!(f, " {k}")?;
        }
        Ok(())
    }
}

/// Why [`set_kernels`] refused a choice: what this build or CPU lacks, in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelsUnavailable(pub &'static str);

impl core::fmt::Display for KernelsUnavailable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.0)
    }
}

/// [`Kernels`] as stored in [`LIMIT`] (the `SIMD` flag holds [`Kernels::Generic`]).
const LIMIT_AUTO: u8 = 0;
/// [`LIMIT`]: [`Kernels::Avx2`].
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const LIMIT_AVX2: u8 = 1;
/// [`LIMIT`]: [`Kernels::AvxVnni`].
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const LIMIT_AVX_VNNI: u8 = 2;
/// [`LIMIT`]: [`Kernels::Neon`].
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
const LIMIT_NEON: u8 = 3;
/// [`LIMIT`]: [`Kernels::Sdot`].
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
const LIMIT_SDOT: u8 = 4;

/// The ceiling set by [`set_kernels`] below the best kernels (`LIMIT_*`).
static LIMIT: AtomicU8 = AtomicU8::new(LIMIT_AUTO);

/// The ceiling of [`set_kernels`], for the architecture modules.
#[cfg_attr(
    not(any(
        target_arch = "x86_64",
        all(
            target_arch = "aarch64",
            target_endian = "little",
            target_feature = "neon"
        ),
    )),
    allow(dead_code)
)]
pub(crate) fn limit() -> u8 {
    LIMIT.load(Ordering::Relaxed)
}

/// Restricts every later kernel call, on every thread, to `kernels`; refuses (changing
/// nothing) a set this architecture does not have or whose instructions this CPU lacks.
/// [`kernel_set`] then names what runs.
pub fn set_kernels(kernels: Kernels) -> Result<(), KernelsUnavailable> {
    let limit = match kernels {
        Kernels::Auto | Kernels::Generic => LIMIT_AUTO,
        named => arch_limit(named)?,
    };
    LIMIT.store(limit, Ordering::Relaxed);
    set_simd(kernels != Kernels::Generic);
    Ok(())
}

/// Why a named set is refused on an architecture that does not have it.
fn elsewhere(kernels: Kernels) -> KernelsUnavailable {
    KernelsUnavailable(match kernels {
        Kernels::Avx2 => "avx2 kernels exist only on x86_64",
        Kernels::AvxVnni => "avx-vnni kernels exist only on x86_64",
        Kernels::Neon => "neon kernels exist only on little-endian aarch64",
        Kernels::Sdot => "sdot kernels exist only on little-endian aarch64",
        Kernels::Auto | Kernels::Generic => "every build has these kernels",
    })
}

/// The [`LIMIT`] for a named SIMD set on x86_64, if this CPU has its instructions.
#[cfg(target_arch = "x86_64")]
fn arch_limit(kernels: Kernels) -> Result<u8, KernelsUnavailable> {
    match kernels {
        Kernels::Avx2 if !x86_64::cpu_has_avx2_fma_f16c() => {
            Err(KernelsUnavailable("this CPU lacks AVX2, FMA or F16C"))
        }
        Kernels::Avx2 => Ok(LIMIT_AVX2),
        Kernels::AvxVnni if !(x86_64::cpu_has_avx2_fma_f16c() && x86_64::cpu_has_avxvnni()) => {
            Err(KernelsUnavailable("this CPU lacks AVX-VNNI"))
        }
        Kernels::AvxVnni => Ok(LIMIT_AVX_VNNI),
        other => Err(elsewhere(other)),
    }
}

/// The [`LIMIT`] for a named SIMD set on little-endian aarch64, if this CPU has its
/// instructions.
#[cfg(all(
    target_arch = "aarch64",
    target_endian = "little",
    target_feature = "neon"
))]
fn arch_limit(kernels: Kernels) -> Result<u8, KernelsUnavailable> {
    match kernels {
        Kernels::Neon => Ok(LIMIT_NEON),
        Kernels::Sdot if !aarch64::cpu_has_dotprod() => Err(KernelsUnavailable(
            "this CPU lacks the dot-product extension (SDOT)",
        )),
        Kernels::Sdot => Ok(LIMIT_SDOT),
        other => Err(elsewhere(other)),
    }
}

/// Elsewhere no named SIMD set exists (Cortex-M picks its kernels at compile time).
#[cfg(not(any(
    target_arch = "x86_64",
    all(
        target_arch = "aarch64",
        target_endian = "little",
        target_feature = "neon"
    )
)))]
fn arch_limit(kernels: Kernels) -> Result<u8, KernelsUnavailable> {
    Err(elsewhere(kernels))
}

/// [`simd_enabled`], for the architecture modules.
#[cfg_attr(
    not(any(
        target_arch = "x86_64",
        trm_arm_dsp,
        all(
            target_arch = "aarch64",
            target_endian = "little",
            target_feature = "neon"
        )
    )),
    allow(dead_code)
)]
pub(crate) fn simd_allowed() -> bool {
    SIMD.load(Ordering::Relaxed)
}

#[cfg(target_arch = "x86_64")]
pub use x86_64::{dot_f16, dot_f32, kernel_set, matvec_f16, matvec_f32};
// Tile products: AVX2 on x86_64, NEON on aarch64, Cortex-M DSP (tile of 2: each vector by the
// dot kernels), the generic code elsewhere. The element-wise loops of a block: AVX2 on x86_64;
// elsewhere the generic code (written lane by lane, so aarch64's baseline NEON vectorises it as
// it is).
#[cfg(not(any(
    target_arch = "x86_64",
    trm_arm_dsp,
    all(
        target_arch = "aarch64",
        target_endian = "little",
        target_feature = "neon"
    )
)))]
pub use super::generic::{tile_f16, tile_f32};
#[cfg(not(target_arch = "x86_64"))]
pub use super::ops::{softmax, swiglu, swiglu_backward};
#[cfg(all(
    target_arch = "aarch64",
    target_endian = "little",
    target_feature = "neon"
))]
pub use aarch64::{tile_f16, tile_f32};
#[cfg(trm_arm_dsp)]
pub use cortex_m::{tile_f16, tile_f32};
#[cfg(target_arch = "x86_64")]
pub use x86_64::{softmax, swiglu, swiglu_backward, tile_f16, tile_f32};

#[cfg(all(
    target_arch = "aarch64",
    target_endian = "little",
    target_feature = "neon"
))]
pub use super::generic::{dot_f16, matvec_f16};
#[cfg(all(
    target_arch = "aarch64",
    target_endian = "little",
    target_feature = "neon"
))]
pub use aarch64::{dot_f32, kernel_set, matvec_f32};

#[cfg(all(trm_arm_dsp, not(trm_arm_fp16)))]
pub use super::generic::{dot_f16, matvec_f16};
#[cfg(trm_arm_dsp)]
pub use super::generic::{dot_f32, matvec_f32};
#[cfg(trm_arm_fp16)]
pub use cortex_m::{dot_f16, matvec_f16};
#[cfg(trm_arm_dsp)]
pub use cortex_m::{kernel_set, matvec_q8};

#[cfg(not(any(
    target_arch = "x86_64",
    trm_arm_dsp,
    all(
        target_arch = "aarch64",
        target_endian = "little",
        target_feature = "neon"
    ),
)))]
pub use super::generic::{dot_f16, dot_f32, matvec_f16, matvec_f32};

/// Name of the kernel set in use: always `"generic"` on this architecture.
#[cfg(not(any(
    target_arch = "x86_64",
    trm_arm_dsp,
    all(
        target_arch = "aarch64",
        target_endian = "little",
        target_feature = "neon"
    ),
)))]
pub fn kernel_set() -> &'static str {
    "generic"
}

pub use super::generic::dot;

// Integer-activation int8 products: x86_64 kernels chosen at run time, aarch64 SMMLA or SDOT
// chosen at run time, Cortex-M SMLAD, the portable specification elsewhere.
#[cfg(not(any(target_arch = "x86_64", trm_arm_dsp)))]
pub use super::q8::matvec_q8;
#[cfg(not(any(
    target_arch = "x86_64",
    trm_arm_dsp,
    all(
        target_arch = "aarch64",
        target_endian = "little",
        target_feature = "neon"
    )
)))]
pub use super::q8::{quantize_tile, tile_q8};
// Bytes per group of four columns of the quantised tile ([`super::TileShape::THIS`]):
// `SMLAD`'s 16-bit lanes on Cortex-M DSP, the `q8` layout elsewhere.
#[cfg(not(trm_arm_dsp))]
pub use super::q8::GROUP_BYTES as Q8_GROUP_BYTES;
#[cfg(all(
    target_arch = "aarch64",
    target_endian = "little",
    target_feature = "neon"
))]
pub use aarch64::{quantize_tile, tile_q8};
#[cfg(trm_arm_dsp)]
pub use cortex_m::{GROUP_BYTES as Q8_GROUP_BYTES, quantize_tile, tile_q8};
#[cfg(target_arch = "x86_64")]
pub use x86_64::{matvec_q8, quantize_tile, tile_q8};

/// `v` as its `4·v.len()` bytes, so that an f32 scratch buffer can hold quantised
/// activations.
pub fn f32_as_bytes_mut(v: &mut [f32]) -> &mut [u8] {
    // SAFETY: the bytes are those of `v`, borrowed mutably for the same lifetime (no alias);
    // `u8` needs no alignment and every bit pattern is valid both as `u8` and as `f32`, so
    // neither view can observe an invalid value; `size_of_val(v)` is the exact byte length.
    unsafe {
        core::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), core::mem::size_of_val(v))
    }
}
