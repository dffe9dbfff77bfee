//! Export to the packed trm-edge file and the agreement between the two implementations:
//! trm-edge (f32) running the exported weights must match the burn model step by step
//! (teacher-forced: both start every step from burn's carry), on the reference fixtures'
//! weights and on a freshly trained run exported through the command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use trm_edge::format::{DType, Model};
use trm_edge::sudoku::{Grid, encode};
use trm_testkit::{fixtures_dir, missing_input};
use trm_train::export::{pack_model, pack_official};
use trm_train::model::{Mode, SafetensorsFile, Trm, TrmConfig};
use trm_train::train::eval::batch_of;
use trm_train::train::run::{load_state, train_device};
use trm_train::train::{RunOptions, TrainConfig, train};

/// |edge − burn| ≤ TOL · max(1, max|burn|) per step, logits and q_halt.
const TOL: f32 = 1e-4;

fn to_vec(t: burn::tensor::Tensor<3>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// Runs `steps` supervision steps of `burn` on `pairs` and of trm-edge on `bytes`, feeding
/// trm-edge burn's carry before every step; returns the worst relative error.
fn agreement(burn: &Trm, bytes: &[u8], pairs: &[(Grid, Grid)], steps: usize) -> f32 {
    let edge = Model::from_bytes(bytes).unwrap();
    let batch = batch_of(pairs);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut carry = burn.fresh_carry(&batch);
    let (sd, ld) = (edge.state_len(), edge.logits_len());
    let mut x = vec![0f32; sd];
    let (mut zh, mut zl) = (vec![0f32; sd], vec![0f32; sd]);
    let mut logits = vec![0f32; ld];
    let mut scratch = vec![0f32; edge.scratch_len()];
    let mut worst = 0f32;
    for s in 0..steps {
        // The carry burn starts this step from (reset rows take H_init/L_init inside act_step).
        let start = if s == 0 {
            None
        } else {
            Some((
                to_vec(carry.inner.z_h.clone()),
                to_vec(carry.inner.z_l.clone()),
            ))
        };
        let (c, out) = burn.act_step(carry, &batch, Mode::Eval, &mut rng);
        carry = c;
        let want_logits = to_vec(out.logits);
        let want_q = out
            .q_halt
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap();
        for (r, (p, _)) in pairs.iter().enumerate() {
            edge.embed_input(&encode(p), 0, &mut x).unwrap();
            match &start {
                None => edge.reset_carry(&mut zh, &mut zl).unwrap(),
                Some((h, l)) => {
                    zh.copy_from_slice(&h[r * sd..(r + 1) * sd]);
                    zl.copy_from_slice(&l[r * sd..(r + 1) * sd]);
                }
            }
            let o = edge
                .step(&x, &mut zh, &mut zl, &mut logits, &mut scratch)
                .unwrap();
            let want = &want_logits[r * ld..(r + 1) * ld];
            let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
            for (a, b) in logits.iter().zip(want) {
                worst = worst.max((a - b).abs() / scale);
            }
            worst = worst.max((o.q_halt - want_q[r]).abs() / want_q[r].abs().max(1.0));
        }
    }
    worst
}

fn fixture_puzzles(file: &SafetensorsFile) -> Vec<(Grid, Grid)> {
    let list: Vec<(String, String)> = serde_json::from_str(file.meta("puzzles").unwrap()).unwrap();
    let grid = |s: &str| {
        let cells: Vec<u8> = s.bytes().map(|b| b - b'0').collect();
        Grid::from_cells(cells.try_into().unwrap()).unwrap()
    };
    list.iter().map(|(p, s)| (grid(p), grid(s))).collect()
}

fn fixtures() -> Vec<PathBuf> {
    let dir = fixtures_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        missing_input(&format!("fixtures folder {}", dir.display()));
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    files
}

#[test]
fn exported_fixture_weights_run_identically_on_trm_edge() {
    for path in fixtures() {
        let file = SafetensorsFile::read(&path).unwrap();
        let cfg = TrmConfig::from_official_json(file.meta("config").unwrap()).unwrap();
        let device = train_device();
        let burn = cfg
            .init(&mut ChaCha8Rng::seed_from_u64(0), &device)
            .load_state_dict(&file.tensors)
            .unwrap();
        let pairs = fixture_puzzles(&file);
        let bytes = pack_official(&path, DType::F32).unwrap();
        let err = agreement(&burn, &bytes, &pairs, cfg.halt_max_steps);
        eprintln!(
            "{}: trm-edge f32 vs burn, teacher-forced, worst relative error {err:.2e}",
            path.display()
        );
        assert!(err <= TOL, "{}: {err}", path.display());
    }
}

fn tiny_run(root: &Path) -> PathBuf {
    let sets: Vec<String> = [
        "model.hidden_size=32",
        "model.puzzle_emb_ndim=32",
        "model.puzzle_emb_len=2",
        "model.halt_max_steps=4",
        "data.puzzles=16",
        "data.eval_puzzles=4",
        "data.augmentations=1",
        "train.global_batch_size=8",
        "train.steps=3",
        "train.eval_size=4",
        "train.ema_rate=0.5",
        "max_minutes=0",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!(
        "data.cache_dir=\"{}\"",
        root.join("cache").display()
    )])
    .collect();
    let config = TrainConfig::from_toml(trm_train::train::config::CPU_DEFAULT_TOML)
        .unwrap()
        .with_overrides(&sets)
        .unwrap();
    let dir = root.join("run");
    train(&RunOptions {
        config,
        run_dir: dir.clone(),
        resume: false,
    })
    .unwrap();
    dir
}

