//! Training data for a run: base puzzles (generated and cached, or read from a file), the
//! augmented data set, the deterministic batch sampler and the evaluation batches.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use trm_edge::sudoku::{CELLS, Grid};

use super::config::{DataSection, DataSource};
use crate::dataset::{self, Dataset, DatasetSpec, Split};
use crate::model::Batch;
use trm_sudoku::generate::{GenSpec, Generated, generate};
use trm_sudoku::io::{ExtremeWriter, Reader};
use trm_sudoku::search::solve;

/// Loads (or generates, using the cache) the base puzzles and builds the augmented data set:
/// `data.puzzles` training groups of `1 + augmentations` examples and `data.eval_puzzles`
/// held-out examples.
pub fn load_dataset(data: &DataSection, log: &mut dyn FnMut(&str)) -> Result<Dataset> {
    let (base, spec) = base_puzzles(data, log)?;
    let set = dataset::build(&base, &spec)?;
    log(&format!(
        "data: {} training examples ({} puzzles x {} augmentations + originals), {} held-out puzzles",
        set.train.len(),
        set.train.groups(),
        data.augmentations,
        set.test.len()
    ));
    Ok(set)
}

/// The run's held-out puzzles alone (the test split of [`load_dataset`], the same puzzles in
/// the same order), without building the augmented training set.
pub fn load_held_out(data: &DataSection, log: &mut dyn FnMut(&str)) -> Result<Split> {
    let (base, spec) = base_puzzles(data, log)?;
    Ok(dataset::build_test(&base, &spec)?)
}

/// The base puzzles of a run (generated and cached, or read from its file) and how they are
/// split.
fn base_puzzles(
    data: &DataSection,
    log: &mut dyn FnMut(&str),
) -> Result<(Vec<(Grid, Grid)>, DatasetSpec)> {
    let wanted = data.puzzles + data.eval_puzzles;
    let base = match data.source {
        DataSource::Generate => generated_base(data, wanted, log)?,
        DataSource::File => file_base(Path::new(&data.path), wanted)?,
    };
    let spec = DatasetSpec {
        augmentations: data.augmentations,
        test_augmentations: 0,
        test_puzzles: data.eval_puzzles,
        seed: data.seed,
    };
    Ok((base, spec))
}

/// The cache file of a generated set: one name per generator setting.
pub fn cache_path(data: &DataSection, count: usize) -> PathBuf {
    PathBuf::from(&data.cache_dir).join(format!(
        "gen-c{}-{}-r{}-n{}-s{}.csv",
        data.clues_min, data.clues_max, data.min_rating, count, data.seed
    ))
}

fn generated_base(
    data: &DataSection,
    count: usize,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<(Grid, Grid)>> {
    let path = cache_path(data, count);
    if path.is_file() {
        let base = file_base(&path, count)
            .with_context(|| format!("bad cached set {} (delete it)", path.display()))?;
        log(&format!(
            "data: reusing {} ({count} puzzles)",
            path.display()
        ));
        return Ok(base);
    }
    let spec = GenSpec {
        clues: data.clues_min..=data.clues_max,
        min_rating: data.min_rating,
    };
    let start = std::time::Instant::now();
    let puzzles = generate(&spec, count, data.seed, |_| {})?;
    let mut base = Vec::with_capacity(count);
    for g in &puzzles {
        base.push((Grid::from_cells(g.puzzle)?, Grid::from_cells(g.solution)?));
    }
    fs::create_dir_all(&data.cache_dir)
        .with_context(|| format!("cannot create {}", data.cache_dir))?;
    write_generated(&path, data.seed, &puzzles)?;
    log(&format!(
        "data: generated {count} puzzles ({}..={} givens) in {:.1} s, cached at {}",
        data.clues_min,
        data.clues_max,
        start.elapsed().as_secs_f64(),
        path.display()
    ));
    Ok(base)
}

/// Writes generated puzzles, atomically, as Sudoku-Extreme CSV with the source `trm-gen-s{seed}`:
/// the one format of `data generate` and of the generated-set cache (same settings, same bytes).
pub fn write_generated(path: &Path, seed: u64, puzzles: &[Generated]) -> Result<()> {
    let source = format!("trm-gen-s{seed}");
    crate::atomic::write_with(path, |out| {
        let mut w = ExtremeWriter::new(out)?;
        for g in puzzles {
            let (p, s) = (Grid::from_cells(g.puzzle)?, Grid::from_cells(g.solution)?);
            w.write(&source, &p, &s, g.rating)?;
        }
        w.finish()?.flush()?;
        Ok(())
    })
}

/// The first `count` puzzles of a file with their solutions; the file must hold that many.
fn file_base(path: &Path, count: usize) -> Result<Vec<(Grid, Grid)>> {
    let base = read_pairs(path, Some(count))?;
    ensure!(
        base.len() == count,
        "{} holds {} puzzles, the config needs {count} (data.puzzles + data.eval_puzzles)",
        path.display(),
        base.len()
    );
    Ok(base)
}

/// The puzzles of a file (any format [`Reader`] detects), at most `limit`, with their
/// solutions: the file's, or found by the exact solver when it has none. A bad line, or a
/// puzzle without a unique solution, is an error naming the file and line.
pub fn read_pairs(path: &Path, limit: Option<usize>) -> Result<Vec<(Grid, Grid)>> {
    let reader = Reader::open(path)?;
    let mut base = Vec::new();
    for item in reader {
        if limit.is_some_and(|n| base.len() >= n) {
            break;
        }
        let r = item.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let solution = match r.solution {
            Some(s) => s,
            None => {
                let out = solve(r.puzzle.cells(), 2);
                match (out.is_unique(), out.solution) {
                    (true, Some(s)) => Grid::from_cells(s)?,
                    _ => bail!(
                        "{} line {}: the puzzle is not uniquely solvable",
                        path.display(),
                        r.line
                    ),
                }
            }
        };
        base.push((r.puzzle, solution));
    }
    Ok(base)
}

/// Where the sampler is: epoch and position in that epoch's order. Saved in checkpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataPosition {
    /// Epochs started so far (0-based index of the current one).
    pub epoch: u64,
    /// Rows of the current epoch already handed out.
    pub cursor: u64,
}

