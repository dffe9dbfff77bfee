//! The seam for SIMD: per-architecture dot products, chosen at compile time by
//! `cfg(target_feature)` (runtime detection needs `std`).
//!
//! `unsafe` lives only below this module. Each architecture module provides `dot_f32` and
//! `dot_i8` with the contract of [`super::generic`]; anything it does not provide falls back to
//! the generic kernel. Selection:
//! - x86_64 with `avx2` and `fma` enabled at build time (`-C target-cpu=native`, `x86-64-v3`):
//!   [`x86_64`] kernels;
//! - little-endian aarch64 (NEON is baseline): [`aarch64`] kernels;
//! - everything else (Cortex-M, baseline x86_64): the generic kernels.

#[cfg(all(
    target_arch = "aarch64",
    target_endian = "little",
    target_feature = "neon"
))]
pub mod aarch64;
#[cfg(target_arch = "x86_64")]
#[cfg_attr(
    not(all(target_feature = "avx2", target_feature = "fma")),
    allow(dead_code)
)]
pub mod x86_64;

#[cfg(all(
    target_arch = "aarch64",
    target_endian = "little",
    target_feature = "neon"
))]
pub use aarch64::{dot_f32, dot_i8};
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
pub use x86_64::{dot_f32, dot_i8};

#[cfg(not(any(
    all(
        target_arch = "aarch64",
        target_endian = "little",
        target_feature = "neon"
    ),
    all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ),
)))]
pub use super::generic::{dot_f32, dot_i8};

pub use super::generic::{dot, dot_f16};

/// Name of the kernel set this build uses (`"avx2+fma"`, `"neon"` or `"generic"`).
pub const fn kernel_set() -> &'static str {
    if cfg!(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    )) {
        "avx2+fma"
    } else if cfg!(all(
        target_arch = "aarch64",
        target_endian = "little",
        target_feature = "neon"
    )) {
        "neon"
    } else {
        "generic"
    }
}
