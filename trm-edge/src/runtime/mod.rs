//! The recursion: one supervision step of TRM on caller-owned buffers.
//!
//! Buffers (all `f32`, sizes from the [`Model`]):
//! - `x` `[S, D]` ([`Model::state_len`]): the input embedding, from [`Model::embed_input`];
//! - `z_h`, `z_l` `[S, D]` each: the carry (answer y and latent z), reset by
//!   [`Model::reset_carry`] and updated by [`Model::step`];
//! - `logits` `[L, V]` ([`Model::logits_len`]);
//! - `scratch` ([`Model::scratch_len`] elements = [`Model::scratch_bytes`] bytes).
//!
//! Working memory does not grow with expansion × sequence: blocks run in place on the state,
//! [`TILE`] vectors at a time (32 on x86_64/aarch64, 2 on Cortex-M with the DSP extension, 1 on
//! other microcontrollers): the channel
//! SwiGLU takes [`TILE`] positions per pass over its weights (`TILE·(2·I + 2·D)` floats), the
//! token-mixing SwiGLU [`TILE`] channels (`TILE·(2·It + 2·S)`), attention keeps q, k, v
//! `[S, 3D]`, one score row `[S]` and two tiles (`TILE·4·D`). The scratch is the largest of
//! these plus, with `TILE` > 1, the int8 products' work buffer at its end
//! ([`TileShape::work_len`] of the widest product: `TILE` lane scales and one quantised tile):
//! for the Sudoku TRM-MLP
//! with `TILE = 32`, 172,416 B at hidden 64 (the token-mixing tile and 16,512 B of work),
//! 180,352 B at 128 and 589,952 B at 512; with `TILE = 1`, 4.8 KiB at hidden 64 and 16 KiB at
//! 512; on Cortex-M DSP (tile of 2, 16-bit int8 lanes: [`scratch_len_for`] with
//! [`TileShape::CORTEX_M_DSP`]) 11,800 B at hidden 64 and 12,296 B at 128.

mod block;
mod error;

pub use error::RunError;

use crate::format::{Model, ModelConfig, TensorKind, Variant};
#[cfg(any(test, doc))]
use crate::kernels::TILE;
use crate::kernels::ops::{add_assign, add_sum_assign};

/// Splits `n` elements off the front of `buf`.
pub(crate) fn take(buf: &mut [f32], n: usize) -> Result<(&mut [f32], &mut [f32]), RunError> {
    let got = buf.len();
    buf.split_at_mut_checked(n).ok_or(RunError::BufferSize {
        buffer: "scratch",
        needed: n,
        got,
    })
}

pub use crate::kernels::TileShape;

/// f32 elements of the int8 tile products' work buffer at the end of the scratch
/// ([`crate::kernels::Matrix::tile_work_len`] of the widest product: `D`, `I`, `S` or `It`
/// columns); 0 with `TILE = 1`, where products are matrix-vector products. `None` on overflow.
pub(crate) fn work_len(cfg: &ModelConfig) -> Option<usize> {
    work_len_for(cfg, TileShape::THIS)
}

/// [`work_len`] for `shape`: [`TileShape::work_len`] of the widest product.
fn work_len_for(cfg: &ModelConfig, shape: TileShape) -> Option<usize> {
    let mut widest = cfg.hidden.max(cfg.mlp_inter);
    if cfg.variant == Variant::MlpT {
        widest = widest.max(cfg.seq_total()).max(cfg.mlp_t_inter);
    }
    shape.work_len(widest)
}

/// f32 elements of scratch one step needs under `cfg`; `None` if the size overflows `usize`.
pub fn scratch_len(cfg: &ModelConfig) -> Option<usize> {
    scratch_len_for(cfg, TileShape::THIS)
}

