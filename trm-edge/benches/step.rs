//! Host inference benchmarks of the trm-edge runtime (criterion).
//!
//! `nice -n 19 cargo bench -p trm-edge --bench step` (options after `--`: a criterion filter).
//!
//! Models: TRM-MLP in the official Sudoku shape (seq 81, puzzle_emb_len 16 so S = 97,
//! expansion 4, 2 layers, T = 3, n = 6, N_sup = 16) at hidden D = 64, 128, 512, random weights
//! written with `trm_edge::format::pack_to_vec` as f32, f16 and int8 (vectors stay f32).
//!
//! # FLOPs per supervision step (throughput unit: criterion "elements" = FLOPs)
//!
//! Every matmul is counted as 2 FLOPs per multiply-accumulate; element-wise work (RMSNorm,
//! SiLU, residuals) is not counted. With `I = inter(D)` (channel SwiGLU) and `It = inter(S)`
//! (token-mixing SwiGLU; `inter(97) = 512`):
//! - one block: token MLP `D · (2·It·S + S·It)` MACs + channel MLP `S · (2·I·D + D·I)` MACs
//!   = `3·S·D·(It + I)`;
//! - one step: `T·(n + 1) = 21` calls of the network × `L = 2` blocks = 42 blocks, plus the
//!   heads (`81·11·D + 2·D` MACs);
//! - FLOPs/step = `2 · (42 · 3·S·D·(It + I) + 81·11·D + 2·D)`:
//!   D = 64 (I = 256): 1.203 GFLOP; D = 128 (I = 512): 3.204 GFLOP;
//!   D = 512 (I = 1536): 25.63 GFLOP. A full solve is 16 steps.
//!
//! So criterion's `Gelem/s` is GFLOP/s for `step/*` and `solve/*`, and `elem/s` is
//! puzzles per second for `parallel/*`.
//!
//! To keep the whole run short (the host has 2 cores), the full solves and the 2-thread
//! throughput at D = 512 are timed once (one solve per thread) outside criterion and printed
//! as `oneshot ...` lines (`TRM_BENCH_ONESHOT=0` skips them, e.g. with a criterion filter).
//! `TRM_BENCH_HIDDEN=64,128` benches only those hidden sizes.
//!
//! The runtime multiplies `trm_edge::kernels::TILE` (32) positions or channels per pass over a
//! weight matrix (tile kernels); the `kernels` group times one step at D = 128 with the
//! generic (scalar, autovectorised) tile kernels (`set_simd(false)`) and with the AVX2 ones.
//! The row-by-row implementation before the tile kernels (commit `e25789e`) is compared by
//! running that commit's bench back to back (see BENCHMARKS.md).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use trm_edge::format::{
    DType, Model, ModelConfig, PosEncoding, TensorKind, Variant, pack_to_vec, required_tensors,
    swiglu_inter,
};
use trm_edge::kernels::arch::{kernel_set, set_simd};
use trm_edge::solver::{HaltPolicy, SolveOptions, Solver};
use trm_edge::sudoku::{Grid, parse};

/// The official Sudoku TRM-MLP shape at hidden size `d`.
fn sudoku_config(d: usize) -> ModelConfig {
    let (seq_len, p) = (81, 16);
    ModelConfig {
        variant: Variant::MlpT,
        pos_encoding: PosEncoding::None,
        hidden: d,
        mlp_inter: swiglu_inter(4.0, d),
        mlp_t_inter: swiglu_inter(4.0, p + seq_len),
        layers: 2,
        h_cycles: 3,
        l_cycles: 6,
        halt_max_steps: 16,
        seq_len,
        puzzle_emb_len: p,
        puzzle_emb_ndim: d,
        num_puzzle_ids: 1,
        vocab: 11,
        num_heads: 8,
        head_dim: d / 8,
        rms_eps: 1e-5,
        rope_theta: 10000.0,
        expansion: 4.0,
    }
}

