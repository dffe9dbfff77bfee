//! Fused training op for the CPU: the residual SwiGLU + RMSNorm sub-block of a TRM block,
//! `y = rms_norm(x + down(silu(gate) · up))` with `[gate | up] = x · W_guᵀ`, as one burn
//! backend-extension operation with a hand-written backward pass.
//!
//! Eager burn-ndarray runs that sub-block as about fifteen separate ops, each allocating a fresh
//! tensor, mostly on one thread, and its weight-gradient products on transposed views that
//! `matrixmultiply` handles slowly. The fused op runs two matrix products forward and four
//! backward in the `gemm` crate (AVX-512/AVX2 microkernels), tile by tile on all rayon threads
//! with the element-wise work done while the tile is in cache, and keeps only `[gate | up]` and
//! the norm divisors for the backward pass. The token-mixing MLP ([`swiglu_norm_seq`]) works on
//! `[B, S, D]` directly instead of through two transposes of the whole tensor.
//!
//! It is used on burn-ndarray (with and without autodiff); every other device runs
//! [`swiglu_norm_reference`] / [`swiglu_norm_seq_reference`], the same composition of burn ops as
//! before, which is also the specification the fused op is tested against. The slice kernels
//! and their scalar specification are in [`kernels`].

// burn-ndarray is deprecated upstream (in favour of burn-flex) but remains this project's CPU
// training backend; its types are named here on purpose.
#![allow(deprecated)]

pub mod kernels;

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ndarray::NdArrayTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, NdArray, backend_extension};
use burn::tensor::{Device, Tensor};
use ndarray::{ArcArray, IxDyn};

use self::kernels::{Dims, Inputs, Layout, Saved, Wanted};
use super::layers::{linear_t, rms_norm, silu};

/// The fused CPU op, as a burn backend extension (burn-ndarray, with and without autodiff).
#[backend_extension(NdArray, Autodiff)]
pub trait FusedOps: burn::backend::Backend {
    /// `rms_norm(x + silu(x·W_gateᵀ) · (x·W_upᵀ) · W_downᵀ)` over rows: `x` `[R, n]`,
    /// `w_gate_up` `[2I, n]` (rows `0..I` gate, `I..2I` up), `w_down` `[n, I]` → `[R, n]`.
    fn swiglu_norm(
        x: FloatTensor<Self>,
        w_gate_up: FloatTensor<Self>,
        w_down: FloatTensor<Self>,
        eps: f32,
    ) -> FloatTensor<Self>;

    /// The same over the sequence axis of `x` `[B, S, D]` (the token-mixing MLP: rows are the
    /// `B·D` columns, of width S): `w_gate_up` `[2I, S]`, `w_down` `[S, I]` → `[B, S, D]`.
    fn swiglu_norm_seq(
        x: FloatTensor<Self>,
        w_gate_up: FloatTensor<Self>,
        w_down: FloatTensor<Self>,
        eps: f32,
    ) -> FloatTensor<Self>;
}

/// Lets glibc's malloc keep freed blocks of up to 32 MiB in the heap for reuse instead of
/// mapping and unmapping them each time (a no-op elsewhere). A training step allocates and frees
/// the same few dozen large buffers over and over; with the default dynamic threshold each of
/// them comes back as fresh pages, and the page faults and zeroing cost about a tenth of a step.
/// Peak memory is unchanged: the heap holds what a step needs at once.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets allocator parameters; both are valid options with values in
    // their documented ranges (the mmap threshold's maximum is 32 MiB on 64-bit glibc).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Whether the fused op runs on `device`: burn-ndarray (with or without autodiff), unless the
/// environment variable `TRM_FUSED=0` asks for the plain burn composition everywhere (the
/// baseline for speed comparisons, and a fallback).
pub fn fused_on(device: &Device) -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let enabled = *ENABLED.get_or_init(|| std::env::var("TRM_FUSED").map_or(true, |v| v != "0"));
    enabled && device.clone().without_autodiff() == Device::ndarray()
}

