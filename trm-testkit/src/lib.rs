//! `trm-testkit`: what the project's test suites share (a dev-dependency only): where the
//! shared reference material lives, and the one rule for absent inputs: outside CI a test
//! whose input is missing says `SKIPPED: ...` and passes; under `CI=true` it fails.

#![deny(missing_docs)]

#[cfg(feature = "models")]
pub mod models;

use std::path::{Path, PathBuf};

/// The folder of public evaluation sets: `$TRM_DATA`, else `../shared/data/sudoku` beside
/// the workspace root (where the project's checkout keeps it).
pub fn sudoku_data_dir() -> PathBuf {
    match std::env::var_os("TRM_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/sudoku"),
    }
}

/// The folder of golden parity fixtures: `$TRM_FIXTURES`, else
/// `../shared/fixtures/reference` beside the workspace root.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("TRM_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/reference"),
    }
}

/// For tests: the data folder if present, else [`missing_input`].
pub fn require_sudoku_data() -> Option<PathBuf> {
    let dir = sudoku_data_dir();
    if dir.is_dir() {
        return Some(dir);
    }
    missing_input(&format!(
        "Sudoku evaluation sets not found at {} (set TRM_DATA)",
        dir.display()
    ));
    None
}

/// For tests whose input is absent: under `CI=true` a failure (a required input is missing),
/// elsewhere a message on stderr, after which the caller skips.
pub fn missing_input(msg: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
}

/// Every `*.safetensors` parity fixture in [`fixtures_dir`], sorted; empty after
/// [`missing_input`] when there are none.
pub fn fixture_files() -> Vec<PathBuf> {
    let dir = fixtures_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    if files.is_empty() {
        missing_input(&format!(
            "no *.safetensors parity fixtures in {} (set TRM_FIXTURES)",
            dir.display()
        ));
    }
    files
}

/// The names of the entries of folder `dir`, sorted (panics when it cannot be read).
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
