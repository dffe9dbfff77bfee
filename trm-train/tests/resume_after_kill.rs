//! `cargo test --workspace --release resume`: a training process is killed with SIGKILL at a
//! random moment (twice: once in the first invocation, once in the resumed one), resumed, and
//! must end exactly where an uninterrupted run ends, with nothing written before a kill missing
//! or corrupt. The moments are drawn from the clock and printed, so a failure can be replayed
//! with `TRM_KILL_AFTER_MS=a,b`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use trm_train::model::SafetensorsFile;
use trm_train::train::TrainConfig;
use trm_train::train::checkpoint::{CHECKPOINT_FILE, WEIGHTS_FILE};
use trm_train::train::metrics::{METRICS_FILE, MetricsLine};
use trm_train::train::run::{CONFIG_FILE, load_state, train_device};

const STEPS: u64 = 48;

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Hidden 16, N_sup 3, batch 8, a checkpoint every 4 steps, evaluation every 12.
fn write_config(dir: &Path, cache: &Path) -> PathBuf {
    let sets: Vec<String> = [
        "name=killed",
        "threads=2",
        "model.hidden_size=16",
        "model.puzzle_emb_ndim=16",
        "model.puzzle_emb_len=1",
        "model.halt_max_steps=3",
        "data.puzzles=24",
        "data.eval_puzzles=8",
        "data.augmentations=2",
        "train.global_batch_size=8",
        "train.warmup_steps=2",
        "train.log_every=2",
        "train.eval_every=12",
        "train.eval_size=8",
        "train.eval_batch_size=8",
        "train.checkpoint_every=4",
        "max_minutes=0",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("train.steps={STEPS}"),
        format!("data.cache_dir=\"{}\"", cache.display()),
    ])
    .collect();
    let cfg = TrainConfig::from_toml(trm_train::train::config::CPU_DEFAULT_TOML)
        .unwrap()
        .with_overrides(&sets)
        .unwrap();
    let path = dir.join("killed.toml");
    fs::write(&path, cfg.to_toml()).unwrap();
    path
}

fn trm_train(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trm-train"));
    c.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

fn finish(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The step of the checkpoint in `dir`, checking that it and the config load.
fn checkpoint_step(dir: &Path) -> Option<u64> {
    if !dir.join(CHECKPOINT_FILE).exists() {
        return None;
    }
    let cfg = TrainConfig::read(&dir.join(CONFIG_FILE)).expect("config.toml is intact");
    let state = load_state(dir, &cfg, &train_device()).expect("the checkpoint is intact");
    Some(state.step)
}

/// The complete lines of `metrics.jsonl` by step (a line torn by the kill is not counted:
/// it was never completely written).
fn metric_lines(dir: &Path) -> BTreeMap<u64, String> {
    let text = fs::read_to_string(dir.join(METRICS_FILE)).unwrap_or_default();
    let mut lines = BTreeMap::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if !line.ends_with('\n') {
            continue;
        }
        let parsed: MetricsLine = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("metrics line {} is corrupt: {e}: {line}", i + 1));
        lines.insert(parsed.step, line.to_string());
    }
    lines
}

/// Waits until the run has written its first checkpoint, then `after_ms` more, and kills it.
/// Returns false when the run had already finished.
fn kill_later(mut child: Child, dir: &Path, after_ms: u64) -> bool {
    let start = Instant::now();
    while !dir.join(CHECKPOINT_FILE).exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before its first checkpoint");
        }
        assert!(start.elapsed() < Duration::from_secs(300), "no checkpoint");
        sleep(Duration::from_millis(5));
    }
    sleep(Duration::from_millis(after_ms));
    let alive = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    alive
}

fn weights(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let f = SafetensorsFile::read(dir.join(CHECKPOINT_FILE)).unwrap();
    f.tensors
        .iter()
        .filter(|(k, _)| k.starts_with("model.") || k.starts_with("ema."))
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect()
}

fn kill_moments() -> [u64; 2] {
    if let Ok(s) = std::env::var("TRM_KILL_AFTER_MS") {
        let v: Vec<u64> = s.split(',').map(|x| x.trim().parse().unwrap()).collect();
        return [v[0], v[1]];
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    [nanos % 2500, (nanos / 2500) % 2500]
}

#[test]
fn resume_after_sigkill_completes_the_run_exactly() {
    let root = scratch("resume-after-kill");
    let cache = root.join("cache");
    let config = write_config(&root, &cache);
    let config = config.to_str().unwrap();

    // The uninterrupted run (also fills the data cache).
    let reference = root.join("reference");
    finish(
        trm_train(&[
            "train",
            "--config",
            config,
            "--out",
            reference.to_str().unwrap(),
        ])
        .spawn()
        .unwrap(),
    );

    let dir = root.join("killed");
    let dir_s = dir.to_str().unwrap();
    let moments = kill_moments();
    eprintln!("killing after the first checkpoint + {moments:?} ms (TRM_KILL_AFTER_MS to replay)");
    let mut killed = 0;
    let mut snapshots = Vec::new();
    let mut child = trm_train(&["train", "--config", config, "--out", dir_s])
        .spawn()
        .unwrap();
    for &ms in &moments {
        if kill_later(child, &dir, ms) {
            killed += 1;
        }
        // What the kill left is intact: the config, the checkpoint and every complete line.
        let step = checkpoint_step(&dir).expect("a checkpoint exists");
        assert!(step <= STEPS);
        snapshots.push((step, metric_lines(&dir)));
        child = trm_train(&["train", "--resume", dir_s]).spawn().unwrap();
    }
    finish(child);
    eprintln!("{killed} of 2 kills hit a running process");
    let last = metric_lines(&dir);
    for (ckpt, lines) in &snapshots {
        for (s, line) in lines {
            if s <= ckpt {
                // Logged before the checkpoint the run resumed from: kept byte for byte.
                assert_eq!(last.get(s), Some(line), "metrics line of step {s} changed");
            } else {
                // Logged after it: dropped on resume and logged again with the same values.
                assert_eq!(strip(&last[s]), strip(line), "metrics of step {s}");
            }
        }
    }

    // The run completed, exactly as the uninterrupted one.
    assert_eq!(checkpoint_step(&dir), Some(STEPS));
    assert!(dir.join(WEIGHTS_FILE).is_file());
    assert!(dir.join("report.txt").is_file());
    assert!(
        weights(&dir) == weights(&reference),
        "resumed weights differ from the uninterrupted run"
    );
    let (got, want) = (metric_lines(&dir), metric_lines(&reference));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (s, line) in &want {
        assert_eq!(strip(&got[s]), strip(line), "metrics of step {s}");
    }
}

/// A metrics line without its timings (which differ from run to run).
fn strip(line: &str) -> MetricsLine {
    let mut m: MetricsLine = serde_json::from_str(line).unwrap();
    m.elapsed_s = 0.0;
    if let Some(t) = &mut m.train {
        (t.samples_per_s, t.steps_per_s) = (0.0, 0.0);
    }
    if let Some(e) = &mut m.eval {
        e.seconds = 0.0;
    }
    m
}
