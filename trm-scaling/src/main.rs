//! `trm-scaling`: measures test-time scaling of a packed model (accuracy vs total compute).
//!
//! `trm-scaling sweep --model M --set NAME=FILE[:FROM-TO] ... --out DIR` runs every puzzle
//! (rayon across puzzles), appends one JSON line per puzzle to `DIR/outcomes.jsonl` (an
//! interrupted sweep resumes where it stopped) and ends with `report`;
//! `trm-scaling report --out DIR` writes `DIR/table.md`, `DIR/results.csv` and
//! `DIR/accuracy_vs_compute.png` from the outcomes.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use trm_edge::format::Model;
use trm_edge::solver::attempts::{
    AttemptOptions, AttemptSolver, AttemptSource, DEFAULT_NOISE, Selection,
};
use trm_scaling::report::{PuzzleLine, csv, markdown, parse_lines, summarize};
use trm_scaling::sets::{SetSpec, read_items, subsample};
use trm_scaling::{outcomes, plot, run_sources};

/// Test-time scaling measurements: exact accuracy vs total supervision steps per puzzle for
/// every attempt source (aug, noise, steps, mixed) and selection rule (check, q, vote), and the
/// single run given the same steps.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Runs the measurement (resumable) and writes the report.
    Sweep(SweepArgs),
    /// Rebuilds table.md, results.csv and accuracy_vs_compute.png from DIR/outcomes.jsonl.
    Report {
        /// The sweep's output directory.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct SweepArgs {
    /// Packed model file.
    #[arg(long)]
    model: PathBuf,
    /// An evaluation set, NAME=FILE[:FROM-TO][@COUNT] (1-based inclusive lines; COUNT puzzles
    /// spread evenly, overriding --count); repeatable.
    #[arg(long = "set", required = true)]
    sets: Vec<SetSpec>,
    /// Puzzles per set, spread evenly over it [default: all].
    #[arg(long)]
    count: Option<usize>,
    /// Numbers of attempts K to report.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    ks: Vec<usize>,
    /// Supervision steps per attempt [default: the model's halt_max_steps].
    #[arg(long)]
    budget: Option<usize>,
    /// Seed of the augmentations and noise draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Noise level of the noise source (relative to the RMS of H_init / L_init).
    #[arg(long, default_value_t = DEFAULT_NOISE)]
    noise: f32,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Scalar kernels only.
    #[arg(long)]
    no_simd: bool,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
}

/// `DIR/sweep.json`: what the outcomes were measured with (a resumed sweep must match).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Meta {
    model: String,
    model_bytes: usize,
    model_crc: u32,
    ks: Vec<usize>,
    steps_per_attempt: usize,
    seed: u64,
    noise: f32,
    sets: Vec<MetaSet>,
}

/// One set of a sweep: name, file, line range, puzzles measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct MetaSet {
    name: String,
    path: String,
    lines: Option<(usize, usize)>,
    puzzles: usize,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Sweep(a) => {
            sweep(&a)?;
            report(&a.out)
        }
        Cmd::Report { out } => report(&out),
    }
}

/// The model file's bytes at a 64-byte aligned address.
fn aligned(bytes: &[u8]) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; bytes.len() + 64];
    let off = buf.as_ptr().align_offset(64).min(64);
    buf[off..off + bytes.len()].copy_from_slice(bytes);
    (buf, off)
}

