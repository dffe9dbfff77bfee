//! Golden parity tests of the burn TRM against the official PyTorch code.
//!
//! Every `*.safetensors` fixture in `$TRM_FIXTURES` (default `shared/fixtures/reference`) is
//! checked; the model config, training hyper-parameters and inputs come from the file itself.
//! The specification and the tolerance rationale are in that folder's `README.md` (§5–§8).
//! Run with `cargo test -p trm-train --release parity -- --nocapture` to see every measured error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use trm_train::model::layers::Rope;
use trm_train::model::optim::named_grads;
use trm_train::model::{
    AdamAtan2, AdamAtan2Config, Batch, Carry, GradSource, InnerCarry, Metrics, Mode,
    SafetensorsFile, SignSgdConfig, Trm, TrmConfig, act_loss, sign_sgd_step,
};

/// `debug.*` intermediates of step 1 (README §7: "they match to ~1e-6").
const TOL_DEBUG: f64 = 1e-5;
/// Eval logits / q, TRM-MLP (README §8: f32-vs-f64 teacher-forced ≤ 9e-5).
const TOL_LOGITS_MLP: f64 = 1e-3;
/// Eval logits / q, TRM-Att (f32-vs-f64 teacher-forced ≤ 3.1e-6).
const TOL_LOGITS_ATT: f64 = 1e-4;
/// Carry z_H / z_L, TRM-MLP (f32-vs-f64 teacher-forced ≤ 1.5e-4).
const TOL_Z_MLP: f64 = 2e-3;
/// Carry z_H / z_L, TRM-Att (f32-vs-f64 teacher-forced ≤ 4.8e-6).
const TOL_Z_ATT: f64 = 1e-4;
/// Chained (not teacher-forced) steps are compared while the recorded f32-vs-f64 divergence
/// (`tol.f32_vs_f64_maxabs.chained_logits`) stays below this; beyond it the recursion has
/// decorrelated (mlp_h64 from step 3 on, README §8).
const CHAINED_MAX_DIVERGENCE: f64 = 1e-2;
/// Chained steps use `max(base tolerance, CHAINED_FACTOR · recorded f32-vs-f64 divergence)`
/// (logits and z: `chained_logits` / `chained_z_H`; losses: `chained_q_halt`).
const CHAINED_FACTOR: f64 = 4.0;
/// Losses (absolute; lm_loss is a sum of B per-row means).
const TOL_LOSS: f64 = 1e-4;
/// `accuracy` metric (f32 sum of per-row fractions).
const TOL_ACCURACY: f64 = 1e-5;
/// Gradients: `|g − g_ref| ≤ TOL_GRAD_REL · max|g_ref|` per tensor (f32-vs-f64: 6.2e-5 / 2.9e-6).
const TOL_GRAD_REL: f64 = 1e-3;
/// Optimiser in isolation: `|p − p_ref| ≤ TOL_OPT · max(1, |p_ref|)`.
const TOL_OPT: f64 = 2e-7;
/// Adam moments in isolation: `|m − m_ref| ≤ TOL_MOMENT_REL · max|m_ref|` (+ same for v).
const TOL_MOMENT_REL: f64 = 1e-6;
/// RoPE tables computed in f32 here vs the exact PyTorch tables (`aux.rope.*`).
const TOL_ROPE: f64 = 1e-5;

/// All fixture files; empty (after a message) when absent locally, a failure under `CI=true`.
fn fixtures() -> Vec<PathBuf> {
    trm_testkit::fixture_files()
}

#[allow(deprecated)]
fn cpu() -> Device {
    Device::ndarray()
}

/// A fixture: its file, config, model (on `device`) and batch.
struct Fixture {
    name: String,
    file: SafetensorsFile,
    cfg: TrmConfig,
    batch: Batch,
    train: serde_json::Value,
}

impl Fixture {
    fn load(path: &Path) -> Self {
        let file = SafetensorsFile::read(path).unwrap();
        let cfg = TrmConfig::from_official_json(file.meta("config").unwrap()).unwrap();
        let train: serde_json::Value = serde_json::from_str(file.meta("train").unwrap()).unwrap();
        let ints = |k: &str| -> Vec<i32> { file.get(k).unwrap().try_to_vec::<i32>().unwrap() };
        let batch = Batch {
            inputs: ints("io.inputs"),
            labels: ints("io.labels"),
            puzzle_identifiers: ints("io.puzzle_identifiers"),
        };
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        Self {
            name,
            file,
            cfg,
            batch,
            train,
        }
    }

