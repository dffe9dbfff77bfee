//! End-to-end tests of the training loop on a tiny model: the run directory, exact resume,
//! checkpoint round trip, divergence handling and the `train` command line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use trm_train::model::SafetensorsFile;
use trm_train::train::checkpoint::{
    CHECKPOINT_FILE, CHECKSUM_KEY, SNAPSHOTS_DIR, WEIGHTS_FILE, seal,
};
use trm_train::train::metrics::{METRICS_FILE, MetricsLog, StopReason};
use trm_train::train::run::{CONFIG_FILE, MAX_SANE_WEIGHT, load_state, train_device};
use trm_train::train::{RunOptions, TrainConfig, train};

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Hidden 16, T = 2, n = 2, N_sup = 3, batch 8, 24 + 8 generated puzzles.
fn tiny(cache: &Path, steps: u64) -> TrainConfig {
    let sets: Vec<String> = [
        "name=tiny",
        "model.hidden_size=16",
        "model.puzzle_emb_ndim=16",
        "model.puzzle_emb_len=1",
        "model.h_cycles=2",
        "model.l_cycles=2",
        "model.halt_max_steps=3",
        "data.puzzles=24",
        "data.eval_puzzles=8",
        "data.augmentations=2",
        "train.global_batch_size=8",
        "train.lr=1e-3",
        "train.warmup_steps=2",
        "train.log_every=2",
        "train.eval_every=3",
        "train.eval_size=8",
        "train.eval_batch_size=8",
        "train.checkpoint_every=3",
        "max_minutes=0",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("train.steps={steps}"),
        format!("data.cache_dir=\"{}\"", cache.display()),
    ])
    .collect();
    TrainConfig::from_toml(trm_train::train::config::CPU_DEFAULT_TOML)
        .unwrap()
        .with_overrides(&sets)
        .unwrap()
}

/// The trm-train binary, for a command-line call.
fn trm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trm-train"))
}

/// Asserts that a command failed with exit code 1 and a message containing `needle`.
fn assert_fails_with(o: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
}

fn run(config: TrainConfig, dir: &Path, resume: bool) -> trm_train::train::Summary {
    train(&RunOptions {
        config,
        run_dir: dir.to_path_buf(),
        resume,
    })
    .unwrap()
}

fn tensors(path: &Path) -> (HashMap<String, Vec<u8>>, HashMap<String, String>) {
    let f = SafetensorsFile::read(path).unwrap();
    let t = f
        .tensors
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    (t, f.metadata)
}

