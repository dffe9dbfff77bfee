//! Reading and writing Sudoku files.
//!
//! Two formats, both read with the `csv` crate:
//! - **Sudoku-Extreme CSV** (the format of the official data set): a header line
//!   `source,question,answer,rating`, then one puzzle per line; `question` and `answer` are
//!   81-character strings (`.` or `0` for blanks), `rating` a non-negative integer.
//! - **Plain list** (the files in `shared/data/sudoku/`): one puzzle per line, optionally
//!   followed by `,solution`; no header.
//!
//! The same rules hold in both formats and for every tool (`trm-train` and its data checker,
//! `trm-solve`, the measurement tool): empty lines (or only blanks) and lines starting with
//! `#` are skipped, a puzzle whose givens conflict is a bad line, a given solution must solve
//! its puzzle, and line numbers are physical lines of the file (skipped lines counted).
//!
//! Reading is per line: a bad line yields a [`LineError`] naming the line and the rest of the
//! file is still read, so a checker can report every bad line at once.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::{Grid, check_answer, find_conflict, parse};

/// The header of a Sudoku-Extreme CSV file.
pub const EXTREME_HEADER: [&str; 4] = ["source", "question", "answer", "rating"];

/// Which of the two file formats a file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `source,question,answer,rating` with a header line.
    Extreme,
    /// One puzzle per line, optionally `,solution`.
    Plain,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Extreme => "Sudoku-Extreme CSV",
            Format::Plain => "plain list",
        })
    }
}

/// One puzzle read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// 1-based line number in the file.
    pub line: u64,
    /// The `source` column (Sudoku-Extreme CSV only).
    pub source: Option<String>,
    /// The puzzle; blanks are `0`.
    pub puzzle: Grid,
    /// The solution given in the file, if any (already checked against the puzzle's givens).
    pub solution: Option<Grid>,
    /// The `rating` column (Sudoku-Extreme CSV only).
    pub rating: Option<u32>,
}

/// A line that could not be read as a puzzle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A file-level failure: the file cannot be opened or read at all.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Opening or reading failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error (in the message, not repeated as a source).
        error: io::Error,
    },
}

/// Streams the records of a file, detecting its format from the first line.
pub struct Reader<R: Read> {
    format: Format,
    csv: csv::Reader<LineCounter<R>>,
    record: csv::StringRecord,
    lines: Arc<Mutex<NewlineIndex>>,
    /// Whether the Sudoku-Extreme header still has to be checked.
    check_header: bool,
}

/// Byte offsets of the newlines read so far, to turn a record's byte offset into its
/// physical line number (the `csv` crate's own line count skips empty lines).
#[derive(Default)]
struct NewlineIndex {
    /// Offsets of newlines not yet passed by the records.
    pending: std::collections::VecDeque<u64>,
    /// Newlines already passed.
    passed: u64,
}

