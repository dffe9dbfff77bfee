//! The replayed figures are what the live multi-attempt solver returns, and the `sweep` /
//! `report` commands work end to end (on tiny packed models).

use std::path::Path;
use std::process::Command;

use trm_edge::format::{DType, Model, ModelConfig};
use trm_edge::solver::attempts::{AttemptOptions, AttemptSolver, AttemptSource, Selection};
use trm_edge::solver::{HaltPolicy, SolveOptions, Solver};
use trm_edge::sudoku::parse;
use trm_scaling::{BASELINE, is_exact, mixed_records, outcomes, replay, run_sources};
use trm_testkit::models;

const PUZZLE: &str =
    "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";
const SOLUTION: &str =
    "534678912672195348198342567859761423426853791713924856961537284287419635345286179";

/// The small test configuration with one L-cycle and three supervision steps.
fn config() -> ModelConfig {
    ModelConfig {
        l_cycles: 1,
        halt_max_steps: 3,
        ..models::small_config()
    }
}

/// Random weights (xorshift from `seed`); `echo` instead answers the input (one-hot
/// embeddings, identity LM head, zero blocks): solved grids come back valid.
fn model(seed: u64, echo: bool) -> Vec<u8> {
    if echo {
        models::echo_model(&config(), 0.0)
    } else {
        models::random_model(&config(), seed, DType::F32, None)
    }
}

#[test]
fn replay_equals_the_live_solver() {
    let (p, s) = (parse(PUZZLE).unwrap(), parse(SOLUTION).unwrap());
    for (bytes, puzzle) in [
        (model(1, false), p),
        (model(2, false), s),
        (model(3, true), s),
    ] {
        let m = Model::from_bytes(&bytes).unwrap();
        let base = AttemptOptions {
            seed: 5,
            ..AttemptOptions::new(&m, 1, AttemptSource::Aug, Selection::ALL[0])
        };
        let mut arena = vec![0f32; AttemptSolver::arena_len(&m, AttemptSource::Mixed)];
        let runs = run_sources(&m, &mut arena, &puzzle, &base, 4).unwrap();
        let mixed = mixed_records(&runs[0], &runs[1], &runs[2], 4).unwrap();
        for source in AttemptSource::ALL {
            let recs = match source {
                AttemptSource::Aug => &runs[0],
                AttemptSource::Noise => &runs[1],
                AttemptSource::Steps => &runs[2],
                AttemptSource::Mixed => &mixed,
            };
            for rule in Selection::ALL {
                for k in 1..=4 {
                    let opts = AttemptOptions {
                        attempts: k,
                        source,
                        select: rule,
                        total_budget: 3 * k,
                        ..base
                    };
                    let live = AttemptSolver::new(&m, &mut arena)
                        .unwrap()
                        .solve(&puzzle, &opts)
                        .unwrap();
                    let replayed = replay(recs, rule, k, &puzzle).unwrap();
                    assert_eq!(live, replayed, "{source:?} {rule:?} K={k}");
                }
            }
        }
        // The baseline is the single run given K·N steps.
        let table = outcomes(&runs, &[1, 2, 4], &puzzle, None).unwrap();
        let mut single = vec![0f32; Solver::arena_len(&m)];
        for (i, k) in [1, 2, 4].into_iter().enumerate() {
            let long = Solver::new(&m, &mut single)
                .unwrap()
                .solve(
                    &puzzle,
                    &SolveOptions {
                        budget: 3 * k,
                        policy: HaltPolicy::Full,
                        puzzle_id: 0,
                    },
                )
                .unwrap();
            let o = table[BASELINE][i];
            assert_eq!(o.steps, 3 * k);
            assert_eq!(o.exact, is_exact(&puzzle, None, &long.grid));
        }
        assert_eq!(table.len(), 13);
    }
}

