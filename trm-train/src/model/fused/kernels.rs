//! Slice kernels of the fused training op: strided f32 matrix products (the `gemm` crate:
//! cache-blocked, AVX2/AVX-512 chosen at run time) and the row passes of the residual SwiGLU +
//! RMSNorm sub-block, forward and backward.
//!
//! The sub-block, over rows `x` of width `n` with `I` intermediate features:
//!
//! ```text
//! [g | u] = x · W_guᵀ          W_gu: [2I, n]
//! a       = silu(g) · u
//! r       = x + a · W_downᵀ     W_down: [n, I]
//! y       = r / sqrt(mean(r²) + eps)
//! ```
//!
//! Both passes run over tiles of [`TILE_ROWS`] rows, one rayon task per tile (or per group of
//! tiles), each tile's products and row passes on one thread while its intermediates are still
//! in that core's caches: a tile of `[g | u]` is 1–2 MiB, where the whole `[R, 2I]` matrix is
//! tens of MiB and would go through memory between the passes (512-row tiles measured faster
//! than 256 and 1024 on the training step). Weight
//! gradients are summed per group of tiles and the [`GRAD_GROUPS`] partial sums are added in a
//! fixed order, so every result is the same whatever the number of threads.
//!
//! [`spec`] holds the same computation written as plain loops (f64 sums); the tests compare
//! every fast path with it.

use rayon::prelude::*;
use trm_edge::kernels::arch;

/// A read-only strided matrix: element `(r, c)` is `data[r·rs + c·cs]`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    /// A row-major `[rows, cols]` matrix over the whole of `data`.
    ///
    /// # Panics
    /// When `data.len() != rows · cols`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "matrix [{rows}, {cols}]: data length"
        );
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// `[rows, cols]` with row stride `rs` and column stride 1 (a column range of a wider matrix).
    ///
    /// # Panics
    /// When the last element lies outside `data`.
    pub fn strided_rows(data: &'a [f32], rows: usize, cols: usize, rs: usize) -> Self {
        if rows > 0 && cols > 0 {
            assert!(
                (rows - 1) * rs + cols <= data.len(),
                "matrix [{rows}, {cols}] with row stride {rs} overruns {} elements",
                data.len()
            );
        }
        Self {
            data,
            rows,
            cols,
            rs,
            cs: 1,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Element `(r, c)`.
    pub fn at(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.rs + c * self.cs]
    }
}

/// Rows per tile of the fused passes.
pub const TILE_ROWS: usize = 512;

/// Number of partial weight-gradient sums of a backward pass (a constant, so that the order of
/// the additions, and the result, do not depend on the thread count).
pub const GRAD_GROUPS: usize = 8;

/// `dst = a · b` (or `dst += a · b` with `accumulate`) on the calling thread, `dst` row-major
/// `[a.rows, b.cols]`.
///
/// # Panics
/// When the inner sizes differ or `dst` has the wrong length.
pub fn matmul(dst: &mut [f32], a: View<'_>, b: View<'_>, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "matmul: inner sizes {k} and {}", b.rows);
    assert_eq!(dst.len(), m * n, "matmul: output [{m}, {n}]");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    // SAFETY: `a` and `b` were built by `View` constructors that check that every element
    // `(r, c)` with `r < rows`, `c < cols` lies inside their slices (a transpose swaps sizes and
    // strides together, so the same bound holds); `dst` holds exactly `m · n` elements and is
    // written with column stride 1 and row stride `n`; it is an exclusive borrow, so it cannot
    // alias the shared borrows `a` and `b`. With `read_dst = false` gemm never reads `dst`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

thread_local! {
    /// Per-thread scratch of the tile passes (grown on demand, never shrunk).
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's scratch buffer of at least `len` elements (contents unspecified:
/// every user overwrites what it reads).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < len {
            s.resize(len, 0.0);
        }
        f(&mut s[..len])
    })
}

/// `a[r, j] = silu(gu[r, j]) · gu[r, I + j]` for every row (`gu`: `[R, 2I]`, `a`: `[R, I]`),
/// with trm-edge's SwiGLU kernel (AVX2 where available).
pub fn swiglu_rows(gu: &[f32], inter: usize, a: &mut [f32]) {
    assert_eq!(gu.len(), 2 * a.len(), "swiglu: [R, 2I] and [R, I]");
    if inter == 0 {
        return;
    }
    for (ar, gr) in a.chunks_exact_mut(inter).zip(gu.chunks_exact(2 * inter)) {
        let (g, u) = gr.split_at(inter);
        ar.copy_from_slice(g);
        arch::swiglu(ar, u);
    }
}

