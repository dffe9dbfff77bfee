//! Building blocks of the TRM reasoning network, mirroring `models/layers.py` of the official code:
//! bias-free linear layers, SwiGLU, scale-free RMSNorm, RoPE attention and the post-norm block.

use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::Rng;

use super::config::{TrmConfig, swiglu_inter};
use super::fused;

/// Samples the official truncated normal (`trunc_normal_init_`: truncation at ±2 of a standard
/// normal, rescaled so the *truncated* distribution has standard deviation `std`).
///
/// The official code samples by inverse CDF; this samples the same distribution by rejection.
pub fn trunc_normal<R: Rng>(n: usize, std: f64, rng: &mut R) -> Vec<f32> {
    if std == 0.0 {
        return vec![0.0; n];
    }
    let (lower, upper) = (-2.0f64, 2.0f64);
    let sqrt2 = std::f64::consts::SQRT_2;
    let a = libm_erf(lower / sqrt2);
    let b = libm_erf(upper / sqrt2);
    let z = (b - a) / 2.0;
    let c = (2.0 * std::f64::consts::PI).powf(-0.5);
    let pdf_u = c * (-0.5 * lower * lower).exp();
    let pdf_l = c * (-0.5 * upper * upper).exp();
    let comp_std =
        std / (1.0 - (upper * pdf_u - lower * pdf_l) / z - ((pdf_u - pdf_l) / z).powi(2)).sqrt();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        // Box-Muller, rejecting samples outside [-2, 2].
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        for s in [
            r * (2.0 * std::f64::consts::PI * u2).cos(),
            r * (2.0 * std::f64::consts::PI * u2).sin(),
        ] {
            if (lower..=upper).contains(&s) && out.len() < n {
                out.push((s * comp_std) as f32);
            }
        }
    }
    out
}

/// The error function (Abramowitz-Stegun 7.1.26 is not precise enough; this is a series /
/// continued-fraction evaluation accurate to ~1e-15, only used to compute init constants).
fn libm_erf(x: f64) -> f64 {
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)), converges fast for |x| <= 3.
    let mut sum = 0.0;
    let mut term = x;
    let mut n = 0u32;
    while n < 200 {
        let contrib = term / (2 * n + 1) as f64;
        sum += contrib;
        if contrib.abs() < 1e-17 {
            break;
        }
        n += 1;
        term *= -x * x / n as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

/// A `[rows, cols]` parameter initialised by [`trunc_normal`] (LeCun: `std = 1/sqrt(fan_in)`).
fn trunc_normal_param<R: Rng>(
    rows: usize,
    cols: usize,
    std: f64,
    rng: &mut R,
    device: &Device,
) -> Param<Tensor<2>> {
    Param::from_data(
        TensorData::new(trunc_normal(rows * cols, std, rng), [rows, cols]),
        device,
    )
}

/// `x @ w^T` over the last axis, flattening the leading axes into one matmul.
///
/// # Shapes
/// - `x`: `[..., in]`, `w`: `[out, in]` → `[..., out]`
pub fn linear_t<const D: usize>(x: Tensor<D>, w: Tensor<2>) -> Tensor<D> {
    let dims = x.dims();
    let [out, inp] = w.dims();
    assert_eq!(
        dims[D - 1],
        inp,
        "linear: input width {} != {inp}",
        dims[D - 1]
    );
    let rows: usize = dims[..D - 1].iter().product();
    let y = x.reshape([rows, inp]).matmul(w.transpose());
    let mut out_dims = dims;
    out_dims[D - 1] = out;
    y.reshape(out_dims)
}

/// Scale-free RMSNorm over the last axis: `x / sqrt(mean(x², -1) + eps)` (official `rms_norm`).
///
/// # Shapes
/// - `x`: `[..., n]` → `[..., n]`
pub fn rms_norm<const D: usize>(x: Tensor<D>, eps: f64) -> Tensor<D> {
    let var = x.clone().square().mean_dim(D - 1);
    x.div(var.add_scalar(eps).sqrt())
}

/// SiLU as PyTorch computes it, `x / (1 + exp(−x))`.
///
/// burn's `activation::silu` goes through `exp(−log(1 + exp(−x)))` (three transcendental passes,
/// and slightly different rounding); this form is ~2× faster on ndarray. The exponent is clamped
/// at 80 so that the backward pass stays finite for very negative inputs (the value there is
/// below 1e−33 either way).
///
/// # Shapes
/// - `x`: any → same
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let denom = x.clone().neg().clamp_max(80.0).exp().add_scalar(1.0);
    x.div(denom)
}

