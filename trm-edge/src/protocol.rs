//! The serial protocol of the firmware: one request per line, one reply line per request.
//! Parsing and formatting live here, on the host as on the board, so that the firmware, its
//! host tests and any program talking to a board share one definition.
//!
//! Requests (ASCII, `\n` or `\r\n` terminated, at most [`MAX_LINE`] bytes):
//! - a puzzle: 81 cells, `1`–`9` for givens, `.` or `0` for blanks (a 9×9 layout on one line
//!   with spaces or `|` also parses) → `ok <answer> steps=<n> stop=<budget|q_halt|solved>
//!   check=<pass|fail> q=<q_halt f32 bits, hex> cycles=<n>` ([`Answer`]);
//! - `budget <n>` (1..=[`MAX_BUDGET`] supervision steps) → `ok budget <n>`;
//! - `halt full|q|check|q+check` → `ok halt <policy>`;
//! - `attempts <k> [aug|noise|steps|mixed] [check|q|vote]` (1..=[`MAX_ATTEMPTS`]; default
//!   source `aug`, selection `check`): test-time scaling, up to `k` runs per puzzle (the
//!   [`AttemptSolver`](crate::solver::attempts::AttemptSolver); `k = 1` is the plain solver)
//!   → `ok attempts <k> <source> <select>`; puzzles then get `ok <answer> steps=<total steps>
//!   attempts=<run> pick=<check|q|vote> check=<pass|fail> q=<bits> cycles=<n>`;
//! - `total <n>|auto`: total supervision steps over all attempts (`auto`: `k · budget`) →
//!   `ok total <n>|auto`;
//! - `kernel simd|generic` (the architecture kernels, or the scalar reference ones) →
//!   `ok kernel <kernel set name>`;
//! - `info` → one line describing the model, the board and the memory figures;
//! - `stack` → the measured peak stack so far;
//! - `bench <n>` → runs `n` supervision steps on a fixed puzzle between the instruction-count
//!   markers and replies with the cycles per step;
//! - `selftest` → checks the architecture kernels against the scalar ones on the target;
//! - `quit` → ends the program (QEMU: exit status 0);
//! - empty lines and lines starting with `#` get no reply.
//!
//! Anything else gets `err <reason>`; the firmware never stops on bad input.
//!
//! A settings request is acknowledged with `ok ` and the request in its canonical form, which
//! is what [`Request`]'s `Display` writes (`ok budget 16`, `ok attempts 4 noise vote`).

use core::fmt;

use crate::solver::attempts::{AttemptSolution, AttemptSource, Pick, Selection};
use crate::solver::{HaltPolicy, Solution, StopReason};
use crate::sudoku::{CELLS, Grid, parse};

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

/// The request as a line that [`parse_request`] reads back as the same request (without the
/// line terminator; [`Request::Nothing`] is the empty line).
impl fmt::Display for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nothing => Ok(()),
            Self::Puzzle(text) => f.write_str(text),
            Self::Budget(n) => write!(f, "budget {n}"),
            Self::Halt(p) => write!(f, "halt {p}"),
            Self::Attempts(k, source, select) => write!(f, "attempts {k} {source} {select}"),
            Self::Total(Some(n)) => write!(f, "total {n}"),
            Self::Total(None) => f.write_str("total auto"),
            Self::Kernel(simd) => f.write_str(if *simd {
                "kernel simd"
            } else {
                "kernel generic"
            }),
            Self::Info => f.write_str("info"),
            Self::Stack => f.write_str("stack"),
            Self::Bench(n) => write!(f, "bench {n}"),
            Self::SelfTest => f.write_str("selftest"),
            Self::Quit => f.write_str("quit"),
        }
    }
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

impl fmt::Display for RequestError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

impl core::error::Error for RequestError<'_> {}

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
#[derive(Clone, Debug)]
pub struct LineBuffer {
    buf: [u8; MAX_LINE],
    len: usize,
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
            buf: [0; MAX_LINE],
            len: 0,
            overflow: false,
        }
    }

    /// Feeds one byte; a `\n` completes the line. Call [`LineBuffer::clear`] after using a
    /// completed line.
    pub fn push(&mut self, byte: u8) -> Line<'_> {
        if byte == b'\n' {
            if core::mem::take(&mut self.overflow) {
                self.len = 0;
                return Line::TooLong;
            }
            let line = self.buf.get(..self.len).unwrap_or(&[]);
            return Line::Complete(line.strip_suffix(b"\r").unwrap_or(line));
        }
        if !self.overflow {
            match self.buf.get_mut(self.len) {
                Some(slot) => {
                    *slot = byte;
                    self.len += 1;
                }
                None => self.overflow = true,
            }
        }
        Line::Pending
    }

    /// Forgets the current line.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

