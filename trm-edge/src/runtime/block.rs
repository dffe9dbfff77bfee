//! One block of the reasoning network, computed in place on `h` `[S, D]` with
//! O(TILE·(S + D + I + It)) extra memory: the token-mixing MLP [`TILE`] channels (columns) at a
//! time, the channel MLP [`TILE`] positions (rows) at a time, each tile transposed (`[k, TILE]`)
//! so that every weight read feeds a whole tile ([`Matrix::matmul_tile`]).

use super::error::RunError;
use super::take;
use crate::format::{Model, PosEncoding, TensorKind, Variant};
use crate::kernels::generic::dot;
use crate::kernels::ops::{rms_norm, rope};
use crate::kernels::{Matrix, TILE, arch};

/// The SwiGLU of one transposed tile: `o = down(silu(gate·xt) · (up·xt))`.
///
/// # Shapes
/// - `xt`: `[n, TILE]`; `gu`: `[2·I, TILE]` (work); `o`: `[out, TILE]`; `work`: the int8
///   products' ([`super::work_len`])
fn swiglu_tile(
    gate_up: Matrix<'_>,
    down: Matrix<'_>,
    xt: &[f32],
    gu: &mut [f32],
    o: &mut [f32],
    work: &mut [f32],
) -> Result<(), RunError> {
    gate_up.matmul_tile(xt, gu, work);
    let (g, u) = gu
        .split_at_mut_checked(gate_up.rows() / 2 * TILE)
        .ok_or(RunError::Internal)?;
    arch::swiglu(g, u);
    down.matmul_tile(g, o, work);
    Ok(())
}

/// Leftover tiles of fewer than this many rows run row by row ([`swiglu_row`]): 1 or 2 rows of
/// a wide tile; the last odd row of a tile of 2 (one matrix-vector product costs less than a
/// tile product with an empty lane); none with a tile of 1 (its tile product is a
/// matrix-vector product).
const ROW_BY_ROW_BELOW: usize = if TILE >= 16 { 3 } else { TILE / 2 + 1 };

/// `v ← rms_norm(v + down(silu(gate·v) · (up·v)))` for one vector (matrix-vector products).
///
/// # Shapes
/// - `v`: `[n]`; `gu`: at least `[2·I]`; `o`: at least `[n]`
fn swiglu_row(
    gate_up: Matrix<'_>,
    down: Matrix<'_>,
    v: &mut [f32],
    gu: &mut [f32],
    o: &mut [f32],
    eps: f32,
) -> Result<(), RunError> {
    let inter = gate_up.rows() / 2;
    let gu = gu.get_mut(..2 * inter).ok_or(RunError::Internal)?;
    let o = o.get_mut(..v.len()).ok_or(RunError::Internal)?;
    gate_up.matvec(v, gu);
    let (g, u) = gu.split_at_mut(inter);
    arch::swiglu(g, u);
    down.matvec(g, o);
    for (x, y) in v.iter_mut().zip(o.iter()) {
        *x += y;
    }
    rms_norm(v, eps);
    Ok(())
}

/// The weights of one SwiGLU (`[2·I, n]` fused gate/up and `[n, I]` down).
fn swiglu_weights<'a>(
    model: &Model<'a>,
    gate_up: TensorKind,
    down: TensorKind,
    layer: usize,
) -> Result<(Matrix<'a>, Matrix<'a>), RunError> {
    Ok((
        model.matrix(gate_up, layer).ok_or(RunError::Internal)?,
        model.matrix(down, layer).ok_or(RunError::Internal)?,
    ))
}

/// Copies rows `first .. first + t` of `h` `[rows, d]` into `xt` `[d, TILE]` transposed,
/// zero in the unused lanes `t .. TILE`.
fn gather_rows(h: &[f32], d: usize, first: usize, t: usize, xt: &mut [f32]) {
    if t < TILE {
        xt.fill(0.0);
    }
    let rows = h.chunks_exact(d).skip(first).take(t);
    for (r, row) in rows.enumerate() {
        for (v, lane) in row.iter().zip(xt.chunks_exact_mut(TILE)) {
            if let Some(slot) = lane.get_mut(r) {
                *slot = *v;
            }
        }
    }
}

