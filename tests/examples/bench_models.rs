//! Writes the packed models the firmware's instruction counts are measured on (BENCHMARKS.md):
//! random weights with the shapes of two TRM-MLP Sudoku models, each as f32, f16 and int8.
//!
//! - `h64`: the official reference fixture's shape (hidden 64, 16 puzzle-embedding positions,
//!   `I = 256`, `It = 512`, 2 layers, T = 3, n = 6);
//! - `h128`: the shipped edge model's shape (`configs/sudoku-edge.toml`: hidden 128, one
//!   puzzle-embedding position, `I = 512`, `It = 256`, 2 layers, T = 2, n = 2).
//!
//! The cost of a supervision step does not depend on the weight values (no data-dependent
//! branches in the kernels), so random weights measure what a trained model costs.
//!
//! `cargo run --release -p trm-tests --example bench_models -- OUT_DIR`

use trm_edge::format::{DType, ModelConfig, PosEncoding, Variant, swiglu_inter};
use trm_testkit::models;

fn config(hidden: usize, p: usize, h_cycles: usize, l_cycles: usize) -> ModelConfig {
    ModelConfig {
        variant: Variant::MlpT,
        pos_encoding: PosEncoding::None,
        hidden,
        mlp_inter: swiglu_inter(4.0, hidden),
        mlp_t_inter: swiglu_inter(4.0, p + 81),
        layers: 2,
        h_cycles,
        l_cycles,
        halt_max_steps: 16,
        seq_len: 81,
        puzzle_emb_len: p,
        puzzle_emb_ndim: hidden * p,
        num_puzzle_ids: 1,
        vocab: 11,
        num_heads: 2,
        head_dim: hidden / 2,
        rms_eps: 1e-5,
        rope_theta: 10000.0,
        expansion: 4.0,
    }
}

fn main() {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    std::fs::create_dir_all(&out).expect("create output folder");
    for (name, cfg) in [
        ("h64", config(64, 16, 3, 6)),
        ("h128", config(128, 1, 2, 2)),
    ] {
        for (dname, dtype) in [
            ("f32", DType::F32),
            ("f16", DType::F16),
            ("int8", DType::I8),
        ] {
            // Seed 1: the xorshift state 0x9E37_79B9_7F4A_7C15, the same weights for each dtype.
            let bytes = models::random_model(&cfg, 1, dtype, None);
            let path = out.join(format!("bench-{name}-{dname}.trm"));
            std::fs::write(&path, &bytes).expect("write model");
            println!("{} ({} bytes)", path.display(), bytes.len());
        }
    }
}