/// How an answered puzzle ended: the plain solver's stop reason, or the attempts run and how
/// the answer was picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// One run (`stop=<reason>`).
    Stop(StopReason),
    /// Test-time scaling (`attempts=<run> pick=<rule>`).
    Attempts {
        /// Attempts run.
        attempts: usize,
        /// How the answer was chosen.
        pick: Pick,
    },
}

/// The reply to a puzzle: `ok <answer> steps=<n> stop=<reason> check=<pass|fail> q=0x<bits>
/// cycles=<n>`, or with `attempts=<run> pick=<rule>` in place of `stop=` after test-time
/// scaling. `q` is `q_halt`'s f32 bit pattern, so the value crosses the wire exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Answer {
    /// The answer grid.
    pub grid: Grid,
    /// Supervision steps run (over all attempts).
    pub steps: usize,
    /// Stop reason or attempts.
    pub ending: Ending,
    /// Whether the answer passes the Sudoku check.
    pub valid: bool,
    /// `q_halt` of the answer.
    pub q_halt: f32,
    /// Clock cycles the solve took on the board (`None`: the field is left out, as a host
    /// computing the expected reply does).
    pub cycles: Option<u64>,
}

impl Answer {
    /// The reply for a plain solve.
    pub fn from_solution(sol: &Solution) -> Self {
        Self {
            grid: sol.grid,
            steps: sol.steps,
            ending: Ending::Stop(sol.reason),
            valid: sol.valid,
            q_halt: sol.q.q_halt,
            cycles: None,
        }
    }

    /// The reply for a test-time-scaling solve.
    pub fn from_attempts(sol: &AttemptSolution) -> Self {
        Self {
            grid: sol.grid,
            steps: sol.total_steps,
            ending: Ending::Attempts {
                attempts: sol.attempts,
                pick: sol.pick,
            },
            valid: sol.valid,
            q_halt: sol.q_halt,
            cycles: None,
        }
    }

    /// The same reply with its cycle count.
    pub fn with_cycles(self, cycles: u64) -> Self {
        Self {
            cycles: Some(cycles),
            ..self
        }
    }

    /// Reads a reply line written by [`Answer`]'s `Display` (for programs talking to a board).
    pub fn parse(line: &str) -> Result<Self, ReplyError> {
        let rest = line.strip_prefix("ok ").ok_or(ReplyError::NotAnAnswer)?;
        let (cells, rest) = rest.split_once(' ').ok_or(ReplyError::NotAnAnswer)?;
        if cells.len() != CELLS {
            return Err(ReplyError::NotAnAnswer);
        }
        let grid = parse(cells).map_err(|_| ReplyError::NotAnAnswer)?;
        let mut fields = rest.split(' ');
        let mut field = |key: &'static str| {
            fields
                .next()
                .and_then(|f| f.strip_prefix(key))
                .and_then(|f| f.strip_prefix('='))
                .ok_or(ReplyError::Field(key))
        };
        let number = |key, v: &str| v.parse::<usize>().map_err(|_| ReplyError::Field(key));
        let steps = number("steps", field("steps")?)?;
        let ending = if rest.contains(" stop=") {
            let stop = field("stop")?;
            Ending::Stop(stop.parse().map_err(|_| ReplyError::Field("stop"))?)
        } else {
            let attempts = number("attempts", field("attempts")?)?;
            let pick = field("pick")?
                .parse()
                .map_err(|_| ReplyError::Field("pick"))?;
            Ending::Attempts { attempts, pick }
        };
        let valid = match field("check")? {
            "pass" => true,
            "fail" => false,
            _ => return Err(ReplyError::Field("check")),
        };
        let q_halt = field("q")?
            .strip_prefix("0x")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .map(f32::from_bits)
            .ok_or(ReplyError::Field("q"))?;
        let cycles = match field("cycles") {
            Ok(c) => Some(c.parse::<u64>().map_err(|_| ReplyError::Field("cycles"))?),
            Err(_) if !rest.contains("cycles") => None,
            Err(e) => return Err(e),
        };
        if fields.next().is_some() {
            return Err(ReplyError::TrailingField);
        }
        Ok(Self {
            grid,
            steps,
            ending,
            valid,
            q_halt,
            cycles,
        })
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = [0u8; CELLS];
        write!(
            f,
            "ok {} steps={}",
            self.grid.write_line(&mut line),
            self.steps
        )?;
        match self.ending {
            Ending::Stop(reason) => write!(f, " stop={reason}")?,
            Ending::Attempts { attempts, pick } => write!(f, " attempts={attempts} pick={pick}")?,
        }
        write!(
            f,
            " check={} q=0x{:08x}",
            if self.valid { "pass" } else { "fail" },
            self.q_halt.to_bits()
        )?;
        match self.cycles {
            Some(c) => write!(f, " cycles={c}"),
            None => Ok(()),
        }
    }
}

