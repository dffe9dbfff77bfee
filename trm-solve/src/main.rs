//! `trm-solve`: solves Sudoku files with a packed Tiny Recursive Model on the CPU.
//!
//! Exit codes: 0 every line solved; 1 some input lines were bad (reported on stderr, the rest
//! solved; with `--strict` nothing is solved) or some puzzles have no solution or more than one
//! (reported, still answered), or the input holds no puzzle; 2 usage, model or I/O error; 3 `--time-limit` reached (the
//! answers finished by then are written, the other puzzles not attempted).

#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod gpu;
mod input;
mod output;
mod solve;
mod trace;

use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use trm_edge::kernels::arch::{Kernels, UnknownKernels};
use trm_edge::solver::attempts::{AttemptOptions, AttemptSource, DEFAULT_NOISE, Selection};
use trm_edge::solver::{HaltPolicy, SolveOptions};

use input::InputFormat;
use output::{OutputFormat, Totals};
use solve::{Mode, ModelBytes, Solved};

/// The model used when `--model` is not given, relative to the working directory.
const DEFAULT_MODEL: &str = "models/sudoku-int8.trm";
/// Inputs with at least this many puzzles get a progress bar (when stderr is a terminal).
const PROGRESS_MIN: usize = 200;

/// Solve Sudoku puzzles with a packed Tiny Recursive Model (CPU, all cores).
///
/// Answers are written in input order as soon as they and all earlier ones are done.
///
/// Exit codes: 0 ok; 1 some input lines were bad (reported on stderr with their line numbers,
/// the others solved; with --strict the first is reported and nothing is solved), or some
/// puzzles have no solution or more than one (each reported as "line N: ..." and still answered;
/// with --strict the first is reported and nothing is solved), or the input holds no puzzle;
/// 2 usage, model or I/O error; 3
/// --time-limit reached (the answers finished by then are written, the rest not attempted;
/// takes precedence over 1).
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Packed model file [default: models/sudoku-int8.trm in the working directory]
    #[arg(long)]
    model: Option<PathBuf>,
    /// Maximum supervision steps per puzzle; with --attempts, per attempt [default: the
    /// model's halt_max_steps]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    budget: Option<u32>,
    /// Test-time scaling: up to K attempts per puzzle (attempt 0 is the plain run) and a
    /// selection rule; the summary then shows the total supervision steps per puzzle
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    attempts: Option<u32>,
    /// Where attempts 1..K come from: aug (symmetries of the puzzle, answers mapped back),
    /// noise (seeded noise on the initial latents), steps (the plain run continued past its
    /// budget), mixed (round robin over the three)
    #[arg(long, default_value = "aug", requires = "attempts", value_parser = names::<AttemptSource>(&AttemptSource::NAMES))]
    attempt_source: AttemptSource,
    /// How the answer is selected: check (first answer passing the Sudoku check, stops early;
    /// else a valid per-cell vote, else the highest q_halt), q (highest q_halt), vote
    /// (per-cell majority)
    #[arg(long, default_value = "check", requires = "attempts", value_parser = names::<Selection>(&Selection::NAMES))]
    select: Selection,
    /// Total supervision steps per puzzle over all attempts [default: attempts × budget]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), requires = "attempts")]
    total_budget: Option<u32>,
    /// Seed of the augmentations and noise draws (the output is deterministic for a seed)
    #[arg(long, default_value_t = 0, requires = "attempts")]
    seed: u64,
    /// Noise standard deviation relative to the RMS of H_init / L_init (--attempt-source
    /// noise|mixed)
    #[arg(long, default_value_t = DEFAULT_NOISE, requires = "attempts")]
    noise: f32,
    /// When to stop before the budget: full (never), q (q_halt > 0), check (the answer passes
    /// the Sudoku check), q+check (either)
    #[arg(long, default_value = "full", value_parser = names::<HaltPolicy>(&HaltPolicy::NAMES))]
    halt: HaltPolicy,
    /// Worker threads (0: one per core), capped at the available parallelism and the number of
    /// puzzles; the output never depends on it
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Time limit for starting puzzles, in seconds from the start of the run (fractions
    /// allowed): once reached, no new puzzle is started; puzzles under way finish (one puzzle
    /// is not interrupted: bound it with --budget), the answers are written, the summary
    /// counts the puzzles not attempted and the exit code is 3
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    time_limit: Option<Duration>,
    /// Wall-clock limit per puzzle, in seconds (fractions allowed): a puzzle stops at the end
    /// of the first supervision step that finishes past it and keeps that step's answer, with
    /// stop reason `stopped` (the answers then depend on the machine's speed; cpu backend)
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    puzzle_time_limit: Option<Duration>,
    /// Output format on stdout; JSON and CSV rows have a `solutions` field: the puzzle's
    /// solutions by the exact solver, 0, 1 or 2 (two or more), when the file gives no solution
    /// (null/empty when it does)
    #[arg(long, value_enum, default_value = "text")]
    format: OutputFormat,
    /// Input format: auto detects the Sudoku-Extreme CSV header
    #[arg(long, value_enum, default_value = "auto")]
    input_format: InputFormat,
    /// Stop at the first bad input line, or puzzle without exactly one solution, before solving
    /// anything (exit 1) instead of reporting it and going on
    #[arg(long)]
    strict: bool,
    /// Write every supervision step of every puzzle to FILE as JSON lines (puzzle, line,
    /// attempt, kind, step, total_steps, grid, changed cells, q_halt, p_halt, valid); the
    /// answers are the same with and without it
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Write the same steps as one HTML page, each puzzle's grids side by side with the changed
    /// cells highlighted, q_halt and the Sudoku check
    #[arg(long, value_name = "FILE")]
    trace_html: Option<PathBuf>,
    /// Use the scalar reference kernels only (bit-identical results on every architecture);
    /// the same as `--kernels generic`
    #[arg(long, conflicts_with = "kernels")]
    no_simd: bool,
    /// Cap the CPU kernels at a set, to time a CPU that lacks an extension on one that has it:
    /// auto (the best this CPU has), generic, avx2 (x86_64 without AVX-512 and VNNI), avx-vnni
    /// (x86_64 without AVX-512), neon (aarch64 without SDOT), sdot (aarch64 with SDOT, without
    /// SMMLA). Refused where the CPU lacks the set. int8 answers are the same with every set
    #[arg(long, value_name = "SET", default_value = "auto", value_parser = parse_kernels)]
    kernels: Kernels,
    /// Where the network runs: cpu (trm-edge, all cores), or the burn model of trm-train on a
    /// GPU through wgpu (Vulkan/Metal/DX12) or CUDA, batched; wgpu and cuda need a build with
    /// that cargo feature (`cargo build --release -p trm-solve --features wgpu`)
    #[arg(long, value_enum, default_value = "cpu")]
    backend: BackendArg,
    /// Puzzles per batch on a GPU backend
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
    /// Puzzle file, or - for stdin (the default)
    input: Option<PathBuf>,
}

