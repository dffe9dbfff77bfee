//! The training loop, with the official semantics (`pretrain.py` + the ACT wrapper):
//!
//! - one ACT call per optimiser step on a streaming batch: rows that halted after the previous
//!   call take the rows of the next batch from the sampler and restart from `(H_init, L_init)`,
//!   the others keep their carry (deep supervision across calls, up to N_sup steps);
//! - loss = stable-max CE + 0.5 · Q-halt BCE, divided by the global batch; gradients flow
//!   through the last recursion process only (inside the model);
//! - AdamATan2 on the weights, sign-SGD on the puzzle embedding, warm-up + cosine/constant
//!   learning rate, EMA of the weights after every step;
//! - periodic evaluation of the EMA weights on held-out puzzles with N_sup steps each.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::checkpoint::{
    AVERAGED_KEY, CHECKPOINT_FILE, SNAPSHOT_KEY, SNAPSHOTS_DIR, TrainState, WEIGHTS_FILE, snapshot,
};
use super::config::{Backend, TrainConfig};
use super::metrics::{
    EvalMetrics, IntervalSums, METRICS_FILE, MetricsLine, MetricsLog, StopReason, Summary,
    TrainMetrics,
};
use super::plots::{LEARNING_CURVES_PNG, learning_curves};
use super::puzzles::{Sampler, load_dataset, rows};
use crate::dataset::Split;
use crate::model::{
    AdamAtan2Config, Batch, GradSource, LrSchedule, Metrics, Mode, SafetensorsFile, SignSgdConfig,
    Trm, act_loss, sign_sgd_step,
};
use crate::progress::TrainProgress;

/// File name of the resolved configuration inside a run directory.
pub const CONFIG_FILE: &str = "config.toml";
/// File name of the final summary inside a run directory.
pub const REPORT_FILE: &str = "report.txt";

/// Refuses `path` as an output file when it is one of a training run's own files (its folder
/// holds a checkpoint): writing there would replace the run's state, config or log.
pub fn refuse_run_file(path: &Path) -> Result<()> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(());
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let own = [
        CHECKPOINT_FILE,
        WEIGHTS_FILE,
        CONFIG_FILE,
        METRICS_FILE,
        REPORT_FILE,
    ];
    if own.contains(&name) && dir.join(CHECKPOINT_FILE).is_file() {
        bail!(
            "{} is a file of the training run in {}; choose another --out",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// What to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The resolved configuration (for a resumed run: the saved one with any overrides).
    pub config: TrainConfig,
    /// The run directory.
    pub run_dir: PathBuf,
    /// Continue from the checkpoint in `run_dir` instead of starting afresh.
    pub resume: bool,
}

/// The CPU device with autodiff (burn-ndarray).
#[allow(deprecated)]
pub fn train_device() -> Device {
    Device::ndarray().autodiff()
}

/// The autodiff device of `backend`; an error when the binary was built without its feature.
pub fn device_for(backend: Backend) -> Result<Device> {
    match backend {
        Backend::Ndarray => Ok(train_device()),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice).autodiff()),
        #[cfg(feature = "cuda")]
        Backend::Cuda => Ok(Device::cuda(0).autodiff()),
        #[allow(unreachable_patterns)]
        other => {
            let name = format!("{other:?}").to_lowercase();
            bail!(
                "backend = \"{name}\" needs a build with that feature: \
                 cargo run -p trm-train --release --features {name} -- ..."
            )
        }
    }
}

/// The AdamATan2 settings of `c`.
pub fn adam_config(c: &TrainConfig) -> AdamAtan2Config {
    AdamAtan2Config::new()
        .with_weight_decay(c.train.weight_decay)
        .with_beta1(c.train.beta1)
        .with_beta2(c.train.beta2)
}

/// A run directory read whole by a command that writes its checkpoint elsewhere (`compact`,
/// `average`): the config as text (to be written back byte for byte), the checkpoint file and
/// the training state it restores to.
pub struct RunFiles {
    /// `config.toml` as read.
    pub config_text: String,
    /// `checkpoint.safetensors` as read.
    pub file: SafetensorsFile,
    /// The state the checkpoint restores to (restoring validates it completely).
    pub state: TrainState,
}

