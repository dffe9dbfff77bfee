//! `trm-web`: the shipped int8 model (`models/sudoku-int8.trm`, embedded) solving Sudoku in a
//! browser with trm-edge's runtime, built for `wasm32-unknown-unknown`.
//!
//! The interface to JavaScript is a handful of plain exported functions and one byte buffer,
//! [`IO`], at a fixed address in linear memory (no bindings generator): JavaScript writes the
//! puzzle text there and reads JSON back from it.
//!
//! - `trm_io()`, `trm_io_len()`: the buffer's address and length;
//! - `trm_info()`: writes [`info_json`] (model, option names, defaults), returns its length;
//! - `trm_solve(len, budget, policy, attempts, source, select, seed)`: solves the puzzle text
//!   in the first `len` bytes of the buffer; `policy`, `source` and `select` index the name
//!   lists of `trm_info` (trm-edge's `solver::names`); `attempts` = 0 is a single run with
//!   the halting policy, `attempts` ≥ 1 test-time scaling as `trm-solve --attempts` (halting
//!   policy full). After every supervision step it writes [`step_json`] to the buffer and
//!   calls the imported `env.trm_on_step(len)`; at the end it writes [`outcome_json`] and
//!   returns its length, or writes an error message and returns minus its length.
//!
//! The options map onto trm-edge exactly as trm-solve maps its command line
//! ([`Request::run`]), so the answers equal `trm-solve --no-simd` for the same budget and
//! policy (wasm32 has only the scalar kernels; the browser test compares the two).

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU8, Ordering};

use trm_edge::format::Model;
use trm_edge::solver::attempts::{
    AttemptOptions, AttemptSolver, AttemptSource, DEFAULT_NOISE, Pick, Selection,
};
use trm_edge::solver::{HaltPolicy, SolveOptions, Solver, StepView, StopReason};
use trm_edge::sudoku::{Grid, find_conflict, parse};

/// Bytes aligned for the model reader's in-place tensor views.
#[repr(C, align(64))]
struct Aligned<T: ?Sized>(T);

/// The shipped int8 model.
static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../models/sudoku-int8.trm"));

/// Length of [`IO`].
pub const IO_LEN: usize = 4096;

/// The buffer shared with JavaScript: puzzle text in, JSON or an error message out. Atomic
/// bytes so that Rust touches it without `unsafe`; JavaScript reads and writes it only while
/// no exported function runs, or inside `trm_on_step`, after Rust has written it.
pub static IO: [AtomicU8; IO_LEN] = [const { AtomicU8::new(0) }; IO_LEN];

/// The embedded model's bytes.
pub fn model_bytes() -> &'static [u8] {
    &MODEL.0
}

/// The embedded model (validated: format, CRC-32, a Sudoku model).
pub fn model() -> Result<Model<'static>, String> {
    Model::from_bytes(model_bytes()).map_err(|e| format!("the embedded model is unusable: {e}"))
}

/// What to solve and how: `trm-solve`'s options.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Request {
    /// The givens.
    pub puzzle: Grid,
    /// Supervision steps (per attempt with `attempts`); `--budget`.
    pub budget: usize,
    /// `--halt` (single runs only).
    pub policy: HaltPolicy,
    /// `--attempts K`, `--attempt-source`, `--select`, `--seed`; `None`: a single run.
    pub attempts: Option<(usize, AttemptSource, Selection, u64)>,
}

/// The answer, as `trm-solve --format json` reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// The answer grid.
    pub grid: Grid,
    /// Supervision steps spent (over all attempts).
    pub steps: usize,
    /// Why it stopped (with attempts: `solved` when picked by the check, else `budget`).
    pub stop: StopReason,
    /// `q_halt` of the answer.
    pub q_halt: f32,
    /// Whether it passes the Sudoku check.
    pub valid: bool,
    /// With attempts: attempts run, how the answer was picked, the attempt it comes from.
    pub attempts: Option<(usize, Pick, Option<usize>)>,
}