/// FLOPs of one supervision step (see the module docs).
fn flops_per_step(cfg: &ModelConfig) -> u64 {
    let (s, d) = (cfg.seq_total() as u64, cfg.hidden as u64);
    let (i, it) = (cfg.mlp_inter as u64, cfg.mlp_t_inter as u64);
    let blocks = (cfg.h_cycles * (cfg.l_cycles + 1) * cfg.layers) as u64;
    let heads = (cfg.seq_len * cfg.vocab) as u64 * d + 2 * d;
    2 * (blocks * 3 * s * d * (it + i) + heads)
}

/// Deterministic xorshift values in `[-1, 1)`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// A packed model of `cfg` with random weights (`U(-1, 1)·1.7/√cols`), matrices as `dtype`.
fn packed(cfg: &ModelConfig, dtype: DType) -> Vec<u8> {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let owned: Vec<_> = required_tensors(cfg)
        .map(|id| {
            let shape = id.kind.shape(cfg);
            let std = 1.7 / (shape[1] as f32).sqrt();
            let data: Vec<f32> = (0..shape[0] * shape[1])
                .map(|_| match id.kind {
                    TensorKind::HInit | TensorKind::LInit => rng.next(),
                    _ => rng.next() * std,
                })
                .collect();
            (id, shape, data)
        })
        .collect();
    pack_to_vec(cfg, dtype, &owned).expect("pack")
}

fn puzzle() -> Grid {
    parse("4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......")
        .expect("puzzle")
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::I8 => "int8",
    }
}

/// Buffers of one supervision step.
struct StepBufs {
    x: Vec<f32>,
    z_h: Vec<f32>,
    z_l: Vec<f32>,
    logits: Vec<f32>,
    scratch: Vec<f32>,
}

impl StepBufs {
    fn new(model: &Model<'_>) -> Self {
        let n = model.state_len();
        let mut b = Self {
            x: vec![0.0; n],
            z_h: vec![0.0; n],
            z_l: vec![0.0; n],
            logits: vec![0.0; model.logits_len()],
            scratch: vec![0.0; model.scratch_len()],
        };
        let tokens = trm_edge::sudoku::encode(&puzzle());
        model.embed_input(&tokens, 0, &mut b.x).expect("embed");
        model.reset_carry(&mut b.z_h, &mut b.z_l).expect("carry");
        b
    }

    fn step(&mut self, model: &Model<'_>) -> f32 {
        model
            .step(
                &self.x,
                &mut self.z_h,
                &mut self.z_l,
                &mut self.logits,
                &mut self.scratch,
            )
            .expect("step")
            .q_halt
    }
}

/// One full solve (16 steps, policy Full) on a fresh arena; returns the steps run.
fn solve_once(model: &Model<'_>, arena: &mut [f32]) -> usize {
    let opts = SolveOptions {
        budget: model.config().halt_max_steps,
        policy: HaltPolicy::Full,
        puzzle_id: 0,
    };
    let mut solver = Solver::new(model, arena).expect("solver");
    solver.solve(&puzzle(), &opts).expect("solve").steps
}

/// Solves `per_thread` puzzles on each of `threads` threads (own arena each); wall time.
fn parallel_solves(model: &Model<'_>, threads: usize, per_thread: usize) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut arena = vec![0f32; Solver::arena_len(model)];
                for _ in 0..per_thread {
                    black_box(solve_once(model, &mut arena));
                }
            });
        }
    });
    start.elapsed()
}

const HIDDEN: [usize; 3] = [64, 128, 512];
const DTYPES: [DType; 3] = [DType::F32, DType::F16, DType::I8];