/// Channel SwiGLU on every position (row) of `h` `[S, D]`, post-norm, [`TILE`] rows at a time.
///
/// Scratch: `xt` `[D, TILE]`, gate/up `[2·I, TILE]`, output `[D, TILE]`.
fn channel_mlp(
    model: &Model<'_>,
    layer: usize,
    h: &mut [f32],
    scratch: &mut [f32],
    work: &mut [f32],
) -> Result<(), RunError> {
    let cfg = model.config();
    let d = cfg.hidden;
    let (gate_up, down) = swiglu_weights(model, TensorKind::MlpGateUp, TensorKind::MlpDown, layer)?;
    let (xt, rest) = take(scratch, d * TILE)?;
    let (gu, rest) = take(rest, 2 * cfg.mlp_inter * TILE)?;
    let (o, _) = take(rest, d * TILE)?;
    let rows = h.len() / d.max(1);
    let mut first = 0;
    while first < rows {
        let t = TILE.min(rows - first);
        if t < ROW_BY_ROW_BELOW {
            // A few leftover rows (S = 97 = 6·16 + 1): one matrix-vector pass each costs less
            // than a whole tile pass.
            for row in h.chunks_exact_mut(d).skip(first).take(t) {
                swiglu_row(gate_up, down, row, gu, o, cfg.rms_eps)?;
            }
            first += t;
            continue;
        }
        gather_rows(h, d, first, t, xt);
        swiglu_tile(gate_up, down, xt, gu, o, work)?;
        for (r, row) in h.chunks_exact_mut(d).skip(first).take(t).enumerate() {
            for (v, lane) in row.iter_mut().zip(o.chunks_exact(TILE)) {
                *v += lane.get(r).copied().unwrap_or(0.0);
            }
            rms_norm(row, cfg.rms_eps);
        }
        first += t;
    }
    Ok(())
}

/// Token-mixing SwiGLU over the sequence axis on every channel (column) of `h` `[S, D]`,
/// [`TILE`] channels at a time; the RMSNorm is over the sequence axis too (official `mlp_t`).
///
/// Scratch: `xt` `[S, TILE]` (then one column `[S]`), gate/up `[2·It, TILE]`, output
/// `[S, TILE]`.
fn token_mlp(
    model: &Model<'_>,
    layer: usize,
    h: &mut [f32],
    scratch: &mut [f32],
    work: &mut [f32],
) -> Result<(), RunError> {
    let cfg = model.config();
    let (s_len, d) = (cfg.seq_total(), cfg.hidden);
    let (gate_up, down) =
        swiglu_weights(model, TensorKind::MlpTGateUp, TensorKind::MlpTDown, layer)?;
    let (xt, rest) = take(scratch, s_len * TILE)?;
    let (gu, rest) = take(rest, 2 * cfg.mlp_t_inter * TILE)?;
    let (o, _) = take(rest, s_len * TILE)?;
    let mut first = 0;
    while first < d {
        let t = TILE.min(d - first);
        if t < TILE {
            xt.fill(0.0);
        }
        for (row, lane) in h.chunks_exact(d).zip(xt.chunks_exact_mut(TILE)) {
            let src = row.get(first..first + t).ok_or(RunError::Internal)?;
            lane.get_mut(..t)
                .ok_or(RunError::Internal)?
                .copy_from_slice(src);
        }
        swiglu_tile(gate_up, down, xt, gu, o, work)?;
        // Residual and norm per channel, on a contiguous column (the row-wise kernels' order).
        let col = xt.get_mut(..s_len).ok_or(RunError::Internal)?;
        for r in 0..t {
            for ((c, row), lane) in col
                .iter_mut()
                .zip(h.chunks_exact(d))
                .zip(o.chunks_exact(TILE))
            {
                *c = row.get(first + r).copied().unwrap_or(0.0)
                    + lane.get(r).copied().unwrap_or(0.0);
            }
            rms_norm(col, cfg.rms_eps);
            for (c, row) in col.iter().zip(h.chunks_exact_mut(d)) {
                if let Some(v) = row.get_mut(first + r) {
                    *v = *c;
                }
            }
        }
        first += t;
    }
    Ok(())
}

