//! The application: boot (model check), then one reply per serial line.

use core::fmt::Write as _;

use cortex_m_rt::entry;
use embedded_hal::digital::OutputPin;
use embedded_io::{Read, Write};
use trm_edge::format::{Model, ModelConfig, Variant};
use trm_edge::kernels::{arch, generic};
use trm_edge::protocol::{Answer, Line, LineBuffer, MAX_LINE, Request, parse_request};
use trm_edge::solver::attempts::{
    AttemptOptions, AttemptSolver, AttemptSource, DEFAULT_NOISE, Selection,
};
use trm_edge::solver::{HaltPolicy, SolveOptions, Solver};
use trm_edge::sudoku::{find_conflict, parse};

use crate::{board, clock, memory};

/// One reply line.
type Reply = heapless::String<512>;

/// A fixed puzzle for `bench` (the first of `kaggle3m_rated_5000.txt`).
const BENCH_PUZZLE: &str =
    "28.9..47.9...215...3.7.....5...3.26..4....7.....2...41.145.......9...1...2.......";

/// Settings changed by serial commands.
struct Settings {
    budget: usize,
    policy: HaltPolicy,
    /// Attempts per puzzle (1 = the plain solver).
    attempts: usize,
    source: AttemptSource,
    select: Selection,
    /// Total steps over all attempts (`None`: `attempts · budget`).
    total: Option<usize>,
}

#[entry]
fn main() -> ! {
    memory::paint_stack();
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        board::finish()
    };
    let parts = board::init(&mut cp);
    clock::start(&mut cp.SYST);
    let board::Parts {
        mut serial,
        mut led,
    } = parts;
    let Some(arena) = memory::take_arena() else {
        board::finish()
    };
    let model = Model::from_bytes(memory::model_bytes());
    match &model {
        Ok(m) => {
            let c = m.config();
            defmt::info!(
                "model {=str} ok: {=usize} bytes, CRC-32 verified, hidden {=usize}, {=usize} layers, T={=usize} n={=usize}, arena {=usize} B",
                memory::MODEL_SOURCE,
                memory::MODEL_LEN,
                c.hidden,
                c.layers,
                c.h_cycles,
                c.l_cycles,
                memory::ARENA_LEN * 4
            );
        }
        Err(_) => defmt::error!("embedded model {=str} is invalid", memory::MODEL_SOURCE),
    }
    let mut settings = Settings {
        budget: memory::DEFAULT_BUDGET,
        policy: memory::DEFAULT_HALT,
        attempts: 1,
        source: AttemptSource::Aug,
        select: Selection::Check,
        total: None,
    };
    let mut lines = LineBuffer::new();
    let mut rx = [0u8; 64];
    loop {
        let n = match serial.read(&mut rx) {
            Ok(0) => board::finish(),
            Ok(n) => n,
            Err(_) => {
                defmt::warn!("serial read error");
                continue;
            }
        };
        for &byte in rx.get(..n).unwrap_or(&[]) {
            let mut reply = Reply::new();
            let mut quit = false;
            let done = match lines.push(byte) {
                Line::Pending => false,
                Line::TooLong => {
                    let _ = write!(reply, "err line too long (max {MAX_LINE} bytes)");
                    false
                }
                Line::Complete(line) => {
                    quit = handle(line, &model, arena, &mut settings, &mut led, &mut reply);
                    true
                }
            };
            if done {
                lines.clear();
            }
            if !reply.is_empty() {
                let _ = serial.write_all(reply.as_bytes());
                let _ = serial.write_all(b"\n");
                let _ = serial.flush();
            }
            if quit {
                board::finish();
            }
        }
    }
}