/// In place on `gu` (`[R, 2I]`): the gate half of each row becomes `silu(g) · u` (the no-grad
/// forward, which keeps nothing for a backward pass).
pub fn swiglu_rows_in_place(gu: &mut [f32], inter: usize) {
    if inter == 0 {
        return;
    }
    for gr in gu.chunks_exact_mut(2 * inter) {
        let (g, u) = gr.split_at_mut(inter);
        arch::swiglu(g, u);
    }
}

/// Sum of squares with eight partial sums (vectorisable).
fn sum_sq(v: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (chunks, tail) = v.as_chunks::<8>();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x * x;
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for x in tail {
        s += x * x;
    }
    s
}

/// Dot product with eight partial sums (vectorisable).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, at) = a.as_chunks::<8>();
    let (bc, bt) = b.as_chunks::<8>();
    for (x, y) in ac.iter().zip(bc) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (x, y) in at.iter().zip(bt) {
        s += x * y;
    }
    s
}

/// Residual and RMSNorm per row of width `n`: `y ← (x + y) / s` with
/// `s = sqrt(mean((x + y)²) + eps)`, written to `s` (`[R]`) for the backward pass.
pub fn residual_norm_rows(x: &[f32], y: &mut [f32], s: &mut [f32], n: usize, eps: f32) {
    assert_eq!(x.len(), y.len(), "residual norm: x and y");
    assert_eq!(y.len(), s.len() * n, "residual norm: [R, n] and [R]");
    if n == 0 {
        return;
    }
    for ((yr, xr), sr) in y.chunks_exact_mut(n).zip(x.chunks_exact(n)).zip(s) {
        for (yv, xv) in yr.iter_mut().zip(xr) {
            *yv += xv;
        }
        let d = (sum_sq(yr) / n as f32 + eps).sqrt();
        for yv in yr.iter_mut() {
            *yv /= d;
        }
        *sr = d;
    }
}

/// RMSNorm backward per row: `dr = (dy − y · mean(dy · y)) / s` (into `dr`, `[R, n]`).
pub fn norm_backward_rows(dy: &[f32], y: &[f32], s: &[f32], n: usize, dr: &mut [f32]) {
    assert_eq!(dy.len(), y.len(), "norm backward: dy and y");
    assert_eq!(dr.len(), y.len(), "norm backward: dr and y");
    assert_eq!(y.len(), s.len() * n, "norm backward: [R, n] and [R]");
    if n == 0 {
        return;
    }
    for (((dr, g), yr), d) in dr
        .chunks_exact_mut(n)
        .zip(dy.chunks_exact(n))
        .zip(y.chunks_exact(n))
        .zip(s)
    {
        let m = dot(g, yr) / n as f32;
        for ((o, gv), yv) in dr.iter_mut().zip(g).zip(yr) {
            *o = (gv - yv * m) / d;
        }
    }
}

/// SwiGLU backward per row: from `da` (`[R, I]`) and the saved `[g | u]` (`[R, 2I]`),
/// `dg = da · u · σ(g)(1 + g(1 − σ(g)))` and `du = da · silu(g)`, into `dgu` (`[R, 2I]`), with
/// trm-edge's kernel (AVX2 where available).
pub fn swiglu_backward_rows(gu: &[f32], da: &[f32], inter: usize, dgu: &mut [f32]) {
    assert_eq!(
        gu.len(),
        2 * da.len(),
        "swiglu backward: [R, 2I] and [R, I]"
    );
    assert_eq!(dgu.len(), gu.len(), "swiglu backward: dgu");
    if inter == 0 {
        return;
    }
    for ((dr, gr), ar) in dgu
        .chunks_exact_mut(2 * inter)
        .zip(gu.chunks_exact(2 * inter))
        .zip(da.chunks_exact(inter))
    {
        let (g, u) = gr.split_at(inter);
        let (dg, du) = dr.split_at_mut(inter);
        arch::swiglu_backward(g, u, ar, dg, du);
    }
}

/// Sizes of one sub-block call: `rows` rows of width `n`, `inter` intermediate features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Rows R.
    pub rows: usize,
    /// Width n (input and output).
    pub n: usize,
    /// Intermediate features I (the gate/up weight has `2I` rows).
    pub inter: usize,
}

impl Dims {
    /// Checks the slice lengths of a call.
    fn check(&self, x: &[f32], w_gu: &[f32], w_down: &[f32]) {
        let Dims { rows, n, inter } = *self;
        assert_eq!(x.len(), rows * n, "x: [{rows}, {n}]");
        assert_eq!(w_gu.len(), 2 * inter * n, "W_gu: [{}, {n}]", 2 * inter);
        assert_eq!(w_down.len(), n * inter, "W_down: [{n}, {inter}]");
    }
}

