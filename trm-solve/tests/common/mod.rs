//! Shared helpers of the `trm-solve` tests: small packed models, puzzle files, running the
//! binary.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use trm_edge::format::{DType, ModelConfig};
use trm_testkit::models;

/// Five Sudoku puzzles with their solutions (`kaggle3m_rated_5000.txt`).
pub const PAIRS: [(&str, &str); 5] = [
    (
        "28.9..47.9...215...3.7.....5...3.26..4....7.....2...41.145.......9...1...2.......",
        "281953476967421583435786912578134269142698735396275841814562397659347128723819654",
    ),
    (
        "9...6......3.5.4...4.7..39..7..8..59....2...14..6.....6..5..........95....1.4..3.",
        "927463185183952467546718392372184659869325741415697823698531274234879516751246938",
    ),
    (
        ".32..59...5....32.8..9...4...........83..47..17......8.1..9.5.....7...6.5...6....",
        "432175986951846327867932145295687413683514792174329658716298534348751269529463871",
    ),
    (
        "..1..3.........8.52..8941....82..4...1.....5..425..7.1......2..9.7.....4...7.6..3",
        "481653927396127845275894136538271469719468352642539781163945278957382614824716593",
    ),
    (
        "95....4.....9.27....4.7...8..6..98....57....18..3.....2..6.1..............8....35",
        "957836412681942753324175698736519824495728361812364579243651987579283146168497235",
    ),
];

/// A TRM-MLP Sudoku configuration with hidden size 16 (4 supervision steps).
pub fn config() -> ModelConfig {
    models::small_config()
}

/// [`config`] with the SwiGLU widths the official formula gives (256 and 256), as the burn
/// model of the GPU backend derives them from `expansion`.
pub fn official_config() -> ModelConfig {
    ModelConfig {
        mlp_inter: trm_edge::format::swiglu_inter(4.0, 16),
        mlp_t_inter: trm_edge::format::swiglu_inter(4.0, 82),
        ..config()
    }
}

/// A model of [`config`] with random weights (xorshift from `seed`); its answers are noise.
pub fn random_model(seed: u64, dtype: DType) -> Vec<u8> {
    random_model_with(&config(), seed, dtype)
}

/// [`random_model`] with configuration `cfg`.
pub fn random_model_with(cfg: &ModelConfig, seed: u64, dtype: DType) -> Vec<u8> {
    models::random_model(cfg, seed, dtype, None)
}

/// A model that answers its input ([`models::echo_model`]); `q_halt` is `q_bias`.
pub fn echo_model(q_bias: f32) -> Vec<u8> {
    echo_model_with(&config(), q_bias)
}

/// [`echo_model`] with configuration `cfg`.
pub fn echo_model_with(cfg: &ModelConfig, q_bias: f32) -> Vec<u8> {
    models::echo_model(cfg, q_bias)
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write file");
    p
}

/// `puzzle,solution` lines of [`PAIRS`].
pub fn pairs_file() -> String {
    PAIRS.iter().map(|(q, a)| format!("{q},{a}\n")).collect()
}

/// The x86_64 (host) binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trm-solve"))
}

/// Runs `cmd` with `stdin` on its standard input.
pub fn run_with(mut cmd: Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// Runs the host binary with `args` (no stdin).
pub fn run(args: &[&str]) -> Output {
    run_with(
        {
            let mut c = bin();
            c.args(args);
            c
        },
        b"",
    )
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The exit code (panics on a signal).
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}
