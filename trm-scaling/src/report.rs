//! Per-puzzle outcomes (JSON lines) → accuracy-vs-compute tables (markdown, CSV).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::{BASELINE, Outcome};
use trm_edge::solver::attempts::{AttemptSource, Selection};

/// One line of `outcomes.jsonl`: every method's outcome at every `K` for one puzzle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PuzzleLine {
    /// Set name.
    pub set: String,
    /// 1-based line of the puzzle in its file.
    pub line: usize,
    /// Method key (`source/rule` or `baseline/full`) → outcome per `K` (in `ks` order).
    pub m: BTreeMap<String, Vec<Outcome>>,
}

/// Totals of one set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SetSummary {
    /// Set name.
    pub name: String,
    /// Puzzles counted.
    pub puzzles: usize,
    /// Method key → per `K`: (exact answers, total steps).
    pub methods: BTreeMap<String, Vec<(usize, usize)>>,
}

impl SetSummary {
    /// Exact accuracy in percent and mean steps per puzzle of `method` at `K` index `i`.
    pub fn point(&self, method: &str, i: usize) -> Option<(f64, f64)> {
        let &(exact, steps) = self.methods.get(method)?.get(i)?;
        let n = self.puzzles.max(1) as f64;
        Some((100.0 * exact as f64 / n, steps as f64 / n))
    }
}

/// Sums `lines` per set, sets in `order` (sets not listed follow in order of appearance).
pub fn summarize(lines: &[PuzzleLine], order: &[String], n_ks: usize) -> Result<Vec<SetSummary>> {
    let mut sets: Vec<SetSummary> = order
        .iter()
        .map(|name| SetSummary {
            name: name.clone(),
            ..SetSummary::default()
        })
        .collect();
    for l in lines {
        let idx = match sets.iter().position(|s| s.name == l.set) {
            Some(i) => i,
            None => {
                sets.push(SetSummary {
                    name: l.set.clone(),
                    ..SetSummary::default()
                });
                sets.len() - 1
            }
        };
        let s = &mut sets[idx];
        s.puzzles += 1;
        for (key, row) in &l.m {
            if row.len() != n_ks {
                bail!(
                    "{} line {}: {key} has {} values, expected {n_ks}",
                    l.set,
                    l.line,
                    row.len()
                );
            }
            let acc = s
                .methods
                .entry(key.clone())
                .or_insert_with(|| vec![(0, 0); n_ks]);
            for (a, o) in acc.iter_mut().zip(row) {
                a.0 += usize::from(o.exact);
                a.1 += o.steps;
            }
        }
    }
    Ok(sets)
}

/// Method keys in table order: the baseline, then every source × rule.
pub fn method_keys() -> Vec<String> {
    let mut keys = vec![BASELINE.to_string()];
    for s in AttemptSource::NAMES {
        for r in Selection::NAMES {
            keys.push(format!("{s}/{r}"));
        }
    }
    keys
}

/// A readable label of a method key.
pub fn label(key: &str) -> String {
    match key {
        BASELINE => "single run, K·N steps (answer at the last step)".to_string(),
        "steps/check" => "steps / check (= single run, K·N steps, check halting)".to_string(),
        k => k.replace('/', " / "),
    }
}

/// Markdown tables, one per set: exact % and mean total steps per puzzle for every method
/// and `K`.
pub fn markdown(sets: &[SetSummary], ks: &[usize], steps_per_attempt: usize) -> String {
    let mut md = String::new();
    for s in sets {
        let _ = writeln!(
            md,
            "**{}** ({} puzzles; cells: exact % / mean total supervision steps per puzzle; N = {steps_per_attempt})\n",
            s.name, s.puzzles
        );
        let _ = write!(md, "| method |");
        for k in ks {
            let _ = write!(md, " K={k} |");
        }
        let _ = write!(md, "\n|---|");
        for _ in ks {
            let _ = write!(md, "---:|");
        }
        md.push('\n');
        for key in method_keys() {
            if !s.methods.contains_key(&key) {
                continue;
            }
            let _ = write!(md, "| {} |", label(&key));
            for i in 0..ks.len() {
                match s.point(&key, i) {
                    Some((acc, steps)) => {
                        let _ = write!(md, " {acc:.1} / {steps:.1} |");
                    }
                    None => md.push_str(" – |"),
                }
            }
            md.push('\n');
        }
        md.push('\n');
    }
    md
}

