//! Build script of the firmware: selects the board (`boards/<name>/`), embeds the packed model
//! and refuses builds that cannot fit.
//!
//! - Board: the one enabled cargo feature names a folder of `boards/` holding `memory.x` and
//!   `board.toml` (flash and RAM sizes, stack and code reserves, chip, clock). `memory.x` is
//!   copied to `OUT_DIR` and the linker gets `-Tlink.x -Tdefmt.x`.
//! - Model: `TRM_MODEL=<path>` if set; else `models/sudoku-int8.trm` of the repository when it
//!   exists; else the official reference fixture `mlp_h64.safetensors` (in `$TRM_FIXTURES`,
//!   default `../shared/fixtures/reference` beside the repository) packed as int8. The file is
//!   validated with trm-edge (magic, version, CRC-32, tensor table) before it is embedded.
//! - Fit: the model plus the code reserve must fit the board's flash, the solver arena plus the
//!   stack reserve and the firmware's own statics its RAM; otherwise the build fails with a
//!   message giving both numbers.
//! - Defaults: `TRM_BUDGET` (supervision steps, default the model's `halt_max_steps`) and
//!   `TRM_HALT` (`full`, `q`, `check` or `q+check`, default `full`).

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use trm_edge::format::{DType, Model, official};
use trm_edge::runtime::TileShape;
use trm_edge::solver::Solver;
use trm_edge::solver::attempts::{AttemptSolver, AttemptSource};

/// Boards known to the firmware (cargo feature = folder name under `boards/`).
const BOARDS: [&str; 3] = ["qemu-mps2-an386", "nucleo-h743zi", "nrf52840-dk"];

