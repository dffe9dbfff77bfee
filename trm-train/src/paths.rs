//! Where the project's shared reference material lives.

use std::path::PathBuf;

/// The folder of public evaluation sets: `$TRM_DATA`, else `../shared/data/sudoku` beside
/// the workspace root (where the project's checkout keeps it).
pub fn sudoku_data_dir() -> PathBuf {
    match std::env::var_os("TRM_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/sudoku"),
    }
}

/// For tests: the data folder if present. When it is missing, a test run with `CI=true`
/// fails (a required input is absent); elsewhere it prints why and returns `None` so the
/// caller can skip.
pub fn require_sudoku_data() -> Option<PathBuf> {
    let dir = sudoku_data_dir();
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!(
        "Sudoku evaluation sets not found at {} (set TRM_DATA)",
        dir.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}
