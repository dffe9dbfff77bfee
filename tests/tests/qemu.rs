//! The Cortex-M firmware (`firmware/`) under QEMU (`mps2-an386`, Cortex-M4F) answers exactly as
//! host trm-edge: for small packed models (random int8, f16 and f32 weights, and an "echo"
//! model that solves full grids), every answer, step count, stop reason, check result and
//! `q_halt` bit pattern equals what the host's scalar kernels compute for the same model,
//! budget and policy; bad lines get `err` replies and the firmware goes on; the DSP/SIMD
//! kernels pass their self-test on the target; a model too large for the board's flash or
//! RAM fails the build with both numbers; the firmware also builds for Cortex-M33
//! (`thumbv8m.main-none-eabihf`).
//!
//! Run alone with `cargo test --workspace --release qemu`. Needs `qemu-system-arm` and the
//! Rust targets `thumbv7em-none-eabihf` and `thumbv8m.main-none-eabihf` (see `.ci/run`);
//! without them it prints SKIPPED, or fails under `CI=true`. The firmware builds in its own
//! workspace and target directory (`firmware/target`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use trm_edge::format::{DType, Model, ModelConfig};
use trm_edge::protocol::Answer;
use trm_edge::solver::attempts::{
    AttemptOptions, AttemptSolver, AttemptSource, DEFAULT_NOISE, Selection,
};
use trm_edge::solver::{HaltPolicy, SolveOptions, Solver};
use trm_edge::sudoku::{Grid, find_conflict, parse};
use trm_testkit::models::{self, small_config};

const TARGET: &str = "thumbv7em-none-eabihf";
const TARGET_M33: &str = "thumbv8m.main-none-eabihf";
const BOARD: &str = "qemu-mps2-an386";

/// Largest q_halt difference between target and host, relative to `max(1, |q|)` (summation
/// order only; see `compare_with_host`).
const Q_TOLERANCE: f32 = 1e-4;

/// Firmware builds share `firmware/target`: one at a time.
static BUILD: Mutex<()> = Mutex::new(());

/// Puzzles with unique solutions (`kaggle3m_rated_5000.txt`, top95) and a full grid.
const PUZZLES: [&str; 8] = [
    "28.9..47.9...215...3.7.....5...3.26..4....7.....2...41.145.......9...1...2.......",
    "9...6......3.5.4...4.7..39..7..8..59....2...14..6.....6..5..........95....1.4..3.",
    ".32..59...5....32.8..9...4...........83..47..17......8.1..9.5.....7...6.5...6....",
    "..1..3.........8.52..8941....82..4...1.....5..425..7.1......2..9.7.....4...7.6..3",
    "95....4.....9.27....4.7...8..6..98....57....18..3.....2..6.1..............8....35",
    "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......",
    "52...6.........7.13...........4..8..6......5...........418.........3..2...87.....",
    "281953476967421583435786912578134269142698735396275841814562397659347128723819654",
];

/// Lines the firmware must refuse with an `err` reply (and then carry on).
const BAD_LINES: [&[u8]; 8] = [
    b"28.9..47.9...215",
    b"28.9..47.9...215...3.7.....5...3.26..4....7.....2...41.145.......9...1...2......x",
    b"22.9..47.9...215...3.7.....5...3.26..4....7.....2...41.145.......9...1...2.......",
    b"budget 0",
    b"halt sometimes",
    b"teleport",
    b"\xff\xfe puzzle",
    b"kernel",
];

/// Why the firmware cannot be built and run here, if it cannot.
fn missing_tools() -> Option<String> {
    if Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("qemu-system-arm not found".into());
    }
    let Ok(o) = Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return Some("rustc not found".into());
    };
    let sysroot = String::from_utf8_lossy(&o.stdout).trim().to_string();
    for target in [TARGET, TARGET_M33] {
        let lib = Path::new(&sysroot).join("lib/rustlib").join(target);
        if !lib.is_dir() {
            return Some(format!(
                "Rust target {target} not installed ({})",
                lib.display()
            ));
        }
    }
    None
}

/// `true` to go on; `false` (after a SKIPPED line) when the tools are missing outside CI.
fn tools_present(test: &str) -> bool {
    match missing_tools() {
        None => true,
        Some(why) => {
            trm_testkit::missing_input(&format!("{test}: {why} (see .ci/run)"));
            false
        }
    }
}

fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware")
}

/// `cargo build --release` of the firmware for `board` and `target` with `model` embedded.
fn cargo_build(target: &str, model: &Path, budget: usize) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The firmware's own `.cargo/config.toml` (target, runner) is found from its directory.
    Command::new(cargo)
        .current_dir(firmware_dir())
        .args([
            "build",
            "--release",
            "--features",
            BOARD,
            "--target",
            target,
        ])
        .env("TRM_MODEL", model)
        .env("TRM_BUDGET", budget.to_string())
        .env("TRM_HALT", "full")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run cargo")
}