/// Answers one line into `reply` (left empty for no reply); `true` for `quit`.
fn handle(
    line: &[u8],
    model: &Result<Model<'static>, trm_edge::format::FormatError>,
    arena: &mut [f32],
    settings: &mut Settings,
    led: &mut impl OutputPin,
    reply: &mut Reply,
) -> bool {
    let request = match parse_request(line) {
        Ok(r) => r,
        Err(e) => {
            let _ = write!(reply, "err {e}");
            return false;
        }
    };
    let model = match (request, model) {
        (Request::Nothing, _) => return false,
        (Request::Quit, _) => return true,
        (_, Err(e)) => {
            let _ = write!(reply, "err embedded model is invalid: {e}");
            return false;
        }
        (_, Ok(m)) => m,
    };
    match request {
        Request::Nothing | Request::Quit => {}
        Request::Puzzle(text) => solve(text, model, arena, settings, led, reply),
        Request::Budget(b) => {
            settings.budget = b;
            let _ = write!(reply, "ok {request}");
        }
        Request::Halt(p) => {
            settings.policy = p;
            let _ = write!(reply, "ok {request}");
        }
        Request::Attempts(k, source, select) => {
            (settings.attempts, settings.source, settings.select) = (k, source, select);
            let _ = write!(reply, "ok {request}");
        }
        Request::Total(t) => {
            settings.total = t;
            let _ = write!(reply, "ok {request}");
        }
        Request::Kernel(simd) => {
            arch::set_simd(simd);
            let _ = write!(reply, "ok kernel {}", arch::kernel_set());
        }
        Request::Info => info(model, settings, reply),
        Request::Stack => {
            let (peak, room) = memory::peak_stack();
            let _ = write!(reply, "ok stack peak={peak} room={room}");
        }
        Request::Bench(steps) => bench(model, arena, steps, reply),
        Request::SelfTest => selftest(reply),
    }
    false
}

/// Solves one puzzle line.
fn solve(
    text: &str,
    model: &Model<'static>,
    arena: &mut [f32],
    settings: &Settings,
    led: &mut impl OutputPin,
    reply: &mut Reply,
) {
    let grid = match parse(text) {
        Ok(g) => g,
        Err(e) => {
            let _ = write!(reply, "err bad puzzle: {e}");
            return;
        }
    };
    if let Some(c) = find_conflict(&grid) {
        let _ = write!(reply, "err bad puzzle: conflicting givens: {c}");
        return;
    }
    if settings.attempts > 1 {
        solve_attempts(&grid, model, arena, settings, led, reply);
        return;
    }
    let opts = SolveOptions {
        budget: settings.budget,
        policy: settings.policy,
        puzzle_id: 0,
    };
    let _ = led.set_high();
    let start = clock::now();
    let result = Solver::new(model, arena).and_then(|mut s| s.solve(&grid, &opts));
    let cycles = clock::now().wrapping_sub(start);
    let _ = led.set_low();
    match result {
        Ok(sol) => {
            let _ = write!(reply, "{}", Answer::from_solution(&sol).with_cycles(cycles));
            defmt::debug!(
                "solved: {=usize} steps, valid {=bool}, {=u64} cycles",
                sol.steps,
                sol.valid,
                cycles
            );
        }
        Err(e) => {
            let _ = write!(reply, "err solve: {e}");
        }
    }
}

/// Test-time scaling: up to `settings.attempts` runs of `settings.budget` steps, at most
/// `settings.total` steps in all, the answer selected by `settings.select`.
fn solve_attempts(
    grid: &trm_edge::sudoku::Grid,
    model: &Model<'static>,
    arena: &mut [f32],
    settings: &Settings,
    led: &mut impl OutputPin,
    reply: &mut Reply,
) {
    let opts = AttemptOptions {
        attempts: settings.attempts,
        source: settings.source,
        select: settings.select,
        steps_per_attempt: settings.budget,
        total_budget: settings
            .total
            .unwrap_or(settings.attempts.saturating_mul(settings.budget)),
        seed: 0,
        noise: DEFAULT_NOISE,
        puzzle_id: 0,
    };
    let _ = led.set_high();
    let start = clock::now();
    let result = AttemptSolver::new(model, arena)
        .map_err(Into::into)
        .and_then(|mut s| s.solve(grid, &opts));
    let cycles = clock::now().wrapping_sub(start);
    let _ = led.set_low();
    match result {
        Ok(sol) => {
            let _ = write!(reply, "{}", Answer::from_attempts(&sol).with_cycles(cycles));
        }
        Err(e) => {
            let _ = write!(reply, "err solve: {e}");
        }
    }
}