impl NewlineIndex {
    /// 1-based line of byte `offset`; offsets must not decrease between calls.
    fn line_of(&mut self, offset: u64) -> u64 {
        while self.pending.front().is_some_and(|&nl| nl < offset) {
            self.pending.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

/// A reader that records where the line ends are as the bytes go by: LF, CRLF (at its LF)
/// and a bare CR, as the `csv` crate ends records.
struct LineCounter<R> {
    inner: R,
    offset: u64,
    /// The previous byte was a CR (its line end is decided by the byte after it).
    after_cr: bool,
    lines: Arc<Mutex<NewlineIndex>>,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut index) = self.lines.lock() {
            for (i, &b) in buf[..n].iter().enumerate() {
                let at = self.offset + i as u64;
                if self.after_cr && b != b'\n' {
                    index.pending.push_back(at - 1);
                }
                if b == b'\n' {
                    index.pending.push_back(at);
                }
                self.after_cr = b == b'\r';
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

impl Reader<File> {
    /// Opens `path`; the format is detected from its first line.
    pub fn open(path: &Path) -> Result<Reader<File>, FileError> {
        let io_err = |error| FileError::Io {
            path: path.display().to_string(),
            error,
        };
        let mut file = File::open(path).map_err(io_err)?;
        let mut head = [0u8; 4096];
        let n = read_up_to(&mut file, &mut head).map_err(io_err)?;
        let format = detect_format(&head[..n]);
        let file = File::open(path).map_err(io_err)?;
        Ok(Reader::new(file, format))
    }
}

impl<'a> Reader<&'a [u8]> {
    /// Reads `bytes`, detecting their format as [`detect_format`] does; a line that is not
    /// UTF-8 text is a bad line.
    pub fn from_bytes(bytes: &'a [u8]) -> Self {
        Reader::new(bytes, detect_format(bytes))
    }
}

impl<R: Read> Reader<R> {
    /// Reads `input` in the given format.
    pub fn new(input: R, format: Format) -> Reader<R> {
        let lines = Arc::new(Mutex::new(NewlineIndex::default()));
        let counter = LineCounter {
            inner: input,
            offset: 0,
            after_cr: false,
            lines: Arc::clone(&lines),
        };
        let csv = csv::ReaderBuilder::new()
            .has_headers(format == Format::Extreme)
            .flexible(true)
            .comment(Some(b'#'))
            .from_reader(counter);
        Reader {
            format,
            csv,
            record: csv::StringRecord::new(),
            lines,
            check_header: format == Format::Extreme,
        }
    }

    /// 1-based physical line of the record just read: the line holding its last byte.
    /// (A record's start position can lie on skipped empty lines before it.)
    fn current_line(&self) -> u64 {
        let end = self.csv.position().byte();
        self.lines
            .lock()
            .map_or(0, |mut index| index.line_of(end.saturating_sub(1)))
    }

    /// The format being read.
    pub fn format(&self) -> Format {
        self.format
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Record, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        if std::mem::take(&mut self.check_header) {
            let found = self
                .csv
                .headers()
                .map(|h| h.iter().collect::<Vec<_>>().join(","));
            let line = self.current_line();
            let expected = EXTREME_HEADER.join(",");
            match found {
                Ok(h) if h.trim_start_matches('\u{feff}') == expected => {}
                Ok(h) if h.is_empty() => return None,
                Ok(h) => {
                    return Some(Err(LineError {
                        line,
                        message: format!("expected the header {expected:?}, found {h:?}"),
                    }));
                }
                Err(e) => {
                    return Some(Err(LineError {
                        line,
                        message: format!("unreadable CSV header: {e}"),
                    }));
                }
            }
        }
        let read = loop {
            let read = self.csv.read_record(&mut self.record);
            // A line of only spaces or tabs is an empty line.
            let blank = self.record.len() == 1 && self.record[0].trim().is_empty();
            if !(matches!(read, Ok(true)) && blank) {
                break read;
            }
        };
        let line = self.current_line();
        match read {
            Ok(false) => None,
            Ok(true) => Some(
                parse_record(&self.record, line, self.format)
                    .map_err(|message| LineError { line, message }),
            ),
            Err(e) => Some(Err(LineError {
                line,
                message: record_error(&e),
            })),
        }
    }
}

/// The message for a record the CSV reader could not read: bytes that are not UTF-8 are named
/// as such (the field and the byte within it), anything else is the reader's own message.
fn record_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => format!(
            "not UTF-8 text (field {}, byte {} of the field)",
            err.field() + 1,
            err.valid_up_to() + 1
        ),
        _ => format!("unreadable CSV: {e}"),
    }
}

/// Sudoku-Extreme CSV when the first line that is neither empty nor a `#` comment is its
/// header, otherwise a plain list.
pub fn detect_format(head: &[u8]) -> Format {
    let header = EXTREME_HEADER.join(",");
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let first = head
        .split(|&b| b == b'\n' || b == b'\r')
        .map(<[u8]>::trim_ascii)
        .find(|l| !l.is_empty() && !l.starts_with(b"#"))
        .unwrap_or(b"");
    if first.starts_with(header.as_bytes()) {
        Format::Extreme
    } else {
        Format::Plain
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn parse_record(rec: &csv::StringRecord, line: u64, format: Format) -> Result<Record, String> {
    let field = |i: usize| rec.get(i).unwrap_or("").trim();
    let (source, question, answer, rating) = match format {
        Format::Extreme => {
            if rec.len() != 4 {
                return Err(format!(
                    "expected 4 fields (source,question,answer,rating), found {}",
                    rec.len()
                ));
            }
            let rating = field(3)
                .parse::<u32>()
                .map_err(|_| format!("rating {:?} is not a non-negative integer", field(3)))?;
            (
                Some(field(0).to_string()),
                field(1),
                Some(field(2)),
                Some(rating),
            )
        }
        Format::Plain => match rec.len() {
            1 => (None, field(0), None, None),
            2 => (None, field(0), Some(field(1)), None),
            n => {
                return Err(format!(
                    "expected `puzzle` or `puzzle,solution`, found {n} fields"
                ));
            }
        },
    };
    let puzzle = parse_cells(question).map_err(|e| format!("puzzle: {e}"))?;
    if let Some(c) = find_conflict(&puzzle) {
        return Err(format!("puzzle has conflicting givens: {c}"));
    }
    let solution = match answer {
        None => None,
        Some(a) => {
            let s = parse_cells(a).map_err(|e| format!("solution: {e}"))?;
            check_answer(&puzzle, &s)
                .map_err(|e| format!("solution does not solve the puzzle: {e}"))?;
            Some(s)
        }
    };
    Ok(Record {
        line,
        source,
        puzzle,
        solution,
        rating,
    })
}

/// One 81-character field; stricter than [`parse`] about length so the message is exact.
fn parse_cells(field: &str) -> Result<Grid, String> {
    let n = field.chars().count();
    if n != 81 {
        return Err(format!("expected 81 characters, found {n}"));
    }
    parse(field).map_err(|e| e.to_string())
}

/// Writes Sudoku-Extreme CSV (`source,question,answer,rating`, `.` for blanks, LF endings).
pub struct ExtremeWriter<W: Write> {
    inner: csv::Writer<W>,
}

impl<W: Write> ExtremeWriter<W> {
    /// Starts a file on `out` and writes the header line.
    pub fn new(out: W) -> io::Result<ExtremeWriter<W>> {
        let mut inner = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(out);
        inner.write_record(EXTREME_HEADER)?;
        Ok(ExtremeWriter { inner })
    }

    /// Writes one line.
    pub fn write(
        &mut self,
        source: &str,
        puzzle: &Grid,
        solution: &Grid,
        rating: u32,
    ) -> io::Result<()> {
        let (q, a) = (puzzle.to_string(), solution.to_string());
        self.inner
            .write_record([source, &q, &a, &rating.to_string()])?;
        Ok(())
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> io::Result<W> {
        self.inner.into_inner().map_err(|e| e.into_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str =
        "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";
    const S: &str =
        "534678912672195348198342567859761423426853791713924856961537284287419635345286179";

    fn read(text: &str) -> (Format, Vec<Result<Record, LineError>>) {
        let format = detect_format(text.as_bytes());
        (format, Reader::new(text.as_bytes(), format).collect())
    }

    #[test]
    fn reads_plain_lists_with_and_without_solutions() {
        let (format, recs) = read(&format!("{P}\n\n{P},{S}\r\n\n\n{P}"));
        assert_eq!(format, Format::Plain);
        let recs: Vec<Record> = recs.into_iter().map(Result::unwrap).collect();
        assert_eq!(recs.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 3, 6]);
        assert_eq!((recs[0].line, recs[0].solution), (1, None));
        assert_eq!(recs[1].line, 3);
        assert_eq!(recs[1].solution.unwrap().to_string(), S);
    }

    #[test]
    fn round_trips_extreme_csv() {
        let (p, s) = (parse(P).unwrap(), parse(S).unwrap());
        let mut w = ExtremeWriter::new(Vec::new()).unwrap();
        w.write("test", &p, &s, 3).unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            text,
            format!("source,question,answer,rating\ntest,{P},{S},3\n")
        );
        let (format, recs) = read(&text);
        assert_eq!(format, Format::Extreme);
        let r = recs[0].clone().unwrap();
        assert_eq!(
            (r.line, r.puzzle, r.solution, r.rating),
            (2, p, Some(s), Some(3))
        );
        assert_eq!(r.source.as_deref(), Some("test"));
    }

    #[test]
    fn names_bad_lines_and_keeps_reading() {
        let short = &P[..80];
        let letter = P.replacen('.', "x", 1);
        let wrong = S.replacen('5', "6", 1);
        let (_, recs) = read(&format!(
            "{P}\n{short}\n{letter}\n{P},{wrong}\n{P},{S},9\n{P}\n"
        ));
        let errs: Vec<(u64, String)> = recs
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|e| (e.line, e.message.clone()))
            .collect();
        assert_eq!(errs.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 3, 4, 5]);
        assert!(
            errs[0].1.contains("expected 81 characters, found 80"),
            "{}",
            errs[0].1
        );
        assert!(errs[1].1.contains("'x' at position 3"), "{}", errs[1].1);
        assert!(
            errs[2].1.contains("changes the given 5 to 6"),
            "{}",
            errs[2].1
        );
        assert!(errs[3].1.contains("found 3 fields"), "{}", errs[3].1);
        assert_eq!(recs.iter().filter(|r| r.is_ok()).count(), 2);
    }

    #[test]
    fn checks_extreme_fields() {
        let text = format!("source,question,answer,rating\na,{P},{S}\nb,{P},{S},-1\n");
        let (_, recs) = read(&text);
        assert!(
            recs[0]
                .as_ref()
                .unwrap_err()
                .message
                .contains("expected 4 fields")
        );
        assert!(
            recs[1]
                .as_ref()
                .unwrap_err()
                .message
                .contains("not a non-negative integer")
        );
    }

    #[test]
    fn extreme_csv_line_numbers_count_blank_and_comment_lines() {
        let bad = &P[..80];
        let text =
            format!("source,question,answer,rating\n\n\na,{bad},{S},1\n\n# note\nb,{P},{S},2\n");
        let (format, recs) = read(&text);
        assert_eq!(format, Format::Extreme);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].as_ref().unwrap_err().line, 4);
        assert_eq!(recs[1].as_ref().unwrap().line, 7);
    }

    #[test]
    fn comment_lines_are_skipped_in_both_formats() {
        let (_, recs) = read(&format!("# plain list\n{P}\n  \n#{P}\n{P},{S}\n"));
        let lines: Vec<u64> = recs.iter().map(|r| r.as_ref().unwrap().line).collect();
        assert_eq!(lines, [2, 5]);
        let (format, recs) = read(&format!(
            "\nsource,question,answer,rating\n# c\nx,{P},{S},0\n"
        ));
        assert_eq!(format, Format::Extreme);
        let (format, _) = read(&format!(
            "# made by hand\nsource,question,answer,rating\nx,{P},{S},0\n"
        ));
        assert_eq!(format, Format::Extreme);
        let lines: Vec<u64> = recs.iter().map(|r| r.as_ref().unwrap().line).collect();
        assert_eq!(lines, [4]);
    }

    #[test]
    fn conflicting_givens_are_a_bad_line() {
        let clash = P.replacen("53", "55", 1);
        let (_, recs) = read(&format!("{clash}\n{P}\n"));
        let e = recs[0].as_ref().unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("conflicting givens"), "{}", e.message);
        assert!(recs[1].is_ok());
    }

    #[test]
    fn a_missing_header_is_reported_when_csv_is_forced() {
        let text = format!("a,{P},{S},1\nb,{P},{S},2\n");
        let recs: Vec<_> = Reader::new(text.as_bytes(), Format::Extreme).collect();
        let e = recs[0].as_ref().unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("expected the header"), "{}", e.message);
        assert_eq!(recs[1].as_ref().unwrap().line, 2);
        assert!(Reader::new(&b""[..], Format::Extreme).next().is_none());
    }

    #[test]
    fn bare_cr_line_endings_count_as_lines() {
        let (_, recs) = read(&format!("{P}\r{P},{S}\r\r{P}\r\n{P}"));
        let lines: Vec<u64> = recs.iter().map(|r| r.as_ref().unwrap().line).collect();
        assert_eq!(lines, [1, 2, 4, 5]);
    }
}
