//! `--backend wgpu` against `--backend cpu` on the same f32 model: same answers, steps, stop
//! reasons and Sudoku checks. Built with `--features wgpu` and run with `TRM_TEST_WGPU=1`
//! (`.ci/run` does both, on lavapipe: software Vulkan); in CI a missing Vulkan device fails.

#![cfg(feature = "wgpu")]

mod common;

use common::*;
use trm_edge::format::DType;

/// The comparable fields of a JSON answer line (not `q_halt`'s last digits, not timing).
fn answers(out: &str) -> Vec<(String, u64, String, bool)> {
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            (
                v["answer"].as_str().expect("answer").to_string(),
                v["steps"].as_u64().expect("steps"),
                v["stop"].as_str().expect("stop").to_string(),
                v["valid"].as_bool().expect("valid"),
            )
        })
        .collect()
}

#[test]
fn wgpu_answers_match_the_cpu_path() {
    if std::env::var("TRM_TEST_WGPU").as_deref() != Ok("1") {
        eprintln!("SKIPPED: set TRM_TEST_WGPU=1 to solve on burn-wgpu");
        return;
    }
    let dir = temp_dir("gpu");
    let puzzles = write(&dir, "puzzles.txt", pairs_file());
    let cfg = official_config();
    let models = [
        (
            "random",
            write(&dir, "random.trm", random_model_with(&cfg, 3, DType::F32)),
        ),
        ("echo", write(&dir, "echo.trm", echo_model_with(&cfg, -1.0))),
    ];
    // Each wgpu run is a new process that compiles its kernels (about 20 s on lavapipe), so
    // the cases are few. Budgets stay short: an untrained random model is chaotic, and f32
    // rounding differences between the two paths grow along its recursion.
    let cases = [(0, "full", "2"), (0, "q+check", "3"), (1, "check", "2")];
    for (m, halt, budget) in cases {
        let (name, model) = &models[m];
        let solve = |backend: &str| {
            let o = run(&[
                "--model",
                model.to_str().expect("utf-8 path"),
                "--backend",
                backend,
                "--batch",
                "3",
                "--budget",
                budget,
                "--halt",
                halt,
                "--format",
                "json",
                puzzles.to_str().expect("utf-8 path"),
            ]);
            assert_eq!(code(&o), 0, "{backend}: {}", stderr(&o));
            answers(&stdout(&o))
        };
        let (cpu, gpu) = (solve("cpu"), solve("wgpu"));
        assert_eq!(cpu.len(), PAIRS.len());
        assert_eq!(cpu, gpu, "model {name}, --halt {halt}, --budget {budget}");
    }
}