    /// The model with the fixture weights (`prefix` = "" or e.g. "train.updated.").
    fn model(&self, device: &Device, prefix: &str) -> Trm {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut dict: HashMap<String, TensorData> = self.file.tensors.clone();
        if !prefix.is_empty() {
            for (k, v) in &self.file.tensors {
                if let Some(name) = k.strip_prefix(prefix) {
                    dict.insert(name.to_string(), v.clone());
                }
            }
        }
        let mut model = self
            .cfg
            .init(&mut rng, device)
            .load_state_dict(&dict)
            .unwrap();
        if let (Some(_), Ok(cos), Ok(sin)) = (
            &model.rope,
            self.file.get("aux.rope.cos"),
            self.file.get("aux.rope.sin"),
        ) {
            model.rope = Some(Rope {
                cos: Tensor::from_data(cos.clone(), device),
                sin: Tensor::from_data(sin.clone(), device),
            });
        }
        model
    }

    fn tensor(&self, name: &str) -> &TensorData {
        self.file.get(name).unwrap()
    }

    fn f64s(&self, name: &str) -> Vec<f64> {
        to_f64(self.tensor(name))
    }

    fn scalar(&self, name: &str) -> f64 {
        self.f64s(name)[0]
    }

    fn hyper(&self, key: &str) -> f64 {
        self.train[key].as_f64().unwrap()
    }

    fn is_mlp(&self) -> bool {
        self.cfg.mlp_t
    }

    fn tol_logits(&self) -> f64 {
        if self.is_mlp() {
            TOL_LOGITS_MLP
        } else {
            TOL_LOGITS_ATT
        }
    }

    fn tol_z(&self) -> f64 {
        if self.is_mlp() { TOL_Z_MLP } else { TOL_Z_ATT }
    }

    fn adam_config(&self) -> AdamAtan2Config {
        let betas = self.train["betas"].as_array().unwrap();
        AdamAtan2Config::new()
            .with_weight_decay(self.hyper("weight_decay"))
            .with_beta1(betas[0].as_f64().unwrap())
            .with_beta2(betas[1].as_f64().unwrap())
    }

    fn grads_by_name(&self, prefix: &str) -> HashMap<String, TensorData> {
        self.file
            .tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|n| (n.to_string(), v.clone())))
            .collect()
    }
}

fn to_f64(d: &TensorData) -> Vec<f64> {
    match d.dtype() {
        burn::tensor::DType::Bool(_) => d
            .try_to_vec::<bool>()
            .unwrap()
            .into_iter()
            .map(|b| b as u8 as f64)
            .collect(),
        _ => d.clone().convert::<f64>().try_to_vec::<f64>().unwrap(),
    }
}

fn t64<const D: usize>(t: &Tensor<D>) -> Vec<f64> {
    to_f64(&t.clone().without_autodiff().into_data())
}

/// Collects the outcome of every comparison; fails once at the end with the full list.
#[derive(Default)]
struct Checks {
    failures: Vec<String>,
    count: usize,
}

impl Checks {
    /// `max|got − want| ≤ atol` (optionally `atol · scale(want)` per element).
    fn close(&mut self, label: &str, got: &[f64], want: &[f64], atol: f64) -> f64 {
        self.close_scaled(label, got, want, atol, |_| 1.0)
    }

    fn close_scaled(
        &mut self,
        label: &str,
        got: &[f64],
        want: &[f64],
        atol: f64,
        scale: impl Fn(f64) -> f64,
    ) -> f64 {
        self.count += 1;
        if got.len() != want.len() {
            self.failures
                .push(format!("{label}: length {} != {}", got.len(), want.len()));
            return f64::INFINITY;
        }
        let mut max_err = 0.0f64;
        let mut worst = 0.0f64;
        let mut ok = true;
        for (g, w) in got.iter().zip(want) {
            let e = (g - w).abs();
            let tol = atol * scale(*w);
            if e.is_nan() || e > tol {
                ok = false;
            }
            max_err = max_err.max(e);
            worst = worst.max(e / tol);
        }
        println!("  {label:<70} max err {max_err:.3e}  (tol {atol:.1e}, worst/tol {worst:.3})");
        if !ok {
            self.failures
                .push(format!("{label}: max err {max_err:.3e} > tol {atol:.1e}"));
        }
        max_err
    }

