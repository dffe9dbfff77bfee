//! Criterion benchmark of the exact solver proving uniqueness (`limit = 2`).
//!
//! Each iteration solves every puzzle of one file once; throughput is
//! reported in puzzles per second. Puzzle files are read from `$TRM_DATA`
//! (default: `shared/data/sudoku` next to the workspace); a missing file is
//! reported and its benchmark skipped.

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;
use trm_sudoku::parse;
use trm_sudoku::search::solve;

/// Directory holding the puzzle files.
fn data_dir() -> PathBuf {
    std::env::var_os("TRM_DATA").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/data/sudoku"
            ))
        },
        PathBuf::from,
    )
}

/// All puzzles of `name`, or `None` (with a message) when it cannot be read.
fn load(name: &str) -> Option<Vec<[u8; 81]>> {
    let path = data_dir().join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            text.lines()
                .filter_map(|l| parse(l.get(..81)?).ok().map(|g| *g.cells()))
                .collect(),
        ),
        Err(e) => {
            eprintln!(
                "skipping {name}: cannot read {} ({e}); set TRM_DATA to the sudoku data directory",
                path.display()
            );
            None
        }
    }
}

fn bench_solver(c: &mut Criterion) {
    let mut group = c.benchmark_group("solve_limit2");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for name in ["top1465.txt", "forum_hardest_1905_11plus.txt"] {
        let Some(puzzles) = load(name) else { continue };
        if puzzles.is_empty() {
            eprintln!("skipping {name}: no puzzles");
            continue;
        }
        group.throughput(Throughput::Elements(puzzles.len() as u64));
        group.bench_function(name.trim_end_matches(".txt"), |b| {
            b.iter(|| {
                let mut guesses = 0u64;
                for p in &puzzles {
                    let out = solve(black_box(p), 2);
                    guesses += u64::from(out.guesses);
                }
                black_box(guesses)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_solver);
criterion_main!(benches);