/// Why a line is not an [`Answer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// It does not start with `ok ` and 81 cells.
    NotAnAnswer,
    /// This field is missing, out of order or malformed.
    Field(&'static str),
    /// Something follows the last field.
    TrailingField,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnAnswer => f.write_str("not an answer (`ok ` and 81 cells)"),
            Self::Field(key) => write!(f, "field `{key}=` missing or malformed"),
            Self::TrailingField => f.write_str("unexpected text after the last field"),
        }
    }
}

impl core::error::Error for ReplyError {}

#[cfg(test)]
mod tests {
    use std::format;
    use std::string::{String, ToString};
    use std::vec::Vec;

    use super::*;

    const PUZZLE: &str =
        "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";

    fn ok(line: &str) -> Request<'_> {
        parse_request(line.as_bytes()).unwrap_or_else(|e| panic!("`{line}`: {e}"))
    }

    fn err(line: &str) -> String {
        match parse_request(line.as_bytes()) {
            Ok(r) => panic!("`{line}` parsed as {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_request_parses() {
        assert_eq!(ok(""), Request::Nothing);
        assert_eq!(ok("   "), Request::Nothing);
        assert_eq!(ok("# a comment"), Request::Nothing);
        assert_eq!(ok(PUZZLE), Request::Puzzle(PUZZLE));
        assert_eq!(ok(&format!("  {PUZZLE} ")), Request::Puzzle(PUZZLE));
        assert_eq!(ok("budget 16"), Request::Budget(16));
        assert_eq!(ok("budget 10000"), Request::Budget(MAX_BUDGET));
        assert_eq!(ok("bench 3"), Request::Bench(3));
        assert_eq!(ok("halt q+check"), Request::Halt(HaltPolicy::QCheck));
        assert_eq!(ok("kernel simd"), Request::Kernel(true));
        assert_eq!(ok("kernel generic"), Request::Kernel(false));
        assert_eq!(ok("total auto"), Request::Total(None));
        assert_eq!(ok("total 40"), Request::Total(Some(40)));
        assert_eq!(
            ok("attempts 4"),
            Request::Attempts(4, AttemptSource::Aug, Selection::Check)
        );
        assert_eq!(
            ok("attempts 4 vote"),
            Request::Attempts(4, AttemptSource::Aug, Selection::Vote)
        );
        assert_eq!(
            ok("attempts 64 vote noise"),
            Request::Attempts(64, AttemptSource::Noise, Selection::Vote)
        );
        for (line, req) in [
            ("info", Request::Info),
            ("stack", Request::Stack),
            ("selftest", Request::SelfTest),
            ("quit", Request::Quit),
        ] {
            assert_eq!(ok(line), req);
        }
    }

    #[test]
    fn bad_requests_say_why() {
        assert_eq!(
            parse_request(b"budget \xff"),
            Err(RequestError::NotAscii),
            "invalid UTF-8"
        );
        assert_eq!(
            parse_request("halt é".as_bytes()),
            Err(RequestError::NotAscii)
        );
        assert!(err("solve it").starts_with("unknown command `solve`"));
        for (line, usage) in [
            ("budget", "budget <1..=10000>"),
            ("budget 0", "budget <1..=10000>"),
            ("budget 10001", "budget <1..=10000>"),
            ("budget -1", "budget <1..=10000>"),
            ("budget 3 4", "budget <1..=10000>"),
            ("bench x", "bench <1..=10000>"),
            ("halt sometimes", "halt full|q|check|q+check"),
            ("halt q q", "halt full|q|check|q+check"),
            ("kernel fast", "kernel simd|generic"),
            ("total 0", "total <1..=10000>|auto"),
            ("total auto 3", "total <1..=10000>|auto"),
            ("info me", "a command without arguments"),
            ("quit now", "a command without arguments"),
        ] {
            assert_eq!(err(line), format!("usage: {usage}"), "`{line}`");
        }
        for line in [
            "attempts",
            "attempts 0",
            "attempts 65",
            "attempts 2 aug aug",
            "attempts 2 vote q",
            "attempts 2 sideways",
            "attempts 2 aug vote extra",
        ] {
            assert!(
                err(line).starts_with("usage: attempts <1..=64>"),
                "`{line}`"
            );
        }
    }

    #[test]
    fn requests_display_as_lines_that_parse_back() {
        let mut requests = Vec::from([
            Request::Budget(1),
            Request::Budget(MAX_BUDGET),
            Request::Bench(7),
            Request::Total(None),
            Request::Total(Some(12)),
            Request::Kernel(true),
            Request::Kernel(false),
            Request::Info,
            Request::Stack,
            Request::SelfTest,
            Request::Quit,
            Request::Nothing,
            Request::Puzzle(PUZZLE),
        ]);
        requests.extend(HaltPolicy::ALL.map(Request::Halt));
        for source in AttemptSource::ALL {
            for select in Selection::ALL {
                requests.push(Request::Attempts(3, source, select));
            }
        }
        for r in requests {
            let line = r.to_string();
            assert_eq!(parse_request(line.as_bytes()), Ok(r), "`{line}`");
        }
        assert_eq!(
            Request::Attempts(4, AttemptSource::Noise, Selection::Vote).to_string(),
            "attempts 4 noise vote"
        );
    }

    #[test]
    fn lines_are_split_and_bounded() {
        let mut lines = LineBuffer::new();
        let mut got: Vec<Result<Vec<u8>, ()>> = Vec::new();
        let long = "x".repeat(MAX_LINE + 1);
        let exact = "y".repeat(MAX_LINE);
        let input = format!("budget 3\r\n\n{long}\n{exact}\nquit");
        for &b in input.as_bytes() {
            match lines.push(b) {
                Line::Pending => {}
                Line::Complete(l) => {
                    got.push(Ok(l.to_vec()));
                    lines.clear();
                }
                Line::TooLong => got.push(Err(())),
            }
        }
        assert_eq!(
            got,
            [
                Ok(b"budget 3".to_vec()),
                Ok(Vec::new()),
                Err(()),
                Ok(exact.into_bytes())
            ]
        );
        // The unterminated tail stays pending; a newline completes it.
        assert_eq!(lines.push(b'\n'), Line::Complete(b"quit"));
    }

    fn answers() -> Vec<Answer> {
        let grid = parse(PUZZLE).expect("puzzle");
        let mut out = Vec::new();
        for (i, reason) in StopReason::ALL.into_iter().enumerate() {
            out.push(Answer {
                grid,
                steps: i + 1,
                ending: Ending::Stop(reason),
                valid: i % 2 == 0,
                q_halt: -1.5 * i as f32,
                cycles: (i % 2 == 1).then_some(123_456_789_012),
            });
        }
        for (i, pick) in Pick::ALL.into_iter().enumerate() {
            out.push(Answer {
                grid,
                steps: 48,
                ending: Ending::Attempts {
                    attempts: i + 2,
                    pick,
                },
                valid: true,
                q_halt: f32::from_bits(0x7fc0_0001 + i as u32),
                cycles: Some(i as u64),
            });
        }
        out
    }

    #[test]
    fn answers_cross_the_wire_exactly() {
        for a in answers() {
            let line = a.to_string();
            let back = Answer::parse(&line).unwrap_or_else(|e| panic!("`{line}`: {e}"));
            assert_eq!(back.grid, a.grid);
            assert_eq!(back.steps, a.steps);
            assert_eq!(back.ending, a.ending);
            assert_eq!(back.valid, a.valid);
            assert_eq!(back.q_halt.to_bits(), a.q_halt.to_bits(), "`{line}`");
            assert_eq!(back.cycles, a.cycles);
        }
        let a = answers()[1];
        assert_eq!(
            a.to_string(),
            format!("ok {PUZZLE} steps=2 stop=q_halt check=fail q=0xbfc00000 cycles=123456789012")
        );
    }

    #[test]
    fn malformed_answers_are_refused() {
        let good = answers()[1].to_string();
        assert_eq!(Answer::parse("ok budget 3"), Err(ReplyError::NotAnAnswer));
        assert_eq!(Answer::parse("err bad"), Err(ReplyError::NotAnAnswer));
        for (from, to, key) in [
            ("steps=2", "steps=x", "steps"),
            ("stop=q_halt", "stop=never", "stop"),
            ("check=fail", "check=maybe", "check"),
            ("q=0xbfc00000", "q=1.5", "q"),
            ("cycles=123456789012", "cycles=-1", "cycles"),
            (" steps=2", "", "steps"),
        ] {
            let bad = good.replace(from, to);
            assert_eq!(Answer::parse(&bad), Err(ReplyError::Field(key)), "`{bad}`");
        }
        assert_eq!(
            Answer::parse(&format!("{good} extra=1")),
            Err(ReplyError::TrailingField)
        );
    }
}