/// Official `CastedLinear`: `y = x W^T (+ b)`, weights `[out, in]`, truncated LeCun init.
#[derive(Module, Debug)]
pub struct CastedLinear {
    /// Weight `[out, in]`.
    pub weight: Param<Tensor<2>>,
    /// Optional bias `[out]` (only the Q-head has one).
    pub bias: Option<Param<Tensor<1>>>,
}

impl CastedLinear {
    /// LeCun truncated-normal weight (`std = 1/sqrt(in)`), zero bias.
    pub fn init<R: Rng>(inp: usize, out: usize, bias: bool, rng: &mut R, device: &Device) -> Self {
        Self {
            weight: trunc_normal_param(out, inp, 1.0 / (inp as f64).sqrt(), rng, device),
            bias: bias.then(|| Param::from_tensor(Tensor::zeros([out], device))),
        }
    }

    /// Applies the layer.
    ///
    /// # Shapes
    /// - `x`: `[..., in]` → `[..., out]`
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let y = linear_t(x, self.weight.val());
        match &self.bias {
            None => y,
            Some(b) => {
                let b = b.val();
                let [out] = b.dims();
                let mut shape = [1usize; D];
                shape[D - 1] = out;
                y.add(b.reshape(shape))
            }
        }
    }
}

/// Official `CastedEmbedding`: a `[num, dim]` table looked up by index.
#[derive(Module, Debug)]
pub struct CastedEmbedding {
    /// Table `[num, dim]`.
    pub embedding_weight: Param<Tensor<2>>,
}

impl CastedEmbedding {
    /// Truncated-normal table with the given std.
    pub fn init<R: Rng>(num: usize, dim: usize, std: f64, rng: &mut R, device: &Device) -> Self {
        Self {
            embedding_weight: trunc_normal_param(num, dim, std, rng, device),
        }
    }

    /// Looks the indices up.
    ///
    /// # Shapes
    /// - `idx`: `[B, L]` → `[B, L, dim]`
    pub fn forward(&self, idx: Tensor<2, Int>) -> Tensor<3> {
        let [b, l] = idx.dims();
        let w = self.embedding_weight.val();
        let [_, dim] = w.dims();
        w.select(0, idx.reshape([b * l])).reshape([b, l, dim])
    }
}

/// Official `SwiGLU`: `down(silu(gate) * up)` with `[gate | up] = x W_gate_up^T`.
#[derive(Module, Debug)]
pub struct SwiGlu {
    /// Fused gate/up projection `[2·I, n]` (rows `0..I` = gate, `I..2I` = up).
    pub gate_up_proj: CastedLinear,
    /// Down projection `[n, I]`.
    pub down_proj: CastedLinear,
}

impl SwiGlu {
    /// SwiGLU over width `n` with `I = swiglu_inter(expansion, n)`.
    pub fn init<R: Rng>(n: usize, expansion: f64, rng: &mut R, device: &Device) -> Self {
        let inter = swiglu_inter(expansion, n);
        Self {
            gate_up_proj: CastedLinear::init(n, 2 * inter, false, rng, device),
            down_proj: CastedLinear::init(inter, n, false, rng, device),
        }
    }

    /// Applies the SwiGLU; the fused weight is split (not the activations).
    ///
    /// # Shapes
    /// - `x`: `[..., n]` → `[..., n]`
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let w = self.gate_up_proj.weight.val();
        let inter = w.dims()[0] / 2;
        let gate = linear_t(x.clone(), w.clone().narrow(0, 0, inter));
        let up = linear_t(x, w.narrow(0, inter, inter));
        self.down_proj.forward(silu(gate).mul(up))
    }

    /// The post-norm residual around the SwiGLU, `rms_norm(x + forward(x))` over rows, as one
    /// fused op on the CPU ([`fused::swiglu_norm`]).
    ///
    /// # Shapes
    /// - `x`: `[R, n]` → `[R, n]`
    pub fn residual_norm(&self, x: Tensor<2>, eps: f64) -> Tensor<2> {
        fused::swiglu_norm(
            x,
            self.gate_up_proj.weight.val(),
            self.down_proj.weight.val(),
            eps,
        )
    }

    /// The same over the sequence axis (the token-mixing MLP): each of the `B·D` columns of `h`
    /// is a row of width S ([`fused::swiglu_norm_seq`]).
    ///
    /// # Shapes
    /// - `h`: `[B, S, D]` → `[B, S, D]`
    pub fn residual_norm_seq(&self, h: Tensor<3>, eps: f64) -> Tensor<3> {
        fused::swiglu_norm_seq(
            h,
            self.gate_up_proj.weight.val(),
            self.down_proj.weight.val(),
            eps,
        )
    }
}