/// Builds the CI-board firmware with `model`; returns the ELF.
fn build(model: &Path, budget: usize) -> PathBuf {
    let o = cargo_build(TARGET, model, budget);
    assert!(
        o.status.success(),
        "firmware build failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    firmware_dir()
        .join("target")
        .join(TARGET)
        .join("release/trm-firmware")
}

/// Runs the ELF in QEMU with `input` on the semihosting console; returns the reply lines.
fn run_qemu(elf: &Path, input: &[u8]) -> Vec<String> {
    let mut child = Command::new("qemu-system-arm")
        .args([
            "-machine",
            "mps2-an386",
            "-cpu",
            "cortex-m4",
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            "none",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
        ])
        .arg(elf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-system-arm");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("qemu output");
    writer.join().expect("writer thread");
    assert_eq!(
        out.status.code(),
        Some(0),
        "firmware exit status (101 = panic, 102 = HardFault); stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout)
        .expect("replies are UTF-8")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Random weights (xorshift from `seed`) scaled by `1.7/√cols`; `q_bias` on the Q-head.
fn random_model(cfg: &ModelConfig, seed: u64, dtype: DType, q_bias: f32) -> Vec<u8> {
    models::random_model(cfg, seed, dtype, Some(q_bias))
}

/// A model that answers its input: a full grid comes back solved at step 1.
fn echo_model() -> Vec<u8> {
    models::echo_model(&small_config(), 0.0)
}

/// The answer host trm-edge (scalar kernels) gives for `puzzle` (no cycle count).
fn host_reply(model: &Model<'_>, puzzle: &str, budget: usize, policy: HaltPolicy) -> Expect {
    let grid: Grid = parse(puzzle).expect("test puzzle parses");
    assert!(find_conflict(&grid).is_none());
    let mut arena = vec![0f32; Solver::arena_len(model)];
    let mut solver = Solver::new(model, &mut arena).expect("solver");
    let s = solver
        .solve(
            &grid,
            &SolveOptions {
                budget,
                policy,
                puzzle_id: 0,
            },
        )
        .expect("host solve");
    Expect::Answer(Answer::from_solution(&s))
}

/// The answer host trm-edge gives for `puzzle` with `attempts` runs of `budget` steps
/// (test-time scaling), at most `total` steps (no cycle count).
fn host_attempts_reply(
    model: &Model<'_>,
    puzzle: &str,
    budget: usize,
    (attempts, source, select, total): (usize, AttemptSource, Selection, usize),
) -> Expect {
    let grid: Grid = parse(puzzle).expect("test puzzle parses");
    let mut arena = vec![0f32; AttemptSolver::arena_len(model, source)];
    let mut solver = AttemptSolver::new(model, &mut arena).expect("attempt solver");
    let opts = AttemptOptions {
        attempts,
        source,
        select,
        steps_per_attempt: budget,
        total_budget: total,
        seed: 0,
        noise: DEFAULT_NOISE,
        puzzle_id: 0,
    };
    let s = solver.solve(&grid, &opts).expect("host attempts");
    Expect::Answer(Answer::from_attempts(&s))
}

/// What the firmware should reply to one request.
enum Expect {
    /// No reply, or one checked on its own below.
    Unchecked,
    /// This exact line.
    Line(String),
    /// A puzzle's answer, equal to the host's but for `q_halt`'s last bits and with a cycle
    /// count.
    Answer(Answer),
}

fn line(text: impl Into<String>) -> Expect {
    Expect::Line(text.into())
}

/// Runs every puzzle under every policy on the firmware built with `bytes` and compares
/// each reply with the host's; returns the number of puzzle replies compared.
fn compare_with_host(name: &str, bytes: &[u8], budget: usize, dir: &Path) -> usize {
    let t = Instant::now();
    let path = dir.join(format!("{name}.trm"));
    std::fs::write(&path, bytes).unwrap();
    let elf = {
        let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        build(&path, budget)
    };
    let built = t.elapsed();
    let model = Model::from_bytes(bytes).expect("test model");

    // Scalar kernels on both sides: the same f32 operations in the same order.
    let mut input: Vec<u8> = b"kernel generic\ninfo\n".to_vec();
    let mut expected: Vec<Expect> = vec![line("ok kernel generic"), Expect::Unchecked];
    for policy in [
        HaltPolicy::Full,
        HaltPolicy::Q,
        HaltPolicy::Check,
        HaltPolicy::QCheck,
    ] {
        input.extend(format!("halt {}\n", policy.name()).bytes());
        expected.push(line(format!("ok halt {}", policy.name())));
        for p in PUZZLES {
            input.extend(p.bytes());
            input.push(b'\n');
            expected.push(host_reply(&model, p, budget, policy));
        }
    }
    // A different budget through the serial command; comments and blank lines: no reply.
    input.extend(b"budget 1\n# a comment\n\n".iter());
    expected.push(line("ok budget 1"));
    input.extend(format!("{}\r\n", PUZZLES[0]).bytes());
    expected.push(host_reply(&model, PUZZLES[0], 1, HaltPolicy::QCheck));
    let bad_start = expected.len();
    for bad in BAD_LINES {
        input.extend(bad);
        input.push(b'\n');
        expected.push(Expect::Unchecked);
    }
    input.extend([b'1'; 300]);
    input.push(b'\n');
    expected.push(Expect::Unchecked);
    // Test-time scaling on the board: attempts, sources, selections, total budget.
    for (cmd, ack, setting, puzzles) in [
        (
            "attempts 3 aug check",
            "ok attempts 3 aug check",
            (3, AttemptSource::Aug, Selection::Check, 3),
            &PUZZLES[..2],
        ),
        (
            "attempts 4 noise vote\ntotal 3",
            "ok attempts 4 noise vote\nok total 3",
            (4, AttemptSource::Noise, Selection::Vote, 3),
            &PUZZLES[2..3],
        ),
        (
            "total auto\nattempts 3 mixed q",
            "ok total auto\nok attempts 3 mixed q",
            (3, AttemptSource::Mixed, Selection::Q, 3),
            &PUZZLES[6..],
        ),
    ] {
        input.extend(format!("{cmd}\n").bytes());
        for ack_line in ack.lines() {
            expected.push(line(ack_line));
        }
        for p in puzzles {
            input.extend(format!("{p}\n").bytes());
            expected.push(host_attempts_reply(&model, p, 1, setting));
        }
    }
    input.extend(b"attempts 1\n".iter());
    expected.push(line("ok attempts 1 aug check"));
    // The target's own kernels (DSP on Cortex-M4) against the scalar ones, on the target.
    input.extend(format!("{}\nstack\nkernel simd\nselftest\n", PUZZLES[1]).bytes());
    expected.push(host_reply(&model, PUZZLES[1], 1, HaltPolicy::QCheck));
    expected.push(Expect::Unchecked);
    expected.push(Expect::Unchecked);
    expected.push(Expect::Unchecked);
    // No `quit`: the end of input ends the program with status 0.

    let t_run = Instant::now();
    let replies = run_qemu(&elf, &input);
    assert_eq!(
        replies.len(),
        expected.len(),
        "{name}: one reply per request:\n{}",
        replies.join("\n")
    );
    let mut compared = 0;
    let mut same_bits = 0;
    for (i, (got, want)) in replies.iter().zip(&expected).enumerate() {
        match want {
            Expect::Answer(w) => {
                let a =
                    Answer::parse(got).unwrap_or_else(|e| panic!("{name}: reply {i} `{got}`: {e}"));
                assert!(a.cycles.is_some(), "{name}: reply {i} has no cycles: {got}");
                // Answer, steps, stop reason (or attempts and pick) and check: identical.
                // q_halt: identical bits when host and target sum in the same order;
                // trm-edge's f32/f16 tile kernels sum in input order on x86_64/aarch64 (wide
                // tiles) and in 8 lanes on Cortex-M (a tile of 2, each vector summed as the
                // dot kernels sum it), so q_halt may differ in the last bits. int8 products are integer sums (the same bits
                // everywhere), so an int8 model's q_halt is bit-identical (checked below).
                assert_eq!(
                    (a.grid, a.steps, a.ending, a.valid),
                    (w.grid, w.steps, w.ending, w.valid),
                    "{name}: reply {i} differs from host trm-edge: `{got}` against `{w}`"
                );
                let (q, host_q) = (a.q_halt, w.q_halt);
                assert!(
                    (q - host_q).abs() <= Q_TOLERANCE * host_q.abs().max(1.0),
                    "{name}: reply {i}: q_halt {q} on the target, {host_q} on the host"
                );
                same_bits += usize::from(q.to_bits() == host_q.to_bits());
                compared += 1;
            }
            Expect::Line(w) => assert_eq!(got, w, "{name}: reply {i}"),
            Expect::Unchecked => {}
        }
    }
    if name.ends_with("int8") {
        assert_eq!(
            same_bits, compared,
            "{name}: int8 q_halt must be bit-identical to the host's"
        );
    }
    // The replies without a fixed text.
    let info = &replies[1];
    assert!(
        info.starts_with("ok info board=qemu-mps2-an386") && info.contains(" hidden=16 "),
        "{name}: {info}"
    );
    let n = replies.len();
    for (got, why) in replies[bad_start..bad_start + BAD_LINES.len() + 1]
        .iter()
        .zip(
            BAD_LINES
                .iter()
                .map(|b| String::from_utf8_lossy(b))
                .chain(["300 ones".into()]),
        )
    {
        assert!(got.starts_with("err "), "{name}: `{why}` gave `{got}`");
    }
    assert!(
        replies[n - 3].starts_with("ok stack peak="),
        "{}",
        replies[n - 3]
    );
    assert!(
        replies[n - 2].starts_with("ok kernel "),
        "{}",
        replies[n - 2]
    );
    assert!(
        replies[n - 1].starts_with("ok selftest"),
        "{name}: {}",
        replies[n - 1]
    );
    eprintln!(
        "{name}: {compared} answers, step counts and stop reasons identical to host trm-edge, \
         q_halt bit-identical in {same_bits} (build {:.1} s, QEMU {:.1} s); {}; {}",
        built.as_secs_f64(),
        t_run.elapsed().as_secs_f64(),
        replies[n - 3],
        replies[n - 1]
    );
    compared
}

#[test]
fn qemu_firmware_matches_host_trm_edge() {
    if !tools_present("qemu_firmware_matches_host_trm_edge") {
        return;
    }
    trm_edge::kernels::arch::set_simd(false);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu-firmware");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = small_config();
    let mut compared = 0;
    // Negative and positive Q biases: `halt q` runs the budget out, or stops at step 1.
    compared += compare_with_host(
        "random-int8",
        &random_model(&cfg, 11, DType::I8, -0.5),
        3,
        &dir,
    );
    compared += compare_with_host(
        "random-f16",
        &random_model(&cfg, 12, DType::F16, 0.3),
        3,
        &dir,
    );
    compared += compare_with_host(
        "random-f32",
        &random_model(&cfg, 13, DType::F32, -0.2),
        2,
        &dir,
    );
    compared += compare_with_host("echo-f32", &echo_model(), 2, &dir);
    assert_eq!(compared, 4 * (4 * PUZZLES.len() + 2 + 5));
}

/// Builds that cannot fit the board fail in the build script with both numbers.
#[test]
fn qemu_board_rejects_models_that_do_not_fit() {
    if !tools_present("qemu_board_rejects_models_that_do_not_fit") {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu-firmware-fit");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Flash: ~7.5 MB of f32 weights for a 4 MiB flash.
    let big = ModelConfig {
        hidden: 1024,
        mlp_inter: 600,
        mlp_t_inter: 8,
        layers: 1,
        puzzle_emb_ndim: 0,
        head_dim: 512,
        ..small_config()
    };
    // RAM: small weights but a 381 × 1024 state (three of them: 4.7 MB) for 4 MiB of RAM.
    let wide = ModelConfig {
        hidden: 1024,
        mlp_inter: 8,
        mlp_t_inter: 8,
        layers: 1,
        puzzle_emb_len: 300,
        puzzle_emb_ndim: 0,
        head_dim: 512,
        ..small_config()
    };
    for (name, cfg, dtype, what) in [
        ("flash", big, DType::F32, "bytes of flash"),
        ("ram", wide, DType::I8, "bytes of RAM"),
    ] {
        let bytes = random_model(&cfg, 5, dtype, 0.0);
        let path = dir.join(format!("{name}.trm"));
        std::fs::write(&path, &bytes).unwrap();
        let o = {
            let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
            cargo_build(TARGET, &path, 1)
        };
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{name}: an oversized model built");
        let line = err
            .lines()
            .find(|l| l.contains("does not fit board qemu-mps2-an386"))
            .unwrap_or_else(|| panic!("{name}: no fit message in:\n{err}"));
        assert!(line.contains(what), "{line}");
        assert!(line.contains("the board has 4194304 bytes"), "{line}");
        if name == "flash" {
            assert!(line.contains(&format!("({} model", bytes.len())), "{line}");
        }
        eprintln!("{name}: {}", line.trim());
    }
}

/// The firmware (trm-edge included) also builds for Cortex-M33 (ARMv8-M Mainline with FPU).
#[test]
fn qemu_board_firmware_builds_for_cortex_m33() {
    if !tools_present("qemu_board_firmware_builds_for_cortex_m33") {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu-firmware-m33");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m33.trm");
    std::fs::write(&path, random_model(&small_config(), 3, DType::I8, 0.0)).unwrap();
    let t = Instant::now();
    let o = {
        let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        cargo_build(TARGET_M33, &path, 1)
    };
    assert!(
        o.status.success(),
        "{TARGET_M33} build failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let elf = firmware_dir()
        .join("target")
        .join(TARGET_M33)
        .join("release/trm-firmware");
    assert!(elf.is_file());
    eprintln!("{TARGET_M33}: built in {:.1} s", t.elapsed().as_secs_f64());
}