/// `[g | u]` buffers of dropped [`Saved`] values, reused by later forward passes: a training
/// step frees and allocates the same large buffers over and over, and a reused one needs no
/// zeroing (the forward overwrites it).
static POOL: std::sync::Mutex<Vec<Vec<f32>>> = std::sync::Mutex::new(Vec::new());

/// Most buffers [`POOL`] keeps.
const POOL_MAX: usize = 32;

/// A buffer of `len` elements, from [`POOL`] when one fits (contents unspecified).
fn pooled(len: usize) -> Vec<f32> {
    let mut pool = POOL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let fit = pool
        .iter()
        .enumerate()
        .filter(|(_, v)| v.capacity() >= len && v.capacity() <= 2 * len)
        .min_by_key(|(_, v)| v.capacity())
        .map(|(i, _)| i);
    match fit {
        Some(i) => {
            let mut v = pool.swap_remove(i);
            drop(pool);
            v.resize(len, 0.0);
            v
        }
        None => {
            drop(pool);
            vec![0f32; len]
        }
    }
}

impl Drop for Saved {
    fn drop(&mut self) {
        let gu = std::mem::take(&mut self.gu);
        if gu.capacity() > 0 {
            let mut pool = POOL
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if pool.len() < POOL_MAX {
                pool.push(gu);
            }
        }
    }
}

/// What the backward pass needs from a forward call (`silu(g) · u` is recomputed per tile from
/// `[g | u]`, which costs less than keeping it: a third less memory and traffic).
#[derive(Debug)]
pub struct Saved {
    /// `[g | u]`, `[R, 2I]`.
    pub gu: Vec<f32>,
    /// The output y, `[R, n]`.
    pub y: Vec<f32>,
    /// The norm divisors `sqrt(mean(r²) + eps)`, `[R]`.
    pub s: Vec<f32>,
}

/// How the rows of a call lie in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Row-major `[R, n]`.
    Rows,
    /// Sequence-major activations `[B, n, d]` (`[B, S, D]` with `n = S`): row `b·d + c` is
    /// column `c` of batch element `b`. The token-mixing MLP's rows, read and written without a
    /// transpose of the whole tensor (each tile is transposed in cache instead).
    Columns {
        /// The channel count D (`R = B·D`).
        d: usize,
    },
}

impl Layout {
    /// Rows per tile: [`TILE_ROWS`], or whole batch elements for [`Layout::Columns`].
    fn tile_rows(self) -> usize {
        match self {
            Layout::Rows => TILE_ROWS,
            Layout::Columns { d } => d.max(1) * (TILE_ROWS / d.max(1)).max(1),
        }
    }

    /// Checks that `rows` fit the layout.
    fn check(self, rows: usize) {
        if let Layout::Columns { d } = self {
            assert!(
                d > 0 && rows.is_multiple_of(d),
                "{rows} rows are not whole batch elements of {d} channels"
            );
        }
    }
}

thread_local! {
    /// Per-thread scratch for tiles moved between [`Layout::Columns`] and rows.
    static LAYOUT_SCRATCH: std::cell::RefCell<Vec<f32>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// `[bt, n, d]` → `[bt·d, n]` (each batch element's `[n, d]` block transposed).
fn columns_to_rows(src: &[f32], n: usize, d: usize, dst: &mut [f32]) {
    for (sb, db) in src.chunks_exact(n * d).zip(dst.chunks_exact_mut(n * d)) {
        for (s, row) in sb.chunks_exact(d).enumerate() {
            for (c, v) in row.iter().enumerate() {
                db[c * n + s] = *v;
            }
        }
    }
}

/// `[bt·d, n]` → `[bt, n, d]` (the inverse of [`columns_to_rows`]).
fn rows_to_columns(src: &[f32], n: usize, d: usize, dst: &mut [f32]) {
    for (sb, db) in src.chunks_exact(n * d).zip(dst.chunks_exact_mut(n * d)) {
        for (c, row) in sb.chunks_exact(n).enumerate() {
            for (s, v) in row.iter().enumerate() {
                db[s * d + c] = *v;
            }
        }
    }
}

/// Runs `f` on the row-layout form of the tiles `ins` (read) and `outs` (written back): the
/// slices themselves for [`Layout::Rows`], transposed copies in this thread's scratch for
/// [`Layout::Columns`]. Every slice holds `rows · n` elements.
fn in_rows<const I: usize, const O: usize>(
    layout: Layout,
    n: usize,
    ins: [&[f32]; I],
    outs: [&mut [f32]; O],
    f: impl FnOnce([&[f32]; I], [&mut [f32]; O]),
) {
    let Layout::Columns { d } = layout else {
        return f(ins, outs);
    };
    let len = ins.first().map_or(0, |s| s.len());
    LAYOUT_SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        if scratch.len() < (I + O) * len {
            scratch.resize((I + O) * len, 0.0);
        }
        let (ib, ob) = scratch[..(I + O) * len].split_at_mut(I * len);
        let mut ichunks = ib.chunks_exact_mut(len.max(1));
        for src in ins {
            if let Some(dst) = ichunks.next() {
                columns_to_rows(src, n, d, dst);
            }
        }
        let rins: [&[f32]; I] = {
            let mut it = ib.chunks_exact(len.max(1));
            std::array::from_fn(|_| it.next().unwrap_or(&[]))
        };
        let routs: [&mut [f32]; O] = {
            let mut it = ob.chunks_exact_mut(len.max(1));
            std::array::from_fn(|_| it.next().unwrap_or(&mut []))
        };
        f(rins, routs);
        let mut ochunks = ob.chunks_exact(len.max(1));
        for dst in outs {
            if let Some(src) = ochunks.next() {
                rows_to_columns(src, n, d, dst);
            }
        }
    })
}

