//! Summaries of puzzle collections: givens histogram and rating distribution, as text.

use std::fmt::Write;

/// Distribution of givens and ratings over a collection of puzzles.
#[derive(Clone, Debug, Default)]
pub struct PuzzleStats {
    /// `givens[k]` = number of puzzles with `k` givens (`0..=81`).
    pub givens: Vec<usize>,
    /// Rating (solver guesses) of each puzzle.
    pub ratings: Vec<u32>,
}

impl PuzzleStats {
    /// Adds one puzzle with `givens` clues and `rating` guesses.
    pub fn add(&mut self, givens: usize, rating: u32) {
        if self.givens.len() < 82 {
            self.givens.resize(82, 0);
        }
        self.givens[givens.min(81)] += 1;
        self.ratings.push(rating);
    }

    /// Number of puzzles added.
    pub fn count(&self) -> usize {
        self.ratings.len()
    }

    /// A multi-line report: givens min/mean/max and histogram, rating quantiles and
    /// a power-of-two histogram. Empty collections give a one-line note.
    pub fn report(&self) -> String {
        let mut out = String::new();
        if self.count() == 0 {
            out.push_str("no puzzles\n");
            return out;
        }
        let n = self.count() as f64;
        let (min, max) = (
            self.givens.iter().position(|&c| c > 0).unwrap_or(0),
            self.givens.iter().rposition(|&c| c > 0).unwrap_or(0),
        );
        let mean = self
            .givens
            .iter()
            .enumerate()
            .map(|(k, &c)| (k * c) as f64)
            .sum::<f64>()
            / n;
        let _ = writeln!(out, "givens: min {min}, mean {mean:.2}, max {max}");
        let rows: Vec<(String, usize)> = (min..=max)
            .filter(|&k| self.givens[k] > 0)
            .map(|k| (k.to_string(), self.givens[k]))
            .collect();
        histogram(&mut out, &rows);

        let mut r = self.ratings.clone();
        r.sort_unstable();
        let q = |p: f64| r[((r.len() - 1) as f64 * p).round() as usize];
        let mean = r.iter().map(|&x| x as f64).sum::<f64>() / n;
        let no_guess = r.iter().filter(|&&x| x == 0).count() as f64 / n * 100.0;
        let _ = writeln!(
            out,
            "rating (solver guesses): min {}, median {}, mean {mean:.2}, p90 {}, max {}; {no_guess:.1}% need no guess",
            r[0],
            q(0.5),
            q(0.9),
            r[r.len() - 1]
        );
        let mut buckets: Vec<(String, usize)> = Vec::new();
        // Power-of-two buckets 0, 1, 2-3, 4-7, ... from the one holding the minimum.
        let mut lo = match r[0] {
            0 => 0,
            m => 1 << m.ilog2(),
        };
        while lo <= r[r.len() - 1] {
            let hi = if lo == 0 { 0 } else { lo * 2 - 1 };
            let c = r.iter().filter(|&&x| x >= lo && x <= hi).count();
            let label = if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            };
            buckets.push((label, c));
            lo = if lo == 0 { 1 } else { lo * 2 };
        }
        histogram(&mut out, &buckets);
        out
    }
}

/// Appends `label count bar` rows, bars scaled so the largest count is 40 characters.
fn histogram(out: &mut String, rows: &[(String, usize)]) {
    let top = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1);
    for (label, count) in rows {
        let len = (count * 40).div_ceil(top);
        let _ = writeln!(out, "  {label:>9} {count:>8} {}", "#".repeat(len));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_quantiles_and_histograms() {
        let mut s = PuzzleStats::default();
        for (g, r) in [(20, 0), (22, 1), (22, 5), (25, 12)] {
            s.add(g, r);
        }
        let text = s.report();
        assert!(
            text.contains("givens: min 20, mean 22.25, max 25"),
            "{text}"
        );
        assert!(
            text.contains("min 0, median 5, mean 4.50, p90 12, max 12; 25.0% need no guess"),
            "{text}"
        );
        assert!(text.contains("        22        2 ####"), "{text}");
        assert!(text.contains("      8-15        1"), "{text}");
    }
}