/// Multiply-accumulates of one supervision step (matrix products and attention).
fn macs_per_step(c: &ModelConfig) -> usize {
    let s = c.seq_total();
    let channel = 3 * s * c.hidden * c.mlp_inter;
    let mixer = match c.variant {
        Variant::MlpT => 3 * c.hidden * s * c.mlp_t_inter,
        Variant::Attention => 4 * s * c.hidden * c.hidden + 2 * s * s * c.hidden,
    };
    c.calls_per_step() * c.layers * (channel + mixer)
        + c.seq_len * c.vocab * c.hidden
        + 2 * c.hidden
}

/// The `info` reply.
fn info(model: &Model<'static>, settings: &Settings, reply: &mut Reply) {
    let c = model.config();
    let bytes = model.as_bytes();
    let crc = bytes
        .len()
        .checked_sub(4)
        .and_then(|i| bytes.get(i..))
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes);
    let dtype = model
        .tensors()
        .max_by_key(|t| t.shape[0] * t.shape[1])
        .map(|t| t.matrix.dtype());
    let _ = write!(
        reply,
        "ok info board={} chip={} clock_hz={} model_bytes={} crc=0x{crc:08x} variant={} dtype={} \
         hidden={} inter={} layers={} T={} n={} nsup={} seq={} macs_per_step={} arena_bytes={} \
         static_ram={} stack_reserve={} kernels={} budget={} halt={} fpscr=0x{:08x} marks=0x{:x},0x{:x}",
        memory::BOARD,
        memory::CHIP,
        memory::CLOCK_HZ,
        bytes.len(),
        match c.variant {
            Variant::MlpT => "mlp",
            Variant::Attention => "attention",
        },
        match dtype {
            Some(trm_edge::format::DType::F32) => "f32",
            Some(trm_edge::format::DType::F16) => "f16",
            Some(trm_edge::format::DType::I8) => "int8",
            None => "none",
        },
        c.hidden,
        c.mlp_inter,
        c.layers,
        c.h_cycles,
        c.l_cycles,
        c.halt_max_steps,
        c.seq_total(),
        macs_per_step(c),
        memory::ARENA_LEN * 4,
        memory::static_ram(),
        memory::STACK_RESERVE,
        arch::kernel_set(),
        settings.budget,
        settings.policy.name(),
        cortex_m::register::fpscr::read().bits(),
        memory::trm_mark_start as extern "C" fn() as usize & !1,
        memory::trm_mark_stop as extern "C" fn() as usize & !1,
    );
}

/// `bench <n>`: `n` supervision steps on [`BENCH_PUZZLE`], each between the markers.
fn bench(model: &Model<'static>, arena: &mut [f32], steps: usize, reply: &mut Reply) {
    let n = model.state_len();
    let Some(grid) = parse(BENCH_PUZZLE).ok() else {
        let _ = write!(reply, "err bench puzzle");
        return;
    };
    let (x, rest) = arena.split_at_mut(n.min(arena.len()));
    let (z_h, rest) = rest.split_at_mut(n.min(rest.len()));
    let (z_l, rest) = rest.split_at_mut(n.min(rest.len()));
    let (logits, scratch) = rest.split_at_mut(model.logits_len().min(rest.len()));
    let tokens = trm_edge::sudoku::encode(&grid);
    if let Err(e) = model
        .embed_input(&tokens, 0, x)
        .and_then(|()| model.reset_carry(z_h, z_l))
    {
        let _ = write!(reply, "err bench: {e}");
        return;
    }
    let start = clock::now();
    for _ in 0..steps {
        memory::trm_mark_start();
        let r = model.step(x, z_h, z_l, logits, scratch);
        memory::trm_mark_stop();
        if let Err(e) = r {
            let _ = write!(reply, "err bench: {e}");
            return;
        }
    }
    let cycles = clock::now().wrapping_sub(start);
    let _ = write!(
        reply,
        "ok bench steps={steps} cycles_per_step={} kernels={}",
        cycles / steps as u64,
        arch::kernel_set()
    );
}