#[test]
fn train_writes_the_run_dir_and_resume_continues_exactly() {
    let root = scratch("train_resume");
    let cache = root.join("cache");

    // Straight: 6 steps.
    let straight = root.join("straight");
    let s = run(tiny(&cache, 6), &straight, false);
    assert_eq!((s.step, s.stopped), (6, StopReason::Finished));
    let e = s.eval.expect("evaluated at the end");
    assert_eq!(e.puzzles, 8);
    assert!((0.0..=1.0).contains(&e.cell_accuracy));
    for f in [CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, WEIGHTS_FILE] {
        assert!(straight.join(f).is_file(), "{f} missing");
    }
    let saved = TrainConfig::read(&straight.join(CONFIG_FILE)).unwrap();
    assert_eq!(saved, tiny(&cache, 6));
    let lines = MetricsLog::read(&straight.join(METRICS_FILE)).unwrap();
    let steps: Vec<u64> = lines.iter().map(|l| l.step).collect();
    assert_eq!(steps, vec![2, 3, 4, 6]);
    assert!(lines[1].eval.is_some() && lines[3].eval.is_some());
    let t = lines[0].train.expect("train metrics");
    assert!(t.loss.is_finite() && t.samples_per_s > 0.0);
    // N_sup = 3: rows halt at step 3 at the latest, so steps 5-6 see halted rows.
    let t = lines[3].train.expect("train metrics");
    assert!(t.halted > 0 && (1.0..=3.0).contains(&t.mean_steps), "{t:?}");
    // The generated set is cached and reused.
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);

    // Interrupted after 3 steps, then resumed to 6.
    let resumed = root.join("resumed");
    let s = run(tiny(&cache, 3), &resumed, false);
    assert_eq!(s.step, 3);
    let config = TrainConfig::read(&resumed.join(CONFIG_FILE))
        .unwrap()
        .with_overrides(&["train.steps=6".into()])
        .unwrap();
    let s = run(config, &resumed, true);
    assert_eq!((s.step, s.steps_this_run), (6, 3));

    let (a, ma) = tensors(&straight.join(CHECKPOINT_FILE));
    let (b, mb) = tensors(&resumed.join(CHECKPOINT_FILE));
    assert_eq!(a.len(), b.len());
    for (name, bytes) in &a {
        assert!(b[name] == *bytes, "{name} differs after resume");
    }
    for k in [
        "step",
        "adam_t",
        "data_epoch",
        "data_cursor",
        "rng_word_pos",
    ] {
        assert_eq!(ma[k], mb[k], "{k}");
    }
    let lr = MetricsLog::read(&resumed.join(METRICS_FILE)).unwrap();
    assert_eq!(lr.iter().map(|l| l.step).collect::<Vec<_>>(), steps);
    let loss = |l: &[trm_train::train::metrics::MetricsLine]| l[3].train.unwrap().loss;
    assert_eq!(loss(&lines), loss(&lr));
}

/// Copies the run in `from` to `to` and resumes it there with `sets` applied to its config.
fn resume_copy(from: &Path, to: &Path, sets: &[String]) -> trm_train::train::Summary {
    std::fs::create_dir_all(to).unwrap();
    for f in [CONFIG_FILE, CHECKPOINT_FILE, WEIGHTS_FILE, METRICS_FILE] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    let config = TrainConfig::read(&to.join(CONFIG_FILE))
        .unwrap()
        .with_overrides(sets)
        .unwrap();
    run(config, to, true)
}

/// `--set train.ema_rate=…` on resume changes the rate of the average from the resumed step
/// (the checkpoint restores the average with its saved rate), without touching the training
/// itself; 0 drops the average, and a rate > 0 starts one where the checkpoint had none.
#[test]
fn resume_applies_a_new_ema_rate() {
    let root = scratch("ema_rate_resume");
    let cache = root.join("cache");
    let base = run(tiny(&cache, 3), &root.join("base"), false);
    assert_eq!(base.step, 3);
    let resume_with = |name: &str, rate: &str| {
        let dir = root.join(name);
        let sets = ["train.steps=6".into(), format!("train.ema_rate={rate}")];
        resume_copy(&root.join("base"), &dir, &sets);
        tensors(&dir.join(CHECKPOINT_FILE))
    };
    let saved_rate = tiny(&cache, 3).train.ema_rate;
    assert!(saved_rate > 0.0 && saved_rate != 0.5);
    let (same, m_same) = resume_with("same", &saved_rate.to_string());
    let (fast, m_fast) = resume_with("fast", "0.5");
    assert_eq!(m_same["ema_rate"], saved_rate.to_string());
    assert_eq!(m_fast["ema_rate"], "0.5");
    let ema: Vec<&String> = same.keys().filter(|k| k.starts_with("ema.")).collect();
    assert!(!ema.is_empty());
    // The optimised weights do not depend on the average; the average does on its rate.
    for (name, bytes) in &same {
        if !name.starts_with("ema.") {
            assert!(fast[name] == *bytes, "{name} differs");
        }
    }
    assert!(
        ema.iter().any(|k| fast[*k] != same[*k]),
        "the new rate was not applied"
    );

    let (none, m_none) = resume_with("none", "0.0");
    assert_eq!(m_none["ema_rate"], "0");
    assert!(!none.keys().any(|k| k.starts_with("ema.")));
    // And back: a run without an average starts one.
    let dir = root.join("none");
    let config = TrainConfig::read(&dir.join(CONFIG_FILE))
        .unwrap()
        .with_overrides(&["train.steps=8".into(), "train.ema_rate=0.9".into()])
        .unwrap();
    run(config, &dir, true);
    let (again, m_again) = tensors(&dir.join(CHECKPOINT_FILE));
    assert_eq!(m_again["ema_rate"], "0.9");
    assert_eq!(
        again.keys().filter(|k| k.starts_with("ema.")).count(),
        ema.len()
    );
}

