//! Training speed: one optimiser step (ACT call with T−1 no-grad recursion processes and one
//! with gradients, stable-max + Q-halt loss, backward, AdamATan2, sign-SGD on the puzzle
//! embedding, EMA) of TRM-MLP at global batch 64 on burn-ndarray, in the two shapes that
//! BENCHMARKS.md compares with the official PyTorch code:
//!
//! - `mlp_h128_b64_T3_n6` (and `mlp_h512_...`): the official Sudoku shape, T = 3, n = 6,
//!   N_sup = 16, 16 puzzle-embedding positions;
//! - `edge_h128_b64_T2_n2`: `configs/sudoku-edge.toml` (T = 2, n = 2, one position).
//!
//! Throughput is reported in training samples per second.
//! `cargo bench -p trm-train --bench train_step` (all); `-- edge` or `-- mlp_h128` for one.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use trm_edge::sudoku::Grid;
use trm_sudoku::generate::{GenSpec, generate};
use trm_train::train::config::CPU_DEFAULT_TOML;
use trm_train::train::eval::batch_of;
use trm_train::train::run::{adam_config, train_device, train_step};
use trm_train::train::{TrainConfig, TrainState};

const BATCH: usize = 64;

/// The sudoku-edge recipe, as committed.
const EDGE_TOML: &str = include_str!("../../configs/sudoku-edge.toml");

fn official(hidden: usize) -> TrainConfig {
    let sets: Vec<String> = [
        format!("model.hidden_size={hidden}"),
        format!("model.puzzle_emb_ndim={hidden}"),
        "model.puzzle_emb_len=16".into(),
        "model.h_cycles=3".into(),
        "model.l_cycles=6".into(),
        "model.halt_max_steps=16".into(),
        format!("train.global_batch_size={BATCH}"),
        "train.lr=1e-4".into(),
        "train.ema_rate=0.999".into(),
    ]
    .into();
    TrainConfig::from_toml(CPU_DEFAULT_TOML)
        .unwrap()
        .with_overrides(&sets)
        .unwrap()
}

fn edge() -> TrainConfig {
    TrainConfig::from_toml(EDGE_TOML)
        .unwrap()
        .with_overrides(&[format!("train.global_batch_size={BATCH}")])
        .unwrap()
}

fn bench(c: &mut Criterion) {
    trm_train::model::fused::keep_freed_memory();
    let spec = GenSpec {
        clues: 17..=30,
        min_rating: 0,
    };
    let puzzles = generate(&spec, BATCH * 4, 7, |_| {}).unwrap();
    let pairs: Vec<(Grid, Grid)> = puzzles
        .iter()
        .map(|g| {
            (
                Grid::from_cells(g.puzzle).unwrap(),
                Grid::from_cells(g.solution).unwrap(),
            )
        })
        .collect();
    let batches: Vec<_> = pairs.chunks(BATCH).map(batch_of).collect();

    let mut group = c.benchmark_group("train_step");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    let shapes = [
        ("mlp_h128_b64_T3_n6", official(128), 30),
        ("edge_h128_b64_T2_n2", edge(), 20),
        ("mlp_h512_b64_T3_n6", official(512), 120),
    ];
    for (name, cfg, seconds) in shapes {
        let trm = cfg.trm().unwrap();
        let mut state = TrainState::fresh(
            &trm,
            adam_config(&cfg),
            cfg.train.ema_rate,
            0,
            &train_device(),
        );
        group.measurement_time(Duration::from_secs(seconds));
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                let m = train_step(&mut state, &batches[i % batches.len()], cfg.train.lr, &cfg);
                black_box(m.expect("finite loss"))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