/// Forward of the sub-block keeping what the backward pass needs. `x` and the output y are in
/// `layout`; the saved `[g | u]` and norm divisors are in row order.
pub fn forward_saved(
    d: Dims,
    layout: Layout,
    x: &[f32],
    w_gu: &[f32],
    w_down: &[f32],
    eps: f32,
) -> Saved {
    d.check(x, w_gu, w_down);
    layout.check(d.rows);
    let Dims { rows, n, inter } = d;
    let mut gu = pooled(rows * 2 * inter);
    let mut y = vec![0f32; rows * n];
    let mut s = vec![0f32; rows];
    assert!(
        inter > 0,
        "the SwiGLU needs at least one intermediate feature"
    );
    if n > 0 {
        let t = layout.tile_rows();
        let (w_gu_t, w_down_t) = (
            View::row_major(w_gu, 2 * inter, n).t(),
            View::row_major(w_down, n, inter).t(),
        );
        gu.par_chunks_mut(t * 2 * inter)
            .zip(y.par_chunks_mut(t * n))
            .zip(s.par_chunks_mut(t))
            .zip(x.par_chunks(t * n))
            .for_each(|(((gu, y), s), x)| {
                let r = s.len();
                in_rows(layout, n, [x], [y], |[x], [y]| {
                    matmul(gu, View::row_major(x, r, n), w_gu_t, false);
                    with_scratch(r * inter, |a| {
                        swiglu_rows(gu, inter, a);
                        matmul(y, View::row_major(a, r, inter), w_down_t, false);
                    });
                    residual_norm_rows(x, y, s, n, eps);
                });
            });
    }
    Saved { gu, y, s }
}

/// Forward of the sub-block without a backward pass (no-grad recursion): returns y, `[R, n]`
/// in `layout`.
pub fn forward(
    d: Dims,
    layout: Layout,
    x: &[f32],
    w_gu: &[f32],
    w_down: &[f32],
    eps: f32,
) -> Vec<f32> {
    d.check(x, w_gu, w_down);
    layout.check(d.rows);
    let Dims { rows, n, inter } = d;
    let mut y = vec![0f32; rows * n];
    assert!(
        inter > 0,
        "the SwiGLU needs at least one intermediate feature"
    );
    if n == 0 {
        return y;
    }
    let t = layout.tile_rows();
    let (w_gu_t, w_down_t) = (
        View::row_major(w_gu, 2 * inter, n).t(),
        View::row_major(w_down, n, inter).t(),
    );
    y.par_chunks_mut(t * n)
        .zip(x.par_chunks(t * n))
        .for_each(|(y, x)| {
            let r = y.len() / n;
            in_rows(layout, n, [x], [y], |[x], [y]| {
                with_scratch(r * 2 * inter, |gu| {
                    matmul(gu, View::row_major(x, r, n), w_gu_t, false);
                    swiglu_rows_in_place(gu, inter);
                    matmul(
                        y,
                        View::strided_rows(gu, r, inter, 2 * inter),
                        w_down_t,
                        false,
                    );
                });
                let mut s = vec![0f32; r];
                residual_norm_rows(x, y, &mut s, n, eps);
            });
        });
    y
}

/// Gradients of one sub-block call; `None` where not requested.
#[derive(Debug, Default)]
pub struct Grads {
    /// dL/dx, `[R, n]`.
    pub x: Option<Vec<f32>>,
    /// dL/dW_gu, `[2I, n]`.
    pub w_gu: Option<Vec<f32>>,
    /// dL/dW_down, `[n, I]`.
    pub w_down: Option<Vec<f32>>,
}

