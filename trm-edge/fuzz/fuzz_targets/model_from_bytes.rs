//! `cargo +nightly fuzz run model_from_bytes` (from `trm-edge/`): arbitrary bytes into the
//! packed-model reader must give `Ok` or a typed error, never a panic; a file that passes
//! validation must also run one supervision step without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use trm_edge::format::Model;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = Model::from_bytes(data) else {
        return;
    };
    // Keep the step affordable: only small models run.
    let n = model.state_len();
    if n > 1 << 16 || model.scratch_len() > 1 << 20 {
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
});