/// CSV: `set,method,k,puzzles,exact,exact_pct,mean_steps`.
pub fn csv(sets: &[SetSummary], ks: &[usize]) -> String {
    let mut out = String::from("set,method,k,puzzles,exact,exact_pct,mean_steps\n");
    for s in sets {
        for key in method_keys() {
            let Some(row) = s.methods.get(&key) else {
                continue;
            };
            for (i, (&k, &(exact, _))) in ks.iter().zip(row).enumerate() {
                if let Some((acc, steps)) = s.point(&key, i) {
                    let _ = writeln!(
                        out,
                        "{},{key},{k},{},{exact},{acc:.3},{steps:.3}",
                        s.name, s.puzzles
                    );
                }
            }
        }
    }
    out
}

/// Parses `outcomes.jsonl` text; errors name the line.
///
/// A last line without its newline that does not parse was cut by a kill during its write:
/// it is dropped (that puzzle is measured again), with a note on stderr.
pub fn parse_lines(text: &str) -> Result<Vec<PuzzleLine>> {
    let lines: Vec<&str> = text.lines().collect();
    let torn = !text.is_empty() && !text.ends_with('\n');
    let mut out = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(l) {
            Ok(line) => out.push(line),
            Err(_) if torn && i + 1 == lines.len() => {
                eprintln!(
                    "outcomes line {}: cut short by an interrupted write; measured again",
                    i + 1
                );
            }
            Err(e) => return Err(e).with_context(|| format!("outcomes line {}", i + 1)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(set: &str, n: usize, exact: [bool; 2]) -> PuzzleLine {
        let row = exact
            .iter()
            .enumerate()
            .map(|(i, &e)| Outcome {
                exact: e,
                steps: 16 * (i + 1) + n,
            })
            .collect();
        PuzzleLine {
            set: set.into(),
            line: n,
            m: BTreeMap::from([("aug/check".to_string(), row)]),
        }
    }

    #[test]
    fn sums_per_set_and_formats() {
        let lines = [
            line("b", 1, [false, true]),
            line("a", 2, [true, true]),
            line("b", 3, [false, false]),
        ];
        let sets = summarize(&lines, &["a".into(), "b".into()], 2).unwrap();
        assert_eq!(sets[0].name, "a");
        assert_eq!(sets[1].puzzles, 2);
        assert_eq!(sets[1].methods["aug/check"], vec![(0, 36), (1, 68)]);
        assert_eq!(sets[1].point("aug/check", 1), Some((50.0, 34.0)));
        let md = markdown(&sets, &[1, 2], 16);
        assert!(
            md.contains("| aug / check | 0.0 / 18.0 | 50.0 / 34.0 |"),
            "{md}"
        );
        let c = csv(&sets, &[1, 2]);
        assert!(c.contains("b,aug/check,2,2,1,50.000,34.000"), "{c}");
        assert!(summarize(&lines, &[], 3).is_err(), "row length checked");
        let text: String = lines
            .iter()
            .map(|l| serde_json::to_string(l).unwrap() + "\n")
            .collect();
        assert_eq!(parse_lines(&text).unwrap(), lines);
        // A kill during the last write leaves a torn line without its newline: dropped.
        let torn = &text[..text.len() - 10];
        assert_eq!(parse_lines(torn).unwrap(), lines[..lines.len() - 1]);
        // A bad line that is not the last (or that has its newline) is still an error.
        assert!(parse_lines(&format!("{}\n{text}", &text[..20])).is_err());
        assert!(parse_lines(&format!("{torn}\n")).is_err());
    }
}
