//! The step observers (`Solver::solve_traced`, `AttemptSolver::solve_traced`) on small packed
//! models: the same result as the plain solves, one view per supervision step that is what
//! that step predicts, and `Break` stops where it says.

use std::ops::ControlFlow;

use trm_edge::format::{DType, Model, Variant};
use trm_edge::solver::attempts::{
    AttemptKind, AttemptOptions, AttemptRecord, AttemptSolver, AttemptSource, Selection,
};
use trm_edge::solver::{HaltPolicy, SolveOptions, Solver, StepView, StopReason};
use trm_edge::sudoku::{check_answer, parse};
use trm_testkit::models::{pack, random_tensors, tiny_config};

const PUZZLE: &str =
    "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";

fn random_model(variant: Variant, seed: u64) -> Vec<u8> {
    let cfg = tiny_config(variant, 81, 11);
    pack(&cfg, &random_tensors(&cfg, seed), DType::I8)
}

#[test]
fn traced_solves_equal_plain_ones_and_show_every_step() {
    let puzzle = parse(PUZZLE).unwrap();
    for (variant, seed) in [(Variant::MlpT, 3), (Variant::Attention, 4)] {
        let bytes = random_model(variant, seed);
        let model = Model::from_bytes(&bytes).unwrap();
        let mut arena = vec![0f32; Solver::arena_len(&model)];
        let mut solver = Solver::new(&model, &mut arena).unwrap();
        for policy in HaltPolicy::ALL {
            let opts = SolveOptions {
                budget: 5,
                policy,
                puzzle_id: 0,
            };
            let plain = solver.solve(&puzzle, &opts).unwrap();
            let mut views: Vec<StepView> = Vec::new();
            let traced = solver
                .solve_traced(&puzzle, &opts, |v| {
                    views.push(*v);
                    ControlFlow::Continue(())
                })
                .unwrap();
            assert_eq!(traced, plain, "{variant:?} {policy}");
            assert_eq!(views.len(), plain.steps);
            for (i, v) in views.iter().enumerate() {
                assert_eq!((v.attempt, v.kind), (0, AttemptKind::Plain));
                assert_eq!((v.step, v.total_steps), (i + 1, i + 1));
                assert_eq!(v.valid, check_answer(&puzzle, &v.grid).is_ok());
                // The view of step k is what a solve with budget k answers.
                let k = solver
                    .solve(
                        &puzzle,
                        &SolveOptions {
                            budget: i + 1,
                            policy: HaltPolicy::Full,
                            puzzle_id: 0,
                        },
                    )
                    .unwrap();
                assert_eq!((v.grid, v.q, v.valid), (k.grid, k.q, k.valid));
            }
        }
    }
}

#[test]
fn break_stops_a_solve_at_that_step() {
    let puzzle = parse(PUZZLE).unwrap();
    let bytes = random_model(Variant::MlpT, 5);
    let model = Model::from_bytes(&bytes).unwrap();
    let mut arena = vec![0f32; Solver::arena_len(&model)];
    let mut solver = Solver::new(&model, &mut arena).unwrap();
    let opts = SolveOptions {
        budget: 6,
        policy: HaltPolicy::Full,
        puzzle_id: 0,
    };
    let mut seen = 0;
    let s = solver
        .solve_traced(&puzzle, &opts, |v| {
            seen += 1;
            if v.step == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!((s.steps, s.reason, seen), (2, StopReason::Stopped, 2));
    let two = solver
        .solve(&puzzle, &SolveOptions { budget: 2, ..opts })
        .unwrap();
    assert_eq!((s.grid, s.q, s.valid), (two.grid, two.q, two.valid));
    let last = solver
        .solve_traced(&puzzle, &SolveOptions { budget: 2, ..opts }, |_| {
            ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!((last.steps, last.reason), (1, StopReason::Stopped));
    // A break on the budget's last step: the budget is the reason.
    let end = solver
        .solve_traced(&puzzle, &SolveOptions { budget: 1, ..opts }, |_| {
            ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!((end.steps, end.reason), (1, StopReason::Budget));
}

#[test]
fn traced_attempts_equal_plain_ones_and_show_every_step() {
    let puzzle = parse(PUZZLE).unwrap();
    let bytes = random_model(Variant::MlpT, 6);
    let model = Model::from_bytes(&bytes).unwrap();
    for source in AttemptSource::ALL {
        for select in Selection::ALL {
            let opts = AttemptOptions {
                steps_per_attempt: 3,
                total_budget: 10,
                seed: 7,
                ..AttemptOptions::new(&model, 4, source, select)
            };
            let mut arena = vec![0f32; AttemptSolver::arena_len(&model, source)];
            let mut solver = AttemptSolver::new(&model, &mut arena).unwrap();
            let mut plain_records = Vec::new();
            let plain = solver
                .solve_observed(&puzzle, &opts, &mut |r| plain_records.push(*r))
                .unwrap();
            let mut views: Vec<StepView> = Vec::new();
            let mut records: Vec<AttemptRecord> = Vec::new();
            let traced = solver
                .solve_traced(
                    &puzzle,
                    &opts,
                    &mut |v| {
                        views.push(*v);
                        ControlFlow::Continue(())
                    },
                    &mut |r| records.push(*r),
                )
                .unwrap();
            let what = format!("{source} {select}");
            assert_eq!(traced, plain, "{what}");
            assert_eq!(records, plain_records, "{what}");
            let ran: usize = records.iter().map(|r| r.steps).sum();
            assert_eq!(views.len(), ran, "{what}");
            for (i, v) in views.iter().enumerate() {
                assert_eq!(v.total_steps, i + 1, "{what}");
                assert_eq!(v.valid, check_answer(&puzzle, &v.grid).is_ok());
            }
            // Each attempt's views run 1..=steps and end on its record's answer.
            let mut rest = &views[..];
            for r in &records {
                let (mine, later) = rest.split_at(r.steps);
                rest = later;
                for (k, v) in mine.iter().enumerate() {
                    assert_eq!((v.attempt, v.kind, v.step), (r.index, r.kind, k + 1));
                }
                let last = mine.last().unwrap();
                assert_eq!(
                    (last.grid, last.q.q_halt, last.valid),
                    (r.grid, r.q_halt, r.valid)
                );
            }
        }
    }
}

#[test]
fn break_ends_the_attempt_search() {
    let puzzle = parse(PUZZLE).unwrap();
    let bytes = random_model(Variant::MlpT, 8);
    let model = Model::from_bytes(&bytes).unwrap();
    let opts = AttemptOptions {
        steps_per_attempt: 3,
        total_budget: 12,
        ..AttemptOptions::new(&model, 4, AttemptSource::Aug, Selection::Q)
    };
    let mut arena = vec![0f32; AttemptSolver::arena_len(&model, opts.source)];
    let mut solver = AttemptSolver::new(&model, &mut arena).unwrap();
    let mut records = Vec::new();
    let s = solver
        .solve_traced(
            &puzzle,
            &opts,
            &mut |v| {
                if v.total_steps == 5 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
            &mut |r| records.push(*r),
        )
        .unwrap();
    assert_eq!((s.total_steps, s.attempts), (5, 2));
    assert_eq!(records.iter().map(|r| r.steps).collect::<Vec<_>>(), [3, 2]);
}