fn benches(c: &mut Criterion) {
    set_simd(true);
    eprintln!("trm-edge kernels: {}", kernel_set());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(2));
    // `TRM_BENCH_HIDDEN=64,128` limits the hidden sizes (packing the D = 512 models takes a minute).
    let hidden: Vec<usize> = match std::env::var("TRM_BENCH_HIDDEN") {
        Ok(list) => list
            .split(',')
            .map(|d| {
                d.trim()
                    .parse()
                    .expect("TRM_BENCH_HIDDEN: comma-separated sizes")
            })
            .collect(),
        Err(_) => HIDDEN.to_vec(),
    };
    for d in hidden {
        let cfg = sudoku_config(d);
        let flops = flops_per_step(&cfg);
        eprintln!(
            "D = {d}: I = {}, It = {}, FLOPs/step = {flops}, FLOPs/solve = {}",
            cfg.mlp_inter,
            cfg.mlp_t_inter,
            16 * flops
        );
        for dtype in DTYPES {
            let file = packed(&cfg, dtype);
            let model = Model::from_bytes(&file).expect("model");
            let name = format!("h{d}/{}", dtype_name(dtype));

            // (a) one supervision step.
            let mut g = c.benchmark_group("step");
            g.sample_size(10)
                .sampling_mode(SamplingMode::Flat)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(if d >= 512 { 4 } else { 2 }))
                .throughput(Throughput::Elements(flops));
            let mut bufs = StepBufs::new(&model);
            g.bench_function(BenchmarkId::from_parameter(&name), |b| {
                b.iter(|| black_box(bufs.step(&model)))
            });
            g.finish();

            if d < 512 {
                // (b) a full solve, criterion.
                let mut arena = vec![0f32; Solver::arena_len(&model)];
                let mut g = c.benchmark_group("solve");
                g.sample_size(10)
                    .sampling_mode(SamplingMode::Flat)
                    .warm_up_time(Duration::from_millis(300))
                    .measurement_time(Duration::from_secs(if d >= 128 { 6 } else { 3 }))
                    .throughput(Throughput::Elements(16 * flops));
                g.bench_function(BenchmarkId::from_parameter(&name), |b| {
                    b.iter(|| black_box(solve_once(&model, &mut arena)))
                });
                g.finish();

                // (c) puzzles per second, one puzzle per thread, each thread its own arena.
                let mut g = c.benchmark_group("parallel");
                g.sample_size(10)
                    .sampling_mode(SamplingMode::Flat)
                    .warm_up_time(Duration::from_millis(300))
                    .measurement_time(Duration::from_secs(if d >= 128 { 6 } else { 3 }))
                    .throughput(Throughput::Elements(threads as u64));
                g.bench_function(BenchmarkId::new(format!("{threads}threads"), &name), |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| parallel_solves(&model, threads, 1))
                            .sum()
                    })
                });
                g.finish();
            } else if std::env::var("TRM_BENCH_ONESHOT").as_deref() != Ok("0") {
                // (b) and (c) at D = 512: timed once (skipped with TRM_BENCH_ONESHOT=0).
                let mut arena = vec![0f32; Solver::arena_len(&model)];
                let t = Instant::now();
                black_box(solve_once(&model, &mut arena));
                let solve = t.elapsed();
                let par = parallel_solves(&model, threads, 1);
                eprintln!(
                    "oneshot solve/{name}: {:.3} s per puzzle ({:.2} GFLOP/s); parallel/{threads}threads/{name}: {:.3} s wall for {threads} puzzles = {:.3} puzzles/s",
                    solve.as_secs_f64(),
                    16.0 * flops as f64 / solve.as_secs_f64() / 1e9,
                    par.as_secs_f64(),
                    threads as f64 / par.as_secs_f64()
                );
            }
        }
    }

    // Generic vs SIMD tile kernels, one step at D = 128.
    let cfg = sudoku_config(128);
    let flops = flops_per_step(&cfg);
    for dtype in [DType::F32, DType::I8] {
        let file = packed(&cfg, dtype);
        let model = Model::from_bytes(&file).expect("model");
        let mut g = c.benchmark_group("kernels");
        g.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2))
            .throughput(Throughput::Elements(flops));
        for simd in [false, true] {
            set_simd(simd);
            let label = format!("h128/{}/{}", dtype_name(dtype), kernel_set());
            let mut bufs = StepBufs::new(&model);
            g.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.iter(|| black_box(bufs.step(&model)))
            });
        }
        g.finish();
    }
    set_simd(true);
}

criterion_group!(step, benches);
criterion_main!(step);
