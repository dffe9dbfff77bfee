//! `--trace` and `--trace-html`: every supervision step of every puzzle, as JSON lines and as
//! one self-contained HTML page with the steps side by side. Written in input order as the
//! answers are, and flushed with them, so a killed run keeps the finished puzzles.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::json;
use trm_edge::solver::StepView;
use trm_edge::sudoku::{CELLS, Grid};

use crate::output::json_f32;
use crate::solve::Solved;

/// The trace writers that were asked for.
pub struct Trace {
    jsonl: Option<Sink>,
    html: Option<Sink>,
    puzzles: usize,
}

/// One output file and its path (for error messages).
struct Sink {
    path: PathBuf,
    out: BufWriter<File>,
}

impl Sink {
    fn create(path: &Path) -> Result<Self> {
        let file = File::create(path)
            .with_context(|| format!("cannot write the trace file {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    fn write(&mut self, f: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>) -> Result<()> {
        f(&mut self.out)
            .and_then(|()| self.out.flush())
            .with_context(|| format!("writing the trace file {}", self.path.display()))
    }
}

/// Whether two paths name one file: the same canonical path when both exist, else the same
/// path as written.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// `q_halt` as a halting probability (the sigmoid the Q head is trained through).
pub fn halt_probability(q_halt: f32) -> f32 {
    1.0 / (1.0 + (-q_halt).exp())
}

/// The cells where `now` differs from `before`.
pub fn changed_cells(before: &Grid, now: &Grid) -> Vec<usize> {
    (0..CELLS)
        .filter(|&i| before.cells()[i] != now.cells()[i])
        .collect()
}

/// Each step with the cells it changed: against the attempt's previous step, for an
/// attempt's first step against the puzzle.
fn with_changes<'a>(
    puzzle: &'a Grid,
    steps: &'a [StepView],
) -> impl Iterator<Item = (&'a StepView, Vec<usize>)> + 'a {
    let mut before = *puzzle;
    steps.iter().map(move |v| {
        if v.step == 1 {
            before = *puzzle;
        }
        let changed = changed_cells(&before, &v.grid);
        before = v.grid;
        (v, changed)
    })
}

impl Trace {
    /// Creates the files asked for (none: `Ok(None)`); `described`: the model and options,
    /// for the HTML page's heading. `inputs` are the files the run reads (what each is, its
    /// path): a trace file that is one of them, or both trace files on one path, is refused
    /// before anything is written.
    pub fn create(
        jsonl: Option<&Path>,
        html: Option<&Path>,
        inputs: &[(&str, &Path)],
        described: &str,
    ) -> Result<Option<Self>> {
        if jsonl.is_none() && html.is_none() {
            return Ok(None);
        }
        let outputs = [("--trace", jsonl), ("--trace-html", html)];
        for (flag, out) in outputs.iter().filter_map(|(f, o)| Some((f, (*o)?))) {
            for (what, input) in inputs {
                if same_file(out, input) {
                    bail!(
                        "{flag} {} is {what}; writing the trace there would replace it",
                        out.display()
                    );
                }
            }
        }
        if let (Some(a), Some(b)) = (jsonl, html)
            && same_file(a, b)
        {
            bail!("--trace and --trace-html name one file, {}", a.display());
        }
        let jsonl = jsonl.map(Sink::create).transpose()?;
        let mut html = html.map(Sink::create).transpose()?;
        if let Some(h) = &mut html {
            h.write(|o| write!(o, "{}", html_head(described)))?;
        }
        Ok(Some(Self {
            jsonl,
            html,
            puzzles: 0,
        }))
    }

    /// Writes the steps of one answered puzzle (the next in input order).
    pub fn write(&mut self, s: &Solved) -> Result<()> {
        let index = self.puzzles;
        self.puzzles += 1;
        let puzzle = &s.puzzle.grid;
        if let Some(j) = &mut self.jsonl {
            j.write(|o| {
                for (v, changed) in with_changes(puzzle, &s.trace) {
                    let rec = json!({
                        "puzzle": index,
                        "line": s.puzzle.line,
                        "attempt": v.attempt,
                        "kind": v.kind.to_string(),
                        "step": v.step,
                        "total_steps": v.total_steps,
                        "grid": v.grid.to_string(),
                        "changed": changed,
                        "q_halt": json_f32(v.q.q_halt),
                        "p_halt": json_f32(halt_probability(v.q.q_halt)),
                        "valid": v.valid,
                    });
                    writeln!(o, "{rec}")?;
                }
                Ok(())
            })?;
        }
        if let Some(h) = &mut self.html {
            h.write(|o| o.write_all(html_puzzle(s).as_bytes()))?;
        }
        Ok(())
    }

    /// Ends the HTML page.
    pub fn finish(mut self) -> Result<()> {
        if let Some(h) = &mut self.html {
            h.write(|o| o.write_all(b"</body>\n</html>\n"))?;
        }
        Ok(())
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html_head(described: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>trm-solve trace</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }}
section {{ margin: 1.5em 0; border-top: 1px solid #ccc; }}
.steps {{ display: flex; flex-wrap: wrap; gap: 10px; }}
.attempt {{ flex-basis: 100%; height: 0; }}
figure {{ margin: 0; }}
figcaption {{ font-size: 12px; text-align: center; }}
table.g {{ border-collapse: collapse; border: 2px solid #333; }}
table.g td {{ width: 14px; height: 14px; padding: 0; text-align: center; font-size: 11px;
  border: 1px solid #ccc; font-family: ui-monospace, monospace; }}
table.g td:nth-child(3n) {{ border-right: 2px solid #333; }}
table.g tr:nth-child(3n) td {{ border-bottom: 2px solid #333; }}
td.given {{ font-weight: bold; background: #eee; }}
td.changed {{ background: #ffd54f; }}
.ok {{ color: #1b7f2a; }} .no {{ color: #b3261e; }}
</style>
</head>
<body>
<h1>trm-solve trace</h1>
<p>{}. Each grid is the answer after one supervision step; bold grey cells are givens, yellow
cells changed in that step (against the previous step of the same attempt; in the first step,
the cells filled in). q_halt is the halting head's logit, p its sigmoid; ✓ = the grid passes
the Sudoku check.</p>
"#,
        escape(described)
    )
}

fn html_grid(puzzle: &Grid, grid: &Grid, changed: &[usize]) -> String {
    let mut s = String::from("<table class=\"g\">");
    for r in 0..9 {
        s.push_str("<tr>");
        for c in 0..9 {
            let i = r * 9 + c;
            let v = grid.cells()[i];
            let class = if puzzle.cells()[i] != 0 {
                " class=\"given\""
            } else if changed.contains(&i) {
                " class=\"changed\""
            } else {
                ""
            };
            let text = if v == 0 { String::new() } else { v.to_string() };
            s.push_str(&format!("<td{class}>{text}</td>"));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

fn html_puzzle(s: &Solved) -> String {
    let a = &s.answer;
    let puzzle = &s.puzzle.grid;
    let verdict = if a.valid {
        "<span class=\"ok\">passes the check</span>"
    } else {
        "<span class=\"no\">fails the check</span>"
    };
    let correct = match s.correct() {
        Some(true) => ", equals the file's solution",
        Some(false) => ", differs from the file's solution",
        None => "",
    };
    let mut h = format!(
        "<section>\n<h2>line {}</h2>\n<p>answer <code>{}</code>: {verdict}{correct}; {} steps, stop {}, q_halt {}</p>\n<div class=\"steps\">\n<figure>{}<figcaption>puzzle</figcaption></figure>\n",
        s.puzzle.line,
        a.grid,
        a.steps,
        a.stop,
        a.q_halt,
        html_grid(puzzle, puzzle, &[]),
    );
    for (v, changed) in with_changes(puzzle, &s.trace) {
        if v.step == 1 && v.attempt > 0 {
            h.push_str("<div class=\"attempt\"></div>\n");
        }
        let attempt = if a.attempts.is_some() {
            format!("attempt {} ({}), ", v.attempt, v.kind)
        } else {
            String::new()
        };
        let check = if v.valid {
            "<span class=\"ok\">✓</span>"
        } else {
            "<span class=\"no\">✗</span>"
        };
        h.push_str(&format!(
            "<figure>{}<figcaption>{attempt}step {}<br>q_halt {:.2} (p {:.3}) {check}</figcaption></figure>\n",
            html_grid(puzzle, &v.grid, &changed),
            v.step,
            v.q.q_halt,
            halt_probability(v.q.q_halt),
        ));
    }
    h.push_str("</div>\n</section>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use trm_edge::sudoku::parse;

    #[test]
    fn changes_and_probabilities() {
        let a = parse(&format!("1{}", ".".repeat(80))).unwrap();
        let mut b = a;
        b.set(5, 7).unwrap();
        b.set(80, 2).unwrap();
        assert_eq!(changed_cells(&a, &b), [5, 80]);
        assert!(changed_cells(&b, &b).is_empty());
        assert_eq!(halt_probability(0.0), 0.5);
        assert!(halt_probability(10.0) > 0.9999 && halt_probability(-10.0) < 1e-4);
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
