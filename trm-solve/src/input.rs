//! Reading puzzle files: 81-character lines (optionally `puzzle,solution`) and Sudoku-Extreme
//! CSV (`source,question,answer,rating`).

use clap::ValueEnum;
use trm_sudoku::{Grid, io};

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

/// Reads every entry of `text` in `format`, with the rules every tool shares
/// ([`trm_sudoku::io`]: empty and `#` lines skipped, conflicting givens and wrong solutions
/// reported with their physical line number, a line that is not UTF-8 text a bad line).
pub fn read(text: &[u8], format: InputFormat) -> Vec<Entry> {
    let format = match format {
        InputFormat::Auto => io::detect_format(text),
        InputFormat::Lines => io::Format::Plain,
        InputFormat::Csv => io::Format::Extreme,
    };
    let line = |l: u64| usize::try_from(l).unwrap_or(usize::MAX);
    io::Reader::new(text, format)
        .map(|r| match r {
            Ok(r) => Ok(Puzzle {
                line: line(r.line),
                grid: r.puzzle,
                solution: r.solution,
            }),
            Err(e) => Err(BadLine {
                line: line(e.line),
                reason: e.message,
            }),
        })
        .collect()
}