/// RAM the firmware itself takes besides the arena and the stack (line buffers, reply
/// strings, the defmt and semihosting state); the measured figure is ~1.3 KiB.
const STATIC_RESERVE: usize = 4 * 1024;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest.join("..");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-changed=build.rs");
    for var in ["TRM_MODEL", "TRM_FIXTURES", "TRM_BUDGET", "TRM_HALT"] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let selected: Vec<&str> = BOARDS
        .iter()
        .copied()
        .filter(|b| env::var_os(feature_var(b)).is_some())
        .collect();
    // None or several boards: `src/main.rs` gives the compile error; nothing to link.
    let [board] = selected[..] else {
        return;
    };
    let board_dir = root.join("boards").join(board);
    println!("cargo:rerun-if-changed={}", board_dir.display());
    let spec = BoardSpec::read(&board_dir.join("board.toml"));
    fs::copy(board_dir.join("memory.x"), out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg=-Tlink.x");
    println!("cargo:rustc-link-arg=-Tdefmt.x");

    let (source, bytes) = select_model(&root);
    let model = Model::from_bytes(&bytes)
        .unwrap_or_else(|e| panic!("model {source} is not a valid packed model: {e}"));
    let cfg = *model.config();
    // The arena of the plain solver; test-time scaling's `mixed` source needs 2·S·D more (the
    // saved plain chain), given when the board has the room (else `mixed` answers `err`).
    let plain = target_arena(&model, Solver::arena_len(&model));
    let mixed = target_arena(
        &model,
        AttemptSolver::arena_len(&model, AttemptSource::Mixed),
    );
    let arena_len = if mixed * 4 + spec.stack + STATIC_RESERVE <= spec.ram {
        mixed
    } else {
        println!(
            "cargo:warning=board {board}: no room for the {} extra bytes of `attempts K mixed`",
            (mixed - plain) * 4
        );
        plain
    };
    let arena_bytes = plain * 4;
    let flash_needed = bytes.len() + spec.code_reserve;
    if flash_needed > spec.flash {
        panic!(
            "model {source} does not fit board {board}: it needs {flash_needed} bytes of flash \
             ({} model + {} code reserve), the board has {} bytes. Use a smaller or int8 model \
             (TRM_MODEL=path) or another board.",
            bytes.len(),
            spec.code_reserve,
            spec.flash
        );
    }
    let ram_needed = arena_bytes + spec.stack + STATIC_RESERVE;
    if ram_needed > spec.ram {
        panic!(
            "model {source} does not fit board {board}: it needs {ram_needed} bytes of RAM \
             ({arena_bytes} solver arena (state, logits, scratch) + {} stack + {STATIC_RESERVE} \
             firmware statics), the board has {} bytes. Use a smaller model (hidden size, \
             sequence) or another board.",
            spec.stack, spec.ram
        );
    }
    fs::write(out.join("model.trm"), &bytes).expect("write model.trm");
    let arena_bytes = arena_len * 4;
    let ram_needed = arena_bytes + spec.stack + STATIC_RESERVE;

    let budget = match env::var("TRM_BUDGET") {
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|&b| b >= 1)
            .unwrap_or_else(|| panic!("TRM_BUDGET={v}: expected a number >= 1")),
        Err(_) => cfg.halt_max_steps,
    };
    let halt = env::var("TRM_HALT").unwrap_or_else(|_| "full".into());
    let halt_variant = match halt.parse::<trm_edge::solver::HaltPolicy>() {
        Ok(policy) => format!("{policy:?}"),
        Err(e) => panic!("TRM_HALT={halt}: {e}"),
    };

    let mut rs = String::new();
    let _ = writeln!(rs, "/// Bytes of the embedded model file.");
    let _ = writeln!(rs, "pub const MODEL_LEN: usize = {};", bytes.len());
    let _ = writeln!(rs, "/// Where the embedded model came from at build time.");
    let _ = writeln!(rs, "pub const MODEL_SOURCE: &str = {source:?};");
    let _ = writeln!(rs, "/// f32 elements of the solver arena for this model.");
    let _ = writeln!(rs, "pub const ARENA_LEN: usize = {arena_len};");
    let _ = writeln!(rs, "/// The board this image is built for.");
    let _ = writeln!(rs, "pub const BOARD: &str = {board:?};");
    let marker = format!("TRM_BOARD={board};");
    let _ = writeln!(rs, "const BOARD_MARKER_LEN: usize = {};", marker.len());
    let _ = writeln!(
        rs,
        "const BOARD_MARKER_BYTES: [u8; {}] = *b{marker:?};",
        marker.len()
    );
    let _ = writeln!(rs, "/// probe-rs chip name of the board.");
    let _ = writeln!(rs, "pub const CHIP: &str = {:?};", spec.chip);
    let _ = writeln!(rs, "/// Core clock in Hz after the board's clock setup.");
    let _ = writeln!(rs, "pub const CLOCK_HZ: u32 = {};", spec.clock_hz);
    let _ = writeln!(rs, "/// Stack bytes reserved by the build-time RAM check.");
    let _ = writeln!(rs, "pub const STACK_RESERVE: usize = {};", spec.stack);
    let _ = writeln!(rs, "/// Build-time default supervision-step budget.");
    let _ = writeln!(rs, "pub const DEFAULT_BUDGET: usize = {budget};");
    let _ = writeln!(rs, "/// Build-time default halting policy.");
    let _ = writeln!(
        rs,
        "pub const DEFAULT_HALT: trm_edge::solver::HaltPolicy = trm_edge::solver::HaltPolicy::{halt_variant};"
    );
    fs::write(out.join("build_info.rs"), rs).expect("write build_info.rs");
    println!(
        "cargo:warning=board {board}: model {source} ({} bytes, {:?} hidden {}), flash {flash_needed}/{} bytes, RAM {ram_needed}/{} bytes (arena {arena_bytes})",
        bytes.len(),
        dominant_dtype(&model),
        cfg.hidden,
        spec.flash,
        spec.ram
    );
}