fn sweep(a: &SweepArgs) -> Result<()> {
    // Every setting is checked before anything is written to --out.
    if a.ks.is_empty() || a.ks.contains(&0) {
        bail!("--ks needs numbers >= 1");
    }
    if a.count == Some(0) {
        bail!("--count needs a number >= 1");
    }
    if a.budget == Some(0) {
        bail!("--budget needs a number of supervision steps >= 1");
    }
    if !a.noise.is_finite() || a.noise < 0.0 {
        bail!("--noise must be a finite number >= 0");
    }
    for (i, s) in a.sets.iter().enumerate() {
        if a.sets[..i].iter().any(|t| t.name == s.name) {
            bail!(
                "two sets are named {:?}; give each --set its own name",
                s.name
            );
        }
    }
    let raw = fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
    let (buf, off) = aligned(&raw);
    let model = Model::from_bytes(&buf[off..off + raw.len()])
        .map_err(|e| anyhow!("{}: {e}", a.model.display()))?;
    trm_edge::kernels::arch::set_simd(!a.no_simd);
    let n = a.budget.unwrap_or(model.config().halt_max_steps);
    let k_max = a.ks.iter().copied().max().unwrap_or(1);
    let base = AttemptOptions {
        steps_per_attempt: n,
        seed: a.seed,
        noise: a.noise,
        ..AttemptOptions::new(&model, k_max, AttemptSource::Aug, Selection::Vote)
    };
    let mut sets = Vec::new();
    for s in &a.sets {
        // As trm-solve reads files: bytes that are not UTF-8 make their line a bad line.
        let bytes = fs::read(&s.path).with_context(|| format!("reading {}", s.path.display()))?;
        let items = read_items(&bytes, s.lines).with_context(|| s.path.display().to_string())?;
        if items.is_empty() {
            match s.lines {
                Some((from, to)) => bail!(
                    "{}: no puzzles in lines {from}-{to} of {} ({} lines)",
                    s.name,
                    s.path.display(),
                    String::from_utf8_lossy(&bytes).lines().count()
                ),
                None => bail!("{}: no puzzles in {}", s.name, s.path.display()),
            }
        }
        for item in items.iter().filter(|i| i.solution.is_none()) {
            match trm_sudoku::search::solve(item.puzzle.cells(), 2).solutions {
                0 => eprintln!("{} line {}: the puzzle has no solution", s.name, item.line),
                1 => {}
                _ => eprintln!(
                    "{} line {}: the puzzle has more than one solution (measured by the check)",
                    s.name, item.line
                ),
            }
        }
        sets.push((s, subsample(items, s.count.or(a.count))));
    }
    let meta = Meta {
        model: a.model.display().to_string(),
        model_bytes: raw.len(),
        model_crc: raw
            .get(raw.len().saturating_sub(4)..)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes),
        ks: a.ks.clone(),
        steps_per_attempt: n,
        seed: a.seed,
        noise: a.noise,
        sets: sets
            .iter()
            .map(|(s, items)| MetaSet {
                name: s.name.clone(),
                path: s.path.display().to_string(),
                lines: s.lines,
                puzzles: items.len(),
            })
            .collect(),
    };
    fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let meta_path = a.out.join("sweep.json");
    let outcomes_path = a.out.join("outcomes.jsonl");
    let mut done = std::collections::HashSet::new();
    // An outcomes file with no puzzle in it (a sweep that stopped before its first answer)
    // holds nothing to keep: the new settings replace it.
    let measured = fs::metadata(&outcomes_path).is_ok_and(|m| m.len() > 0);
    if measured {
        let old: Meta = serde_json::from_str(&fs::read_to_string(&meta_path)?)
            .context("reading sweep.json of the earlier sweep")?;
        if old != meta {
            bail!(
                "{} holds a sweep with other settings; use another --out",
                a.out.display()
            );
        }
        for l in parse_lines(&fs::read_to_string(&outcomes_path)?)? {
            done.insert((l.set, l.line));
        }
        eprintln!("resuming: {} puzzles already measured", done.len());
    }
    fs::write(&meta_path, serde_json::to_string_pretty(&meta)?)?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&outcomes_path)?;
    let file = Mutex::new(file);
    // More threads than cores only add switching (thousands cost seconds to start).
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    if a.threads > cores {
        eprintln!(
            "--threads {} capped to {cores} (available parallelism)",
            a.threads
        );
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads.min(cores))
        .build()?;
    let arena_len = AttemptSolver::arena_len(&model, AttemptSource::Aug);
    eprintln!(
        "model {} ({} kernels, {} threads): K up to {k_max}, {n} steps per attempt, seed {}, noise {}",
        a.model.display(),
        trm_edge::kernels::arch::kernel_set(),
        pool.current_num_threads(),
        a.seed,
        a.noise
    );
    for (spec, items) in &sets {
        let todo: Vec<_> = items
            .iter()
            .filter(|i| !done.contains(&(spec.name.clone(), i.line)))
            .collect();
        let start = Instant::now();
        let count = AtomicUsize::new(0);
        let total = todo.len();
        eprintln!("{}: {total} puzzles to measure", spec.name);
        pool.install(|| {
            todo.par_iter().try_for_each_init(
                || vec![0f32; arena_len],
                |arena, item| -> Result<()> {
                    let runs = run_sources(&model, arena, &item.puzzle, &base, k_max)
                        .with_context(|| format!("{} line {}", spec.name, item.line))?;
                    let m = outcomes(&runs, &a.ks, &item.puzzle, item.solution.as_ref())?;
                    let line = PuzzleLine {
                        set: spec.name.clone(),
                        line: item.line,
                        m,
                    };
                    let text = serde_json::to_string(&line)? + "\n";
                    {
                        let mut f = file.lock().map_err(|_| anyhow!("poisoned lock"))?;
                        f.write_all(text.as_bytes())?;
                        f.flush()?;
                    }
                    let c = count.fetch_add(1, Ordering::Relaxed) + 1;
                    if c.is_multiple_of(10) || c == total {
                        let s = start.elapsed().as_secs_f64();
                        eprintln!(
                            "{}: {c}/{total} ({:.0} s, {:.1} s/puzzle, ETA {:.0} s)",
                            spec.name,
                            s,
                            s / c as f64,
                            s / c as f64 * (total - c) as f64
                        );
                    }
                    Ok(())
                },
            )
        })?;
    }
    Ok(())
}

fn report(dir: &Path) -> Result<()> {
    let meta: Meta = serde_json::from_str(
        &fs::read_to_string(dir.join("sweep.json")).with_context(|| {
            format!(
                "{} holds no sweep (no sweep.json): run `trm-scaling sweep --out {0}` first",
                dir.display()
            )
        })?,
    )?;
    let lines = parse_lines(
        &fs::read_to_string(dir.join("outcomes.jsonl")).context("reading outcomes.jsonl")?,
    )?;
    let order: Vec<String> = meta.sets.iter().map(|s| s.name.clone()).collect();
    let sets = summarize(&lines, &order, meta.ks.len())?;
    let sets: Vec<_> = sets.into_iter().filter(|s| s.puzzles > 0).collect();
    let md = markdown(&sets, &meta.ks, meta.steps_per_attempt);
    fs::write(dir.join("table.md"), &md)?;
    fs::write(dir.join("results.csv"), csv(&sets, &meta.ks))?;
    let png = dir.join("accuracy_vs_compute.png");
    plot::draw(&png, &sets)?;
    println!("{md}");
    eprintln!(
        "wrote {}, {} and {}",
        dir.join("table.md").display(),
        dir.join("results.csv").display(),
        png.display()
    );
    Ok(())
}