/// Which gradients to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// dL/dx.
    pub x: bool,
    /// dL/dW_gu.
    pub w_gu: bool,
    /// dL/dW_down.
    pub w_down: bool,
}

/// One group's weight-gradient sums: `dW_down` `[n, I]` and `dW_guᵀ` `[n, 2I]`.
type GroupSums = (Option<Vec<f32>>, Option<Vec<f32>>);

/// The inputs of a call: `x` (in the call's layout) and the two weights.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// `x`, `[R, n]` in the call's [`Layout`].
    pub x: &'a [f32],
    /// `W_gu`, `[2I, n]`.
    pub w_gu: &'a [f32],
    /// `W_down`, `[n, I]`.
    pub w_down: &'a [f32],
}

/// Backward of the sub-block from the output gradient `dy` (`[R, n]`, in `layout`, as are x
/// and the returned dx).
pub fn backward(
    d: Dims,
    layout: Layout,
    inputs: Inputs<'_>,
    saved: &Saved,
    dy: &[f32],
    want: Wanted,
) -> Grads {
    let Inputs { x, w_gu, w_down } = inputs;
    d.check(x, w_gu, w_down);
    layout.check(d.rows);
    let Dims { rows, n, inter } = d;
    assert_eq!(dy.len(), rows * n, "dy: [{rows}, {n}]");
    let mut out = Grads::default();
    if !(want.x || want.w_gu || want.w_down) {
        return out;
    }
    if rows == 0 || n == 0 || inter == 0 {
        // Nothing flows: every requested gradient is zero.
        out.x = want.x.then(|| vec![0f32; rows * n]);
        out.w_gu = want.w_gu.then(|| vec![0f32; 2 * inter * n]);
        out.w_down = want.w_down.then(|| vec![0f32; n * inter]);
        return out;
    }
    let t = layout.tile_rows();
    let tiles = rows.div_ceil(t).max(1);
    let per_group = tiles.div_ceil(GRAD_GROUPS) * t;
    let (w_gu_v, w_down_v) = (
        View::row_major(w_gu, 2 * inter, n),
        View::row_major(w_down, n, inter),
    );
    // dx starts as dr, the gradient at the residual sum r = x + a·W_downᵀ (also the residual
    // part of dx); the SwiGLU's part is added per tile.
    let mut dx = vec![0f32; rows * n];
    let sums: Vec<GroupSums> = dx
        .par_chunks_mut(per_group * n)
        .zip(dy.par_chunks(per_group * n))
        .zip(saved.y.par_chunks(per_group * n))
        .zip(saved.s.par_chunks(per_group))
        .zip(x.par_chunks(per_group * n))
        .zip(saved.gu.par_chunks(per_group * 2 * inter))
        .map(|(((((dx, dy), y), s), x), gu)| {
            let mut dw_down = want.w_down.then(|| vec![0f32; n * inter]);
            let mut dw_gu_t = want.w_gu.then(|| vec![0f32; n * 2 * inter]);
            let tiles = dx
                .chunks_mut(t * n)
                .zip(dy.chunks(t * n))
                .zip(y.chunks(t * n))
                .zip(s.chunks(t))
                .zip(x.chunks(t * n))
                .zip(gu.chunks(t * 2 * inter));
            for (i, (((((dx, dy), y), s), x), gu)) in tiles.enumerate() {
                let r = s.len();
                in_rows(layout, n, [dy, y, x], [dx], |[dy, y, x], [dx]| {
                    norm_backward_rows(dy, y, s, n, dx);
                    with_scratch(r * 3 * inter, |scratch| {
                        let dr = View::row_major(dx, r, n);
                        let (da, dgu) = scratch.split_at_mut(r * inter);
                        if let Some(g) = &mut dw_down {
                            // a = silu(g)·u again, in the space of dgu (not needed yet).
                            let a = &mut dgu[..r * inter];
                            swiglu_rows(gu, inter, a);
                            matmul(g, dr.t(), View::row_major(a, r, inter), i > 0);
                        }
                        if !(want.x || want.w_gu) {
                            return;
                        }
                        matmul(da, dr, w_down_v, false);
                        swiglu_backward_rows(gu, da, inter, dgu);
                        let dgu_v = View::row_major(dgu, r, 2 * inter);
                        if let Some(g) = &mut dw_gu_t {
                            // As `xᵀ · dgu` (`[n, 2I]`, transposed at the end): gemm runs this
                            // orientation faster than `dguᵀ · x`.
                            matmul(g, View::row_major(x, r, n).t(), dgu_v, i > 0);
                        }
                        if want.x {
                            matmul(dx, dgu_v, w_gu_v, true);
                        }
                    });
                });
            }
            (dw_down, dw_gu_t)
        })
        .collect();
    let mut sums = sums.into_iter();
    let (mut dw_down, mut dw_gu_t) = sums.next().expect("at least one group");
    for (dd, dg) in sums {
        for (acc, part) in [(&mut dw_down, dd), (&mut dw_gu_t, dg)] {
            if let (Some(acc), Some(part)) = (acc.as_mut(), part) {
                acc.iter_mut().zip(&part).for_each(|(a, p)| *a += p);
            }
        }
    }
    out.w_down = dw_down;
    out.w_gu = dw_gu_t.map(|gt| {
        let mut g = vec![0f32; 2 * inter * n];
        for (c, row) in gt.chunks_exact(2 * inter).enumerate() {
            for (j, v) in row.iter().enumerate() {
                g[j * n + c] = *v;
            }
        }
        g
    });
    out.x = want.x.then_some(dx);
    out
}

