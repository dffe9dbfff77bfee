//! The serial protocol: one request per line, one reply line per request.
//!
//! Requests (ASCII, `\n` or `\r\n` terminated, at most [`MAX_LINE`] bytes):
//! - a puzzle: 81 cells, `1`–`9` for givens, `.` or `0` for blanks (a 9×9 layout on one line
//!   with spaces or `|` also parses) → `ok <answer> steps=<n> stop=<budget|q_halt|solved>
//!   check=<pass|fail> q=<q_halt f32 bits, hex> cycles=<n>`;
//! - `budget <n>` (1..=[`MAX_BUDGET`] supervision steps) → `ok budget <n>`;
//! - `halt full|q|check|q+check` → `ok halt <policy>`;
//! - `attempts <k> [aug|noise|steps|mixed] [check|q|vote]` (1..=[`MAX_ATTEMPTS`]; default
//!   source `aug`, selection `check`): test-time scaling, up to `k` runs per puzzle (trm-edge's
//!   `AttemptSolver`; `k = 1` is the plain solver) → `ok attempts <k> <source> <select>`;
//!   puzzles then get `ok <answer> steps=<total steps> attempts=<run> pick=<check|q|vote>
//!   check=<pass|fail> q=<bits> cycles=<n>`;
//! - `total <n>|auto`: total supervision steps over all attempts (`auto`: `k · budget`) →
//!   `ok total <n>|auto`;
//! - `kernel simd|generic` (the architecture kernels, or the scalar reference ones) →
//!   `ok kernel <name>`;
//! - `info` → one line describing the model, the board and the memory figures;
//! - `stack` → the measured peak stack so far;
//! - `bench <n>` → runs `n` supervision steps on a fixed puzzle between the instruction-count
//!   markers and replies with the cycles per step;
//! - `selftest` → checks the architecture kernels against the scalar ones on the target;
//! - `quit` → ends the program (QEMU: exit status 0);
//! - empty lines and lines starting with `#` get no reply.
//!
//! Anything else gets `err <reason>`; the program never stops on bad input.

use trm_edge::solver::HaltPolicy;
use trm_edge::solver::attempts::{AttemptSource, Selection};

/// Longest accepted line in bytes (longer lines are answered with an error and skipped).
pub const MAX_LINE: usize = 160;
/// Largest supervision-step budget a command may set.
pub const MAX_BUDGET: usize = 10_000;
/// Largest number of attempts per puzzle.
pub const MAX_ATTEMPTS: usize = 64;

/// One parsed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// Nothing to do (empty line or comment).
    Nothing,
    /// A puzzle to solve (the text as received).
    Puzzle(&'a str),
    /// Set the supervision-step budget.
    Budget(usize),
    /// Set the halting policy.
    Halt(HaltPolicy),
    /// Set the attempts per puzzle, their source and the selection rule.
    Attempts(usize, AttemptSource, Selection),
    /// Set the total step budget over all attempts (`None`: attempts × budget).
    Total(Option<usize>),
    /// Use the SIMD/DSP kernels (`true`) or the scalar reference ones.
    Kernel(bool),
    /// Describe the model and board.
    Info,
    /// Report the measured stack.
    Stack,
    /// Run this many supervision steps between the instruction-count markers.
    Bench(usize),
    /// Compare the architecture kernels with the scalar ones.
    SelfTest,
    /// End the program.
    Quit,
}

/// Why a line was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError<'a> {
    /// Not ASCII.
    NotAscii,
    /// A command word that does not exist.
    UnknownCommand(&'a str),
    /// A command with a missing or bad argument, with the expected form.
    BadArgument(&'static str),
}

impl core::fmt::Display for RequestError<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotAscii => f.write_str("line is not ASCII"),
            Self::UnknownCommand(w) => write!(
                f,
                "unknown command `{w}` (puzzle, budget, halt, attempts, total, kernel, info, stack, bench, selftest, quit)"
            ),
            Self::BadArgument(usage) => write!(f, "usage: {usage}"),
        }
    }
}