/// Self-attention with optional RoPE, post-norm: `h ← rms_norm(h + o_proj(attn(h)))`.
///
/// Memory: `qkv` `[S, 3D]`, one score row `[S]`, one attention row `[D]`, RoPE rows `[hd]` ×2,
/// and tiles `xt` `[D, TILE]`, `yt` `[3D, TILE]` (the q/k/v projection, then the attention
/// rows and the output projection of [`TILE`] positions).
fn attention(
    model: &Model<'_>,
    layer: usize,
    h: &mut [f32],
    scratch: &mut [f32],
    work: &mut [f32],
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
    let (cos, rest) = take(rest, hd)?;
    let (sin, rest) = take(rest, hd)?;
    let (xt, rest) = take(rest, d * TILE)?;
    let (yt, _) = take(rest, 3 * d * TILE)?;
    // q, k, v of every position, TILE positions per pass over the weights.
    let mut first = 0;
    while first < s_len {
        let t = TILE.min(s_len - first);
        gather_rows(h, d, first, t, xt);
        qkv_w.matmul_tile(xt, yt, work);
        for (r, row) in qkv.chunks_exact_mut(3 * d).skip(first).take(t).enumerate() {
            for (v, lane) in row.iter_mut().zip(yt.chunks_exact(TILE)) {
                *v = lane.get(r).copied().unwrap_or(0.0);
            }
        }
        first += t;
    }
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
    let (at, ot) = yt.split_at_mut(d * TILE);
    let mut first = 0;
    while first < s_len {
        let t = TILE.min(s_len - first);
        if t < TILE {
            at.fill(0.0);
        }
        for r in 0..t {
            let i = first + r;
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
                arch::softmax(scores);
                out.fill(0.0);
                for (p, row) in scores.iter().zip(qkv.chunks_exact(3 * d)) {
                    for (a, v) in out.iter_mut().zip(row.get(v_at..v_at + hd).unwrap_or(&[])) {
                        *a += p * v;
                    }
                }
            }
            for (v, lane) in attn.iter().zip(at.chunks_exact_mut(TILE)) {
                if let Some(slot) = lane.get_mut(r) {
                    *slot = *v;
                }
            }
        }
        o_w.matmul_tile(at, ot, work);
        for (r, h_row) in h.chunks_exact_mut(d).skip(first).take(t).enumerate() {
            for (v, lane) in h_row.iter_mut().zip(ot.chunks_exact(TILE)) {
                *v += lane.get(r).copied().unwrap_or(0.0);
            }
            rms_norm(h_row, cfg.rms_eps);
        }
        first += t;
    }
    Ok(())
}

/// Applies block `layer` to `h` `[S, D]` in place; `scratch` ends with the work buffer of the
/// int8 tile products ([`super::work_len`] elements; at the end, so that the other buffers sit
/// where they would without it).
pub(super) fn block(
    model: &Model<'_>,
    layer: usize,
    h: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), RunError> {
    let work_len = super::work_len(model.config()).ok_or(RunError::Internal)?;
    let got = scratch.len();
    let (scratch, work) = scratch
        .split_at_mut_checked(got.checked_sub(work_len).ok_or(RunError::BufferSize {
            buffer: "scratch",
            needed: work_len,
            got,
        })?)
        .ok_or(RunError::Internal)?;
    match model.config().variant {
        Variant::MlpT => token_mlp(model, layer, h, scratch, work)?,
        Variant::Attention => attention(model, layer, h, scratch, work)?,
    }
    channel_mlp(model, layer, h, scratch, work)
}