/// The residual SwiGLU + RMSNorm sub-block: fused on burn-ndarray, [`swiglu_norm_reference`]
/// elsewhere.
///
/// # Shapes
/// - `x`: `[R, n]`, `w_gate_up`: `[2I, n]`, `w_down`: `[n, I]` → `[R, n]`
pub fn swiglu_norm(x: Tensor<2>, w_gate_up: Tensor<2>, w_down: Tensor<2>, eps: f64) -> Tensor<2> {
    if fused_on(&x.device()) {
        Tensor::from_dispatch(Dispatch::swiglu_norm(
            x.into_dispatch(),
            w_gate_up.into_dispatch(),
            w_down.into_dispatch(),
            eps as f32,
        ))
    } else {
        swiglu_norm_reference(x, w_gate_up, w_down, eps)
    }
}

/// The residual SwiGLU + RMSNorm sub-block over the sequence axis (the token-mixing MLP):
/// fused on burn-ndarray, [`swiglu_norm_seq_reference`] elsewhere.
///
/// # Shapes
/// - `x`: `[B, S, D]`, `w_gate_up`: `[2I, S]`, `w_down`: `[S, I]` → `[B, S, D]`
pub fn swiglu_norm_seq(
    x: Tensor<3>,
    w_gate_up: Tensor<2>,
    w_down: Tensor<2>,
    eps: f64,
) -> Tensor<3> {
    if fused_on(&x.device()) {
        Tensor::from_dispatch(Dispatch::swiglu_norm_seq(
            x.into_dispatch(),
            w_gate_up.into_dispatch(),
            w_down.into_dispatch(),
            eps as f32,
        ))
    } else {
        swiglu_norm_seq_reference(x, w_gate_up, w_down, eps)
    }
}

/// [`swiglu_norm_reference`] over the sequence axis: transpose to `[B·D, S]`, apply, transpose
/// back.
///
/// # Shapes
/// - `x`: `[B, S, D]`, `w_gate_up`: `[2I, S]`, `w_down`: `[S, I]` → `[B, S, D]`
pub fn swiglu_norm_seq_reference(
    x: Tensor<3>,
    w_gate_up: Tensor<2>,
    w_down: Tensor<2>,
    eps: f64,
) -> Tensor<3> {
    let [b, s, d] = x.dims();
    let t = x.swap_dims(1, 2).reshape([b * d, s]);
    swiglu_norm_reference(t, w_gate_up, w_down, eps)
        .reshape([b, d, s])
        .swap_dims(1, 2)
}

/// The same sub-block as a composition of burn ops (the official op order; differentiable on
/// every backend). The specification the fused op is tested against.
///
/// # Shapes
/// - `x`: `[R, n]`, `w_gate_up`: `[2I, n]`, `w_down`: `[n, I]` → `[R, n]`
pub fn swiglu_norm_reference(
    x: Tensor<2>,
    w_gate_up: Tensor<2>,
    w_down: Tensor<2>,
    eps: f64,
) -> Tensor<2> {
    let inter = w_gate_up.dims()[0] / 2;
    let gate = linear_t(x.clone(), w_gate_up.clone().narrow(0, 0, inter));
    let up = linear_t(x.clone(), w_gate_up.narrow(0, inter, inter));
    let out = linear_t(silu(gate).mul(up), w_down);
    rms_norm(x.add(out), eps)
}

/// A row-major f32 array of burn-ndarray (shared, no copy when already contiguous).
fn f32_array(t: NdArrayTensor, what: &str) -> ArcArray<f32, IxDyn> {
    match t {
        NdArrayTensor::F32(s) => {
            let a = s.into_shared();
            if a.is_standard_layout() {
                a
            } else {
                a.as_standard_layout().into_owned().into_shared()
            }
        }
        other => panic!("fused swiglu_norm: {what} must be f32, got {other:?}"),
    }
}

/// The contiguous data of a standard-layout array.
fn slice(a: &ArcArray<f32, IxDyn>) -> &[f32] {
    a.as_slice().expect("standard layout")
}

