//! Sets `cfg(trm_arm_dsp)` on ARMv7E-M targets (`thumbv7em-*`: Cortex-M4, M7), whose DSP
//! extension (`SMLAD`, `SXTB16`) the int8 kernels of `kernels::arch::cortex_m` use, and
//! `cfg(trm_arm_fp16)` on their hard-float variants (`thumbv7em-none-eabihf`: FPv4-SP/FPv5,
//! whose `VCVTB.F32.F16` the f16 kernels use). Stable Rust has no `target_feature = "dsp"`
//! cfg, and the target name is what guarantees them.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(trm_arm_dsp)");
    println!("cargo::rustc-check-cfg=cfg(trm_arm_fp16)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    // The same test as `target_arena` in firmware/build.rs, which sizes the arena for the
    // tile this sets up: change both together.
    if target.starts_with("thumbv7em") {
        println!("cargo::rustc-cfg=trm_arm_dsp");
        if target.ends_with("eabihf") {
            println!("cargo::rustc-cfg=trm_arm_fp16");
        }
    }
}