/// Parses one line (without its line terminator).
pub fn parse_request(line: &[u8]) -> Result<Request<'_>, RequestError<'_>> {
    let text = core::str::from_utf8(line)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or(RequestError::NotAscii)?
        .trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(Request::Nothing);
    }
    if text.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return Ok(Request::Puzzle(text));
    }
    let mut words = text.split_ascii_whitespace();
    let cmd = words.next().unwrap_or("");
    if cmd == "attempts" {
        return parse_attempts(words);
    }
    let arg = words.next();
    let extra = words.next().is_some();
    let number = |usage, max| {
        arg.filter(|_| !extra)
            .and_then(|a| a.parse::<usize>().ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or(RequestError::BadArgument(usage))
    };
    let bare = |req| {
        if arg.is_some() {
            Err(RequestError::BadArgument("a command without arguments"))
        } else {
            Ok(req)
        }
    };
    match cmd {
        "budget" => number("budget <1..=10000>", MAX_BUDGET).map(Request::Budget),
        "bench" => number("bench <1..=10000>", MAX_BUDGET).map(Request::Bench),
        "halt" => match (arg, extra) {
            (Some(p), false) => p
                .parse()
                .map(Request::Halt)
                .map_err(|_| RequestError::BadArgument("halt full|q|check|q+check")),
            _ => Err(RequestError::BadArgument("halt full|q|check|q+check")),
        },
        "kernel" => match (arg, extra) {
            (Some("simd"), false) => Ok(Request::Kernel(true)),
            (Some("generic"), false) => Ok(Request::Kernel(false)),
            _ => Err(RequestError::BadArgument("kernel simd|generic")),
        },
        "total" => match (arg, extra) {
            (Some("auto"), false) => Ok(Request::Total(None)),
            _ => number("total <1..=10000>|auto", MAX_BUDGET).map(|n| Request::Total(Some(n))),
        },
        "info" => bare(Request::Info),
        "stack" => bare(Request::Stack),
        "selftest" => bare(Request::SelfTest),
        "quit" => bare(Request::Quit),
        other => Err(RequestError::UnknownCommand(other)),
    }
}

/// `attempts <k> [source] [select]`.
fn parse_attempts<'a>(
    mut words: impl Iterator<Item = &'a str>,
) -> Result<Request<'a>, RequestError<'a>> {
    const USAGE: &str = "attempts <1..=64> [aug|noise|steps|mixed] [check|q|vote]";
    let k = words
        .next()
        .and_then(|w| w.parse::<usize>().ok())
        .filter(|k| (1..=MAX_ATTEMPTS).contains(k))
        .ok_or(RequestError::BadArgument(USAGE))?;
    let (mut source, mut select) = (AttemptSource::Aug, Selection::Check);
    let (mut seen_source, mut seen_select) = (false, false);
    for w in words {
        match (w.parse::<AttemptSource>().ok(), w.parse::<Selection>().ok()) {
            (Some(s), _) if !seen_source => (source, seen_source) = (s, true),
            (_, Some(s)) if !seen_select => (select, seen_select) = (s, true),
            _ => return Err(RequestError::BadArgument(USAGE)),
        }
    }
    Ok(Request::Attempts(k, source, select))
}

/// Collects bytes into lines of at most [`MAX_LINE`] bytes.
pub struct LineBuffer {
    buf: heapless::Vec<u8, MAX_LINE>,
    overflow: bool,
}

/// What one byte completed.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// Nothing yet.
    Pending,
    /// A complete line (terminator and a trailing `\r` removed).
    Complete(&'a [u8]),
    /// A line longer than [`MAX_LINE`] ended; its bytes were dropped.
    TooLong,
}

impl LineBuffer {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            buf: heapless::Vec::new(),
            overflow: false,
        }
    }

    /// Feeds one byte; a `\n` completes the line. Call [`LineBuffer::clear`] after using a
    /// completed line.
    pub fn push(&mut self, byte: u8) -> Line<'_> {
        if byte == b'\n' {
            if core::mem::take(&mut self.overflow) {
                self.buf.clear();
                return Line::TooLong;
            }
            let line = self.buf.as_slice();
            return Line::Complete(line.strip_suffix(b"\r").unwrap_or(line));
        }
        if !self.overflow && self.buf.push(byte).is_err() {
            self.overflow = true;
        }
        Line::Pending
    }

    /// Forgets the current line.
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}