#[test]
fn export_command_packs_a_run_in_every_dtype() {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("export_cli");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let dir = tiny_run(&root);
    // The three exports run at the same time into files of one stem (`model.f32`, ...):
    // each must get its own temporary file and its own contents.
    let models = root.join("models");
    std::fs::create_dir_all(&models).unwrap();
    let runs: Vec<_> = ["f32", "f16", "int8"]
        .iter()
        .map(|dtype| {
            let out = models.join(format!("model.{dtype}"));
            let child = Command::new(env!("CARGO_BIN_EXE_trm-train"))
                .args([
                    "export",
                    "--checkpoint",
                    dir.to_str().unwrap(),
                    "--dtype",
                    dtype,
                ])
                .args(["--out", out.to_str().unwrap()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (out, child)
        })
        .collect();
    let mut sizes = Vec::new();
    for (out, child) in runs {
        let run = child.wait_with_output().unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let bytes = std::fs::read(&out).unwrap();
        Model::from_bytes(&bytes).unwrap();
        sizes.push(bytes.len());
    }
    assert!(sizes[0] > sizes[1] && sizes[1] > sizes[2], "{sizes:?}");
    assert_eq!(
        trm_testkit::dir_entries(&models),
        ["model.f16", "model.f32", "model.int8"]
    );

    // The f32 file is exactly the run's EMA weights: trm-edge agrees with burn.
    let cfg = TrainConfig::read(&dir.join("config.toml")).unwrap();
    let model = load_state(&dir, &cfg, &train_device())
        .unwrap()
        .eval_model();
    let bytes = std::fs::read(models.join("model.f32")).unwrap();
    assert_eq!(bytes, pack_model(&model, DType::F32).unwrap());
    let data = trm_train::train::puzzles::read_pairs(
        &std::fs::read_dir(root.join("cache"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
        Some(3),
    )
    .unwrap();
    let err = agreement(&model, &bytes, &data, 4);
    eprintln!("trained tiny model: trm-edge f32 vs burn worst relative error {err:.2e}");
    assert!(err <= TOL, "{err}");

    // An output onto one of the run's own files is refused, and the file stays as it was.
    let before = std::fs::read(dir.join("checkpoint.safetensors")).unwrap();
    for args in [
        vec![
            "export",
            "--checkpoint",
            dir.to_str().unwrap(),
            "--dtype",
            "int8",
        ],
        vec!["data", "generate", "--count", "2", "--seed", "1"],
    ] {
        for file in ["checkpoint.safetensors", "config.toml"] {
            let out = dir.join(file);
            let run = Command::new(env!("CARGO_BIN_EXE_trm-train"))
                .args(&args)
                .args(["--out", out.to_str().unwrap()])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&run.stderr);
            assert!(!run.status.success(), "{args:?} {file}: {stderr}");
            assert!(stderr.contains("a file of the training run"), "{stderr}");
        }
    }
    assert!(std::fs::read(dir.join("checkpoint.safetensors")).unwrap() == before);
    TrainConfig::read(&dir.join("config.toml")).unwrap();

    // Neither source, or both, is a usage error.
    let run = Command::new(env!("CARGO_BIN_EXE_trm-train"))
        .args(["export", "--dtype", "f32", "--out", "x.trm"])
        .output()
        .unwrap();
    assert!(!run.status.success());
}