/// Reads the config and checkpoint of `run_dir` and restores the state, so that a damaged or
/// foreign checkpoint is refused before anything is written.
pub fn read_run(run_dir: &Path) -> Result<RunFiles> {
    let path = run_dir.join(CHECKPOINT_FILE);
    if !path.is_file() {
        bail!("{} has no {CHECKPOINT_FILE}", run_dir.display());
    }
    let config_path = run_dir.join(CONFIG_FILE);
    let config_text = fs::read_to_string(&config_path)
        .with_context(|| format!("{} is not a run directory", run_dir.display()))?;
    let config = TrainConfig::from_toml(&config_text)
        .with_context(|| format!("bad config {}", config_path.display()))?;
    let file = SafetensorsFile::read(&path)?;
    let state = restore(&file, &config, &train_device())
        .with_context(|| format!("restoring {}", path.display()))?;
    Ok(RunFiles {
        config_text,
        file,
        state,
    })
}

/// The training state of checkpoint `file` for the model of `config`, on `device`.
pub fn restore(
    file: &SafetensorsFile,
    config: &TrainConfig,
    device: &Device,
) -> Result<TrainState> {
    TrainState::from_file(
        file,
        &config.trm()?,
        adam_config(config),
        config.seed,
        device,
    )
}

/// Reads the checkpoint of `run_dir` for the model of `config`.
pub fn load_state(run_dir: &Path, config: &TrainConfig, device: &Device) -> Result<TrainState> {
    let path = run_dir.join(CHECKPOINT_FILE);
    restore(&SafetensorsFile::read(&path)?, config, device)
        .with_context(|| format!("restoring {}", path.display()))
}

/// The signal that asked the training loop to stop (0: none yet).
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The signal that stopped training, if one did ([`stop_on_signals`]).
pub fn stop_signal() -> Option<i32> {
    Some(STOP_SIGNAL.load(Ordering::SeqCst)).filter(|&s| s != 0)
}

/// Whether [`train`] should catch SIGINT and SIGTERM ([`stop_on_signals`]).
static CATCH_SIGNALS: AtomicBool = AtomicBool::new(false);

/// Makes SIGINT (Ctrl-C) and SIGTERM stop [`train`] gracefully once its data is ready: the
/// step under way finishes, the state is saved as a checkpoint, and `train` returns with
/// [`StopReason::Interrupted`]. Before that (generating or loading the data set, nothing to
/// save yet) and after a first signal (the default action again) a signal ends the process
/// at once. Without this (library use, tests) the signals keep their default action.
pub fn stop_on_signals() {
    CATCH_SIGNALS.store(true, Ordering::SeqCst);
}