/// A resumed run may change its batch size: the saved ACT carry (one row per batch row) is
/// dropped and the rows start afresh, in both directions.
#[test]
fn resume_with_another_batch_size_restarts_the_rows() {
    let root = scratch("batch_resume");
    let cache = root.join("cache");
    run(tiny(&cache, 3), &root.join("base"), false);
    for batch in [4usize, 16] {
        let dir = root.join(format!("b{batch}"));
        let sets = [
            "train.steps=5".into(),
            format!("train.global_batch_size={batch}"),
            format!("train.eval_batch_size={batch}"),
        ];
        let s = resume_copy(&root.join("base"), &dir, &sets);
        assert_eq!(s.step, 5);
        let f = SafetensorsFile::read(dir.join(CHECKPOINT_FILE)).unwrap();
        assert_eq!(f.get("carry.z_H").unwrap().shape().as_slice()[0], batch);
        assert_eq!(f.get("carry.steps").unwrap().shape().as_slice(), [batch]);
    }
}

/// A resume whose overrides fail (here a data file that does not exist) changes nothing in
/// the run directory, so the plain resume still works afterwards.
#[test]
fn a_failed_resume_leaves_the_run_config_as_it_was() {
    let root = scratch("failed_resume");
    let dir = root.join("run");
    run(tiny(&root.join("cache"), 3), &dir, false);
    let before = std::fs::read(dir.join(CONFIG_FILE)).unwrap();
    let bad = TrainConfig::read(&dir.join(CONFIG_FILE))
        .unwrap()
        .with_overrides(&[
            "train.steps=6".into(),
            "data.source=\"file\"".into(),
            format!("data.path=\"{}\"", root.join("missing.csv").display()),
        ])
        .unwrap();
    let err = train(&RunOptions {
        config: bad,
        run_dir: dir.clone(),
        resume: true,
    })
    .expect_err("the data file is missing");
    assert!(format!("{err:#}").contains("missing.csv"), "{err:#}");
    assert_eq!(std::fs::read(dir.join(CONFIG_FILE)).unwrap(), before);
    let config = TrainConfig::read(&dir.join(CONFIG_FILE))
        .unwrap()
        .with_overrides(&["train.steps=6".into()])
        .unwrap();
    assert_eq!(run(config, &dir, true).step, 6);
}