/// Deterministic pseudo-random values in `[-1, 1)` (xorshift32).
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        (self.0 >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }
}

/// int8 tile products (`Matrix::matmul_tile`: on thumbv7em the 2 × 2 `SMLAD` kernel) against
/// one `kernels::q8::matvec_q8` per tile vector, bit for bit, adding the differing outputs to
/// `bits_differ`; returns the number of cases. Shapes that would catch a wrong pairing or
/// tail: odd row counts (the last row alone), column counts of every remainder modulo 4 (the
/// padded groups of inner row pairs, the leftover columns of the last pair), fewer activation
/// columns than the weights have (down to none), weights −128 and 127, NaN, infinite and
/// outlier activations, and a vector of zeros beside a full one. `y` holds negative NaNs
/// before every product, so that an output left unwritten (or a sum taken from it) differs.
fn selftest_tiles(rng: &mut Rng, bits_differ: &mut usize) -> usize {
    use trm_edge::kernels::{Matrix, TILE, Weights, q8};
    const COLS: usize = 70;
    const ROWS: usize = 5;
    const WORK: usize = match Matrix::tile_work_len(COLS) {
        Some(n) => n,
        None => 0,
    };
    let mut q = [0u8; ROWS * COLS];
    let mut scales = [0u8; 4 * ROWS];
    let mut xt = [0f32; COLS * TILE];
    let mut xr = [0f32; COLS];
    let mut work = [0f32; WORK];
    let (mut y, mut spec) = ([0f32; ROWS * TILE], [0f32; ROWS]);
    let mut cases = 0;
    for (i, s) in scales.chunks_exact_mut(4).enumerate() {
        s.copy_from_slice(&(0.01 * (i + 1) as f32).to_le_bytes());
    }
    for rows in 1..=ROWS {
        for cols in [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 31, 64, 66, 69, 70] {
            for kind in 0..4 {
                for (i, w) in q.iter_mut().enumerate() {
                    *w = match i % 13 {
                        3 => 0x80,
                        8 => 0x7f,
                        _ => (rng.next() * 127.0) as i8 as u8,
                    };
                }
                for (i, v) in xt.iter_mut().enumerate() {
                    let r = rng.next() * 3.0;
                    *v = match (kind, i % 29) {
                        (1, 4) => f32::NAN,
                        (1, 9) => 1e4 * r,
                        (2, 6) => f32::INFINITY,
                        (3, _) if i % TILE == TILE - 1 && TILE > 1 => 0.0,
                        _ => r,
                    };
                }
                let Some(m) = Matrix::new(
                    rows,
                    cols,
                    Weights::I8 {
                        values: &q[..rows * cols],
                        scales: &scales[..4 * rows],
                    },
                ) else {
                    continue;
                };
                for k_len in [cols, cols.saturating_sub(1 + cols % 3), 0] {
                    y.fill(-f32::NAN);
                    m.matmul_tile(&xt[..k_len * TILE], &mut y[..rows * TILE], &mut work);
                    for lane in 0..TILE {
                        for (k, v) in xr.iter_mut().enumerate().take(k_len) {
                            *v = xt[k * TILE + lane];
                        }
                        let (values, s) = (&q[..rows * cols], &scales[..4 * rows]);
                        spec.fill(f32::NAN);
                        q8::matvec_q8(values, s, cols, &xr[..k_len], &mut spec);
                        for (n, want) in spec.iter().enumerate().take(rows) {
                            let got = y[n * TILE + lane];
                            *bits_differ += usize::from(got.to_bits() != want.to_bits());
                        }
                    }
                    cases += 1;
                }
            }
        }
    }
    cases
}