/// Rotary position tables (`RotaryEmbedding`): `cos`/`sin` of `concat(f, f)` with
/// `f_i = p · theta^(−2i/hd)` for positions `p = 0..S` (prefix positions included).
#[derive(Module, Debug)]
pub struct Rope {
    /// `[S, hd]`
    pub cos: Tensor<2>,
    /// `[S, hd]`
    pub sin: Tensor<2>,
}

impl Rope {
    /// Builds the tables in f32 the way PyTorch does (`inv_freq` then `outer`, then cos/sin).
    pub fn new(seq: usize, head_dim: usize, theta: f64, device: &Device) -> Self {
        let half = head_dim / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| {
                let e = (2 * i) as f32 / head_dim as f32;
                1.0f32 / (theta as f32).powf(e)
            })
            .collect();
        let mut cos = Vec::with_capacity(seq * head_dim);
        let mut sin = Vec::with_capacity(seq * head_dim);
        for p in 0..seq {
            for j in 0..head_dim {
                let f = p as f32 * inv_freq[j % half];
                cos.push(f.cos());
                sin.push(f.sin());
            }
        }
        Self {
            cos: Tensor::from_data(TensorData::new(cos, [seq, head_dim]), device),
            sin: Tensor::from_data(TensorData::new(sin, [seq, head_dim]), device),
        }
    }

    /// `x * cos + rotate_half(x) * sin`, `rotate_half(x) = concat(−x[hd/2:], x[:hd/2])`.
    ///
    /// # Shapes
    /// - `x`: `[B, S, H, hd]` → `[B, S, H, hd]`
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, s, _, hd] = x.dims();
        let cos = self.cos.clone().reshape([1, s, 1, hd]);
        let sin = self.sin.clone().reshape([1, s, 1, hd]);
        let half = hd / 2;
        let x1 = x.clone().narrow(3, 0, half);
        let x2 = x.clone().narrow(3, half, half);
        let rot = Tensor::cat(vec![x2.neg(), x1], 3);
        x.mul(cos).add(rot.mul(sin))
    }
}

/// Official non-causal multi-head self-attention (`num_key_value_heads = num_heads`).
#[derive(Module, Debug)]
pub struct Attention {
    /// `[3·nh·hd, D]`: output features `[q heads | k heads | v heads]`.
    pub qkv_proj: CastedLinear,
    /// `[D, nh·hd]`
    pub o_proj: CastedLinear,
    /// Number of heads nh.
    pub num_heads: usize,
    /// Head dimension hd.
    pub head_dim: usize,
}

impl Attention {
    /// Attention with `num_heads` heads of `hidden / num_heads`.
    pub fn init<R: Rng>(hidden: usize, num_heads: usize, rng: &mut R, device: &Device) -> Self {
        let head_dim = hidden / num_heads;
        Self {
            qkv_proj: CastedLinear::init(hidden, 3 * num_heads * head_dim, false, rng, device),
            o_proj: CastedLinear::init(num_heads * head_dim, hidden, false, rng, device),
            num_heads,
            head_dim,
        }
    }

    /// `softmax(q kᵀ / sqrt(hd)) v`, heads concatenated, then `o_proj`.
    ///
    /// # Shapes
    /// - `h`: `[B, S, D]` → `[B, S, D]`
    pub fn forward(&self, h: Tensor<3>, rope: Option<&Rope>) -> Tensor<3> {
        let [b, s, _] = h.dims();
        let (nh, hd) = (self.num_heads, self.head_dim);
        let qkv = self.qkv_proj.forward(h).reshape([b, s, 3 * nh, hd]);
        let mut q = qkv.clone().narrow(2, 0, nh);
        let mut k = qkv.clone().narrow(2, nh, nh);
        let v = qkv.narrow(2, 2 * nh, nh);
        if let Some(rope) = rope {
            q = rope.apply(q);
            k = rope.apply(k);
        }
        let q = q.swap_dims(1, 2); // [B, nh, S, hd]
        let k = k.swap_dims(1, 2);
        let v = v.swap_dims(1, 2);
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (hd as f64).sqrt());
        let attn = softmax(scores, 3).matmul(v); // [B, nh, S, hd]
        let out = attn.swap_dims(1, 2).reshape([b, s, nh * hd]);
        self.o_proj.forward(out)
    }
}

