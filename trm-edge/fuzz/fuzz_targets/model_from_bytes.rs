//! `cargo +nightly fuzz run model_from_bytes` (from `trm-edge/`): arbitrary bytes into the
//! packed-model reader must give `Ok` or a typed error, never a panic; a file that passes
//! validation must also run without panicking: one supervision step on raw buffers and, for
//! Sudoku-shaped models, one solver step.
//!
//! A mutated file almost always fails the CRC first, which would hide every later check from
//! the fuzzer; so an input rejected only for its CRC is retried once with the computed CRC
//! written in place (a copy), and the header, table and runtime are fuzzed behind it.
//!
//! Seeds: `cargo run -p trm-edge --example fuzz_seeds -- fuzz/corpus/model_from_bytes`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use trm_edge::format::{FormatError, Model, Variant};
use trm_edge::solver::{HaltPolicy, SolveOptions, Solver};
use trm_edge::sudoku::Grid;

/// Largest state `[S, D]` / scratch (f32 elements) a fuzz input may run with.
const MAX_STATE: usize = 1 << 16;
const MAX_SCRATCH: usize = 1 << 18;
/// Largest estimated multiply-adds of one step. Keeps every execution short: the fuzzer can
/// raise the cycle counts and layers to 1024 each, and every loop iteration of the runtime
/// calls the `trace-compares` hooks of the instrumentation (with the earlier cap of 2^22 those
/// hooks took 70% of the time and the fuzzer ran at ~140 exec/s). The seeds
/// (`examples/fuzz_seeds.rs`) all fit under it, so the runtime stays covered.
const MAX_MACS: u64 = 1 << 18;

/// Multiply-adds of one step: network calls × blocks × (mixer + channel SwiGLU).
fn step_macs(model: &Model<'_>) -> u64 {
    let c = model.config();
    let (s, d) = (c.seq_total() as u64, c.hidden as u64);
    let calls = (c.h_cycles as u64).saturating_mul(c.l_cycles as u64 + 1);
    let channel = s.saturating_mul(d).saturating_mul(3 * c.mlp_inter as u64);
    let mixer = match c.variant {
        Variant::MlpT => s.saturating_mul(d).saturating_mul(3 * c.mlp_t_inter as u64),
        // q, k, v and o projections, scores and the weighted sum of values.
        Variant::Attention => s
            .saturating_mul(d)
            .saturating_mul(4 * d)
            .saturating_add(s.saturating_mul(s).saturating_mul(2 * d)),
    };
    calls
        .saturating_mul(c.layers as u64)
        .saturating_mul(channel.saturating_add(mixer).saturating_add(s * d))
}

fn run(model: &Model<'_>) {
    let n = model.state_len();
    if n > MAX_STATE || model.scratch_len() > MAX_SCRATCH || step_macs(model) > MAX_MACS {
        return;
    }
    let mut x = vec![0f32; n];
    let mut z_h = vec![0f32; n];
    let mut z_l = vec![0f32; n];
    let mut logits = vec![0f32; model.logits_len()];
    let mut scratch = vec![0f32; model.scratch_len()];
    let tokens = vec![1u8; model.config().seq_len];
    let _ = model.embed_input(&tokens, 0, &mut x);
    let _ = model.reset_carry(&mut z_h, &mut z_l);
    let _ = model.step(&x, &mut z_h, &mut z_l, &mut logits, &mut scratch);
    // One solver step (small arena only; non-Sudoku models give `NotSudoku`).
    let mut arena = vec![0f32; Solver::arena_len(model)];
    if let Ok(mut solver) = Solver::new(model, &mut arena) {
        let opts = SolveOptions {
            budget: 1,
            policy: HaltPolicy::QCheck,
            puzzle_id: 0,
        };
        let _ = solver.solve(&Grid::EMPTY, &opts);
    }
}

fuzz_target!(|data: &[u8]| {
    match Model::from_bytes(data) {
        Ok(model) => run(&model),
        Err(FormatError::CrcMismatch { computed, .. }) => {
            // The header is present (CRC is checked after the length): patch the CRC.
            let Some(len) = data
                .get(16..20)
                .and_then(|b| b.try_into().ok())
                .map(|b| u32::from_le_bytes(b) as usize)
            else {
                return;
            };
            let mut fixed = data.to_vec();
            if let Some(crc) = len.checked_sub(4).and_then(|at| fixed.get_mut(at..at + 4)) {
                crc.copy_from_slice(&computed.to_le_bytes());
                if let Ok(model) = Model::from_bytes(&fixed) {
                    run(&model);
                }
            }
        }
        Err(_) => {}
    }
});