    fn equal(&mut self, label: &str, got: &[f64], want: &[f64]) {
        self.count += 1;
        if got != want {
            self.failures.push(format!("{label}: {got:?} != {want:?}"));
            println!("  {label:<70} MISMATCH");
        } else {
            println!("  {label:<70} exact");
        }
    }

    fn finish(self, what: &str) {
        assert!(
            self.failures.is_empty(),
            "{what}: {} of {} checks failed:\n{}",
            self.failures.len(),
            self.count,
            self.failures.join("\n")
        );
        println!("{what}: all {} checks passed", self.count);
    }
}

fn check_metrics(
    c: &mut Checks,
    fx: &Fixture,
    kind: &str,
    prefix: &str,
    m: &Metrics,
    tol_loss: f64,
) {
    let s = |k: &str| fx.scalar(&format!("{prefix}metrics.{k}"));
    c.equal(
        &format!(
            "{} {kind}{prefix}metrics.(count, exact, q_halt_acc, steps)",
            fx.name
        ),
        &[
            m.count as f64,
            m.exact_accuracy as f64,
            m.q_halt_accuracy as f64,
            m.steps as f64,
        ],
        &[
            s("count"),
            s("exact_accuracy"),
            s("q_halt_accuracy"),
            s("steps"),
        ],
    );
    c.close(
        &format!("{} {kind}{prefix}metrics.accuracy", fx.name),
        &[m.accuracy as f64],
        &[s("accuracy")],
        TOL_ACCURACY,
    );
    c.close(
        &format!("{} {kind}{prefix}metrics.lm_loss", fx.name),
        &[m.lm_loss],
        &[s("lm_loss")],
        tol_loss,
    );
    c.close(
        &format!("{} {kind}{prefix}metrics.q_halt_loss", fx.name),
        &[m.q_halt_loss as f64],
        &[s("q_halt_loss")],
        tol_loss,
    );
}

#[test]
fn parity_config_and_debug_intermediates() {
    let dev = cpu();
    for path in fixtures() {
        let fx = Fixture::load(&path);
        println!("== {} ({:?})", fx.name, fx.cfg);
        let mut c = Checks::default();
        let model = fx.model(&dev, "");

        // Parameter names and order as `model.parameters()`.
        let names: Vec<String> =
            serde_json::from_str(fx.file.meta("param_names").unwrap()).unwrap();
        assert_eq!(model.param_names(), names, "{}: param names/order", fx.name);
        let expected: usize = names.iter().map(|n| fx.tensor(n).num_elements()).sum();
        assert_eq!(model.num_params(), expected, "{}: parameter count", fx.name);

        if let Ok(cos) = fx.file.get("aux.rope.cos") {
            let own = Rope::new(
                fx.cfg.total_seq_len(),
                fx.cfg.head_dim(),
                fx.cfg.rope_theta,
                &dev,
            );
            c.close(
                "rope.cos (own f32 tables)",
                &t64(&own.cos),
                &to_f64(cos),
                TOL_ROPE,
            );
            c.close(
                "rope.sin (own f32 tables)",
                &t64(&own.sin),
                &fx.f64s("aux.rope.sin"),
                TOL_ROPE,
            );
        }

        let pe = model.puzzle_embedding(fx.batch.ids_tensor(&dev));
        let x = model.input_embeddings(fx.batch.inputs_tensor(&dev), pe);
        c.close(
            &format!("{} debug.input_embeddings", fx.name),
            &t64(&x),
            &fx.f64s("debug.input_embeddings"),
            TOL_DEBUG,
        );
        let init = model.initial_carry(fx.batch.batch_size());
        let b0 = model.l_level.layers[0].forward(
            init.z_l.clone().add(init.z_h.clone().add(x.clone())),
            model.rope.as_ref(),
        );
        c.close(
            &format!("{} debug.block0_out", fx.name),
            &t64(&b0),
            &fx.f64s("debug.block0_out"),
            TOL_DEBUG,
        );
        let l1 = model.l_level_call(init.z_l, init.z_h.add(x));
        c.close(
            &format!("{} debug.L_level_call1.z_L", fx.name),
            &t64(&l1),
            &fx.f64s("debug.L_level_call1.z_L"),
            TOL_DEBUG,
        );
        c.finish(&fx.name);
    }
}