/// [`scratch_len`] on a target multiplying with `shape` (what that target's
/// [`Model::scratch_len`] is).
pub fn scratch_len_for(cfg: &ModelConfig, shape: TileShape) -> Option<usize> {
    let tile = shape.tile;
    let (s, d) = (cfg.seq_total(), cfg.hidden);
    // Channel SwiGLU: input tile [D, TILE], gate and up [I, TILE] each, output [D, TILE].
    let channel = cfg
        .mlp_inter
        .checked_mul(2)?
        .checked_add(d.checked_mul(2)?)?
        .checked_mul(tile)?;
    let mixer = match cfg.variant {
        // Input tile [S, TILE], gate and up [It, TILE] each, output [S, TILE].
        Variant::MlpT => cfg
            .mlp_t_inter
            .checked_mul(2)?
            .checked_add(s.checked_mul(2)?)?
            .checked_mul(tile)?,
        // q, k, v [S, 3D], scores [S], attention row [D], RoPE rows [hd] ×2, tiles
        // [D, TILE] and [3D, TILE].
        Variant::Attention => s
            .checked_mul(d)?
            .checked_mul(3)?
            .checked_add(s)?
            .checked_add(d)?
            .checked_add(cfg.head_dim.checked_mul(2)?)?
            .checked_add(d.checked_mul(4)?.checked_mul(tile)?)?,
    };
    // The caller buffers must be addressable too.
    s.checked_mul(d)?.checked_mul(4)?;
    cfg.seq_len.checked_mul(cfg.vocab)?;
    let total = channel.max(mixer).checked_add(work_len_for(cfg, shape)?)?;
    total.checked_mul(4).map(|_| total)
}

/// Q-head outputs of one supervision step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOutput {
    /// Halting logit (`q_halt`, row 0 of the Q-head, read at position 0); halt when > 0.
    pub q_halt: f32,
    /// Continue logit (`q_continue`, row 1; unused by the official evaluation).
    pub q_continue: f32,
}

fn check_len(buffer: &'static str, got: usize, needed: usize) -> Result<(), RunError> {
    if got == needed {
        Ok(())
    } else {
        Err(RunError::BufferSize {
            buffer,
            needed,
            got,
        })
    }
}