impl Request {
    /// Solves on `model`, calling `on_step` after every supervision step.
    pub fn run(
        &self,
        model: &Model<'_>,
        on_step: impl FnMut(&StepView),
    ) -> Result<Outcome, String> {
        let mut on_step = on_step;
        let mut observe = |v: &StepView| {
            on_step(v);
            ControlFlow::Continue(())
        };
        let err = |e: &dyn std::fmt::Display| e.to_string();
        match self.attempts {
            None => {
                let mut arena = vec![0f32; Solver::arena_len(model)];
                let mut solver = Solver::new(model, &mut arena).map_err(|e| err(&e))?;
                let opts = SolveOptions {
                    budget: self.budget,
                    policy: self.policy,
                    puzzle_id: 0,
                };
                let s = solver
                    .solve_traced(&self.puzzle, &opts, observe)
                    .map_err(|e| err(&e))?;
                Ok(Outcome {
                    grid: s.grid,
                    steps: s.steps,
                    stop: s.reason,
                    q_halt: s.q.q_halt,
                    valid: s.valid,
                    attempts: None,
                })
            }
            Some((k, source, select, seed)) => {
                if self.policy != HaltPolicy::Full {
                    return Err(
                        "the halting policy applies to single runs; with attempts it is full"
                            .into(),
                    );
                }
                let opts = AttemptOptions {
                    steps_per_attempt: self.budget,
                    total_budget: k.saturating_mul(self.budget),
                    seed,
                    noise: DEFAULT_NOISE,
                    ..AttemptOptions::new(model, k, source, select)
                };
                let mut arena = vec![0f32; AttemptSolver::arena_len(model, source)];
                let mut solver = AttemptSolver::new(model, &mut arena).map_err(|e| err(&e))?;
                let s = solver
                    .solve_traced(&self.puzzle, &opts, &mut observe, &mut |_| {})
                    .map_err(|e| err(&e))?;
                Ok(Outcome {
                    grid: s.grid,
                    steps: s.total_steps,
                    stop: s.stop(),
                    q_halt: s.q_halt,
                    valid: s.valid,
                    attempts: Some((s.attempts, s.pick, s.attempt)),
                })
            }
        }
    }
}

/// Reads puzzle text (81 cells, `.` or `0` blank, whitespace and grid layout allowed);
/// conflicting givens are an error, as in every tool.
pub fn read_puzzle(text: &str) -> Result<Grid, String> {
    let grid = parse(text).map_err(|e| e.to_string())?;
    if let Some(c) = find_conflict(&grid) {
        return Err(format!("conflicting givens: {c}"));
    }
    Ok(grid)
}

/// An f32 as JSON: its shortest decimal form, `null` when not finite.
fn json_f32(v: f32) -> String {
    if v.is_finite() {
        v.to_string()
    } else {
        "null".into()
    }
}

/// `"a","b"` for a name list.
fn json_names(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(",")
}

/// The model and the option names: `{"model_bytes", "hidden", "budget", "kernels",
/// "policies", "sources", "selections"}`.
pub fn info_json(model: &Model<'_>) -> String {
    let cfg = model.config();
    format!(
        "{{\"model_bytes\":{},\"hidden\":{},\"budget\":{},\"kernels\":\"{}\",\"policies\":[{}],\"sources\":[{}],\"selections\":[{}]}}",
        model_bytes().len(),
        cfg.hidden,
        cfg.halt_max_steps,
        trm_edge::kernels::arch::kernel_set(),
        json_names(&HaltPolicy::NAMES),
        json_names(&AttemptSource::NAMES),
        json_names(&Selection::NAMES),
    )
}

/// One step: `{"attempt", "kind", "step", "total_steps", "grid", "q_halt", "valid"}` (the
/// keys of `trm-solve --trace`).
pub fn step_json(v: &StepView) -> String {
    format!(
        "{{\"attempt\":{},\"kind\":\"{}\",\"step\":{},\"total_steps\":{},\"grid\":\"{}\",\"q_halt\":{},\"valid\":{}}}",
        v.attempt,
        v.kind,
        v.step,
        v.total_steps,
        v.grid,
        json_f32(v.q.q_halt),
        v.valid
    )
}