/// A burn-ndarray f32 tensor of `shape` owning `v`.
fn tensor(v: Vec<f32>, shape: &[usize]) -> NdArrayTensor {
    let a = ArcArray::from_shape_vec(IxDyn(shape), v).expect("length matches the shape");
    NdArrayTensor::from(a)
}

/// The sizes and layout of a call, checked: `x` `[R, n]` (`seq = false`) or `[B, S, D]`
/// (`seq = true`: rows are the `B·D` columns of width `S`).
fn dims(
    x: &ArcArray<f32, IxDyn>,
    w_gu: &ArcArray<f32, IxDyn>,
    w_down: &ArcArray<f32, IxDyn>,
    seq: bool,
) -> (Dims, Layout) {
    let (xs, gs, ds) = (x.shape(), w_gu.shape(), w_down.shape());
    let (rows, n, layout) = match (seq, xs) {
        (false, &[r, n]) => (r, n, Layout::Rows),
        (true, &[b, s, d]) => (b * d, s, Layout::Columns { d }),
        _ => panic!(
            "fused swiglu_norm: x {xs:?} must be {}",
            if seq { "[B, S, D]" } else { "[R, n]" }
        ),
    };
    assert!(
        gs.len() == 2
            && ds.len() == 2
            && gs[0] > 0
            && gs[0] % 2 == 0
            && gs[1] == n
            && ds == [n, gs[0] / 2],
        "fused swiglu_norm: x {xs:?}, W_gu {gs:?}, W_down {ds:?} do not fit together"
    );
    let d = Dims {
        rows,
        n,
        inter: gs[0] / 2,
    };
    (d, layout)
}

/// The forward without autodiff (inference or the no-grad recursion).
fn forward_ndarray(
    x: NdArrayTensor,
    w_gate_up: NdArrayTensor,
    w_down: NdArrayTensor,
    eps: f32,
    seq: bool,
) -> NdArrayTensor {
    let (x, w_gu, w_down) = (
        f32_array(x, "x"),
        f32_array(w_gate_up, "W_gu"),
        f32_array(w_down, "W_down"),
    );
    let (d, layout) = dims(&x, &w_gu, &w_down, seq);
    let y = kernels::forward(d, layout, slice(&x), slice(&w_gu), slice(&w_down), eps);
    tensor(y, x.shape())
}

impl FusedOps for NdArray {
    fn swiglu_norm(
        x: NdArrayTensor,
        w_gate_up: NdArrayTensor,
        w_down: NdArrayTensor,
        eps: f32,
    ) -> NdArrayTensor {
        forward_ndarray(x, w_gate_up, w_down, eps, false)
    }

    fn swiglu_norm_seq(
        x: NdArrayTensor,
        w_gate_up: NdArrayTensor,
        w_down: NdArrayTensor,
        eps: f32,
    ) -> NdArrayTensor {
        forward_ndarray(x, w_gate_up, w_down, eps, true)
    }
}

/// What the backward pass of one call keeps: the inputs and the forward's intermediates.
#[derive(Debug)]
struct State {
    dims: Dims,
    layout: Layout,
    x: ArcArray<f32, IxDyn>,
    w_gu: ArcArray<f32, IxDyn>,
    w_down: ArcArray<f32, IxDyn>,
    saved: Saved,
}

#[derive(Debug)]
struct SwigluNormBackward;

impl Backward<NdArray, 3> for SwigluNormBackward {
    type State = Arc<State>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gu, node_down] = ops.parents;
        let dy = f32_array(grads.consume::<NdArray>(&ops.node), "dy");
        let st = &ops.state;
        let want = Wanted {
            x: node_x.is_some(),
            w_gu: node_gu.is_some(),
            w_down: node_down.is_some(),
        };
        let inputs = Inputs {
            x: slice(&st.x),
            w_gu: slice(&st.w_gu),
            w_down: slice(&st.w_down),
        };
        let g = kernels::backward(st.dims, st.layout, inputs, &st.saved, slice(&dy), want);
        if let (Some(node), Some(v)) = (node_x, g.x) {
            grads.register::<NdArray>(node.id, tensor(v, st.x.shape()));
        }
        if let (Some(node), Some(v)) = (node_gu, g.w_gu) {
            grads.register::<NdArray>(node.id, tensor(v, st.w_gu.shape()));
        }
        if let (Some(node), Some(v)) = (node_down, g.w_down) {
            grads.register::<NdArray>(node.id, tensor(v, st.w_down.shape()));
        }
    }
}