/// Compares one eval step's outputs with `eval.stepNN.*`.
#[allow(clippy::too_many_arguments)]
fn check_eval_step(
    c: &mut Checks,
    fx: &Fixture,
    kind: &str,
    s: usize,
    carry: &Carry,
    out: &trm_train::model::StepOutput,
    tol_logits: f64,
    tol_z: f64,
    tol_loss: f64,
) {
    let p = format!("eval.step{s:02}.");
    let l = |k: &str| format!("{} {kind} {p}{k}", fx.name);
    c.close(
        &l("logits"),
        &t64(&out.logits),
        &fx.f64s(&format!("{p}logits")),
        tol_logits,
    );
    c.close(
        &l("q_halt"),
        &t64(&out.q_halt),
        &fx.f64s(&format!("{p}q_halt")),
        tol_logits,
    );
    c.close(
        &l("q_continue"),
        &t64(&out.q_continue),
        &fx.f64s(&format!("{p}q_continue")),
        tol_logits,
    );
    c.close(
        &l("z_H"),
        &t64(&carry.inner.z_h),
        &fx.f64s(&format!("{p}z_H")),
        tol_z,
    );
    c.close(
        &l("z_L"),
        &t64(&carry.inner.z_l),
        &fx.f64s(&format!("{p}z_L")),
        tol_z,
    );
    let halted: Vec<f64> = carry.halted.iter().map(|&h| h as u8 as f64).collect();
    let steps: Vec<f64> = carry.steps.iter().map(|&h| h as f64).collect();
    c.equal(&l("halted"), &halted, &fx.f64s(&format!("{p}halted")));
    c.equal(&l("steps"), &steps, &fx.f64s(&format!("{p}steps")));
    // The loss needs f64, which not every device has: compute it on the CPU.
    let loss = act_loss(
        out.logits.clone().to_device(&cpu()),
        out.q_halt.clone().to_device(&cpu()),
        carry,
    );
    let preds: Vec<f64> = loss.preds.iter().map(|&x| x as f64).collect();
    let want_preds = fx.f64s(&format!("{p}preds"));
    let mismatched = preds
        .iter()
        .zip(&want_preds)
        .filter(|(a, b)| a != b)
        .count();
    println!(
        "  {:<70} {mismatched} of {} differ",
        l("preds"),
        preds.len()
    );
    c.close(
        &l("loss"),
        &[to_f64(&loss.loss.clone().into_data())[0]],
        &[fx.scalar(&format!("{p}loss"))],
        tol_loss,
    );
    check_metrics(c, fx, &format!("{kind} "), &p, &loss.metrics, tol_loss);
}

#[test]
fn parity_eval_forward_chained_and_teacher_forced() {
    eval_forward_parity(&cpu());
}

/// The same eval-forward parity on burn-wgpu: built with `--features wgpu`, run with
/// `TRM_TEST_WGPU=1` (lavapipe, software Vulkan, works on CPU-only machines; see
/// `shared/EMBEDDED.md`). The loss is still computed on the CPU (it needs f64).
#[cfg(feature = "wgpu")]
#[test]
fn parity_eval_forward_wgpu() {
    if std::env::var("TRM_TEST_WGPU").as_deref() != Ok("1") {
        eprintln!("SKIPPED: set TRM_TEST_WGPU=1 to run the forward parity on burn-wgpu");
        return;
    }
    eval_forward_parity(&Device::wgpu(burn::tensor::DeviceKind::DefaultDevice));
}