/// Post-norm block: (token-mixing SwiGLU over the sequence | attention), then channel SwiGLU,
/// each followed by a scale-free RMSNorm of the residual sum.
#[derive(Module, Debug)]
pub struct Block {
    /// TRM-MLP token mixer over the sequence axis (`mlp_t`), width S.
    pub mlp_t: Option<SwiGlu>,
    /// TRM-Att self-attention (`self_attn`).
    pub self_attn: Option<Attention>,
    /// Channel SwiGLU (`mlp`), width D.
    pub mlp: SwiGlu,
    /// RMSNorm epsilon.
    pub eps: f64,
}

impl Block {
    /// Builds a block for the config.
    pub fn init<R: Rng>(cfg: &TrmConfig, rng: &mut R, device: &Device) -> Self {
        let (mlp_t, self_attn) = if cfg.mlp_t {
            (
                Some(SwiGlu::init(
                    cfg.total_seq_len(),
                    cfg.expansion,
                    rng,
                    device,
                )),
                None,
            )
        } else {
            (
                None,
                Some(Attention::init(cfg.hidden_size, cfg.num_heads, rng, device)),
            )
        };
        Self {
            mlp_t,
            self_attn,
            mlp: SwiGlu::init(cfg.hidden_size, cfg.expansion, rng, device),
            eps: cfg.rms_norm_eps,
        }
    }

    /// Applies the block.
    ///
    /// # Shapes
    /// - `h`: `[B, S, D]` → `[B, S, D]`
    pub fn forward(&self, h: Tensor<3>, rope: Option<&Rope>) -> Tensor<3> {
        let [b, s, d] = h.dims();
        let h = if let Some(mlp_t) = &self.mlp_t {
            mlp_t.residual_norm_seq(h, self.eps)
        } else if let Some(attn) = &self.self_attn {
            rms_norm(h.clone().add(attn.forward(h, rope)), self.eps)
        } else {
            h
        };
        self.mlp
            .residual_norm(h.reshape([b * s, d]), self.eps)
            .reshape([b, s, d])
    }
}

/// The single reasoning network `L_level` (used for both the z_L and the z_H updates).
#[derive(Module, Debug)]
pub struct ReasoningModule {
    /// `L_layers` blocks.
    pub layers: Vec<Block>,
}

impl ReasoningModule {
    /// `L_layers` blocks.
    pub fn init<R: Rng>(cfg: &TrmConfig, rng: &mut R, device: &Device) -> Self {
        Self {
            layers: (0..cfg.l_layers)
                .map(|_| Block::init(cfg, rng, device))
                .collect(),
        }
    }

    /// `block_{n-1}(... block_0(h + injection))`.
    ///
    /// # Shapes
    /// - `h`, `injection`: `[B, S, D]` → `[B, S, D]`
    pub fn forward(&self, h: Tensor<3>, injection: Tensor<3>, rope: Option<&Rope>) -> Tensor<3> {
        let mut h = h.add(injection);
        for layer in &self.layers {
            h = layer.forward(h, rope);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn trunc_normal_has_the_requested_std_and_bounds() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let x = trunc_normal(200_000, 0.5, &mut rng);
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 5e-3, "mean {mean}");
        assert!((var.sqrt() - 0.5).abs() < 5e-3, "std {}", var.sqrt());
        // Truncation at ±2 standard deviations of the underlying normal (comp_std ≈ 1.1376·std).
        let bound = x.iter().fold(0f32, |a, &v| a.max(v.abs()));
        assert!(bound <= 2.0 * 0.5 * 1.14 && bound > 1.0, "bound {bound}");
    }

    #[test]
    fn erf_matches_known_values() {
        assert!((libm_erf(std::f64::consts::SQRT_2) - 0.954_499_736_103_641_6).abs() < 1e-14);
        assert!((libm_erf(-0.5) + 0.520_499_877_813_046_5).abs() < 1e-14);
    }
}