/// The forward on the autodiff backend: keeps what [`SwigluNormBackward`] needs when any input
/// is tracked.
fn forward_autodiff<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<NdArray, C>>,
    w_gate_up: FloatTensor<Autodiff<NdArray, C>>,
    w_down: FloatTensor<Autodiff<NdArray, C>>,
    eps: f32,
    seq: bool,
) -> FloatTensor<Autodiff<NdArray, C>> {
    let prep = SwigluNormBackward
        .prepare::<C>([x.node(), w_gate_up.node(), w_down.node()])
        .compute_bound()
        .stateful();
    let (x, w_gu, w_down) = (
        f32_array(x.into_primitive(), "x"),
        f32_array(w_gate_up.into_primitive(), "W_gu"),
        f32_array(w_down.into_primitive(), "W_down"),
    );
    let (d, layout) = dims(&x, &w_gu, &w_down, seq);
    match prep {
        OpsKind::Tracked(prep) => {
            let saved =
                kernels::forward_saved(d, layout, slice(&x), slice(&w_gu), slice(&w_down), eps);
            let y = tensor(saved.y.clone(), x.shape());
            let state = State {
                dims: d,
                layout,
                x,
                w_gu,
                w_down,
                saved,
            };
            prep.finish(Arc::new(state), y)
        }
        OpsKind::UnTracked(prep) => {
            let y = kernels::forward(d, layout, slice(&x), slice(&w_gu), slice(&w_down), eps);
            prep.finish(tensor(y, x.shape()))
        }
    }
}

impl<C: CheckpointStrategy> FusedOps for Autodiff<NdArray, C> {
    fn swiglu_norm(
        x: FloatTensor<Self>,
        w_gate_up: FloatTensor<Self>,
        w_down: FloatTensor<Self>,
        eps: f32,
    ) -> FloatTensor<Self> {
        forward_autodiff::<C>(x, w_gate_up, w_down, eps, false)
    }