/// The specification: the same sub-block as plain loops with f64 sums (slow; for tests).
pub mod spec {
    use super::{Dims, Grads};

    fn silu(g: f64) -> f64 {
        g / (1.0 + (-g).exp())
    }

    /// Forward: returns `(y, gu, s)` as f64.
    pub fn forward(
        d: Dims,
        x: &[f32],
        w_gu: &[f32],
        w_down: &[f32],
        eps: f32,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let Dims { rows, n, inter } = d;
        let mut gu = vec![0f64; rows * 2 * inter];
        for r in 0..rows {
            for j in 0..2 * inter {
                gu[r * 2 * inter + j] = (0..n)
                    .map(|c| x[r * n + c] as f64 * w_gu[j * n + c] as f64)
                    .sum();
            }
        }
        let mut y = vec![0f64; rows * n];
        let mut s = vec![0f64; rows];
        for r in 0..rows {
            let a: Vec<f64> = (0..inter)
                .map(|j| silu(gu[r * 2 * inter + j]) * gu[r * 2 * inter + inter + j])
                .collect();
            for c in 0..n {
                let o: f64 = (0..inter)
                    .map(|j| a[j] * w_down[c * inter + j] as f64)
                    .sum();
                y[r * n + c] = x[r * n + c] as f64 + o;
            }
            let ms = y[r * n..(r + 1) * n].iter().map(|v| v * v).sum::<f64>() / n as f64;
            s[r] = (ms + eps as f64).sqrt();
            for c in 0..n {
                y[r * n + c] /= s[r];
            }
        }
        (y, gu, s)
    }

