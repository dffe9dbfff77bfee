//! One block of the reasoning network, computed in place on `h` `[S, D]` with O(S·D + I + It)
//! extra memory: the token-mixing MLP column by column, the channel MLP row by row.

use super::error::RunError;
use super::take;
use crate::format::{Model, PosEncoding, TensorKind, Variant};
use crate::kernels::Matrix;
use crate::kernels::generic::dot;
use crate::kernels::ops::{add_assign, rms_norm, rope, softmax, swiglu};

/// Splits a fused `[2·I, n]` gate/up matrix into its gate and up halves.
fn halves<'a>(m: Matrix<'a>) -> Result<(Matrix<'a>, Matrix<'a>), RunError> {
    let inter = m.rows() / 2;
    Ok((
        m.row_range(0, inter).ok_or(RunError::Internal)?,
        m.row_range(inter, inter).ok_or(RunError::Internal)?,
    ))
}

/// `v ← rms_norm(v + SwiGLU(v))` for one vector, `SwiGLU(v) = down(silu(gate v) · up v)`.
///
/// # Shapes
/// - `v`: `[n]`; `scratch`: at least `2·I + n`
fn swiglu_residual(
    v: &mut [f32],
    gate_up: Matrix<'_>,
    down: Matrix<'_>,
    eps: f32,
    scratch: &mut [f32],
) -> Result<(), RunError> {
    let (gate, up) = halves(gate_up)?;
    let inter = gate.rows();
    let (g, rest) = take(scratch, inter)?;
    let (u, rest) = take(rest, inter)?;
    let (out, _) = take(rest, v.len())?;
    gate.matvec(v, g);
    up.matvec(v, u);
    swiglu(g, u);
    down.matvec(g, out);
    add_assign(v, out);
    rms_norm(v, eps);
    Ok(())
}

/// Channel SwiGLU on every position (row) of `h` `[S, D]`, post-norm.
fn channel_mlp(
    model: &Model<'_>,
    layer: usize,
    h: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), RunError> {
    let cfg = model.config();
    let gate_up = model
        .matrix(TensorKind::MlpGateUp, layer)
        .ok_or(RunError::Internal)?;
    let down = model
        .matrix(TensorKind::MlpDown, layer)
        .ok_or(RunError::Internal)?;
    for row in h.chunks_exact_mut(cfg.hidden) {
        swiglu_residual(row, gate_up, down, cfg.rms_eps, scratch)?;
    }
    Ok(())
}

/// Token-mixing SwiGLU over the sequence axis on every channel (column) of `h` `[S, D]`;
/// the RMSNorm is over the sequence axis too (official `mlp_t`).
fn token_mlp(
    model: &Model<'_>,
    layer: usize,
    h: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), RunError> {
    let cfg = model.config();
    let gate_up = model
        .matrix(TensorKind::MlpTGateUp, layer)
        .ok_or(RunError::Internal)?;
    let down = model
        .matrix(TensorKind::MlpTDown, layer)
        .ok_or(RunError::Internal)?;
    let (col, rest) = take(scratch, cfg.seq_total())?;
    for d in 0..cfg.hidden {
        for (c, v) in col.iter_mut().zip(h.iter().skip(d).step_by(cfg.hidden)) {
            *c = *v;
        }
        swiglu_residual(col, gate_up, down, cfg.rms_eps, rest)?;
        for (v, c) in h.iter_mut().skip(d).step_by(cfg.hidden).zip(col.iter()) {
            *v = *c;
        }
    }
    Ok(())
}

/// Self-attention with optional RoPE, post-norm: `h ← rms_norm(h + o_proj(attn(h)))`.
///
/// Memory: `qkv` `[S, 3D]`, one score row `[S]`, one output row `[D]` ×2, RoPE rows `[hd]` ×2.
fn attention(
    model: &Model<'_>,
    layer: usize,
    h: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), RunError> {
    let cfg = model.config();
    let (s_len, d, hd, nh) = (cfg.seq_total(), cfg.hidden, cfg.head_dim, cfg.num_heads);
    let qkv_w = model
        .matrix(TensorKind::AttnQkv, layer)
        .ok_or(RunError::Internal)?;
    let o_w = model
        .matrix(TensorKind::AttnOut, layer)
        .ok_or(RunError::Internal)?;
    let (qkv, rest) = take(scratch, 3 * s_len * d)?;
    let (scores, rest) = take(rest, s_len)?;
    let (attn, rest) = take(rest, d)?;
    let (o, rest) = take(rest, d)?;
    let (cos, rest) = take(rest, hd)?;
    let (sin, _) = take(rest, hd)?;
    qkv_w.matmul(h, qkv);
    if cfg.pos_encoding == PosEncoding::Rope {
        let cos_t = model
            .matrix(TensorKind::RopeCos, 0)
            .ok_or(RunError::Internal)?;
        let sin_t = model
            .matrix(TensorKind::RopeSin, 0)
            .ok_or(RunError::Internal)?;
        for (p, row) in qkv.chunks_exact_mut(3 * d).enumerate() {
            if !(cos_t.row_into(p, cos) && sin_t.row_into(p, sin)) {
                return Err(RunError::Internal);
            }
            // q heads then k heads: the first 2·nh head slices of the row.
            for head in row.chunks_exact_mut(hd).take(2 * nh) {
                rope(head, cos, sin);
            }
        }
    }
    let scale = 1.0 / libm::sqrtf(hd as f32);
    for (i, h_row) in h.chunks_exact_mut(d).enumerate() {
        let q_row = qkv
            .get(i * 3 * d..i * 3 * d + d)
            .ok_or(RunError::Internal)?;
        for (head, (q, out)) in q_row
            .chunks_exact(hd)
            .zip(attn.chunks_exact_mut(hd))
            .enumerate()
        {
            let k_at = d + head * hd;
            let v_at = 2 * d + head * hd;
            for (sc, row) in scores.iter_mut().zip(qkv.chunks_exact(3 * d)) {
                *sc = dot(q, row.get(k_at..k_at + hd).unwrap_or(&[])) * scale;
            }
            softmax(scores);
            out.fill(0.0);
            for (p, row) in scores.iter().zip(qkv.chunks_exact(3 * d)) {
                for (a, v) in out.iter_mut().zip(row.get(v_at..v_at + hd).unwrap_or(&[])) {
                    *a += p * v;
                }
            }
        }
        o_w.matvec(attn, o);
        add_assign(h_row, o);
        rms_norm(h_row, cfg.rms_eps);
    }
    Ok(())
}

/// Applies block `layer` to `h` `[S, D]` in place.
pub(super) fn block(
    model: &Model<'_>,
    layer: usize,
    h: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), RunError> {
    match model.config().variant {
        Variant::MlpT => token_mlp(model, layer, h, scratch)?,
        Variant::Attention => attention(model, layer, h, scratch)?,
    }
    channel_mlp(model, layer, h, scratch)
}
