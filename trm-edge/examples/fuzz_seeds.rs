//! Writes small valid packed models as a seed corpus for the `model_from_bytes` fuzz target:
//! TRM-MLP and attention (RoPE), a 4-token toy shape and the Sudoku shape (81 tokens, 11
//! symbols, so the fuzz target's solver step runs), each as f32, f16 and int8.
//!
//! `cargo run -p trm-edge --example fuzz_seeds -- trm-edge/fuzz/corpus/model_from_bytes`

use trm_edge::format::{DType, Model, Variant};
use trm_testkit::models::{pack, random_tensors, tiny_config};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus/model_from_bytes".into());
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    for variant in [Variant::MlpT, Variant::Attention] {
        for (seq_len, vocab) in [(4, 5), (81, 11)] {
            let mut cfg = tiny_config(variant, seq_len, vocab);
            if seq_len == 81 {
                // Keep the Sudoku-shaped seeds small: narrow state, one puzzle row.
                cfg.hidden = 4;
                cfg.mlp_inter = 8;
                cfg.num_heads = 1;
                cfg.head_dim = 4;
                cfg.puzzle_emb_len = 1;
                cfg.puzzle_emb_ndim = 4;
                cfg.num_puzzle_ids = 1;
                if variant == Variant::MlpT {
                    cfg.mlp_t_inter = 8;
                }
                // One block, one cycle of each kind: a step stays under the fuzz target's
                // multiply-add cap (attention over 82 positions is the largest part).
                cfg.layers = 1;
                cfg.h_cycles = 1;
                cfg.l_cycles = 1;
            }
            let tensors = random_tensors(&cfg, 7);
            for dtype in [DType::F32, DType::F16, DType::I8] {
                let file = pack(&cfg, &tensors, dtype);
                Model::from_bytes(&file).expect("seed validates");
                let name = format!("{dir}/{variant:?}-l{seq_len}-{dtype:?}.trm").to_lowercase();
                std::fs::write(&name, &file).expect("write seed");
                println!("{name}: {} bytes", file.len());
            }
        }
    }
}
