//! End-to-end tests of the `trm-solve` binary on small packed models.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use serde_json::Value;
use trm_edge::format::DType;

/// Parses JSON-lines output.
fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

#[test]
fn bad_lines_are_reported_and_the_rest_solved() {
    let dir = temp_dir("bad_lines");
    let model = write(&dir, "m.trm", random_model(1, DType::I8));
    let (q, a) = PAIRS[0];
    let conflict = format!("11{}", &q[2..]);
    let text = format!(
        "{q}\n{}\n\n{q},{a}\n{}x\n{conflict}\n{q},{}\n{}\n",
        &q[..80],
        &q[..80],
        PAIRS[1].1,
        PAIRS[2].0
    );
    let input = write(&dir, "in.txt", &text);
    let args = ["--model", model.to_str().unwrap(), input.to_str().unwrap()];
    let o = run(&args);
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "{err}");
    for (line, what) in [
        (2, "expected 81 characters, found 80"),
        (5, "bad character 'x'"),
        (6, "conflicting givens"),
        (7, "solution does not solve the puzzle"),
    ] {
        assert!(err.contains(&format!("line {line}: ")), "{err}");
        assert!(err.contains(what), "{what}: {err}");
    }
    assert!(
        err.contains("puzzles: 3\n") && err.contains("bad lines: 4"),
        "{err}"
    );
    assert_eq!(stdout(&o).lines().count(), 3);
    let j = run(&[&args[..2], &["--format", "json"], &args[2..]].concat());
    let lines: Vec<u64> = json_lines(&stdout(&j))
        .iter()
        .map(|v| v["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [1, 4, 8]);

    let strict = run(&[&args[..], &["--strict"]].concat());
    let err = stderr(&strict);
    assert_eq!(code(&strict), 1);
    assert!(
        err.contains("line 2: ") && !err.contains("line 5: "),
        "{err}"
    );
    assert!(strict.stdout.is_empty());
}

/// An input without a puzzle (empty, blank or `#` lines only) is an error with exit code 1, as
/// in `trm-train data check`, from a file and from stdin; nothing is written to stdout.
#[test]
fn an_input_without_puzzles_is_an_error_and_non_utf8_lines_are_bad_lines() {
    let dir = temp_dir("no_puzzles");
    let model = write(&dir, "m.trm", random_model(1, DType::I8));
    let m = model.to_str().unwrap();
    for (name, text) in [
        ("empty.txt", ""),
        ("comments.txt", "# only a comment\n\n  \n"),
    ] {
        let file = write(&dir, name, text);
        let o = run(&["--model", m, file.to_str().unwrap()]);
        assert_eq!(code(&o), 1, "{name}: {}", stderr(&o));
        assert!(o.stdout.is_empty());
        assert!(
            stderr(&o).contains(&format!("{name}: the input holds no puzzle")),
            "{}",
            stderr(&o)
        );
        let mut cmd = bin();
        cmd.args(["--model", m, "-"]);
        let o = run_with(cmd, text.as_bytes());
        assert_eq!(code(&o), 1, "stdin {name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("stdin: the input holds no puzzle"),
            "{}",
            stderr(&o)
        );
    }
    // Bytes that are not UTF-8 make their line a bad line, named as such; the rest is solved.
    let mut bytes = format!("{}\n", PAIRS[0].0).into_bytes();
    bytes.extend(b"\xff\xfe53..7\n");
    let file = write(&dir, "latin1.txt", bytes);
    let o = run(&["--model", m, "--budget", "1", file.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("line 2: not UTF-8 text"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o).lines().count(), 1);
}

#[test]
fn output_formats_agree() {
    let dir = temp_dir("formats");
    let model = write(&dir, "m.trm", random_model(2, DType::F16));
    let text = format!("{}{}\n", pairs_file(), PAIRS[0].0);
    let input = write(&dir, "in.txt", text);
    let base = ["--model", model.to_str().unwrap(), input.to_str().unwrap()];
    let fmt = |f: &str| {
        let o = run(&[&base[..], &["--format", f]].concat());
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        stdout(&o)
    };
    let text = fmt("text");
    let json = json_lines(&fmt("json"));
    let csv = fmt("csv");
    assert_eq!(json.len(), 6);
    let mut csv_lines = csv.lines();
    assert_eq!(
        csv_lines.next(),
        Some("line,puzzle,answer,steps,stop,q_halt,valid,correct,solutions")
    );
    for ((t, j), c) in text.lines().zip(&json).zip(csv_lines) {
        let answer = j["answer"].as_str().unwrap();
        assert_eq!(t, answer);
        assert_eq!(t.len(), 81);
        let line = j["line"].as_u64().unwrap() as usize;
        let solution = PAIRS.get(line - 1).map(|p| p.1);
        assert_eq!(j["puzzle"].as_str(), Some(PAIRS[(line - 1) % 5].0));
        assert_eq!(j["correct"].as_bool(), solution.map(|s| s == answer));
        assert_eq!(j["steps"].as_u64(), Some(4));
        assert_eq!(j["stop"].as_str(), Some("budget"));
        // Counted by the exact solver only when the file gives no solution.
        let solutions = solution.map_or(Some(1), |_| None);
        assert_eq!(j["solutions"].as_u64(), solutions);
        let row = format!(
            "{line},{},{answer},4,budget,{},{},{},{}",
            j["puzzle"].as_str().unwrap(),
            j["q_halt"].as_f64().unwrap() as f32,
            j["valid"].as_bool().unwrap(),
            solution.map_or(String::new(), |s| (s == answer).to_string()),
            solutions.map_or(String::new(), |n| n.to_string())
        );
        assert_eq!(c, row);
    }
}

#[test]
fn echo_model_exact_correct_and_halting() {
    let dir = temp_dir("echo");
    let halting = write(&dir, "halt.trm", echo_model(1.0));
    let running = write(&dir, "run.trm", echo_model(-1.0));
    // Solved grids as puzzles (the echo model returns them: valid and correct), then a
    // partial puzzle (answered with blanks: invalid, incorrect).
    let mut text: String = PAIRS.iter().map(|(_, a)| format!("{a},{a}\n")).collect();
    text += &format!("{},{}\n", PAIRS[0].0, PAIRS[0].1);
    let input = write(&dir, "in.txt", &text);
    let solve = |model: &std::path::Path, halt: &str| {
        let o = run(&[
            "--model",
            model.to_str().unwrap(),
            "--halt",
            halt,
            "--format",
            "json",
            "--budget",
            "3",
            input.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        (json_lines(&stdout(&o)), stderr(&o))
    };
    // (model, policy, [steps, stop] of a full grid, of the partial puzzle)
    let cases = [
        (&running, "full", (3, "budget"), (3, "budget")),
        (&running, "q", (3, "budget"), (3, "budget")),
        (&halting, "q", (1, "q_halt"), (1, "q_halt")),
        (&running, "check", (1, "solved"), (3, "budget")),
        (&halting, "q+check", (1, "solved"), (1, "q_halt")),
    ];
    for (model, halt, full, partial) in cases {
        let (rows, err) = solve(model, halt);
        assert!(
            err.contains("exact: 83.33% (5 of 6; against the file's solutions)"),
            "{err}"
        );
        assert!(err.contains("valid answers: 5 (83.33%)"), "{err}");
        for (i, r) in rows.iter().enumerate() {
            let (steps, stop) = if i < 5 { full } else { partial };
            assert_eq!(r["steps"].as_u64(), Some(steps), "{halt} row {i}");
            assert_eq!(r["stop"].as_str(), Some(stop), "{halt} row {i}");
            assert_eq!(r["valid"].as_bool(), Some(i < 5));
            assert_eq!(r["correct"].as_bool(), Some(i < 5));
            assert_eq!(r["answer"], r["puzzle"]);
        }
    }
    // Without solutions, "exact" counts answers passing the Sudoku check.
    let plain: String = PAIRS.iter().map(|(q, a)| format!("{a}\n{q}\n")).collect();
    let o = run_with(
        {
            let mut c = bin();
            c.args(["--model", running.to_str().unwrap()]);
            c
        },
        plain.as_bytes(),
    );
    let err = stderr(&o);
    assert!(
        err.contains("exact: 50.00% (5 of 10; answers passing the Sudoku check"),
        "{err}"
    );
}

#[test]
fn stdin_matches_file_input() {
    let dir = temp_dir("stdin");
    let model = write(&dir, "m.trm", random_model(3, DType::I8));
    let input = write(&dir, "in.txt", pairs_file());
    let m = ["--model", model.to_str().unwrap(), "--format", "json"];
    let from_file = run(&[&m[..], &[input.to_str().unwrap()]].concat());
    assert_eq!(code(&from_file), 0, "{}", stderr(&from_file));
    for dash in [&["-"][..], &[]] {
        let mut c = bin();
        c.args(m).args(dash);
        let o = run_with(c, pairs_file().as_bytes());
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(o.stdout, from_file.stdout);
    }
}

#[test]
fn all_halting_policies_run_on_a_random_model() {
    let dir = temp_dir("policies");
    let model = write(&dir, "m.trm", random_model(4, DType::F32));
    let input = write(&dir, "in.txt", pairs_file());
    for halt in ["full", "q", "check", "q+check"] {
        let o = run(&[
            "--model",
            model.to_str().unwrap(),
            "--halt",
            halt,
            "--budget",
            "6",
            "--format",
            "json",
            input.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let err = stderr(&o);
        for key in ["puzzles: 5", "valid answers: ", "exact: ", "mean steps: "] {
            assert!(err.contains(key), "{key}: {err}");
        }
        for key in ["puzzles/s: ", "latency p50: ", "latency p99: "] {
            assert!(err.contains(key), "{key}: {err}");
        }
        for r in json_lines(&stdout(&o)) {
            let steps = r["steps"].as_u64().unwrap();
            let q = r["q_halt"].as_f64().unwrap();
            let stop = r["stop"].as_str().unwrap();
            assert!((1..=6).contains(&steps));
            match (halt, stop) {
                ("full", "budget") => assert_eq!(steps, 6),
                ("q" | "q+check", "q_halt") => assert!(q > 0.0),
                ("q" | "q+check", "budget") => assert!(q <= 0.0 && steps == 6),
                ("check" | "q+check", "solved") => assert_eq!(r["valid"], true),
                ("check", "budget") => assert_eq!(steps, 6),
                _ => panic!("{halt}: unexpected stop {stop}"),
            }
        }
    }
}

#[test]
fn threads_do_not_change_the_output() {
    let dir = temp_dir("threads");
    let model = write(&dir, "m.trm", random_model(5, DType::I8));
    let text: String = (0..40).map(|i| format!("{}\n", PAIRS[i % 5].0)).collect();
    let input = write(&dir, "in.txt", text);
    let out = |threads: &str| {
        let o = run(&[
            "--model",
            model.to_str().unwrap(),
            "--threads",
            threads,
            "--halt",
            "q",
            "--format",
            "json",
            input.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        o.stdout
    };
    let one = out("1");
    assert_eq!(one, out("2"));
    assert_eq!(one.iter().filter(|&&b| b == b'\n').count(), 40);
}

/// int8 answers do not depend on the kernels (the integer sums are exact): every kernel set
/// this machine can run gives the same bytes as the scalar kernels, the summary names the set,
/// and a set the architecture or CPU lacks is refused with exit code 2 and the reason.
#[test]
fn int8_answers_are_the_same_with_every_kernel_set() {
    let dir = temp_dir("kernels");
    let model = write(&dir, "m.trm", random_model(6, DType::I8));
    let text: String = (0..10).map(|i| format!("{}\n", PAIRS[i % 5].0)).collect();
    let input = write(&dir, "in.txt", text);
    let solve = |extra: &[&str]| {
        let mut args = std::vec![
            "--model",
            model.to_str().unwrap(),
            "--budget",
            "3",
            "--halt",
            "full",
            "--format",
            "json",
            input.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let generic = solve(&["--no-simd"]);
    assert_eq!(code(&generic), 0, "{}", stderr(&generic));
    assert!(
        stderr(&generic).contains("(generic kernels"),
        "{}",
        stderr(&generic)
    );
    let mut ran = 0;
    for set in ["auto", "generic", "avx2", "avx-vnni", "neon", "sdot"] {
        let o = solve(&["--kernels", set]);
        if code(&o) == 0 {
            assert_eq!(o.stdout, generic.stdout, "--kernels {set}");
            ran += 1;
            if set == "avx2" {
                let e = stderr(&o);
                assert!(e.contains("int8 avx2") && !e.contains("avx512"), "{e}");
            }
        } else {
            assert_eq!(code(&o), 2, "--kernels {set}: {}", stderr(&o));
            let e = stderr(&o);
            assert!(e.contains(&format!("--kernels {set}: ")), "{e}");
            assert!(e.contains("lacks") || e.contains("exist only on"), "{e}");
        }
    }
    // auto and generic run everywhere; x86_64 adds avx2 (CI's machines have it), aarch64 neon.
    let expected = if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        3
    } else {
        2
    };
    assert!(ran >= expected, "only {ran} kernel sets ran");
    let o = solve(&["--kernels", "sse"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("expected one of auto generic avx2 avx-vnni neon sdot"),
        "{}",
        stderr(&o)
    );
    let o = solve(&["--kernels", "avx2", "--no-simd"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn sudoku_extreme_csv() {
    let dir = temp_dir("csv");
    let model = write(&dir, "m.trm", echo_model(-1.0));
    let mut text = String::from("source,question,answer,rating\n");
    for (i, (q, a)) in PAIRS.iter().enumerate() {
        text += &format!("set{i},{q},{a},{i}\n");
    }
    text += &format!("solved,{0},{0},0\nshort,{1},x\n", PAIRS[0].1, PAIRS[0].0);
    let input = write(&dir, "extreme.csv", &text);
    let m = ["--model", model.to_str().unwrap(), "--format", "json"];
    for forced in [&[][..], &["--input-format", "csv"]] {
        let o = run(&[&m[..], forced, &[input.to_str().unwrap()]].concat());
        let err = stderr(&o);
        assert_eq!(code(&o), 1, "{err}");
        assert!(
            err.contains("line 8: expected 4 fields (source,question,answer,rating), found 3"),
            "{err}"
        );
        let rows = json_lines(&stdout(&o));
        let lines: Vec<u64> = rows.iter().map(|r| r["line"].as_u64().unwrap()).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7]);
        assert_eq!(rows[0]["puzzle"].as_str(), Some(PAIRS[0].0));
        assert_eq!(rows[5]["correct"], true);
        assert!(
            err.contains("exact: 16.67% (1 of 6; against the file's solutions)"),
            "{err}"
        );
    }
    // Forced the other way, the header is a bad line.
    let o = run(&[
        &m[..],
        &["--input-format", "lines", input.to_str().unwrap()],
    ]
    .concat());
    assert!(stderr(&o).contains("line 1: "), "{}", stderr(&o));
    // A plain list forced as CSV lacks the header.
    let plain = write(&dir, "plain.txt", pairs_file());
    let o = run(&[&m[..], &["--input-format", "csv", plain.to_str().unwrap()]].concat());
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("line 1: expected the header \"source,question,answer,rating\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn model_errors_name_the_file() {
    let dir = temp_dir("model_errors");
    let mut bytes = random_model(6, DType::I8);
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    let corrupt = write(&dir, "corrupt.trm", bytes);
    let input = write(&dir, "in.txt", pairs_file());
    let o = run(&[
        "--model",
        corrupt.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{err}");
    assert!(
        err.contains("corrupt.trm") && err.contains("CRC-32"),
        "{err}"
    );

    let not_model = write(&dir, "notes.txt", "hello, this is not a model");
    let o = run(&[
        "--model",
        not_model.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("notes.txt"), "{}", stderr(&o));

    let o = run(&["--model", "/nonexistent/m.trm", input.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("/nonexistent/m.trm"));

    // No --model and no models/sudoku-int8.trm in the working directory.
    let mut c = bin();
    c.current_dir(&dir).arg(&input);
    let o = run_with(c, b"");
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("pass --model"), "{}", stderr(&o));
    // ... and with one there, it is used.
    std::fs::create_dir_all(dir.join("models")).unwrap();
    write(&dir, "models/sudoku-int8.trm", echo_model(1.0));
    let mut c = bin();
    c.current_dir(&dir).arg(&input);
    assert_eq!(code(&run_with(c, b"")), 0);

    let o = run(&["--budget", "0", input.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "usage error");
}

#[test]
fn attempts_mode_spends_at_most_the_total_budget() {
    let dir = temp_dir("attempts");
    let model = write(&dir, "m.trm", random_model(7, DType::I8));
    let input = write(&dir, "in.txt", pairs_file());
    let m = model.to_str().unwrap();
    let solve = |extra: &[&str]| {
        let o = run(&[
            &["--model", m, "--format", "json", "--attempts", "3"][..],
            extra,
            &[input.to_str().unwrap()],
        ]
        .concat());
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        (json_lines(&stdout(&o)), stderr(&o), o.stdout)
    };
    for source in ["aug", "noise", "steps", "mixed"] {
        for select in ["check", "q", "vote"] {
            let args = ["--attempt-source", source, "--select", select];
            let (rows, err, raw) = solve(&args);
            assert_eq!(rows.len(), 5);
            let mut total = 0;
            for r in &rows {
                let steps = r["steps"].as_u64().unwrap();
                total += steps;
                let pick = r["pick"].as_str().unwrap();
                assert!(steps <= 12, "{source} {select}: {steps}");
                assert!((1..=3).contains(&r["attempts"].as_u64().unwrap()));
                match select {
                    "check" => assert!(["check", "q", "vote"].contains(&pick)),
                    _ => {
                        assert_eq!(pick, select);
                        assert_eq!(steps, 12);
                        assert_eq!(r["attempts"].as_u64(), Some(3));
                    }
                }
                assert_eq!(r["attempt"].is_null(), pick == "vote");
                assert_eq!(
                    r["stop"].as_str(),
                    Some(if pick == "check" { "solved" } else { "budget" })
                );
            }
            let mean = format!(
                "total supervision steps per puzzle: mean {:.2}",
                total as f64 / 5.0
            );
            assert!(err.contains(&mean), "{mean}: {err}");
            assert!(
                err.contains(&format!("3 attempts from {source}, select {select}")),
                "{err}"
            );
            // Deterministic for a seed, whatever the threads; another seed draws other attempts.
            let (_, _, again) = solve(&[&args[..], &["--threads", "1"]].concat());
            assert_eq!(raw, again, "{source} {select}");
        }
    }
    let q_of = |seed: &str| {
        let (rows, ..) = solve(&[
            "--attempt-source",
            "aug",
            "--select",
            "vote",
            "--seed",
            seed,
        ]);
        rows.iter()
            .map(|r| r["answer"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_ne!(q_of("1"), q_of("2"));
    // A total budget below attempts × budget cuts the attempts short.
    let (rows, err, _) = solve(&["--select", "q", "--total-budget", "6"]);
    for r in &rows {
        assert_eq!(
            (r["steps"].as_u64(), r["attempts"].as_u64()),
            (Some(6), Some(2))
        );
    }
    assert!(err.contains("max 6"), "{err}");
    // CSV gains the attempt columns.
    let o = run(&[
        "--model",
        m,
        "--format",
        "csv",
        "--attempts",
        "2",
        input.to_str().unwrap(),
    ]);
    assert_eq!(
        stdout(&o).lines().next(),
        Some("line,puzzle,answer,steps,stop,q_halt,valid,correct,solutions,attempts,pick,attempt")
    );
}

#[test]
fn attempts_check_stops_early_and_one_attempt_is_the_single_run() {
    let dir = temp_dir("attempts_echo");
    let model = write(&dir, "echo.trm", echo_model(-1.0));
    // Solved grids come back valid at the first step of attempt 0; the partial puzzle never.
    let mut text: String = PAIRS.iter().map(|(_, a)| format!("{a},{a}\n")).collect();
    text += &format!("{},{}\n", PAIRS[0].0, PAIRS[0].1);
    let input = write(&dir, "in.txt", &text);
    let m = model.to_str().unwrap();
    let o = run(&[
        "--model",
        m,
        "--format",
        "json",
        "--attempts",
        "4",
        "--attempt-source",
        "mixed",
        input.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    let rows = json_lines(&stdout(&o));
    for r in &rows[..5] {
        assert_eq!(
            (r["steps"].as_u64(), r["attempts"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(
            (r["pick"].as_str(), r["attempt"].as_u64()),
            (Some("check"), Some(0))
        );
        assert_eq!(r["correct"], true);
    }
    // No valid answer, and the vote (the puzzle itself) is not valid: the highest q_halt.
    assert_eq!(rows[5]["steps"].as_u64(), Some(16));
    assert_eq!(rows[5]["pick"].as_str(), Some("q"));
    assert_eq!(rows[5]["answer"].as_str(), Some(PAIRS[0].0));
    assert!(
        err.contains("total supervision steps per puzzle: mean 3.50, max 16"),
        "{err}"
    );
    assert!(err.contains("picked by: check 5, q 1, vote 0"), "{err}");

    // One attempt is the single run (--select q: all its steps; check: the check policy).
    let random = write(&dir, "r.trm", random_model(8, DType::F16));
    let pairs = write(&dir, "pairs.txt", pairs_file());
    let text_out = |args: &[&str]| {
        let o = run(&[
            &["--model", random.to_str().unwrap()][..],
            args,
            &[pairs.to_str().unwrap()],
        ]
        .concat());
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        o.stdout
    };
    assert_eq!(
        text_out(&["--attempts", "1", "--select", "q"]),
        text_out(&[])
    );
    assert_eq!(
        text_out(&["--attempts", "1", "--select", "check", "--budget", "3"]),
        text_out(&["--halt", "check", "--budget", "3"])
    );

    // Usage errors.
    let p = pairs.to_str().unwrap();
    let r = random.to_str().unwrap();
    for bad in [
        &["--select", "q"][..],
        &["--attempts", "0"],
        &["--attempts", "2", "--halt", "q"],
        &["--attempts", "2", "--noise", "-1"],
        &["--attempts", "2", "--attempt-source", "dice"],
    ] {
        let o = run(&[&["--model", r][..], bad, &[p]].concat());
        assert_eq!(code(&o), 2, "{bad:?}: {}", stderr(&o));
    }
}

/// Supervision steps per puzzle that make the small test model take tens of milliseconds a
/// puzzle (a step takes about 0.2-0.4 ms here).
const SLOW_BUDGET: &str = "150";

/// `n` puzzles cycling through [`PAIRS`] (no solutions), and the answer of each of the five
/// with `args` (the same for every copy: the output is deterministic).
fn slow_input(
    dir: &std::path::Path,
    model: &str,
    n: usize,
    args: &[&str],
) -> (String, Vec<String>) {
    let five = write(
        dir,
        "five.txt",
        PAIRS.map(|p| format!("{}\n", p.0)).concat(),
    );
    let o = run(&[&["--model", model][..], args, &[five.to_str().unwrap()]].concat());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let answers: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(answers.len(), 5);
    let text = (0..n).map(|i| format!("{}\n", PAIRS[i % 5].0)).collect();
    (text, answers)
}

#[test]
fn answers_stream_before_the_run_ends() {
    let dir = temp_dir("stream");
    let model = write(&dir, "m.trm", random_model(10, DType::I8));
    let m = model.to_str().unwrap();
    let args = ["--budget", SLOW_BUDGET, "--threads", "1"];
    let (text, answers) = slow_input(&dir, m, 200, &args);
    let input = write(&dir, "in.txt", text);
    let mut child = bin()
        .args(["--model", m])
        .args(args)
        .arg(&input)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.expect("read stdout")).is_err() {
                break;
            }
        }
    });
    // The first answer comes while the other 199 puzzles are still to do; killed then, the
    // process has written some answers, not all (before streaming: none until the end).
    let first = rx.recv_timeout(Duration::from_secs(300));
    child.kill().expect("kill");
    child.wait().expect("wait");
    reader.join().expect("reader");
    let lines: Vec<String> = first.into_iter().chain(rx.try_iter()).collect();
    assert!(!lines.is_empty(), "no answer before the timeout");
    assert!(
        lines.len() < 200,
        "all {} answers came at once",
        lines.len()
    );
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l, &answers[i % 5], "answer {i}");
    }
}

#[test]
fn time_limit_writes_the_finished_answers_and_exits_3() {
    let dir = temp_dir("time_limit");
    let model = write(&dir, "m.trm", random_model(11, DType::I8));
    let m = model.to_str().unwrap();
    let (text, answers) = slow_input(&dir, m, 400, &["--budget", SLOW_BUDGET]);
    let input = write(&dir, "in.txt", text);
    let o = run(&[
        "--model",
        m,
        "--budget",
        SLOW_BUDGET,
        "--format",
        "json",
        "--time-limit",
        "1.5",
        input.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(code(&o), 3, "{err}");
    // The answers written are those of the first k puzzles, in order.
    let rows = json_lines(&stdout(&o));
    let k = rows.len();
    assert!(0 < k && k < 400, "{k} answers: {err}");
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["line"].as_u64(), Some(i as u64 + 1));
        assert_eq!(
            r["answer"].as_str(),
            Some(answers[i % 5].as_str()),
            "row {i}"
        );
    }
    assert!(err.contains(&format!("puzzles: {k}\n")), "{err}");
    assert!(
        err.contains(&format!(
            "not attempted (--time-limit reached): {}\n",
            400 - k
        )),
        "{err}"
    );
    // A limit that is not reached changes nothing.
    let pairs = write(&dir, "pairs.txt", pairs_file());
    let plain = ["--model", m, pairs.to_str().unwrap()];
    let limited = run(&[&plain[..], &["--time-limit", "600"]].concat());
    assert_eq!(code(&limited), 0, "{}", stderr(&limited));
    assert_eq!(limited.stdout, run(&plain).stdout);
    assert!(!stderr(&limited).contains("not attempted"));
    for bad in ["0", "-1", "soon", "inf"] {
        let o = run(&[&plain[..], &["--time-limit", bad]].concat());
        assert_eq!(code(&o), 2, "--time-limit {bad}: {}", stderr(&o));
    }
}

#[test]
fn puzzle_time_limit_stops_each_puzzle_after_the_step_that_passes_it() {
    let dir = temp_dir("puzzle_time_limit");
    let model = write(&dir, "m.trm", random_model(12, DType::F32));
    let m = model.to_str().unwrap();
    let pairs = write(&dir, "pairs.txt", pairs_file());
    let p = pairs.to_str().unwrap();
    // A limit every first step passes: one step per puzzle (per attempt search), stop `stopped`,
    // the answer that step's, as a budget of 1 gives it.
    for mode in [
        &[][..],
        &["--attempts", "3", "--attempt-source", "noise"][..],
    ] {
        let base = [&["--model", m, "--format", "json"][..], mode].concat();
        let o = run(&[&base[..], &["--puzzle-time-limit", "1e-9", p]].concat());
        let err = stderr(&o);
        assert_eq!(code(&o), 0, "{err}");
        let one = run(&[&base[..], &["--budget", "1", "--total-budget", "1", p]].concat());
        let (rows, one_rows) = (json_lines(&stdout(&o)), json_lines(&stdout(&one)));
        assert_eq!(rows.len(), 5, "{err}");
        for (r, b) in rows.iter().zip(&one_rows) {
            assert_eq!(r["stop"].as_str(), Some("stopped"), "{mode:?}: {r}");
            assert_eq!(r["steps"].as_u64(), Some(1), "{mode:?}: {r}");
            assert_eq!(r["answer"], b["answer"], "{mode:?}");
        }
        assert!(err.contains("stopped by --puzzle-time-limit: 5\n"), "{err}");
    }
    // A limit that is not reached changes nothing.
    let plain = ["--model", m, p];
    let limited = run(&[&plain[..], &["--puzzle-time-limit", "600"]].concat());
    assert_eq!(code(&limited), 0, "{}", stderr(&limited));
    assert_eq!(limited.stdout, run(&plain).stdout);
    assert!(!stderr(&limited).contains("stopped by"));
    for bad in ["0", "-1", "soon", "inf"] {
        let o = run(&[&plain[..], &["--puzzle-time-limit", bad]].concat());
        assert_eq!(code(&o), 2, "--puzzle-time-limit {bad}: {}", stderr(&o));
    }
}

#[test]
fn puzzles_without_a_unique_solution_are_flagged() {
    let dir = temp_dir("unique");
    let model = write(&dir, "m.trm", random_model(12, DType::I8));
    // Row 1 forces a 1 into its first cell, and column 1 already has one (no givens conflict).
    let none = format!(".23456789{}1{}", ".".repeat(18), ".".repeat(53));
    let several = ".".repeat(81);
    let (q, a) = PAIRS[1];
    let text = format!("{}\n{none}\n{several}\n{q},{a}\n", PAIRS[0].0);
    let input = write(&dir, "in.txt", &text);
    let args = ["--model", model.to_str().unwrap(), input.to_str().unwrap()];
    let with = |extra: &[&str]| run(&[&args[..1], &args[1..2], extra, &args[2..]].concat());
    let o = with(&[]);
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "{err}");
    assert!(
        err.contains("line 2: the puzzle has no solution\n"),
        "{err}"
    );
    assert!(
        err.contains("line 3: the puzzle has more than one solution\n"),
        "{err}"
    );
    assert!(
        !err.contains("line 1:") && !err.contains("line 4:"),
        "{err}"
    );
    assert!(err.contains("puzzles with no solution: 1\n"), "{err}");
    assert!(
        err.contains("puzzles with more than one solution: 1\n"),
        "{err}"
    );
    // They are still answered.
    assert_eq!(stdout(&o).lines().count(), 4);
    let j = with(&["--format", "json"]);
    let counts: Vec<Option<u64>> = json_lines(&stdout(&j))
        .iter()
        .map(|r| r["solutions"].as_u64())
        .collect();
    assert_eq!(counts, [Some(1), Some(0), Some(2), None]);
    let c = with(&["--format", "csv"]);
    let csv = stdout(&c);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().ends_with(",correct,solutions"));
    let last: Vec<&str> = lines.map(|l| l.rsplit(',').next().unwrap()).collect();
    assert_eq!(last, ["1", "0", "2", ""]);
    // --strict stops at the first one and solves nothing.
    let s = with(&["--strict"]);
    let err = stderr(&s);
    assert_eq!(code(&s), 1, "{err}");
    assert!(s.stdout.is_empty());
    assert!(
        err.contains("line 2: the puzzle has no solution") && !err.contains("line 3:"),
        "{err}"
    );
}

#[test]
fn threads_are_capped_at_what_helps() {
    let dir = temp_dir("threads_cap");
    let model = write(&dir, "m.trm", random_model(13, DType::I8));
    let three = write(
        &dir,
        "three.txt",
        pairs_file()
            .lines()
            .take(3)
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    );
    let one = write(&dir, "one.txt", format!("{}\n", PAIRS[0].0));
    let m = model.to_str().unwrap();
    let solve = |threads: &str, input: &std::path::Path| {
        let o = run(&["--model", m, "--threads", threads, input.to_str().unwrap()]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        o
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let many = solve("5000", &three);
    let err = stderr(&many);
    let used = cores.min(3);
    let why = if cores > 3 {
        "3 puzzles"
    } else {
        "available parallelism"
    };
    assert!(
        err.contains(&format!("--threads 5000 capped to {used} ({why})\n")),
        "{err}"
    );
    assert!(err.contains(&format!(" {used} threads, ")), "{err}");
    assert_eq!(many.stdout, solve("1", &three).stdout);
    let err = stderr(&solve("2", &one));
    assert!(
        err.contains("--threads 2 capped to 1 (1 puzzle)\n"),
        "{err}"
    );
    assert!(err.contains(" 1 threads, "), "{err}");
    assert!(!stderr(&solve("1", &three)).contains("capped"));
}

/// Reads a JSON-lines trace file.
fn trace_records(path: &std::path::Path) -> Vec<Value> {
    json_lines(&std::fs::read_to_string(path).expect("trace file"))
}

#[test]
fn trace_changes_no_answer_and_records_every_step() {
    let dir = temp_dir("trace");
    let model = write(&dir, "m.trm", random_model(3, DType::I8));
    let input = write(&dir, "in.txt", pairs_file());
    let jsonl = dir.join("t.jsonl");
    let html = dir.join("t.html");
    for extra in [
        &[][..],
        &["--attempts", "3", "--attempt-source", "mixed"][..],
    ] {
        let base = [
            &["--model", model.to_str().unwrap(), "--format", "json"][..],
            extra,
            &["--threads", "2", input.to_str().unwrap()][..],
        ]
        .concat();
        let plain = run(&base);
        assert_eq!(code(&plain), 0, "{}", stderr(&plain));
        let traced = run(&[
            &[
                "--trace",
                jsonl.to_str().unwrap(),
                "--trace-html",
                html.to_str().unwrap(),
            ][..],
            &base[..],
        ]
        .concat());
        assert_eq!(code(&traced), 0, "{}", stderr(&traced));
        assert_eq!(stdout(&traced), stdout(&plain), "{extra:?}");
        let answers = json_lines(&stdout(&plain));
        let records = trace_records(&jsonl);
        let total: u64 = answers.iter().map(|a| a["steps"].as_u64().unwrap()).sum();
        assert_eq!(records.len() as u64, total, "{extra:?}");
        let mut rest = &records[..];
        for (i, a) in answers.iter().enumerate() {
            let n = a["steps"].as_u64().unwrap() as usize;
            let (mine, later) = rest.split_at(n);
            rest = later;
            let puzzle = a["puzzle"].as_str().unwrap();
            let mut before = puzzle.to_string();
            for (k, r) in mine.iter().enumerate() {
                assert_eq!(r["puzzle"].as_u64(), Some(i as u64));
                assert_eq!(r["line"], a["line"]);
                assert_eq!(r["total_steps"].as_u64(), Some(k as u64 + 1));
                let grid = r["grid"].as_str().unwrap();
                assert_eq!(grid.len(), 81);
                if r["step"].as_u64() == Some(1) {
                    before = puzzle.to_string();
                }
                let changed: Vec<u64> = (0..81)
                    .filter(|&c| before.as_bytes()[c] != grid.as_bytes()[c])
                    .map(|c| c as u64)
                    .collect();
                let listed: Vec<u64> = r["changed"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_u64().unwrap())
                    .collect();
                assert_eq!(listed, changed);
                let q = r["q_halt"].as_f64().unwrap();
                let p = r["p_halt"].as_f64().unwrap();
                assert!((p - 1.0 / (1.0 + (-q).exp())).abs() < 1e-6, "{q} {p}");
                assert!(r["valid"].is_boolean() && r["kind"].is_string());
                before = grid.to_string();
            }
            if extra.is_empty() {
                // A single run answers its last step's grid.
                let last = mine.last().unwrap();
                assert_eq!(last["grid"], a["answer"]);
                assert_eq!(last["q_halt"], a["q_halt"]);
                assert_eq!(last["step"].as_u64(), Some(n as u64));
            } else {
                let attempts: std::collections::BTreeSet<u64> = mine
                    .iter()
                    .map(|r| r["attempt"].as_u64().unwrap())
                    .collect();
                assert_eq!(attempts.len() as u64, a["attempts"].as_u64().unwrap());
            }
        }
        let page = std::fs::read_to_string(&html).expect("HTML trace");
        assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
        assert_eq!(page.matches("<section>").count(), answers.len());
        assert_eq!(page.matches("<figcaption>").count() as u64, total + 5);
    }
}

#[test]
fn an_unwritable_trace_is_a_clear_error() {
    let dir = temp_dir("trace_unwritable");
    let model = write(&dir, "m.trm", random_model(3, DType::I8));
    let input = write(&dir, "in.txt", pairs_file());
    let missing = dir.join("no-such-dir").join("t.jsonl");
    for flag in ["--trace", "--trace-html"] {
        let o = run(&[
            "--model",
            model.to_str().unwrap(),
            flag,
            missing.to_str().unwrap(),
            input.to_str().unwrap(),
        ]);
        let err = stderr(&o);
        assert_eq!(code(&o), 2, "{err}");
        assert!(
            err.contains(&format!(
                "cannot write the trace file {}",
                missing.display()
            )) && err.contains("No such file or directory"),
            "{err}"
        );
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn a_trace_onto_an_input_file_is_refused_and_the_file_kept() {
    let dir = temp_dir("trace_onto_input");
    let model = write(&dir, "m.trm", random_model(3, DType::I8));
    let input = write(&dir, "in.txt", pairs_file());
    let (model_bytes, input_bytes) = (std::fs::read(&model).unwrap(), pairs_file());
    // The same files under another spelling of their paths.
    let model_alias = dir.join(".").join("m.trm");
    for flag in ["--trace", "--trace-html"] {
        for (target, what) in [
            (&model_alias, "the model file"),
            (&input, "the puzzle file"),
        ] {
            let o = run(&[
                "--model",
                model.to_str().unwrap(),
                flag,
                target.to_str().unwrap(),
                input.to_str().unwrap(),
            ]);
            let err = stderr(&o);
            assert_eq!(code(&o), 2, "{err}");
            assert!(
                err.contains(&format!("{flag} ")) && err.contains(what),
                "{err}"
            );
            assert!(o.stdout.is_empty());
        }
    }
    let same = dir.join("t.out");
    let o = run(&[
        "--model",
        model.to_str().unwrap(),
        "--trace",
        same.to_str().unwrap(),
        "--trace-html",
        same.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("name one file"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&model).unwrap(), model_bytes);
    assert_eq!(std::fs::read_to_string(&input).unwrap(), input_bytes);
}