/// The arena the target needs, from the build host's figure `host`: the host's scratch
/// replaced by the target's (`runtime::scratch_len_for`: the tile of 2 and 16-bit int8 lanes
/// of `thumbv7em` cores, a tile of 1 on other Cortex-M cores). If trm-edge's formula changed,
/// the firmware's solver would refuse the arena at run time (an `err` reply, which the QEMU
/// test catches).
fn target_arena(model: &Model<'_>, host: usize) -> usize {
    let target = env::var("TARGET").unwrap_or_default();
    // The same test as trm-edge/build.rs, which gives `thumbv7em` targets the DSP kernels and
    // their tile: change both together.
    let shape = if target.starts_with("thumbv7em") {
        TileShape::CORTEX_M_DSP
    } else {
        TileShape::VECTOR
    };
    let scratch = trm_edge::runtime::scratch_len_for(model.config(), shape)
        .expect("the host sized this model's scratch, the target's is smaller");
    host - model.scratch_len() + scratch
}

/// The cargo feature variable of a board name.
fn feature_var(board: &str) -> String {
    format!("CARGO_FEATURE_{}", board.to_uppercase().replace('-', "_"))
}

/// The dtype of the model's largest tensor (what "an int8 model" means).
fn dominant_dtype(model: &Model<'_>) -> DType {
    model
        .tensors()
        .max_by_key(|t| t.shape[0] * t.shape[1])
        .map_or(DType::F32, |t| t.matrix.dtype())
}

/// Limits of a board, from `boards/<name>/board.toml` (flat `key = value` lines).
struct BoardSpec {
    chip: String,
    flash: usize,
    ram: usize,
    stack: usize,
    code_reserve: usize,
    clock_hz: u64,
}

impl BoardSpec {
    fn read(path: &Path) -> Self {
        let text = fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let mut kv = BTreeMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if let Some((k, v)) = line.split_once('=') {
                kv.insert(
                    k.trim().to_string(),
                    v.trim().trim_matches('"').replace('_', ""),
                );
            }
        }
        let num = |k: &str| -> u64 {
            kv.get(k)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{}: missing or bad number `{k}`", path.display()))
        };
        Self {
            chip: kv
                .get("chip")
                .cloned()
                .unwrap_or_else(|| panic!("{}: missing `chip`", path.display())),
            flash: num("flash") as usize,
            ram: num("ram") as usize,
            stack: num("stack") as usize,
            code_reserve: num("code_reserve") as usize,
            clock_hz: num("clock_hz"),
        }
    }
}

/// The model to embed and a description of where it came from.
fn select_model(root: &Path) -> (String, Vec<u8>) {
    if let Some(path) = env::var_os("TRM_MODEL") {
        let path = PathBuf::from(path);
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = fs::read(&path)
            .unwrap_or_else(|e| panic!("TRM_MODEL={}: cannot read: {e}", path.display()));
        return (path.display().to_string(), bytes);
    }
    let shipped = root.join("models/sudoku-int8.trm");
    // Watch the folder (or the repository root until it exists) so that a model added later
    // is picked up by the next build.
    if root.join("models").is_dir() {
        println!("cargo:rerun-if-changed={}", root.join("models").display());
    } else {
        println!("cargo:rerun-if-changed={}", root.display());
    }
    if shipped.is_file() {
        let bytes = fs::read(&shipped).expect("read models/sudoku-int8.trm");
        return ("models/sudoku-int8.trm".into(), bytes);
    }
    let fixtures = env::var_os("TRM_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/fixtures/reference"));
    let fixtures = fixtures.canonicalize().unwrap_or(fixtures);
    let fixture = fixtures.join("mlp_h64.safetensors");
    println!("cargo:rerun-if-changed={}", fixture.display());
    let raw = fs::read(&fixture).unwrap_or_else(|e| {
        panic!(
            "no model to embed: TRM_MODEL is not set, models/sudoku-int8.trm does not exist \
             and the reference fixture {} cannot be read ({e}); set TRM_MODEL=path/to/model.trm",
            fixture.display()
        )
    });
    (
        format!("{} (official reference weights, int8)", fixture.display()),
        official::pack_official(&raw, DType::I8)
            .unwrap_or_else(|e| panic!("{}: {e}", fixture.display()))
            .1,
    )
}