/// Eval mode on `dev`: chained steps while the recursion is not chaotic, then every step
/// teacher-forced from the recorded carry (fixture README §8).
fn eval_forward_parity(dev: &Device) {
    let dev = dev.clone();
    for path in fixtures() {
        let fx = Fixture::load(&path);
        println!("== {}", fx.name);
        let mut c = Checks::default();
        let model = fx.model(&dev, "");
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let divergence = fx.f64s("tol.f32_vs_f64_maxabs.chained_logits");
        let div_z = fx.f64s("tol.f32_vs_f64_maxabs.chained_z_H");
        let div_q = fx.f64s("tol.f32_vs_f64_maxabs.chained_q_halt");
        let n_sup = fx.cfg.halt_max_steps;
        let b = fx.batch.batch_size();

        // Chained from a fresh carry, as long as the recursion is not chaotic.
        let mut carry = model.fresh_carry(&fx.batch);
        for s in 1..=n_sup {
            if divergence[s - 1] > CHAINED_MAX_DIVERGENCE {
                println!(
                    "  chained comparison stops at step {s} (recorded f32-vs-f64 divergence {:.2e})",
                    divergence[s - 1]
                );
                break;
            }
            let (next, out) = model.act_step(carry, &fx.batch, Mode::Eval, &mut rng);
            carry = next;
            let tl = fx.tol_logits().max(CHAINED_FACTOR * divergence[s - 1]);
            let tz = fx.tol_z().max(CHAINED_FACTOR * div_z[s - 1]);
            let tq = TOL_LOSS.max(CHAINED_FACTOR * div_q[s - 1]);
            check_eval_step(&mut c, &fx, "chained", s, &carry, &out, tl, tz, tq);
        }

        // Teacher forcing: the carry of step s−1 from the recording, one step, compare step s.
        for s in 2..=n_sup {
            let p = format!("eval.step{:02}.", s - 1);
            let carry = Carry {
                inner: InnerCarry {
                    z_h: Tensor::from_data(fx.tensor(&format!("{p}z_H")).clone(), &dev),
                    z_l: Tensor::from_data(fx.tensor(&format!("{p}z_L")).clone(), &dev),
                },
                steps: vec![(s - 1) as u32; b],
                halted: vec![false; b],
                current: fx.batch.clone(),
            };
            let (carry, out) = model.act_step(carry, &fx.batch, Mode::Eval, &mut rng);
            check_eval_step(
                &mut c,
                &fx,
                "teacher-forced",
                s,
                &carry,
                &out,
                fx.tol_logits(),
                fx.tol_z(),
                TOL_LOSS,
            );
        }
        c.finish(&fx.name);
    }
}

/// Runs one train call (autodiff) and checks it against `{prefix}*`; returns the model's own
/// gradients by name.
fn check_train_call(
    c: &mut Checks,
    fx: &Fixture,
    model: &Trm,
    carry: Carry,
    prefix: &str,
) -> HashMap<String, TensorData> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (carry, out) = model.act_step(carry, &fx.batch, Mode::Train, &mut rng);
    let loss = act_loss(out.logits.clone(), out.q_halt.clone(), &carry);
    let gbs = fx.hyper("global_batch_size");
    let scaled = loss.loss.clone().div_scalar(gbs);
    let l = |k: &str| format!("{} {prefix}{k}", fx.name);
    let f = |k: &str| fx.f64s(&format!("{prefix}{k}"));
    let tl = fx.tol_logits();
    c.close(&l("logits"), &t64(&out.logits), &f("logits"), tl);
    c.close(&l("q_halt"), &t64(&out.q_halt), &f("q_halt"), tl);
    c.close(
        &l("q_continue"),
        &t64(&out.q_continue),
        &f("q_continue"),
        tl,
    );
    c.close(&l("z_H"), &t64(&carry.inner.z_h), &f("z_H"), fx.tol_z());
    c.close(&l("z_L"), &t64(&carry.inner.z_l), &f("z_L"), fx.tol_z());
    let halted: Vec<f64> = carry.halted.iter().map(|&h| h as u8 as f64).collect();
    let steps: Vec<f64> = carry.steps.iter().map(|&h| h as f64).collect();
    c.equal(&l("halted"), &halted, &f("halted"));
    c.equal(&l("steps"), &steps, &f("steps"));
    c.close(&l("loss"), &t64(&loss.loss), &f("loss"), TOL_LOSS);
    c.close(
        &l("loss_scaled"),
        &t64(&scaled),
        &f("loss_scaled"),
        TOL_LOSS,
    );
    check_metrics(c, fx, "", prefix, &loss.metrics, TOL_LOSS);
    let ids: Vec<f64> = carry
        .current
        .puzzle_identifiers
        .iter()
        .map(|&i| i as f64)
        .collect();
    c.equal(&l("puzzle_emb.local_ids"), &ids, &f("puzzle_emb.local_ids"));

    let grads = scaled.backward();
    let own = named_grads(model, &grads);
    let names: Vec<String> = serde_json::from_str(fx.file.meta("param_names").unwrap()).unwrap();
    for name in &names {
        let want = f(&format!("grad.{name}"));
        let scale = want.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        let got = own
            .get(name)
            .map(to_f64)
            .unwrap_or_else(|| panic!("{}: no gradient for {name}", fx.name));
        c.close(
            &l(&format!("grad.{name}")),
            &got,
            &want,
            TOL_GRAD_REL * scale,
        );
    }
    let local = out
        .puzzle_emb_local
        .as_ref()
        .expect("train mode on an autodiff device returns the puzzle-embedding leaf");
    let want = f("grad.model.inner.puzzle_emb.local_weights");
    let scale = want.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    let got = local.grad(&grads).map(|g| t64(&g)).expect("local grad");
    c.close(
        &l("grad.model.inner.puzzle_emb.local_weights"),
        &got,
        &want,
        TOL_GRAD_REL * scale,
    );
    own
}