/// `--backend` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    Cpu,
    Wgpu,
    Cuda,
}

/// A clap parser of the names of `T` (`trm_edge::solver::names`), listed in `--help`.
fn names<T>(names: &'static [&'static str]) -> impl clap::builder::TypedValueParser<Value = T>
where
    T: std::str::FromStr<Err = trm_edge::solver::names::UnknownName>
        + Clone
        + Send
        + Sync
        + 'static,
{
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(names).try_map(|s| s.parse::<T>())
}

/// The name clap shows for a value.
fn value_name(v: &impl ValueEnum) -> String {
    v.to_possible_value()
        .map_or("?".into(), |v| v.get_name().to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// `--kernels`: a name of [`Kernels::ALL`].
fn parse_kernels(s: &str) -> std::result::Result<Kernels, String> {
    s.parse().map_err(|e: UnknownKernels| e.to_string())
}

fn model_path(cli: &Cli) -> Result<PathBuf> {
    if let Some(p) = &cli.model {
        return Ok(p.clone());
    }
    let p = PathBuf::from(DEFAULT_MODEL);
    if !p.is_file() {
        bail!("no model given and {DEFAULT_MODEL} does not exist here: pass --model FILE");
    }
    Ok(p)
}

fn read_input(path: Option<&Path>) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match path {
        None => io::stdin()
            .read_to_end(&mut bytes)
            .context("reading stdin")?,
        Some(p) if p.as_os_str() == "-" => io::stdin()
            .read_to_end(&mut bytes)
            .context("reading stdin")?,
        Some(p) => {
            bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            bytes.len()
        }
    };
    Ok(bytes)
}

/// Where puzzles are solved.
enum Engine {
    /// trm-edge on the rayon pool.
    Cpu,
    /// The burn model on a GPU device, with the single-run options.
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    Gpu(gpu::GpuSolver, SolveOptions),
}

impl Engine {
    fn new(cli: &Cli, model: &trm_edge::format::Model<'_>, mode: &Mode) -> Result<Self> {
        if cli.backend == BackendArg::Cpu {
            return Ok(Self::Cpu);
        }
        let Mode::Single(opts) = mode else {
            bail!("--attempts runs on the cpu backend only");
        };
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        {
            use trm_train::train::config::Backend;
            let backend = match cli.backend {
                BackendArg::Wgpu => Backend::Wgpu,
                _ => Backend::Cuda,
            };
            let gpu = gpu::GpuSolver::new(model, backend, cli.batch as usize)?;
            Ok(Self::Gpu(gpu, *opts))
        }
        #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
        {
            let _ = (model, opts);
            let name = value_name(&cli.backend);
            bail!(
                "this trm-solve was built without the {name} backend: \
                 cargo build --release -p trm-solve --features {name}"
            )
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode> {
    let started = Instant::now();
    let deadline = cli.time_limit.and_then(|t| started.checked_add(t));
    let path = model_path(cli)?;
    let bytes = ModelBytes::read(&path)?;
    let model = bytes.model(&path)?;
    let kernels = if cli.no_simd {
        Kernels::Generic
    } else {
        cli.kernels
    };
    trm_edge::kernels::arch::set_kernels(kernels)
        .map_err(|e| anyhow::anyhow!("--kernels {kernels}: {e}"))?;
    let budget = cli
        .budget
        .map_or(model.config().halt_max_steps, |b| b as usize);
    let (mode, described) = match cli.attempts {
        None => (
            Mode::Single(SolveOptions {
                budget,
                policy: cli.halt,
                puzzle_id: 0,
            }),
            format!("budget {budget}, halt {}", cli.halt),
        ),
        Some(k) => {
            if cli.halt != HaltPolicy::Full {
                bail!("--halt applies to single runs; with --attempts choose --select");
            }
            if !cli.noise.is_finite() || cli.noise < 0.0 {
                bail!("--noise must be a finite number >= 0");
            }
            let k = k as usize;
            let total = cli
                .total_budget
                .map_or(k.saturating_mul(budget), |t| t as usize);
            let opts = AttemptOptions {
                steps_per_attempt: budget,
                total_budget: total,
                seed: cli.seed,
                noise: cli.noise,
                ..AttemptOptions::new(&model, k, cli.attempt_source, cli.select)
            };
            (
                Mode::Attempts(opts),
                format!(
                    "{k} attempts from {}, select {}, {budget} steps each, total budget {total}, seed {}",
                    cli.attempt_source, cli.select, cli.seed
                ),
            )
        }
    };
    let text = read_input(cli.input.as_deref())?;
    let mut puzzles = Vec::new();
    let mut bad = 0usize;
    for entry in input::read(&text, cli.input_format) {
        match entry {
            Ok(p) => puzzles.push(p),
            Err(b) => {
                eprintln!("line {}: {}", b.line, b.reason);
                bad += 1;
                if cli.strict {
                    eprintln!("stopped at the first bad line (--strict); nothing solved");
                    return Ok(ExitCode::from(1));
                }
            }
        }
    }
    if puzzles.is_empty() && bad == 0 {
        let name = match cli.input.as_deref() {
            Some(p) if p.as_os_str() != "-" => p.display().to_string(),
            _ => "stdin".into(),
        };
        eprintln!("{name}: the input holds no puzzle (empty, or only blank and # lines)");
        return Ok(ExitCode::from(1));
    }
    let (threads, capped) = worker_threads(cli.threads, puzzles.len());
    if let Some(note) = capped {
        eprintln!("{note}");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting worker threads")?;
    if cli.strict {
        let first = pool.install(|| {
            puzzles
                .par_iter()
                .filter_map(|p| solve::uniqueness_problem(solve::solution_count(p)).map(|w| (p, w)))
                .find_first(|_| true)
        });
        if let Some((p, problem)) = first {
            eprintln!("line {}: {problem}", p.line);
            eprintln!(
                "stopped at the first puzzle without a unique solution (--strict); nothing solved"
            );
            return Ok(ExitCode::from(1));
        }
    }
    let engine = Engine::new(cli, &model, &mode)?;
    let tracing = cli.trace.is_some() || cli.trace_html.is_some();
    if tracing && cli.backend != BackendArg::Cpu {
        bail!("--trace and --trace-html run on the cpu backend only");
    }
    if cli.puzzle_time_limit.is_some() && cli.backend != BackendArg::Cpu {
        bail!("--puzzle-time-limit applies to the cpu backend only");
    }
    let mut inputs = vec![("the model file", path.as_path())];
    if let Some(input) = cli.input.as_deref().filter(|p| p.as_os_str() != "-") {
        inputs.push(("the puzzle file", input));
    }
    let mut trace = trace::Trace::create(
        cli.trace.as_deref(),
        cli.trace_html.as_deref(),
        &inputs,
        &format!("model {}, {described}", path.display()),
    )?;
    let bar = progress(puzzles.len());
    let mut out = BufWriter::new(io::stdout().lock());
    output::header(&mut out, cli.format, cli.attempts.is_some())?;
    out.flush()?;
    let mut totals = Totals::default();
    // Writes answers that complete the input-order prefix, and flushes them.
    let mut ready = |solved: &[Solved]| -> Result<()> {
        for s in solved {
            if let Some(problem) = solve::uniqueness_problem(s.solutions) {
                bar.suspend(|| eprintln!("line {}: {problem}", s.puzzle.line));
            }
            output::write(&mut out, cli.format, s)?;
            if let Some(t) = &mut trace {
                t.write(s)?;
            }
            totals.add(s);
            bar.inc(1);
        }
        out.flush()?;
        Ok(())
    };
    let start = Instant::now();
    let attempted = match &engine {
        Engine::Cpu => solve::solve_in_order(
            &pool,
            &model,
            &mode,
            &puzzles,
            deadline,
            solve::Watch {
                trace: tracing,
                puzzle_limit: cli.puzzle_time_limit,
            },
            &mut ready,
        )?,
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        Engine::Gpu(gpu, opts) => {
            let mut attempted = 0;
            for chunk in puzzles.chunks(cli.batch as usize) {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let solved = gpu.solve_all(opts, chunk, &|| {})?;
                ready(solved.as_slice())?;
                attempted += chunk.len();
            }
            attempted
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some(t) = trace {
        t.finish()?;
    }
    match engine {
        Engine::Cpu => eprintln!(
            "model: {} ({} kernels, {} threads, {described})",
            path.display(),
            trm_edge::kernels::arch::kernel_set(),
            pool.current_num_threads(),
        ),
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        Engine::Gpu(..) => eprintln!(
            "model: {} (burn {}, f32, batches of {}, {described})",
            path.display(),
            value_name(&cli.backend),
            cli.batch
        ),
    }
    for line in totals.summary(seconds) {
        eprintln!("{line}");
    }
    if bad > 0 {
        eprintln!("bad lines: {bad} (skipped)");
    }
    let not_attempted = puzzles.len() - attempted;
    if not_attempted > 0 {
        eprintln!("not attempted (--time-limit reached): {not_attempted}");
        return Ok(ExitCode::from(3));
    }
    if bad > 0 || totals.not_unique() > 0 {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--time-limit`, `--puzzle-time-limit`: a positive, finite number of seconds.
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err("expected a number of seconds > 0".into());
    }
    Duration::try_from_secs_f64(v).map_err(|e| e.to_string())
}

/// The worker threads for `--threads requested` and `puzzles` puzzles: one per core for 0, and
/// never more than the available parallelism or the puzzles (more only cost memory and time
/// spinning); with the line to print when an explicit request was capped.
fn worker_threads(requested: usize, puzzles: usize) -> (usize, Option<String>) {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let wanted = if requested == 0 { cores } else { requested };
    let threads = wanted.min(cores).min(puzzles.max(1));
    let note = (requested > threads).then(|| {
        let why = if puzzles < cores {
            format!("{puzzles} puzzle{}", if puzzles == 1 { "" } else { "s" })
        } else {
            "available parallelism".into()
        };
        format!("--threads {requested} capped to {threads} ({why})")
    });
    (threads, note)
}

/// A progress bar on stderr for large inputs when it is a terminal; hidden otherwise.
fn progress(n: usize) -> ProgressBar {
    if n < PROGRESS_MIN || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} puzzles, {per_sec}, ETA {eta}")
    {
        bar.set_style(style);
    }
    bar
}