/// `selftest`: the architecture kernels against the scalar reference ones on random data of
/// awkward lengths. f32 and f16 (same contract, other summation order): error relative to
/// `Σ|w·x|` at most 1e-5. int8: the kernel must give exactly the bits of the integer
/// specification (`kernels::q8::matvec_q8`, the same on every target) and stay within half a
/// quantisation step per activation of the f32 product `Σ q·x` (`max|x|·Σ|q|/254`, reported
/// as the worst ratio, must be ≤ 1).
fn selftest(reply: &mut Reply) {
    let mut rng = Rng(0x1234_5678);
    let mut worst = [0f32; 3];
    let mut cases = 0usize;
    let mut bits_differ = 0usize;
    let mut w32 = [0u8; 4 * 600];
    let mut w16 = [0u8; 2 * 600];
    let mut q = [0u8; 600];
    let mut x = [0f32; 600];
    for &len in &[
        0usize, 1, 3, 4, 7, 8, 15, 16, 17, 31, 64, 97, 130, 256, 513, 600,
    ] {
        for _ in 0..4 {
            let scale = 1.0 + 30.0 * rng.next().abs();
            let mut mag = [0f32; 3];
            for i in 0..len {
                let (w, xv) = (rng.next(), rng.next() * scale);
                let h = trm_edge::kernels::f16::f32_to_f16(w);
                let wq = (rng.next() * 127.0) as i8;
                w32[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
                w16[2 * i..2 * i + 2].copy_from_slice(&h.to_le_bytes());
                q[i] = wq as u8;
                x[i] = xv;
                mag[0] += (w * xv).abs();
                mag[1] += (trm_edge::kernels::f16::f16_to_f32(h) * xv).abs();
                mag[2] += (f32::from(wq) * xv).abs();
            }
            let (xs, w32s, w16s) = (&x[..len], &w32[..4 * len], &w16[..2 * len]);
            let errs = [
                (arch::dot_f32(w32s, xs) - generic::dot_f32(w32s, xs)).abs(),
                (arch::dot_f16(w16s, xs) - generic::dot_f16(w16s, xs)).abs(),
            ];
            for k in 0..2 {
                worst[k] = worst[k].max(errs[k] / mag[k].max(1.0));
            }
            // int8: two rows (the second reversed) through the dispatching matvec.
            if len > 0 {
                let (row0, rest) = q.split_at_mut(len);
                row0.iter()
                    .rev()
                    .zip(rest.iter_mut())
                    .for_each(|(a, b)| *b = *a);
                let (mut y, mut spec) = ([0f32; 2], [0f32; 2]);
                let rows = &q[..2 * len.min(300)];
                let cols = rows.len() / 2;
                let xs = &x[..cols];
                let ones = [1f32.to_le_bytes(), 1f32.to_le_bytes()];
                let scales = ones.as_flattened();
                arch::matvec_q8(rows, scales, cols, xs, &mut y);
                trm_edge::kernels::q8::matvec_q8(rows, scales, cols, xs, &mut spec);
                let max = trm_edge::kernels::q8::abs_max(xs);
                for r in 0..2 {
                    bits_differ += usize::from(y[r].to_bits() != spec[r].to_bits());
                    let row = &rows[r * cols..(r + 1) * cols];
                    let (mut exact, mut sum_q) = (0f32, 0f32);
                    for (&w, &v) in row.iter().zip(xs) {
                        exact += f32::from(w as i8) * v;
                        sum_q += f32::from(w as i8).abs();
                    }
                    let bound = max * sum_q / 254.0 * 1.001 + 1e-5 * mag[2];
                    worst[2] = worst[2].max((y[r] - exact).abs() / bound.max(f32::MIN_POSITIVE));
                }
            }
            cases += 1;
        }
    }
    let tile_cases = selftest_tiles(&mut rng, &mut bits_differ);
    let limits = [1e-5f32, 1e-5, 1.0];
    let pass = bits_differ == 0 && worst.iter().zip(limits).all(|(w, l)| *w <= l);
    let _ = write!(
        reply,
        "{} selftest cases={cases} tile_cases={tile_cases} kernels={} rel_err_f32={:e} \
         rel_err_f16={:e} i8_bits_differing_from_spec={bits_differ} i8_err_over_bound={:e}",
        if pass { "ok" } else { "err" },
        arch::kernel_set(),
        worst[0],
        worst[1],
        worst[2],
    );
}