/// The answer: `{"answer", "steps", "stop", "q_halt", "valid"}` plus `"attempts", "pick",
/// "attempt"` with attempts (the keys of `trm-solve --format json`).
pub fn outcome_json(o: &Outcome) -> String {
    let extra = match o.attempts {
        None => String::new(),
        Some((n, pick, attempt)) => format!(
            ",\"attempts\":{n},\"pick\":\"{pick}\",\"attempt\":{}",
            attempt.map_or("null".into(), |a| a.to_string())
        ),
    };
    format!(
        "{{\"answer\":\"{}\",\"steps\":{},\"stop\":\"{}\",\"q_halt\":{},\"valid\":{}{extra}}}",
        o.grid,
        o.steps,
        o.stop,
        json_f32(o.q_halt),
        o.valid
    )
}

/// The request of `trm_solve`'s arguments; errors name what is wrong.
#[allow(clippy::too_many_arguments)]
pub fn request(
    text: &str,
    budget: u32,
    policy: u32,
    attempts: u32,
    source: u32,
    select: u32,
    seed: u32,
) -> Result<Request, String> {
    fn pick<T: Copy>(all: &[T], i: u32, what: &str) -> Result<T, String> {
        all.get(i as usize)
            .copied()
            .ok_or_else(|| format!("no {what} number {i}"))
    }
    if budget == 0 {
        return Err("the budget must be at least 1 step".into());
    }
    Ok(Request {
        puzzle: read_puzzle(text)?,
        budget: budget as usize,
        policy: pick(&HaltPolicy::ALL, policy, "halting policy")?,
        attempts: if attempts == 0 {
            None
        } else {
            Some((
                attempts as usize,
                pick(&AttemptSource::ALL, source, "attempt source")?,
                pick(&Selection::ALL, select, "selection rule")?,
                u64::from(seed),
            ))
        },
    })
}

/// Writes `s` to [`IO`] (cut at its length) and returns the bytes written.
fn put(s: &str) -> i32 {
    let bytes = &s.as_bytes()[..s.len().min(IO_LEN)];
    for (slot, &b) in IO.iter().zip(bytes) {
        slot.store(b, Ordering::Relaxed);
    }
    bytes.len() as i32
}

/// The first `len` bytes of [`IO`] as text.
fn take(len: u32) -> String {
    let bytes: Vec<u8> = IO
        .iter()
        .take(len as usize)
        .map(|b| b.load(Ordering::Relaxed))
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "env")]
unsafe extern "C" {
    /// Called after every supervision step with the length of the step's JSON in [`IO`].
    // SAFETY: the page provides this import with this signature (an i32 argument, no
    // result); it only reads the buffer.
    safe fn trm_on_step(len: i32);
}

/// Hosts have no page to tell.
#[cfg(not(target_arch = "wasm32"))]
fn trm_on_step(_len: i32) {}

/// The address of [`IO`] in linear memory.
#[unsafe(no_mangle)]
pub extern "C" fn trm_io() -> usize {
    IO.as_ptr() as usize
}

/// The length of [`IO`].
#[unsafe(no_mangle)]
pub extern "C" fn trm_io_len() -> usize {
    IO_LEN
}

/// Writes [`info_json`] to [`IO`] and returns its length (minus the length of an error).
#[unsafe(no_mangle)]
pub extern "C" fn trm_info() -> i32 {
    match model() {
        Ok(m) => put(&info_json(&m)),
        Err(e) => -put(&e),
    }
}

