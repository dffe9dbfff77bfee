//! Sets `cfg(trm_arm_dsp)` on ARMv7E-M targets (`thumbv7em-*`: Cortex-M4, M7), whose DSP
//! extension (`SMLAD`, `SXTB16`) the int8 kernels of `kernels::arch::cortex_m` use. Stable
//! Rust has no `target_feature = "dsp"` cfg, and the target name is what guarantees it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(trm_arm_dsp)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em") {
        println!("cargo::rustc-cfg=trm_arm_dsp");
    }
}
