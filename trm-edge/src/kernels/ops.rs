//! Element-wise and normalisation kernels of the TRM block (f32, in place).

use super::generic::dot;

/// Scale-free RMSNorm in place: `v ← v · 1/√(mean(v²) + eps)` (official `rms_norm`, f32).
///
/// # Shapes
/// - `v`: `[n]`, any `n` (an empty slice is left alone)
pub fn rms_norm(v: &mut [f32], eps: f32) {
    if v.is_empty() {
        return;
    }
    let mean = dot(v, v) / v.len() as f32;
    let inv = 1.0 / libm::sqrtf(mean + eps);
    for x in v.iter_mut() {
        *x *= inv;
    }
}

/// `a · sigmoid(a)` computed as PyTorch does, `a / (1 + e^(−a))`.
pub fn silu(a: f32) -> f32 {
    a / (1.0 + libm::expf(-a))
}

/// SwiGLU activation in place: `gate[i] ← silu(gate[i]) · up[i]`.
///
/// # Shapes
/// - `gate`, `up`: `[I]`
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = silu(*g) * u;
    }
}

/// `dst[i] += src[i]`.
///
/// # Shapes
/// - `dst`, `src`: `[n]`
pub fn add_assign(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// `dst[i] += a[i] + b[i]`, with `a + b` rounded first (the official
/// `h + (z_H + x)` injection order).
///
/// # Shapes
/// - `dst`, `a`, `b`: `[n]`
pub fn add_sum_assign(dst: &mut [f32], a: &[f32], b: &[f32]) {
    for ((d, x), y) in dst.iter_mut().zip(a).zip(b) {
        *d += x + y;
    }
}

/// Numerically stable softmax in place: `v ← exp(v − max) / Σ exp(v − max)`.
///
/// # Shapes
/// - `v`: `[n]`
pub fn softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for x in v.iter_mut() {
        *x = libm::expf(*x - max);
        sum += *x;
    }
    if sum > 0.0 {
        let inv = 1.0 / sum;
        for x in v.iter_mut() {
            *x *= inv;
        }
    }
}

/// RoPE on one head in place: `v ← v·cos + rotate_half(v)·sin`,
/// `rotate_half(v) = [−v[h/2..], v[..h/2]]`.
///
/// # Shapes
/// - `v`, `cos`, `sin`: `[hd]` (`hd` even; `cos`/`sin` are row `p` of the tables)
pub fn rope(v: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = v.len() / 2;
    let (lo, hi) = v.split_at_mut(half);
    let (cos_lo, cos_hi) = cos.split_at(half.min(cos.len()));
    let (sin_lo, sin_hi) = sin.split_at(half.min(sin.len()));
    for (((((a, b), cl), ch), sl), sh) in lo
        .iter_mut()
        .zip(hi.iter_mut())
        .zip(cos_lo)
        .zip(cos_hi)
        .zip(sin_lo)
        .zip(sin_hi)
    {
        let (x1, x2) = (*a, *b);
        *a = x1 * cl + (-x2) * sl;
        *b = x2 * ch + x1 * sh;
    }
}

/// Index of the largest value (the first one on ties, like `torch.argmax`); 0 when empty.
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &x) in v.iter().enumerate() {
        if x > best_v {
            best = i;
            best_v = x;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_gives_unit_mean_square() {
        let mut v = [1.0f32, -2.0, 3.0, 4.0];
        rms_norm(&mut v, 0.0);
        let ms: f32 = v.iter().map(|x| x * x).sum::<f32>() / 4.0;
        assert!((ms - 1.0).abs() < 1e-6);
    }

    #[test]
    fn softmax_sums_to_one_and_rope_rotates() {
        let mut s = [1.0f32, 2.0, 3.0, 1000.0];
        softmax(&mut s);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6 && s[3] > 0.999);
        let mut v = [1.0f32, 0.0, 0.0, 1.0];
        // angle π/2 on both frequencies: (x1, x2) -> (-x2, x1)
        rope(&mut v, &[0.0; 4], &[1.0; 4]);
        assert_eq!(v, [0.0, -1.0, 1.0, 0.0]);
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
    }
}
