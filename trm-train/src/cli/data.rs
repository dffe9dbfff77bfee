//! `trm-train data generate` and `trm-train data check`.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rayon::prelude::*;
use trm_edge::sudoku::Grid;

use crate::progress;
use crate::stats::PuzzleStats;
use trm_sudoku::generate::{GenSpec, generate};
use trm_sudoku::io::{LineError, Reader, Record};
use trm_sudoku::search::solve;

/// `trm-train data ...`
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate uniquely solvable puzzles as Sudoku-Extreme CSV (same arguments, same bytes).
    Generate(GenerateArgs),
    /// Check a puzzle file: counts, givens, ratings, unique solvability. Exits 1 on any bad line.
    Check(CheckArgs),
}

/// Arguments of `data generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of puzzles.
    #[arg(long)]
    pub count: usize,
    /// Seed; the output depends only on the arguments, not on the number of threads.
    #[arg(long)]
    pub seed: u64,
    /// Range of givens, inclusive: `A..B` (or `A..=B`, or one number). Each puzzle aims at a
    /// count drawn uniformly from the range and stops earlier only when no clue can be removed
    /// without losing uniqueness; the default gives ordinary puzzles of about 22–30 givens.
    #[arg(long, default_value = "17..30", value_parser = parse_range)]
    pub clues: RangeInclusive<usize>,
    /// Minimum rating (solver guesses to prove uniqueness).
    #[arg(long, default_value_t = 0)]
    pub min_rating: u32,
    /// Output CSV file (`source,question,answer,rating`), written atomically.
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `data check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A Sudoku-Extreme CSV or a plain list (one puzzle per line, optionally `,solution`);
    /// `-` reads standard input.
    pub file: PathBuf,
}

/// Runs one `data` command.
pub fn run(cmd: DataCommand) -> Result<ExitCode> {
    match cmd {
        DataCommand::Generate(args) => run_generate(&args),
        DataCommand::Check(args) => run_check(&args.file),
    }
}

/// Parses `A..B`, `A..=B` (both inclusive) or `A`.
fn parse_range(s: &str) -> Result<RangeInclusive<usize>, String> {
    let num = |t: &str| {
        t.trim()
            .parse::<usize>()
            .map_err(|_| format!("{t:?} is not a number"))
    };
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (num(a)?, num(b.strip_prefix('=').unwrap_or(b))?),
        None => (num(s)?, num(s)?),
    };
    if a > b {
        return Err(format!("empty range {a}..{b}"));
    }
    Ok(a..=b)
}

fn run_generate(args: &GenerateArgs) -> Result<ExitCode> {
    crate::train::run::refuse_run_file(&args.out)?;
    let spec = GenSpec {
        clues: args.clues.clone(),
        min_rating: args.min_rating,
    };
    let bar = progress::bar(args.count as u64, "generate");
    let start = Instant::now();
    let puzzles = generate(&spec, args.count, args.seed, |_| bar.inc(1))?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();

    crate::train::puzzles::write_generated(&args.out, args.seed, &puzzles)?;

    let mut stats = PuzzleStats::default();
    for g in &puzzles {
        stats.add(g.clues, g.rating);
    }
    println!(
        "{}: {} puzzles in {secs:.2} s ({:.1} puzzles/s on {} threads)",
        args.out.display(),
        puzzles.len(),
        puzzles.len() as f64 / secs.max(1e-9),
        rayon::current_num_threads()
    );
    print!("{}", stats.report());
    Ok(ExitCode::SUCCESS)
}

/// What the check found for one good line.
struct Verdict {
    line: u64,
    givens: usize,
    rating: u32,
    problem: Option<String>,
}

fn check_record(r: &Record) -> Verdict {
    let verdict = |rating, problem| Verdict {
        line: r.line,
        givens: r.puzzle.filled(),
        rating,
        problem,
    };
    let out = solve(r.puzzle.cells(), 2);
    let problem = match (out.solutions, out.solution) {
        (0, _) => Some("no solution".to_string()),
        (1, Some(found)) => match r.solution {
            Some(given) if *given.cells() != found => Some(format!(
                "the file's solution differs from the unique solution {}",
                grid_line(&found)
            )),
            _ => None,
        },
        _ => Some("more than one solution".to_string()),
    };
    verdict(out.guesses, problem)
}

fn grid_line(cells: &[u8; 81]) -> String {
    Grid::from_cells(*cells)
        .map(|g| g.to_string())
        .unwrap_or_default()
}

fn run_check(path: &Path) -> Result<ExitCode> {
    let start = Instant::now();
    let mut records = Vec::new();
    let mut problems: Vec<(u64, String)> = Vec::new();
    let mut file_ratings: Vec<u32> = Vec::new();
    let mut take = |item: Result<Record, LineError>| match item {
        Ok(r) => {
            file_ratings.extend(r.rating);
            records.push(r);
        }
        Err(e) => problems.push((e.line, e.message)),
    };
    // `-` reads standard input, as trm-solve does.
    let (format, path) = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).context("reading stdin")?;
        let reader = Reader::from_bytes(&bytes);
        let format = reader.format();
        reader.for_each(&mut take);
        (format, Path::new("stdin"))
    } else {
        let reader = Reader::open(path)?;
        let format = reader.format();
        reader.for_each(&mut take);
        (format, path)
    };
    let bar = progress::bar(records.len() as u64, "check");
    let verdicts: Vec<Verdict> = records
        .par_iter()
        .map(|r| {
            let v = check_record(r);
            bar.inc(1);
            v
        })
        .collect();
    bar.finish_and_clear();
    let unreadable = problems.len();

    let mut stats = PuzzleStats::default();
    let mut unique = 0usize;
    for v in verdicts {
        stats.add(v.givens, v.rating);
        match v.problem {
            Some(p) => problems.push((v.line, p)),
            None => unique += 1,
        }
    }
    problems.sort();
    let total = records.len() + unreadable;
    let secs = start.elapsed().as_secs_f64();

    println!("{}: {format}", path.display());
    println!("puzzles: {total}");
    println!("uniquely solvable: {unique} of {total}");
    print!("{}", stats.report());
    if !file_ratings.is_empty() {
        let mean = file_ratings.iter().map(|&x| x as f64).sum::<f64>() / file_ratings.len() as f64;
        let (min, max) = (file_ratings.iter().min(), file_ratings.iter().max());
        println!(
            "rating column of the file: min {}, mean {mean:.2}, max {}",
            min.unwrap_or(&0),
            max.unwrap_or(&0)
        );
    }
    println!(
        "checked in {secs:.2} s ({:.0} puzzles/s on {} threads)",
        total as f64 / secs.max(1e-9),
        rayon::current_num_threads()
    );
    if total == 0 {
        bail!("{}: the file holds no puzzle", path.display());
    }
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    const SHOWN: usize = 50;
    for (line, message) in problems.iter().take(SHOWN) {
        eprintln!("{}:{line}: {message}", path.display());
    }
    if problems.len() > SHOWN {
        eprintln!("... and {} more", problems.len() - SHOWN);
    }
    eprintln!("{}: {} bad line(s)", path.display(), problems.len());
    Ok(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_clue_ranges() {
        assert_eq!(parse_range("30..40"), Ok(30..=40));
        assert_eq!(parse_range("30..=40"), Ok(30..=40));
        assert_eq!(parse_range("25"), Ok(25..=25));
        assert!(parse_range("40..30").is_err());
        assert!(parse_range("a..3").is_err());
    }
}