#[test]
fn a_new_run_that_fails_before_its_first_checkpoint_leaves_no_folder() {
    let root = scratch("failed_run");
    let bad = tiny(&root.join("cache"), 4)
        .with_overrides(&[
            "data.source=\"file\"".to_string(),
            format!("data.path=\"{}\"", root.join("missing.csv").display()),
        ])
        .unwrap();
    let dir = root.join("runs/new");
    let err = train(&RunOptions {
        config: bad.clone(),
        run_dir: dir.clone(),
        resume: false,
    })
    .expect_err("the data file is missing");
    let msg = format!("{err:#}");
    assert!(msg.contains("missing.csv"), "{msg}");
    assert!(msg.contains("was removed again"), "{msg}");
    assert!(!dir.exists(), "{} was left behind", dir.display());
    assert!(root.join("runs").is_dir(), "only the run's own folder goes");
    // A folder that was there before (here with a file of the user's) stays, with that file.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    assert!(
        train(&RunOptions {
            config: bad,
            run_dir: dir.clone(),
            resume: false,
        })
        .is_err()
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn checkpoints_round_trip() {
    let root = scratch("train_roundtrip");
    let dir = root.join("run");
    let config = tiny(&root.join("cache"), 2);
    run(config.clone(), &dir, false);
    let file = SafetensorsFile::read(dir.join(CHECKPOINT_FILE)).unwrap();
    let state = load_state(&dir, &config, &train_device()).unwrap();
    assert_eq!(state.step, 2);
    let again = state.to_file(&config.to_toml());
    assert_eq!(file.metadata, again.metadata);
    assert_eq!(file.tensors.len(), again.tensors.len());
    for (name, t) in &file.tensors {
        let u = &again.tensors[name];
        assert_eq!(t.shape().as_slice(), u.shape().as_slice(), "{name}");
        assert!(t.as_bytes() == u.as_bytes(), "{name} differs after a load");
    }
    // A fresh run refuses to overwrite it.
    let err = train(&RunOptions {
        config,
        run_dir: dir.clone(),
        resume: false,
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("--resume"), "{err:#}");
}

/// `trm-train compact` keeps the weights, EMA weights and metadata exactly, rounds the Adam
/// moments to bf16, drops the ACT carry, and the run resumes from it.
#[test]
fn a_compact_checkpoint_is_smaller_and_resumes() {
    let root = scratch("train_compact");
    let dir = root.join("run");
    let cache = root.join("cache");
    run(tiny(&cache, 4), &dir, false);
    let compact = root.join("compact");
    let o = trm()
        .arg("compact")
        .arg("--checkpoint")
        .arg(&dir)
        .arg("--out")
        .arg(&compact)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let full = SafetensorsFile::read(dir.join(CHECKPOINT_FILE)).unwrap();
    let small = SafetensorsFile::read(compact.join(CHECKPOINT_FILE)).unwrap();
    let floats =
        |t: &burn::tensor::TensorData| t.clone().convert::<f32>().try_to_vec::<f32>().unwrap();
    let mut moments = 0;
    for (name, t) in &full.tensors {
        if name.starts_with("carry.") {
            assert!(!small.tensors.contains_key(name), "{name} kept");
            continue;
        }
        let u = &small.tensors[name];
        assert_eq!(t.shape().as_slice(), u.shape().as_slice(), "{name}");
        if name.starts_with("adam.") {
            moments += 1;
            for (a, b) in floats(t).iter().zip(floats(u)) {
                assert!(
                    (a - b).abs() <= a.abs() / 256.0 + f32::MIN_POSITIVE,
                    "{name}: {a} vs {b}"
                );
            }
        } else {
            assert!(t.as_bytes() == u.as_bytes(), "{name} changed");
        }
    }
    assert!(moments > 0 && full.tensors.keys().any(|k| k.starts_with("carry.")));
    for (k, v) in full.metadata.iter().filter(|(k, _)| *k != CHECKSUM_KEY) {
        assert_eq!(small.metadata.get(k), Some(v), "metadata {k}");
    }
    assert!(small.metadata.contains_key("compact"));
    let size = |p: PathBuf| std::fs::metadata(p).unwrap().len();
    assert!(size(compact.join(CHECKPOINT_FILE)) < size(dir.join(CHECKPOINT_FILE)));
    // Compacting a compact checkpoint into its own folder keeps its config (a copy onto
    // itself used to empty it) and the folder still resumes.
    let config_before = std::fs::read(compact.join(CONFIG_FILE)).unwrap();
    let again = trm()
        .arg("compact")
        .arg("--checkpoint")
        .arg(&compact)
        .arg("--out")
        .arg(&compact)
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        std::fs::read(compact.join(CONFIG_FILE)).unwrap(),
        config_before
    );
    // The compact directory is a run directory: training continues from step 4 to 6.
    let summary = run(tiny(&cache, 6), &compact, true);
    assert_eq!((summary.step, summary.steps_this_run), (6, 2));
    // An empty config.toml is an error that says so, never the defaults.
    std::fs::write(compact.join(CONFIG_FILE), "").unwrap();
    let o = trm()
        .arg("train")
        .arg("--resume")
        .arg(&compact)
        .output()
        .unwrap();
    assert_fails_with(&o, "the config is empty");
    // Compacting a directory into itself is refused.
    let o = trm()
        .arg("compact")
        .arg("--checkpoint")
        .arg(&dir)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!o.status.success());
}

