//! The static aarch64 (musl) build of `trm-solve`, run under `qemu-aarch64`, answers exactly
//! as the host build: byte-identical output with the scalar kernels (`--no-simd`, the same
//! arithmetic on both), identical answers with NEON against AVX2, and an exact model whose
//! JSON output is identical with SIMD on. Also runs trm-edge's unit tests for aarch64 under
//! `qemu-aarch64`: the NEON kernels against the scalar ones, the NEON tile products
//! bit-identical to AVX2's, and the `SMMLA` and `SDOT` int8 kernels bit-identical to the
//! integer specification (qemu's `-cpu max` has FEAT_I8MM and the dot-product extension).
//!
//! Run alone with `cargo test --workspace --release aarch64`. Needs the
//! `aarch64-unknown-linux-musl` target, `aarch64-linux-gnu-gcc` and `qemu-aarch64` (see
//! `.ci/run`); without them it prints SKIPPED, or fails under `CI=true`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use trm_edge::format::DType;

const TARGET: &str = "aarch64-unknown-linux-musl";

/// Why the cross build cannot run here, if it cannot.
fn missing_tools() -> Option<String> {
    for (tool, arg) in [
        ("qemu-aarch64", "--version"),
        ("aarch64-linux-gnu-gcc", "--version"),
    ] {
        if Command::new(tool).arg(arg).output().is_err() {
            return Some(format!("{tool} not found"));
        }
    }
    let Ok(o) = Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return Some("rustc not found".into());
    };
    let sysroot = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let lib = Path::new(&sysroot).join("lib/rustlib").join(TARGET);
    (!lib.is_dir()).then(|| format!("Rust target {TARGET} not installed ({})", lib.display()))
}

/// Builds the static aarch64 binary in its own target directory (no lock on the outer one).
fn build() -> PathBuf {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("aarch64-musl");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--release", "-p", "trm-solve", "--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        .output()
        .expect("run cargo");
    assert!(
        o.status.success(),
        "cross build failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    target_dir.join(TARGET).join("release/trm-solve")
}

/// Skips (or, under `CI=true`, fails) when the cross tools are missing; `true` when they are
/// there.
fn tools_or_skip(test: &str) -> bool {
    match missing_tools() {
        None => true,
        Some(why) => {
            trm_testkit::missing_input(&format!("{test}: {why} (see .ci/run)"));
            false
        }
    }
}

/// Runs the aarch64 binary under qemu-user (no `-L`: it must be static) and the host one.
fn both(aarch64: &Path, args: &[&str]) -> (Output, Output) {
    let arm = Command::new("qemu-aarch64")
        .arg(aarch64)
        .args(args)
        .output()
        .expect("run qemu-aarch64");
    let host = bin().args(args).output().expect("run host binary");
    for o in [&arm, &host] {
        assert_eq!(code(o), 0, "{args:?}: {}", stderr(o));
    }
    (arm, host)
}

/// trm-edge's unit tests, built for aarch64 and run under `qemu-aarch64` (the target's
/// `runner` in `.cargo/config.toml`): the NEON dot, matrix-vector and tile kernels against the
/// scalar ones, and the tile products' bits against the AVX2 kernels' hashes.
#[test]
fn trm_edge_unit_tests_pass_on_aarch64() {
    if !tools_or_skip("trm_edge_unit_tests_pass_on_aarch64") {
        return;
    }
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("aarch64-musl");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = Command::new(cargo)
        .current_dir(&root)
        .args([
            "test",
            "--release",
            "-p",
            "trm-edge",
            "--lib",
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .output()
        .expect("run cargo");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "trm-edge unit tests on aarch64 failed:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for test in [
        "neon_tiles_match_generic",
        "neon_matches_generic",
        "simd_tile_bits_are_the_same_on_x86_64_and_aarch64",
        "sdot_int8_tile_is_bit_identical_to_the_spec",
        "smmla_int8_tile_is_bit_identical_to_the_spec",
    ] {
        assert!(
            out.contains(&format!("{test} ... ok")),
            "{test} did not run:\n{out}"
        );
    }
}

#[test]
fn aarch64_musl_build_matches_x86_64() {
    if !tools_or_skip("aarch64_musl_build_matches_x86_64") {
        return;
    }
    let arm = build();
    let dir = temp_dir("aarch64");
    let random = write(&dir, "random.trm", random_model(7, DType::I8));
    let random_f32 = write(&dir, "random-f32.trm", random_model(8, DType::F32));
    let echo = write(&dir, "echo.trm", echo_model(-1.0));
    let mut text = pairs_file();
    text += &format!("{0},{0}\n", PAIRS[1].1);
    let input = write(&dir, "in.txt", text);
    let input = input.to_str().unwrap();
    for model in [&random, &random_f32] {
        let m = model.to_str().unwrap();
        // Scalar kernels on both sides: the same operations in the same order.
        for halt in ["full", "q"] {
            let args = [
                "--model",
                m,
                "--no-simd",
                "--format",
                "json",
                "--budget",
                "2",
            ];
            let (a, h) = both(&arm, &[&args[..], &["--halt", halt, input]].concat());
            assert_eq!(a.stdout, h.stdout, "--no-simd --halt {halt}, {m}");
            assert!(stderr(&a).contains("generic kernels"), "{}", stderr(&a));
        }
        // NEON against AVX2: other summation orders, the same answers.
        let (a, h) = both(&arm, &["--model", m, "--budget", "2", input]);
        assert_eq!(stdout(&a), stdout(&h), "NEON vs host SIMD answers, {m}");
        // "neon kernels", or "neon (int8 smmla) kernels" / "neon (int8 sdot) kernels" where
        // the CPU has the int8 matrix or dot products.
        assert!(
            stderr(&a).contains("(neon") && stderr(&a).contains(" kernels,"),
            "{}",
            stderr(&a)
        );
        // Capped at SDOT (no SMMLA, as on a Cortex-A78) and at plain NEON (no SDOT, as on a
        // Cortex-A72): the same bytes. `-cpu max` has both extensions.
        for (set, name) in [
            ("sdot", "(neon (int8 sdot) kernels,"),
            ("neon", "(neon kernels,"),
        ] {
            let capped = Command::new("qemu-aarch64")
                .args(["-cpu", "max"])
                .arg(&arm)
                .args(["--model", m, "--budget", "2", "--kernels", set, input])
                .output()
                .expect("run qemu-aarch64");
            assert_eq!(code(&capped), 0, "{}", stderr(&capped));
            assert_eq!(stdout(&capped), stdout(&h), "--kernels {set}, {m}");
            assert!(stderr(&capped).contains(name), "{}", stderr(&capped));
        }
    }
    // An exact model: every output byte agrees with SIMD on, and the full grid is solved.
    let args = ["--model", echo.to_str().unwrap(), "--format", "json"];
    let (a, h) = both(&arm, &[&args[..], &["--halt", "check", input]].concat());
    assert_eq!(a.stdout, h.stdout);
    assert!(stdout(&a).contains("\"correct\":true"));
}
