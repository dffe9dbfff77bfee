//! `ACTLossHead`: stable-max cross-entropy + 0.5 · BCE on the halting logit, and the metrics.

use burn::tensor::{DType, FloatDType, Int, Tensor, TensorData};

use super::act::Carry;

/// Label value that is ignored by the loss (official `IGNORE_LABEL_ID`).
pub const IGNORE_LABEL_ID: i32 = -100;

/// The official metrics of one ACT call. They are raw sums over the rows that halted in this
/// call (`valid = halted & count > 0`); divide the losses by the global batch size and the other
/// metrics by `max(count, 1)` to log them as `train_batch` does.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    /// Number of valid (halted) rows.
    pub count: i64,
    /// Σ_valid fraction of correct cells (f32 as in the reference).
    pub accuracy: f32,
    /// Σ_valid fully-correct rows.
    pub exact_accuracy: i64,
    /// Σ_valid rows where `(q_halt >= 0) == fully correct`.
    pub q_halt_accuracy: i64,
    /// Σ_valid steps taken.
    pub steps: i64,
    /// Stable-max CE summed over all rows (each row averaged over its cells), f64.
    pub lm_loss: f64,
    /// BCE-with-logits of q_halt against "row fully correct", summed over all rows, f32.
    pub q_halt_loss: f32,
}

/// Loss of one ACT call.
#[derive(Clone, Debug)]
pub struct LossOutput {
    /// `lm_loss + 0.5 · q_halt_loss`, shape `[1]`, dtype f64 (differentiable).
    pub loss: Tensor<1>,
    /// Metrics (host side).
    pub metrics: Metrics,
    /// Argmax predictions `[B·L]` (over all V classes).
    pub preds: Vec<i64>,
}

/// Official `s(x)`: `1/(1 − x)` for `x < 0`, `x + 1` otherwise (elementwise, any dtype).
///
/// # Shapes
/// - `x`: any → same
pub fn stablemax_s<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let neg = x.clone().lower_elem(0.0);
    // Clamp the unused branch so that it stays finite (and its masked gradient stays 0).
    let s_neg = x
        .clone()
        .clamp_max(0.0)
        .neg()
        .add_scalar(1.0 + 1e-30)
        .recip();
    x.add_scalar(1.0).mask_where(neg, s_neg)
}

/// The dtype of the loss on `device`: f64 on the CPU (burn-ndarray), as the official code;
/// f32 on GPU backends (WGSL has no f64, and lavapipe, which reports f64 support, computes the
/// f64 stable-max wrongly: measured with the wgpu training test).
#[allow(deprecated)]
pub fn loss_dtype(device: &burn::tensor::Device) -> FloatDType {
    if device.clone().without_autodiff() == burn::tensor::Device::ndarray() {
        FloatDType::F64
    } else {
        FloatDType::F32
    }
}

/// Per-cell stable-max cross-entropy, computed in **f64** as the official
/// `stablemax_cross_entropy` (logits cast to float64; f32 on GPU backends, see
/// [`loss_dtype`]); ignored cells give 0.
///
/// # Shapes
/// - `logits`: `[B, L, V]` (f32), `labels`: `[B, L]` → `[B, L]` (f64)
pub fn stablemax_cross_entropy(logits: Tensor<3>, labels: Tensor<2, Int>) -> Tensor<2> {
    let [b, l, _] = logits.dims();
    let x = logits.clone().cast(loss_dtype(&logits.device()));
    let s = stablemax_s(x);
    let logp = s.clone().div(s.sum_dim(2)).log();
    let mask = labels.clone().not_equal_elem(IGNORE_LABEL_ID);
    let idx = labels.mask_fill(mask.clone().bool_not(), 0);
    let picked = logp.gather(2, idx.reshape([b, l, 1])).reshape([b, l]);
    picked.mask_fill(mask.bool_not(), 0.0).neg()
}