/// `trm-train average` writes the element-wise mean of the checkpoints' weights and EMA
/// weights (no carry, no moments) with the newest config; eval and export read it, `train
/// --resume` refuses it, and it never replaces a training checkpoint or mixes model shapes.
#[test]
fn average_writes_the_mean_of_checkpoints_and_is_not_resumed() {
    let root = scratch("train_average");
    let (dir, cache) = (root.join("run"), root.join("cache"));
    run(tiny(&cache, 3), &dir, false);
    let early = root.join("early");
    std::fs::create_dir_all(&early).unwrap();
    for f in [CHECKPOINT_FILE, CONFIG_FILE] {
        std::fs::copy(dir.join(f), early.join(f)).unwrap();
    }
    run(tiny(&cache, 6), &dir, true);
    let avg = root.join("avg");
    let o = trm()
        .arg("average")
        .arg(&early)
        .arg(&dir)
        .arg("--out")
        .arg(&avg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = (
        SafetensorsFile::read(early.join(CHECKPOINT_FILE)).unwrap(),
        SafetensorsFile::read(dir.join(CHECKPOINT_FILE)).unwrap(),
    );
    let m = SafetensorsFile::read(avg.join(CHECKPOINT_FILE)).unwrap();
    let floats =
        |t: &burn::tensor::TensorData| t.clone().convert::<f32>().try_to_vec::<f32>().unwrap();
    let mut checked = 0;
    for (name, t) in &b.tensors {
        if !(name.starts_with("model.") || name.starts_with("ema.")) {
            assert!(!m.tensors.contains_key(name), "{name} kept");
            continue;
        }
        let (x, y, z) = (
            floats(&a.tensors[name]),
            floats(t),
            floats(&m.tensors[name]),
        );
        let moved = x.iter().zip(&y).any(|(p, q)| p != q);
        checked += usize::from(moved);
        for ((p, q), r) in x.iter().zip(&y).zip(&z) {
            assert!(
                (r - (p + q) / 2.0).abs() <= 1e-6 * (p.abs() + q.abs()),
                "{name}"
            );
        }
    }
    assert!(
        checked > 0,
        "training moved no weight between steps 3 and 6"
    );
    assert_eq!(m.metadata["averaged"], "steps 3, 6");
    assert_eq!(m.metadata["step"], "6");
    assert_eq!(
        std::fs::read(avg.join(CONFIG_FILE)).unwrap(),
        std::fs::read(dir.join(CONFIG_FILE)).unwrap()
    );
    assert!(avg.join(WEIGHTS_FILE).is_file());
    // Export reads it like a run directory.
    let o = trm()
        .args(["export", "--dtype", "f32", "--checkpoint"])
        .arg(&avg)
        .arg("--out")
        .arg(root.join("avg.trm"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Resuming it is refused, and says why.
    let o = trm()
        .arg("train")
        .arg("--resume")
        .arg(&avg)
        .output()
        .unwrap();
    assert_fails_with(&o, "average of checkpoints (steps 3, 6");
    // A training checkpoint is never the output; the same checkpoint twice is refused.
    let o = trm()
        .arg("average")
        .arg(&early)
        .arg(&avg)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert_fails_with(&o, "holds a training checkpoint");
    let o = trm()
        .arg("average")
        .arg(&dir)
        .arg(&dir)
        .arg("--out")
        .arg(&avg)
        .output()
        .unwrap();
    assert_fails_with(&o, "is given twice");
    // Another model shape is named, and nothing is written.
    let wide = root.join("wide");
    let sets = [
        "model.hidden_size=32".to_string(),
        "model.puzzle_emb_ndim=32".to_string(),
    ];
    run(tiny(&cache, 3).with_overrides(&sets).unwrap(), &wide, false);
    let out = root.join("mixed");
    let o = trm()
        .arg("average")
        .arg(&dir)
        .arg(&wide)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_fails_with(&o, "not the same model");
    assert!(!out.exists());
}

/// `train.keep_every` keeps the weights and EMA weights of every N-th step in
/// `snapshots/step-N/` (no carry, no moments), exactly as the checkpoint of that step holds
/// them; `average` reads the snapshots, `train --resume` refuses one.
#[test]
fn keep_every_keeps_weight_snapshots_for_average() {
    let root = scratch("train_keep_every");
    let (dir, cache) = (root.join("run"), root.join("cache"));
    let keep = ["train.keep_every=2".to_string()];
    run(tiny(&cache, 6).with_overrides(&keep).unwrap(), &dir, false);
    let snaps = dir.join(SNAPSHOTS_DIR);
    let names = trm_testkit::dir_entries(&snaps);
    assert_eq!(names, ["step-2", "step-4", "step-6"]);
    let full = SafetensorsFile::read(dir.join(CHECKPOINT_FILE)).unwrap();
    let last = SafetensorsFile::read(snaps.join("step-6").join(CHECKPOINT_FILE)).unwrap();
    for (name, t) in &full.tensors {
        match last.tensors.get(name) {
            Some(u) => assert!(t.as_bytes() == u.as_bytes(), "{name} differs"),
            None => assert!(
                name.starts_with("adam.") || name.starts_with("carry."),
                "{name} missing"
            ),
        }
    }
    assert_eq!(
        last.tensors.len(),
        full.tensors
            .keys()
            .filter(|k| k.starts_with("model.") || k.starts_with("ema."))
            .count()
    );
    assert_eq!(last.metadata["step"], "6");
    assert_eq!(
        std::fs::read(snaps.join("step-2").join(CONFIG_FILE)).unwrap(),
        std::fs::read(dir.join(CONFIG_FILE)).unwrap()
    );
    let o = trm()
        .arg("average")
        .args(names.iter().map(|n| snaps.join(n)))
        .arg("--out")
        .arg(root.join("mean"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mean = SafetensorsFile::read(root.join("mean").join(CHECKPOINT_FILE)).unwrap();
    assert_eq!(mean.metadata["averaged"], "steps 2, 4, 6");
    let o = trm()
        .arg("train")
        .arg("--resume")
        .arg(snaps.join("step-4"))
        .output()
        .unwrap();
    assert_fails_with(&o, "holds a weight snapshot");
}

/// A run that blows up keeps a checkpoint that is really good: finite, with no weight above
/// `MAX_SANE_WEIGHT` (steps whose weights exploded but stayed finite are not saved), so the
/// resume with a lower learning rate that the message advises works.
#[test]
fn a_diverging_run_stops_and_keeps_the_last_good_checkpoint() {
    let root = scratch("train_diverge");
    let dir = root.join("run");
    let cache = root.join("cache");
    run(tiny(&cache, 3), &dir, false);
    let config = tiny(&cache, 9)
        .with_overrides(&[
            "train.lr=1e30".into(),
            "train.warmup_steps=0".into(),
            "train.checkpoint_every=1".into(),
        ])
        .unwrap();
    let err = train(&RunOptions {
        config,
        run_dir: dir.clone(),
        resume: true,
    })
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("diverged"), "{msg}");
    let f = SafetensorsFile::read(dir.join(CHECKPOINT_FILE)).unwrap();
    let kept: u64 = f.meta("step").unwrap().parse().unwrap();
    assert!((3..9).contains(&kept), "{msg}");
    assert!(msg.contains(&format!("step {kept}")), "{msg}");
    let state = load_state(&dir, &tiny(&cache, 9), &train_device()).unwrap();
    let (largest, name) = state.largest_weight();
    assert!(largest <= MAX_SANE_WEIGHT, "{name}: {largest}");
    let summary = run(tiny(&cache, kept + 2), &dir, true);
    assert_eq!(summary.step, kept + 2);
}

/// A checkpoint with a flipped byte, or with carry values out of range, is refused with a
/// message (and exit code 1 from the command line), never resumed silently or with a panic.
#[test]
fn a_damaged_checkpoint_is_refused_with_a_message() {
    let root = scratch("train_damaged");
    let dir = root.join("run");
    let cache = root.join("cache");
    run(tiny(&cache, 3), &dir, false);
    let path = dir.join(CHECKPOINT_FILE);
    let good = std::fs::read(&path).unwrap();
    let resume = || {
        trm()
            .arg("train")
            .arg("--resume")
            .arg(&dir)
            .output()
            .unwrap()
    };
    // One bit of tensor data flipped (the data section ends the file).
    let mut flipped = good.clone();
    let at = flipped.len() - 100;
    flipped[at] ^= 0x10;
    std::fs::write(&path, &flipped).unwrap();
    let err = load_state(&dir, &tiny(&cache, 3), &train_device()).unwrap_err();
    assert!(format!("{err:#}").contains("damaged"), "{err:#}");
    let o = resume();
    assert_fails_with(&o, "checksum");
    // Tokens out of range in the carry, with a valid checksum: a message, not a panic.
    let mut f = SafetensorsFile::from_bytes(&good).unwrap();
    let inputs = f.tensors["carry.inputs"].clone();
    let shape = inputs.shape().clone();
    let n = inputs.num_elements();
    f.tensors.insert(
        "carry.inputs".into(),
        burn::tensor::TensorData::new(vec![99i32; n], shape),
    );
    seal(&mut f);
    f.write(&path).unwrap();
    let o = resume();
    assert_fails_with(&o, "carry.inputs holds 99, out of range");
}

/// Ctrl-C (SIGINT) during training saves the step under way and exits with 130; the run
/// resumes from it. Without the handler, up to `checkpoint_every` steps were lost.
#[cfg(unix)]
#[test]
fn ctrl_c_saves_a_checkpoint_and_the_run_resumes() {
    let root = scratch("train_sigint");
    let dir = root.join("run");
    let cache = root.join("cache");
    let config = tiny(&cache, 100_000)
        .with_overrides(&[
            "train.checkpoint_every=100000".into(),
            "train.eval_every=0".into(),
        ])
        .unwrap();
    let cfg_path = root.join("sigint.toml");
    std::fs::write(&cfg_path, config.to_toml()).unwrap();
    let child = trm()
        .arg("train")
        .arg("--config")
        .arg(&cfg_path)
        .arg("--out")
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until a few steps are logged, then press Ctrl-C.
    let metrics = dir.join(METRICS_FILE);
    let started = std::time::Instant::now();
    while MetricsLog::read(&metrics).map_or(0, |l| l.len()) < 2 {
        assert!(
            started.elapsed().as_secs() < 300,
            "no steps logged in 300 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stdout.contains("interrupted: step"), "{stdout}");
    let f = SafetensorsFile::read(dir.join(CHECKPOINT_FILE)).unwrap();
    let step: u64 = f.meta("step").unwrap().parse().unwrap();
    assert!(step >= 4, "saved step {step}");
    let summary = run(tiny(&cache, step + 1), &dir, true);
    assert_eq!((summary.step, summary.steps_this_run), (step + 1, 1));
}

#[test]
fn the_command_line_names_a_bad_config_key() {
    let out = trm()
        .args(["train", "--set", "model.hiden_size=3"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("model.hiden_size"), "{stderr}");
    assert!(
        stderr.contains("hidden_size"),
        "lists the known keys: {stderr}"
    );
}

#[test]
fn eval_prints_the_budget_table_and_writes_the_charts() {
    let root = scratch("eval_cli");
    let dir = root.join("run");
    run(tiny(&root.join("cache"), 4), &dir, false);
    // Three held-out puzzles as a plain list without solutions (eval solves them).
    let puzzles = root.join("three.txt");
    let cached = std::fs::read_dir(root.join("cache"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(cached).unwrap();
    let lines: Vec<String> = text
        .lines()
        .skip(1)
        .take(3)
        .map(|l| l.split(',').nth(1).unwrap().to_string())
        .collect();
    std::fs::write(&puzzles, lines.join("\n") + "\n").unwrap();

    let out = trm()
        .args([
            "eval",
            "--checkpoint",
            dir.to_str().unwrap(),
            "--max-steps",
            "5",
        ])
        .args([
            "--data",
            puzzles.to_str().unwrap(),
            "--out",
            root.join("e").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("three.txt: 3 puzzles, N_sup 3"), "{stdout}");
    for budget in 1..=5 {
        assert!(
            stdout.contains(&format!("\n {budget:>5}")),
            "budget {budget}: {stdout}"
        );
    }
    assert!(stdout.contains("Q-halt policy"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("e/budget.json")).unwrap())
            .unwrap();
    assert_eq!(report["puzzles"], 3);
    assert_eq!(report["rows"].as_array().unwrap().len(), 5);
    for png in ["budget.png", "learning_curves.png"] {
        let bytes = std::fs::read(root.join("e").join(png)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{png}");
    }
    // The training run drew its own learning curves and wrote its report.
    assert!(dir.join("plots/learning_curves.png").is_file());
    assert!(dir.join("report.txt").is_file());

    // A directory that is not a run is named in the error.
    let out = trm()
        .args(["eval", "--checkpoint", root.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("checkpoint.safetensors"));
}

/// A few training steps of the tiny config on burn-wgpu (lavapipe in CI: software Vulkan),
/// against the same steps on burn-ndarray. Built with `--features wgpu`, run with
/// `TRM_TEST_WGPU=1` (`.ci/run` does both).
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_training_steps_match_ndarray() {
    if std::env::var("TRM_TEST_WGPU").as_deref() != Ok("1") {
        eprintln!("SKIPPED: set TRM_TEST_WGPU=1 to train on burn-wgpu");
        return;
    }
    let root = scratch("wgpu_train");
    let cache = root.join("cache");
    let cpu = run(tiny(&cache, 3), &root.join("cpu"), false);
    let config = tiny(&cache, 3)
        .with_overrides(&["backend=wgpu".into()])
        .unwrap();
    let gpu = run(config, &root.join("wgpu"), false);
    assert_eq!(gpu.step, 3);
    let lines = |d: &str| MetricsLog::read(&root.join(d).join(METRICS_FILE)).unwrap();
    let (a, b) = (lines("cpu"), lines("wgpu"));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        let (tx, ty) = (x.train.unwrap(), y.train.unwrap());
        // f32 on wgpu (no f64 in WGSL) against f64 losses on the CPU, after 1–3 updates.
        let rel = (tx.loss - ty.loss).abs() / tx.loss.abs();
        assert!(
            rel < 1e-3,
            "step {}: loss {} vs {}",
            x.step,
            tx.loss,
            ty.loss
        );
    }
    let (ec, eg) = (cpu.eval.unwrap(), gpu.eval.unwrap());
    assert!(
        (ec.cell_accuracy - eg.cell_accuracy).abs() < 0.02,
        "{ec:?} vs {eg:?}"
    );
}