/// Draws training batches as the official loader does: each epoch visits every base puzzle
/// once in a random order and takes one random example (original or augmentation) of it;
/// batches run on across epoch boundaries. Epoch `e` depends only on `(seed, e)`, so a
/// [`DataPosition`] restores the stream exactly.
pub struct Sampler<'a> {
    split: &'a Split,
    seed: u64,
    /// The current position.
    pub pos: DataPosition,
    order: Vec<usize>,
}

impl<'a> Sampler<'a> {
    /// A sampler at `pos`.
    pub fn new(split: &'a Split, seed: u64, pos: DataPosition) -> Self {
        let mut s = Self {
            split,
            seed,
            pos,
            order: Vec::new(),
        };
        s.order = s.epoch_order(pos.epoch);
        s
    }

    /// The example indices of epoch `e`, in order.
    fn epoch_order(&self, e: u64) -> Vec<usize> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(e);
        let mut groups: Vec<usize> = (0..self.split.groups()).collect();
        groups.shuffle(&mut rng);
        groups
            .into_iter()
            .map(|g| {
                let r = self.split.group(g);
                rng.random_range(r)
            })
            .collect()
    }

    /// The next `b` rows.
    pub fn next_batch(&mut self, b: usize) -> Batch {
        let mut idx = Vec::with_capacity(b);
        while idx.len() < b {
            if self.pos.cursor as usize >= self.order.len() {
                self.pos.epoch += 1;
                self.pos.cursor = 0;
                self.order = self.epoch_order(self.pos.epoch);
            }
            idx.push(self.order[self.pos.cursor as usize]);
            self.pos.cursor += 1;
        }
        rows(self.split, &idx)
    }
}

/// The examples `idx` of `split` as a batch (puzzle identifier 0 for every row).
pub fn rows(split: &Split, idx: &[usize]) -> Batch {
    let mut inputs = Vec::with_capacity(idx.len() * CELLS);
    let mut labels = Vec::with_capacity(idx.len() * CELLS);
    for &i in idx {
        inputs.extend(split.inputs[i].iter().map(|&t| t as i32));
        labels.extend(split.labels[i].iter().map(|&t| t as i32));
    }
    Batch {
        inputs,
        labels,
        puzzle_identifiers: vec![0; idx.len()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(groups: usize, per: usize) -> Split {
        let mut s = Split {
            group_starts: vec![0],
            ..Split::default()
        };
        for g in 0..groups {
            for k in 0..per {
                let mut x = [1u8; CELLS];
                x[0] = g as u8;
                x[1] = k as u8;
                s.inputs.push(x);
                s.labels.push(x);
            }
            s.group_starts.push(s.inputs.len());
        }
        s
    }

    #[test]
    fn sampler_visits_each_group_once_per_epoch_and_resumes_exactly() {
        let sp = split(5, 3);
        let mut a = Sampler::new(&sp, 7, DataPosition::default());
        let first = a.next_batch(5);
        let mut seen: Vec<i32> = (0..5).map(|r| first.inputs[r * CELLS]).collect();
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
        let _ = a.next_batch(3);
        let pos = a.pos;
        assert_eq!(
            pos,
            DataPosition {
                epoch: 1,
                cursor: 3
            }
        );
        let next = a.next_batch(4);
        let mut b = Sampler::new(&sp, 7, pos);
        assert_eq!(b.next_batch(4), next);
    }
}
