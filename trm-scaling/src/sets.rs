//! Evaluation sets: `NAME=FILE[:FROM-TO]` specs, puzzle lines, even subsampling.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use trm_sudoku::{Grid, io};

/// One evaluation set as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetSpec {
    /// Name in the tables.
    pub name: String,
    /// The puzzle file (`puzzle` or `puzzle,solution` per line).
    pub path: PathBuf,
    /// 1-based inclusive line range, `None` for the whole file.
    pub lines: Option<(usize, usize)>,
    /// Puzzles to take from it (spread evenly), overriding `--count`.
    pub count: Option<usize>,
}

impl std::str::FromStr for SetSpec {
    type Err = anyhow::Error;

    /// `NAME=FILE[:FROM-TO][@COUNT]` (1-based, inclusive line numbers; COUNT puzzles spread
    /// evenly over them).
    fn from_str(spec: &str) -> Result<Self> {
        // `@COUNT` only when what follows the last `@` is a number, so paths may hold `@`.
        let (s, count) = match spec.rsplit_once('@') {
            Some((head, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                let n = n
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| anyhow!("count {n:?} in {spec:?}: need a number >= 1"))?;
                (head, Some(n))
            }
            _ => (spec, None),
        };
        let (name, rest) = s
            .split_once('=')
            .ok_or_else(|| anyhow!("expected NAME=FILE[:FROM-TO], got {s:?}"))?;
        let (path, lines) = match rest.rsplit_once(':') {
            Some((p, range)) if range.contains('-') => {
                let (a, b) = range.split_once('-').unwrap_or_default();
                let (a, b): (usize, usize) = (
                    a.parse().with_context(|| format!("line range {range:?}"))?,
                    b.parse().with_context(|| format!("line range {range:?}"))?,
                );
                if a == 0 || b < a {
                    bail!("line range {range:?}: need 1 <= FROM <= TO");
                }
                (p, Some((a, b)))
            }
            _ => (rest, None),
        };
        if name.is_empty() || path.is_empty() {
            bail!("expected NAME=FILE[:FROM-TO], got {s:?}");
        }
        Ok(Self {
            name: name.to_string(),
            path: PathBuf::from(path),
            lines,
            count,
        })
    }
}

/// One puzzle of a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    /// 1-based line in the file.
    pub line: usize,
    /// The givens.
    pub puzzle: Grid,
    /// The solution the file gives, if any (checked against the puzzle).
    pub solution: Option<Grid>,
}

/// Parses the puzzles of `text` in `lines` (a 1-based, inclusive range of physical lines),
/// with the rules every tool shares ([`trm_sudoku::io`]: either file format, empty and `#`
/// lines skipped); the first bad line is an error naming it.
pub fn read_items(text: &[u8], lines: Option<(usize, usize)>) -> Result<Vec<Item>> {
    let (from, to) = lines.unwrap_or((1, usize::MAX));
    let mut out = Vec::new();
    for record in io::Reader::from_bytes(text) {
        let line = match &record {
            Ok(r) => r.line,
            Err(e) => e.line,
        };
        let line = usize::try_from(line).unwrap_or(usize::MAX);
        if line < from || line > to {
            continue;
        }
        let r = record.map_err(|e| anyhow!("{e}"))?;
        out.push(Item {
            line,
            puzzle: r.puzzle,
            solution: r.solution,
        });
    }
    Ok(out)
}

/// `count` items spread evenly over `items` (indices `⌊i · len / count⌋`), all when `count`
/// is `None` or not smaller.
pub fn subsample(items: Vec<Item>, count: Option<usize>) -> Vec<Item> {
    match count {
        Some(n) if n < items.len() => {
            let len = items.len();
            (0..n).map(|i| items[i * len / n]).collect()
        }
        _ => items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        let s: SetSpec = "kx=/d/k.txt:4001-5000".parse().unwrap();
        assert_eq!(
            (s.name.as_str(), s.path.to_str(), s.lines),
            ("kx", Some("/d/k.txt"), Some((4001, 5000)))
        );
        let s: SetSpec = "t=top.txt".parse().unwrap();
        assert_eq!((s.lines, s.count), (None, None));
        let s: SetSpec = "kx=k.txt:4001-5000@60".parse().unwrap();
        assert_eq!((s.lines, s.count), (Some((4001, 5000)), Some(60)));
        for bad in [
            "top.txt",
            "=x",
            "a=x:5-2",
            "a=x:0-3",
            "a=x:a-b",
            "a=x@0",
            "a=x:1-3@0",
        ] {
            assert!(bad.parse::<SetSpec>().is_err(), "{bad}");
        }
        // A path may hold `@`: only a number after the last one is a count.
        let s: SetSpec = "x=a@b/two.txt".parse().unwrap();
        assert_eq!((s.path.to_str(), s.count), (Some("a@b/two.txt"), None));
        let s: SetSpec = "x=a@b/two.txt@7".parse().unwrap();
        assert_eq!((s.path.to_str(), s.count), (Some("a@b/two.txt"), Some(7)));
    }

    #[test]
    fn items_ranges_and_subsampling() {
        let p = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";
        let s = "534678912672195348198342567859761423426853791713924856961537284287419635345286179";
        let text = format!("{p}\n\n# note\n{p},{s}\n{p}\n{p}\n");
        let all = read_items(text.as_bytes(), None).unwrap();
        assert_eq!(all.iter().map(|i| i.line).collect::<Vec<_>>(), [1, 4, 5, 6]);
        assert!(all[1].solution.is_some() && all[0].solution.is_none());
        let some = read_items(text.as_bytes(), Some((4, 5))).unwrap();
        assert_eq!(some.iter().map(|i| i.line).collect::<Vec<_>>(), [4, 5]);
        let sub = subsample(all.clone(), Some(2));
        assert_eq!(sub.iter().map(|i| i.line).collect::<Vec<_>>(), [1, 5]);
        assert_eq!(subsample(all.clone(), Some(10)).len(), 4);
        let bad = format!("{p},{p}\n");
        assert!(read_items(bad.as_bytes(), None).is_err());
        let not_utf8 = read_items(b"\xff\xfe", None).unwrap_err().to_string();
        assert!(not_utf8.contains("line 1: not UTF-8 text"), "{not_utf8}");
    }
}