    /// Backward: every gradient, as f32 (the f64 results rounded).
    pub fn backward(
        d: Dims,
        x: &[f32],
        w_gu: &[f32],
        w_down: &[f32],
        dy: &[f32],
        eps: f32,
    ) -> Grads {
        let Dims { rows, n, inter } = d;
        let (y, gu, s) = forward(d, x, w_gu, w_down, eps);
        let mut dx = vec![0f64; rows * n];
        let mut dwgu = vec![0f64; 2 * inter * n];
        let mut dwd = vec![0f64; n * inter];
        for r in 0..rows {
            let yr = &y[r * n..(r + 1) * n];
            let m = (0..n).map(|c| dy[r * n + c] as f64 * yr[c]).sum::<f64>() / n as f64;
            let dr: Vec<f64> = (0..n)
                .map(|c| (dy[r * n + c] as f64 - yr[c] * m) / s[r])
                .collect();
            let g = &gu[r * 2 * inter..r * 2 * inter + inter];
            let u = &gu[r * 2 * inter + inter..(r + 1) * 2 * inter];
            let mut dgu = vec![0f64; 2 * inter];
            for j in 0..inter {
                let a = silu(g[j]) * u[j];
                let mut da = 0.0;
                for c in 0..n {
                    dwd[c * inter + j] += dr[c] * a;
                    da += dr[c] * w_down[c * inter + j] as f64;
                }
                let sig = 1.0 / (1.0 + (-g[j]).exp());
                dgu[j] = da * u[j] * sig * (1.0 + g[j] * (1.0 - sig));
                dgu[inter + j] = da * silu(g[j]);
            }
            for c in 0..n {
                let mut v = dr[c];
                for (j, dg) in dgu.iter().enumerate() {
                    v += dg * w_gu[j * n + c] as f64;
                    dwgu[j * n + c] += dg * x[r * n + c] as f64;
                }
                dx[r * n + c] = v;
            }
        }
        let f = |v: Vec<f64>| Some(v.into_iter().map(|x| x as f32).collect());
        Grads {
            x: f(dx),
            w_gu: f(dwgu),
            w_down: f(dwd),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn rand_vec(n: usize, scale: f32, rng: &mut impl Rng) -> Vec<f32> {
        (0..n)
            .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale)
            .collect()
    }

    /// Largest `|got − want|` relative to the largest `|want|`.
    fn rel_err(got: &[f32], want: &[f64]) -> f64 {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
        got.iter()
            .zip(want)
            .map(|(g, w)| (*g as f64 - w).abs())
            .fold(0.0, f64::max)
            / scale
    }

    #[test]
    fn matmul_matches_loops_for_every_layout() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (70, 33, 129), (130, 257, 40)] {
            let a = rand_vec(m * k, 1.0, &mut rng);
            let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            let b = rand_vec(k * n, 1.0, &mut rng);
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let want: Vec<f64> = (0..m * n)
                .map(|i| {
                    let (r, c) = (i / n, i % n);
                    (0..k)
                        .map(|j| a[r * k + j] as f64 * b[j * n + c] as f64)
                        .sum()
                })
                .collect();
            let views = [
                (View::row_major(&a, m, k), View::row_major(&b, k, n)),
                (
                    View::row_major(&at, k, m).t(),
                    View::row_major(&bt, n, k).t(),
                ),
            ];
            for (va, vb) in views {
                let mut out = vec![f32::NAN; m * n];
                matmul(&mut out, va, vb, false);
                assert!(rel_err(&out, &want) < 1e-5, "{m}x{k}x{n}");
                // Accumulating adds the product once more.
                matmul(&mut out, va, vb, true);
                let twice: Vec<f64> = want.iter().map(|w| 2.0 * w).collect();
                assert!(rel_err(&out, &twice) < 1e-5, "{m}x{k}x{n} accumulate");
            }
        }
    }

    #[test]
    fn strided_views_check_their_bounds() {
        let data = vec![0f32; 10];
        let ok = std::panic::catch_unwind(|| View::strided_rows(&data, 3, 2, 4));
        assert!(ok.is_ok());
        let bad = std::panic::catch_unwind(|| View::strided_rows(&data, 3, 3, 4));
        assert!(bad.is_err());
    }

    fn case(
        rows: usize,
        n: usize,
        inter: usize,
        seed: u64,
    ) -> (Dims, Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let d = Dims { rows, n, inter };
        let x = rand_vec(rows * n, 2.0, &mut rng);
        let w_gu = rand_vec(2 * inter * n, 1.0 / (n as f32).sqrt(), &mut rng);
        let w_down = rand_vec(n * inter, 1.0 / (inter as f32).sqrt(), &mut rng);
        (d, x, w_gu, w_down)
    }

    /// The layouts a case runs in: rows, and columns of `d` channels when `d` divides the rows.
    fn layouts(rows: usize, d: usize) -> Vec<Layout> {
        let mut v = vec![Layout::Rows];
        if d > 0 && rows.is_multiple_of(d) {
            v.push(Layout::Columns { d });
        }
        v
    }

    /// `v` moved between rows and `layout` by `f` ([`rows_to_columns`] or [`columns_to_rows`]).
    fn relayout(
        v: &[f32],
        n: usize,
        layout: Layout,
        f: fn(&[f32], usize, usize, &mut [f32]),
    ) -> Vec<f32> {
        match layout {
            Layout::Rows => v.to_vec(),
            Layout::Columns { d } => {
                let mut out = vec![0f32; v.len()];
                f(v, n, d, &mut out);
                out
            }
        }
    }

    /// `v` (`[R, n]` rows) as `layout` lays it out.
    fn to_layout(v: &[f32], n: usize, layout: Layout) -> Vec<f32> {
        relayout(v, n, layout, rows_to_columns)
    }

    /// `v` laid out by `layout`, back in rows.
    fn from_layout(v: &[f32], n: usize, layout: Layout) -> Vec<f32> {
        relayout(v, n, layout, columns_to_rows)
    }

    // (rows, n, inter, channels of the column layout): 640 rows of 128 channels make two
    // tiles of whole batch elements (4 + 1), 600 rows of 8 channels eight.
    const CASES: [(usize, usize, usize, usize); 5] = [
        (1, 3, 1, 1),
        (6, 9, 7, 3),
        (67, 82, 256, 67),
        (640, 82, 96, 128),
        (600, 32, 48, 8),
    ];

    #[test]
    fn forward_matches_the_spec() {
        for (i, &(rows, n, inter, ch)) in CASES.iter().enumerate() {
            let (d, x, w_gu, w_down) = case(rows, n, inter, i as u64);
            let (want, want_gu, want_s) = spec::forward(d, &x, &w_gu, &w_down, 1e-5);
            for layout in layouts(rows, ch) {
                let xl = to_layout(&x, n, layout);
                let saved = forward_saved(d, layout, &xl, &w_gu, &w_down, 1e-5);
                let y = from_layout(&saved.y, n, layout);
                assert!(rel_err(&y, &want) < 2e-5, "y {rows}x{n}x{inter} {layout:?}");
                assert!(rel_err(&saved.gu, &want_gu) < 2e-5, "gu {rows}x{n}x{inter}");
                assert!(rel_err(&saved.s, &want_s) < 2e-5, "s {rows}x{n}x{inter}");
                let y2 = forward(d, layout, &xl, &w_gu, &w_down, 1e-5);
                assert_eq!(y2, saved.y, "no-grad y {rows}x{n}x{inter} {layout:?}");
            }
        }
    }

    #[test]
    fn backward_matches_the_spec() {
        for (i, &(rows, n, inter, ch)) in CASES.iter().enumerate() {
            let (d, x, w_gu, w_down) = case(rows, n, inter, 10 + i as u64);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
            let dy = rand_vec(rows * n, 1.0, &mut rng);
            let want = spec::backward(d, &x, &w_gu, &w_down, &dy, 1e-5);
            let f64s = |v: &Option<Vec<f32>>| -> Vec<f64> {
                v.as_ref().unwrap().iter().map(|&x| x as f64).collect()
            };
            for layout in layouts(rows, ch) {
                let xl = to_layout(&x, n, layout);
                let inputs = Inputs {
                    x: &xl,
                    w_gu: &w_gu,
                    w_down: &w_down,
                };
                let saved = forward_saved(d, layout, &xl, &w_gu, &w_down, 1e-5);
                let all = Wanted {
                    x: true,
                    w_gu: true,
                    w_down: true,
                };
                let dyl = to_layout(&dy, n, layout);
                let got = backward(d, layout, inputs, &saved, &dyl, all);
                let dx = from_layout(got.x.as_ref().unwrap(), n, layout);
                for (name, g, w) in [
                    ("dx", &dx, &want.x),
                    ("dW_gu", got.w_gu.as_ref().unwrap(), &want.w_gu),
                    ("dW_down", got.w_down.as_ref().unwrap(), &want.w_down),
                ] {
                    let e = rel_err(g, &f64s(w));
                    assert!(e < 5e-5, "{name} {rows}x{n}x{inter} {layout:?}: {e}");
                }
                // Asking for less computes less and gives the same values.
                let only_w = Wanted {
                    x: false,
                    w_gu: false,
                    w_down: true,
                };
                let part = backward(d, layout, inputs, &saved, &dyl, only_w);
                assert!(part.x.is_none() && part.w_gu.is_none());
                assert_eq!(part.w_down, got.w_down);
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        // Enough rows for more tiles and gradient groups than threads.
        let rows = TILE_ROWS * (GRAD_GROUPS + 3) + 17;
        let (d, x, w_gu, w_down) = case(rows, 20, 24, 42);
        let dy = rand_vec(
            rows * 20,
            1.0,
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(4),
        );
        let all = Wanted {
            x: true,
            w_gu: true,
            w_down: true,
        };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let layout = Layout::Rows;
                let y = forward(d, layout, &x, &w_gu, &w_down, 1e-5);
                let saved = forward_saved(d, layout, &x, &w_gu, &w_down, 1e-5);
                let inputs = Inputs {
                    x: &x,
                    w_gu: &w_gu,
                    w_down: &w_down,
                };
                let g = backward(d, layout, inputs, &saved, &dy, all);
                (y, saved.y.clone(), g.x, g.w_gu, g.w_down)
            })
        };
        let one = run(1);
        assert_eq!(one.0, one.1, "the two forwards give the same y");
        for threads in [2, 3, 5] {
            assert!(run(threads) == one, "{threads} threads differ from one");
        }
    }

    #[test]
    fn no_rows_give_zero_weight_gradients() {
        let (d, x, w_gu, w_down) = case(0, 5, 3, 1);
        let saved = forward_saved(d, Layout::Rows, &x, &w_gu, &w_down, 1e-5);
        let inputs = Inputs {
            x: &x,
            w_gu: &w_gu,
            w_down: &w_down,
        };
        let all = Wanted {
            x: true,
            w_gu: true,
            w_down: true,
        };
        let g = backward(d, Layout::Rows, inputs, &saved, &[], all);
        assert_eq!(g.x, Some(vec![]));
        assert_eq!(g.w_gu, Some(vec![0.0; 30]));
        assert_eq!(g.w_down, Some(vec![0.0; 15]));
    }
}