/// Installs the handlers of [`stop_on_signals`].
fn catch_signals() {
    extern "C" fn on_signal(signal: libc::c_int) {
        // Async-signal-safe: one atomic store.
        STOP_SIGNAL.store(signal, Ordering::SeqCst);
    }
    #[cfg(unix)]
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `action` is fully initialised (zeroed, then the handler, an empty mask and
        // the flags set); the handler only stores to an atomic, which is async-signal-safe;
        // SA_RESETHAND restores the default action after the first delivery.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Trains (or continues) a run and returns its summary. Errors (including a non-finite loss)
/// leave the last good checkpoint in place. A new run that fails before its first checkpoint
/// (a bad data path, say) leaves nothing behind: the folder it created, with the config and
/// metrics files it wrote there, is removed again.
pub fn train(opts: &RunOptions) -> Result<Summary> {
    opts.config.validate()?;
    let dir = &opts.run_dir;
    let created = !dir.exists();
    crate::atomic::create_dir(dir)?;
    let result = train_in(opts);
    if result.is_err() && created && !dir.join(CHECKPOINT_FILE).exists() {
        for file in [CONFIG_FILE, METRICS_FILE] {
            let _ = fs::remove_file(dir.join(file));
        }
        // Only an empty folder goes: anything else in it was not this run's to remove.
        if fs::remove_dir(dir).is_ok() {
            return result.with_context(|| {
                format!("nothing was trained; {} was removed again", dir.display())
            });
        }
    }
    result
}

/// [`train`] in its existing run directory.
fn train_in(opts: &RunOptions) -> Result<Summary> {
    let start = Instant::now();
    let cfg = &opts.config;
    crate::model::fused::keep_freed_memory();
    let dir = &opts.run_dir;
    let device = device_for(cfg.backend)?;
    let trm = cfg.trm()?;

    let mut resumed_changes: Vec<String> = Vec::new();
    let mut state = if opts.resume {
        let path = dir.join(CHECKPOINT_FILE);
        let file = SafetensorsFile::read(&path)?;
        if let Some(steps) = file.metadata.get(AVERAGED_KEY) {
            bail!(
                "{} holds an average of checkpoints ({steps}; `trm-train average`), which is for \
                 eval and export; resume one of the runs it averages",
                dir.display()
            );
        }
        if file.metadata.contains_key(SNAPSHOT_KEY) {
            bail!(
                "{} holds a weight snapshot (`train.keep_every`: no optimiser state), which is \
                 for eval, export and `trm-train average`; resume the run directory it was kept in",
                dir.display()
            );
        }
        let mut state = restore(&file, cfg, &device)
            .with_context(|| format!("restoring {}", path.display()))?;
        let ema = state.set_ema_rate(cfg.train.ema_rate);
        let batch = state.fit_batch_size(cfg.train.global_batch_size);
        resumed_changes = [ema, batch].into_iter().flatten().collect();
        state
    } else {
        if dir.join(CHECKPOINT_FILE).exists() {
            bail!(
                "{} already holds a run; continue it with --resume {0} or choose another --out",
                dir.display()
            );
        }
        TrainState::fresh(
            &trm,
            adam_config(cfg),
            cfg.train.ema_rate,
            cfg.seed,
            &device,
        )
    };
    let log = MetricsLog::open(dir, opts.resume.then_some(state.step))?;

    let total = cfg.train.steps;
    let reporter = TrainProgress::new(state.step, total);
    reporter.line(&format!(
        "run {}: {} TRM ({} parameters), hidden {}, T={} n={} N_sup={}, batch {}, {} steps{}; {} threads",
        dir.display(),
        if trm.mlp_t { "MLP" } else { "attention" },
        parameter_count(&state.model),
        trm.hidden_size,
        trm.h_cycles,
        trm.l_cycles,
        trm.halt_max_steps,
        cfg.train.global_batch_size,
        total,
        if opts.resume {
            format!(", resuming at step {}", state.step)
        } else {
            String::new()
        },
        rayon::current_num_threads()
    ));
    for change in &resumed_changes {
        reporter.line(change);
    }
    let data = load_dataset(&cfg.data, &mut |s: &str| reporter.line(s))?;
    // Only now, with the data in hand: a resume whose overrides fail (a missing data file, say)
    // leaves the run's config as it was.
    let config_toml = cfg.to_toml();
    crate::atomic::write_bytes(&dir.join(CONFIG_FILE), config_toml.as_bytes())?;
    if CATCH_SIGNALS.load(Ordering::SeqCst) {
        catch_signals();
    }
    let eval_n = match cfg.train.eval_size {
        0 => data.test.len(),
        n => n.min(data.test.len()),
    };

    let schedule = LrSchedule::new(cfg.train.lr, total)
        .with_warmup_steps(cfg.train.warmup_steps)
        .with_min_ratio(cfg.train.lr_min_ratio)
        .with_decay_start(cfg.train.lr_decay_start);
    let batch_size = cfg.train.global_batch_size;
    let mut sampler = Sampler::new(&data.train, cfg.seed, state.data);
    let budget_s = cfg.max_minutes * 60.0;
    let first_step = state.step;
    let mut sums = IntervalSums::default();
    let mut train_seconds = 0.0;
    let mut last_eval: Option<EvalMetrics> = None;
    let mut last_train: Option<TrainMetrics> = None;
    let mut saved_step = opts.resume.then_some(state.step);
    let mut stopped = StopReason::Finished;
    let mut health = Health::default();

    while state.step < total {
        if stop_signal().is_some() {
            stopped = StopReason::Interrupted;
            break;
        }
        if budget_s > 0.0 && start.elapsed().as_secs_f64() >= budget_s {
            stopped = StopReason::TimeBudget;
            break;
        }
        let t0 = Instant::now();
        let step = state.step + 1;
        let lr = schedule.lr(step);
        let batch = sampler.next_batch(batch_size);
        let m = match train_step(&mut state, &batch, lr, cfg) {
            Ok(m) => m,
            Err(m) => {
                reporter.finish();
                let kept = kept_message(saved_step, dir);
                bail!(
                    "the loss is not finite at step {step} (lm_loss {}, q_halt_loss {}): training \
                     diverged and stopped; {kept}. Try a lower train.lr or a longer train.warmup_steps.",
                    m.lm_loss,
                    m.q_halt_loss
                );
            }
        };
        state.step = step;
        state.data = sampler.pos;
        let dt = t0.elapsed().as_secs_f64();
        train_seconds += dt;
        sums.add(&m, batch_size, dt);
        reporter.step(step);

        let last = step == total;
        let log_due = step % cfg.train.log_every == 0 || last;
        let eval_due = (cfg.train.eval_every > 0 && step % cfg.train.eval_every == 0) || last;
        if log_due || eval_due {
            let train = (sums.steps > 0).then(|| sums.averages());
            let eval = eval_due.then(|| evaluate(&state.eval_model(), &data.test, eval_n, cfg));
            if let Some(t) = &train {
                let eta = (total - step) as f64 * sums.seconds / sums.steps as f64;
                reporter.interval(step, lr, t, eta);
                last_train = Some(*t);
                health.interval(t.loss);
            }
            if let Some(e) = &eval {
                reporter.eval(step, e);
                last_eval = Some(*e);
            }
            log.append(&MetricsLine {
                step,
                lr,
                elapsed_s: start.elapsed().as_secs_f64(),
                train,
                eval,
            })?;
            sums = IntervalSums::default();
        }
        let ckpt_due = cfg.train.checkpoint_every > 0 && step % cfg.train.checkpoint_every == 0;
        let keep_due = cfg.train.keep_every > 0 && step % cfg.train.keep_every == 0;
        if (ckpt_due || keep_due || last)
            && save(&state, dir, &config_toml, saved_step, &health, &reporter)?
        {
            saved_step = Some(step);
            if keep_due {
                keep_snapshot(&state, dir, &config_toml)?;
            }
        }
    }

    if stopped == StopReason::Interrupted {
        // Save at once (no evaluation: whoever pressed Ctrl-C is waiting).
        if state.step > first_step
            && saved_step != Some(state.step)
            && save(&state, dir, &config_toml, saved_step, &health, &reporter)?
        {
            reporter.line(&format!(
                "interrupted: step {} saved in {}",
                state.step,
                dir.display()
            ));
        }
    } else if state.step > first_step && saved_step != Some(state.step) {
        // Stopped by the time budget between checkpoints: evaluate and save where it is.
        let e = evaluate(&state.eval_model(), &data.test, eval_n, cfg);
        reporter.eval(state.step, &e);
        log.append(&MetricsLine {
            step: state.step,
            lr: schedule.lr(state.step),
            elapsed_s: start.elapsed().as_secs_f64(),
            train: (sums.steps > 0).then(|| sums.averages()),
            eval: Some(e),
        })?;
        last_eval = Some(e);
        save(&state, dir, &config_toml, saved_step, &health, &reporter)?;
    }
    reporter.finish();
    let steps_this_run = state.step - first_step;
    let summary = Summary {
        run_dir: dir.clone(),
        step: state.step,
        total_steps: total,
        steps_this_run,
        stopped,
        seconds: start.elapsed().as_secs_f64(),
        steps_per_s: steps_this_run as f64 / train_seconds.max(1e-9),
        eval: last_eval,
        last_train,
    };
    write_report(&summary)?;
    Ok(summary)
}

/// Writes `report.txt` (the summary) and `plots/learning_curves.png` into the run directory.
fn write_report(summary: &Summary) -> Result<()> {
    let dir = &summary.run_dir;
    let report = dir.join(REPORT_FILE);
    crate::atomic::write_bytes(&report, summary.to_string().trim_start().as_bytes())?;
    let lines = MetricsLog::read(&dir.join(METRICS_FILE))?;
    let plots = dir.join("plots");
    fs::create_dir_all(&plots)?;
    learning_curves(&lines, &plots.join(LEARNING_CURVES_PNG))
}

/// One optimiser step on the streaming batch (official `train_batch`): one ACT call (rows that
/// halted take the rows of `batch`), stable-max + Q-halt loss over the global batch, backward
/// through the last recursion process, AdamATan2 at `lr` on the weights, sign-SGD on the
/// puzzle embedding, EMA update. Returns the step's metrics, or `Err` with them when the
/// loss is not finite (the state's weights are then left as they were).
pub fn train_step(
    state: &mut TrainState,
    batch: &Batch,
    lr: f64,
    cfg: &TrainConfig,
) -> std::result::Result<Metrics, Metrics> {
    let carry = state
        .carry
        .take()
        .unwrap_or_else(|| state.model.fresh_carry(batch));
    let (carry, out) = state
        .model
        .act_step(carry, batch, Mode::Train, &mut state.rng);
    let loss = act_loss(out.logits, out.q_halt, &carry);
    let m = loss.metrics;
    if !(m.lm_loss.is_finite() && m.q_halt_loss.is_finite()) {
        return Err(m);
    }
    let grads = loss
        .loss
        .div_scalar(cfg.train.global_batch_size as f64)
        .backward();
    let local_grad = out.puzzle_emb_local.as_ref().and_then(|l| l.grad(&grads));
    let puzzle_emb = state.model.puzzle_emb.clone();
    let model = state
        .opt
        .step(lr, state.model.clone(), GradSource::Autodiff(&grads));
    state.model = match (puzzle_emb, local_grad) {
        (Some(pe), Some(g)) => {
            let sgd = SignSgdConfig::new().with_weight_decay(cfg.train.puzzle_emb_weight_decay);
            let pe_lr = lr * cfg.train.puzzle_emb_lr / cfg.train.lr;
            let ids = &carry.current.puzzle_identifiers;
            model.with_puzzle_emb(sign_sgd_step(pe, g, ids, pe_lr, &sgd))
        }
        _ => model,
    };
    if let Some(ema) = &mut state.ema {
        ema.update(&state.model);
    }
    state.carry = Some(carry);
    Ok(m)
}

/// Largest weight magnitude a checkpoint may hold. Trained TRM weights stay within a few
/// units (the largest in the shipped run: 3.6 after 7,300 steps; AdamATan2 moves a weight by
/// at most about `lr` per step), so a value this large means training is blowing up.
pub const MAX_SANE_WEIGHT: f32 = 1e3;
/// An interval loss this many times the lowest one of the invocation means training blew up.
const LOSS_BLOWUP: f64 = 10.0;

/// What the loop knows about whether training is healthy.
#[derive(Debug, Default)]
struct Health {
    /// Lowest interval loss so far (this invocation).
    best: Option<f64>,
    /// The latest interval loss.
    last: Option<f64>,
}

impl Health {
    fn interval(&mut self, loss: f64) {
        self.last = Some(loss);
        if loss.is_finite() {
            self.best = Some(self.best.map_or(loss, |b| b.min(loss)));
        }
    }

    /// Why the latest loss says training blew up, if it does.
    fn loss_problem(&self) -> Option<String> {
        let (last, best) = (self.last?, self.best?);
        (!last.is_finite() || last > LOSS_BLOWUP * best).then(|| {
            format!("the loss is {last:.4}, more than {LOSS_BLOWUP}x its lowest ({best:.4})")
        })
    }
}

/// Writes the checkpoint when the state is good: finite weights (otherwise an error: training
/// diverged), no weight above [`MAX_SANE_WEIGHT`] and a loss that has not blown up (otherwise
/// the checkpoint of step `saved` stays, with a warning, and training goes on). Returns whether
/// it wrote.
fn save(
    state: &TrainState,
    dir: &Path,
    config_toml: &str,
    saved: Option<u64>,
    health: &Health,
    reporter: &TrainProgress,
) -> Result<bool> {
    let (largest, name) = state.largest_weight();
    if !largest.is_finite() {
        bail!(
            "the weights are not finite at step {} ({name}): training diverged and stopped; {}",
            state.step,
            kept_message(saved, dir)
        );
    }
    let problem = if largest > MAX_SANE_WEIGHT {
        Some(format!("{name} holds a weight of magnitude {largest:e}"))
    } else {
        health.loss_problem()
    };
    if let Some(problem) = problem {
        reporter.line(&format!(
            "warning: step {} not saved: {problem}; {}",
            state.step,
            kept_message(saved, dir)
        ));
        return Ok(false);
    }
    state.save(dir, config_toml)?;
    Ok(true)
}

/// Writes the [`snapshot`] of `state` and the run's config into `snapshots/step-N/` of `dir`
/// (`train.keep_every`), each file atomically.
fn keep_snapshot(state: &TrainState, dir: &Path, config_toml: &str) -> Result<()> {
    let out = dir.join(SNAPSHOTS_DIR).join(format!("step-{}", state.step));
    crate::atomic::create_dir(&out)?;
    snapshot(&state.to_file(config_toml)).write(out.join(CHECKPOINT_FILE))?;
    crate::atomic::write_bytes(&out.join(CONFIG_FILE), config_toml.as_bytes())
}

fn kept_message(saved: Option<u64>, dir: &Path) -> String {
    match saved {
        Some(s) => format!(
            "the last good checkpoint (step {s}) is kept in {}",
            dir.display()
        ),
        None => "no checkpoint was written yet".into(),
    }
}

/// Number of trainable parameters.
pub fn parameter_count(model: &Trm) -> usize {
    model
        .state_dict()
        .iter()
        .filter(|(n, _)| !n.ends_with("_init") && !n.contains("puzzle_emb"))
        .map(|(_, d)| d.num_elements())
        .sum()
}

/// Evaluates `model` on the first `n` examples of `split`, running N_sup steps on each
/// (official evaluation: no early halting), in batches of `train.eval_batch_size`.
pub fn evaluate(model: &Trm, split: &Split, n: usize, cfg: &TrainConfig) -> EvalMetrics {
    let start = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (mut exact, mut cells, mut q_ok, mut count) = (0i64, 0f64, 0i64, 0usize);
    let idx: Vec<usize> = (0..n).collect();
    for chunk in idx.chunks(cfg.train.eval_batch_size) {
        let batch = rows(split, chunk);
        let mut carry = model.fresh_carry(&batch);
        let mut last = None;
        for _ in 0..model.config.halt_max_steps {
            let (c, out) = model.act_step(carry, &batch, Mode::Eval, &mut rng);
            carry = c;
            last = Some(out);
        }
        let Some(out) = last else { break };
        let m = act_loss(out.logits, out.q_halt, &carry).metrics;
        exact += m.exact_accuracy;
        cells += m.accuracy as f64;
        q_ok += m.q_halt_accuracy;
        count += m.count as usize;
    }
    let div = count.max(1) as f64;
    EvalMetrics {
        puzzles: count,
        exact_accuracy: exact as f64 / div,
        cell_accuracy: cells / div,
        q_halt_accuracy: q_ok as f64 / div,
        seconds: start.elapsed().as_secs_f64(),
    }
}