    fn swiglu_norm_seq(
        x: FloatTensor<Self>,
        w_gate_up: FloatTensor<Self>,
        w_down: FloatTensor<Self>,
        eps: f32,
    ) -> FloatTensor<Self> {
        forward_autodiff::<C>(x, w_gate_up, w_down, eps, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use rand::{Rng, SeedableRng};

    fn random(shape: [usize; 2], scale: f32, rng: &mut impl Rng, device: &Device) -> Tensor<2> {
        let v: Vec<f32> = (0..shape[0] * shape[1])
            .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale)
            .collect();
        Tensor::from_data(TensorData::new(v, shape), device)
    }

    fn vec(t: Tensor<2>) -> Vec<f32> {
        t.into_data().convert::<f32>().to_vec().unwrap()
    }

    /// Largest `|a − b|` relative to the largest `|b|`.
    fn rel(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
            / scale
    }

    #[test]
    #[allow(deprecated)]
    fn fused_op_matches_the_burn_composition_forward_and_backward() {
        let ad = Device::ndarray().autodiff();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        // 600 rows: several tiles and gradient groups of the fused kernels.
        for &(rows, n, inter) in &[(5, 9, 8), (128, 82, 256), (600, 64, 256)] {
            let x = random([rows, n], 2.0, &mut rng, &ad);
            let wgu = random([2 * inter, n], 1.0 / (n as f32).sqrt(), &mut rng, &ad);
            let wd = random([n, inter], 1.0 / (inter as f32).sqrt(), &mut rng, &ad);
            let c = random([rows, n], 1.0, &mut rng, &ad);
            let run = |fused: bool, track_x: bool| {
                let x = if track_x {
                    x.clone().require_grad()
                } else {
                    x.clone()
                };
                let (wgu, wd) = (wgu.clone().require_grad(), wd.clone().require_grad());
                let y = if fused {
                    swiglu_norm(x.clone(), wgu.clone(), wd.clone(), 1e-5)
                } else {
                    swiglu_norm_reference(x.clone(), wgu.clone(), wd.clone(), 1e-5)
                };
                let grads = y.clone().mul(c.clone()).sum().backward();
                let g = |t: &Tensor<2>| t.grad(&grads).map(vec);
                (vec(y), g(&x), g(&wgu), g(&wd))
            };
            let (yf, dxf, dguf, ddf) = run(true, true);
            let (yr, dxr, dgur, ddr) = run(false, true);
            assert!(rel(&yf, &yr) < 1e-5, "y {rows}x{n}x{inter}");
            assert!(rel(&dxf.unwrap(), &dxr.unwrap()) < 1e-4, "dx");
            assert!(
                rel(dguf.as_ref().unwrap(), dgur.as_ref().unwrap()) < 1e-4,
                "dW_gu"
            );
            assert!(
                rel(ddf.as_ref().unwrap(), ddr.as_ref().unwrap()) < 1e-4,
                "dW_down"
            );
            // With x a constant, only the weights get gradients, and the same ones.
            let (_, dx, dgu, dd) = run(true, false);
            assert!(dx.is_none());
            assert_eq!(dgu, dguf);
            assert_eq!(dd, ddf);
            // Without autodiff (the no-grad recursion) the forward is the same.
            let inner = |t: &Tensor<2>| t.clone().without_autodiff();
            let y = swiglu_norm(inner(&x), inner(&wgu), inner(&wd), 1e-5);
            assert_eq!(vec(y), yf);
        }
    }

    #[test]
    #[allow(deprecated)]
    fn fused_seq_op_matches_the_burn_composition_forward_and_backward() {
        let ad = Device::ndarray().autodiff();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        // [B, S, D]: 5 batch elements of 128 channels are two tiles (4 + 1 elements).
        for &(b, s, d, inter) in &[(2, 5, 3, 4), (5, 82, 128, 256), (3, 97, 64, 512)] {
            let x3 = |t: Tensor<2>| t.reshape([b, s, d]);
            let x = x3(random([b * s, d], 2.0, &mut rng, &ad));
            let wgu = random([2 * inter, s], 1.0 / (s as f32).sqrt(), &mut rng, &ad);
            let wd = random([s, inter], 1.0 / (inter as f32).sqrt(), &mut rng, &ad);
            let c = x3(random([b * s, d], 1.0, &mut rng, &ad));
            let flat = |t: Tensor<3>| vec(t.reshape([b * s, d]));
            let run = |fused: bool| {
                let x = x.clone().require_grad();
                let (wgu, wd) = (wgu.clone().require_grad(), wd.clone().require_grad());
                let y = if fused {
                    swiglu_norm_seq(x.clone(), wgu.clone(), wd.clone(), 1e-5)
                } else {
                    swiglu_norm_seq_reference(x.clone(), wgu.clone(), wd.clone(), 1e-5)
                };
                let grads = y.clone().mul(c.clone()).sum().backward();
                (
                    flat(y),
                    flat(x.grad(&grads).unwrap()),
                    vec(wgu.grad(&grads).unwrap()),
                    vec(wd.grad(&grads).unwrap()),
                )
            };
            let (yf, dxf, dguf, ddf) = run(true);
            let (yr, dxr, dgur, ddr) = run(false);
            assert!(rel(&yf, &yr) < 1e-5, "y {b}x{s}x{d}");
            assert!(rel(&dxf, &dxr) < 1e-4, "dx {b}x{s}x{d}");
            assert!(rel(&dguf, &dgur) < 1e-4, "dW_gu {b}x{s}x{d}");
            assert!(rel(&ddf, &ddr) < 1e-4, "dW_down {b}x{s}x{d}");
            let inner = |t: &Tensor<2>| t.clone().without_autodiff();
            let y = swiglu_norm_seq(x.clone().without_autodiff(), inner(&wgu), inner(&wd), 1e-5);
            assert_eq!(flat(y), yf);
        }
    }
}