/// Sum-reduced BCE with logits, numerically stable form
/// `max(x, 0) − x·y + log(1 + exp(−|x|))`.
///
/// # Shapes
/// - `x`, `y`: `[B]` → `[1]`
pub fn bce_with_logits_sum(x: Tensor<1>, y: Tensor<1>) -> Tensor<1> {
    let relu = x.clone().clamp_min(0.0);
    let soft = x.clone().abs().neg().exp().log1p();
    relu.sub(x.mul(y)).add(soft).sum()
}

/// The official `ACTLossHead` on the outputs of one ACT call (`carry` is the carry *after*
/// the call: its `current.labels`, `halted` and `steps` are used).
///
/// `loss = Σ_b mean_i CE_stablemax(b, i) + 0.5 · Σ_b BCE(q_halt_b, row b fully correct)`;
/// all rows contribute to the loss, the metrics count only halted rows.
///
/// # Shapes
/// - `logits`: `[B, L, V]`, `q_halt`: `[B]` → loss `[1]` (f64)
pub fn act_loss(logits: Tensor<3>, q_halt: Tensor<1>, carry: &Carry) -> LossOutput {
    let device = logits.device();
    let [b, l, v] = logits.dims();
    let labels = &carry.current.labels;

    // Host-side bookkeeping (argmax, correctness) on detached values.
    let lg: Vec<f32> = logits
        .clone()
        .without_autodiff()
        .into_data()
        .try_to_vec::<f32>()
        .expect("logits are f32");
    let qh: Vec<f32> = q_halt
        .clone()
        .without_autodiff()
        .into_data()
        .try_to_vec::<f32>()
        .expect("q_halt is f32");
    let mut preds = Vec::with_capacity(b * l);
    let mut counts = vec![0i64; b];
    let mut correct = vec![0i64; b];
    let mut frac = vec![0f32; b];
    for r in 0..b {
        for i in 0..l {
            let row = &lg[(r * l + i) * v..(r * l + i + 1) * v];
            // First maximum, as torch.argmax.
            let mut best = 0usize;
            for (k, &val) in row.iter().enumerate() {
                if val > row[best] {
                    best = k;
                }
            }
            preds.push(best as i64);
            let lab = labels[r * l + i];
            if lab != IGNORE_LABEL_ID {
                counts[r] += 1;
                if best as i64 == lab as i64 {
                    correct[r] += 1;
                }
            }
        }
        let div = counts[r].max(1) as f32;
        for i in 0..l {
            let lab = labels[r * l + i];
            if lab != IGNORE_LABEL_ID && preds[r * l + i] == lab as i64 {
                frac[r] += 1.0 / div;
            }
        }
    }
    let seq_ok: Vec<bool> = (0..b).map(|r| correct[r] == counts[r]).collect();

    let labels_t = carry.current.labels_tensor(&device);
    let per_cell = stablemax_cross_entropy(logits, labels_t);
    let divisor: Vec<f64> = counts.iter().map(|&c| c.max(1) as f64).collect();
    let wide = loss_dtype(&device);
    let divisor = Tensor::<2>::from_data(
        TensorData::new(divisor, [b, 1]).convert_dtype(wide.into()),
        (&device, DType::from(wide)),
    );
    let lm_loss = per_cell.div(divisor).sum();

    let target: Vec<f32> = seq_ok.iter().map(|&ok| ok as u8 as f32).collect();
    let target = Tensor::<1>::from_data(TensorData::new(target, [b]), &device);
    let q_halt_loss = bce_with_logits_sum(q_halt, target);
    let loss = lm_loss
        .clone()
        .add(q_halt_loss.clone().cast(wide).mul_scalar(0.5));

    let mut m = Metrics {
        lm_loss: lm_loss.without_autodiff().into_scalar::<f64>(),
        q_halt_loss: q_halt_loss.without_autodiff().into_scalar::<f32>(),
        ..Metrics::default()
    };
    for r in 0..b {
        if carry.halted[r] && counts[r] > 0 {
            m.count += 1;
            m.accuracy += frac[r];
            m.exact_accuracy += seq_ok[r] as i64;
            m.q_halt_accuracy += ((qh[r] >= 0.0) == seq_ok[r]) as i64;
            m.steps += carry.steps[r] as i64;
        }
    }
    LossOutput {
        loss,
        metrics: m,
        preds,
    }
}
