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

/// `e^x` in f32, branch-free so that loops over it vectorise (the SIMD builds of
/// [`swiglu`] and [`softmax`] run this very code on 8 lanes and give identical results).
///
/// Cephes `expf`: `x = n·ln 2 + r` with `n = round(x / ln 2)` (ln 2 split in two constants, so
/// `r` is exact to about 2^-33) and `|r| ≤ ln 2 / 2`, `e^r` by a degree-7 polynomial (Cephes
/// coefficients), times `2^n` built in the exponent bits. Only multiplications and additions
/// (no FMA), so every target computes the same bits.
///
/// Error bound: ≤ 2 ulp relative to the exact `e^x` for `x` in `[−87, 88]` (measured: at most
/// 1.8e-7 relative, i.e. < 1.6 ulp, on 2^21 points by `exp_is_within_two_ulp`); outside it
/// `x` is clamped first, so the result saturates at `e^−87 ≈ 1.6e-38` and `e^88 ≈ 1.7e38`
/// instead of underflowing to 0 or overflowing to ∞ (absolute error below 1.7e-38 on the low
/// side). NaN gives NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    // ln 2 = C1 + C2, C1 exact in few bits so that n·C1 is exact.
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = (x - n * C1) - n * C2;
    let p = 1.987_569_2e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let p = (p * (r * r) + r) + 1.0;
    // n in [-126, 127]: the low bits of t hold n (two's complement within 2^22).
    let ni = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let scale = f32::from_bits((ni.wrapping_add(127) as u32) << 23);
    p * scale
}

/// `a · sigmoid(a)` computed as PyTorch does, `a / (1 + e^(−a))`, with [`exp`] (relative error
/// within about 3 ulp of the exactly rounded value).
#[inline(always)]
pub fn silu(a: f32) -> f32 {
    a / (1.0 + exp(-a))
}

/// SwiGLU activation in place: `gate[i] ← silu(gate[i]) · up[i]` (vectorisable: see [`exp`]).
///
/// # Shapes
/// - `gate`, `up`: `[I]`
// Always inlined, so that the SIMD builds in `arch` compile this body with their features.
#[inline(always)]
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let (gate, up) = (&mut gate[..n], &up[..n]);
    // Blocks of 16 independent lanes: two vector chains in flight per iteration.
    let (gb, gt) = gate.as_chunks_mut::<16>();
    let (ub, ut) = up.as_chunks::<16>();
    for (gc, uc) in gb.iter_mut().zip(ub) {
        for (g, u) in gc.iter_mut().zip(uc) {
            *g = silu(*g) * u;
        }
    }
    for (g, u) in gt.iter_mut().zip(ut) {
        *g = silu(*g) * u;
    }
}

/// Backward of [`swiglu`] (for training): from the gradient `da` of `a = silu(g) · u` and the
/// forward's `g` and `u`, writes `dg = da · u · σ(g)(1 + g(1 − σ(g)))` and `du = da · silu(g)`,
/// with `σ(g) = 1 / (1 + e^(−g))` by [`exp`] (vectorisable like [`swiglu`]).
///
/// # Shapes
/// - `gate`, `up`, `da`, `d_gate`, `d_up`: `[I]` (the shortest length is used)
// Always inlined, so that the SIMD builds in `arch` compile this body with their features.
#[inline(always)]
pub fn swiglu_backward(gate: &[f32], up: &[f32], da: &[f32], d_gate: &mut [f32], d_up: &mut [f32]) {
    let n = gate
        .len()
        .min(up.len())
        .min(da.len())
        .min(d_gate.len())
        .min(d_up.len());
    let (gate, up, da) = (&gate[..n], &up[..n], &da[..n]);
    let (d_gate, d_up) = (&mut d_gate[..n], &mut d_up[..n]);
    for i in 0..n {
        let (g, u, a) = (gate[i], up[i], da[i]);
        let sig = 1.0 / (1.0 + exp(-g));
        d_gate[i] = a * u * (sig * (1.0 + g * (1.0 - sig)));
        d_up[i] = a * (g * sig);
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
// Always inlined, so that the SIMD builds in `arch` compile this body with their features.
#[inline(always)]
pub fn softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for x in v.iter_mut() {
        *x = exp(*x - max);
    }
    for x in v.iter() {
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

    #[test]
    fn swiglu_backward_is_the_derivative_of_swiglu() {
        // Central differences of a = silu(g)·u in f64 against the closed form.
        let f = |g: f64, u: f64| g / (1.0 + (-g).exp()) * u;
        let gate: [f32; 7] = [-30.0, -3.0, -0.5, 0.0, 0.25, 2.0, 40.0];
        let up: [f32; 7] = [0.5, -1.0, 2.0, 1.5, -0.75, 1.0, 0.1];
        let da: [f32; 7] = [1.0, 0.5, -2.0, 1.0, 3.0, -1.0, 2.0];
        let (mut dg, mut du) = ([0f32; 7], [0f32; 7]);
        swiglu_backward(&gate, &up, &da, &mut dg, &mut du);
        for i in 0..7 {
            let (g, u, a) = (gate[i] as f64, up[i] as f64, da[i] as f64);
            let h = 1e-6;
            let want_g = a * (f(g + h, u) - f(g - h, u)) / (2.0 * h);
            let want_u = a * f(g, 1.0);
            assert!(
                (dg[i] as f64 - want_g).abs() <= 1e-5 * want_g.abs().max(1.0),
                "dg {i}"
            );
            assert!(
                (du[i] as f64 - want_u).abs() <= 1e-6 * want_u.abs().max(1.0),
                "du {i}"
            );
        }
    }

    #[test]
    fn exp_is_within_two_ulp() {
        let (lo, hi) = (-87.0f64, 88.0f64);
        let n = 1 << 21;
        let mut worst = 0f64;
        for i in 0..=n {
            let x = (lo + (hi - lo) * i as f64 / n as f64) as f32;
            let want = (x as f64).exp();
            let rel = ((exp(x) as f64 - want) / want).abs();
            worst = worst.max(rel);
        }
        assert!(worst <= 1.8e-7, "max relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(-1000.0) > 0.0 && exp(-1000.0) < 2e-38);
        assert!(exp(1000.0).is_finite() && exp(1000.0) > 1e38);
        // silu against f64.
        for i in -400..=400 {
            let a = i as f32 * 0.05;
            let want = a as f64 / (1.0 + (-(a as f64)).exp());
            assert!(
                (silu(a) as f64 - want).abs() <= 4e-7 * want.abs().max(1e-30),
                "{a}"
            );
        }
    }
}