/// Solves the puzzle text in the first `len` bytes of [`IO`] (module documentation).
#[unsafe(no_mangle)]
pub extern "C" fn trm_solve(
    len: u32,
    budget: u32,
    policy: u32,
    attempts: u32,
    source: u32,
    select: u32,
    seed: u32,
) -> i32 {
    let text = take(len);
    let result = model().and_then(|m| {
        request(&text, budget, policy, attempts, source, select, seed)?
            .run(&m, |v| trm_on_step(put(&step_json(v))))
    });
    match result {
        Ok(o) => put(&outcome_json(&o)),
        Err(e) => -put(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUZZLE: &str =
        "28.9..47.9...215...3.7.....5...3.26..4....7.....2...41.145.......9...1...2.......";

    #[test]
    fn the_embedded_model_loads_and_info_lists_the_names() {
        let m = model().unwrap();
        let info = info_json(&m);
        assert!(
            info.contains("\"policies\":[\"full\",\"q\",\"check\",\"q+check\"]"),
            "{info}"
        );
        assert!(
            info.contains("\"sources\":[\"aug\",\"noise\",\"steps\",\"mixed\"]"),
            "{info}"
        );
        assert!(info.contains(&format!("\"model_bytes\":{}", model_bytes().len())));
    }

    #[test]
    fn requests_are_checked() {
        let r = request(PUZZLE, 16, 2, 0, 0, 0, 0).unwrap();
        assert_eq!((r.policy, r.attempts), (HaltPolicy::Check, None));
        let r = request(PUZZLE, 3, 0, 4, 1, 2, 9).unwrap();
        assert_eq!(
            r.attempts,
            Some((4, AttemptSource::Noise, Selection::Vote, 9))
        );
        assert!(
            request(PUZZLE, 0, 0, 0, 0, 0, 0)
                .unwrap_err()
                .contains("budget")
        );
        assert!(
            request(PUZZLE, 1, 4, 0, 0, 0, 0)
                .unwrap_err()
                .contains("halting policy")
        );
        assert!(
            request(PUZZLE, 1, 0, 2, 4, 0, 0)
                .unwrap_err()
                .contains("attempt source")
        );
        assert!(request(&PUZZLE[..80], 1, 0, 0, 0, 0, 0).is_err());
        let conflict = format!("22{}", &PUZZLE[2..]);
        assert!(
            request(&conflict, 1, 0, 0, 0, 0, 0)
                .unwrap_err()
                .contains("conflicting")
        );
        // A 9-line layout reads as the one-line puzzle.
        let rows: Vec<&str> = (0..9).map(|r| &PUZZLE[9 * r..9 * r + 9]).collect();
        assert_eq!(read_puzzle(&rows.join("\n")), read_puzzle(PUZZLE));
    }

    #[test]
    fn exports_round_trip_through_the_buffer() {
        let n = put(PUZZLE);
        assert_eq!(take(n as u32), PUZZLE);
        let len = trm_solve(n as u32, 2, 0, 0, 0, 0, 0);
        assert!(len > 0);
        let out = take(len as u32);
        assert!(
            out.starts_with("{\"answer\":\"") && out.contains("\"steps\":2,"),
            "{out}"
        );
        let n = put("12");
        let e = trm_solve(n as u32, 2, 0, 0, 0, 0, 0);
        assert!(e < 0);
        assert!(take((-e) as u32).contains("81"), "{}", take((-e) as u32));
    }

    #[test]
    fn steps_are_reported_and_end_on_the_answer() {
        let m = model().unwrap();
        for attempts in [None, Some((2, AttemptSource::Aug, Selection::Q, 0))] {
            let r = Request {
                puzzle: read_puzzle(PUZZLE).unwrap(),
                budget: 2,
                policy: HaltPolicy::Full,
                attempts,
            };
            let mut steps = Vec::new();
            let o = r.run(&m, |v| steps.push(step_json(v))).unwrap();
            assert_eq!(steps.len(), o.steps);
            assert!(steps[0].starts_with("{\"attempt\":0,\"kind\":\"plain\",\"step\":1,"));
            if attempts.is_none() {
                assert!(steps[1].contains(&format!("\"grid\":\"{}\"", o.grid)));
            } else {
                assert!(steps[3].contains("\"kind\":\"aug 1\""), "{}", steps[3]);
                assert!(outcome_json(&o).contains("\"attempts\":2,\"pick\":\"q\""));
            }
        }
    }
}