/// Checks AdamATan2 + sign-SGD fed with the *recorded* gradients of `{prefix}grad.*`:
/// parameters against `{prefix}updated.*` (and the moments against `train.adam.*` at t = 1).
fn check_optimizer(c: &mut Checks, fx: &Fixture, model: Trm, mut opt: AdamAtan2, prefix: &str) {
    let lr = fx.hyper("lr");
    let grads = fx.grads_by_name(&format!("{prefix}grad."));
    let local_grad: Tensor<2> = Tensor::from_data(
        fx.tensor(&format!(
            "{prefix}grad.model.inner.puzzle_emb.local_weights"
        ))
        .clone(),
        &cpu(),
    );
    let ids = fx
        .tensor(&format!("{prefix}puzzle_emb.local_ids"))
        .try_to_vec::<i32>()
        .unwrap();
    let pe = model.puzzle_emb.clone().expect("puzzle embedding");
    let updated = opt.step(lr, model, GradSource::Named(&grads));
    let names: Vec<String> = serde_json::from_str(fx.file.meta("param_names").unwrap()).unwrap();
    let sd: HashMap<String, TensorData> = updated.state_dict().into_iter().collect();
    for name in &names {
        let want = fx.f64s(&format!("{prefix}updated.{name}"));
        c.close_scaled(
            &format!("{} {prefix}updated.{name} (recorded grads)", fx.name),
            &to_f64(&sd[name]),
            &want,
            TOL_OPT,
            |w| w.abs().max(1.0),
        );
        if prefix == "train." {
            for (which, idx) in [("exp_avg", 0), ("exp_avg_sq", 1)] {
                let want = fx.f64s(&format!("train.adam.{which}.{name}"));
                let scale = want.iter().fold(0.0f64, |a, x| a.max(x.abs())).max(1e-30);
                let st = &opt.state[name];
                let got = t64(if idx == 0 { &st.0 } else { &st.1 });
                c.close(
                    &format!("{} train.adam.{which}.{name}", fx.name),
                    &got,
                    &want,
                    TOL_MOMENT_REL * scale,
                );
            }
        }
    }
    let sgd = SignSgdConfig::new().with_weight_decay(fx.hyper("puzzle_emb_weight_decay"));
    let new_pe = sign_sgd_step(pe, local_grad, &ids, fx.hyper("puzzle_emb_lr"), &sgd);
    c.close_scaled(
        &format!("{} {prefix}updated.model.inner.puzzle_emb.weights", fx.name),
        &t64(&new_pe),
        &fx.f64s(&format!("{prefix}updated.model.inner.puzzle_emb.weights")),
        TOL_OPT,
        |w| w.abs().max(1.0),
    );
}