impl Model<'_> {
    /// Elements of one `[S, D]` state buffer (`x`, `z_h` or `z_l`).
    pub const fn state_len(&self) -> usize {
        self.config().seq_total() * self.config().hidden
    }

    /// Elements of the logits buffer `[L, V]`.
    pub const fn logits_len(&self) -> usize {
        self.config().seq_len * self.config().vocab
    }

    /// Input embedding `x = √D · [puzzle prefix ; E[tokens]]`.
    ///
    /// The prefix holds row `puzzle_id` of the puzzle-embedding table, zero-padded to `P·D`
    /// (nothing when the model has no table; `puzzle_id` is then ignored).
    ///
    /// # Shapes
    /// - `tokens`: `[L]` token ids `< V`; `x`: `[S, D]`
    pub fn embed_input(
        &self,
        tokens: &[u8],
        puzzle_id: usize,
        x: &mut [f32],
    ) -> Result<(), RunError> {
        let cfg = self.config();
        check_len("tokens", tokens.len(), cfg.seq_len)?;
        check_len("x", x.len(), self.state_len())?;
        let d = cfg.hidden;
        let (prefix, cells) = x
            .split_at_mut_checked(cfg.puzzle_emb_len * d)
            .ok_or(RunError::Internal)?;
        prefix.fill(0.0);
        if let Some(table) = self.matrix(TensorKind::PuzzleEmb, 0)
            && !table.row_into(puzzle_id, prefix)
        {
            return Err(RunError::PuzzleId {
                id: puzzle_id,
                count: table.rows(),
            });
        }
        let embed = self
            .matrix(TensorKind::Embed, 0)
            .ok_or(RunError::Internal)?;
        for (position, (&token, row)) in tokens.iter().zip(cells.chunks_exact_mut(d)).enumerate() {
            if !embed.row_into(usize::from(token), row) {
                return Err(RunError::Token { position, token });
            }
        }
        let scale = cfg.embed_scale();
        for v in x.iter_mut() {
            *v *= scale;
        }
        Ok(())
    }

    /// Fresh carry: `H_init` at every position of `z_h`, `L_init` at every position of `z_l`.
    ///
    /// # Shapes
    /// - `z_h`, `z_l`: `[S, D]`
    pub fn reset_carry(&self, z_h: &mut [f32], z_l: &mut [f32]) -> Result<(), RunError> {
        check_len("z_h", z_h.len(), self.state_len())?;
        check_len("z_l", z_l.len(), self.state_len())?;
        let d = self.config().hidden;
        for (kind, buf) in [(TensorKind::HInit, z_h), (TensorKind::LInit, z_l)] {
            let init = self.matrix(kind, 0).ok_or(RunError::Internal)?;
            let (first, rest) = buf.split_at_mut_checked(d).ok_or(RunError::Internal)?;
            init.to_f32(first);
            for row in rest.chunks_exact_mut(d) {
                row.copy_from_slice(first);
            }
        }
        Ok(())
    }

    /// One call of the reasoning network in place: `h ← block_{L-1}(… block_0(h))` (the caller
    /// has already added the injection to `h`).
    fn reasoning(&self, h: &mut [f32], scratch: &mut [f32]) -> Result<(), RunError> {
        for layer in 0..self.config().layers {
            block::block(self, layer, h, scratch)?;
        }
        Ok(())
    }

    /// One supervision step (the official inner forward): `T` times { `n` times
    /// `z_l ← f(z_l + (z_h + x))`, then `z_h ← f(z_h + z_l)` }, then the heads:
    /// `logits[j] = lm_head · z_h[P + j]`, `q = q_head · z_h[0] + bias`.
    ///
    /// The carry is updated in place; to teacher-force, overwrite it before the call.
    ///
    /// # Shapes
    /// - `x`, `z_h`, `z_l`: `[S, D]`; `logits`: `[L, V]`; `scratch`: `[scratch_len()]`
    pub fn step(
        &self,
        x: &[f32],
        z_h: &mut [f32],
        z_l: &mut [f32],
        logits: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<StepOutput, RunError> {
        let cfg = self.config();
        for (name, len) in [("x", x.len()), ("z_h", z_h.len()), ("z_l", z_l.len())] {
            check_len(name, len, self.state_len())?;
        }
        check_len("logits", logits.len(), self.logits_len())?;
        if scratch.len() < self.scratch_len() {
            return Err(RunError::BufferSize {
                buffer: "scratch",
                needed: self.scratch_len(),
                got: scratch.len(),
            });
        }
        for _ in 0..cfg.h_cycles {
            for _ in 0..cfg.l_cycles {
                add_sum_assign(z_l, z_h, x);
                self.reasoning(z_l, scratch)?;
            }
            add_assign(z_h, z_l);
            self.reasoning(z_h, scratch)?;
        }
        self.heads(z_h, logits)
    }

    /// Output heads on the final answer state.
    fn heads(&self, z_h: &[f32], logits: &mut [f32]) -> Result<StepOutput, RunError> {
        let cfg = self.config();
        let d = cfg.hidden;
        let lm_head = self
            .matrix(TensorKind::LmHead, 0)
            .ok_or(RunError::Internal)?;
        let cells = z_h.get(cfg.puzzle_emb_len * d..).unwrap_or(&[]);
        for (row, out) in cells
            .chunks_exact(d)
            .zip(logits.chunks_exact_mut(cfg.vocab))
        {
            lm_head.matvec(row, out);
        }
        let q_head = self
            .matrix(TensorKind::QHeadWeight, 0)
            .ok_or(RunError::Internal)?;
        let bias = self
            .matrix(TensorKind::QHeadBias, 0)
            .ok_or(RunError::Internal)?;
        let mut q = [0f32; 2];
        let mut b = [0f32; 2];
        q_head.matvec(z_h.get(..d).unwrap_or(&[]), &mut q);
        bias.to_f32(&mut b);
        Ok(StepOutput {
            q_halt: q[0] + b[0],
            q_continue: q[1] + b[1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::PosEncoding;
    use crate::kernels::arch;

    /// A TRM-MLP Sudoku configuration: hidden `d`, `p` puzzle-embedding positions, inner
    /// widths `i` (channel) and `it` (token mixing).
    fn sudoku_mlp(d: usize, p: usize, i: usize, it: usize) -> ModelConfig {
        ModelConfig {
            variant: Variant::MlpT,
            pos_encoding: PosEncoding::None,
            hidden: d,
            mlp_inter: i,
            mlp_t_inter: it,
            layers: 2,
            h_cycles: 3,
            l_cycles: 6,
            halt_max_steps: 16,
            seq_len: 81,
            puzzle_emb_len: p,
            puzzle_emb_ndim: p * d,
            num_puzzle_ids: 1,
            vocab: 11,
            num_heads: 2,
            head_dim: d / 2,
            rms_eps: 1e-5,
            rope_theta: 10_000.0,
            expansion: 4.0,
        }
    }

    /// The scratch of this build is [`scratch_len_for`] its own shape, and the sizes of every
    /// shape are the ones the module docs (and the firmware's RAM check) state.
    #[test]
    fn scratch_of_each_tile_shape() {
        let (h64, h128) = (sudoku_mlp(64, 16, 256, 512), sudoku_mlp(128, 1, 512, 256));
        for cfg in [&h64, &h128] {
            assert_eq!(scratch_len_for(cfg, TileShape::THIS), scratch_len(cfg));
        }
        let bytes = |cfg, shape| scratch_len_for(cfg, shape).map(|n| 4 * n);
        assert_eq!(bytes(&h64, TileShape::CORTEX_M_DSP), Some(11_800));
        assert_eq!(bytes(&h128, TileShape::CORTEX_M_DSP), Some(12_296));
        assert_eq!(bytes(&h64, TileShape::VECTOR), Some(4_872));
        let wide = TileShape {
            tile: 32,
            group_bytes: 128,
        };
        assert_eq!(bytes(&h64, wide), Some(172_416));
        assert_eq!(bytes(&h128, wide), Some(180_352));
        // Sizes that overflow are refused, not wrapped.
        let huge = ModelConfig {
            mlp_inter: usize::MAX / 2,
            ..h64
        };
        assert_eq!(scratch_len_for(&huge, TileShape::CORTEX_M_DSP), None);
        assert_eq!(TileShape::CORTEX_M_DSP.work_len(usize::MAX), None);
        assert_eq!(TileShape::THIS.tile_bytes(usize::MAX - 3), None);
    }

    /// Each shape's work buffer is exactly what its kernels' quantiser needs: the Cortex-M
    /// shape is `cortex_m`'s tile and layout, this build's shape its own kernels'.
    #[test]
    fn tile_shapes_match_their_kernels() {
        let dsp = TileShape::CORTEX_M_DSP;
        assert_eq!(dsp.tile, arch::cortex_m::TILE);
        assert_eq!(Some(dsp.group_bytes), arch::cortex_m::tile_bytes(1));
        assert_eq!(TileShape::THIS.tile, TILE);
        for cols in [1, 2, 3, 4, 5, 63, 64, 97, 130, 512] {
            let n = dsp.work_len(cols).unwrap() - dsp.tile;
            let x = std::vec![0.5f32; cols * dsp.tile];
            let mut q = std::vec![0u8; 4 * n];
            let mut s = [0f32; arch::cortex_m::TILE];
            assert!(arch::cortex_m::quantize_tile(&x, cols, &mut q, &mut s));
            assert!(!arch::cortex_m::quantize_tile(
                &x,
                cols,
                &mut q[..4 * n - 4],
                &mut s
            ));
            let this = TileShape::THIS;
            if this.tile > 1 {
                let n = this.work_len(cols).unwrap() - this.tile;
                let x = std::vec![0.5f32; cols * TILE];
                let mut q = std::vec![0u8; 4 * n];
                let mut s = [0f32; TILE];
                assert!(arch::quantize_tile(&x, cols, &mut q, &mut s));
                assert!(!arch::quantize_tile(&x, cols, &mut q[..4 * n - 4], &mut s));
            }
            assert_eq!(
                crate::kernels::Matrix::tile_work_len(cols),
                this.work_len(cols)
            );
        }
    }
}
