//! Reading puzzle files: 81-character lines (optionally `puzzle,solution`) and Sudoku-Extreme
//! CSV (`source,question,answer,rating`).

use clap::ValueEnum;
use trm_edge::sudoku::{Grid, check_answer, find_conflict, parse};

/// The header line of a Sudoku-Extreme CSV file.
pub const CSV_HEADER: &str = "source,question,answer,rating";

/// How to read the input (`--input-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// CSV when the first non-empty line is the Sudoku-Extreme header, lines otherwise.
    Auto,
    /// One puzzle per line, optionally `puzzle,solution`; empty and `#` lines are skipped.
    Lines,
    /// Sudoku-Extreme CSV with its header line.
    Csv,
}

/// One puzzle read from the input.
#[derive(Clone, Copy, Debug)]
pub struct Puzzle {
    /// 1-based line number in the input.
    pub line: usize,
    /// The givens.
    pub grid: Grid,
    /// The solution the file gives, if any.
    pub solution: Option<Grid>,
}

/// A line that could not be used, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number in the input.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// One entry of the input, in order: a puzzle or a bad line.
pub type Entry = Result<Puzzle, BadLine>;

/// Reads every entry of `text` in `format`.
pub fn read(text: &str, format: InputFormat) -> Vec<Entry> {
    let csv = match format {
        InputFormat::Auto => text
            .lines()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.trim() == CSV_HEADER),
        InputFormat::Lines => false,
        InputFormat::Csv => true,
    };
    if csv {
        read_csv(text)
    } else {
        read_lines(text)
    }
}

fn read_lines(text: &str) -> Vec<Entry> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            let (q, a) = match l.split_once(',') {
                Some((q, a)) => (q, Some(a)),
                None => (l, None),
            };
            puzzle(i + 1, q, a)
        })
        .collect()
}

fn read_csv(text: &str) -> Vec<Entry> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    let mut header = true;
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                out.push(Err(BadLine {
                    line,
                    reason: format!("CSV: {e}"),
                }));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        if header {
            header = false;
            let got = record.iter().collect::<Vec<_>>().join(",");
            if got != CSV_HEADER {
                out.push(Err(BadLine {
                    line,
                    reason: format!("expected the CSV header {CSV_HEADER:?}, found {got:?}"),
                }));
            }
            continue;
        }
        out.push(match (record.get(1), record.get(2)) {
            (Some(q), Some(a)) if record.len() == 4 => puzzle(line, q, Some(a)),
            _ => Err(BadLine {
                line,
                reason: format!("expected 4 CSV fields, found {}", record.len()),
            }),
        });
    }
    out
}

/// Parses and checks one puzzle (and its solution, when given).
fn puzzle(line: usize, question: &str, answer: Option<&str>) -> Entry {
    let bad = |reason: String| BadLine { line, reason };
    let grid = parse_one(question).map_err(|e| bad(format!("puzzle: {e}")))?;
    if let Some(c) = find_conflict(&grid) {
        return Err(bad(format!("puzzle has conflicting givens: {c}")));
    }
    let solution = match answer.map(str::trim).filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => {
            let s = parse_one(a).map_err(|e| bad(format!("solution: {e}")))?;
            check_answer(&grid, &s).map_err(|e| bad(format!("solution does not solve it: {e}")))?;
            Some(s)
        }
    };
    Ok(Puzzle {
        line,
        grid,
        solution,
    })
}

/// [`parse`] of one 81-character field, with the length checked first for a plain message.
fn parse_one(text: &str) -> Result<Grid, String> {
    let t = text.trim();
    let n = t.chars().count();
    if n != 81 {
        return Err(format!("{n} characters, expected 81"));
    }
    parse(t).map_err(|e| e.to_string())
}