#[test]
fn parity_train_step1_loss_and_gradients() {
    let dev = cpu().autodiff();
    for path in fixtures() {
        let fx = Fixture::load(&path);
        println!("== {}", fx.name);
        let mut c = Checks::default();
        let model = fx.model(&dev, "");
        let carry = model.fresh_carry(&fx.batch);
        let own = check_train_call(&mut c, &fx, &model, carry, "train.");

        // Own gradients through the optimiser: equal to the reference except where |g_ref| is
        // below the gradient tolerance (the update is ~ −lr·sign(g) at t = 1, README §8).
        let mut opt = AdamAtan2::new(fx.adam_config());
        let updated = opt.step(fx.hyper("lr"), model.clone(), GradSource::Named(&own));
        let sd: HashMap<String, TensorData> = updated.state_dict().into_iter().collect();
        for name in model.param_names() {
            let g_ref = fx.f64s(&format!("train.grad.{name}"));
            let gmax = g_ref.iter().fold(0.0f64, |a, x| a.max(x.abs()));
            let keep: Vec<bool> = g_ref
                .iter()
                .map(|g| g.abs() > 2.0 * TOL_GRAD_REL * gmax)
                .collect();
            let pick = |v: Vec<f64>| -> Vec<f64> {
                v.into_iter()
                    .zip(&keep)
                    .filter(|(_, k)| **k)
                    .map(|(x, _)| x)
                    .collect()
            };
            c.close_scaled(
                &format!(
                    "{} train.updated.{name} (own grads, |g| > 2e-3·max)",
                    fx.name
                ),
                &pick(to_f64(&sd[&name])),
                &pick(fx.f64s(&format!("train.updated.{name}"))),
                TOL_OPT,
                |w| w.abs().max(1.0),
            );
        }
        c.finish(&fx.name);
    }
}

#[test]
fn parity_optimizer_in_isolation() {
    let dev = cpu();
    for path in fixtures() {
        let fx = Fixture::load(&path);
        println!("== {}", fx.name);
        let mut c = Checks::default();
        // Step 1 from the initial weights and a fresh optimiser.
        let model = fx.model(&dev, "");
        check_optimizer(
            &mut c,
            &fx,
            model,
            AdamAtan2::new(fx.adam_config()),
            "train.",
        );
        // Step 2 from the step-1 weights and the recorded step-1 moments (t = 1).
        let model = fx.model(&dev, "train.updated.");
        check_optimizer(&mut c, &fx, model, step1_optimizer(&fx, &dev), "train2.");
        c.finish(&fx.name);
    }
}

/// AdamATan2 after step 1 as recorded (`train.adam.*`, t = 1).
fn step1_optimizer(fx: &Fixture, dev: &Device) -> AdamAtan2 {
    let mut opt = AdamAtan2::new(fx.adam_config());
    opt.t = 1;
    let names: Vec<String> = serde_json::from_str(fx.file.meta("param_names").unwrap()).unwrap();
    for name in names {
        let flat = |k: &str| -> Tensor<1> {
            let d = fx.tensor(&format!("train.adam.{k}.{name}")).clone();
            let n = d.num_elements();
            Tensor::<1>::from_data(TensorData::new(d.try_to_vec::<f32>().unwrap(), [n]), dev)
        };
        opt.state
            .insert(name.clone(), (flat("exp_avg"), flat("exp_avg_sq")));
    }
    opt
}

#[test]
fn parity_train_step2_continued_carry() {
    let dev = cpu().autodiff();
    for path in fixtures() {
        let fx = Fixture::load(&path);
        println!("== {}", fx.name);
        let mut c = Checks::default();
        let pe: Tensor<2> = Tensor::from_data(
            fx.tensor("train.updated.model.inner.puzzle_emb.weights")
                .clone(),
            &dev,
        );
        let model = fx.model(&dev, "train.updated.").with_puzzle_emb(pe);
        let inner = cpu();
        let carry = Carry {
            inner: InnerCarry {
                z_h: Tensor::from_data(fx.tensor("train.z_H").clone(), &inner),
                z_l: Tensor::from_data(fx.tensor("train.z_L").clone(), &inner),
            },
            steps: fx.f64s("train.steps").iter().map(|&s| s as u32).collect(),
            halted: fx.f64s("train.halted").iter().map(|&h| h != 0.0).collect(),
            current: fx.batch.clone(),
        };
        check_train_call(&mut c, &fx, &model, carry, "train2.");
        c.finish(&fx.name);
    }
}