fn scaling() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trm-scaling"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn sweep_report_and_resume() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaling_sweep");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let m = dir.join("echo.trm");
    std::fs::write(&m, model(3, true)).unwrap();
    // Four solved grids (the echo model answers them at once) and two open puzzles.
    let data = dir.join("set.txt");
    let lines = format!("{SOLUTION}\n{PUZZLE},{SOLUTION}\n").repeat(3);
    std::fs::write(&data, lines).unwrap();
    let out = dir.join("out");
    let sweep = |extra: &[&str]| {
        scaling()
            .args(["sweep", "--model", m.to_str().unwrap(), "--ks", "1,2"])
            .arg("--set")
            .arg(format!("a={}:1-4", data.display()))
            .arg("--set")
            .arg(format!("b={}", data.display()))
            .args(["--out", out.to_str().unwrap(), "--threads", "2"])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = sweep(&[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let md = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(md.contains("**a** (4 puzzles;"), "{md}");
    assert!(md.contains("**b** (6 puzzles;"), "{md}");
    // Half of each set is a solved grid: check finds it at step 1, the rest fail.
    assert!(
        md.contains("| aug / check | 50.0 / 2.0 | 50.0 / 3.5 |"),
        "{md}"
    );
    assert!(
        md.contains(
            "| single run, K·N steps (answer at the last step) | 50.0 / 3.0 | 50.0 / 6.0 |"
        ),
        "{md}"
    );
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 13 * 2);
    assert!(
        std::fs::metadata(out.join("accuracy_vs_compute.png"))
            .unwrap()
            .len()
            > 1000
    );
    let jsonl = std::fs::read_to_string(out.join("outcomes.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 10);

    let again = sweep(&[]);
    assert!(again.status.success());
    assert!(text(&again.stderr).contains("resuming: 10 puzzles already measured"));
    assert_eq!(
        std::fs::read_to_string(out.join("outcomes.jsonl")).unwrap(),
        jsonl
    );
    let other = sweep(&["--seed", "9"]);
    assert_eq!(other.status.code(), Some(2));
    assert!(
        text(&other.stderr).contains("other settings"),
        "{}",
        text(&other.stderr)
    );
    let r = scaling()
        .args(["report", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(r.status.success());
    assert_eq!(std::fs::read_to_string(out.join("table.md")).unwrap(), md);
}

#[test]
fn bad_settings_and_sets_are_refused_before_anything_is_written() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaling_refused");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("a@b")).unwrap();
    let m = dir.join("echo.trm");
    std::fs::write(&m, model(3, true)).unwrap();
    let two = dir.join("a@b/two.txt");
    std::fs::write(&two, format!("{PUZZLE}\n{PUZZLE},{SOLUTION}\n")).unwrap();
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "# nothing\n\n").unwrap();
    let out = dir.join("out");
    let sweep = |sets: &[String], extra: &[&str]| {
        let mut c = scaling();
        c.args(["sweep", "--model", m.to_str().unwrap(), "--ks", "1"]);
        for s in sets {
            c.arg("--set").arg(s);
        }
        c.args(["--out", out.to_str().unwrap()]).args(extra);
        c.output().unwrap()
    };
    let t = two.display();
    for (sets, extra, why) in [
        (vec![format!("a={t}")], &["--budget", "0"][..], "--budget"),
        (vec![format!("a={t}")], &["--noise", "NaN"][..], "--noise"),
        (vec![format!("a={t}")], &["--count", "0"][..], "--count"),
        (vec![format!("a={t}@0")], &[][..], "need a number >= 1"),
        (
            vec![format!("a={t}:100-200")],
            &[][..],
            "no puzzles in lines 100-200",
        ),
        (
            vec![format!("a={}", empty.display())],
            &[][..],
            "no puzzles in",
        ),
        (
            vec![format!("a={t}"), format!("a={t}")],
            &[][..],
            "two sets are named",
        ),
    ] {
        let o = sweep(&sets, extra);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{sets:?} {extra:?}: {err}");
        assert!(err.contains(why), "{sets:?} {extra:?}: {err}");
        assert!(!out.exists(), "{sets:?} {extra:?} wrote {}", out.display());
    }
    // The fixed command then runs, with a path holding `@`.
    let o = sweep(&[format!("a={t}@1")], &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("a: 1 puzzles to measure"));
    // A folder without a sweep is named.
    let r = scaling()
        .args(["report", "--out", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(
        text(&r.stderr).contains("holds no sweep"),
        "{}",
        text(&r.stderr)
    );
}
