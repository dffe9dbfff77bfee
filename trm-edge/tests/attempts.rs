//! The multi-attempt solver (`solver::attempts`) on small packed models: attempt 0 is the
//! single solver, budgets hold, the sources are what they claim (one chain for `Steps`, the
//! pure sources' draws for `Mixed`, answers mapped back for `Aug`), determinism, errors.

use proptest::prelude::*;
use trm_edge::format::{DType, Model, ModelConfig, Variant};
use trm_edge::runtime::RunError;
use trm_edge::solver::attempts::{
    AttemptError, AttemptKind, AttemptOptions, AttemptRecord, AttemptSolution, AttemptSolver,
    AttemptSource, Pick, Selection, augmentation,
};
use trm_edge::solver::{HaltPolicy, SolveOptions, Solver};
use trm_edge::sudoku::{Grid, check_answer, parse};
use trm_testkit::models::{self, pack, random_tensors, tiny_config};

const PUZZLE: &str =
    "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";
const SOLUTION: &str =
    "534678912672195348198342567859761423426853791713924856961537284287419635345286179";

const SOURCES: [AttemptSource; 4] = [
    AttemptSource::Aug,
    AttemptSource::Noise,
    AttemptSource::Steps,
    AttemptSource::Mixed,
];
const RULES: [Selection; 3] = [Selection::Check, Selection::Q, Selection::Vote];

fn random_model(variant: Variant, seed: u64) -> Vec<u8> {
    let cfg = tiny_config(variant, 81, 11);
    pack(&cfg, &random_tensors(&cfg, seed), DType::F32)
}

/// A model that answers its input (trm-testkit's echo model at hidden 16): a full grid comes
/// back as it is, blanks stay blank. `q_halt` is `q_bias`.
fn echo_model(q_bias: f32) -> Vec<u8> {
    let cfg = ModelConfig {
        hidden: 16,
        num_heads: 2,
        head_dim: 8,
        puzzle_emb_ndim: 16,
        ..tiny_config(Variant::MlpT, 81, 11)
    };
    models::echo_model(&cfg, q_bias)
}

fn run(
    model: &Model<'_>,
    puzzle: &Grid,
    opts: &AttemptOptions,
) -> Result<(AttemptSolution, Vec<AttemptRecord>), AttemptError> {
    let mut arena = vec![0f32; AttemptSolver::arena_len(model, opts.source)];
    let mut solver = AttemptSolver::new(model, &mut arena)?;
    let mut records = Vec::new();
    let s = solver.solve_observed(puzzle, opts, &mut |r| records.push(*r))?;
    Ok((s, records))
}

fn opts(
    model: &Model<'_>,
    k: usize,
    source: AttemptSource,
    select: Selection,
    n: usize,
) -> AttemptOptions {
    AttemptOptions {
        steps_per_attempt: n,
        total_budget: k * n,
        seed: 7,
        ..AttemptOptions::new(model, k, source, select)
    }
}

#[test]
fn attempt_zero_equals_the_single_solver() {
    let puzzle = parse(PUZZLE).unwrap();
    let solution = parse(SOLUTION).unwrap();
    for variant in [Variant::MlpT, Variant::Attention] {
        let bytes = random_model(variant, 3);
        let model = Model::from_bytes(&bytes).unwrap();
        let mut arena = vec![0f32; Solver::arena_len(&model)];
        for p in [puzzle, solution] {
            for select in RULES {
                let policy = if select == Selection::Check {
                    HaltPolicy::Check
                } else {
                    HaltPolicy::Full
                };
                let single = Solver::new(&model, &mut arena)
                    .unwrap()
                    .solve(
                        &p,
                        &SolveOptions {
                            budget: 3,
                            policy,
                            puzzle_id: 0,
                        },
                    )
                    .unwrap();
                for source in SOURCES {
                    let (s, recs) = run(&model, &p, &opts(&model, 1, source, select, 3)).unwrap();
                    assert_eq!(recs.len(), 1);
                    assert_eq!(recs[0].kind, AttemptKind::Plain);
                    assert_eq!(s.grid, single.grid, "{variant:?} {source:?} {select:?}");
                    assert_eq!(s.total_steps, single.steps);
                    assert_eq!(s.q_halt.to_bits(), single.q.q_halt.to_bits());
                    assert_eq!(s.valid, single.valid);
                    assert_eq!(recs[0].grid, single.grid);
                }
            }
        }
    }
}

#[test]
fn steps_source_is_one_chain_and_the_longer_single_run() {
    let puzzle = parse(PUZZLE).unwrap();
    let bytes = random_model(Variant::MlpT, 4);
    let model = Model::from_bytes(&bytes).unwrap();
    let (_, recs) = run(
        &model,
        &puzzle,
        &opts(&model, 4, AttemptSource::Steps, Selection::Vote, 2),
    )
    .unwrap();
    let mut arena = vec![0f32; Solver::arena_len(&model)];
    let mut solver = Solver::new(&model, &mut arena).unwrap();
    for (k, r) in recs.iter().enumerate() {
        let long = solver
            .solve(
                &puzzle,
                &SolveOptions {
                    budget: 2 * (k + 1),
                    policy: HaltPolicy::Full,
                    puzzle_id: 0,
                },
            )
            .unwrap();
        assert_eq!(r.grid, long.grid, "segment {k}");
        assert_eq!(r.q_halt.to_bits(), long.q.q_halt.to_bits(), "segment {k}");
        let expected = if k == 0 {
            AttemptKind::Plain
        } else {
            AttemptKind::Continue(k as u32)
        };
        assert_eq!(r.kind, expected);
    }
}

#[test]
fn mixed_attempts_are_the_pure_sources_attempts() {
    let puzzle = parse(PUZZLE).unwrap();
    let bytes = random_model(Variant::MlpT, 5);
    let model = Model::from_bytes(&bytes).unwrap();
    let records = |source| {
        run(
            &model,
            &puzzle,
            &opts(&model, 10, source, Selection::Vote, 2),
        )
        .unwrap()
        .1
    };
    let (aug, noise, steps, mixed) = (
        records(AttemptSource::Aug),
        records(AttemptSource::Noise),
        records(AttemptSource::Steps),
        records(AttemptSource::Mixed),
    );
    assert_eq!(mixed.len(), 10);
    let mut seen = [0usize; 3];
    for r in &mixed {
        let pure = match r.kind {
            AttemptKind::Plain => &steps[0],
            AttemptKind::Aug(j) => &aug[j as usize],
            AttemptKind::Noise(j) => &noise[j as usize],
            AttemptKind::Continue(j) => &steps[j as usize],
        };
        match r.kind {
            AttemptKind::Aug(_) => seen[0] += 1,
            AttemptKind::Noise(_) => seen[1] += 1,
            AttemptKind::Continue(_) => seen[2] += 1,
            AttemptKind::Plain => {}
        }
        assert_eq!(
            AttemptRecord {
                index: r.index,
                ..*pure
            },
            *r
        );
    }
    assert_eq!(seen, [3, 3, 3]);
    // The sources differ from one another (else the test above proves little).
    assert_ne!(aug[1].q_halt, noise[1].q_halt);
    assert_ne!(noise[1].q_halt, steps[1].q_halt);
}

#[test]
fn augmented_answers_are_mapped_back() {
    let puzzle = parse(PUZZLE).unwrap();
    let solution = parse(SOLUTION).unwrap();
    let bytes = echo_model(-1.0);
    let model = Model::from_bytes(&bytes).unwrap();
    // The echo model answers each augmented puzzle with itself: mapped back, the puzzle.
    let (s, recs) = run(
        &model,
        &puzzle,
        &opts(&model, 6, AttemptSource::Aug, Selection::Vote, 2),
    )
    .unwrap();
    assert_eq!(recs.len(), 6);
    let syms: Vec<_> = (1..6).map(|n| augmentation(7, n)).collect();
    assert!(syms.windows(2).all(|w| w[0] != w[1]), "distinct symmetries");
    for r in &recs {
        assert_eq!(r.grid, puzzle, "attempt {}", r.index);
        assert!(!r.valid && r.first_valid.is_none());
    }
    assert_eq!((s.pick, s.grid, s.valid), (Pick::Vote, puzzle, false));
    assert_eq!(s.total_steps, 12);
    // A solved grid comes back valid from every augmentation, at the first step.
    let (_, recs) = run(
        &model,
        &solution,
        &opts(&model, 6, AttemptSource::Aug, Selection::Q, 2),
    )
    .unwrap();
    for r in &recs {
        assert_eq!(r.grid, solution);
        assert_eq!(r.first_valid.map(|f| f.step), Some(1));
    }
    // Check stops at the first valid step of attempt 0.
    let (s, recs) = run(
        &model,
        &solution,
        &opts(&model, 6, AttemptSource::Mixed, Selection::Check, 2),
    )
    .unwrap();
    assert_eq!((recs.len(), s.total_steps, s.attempts), (1, 1, 1));
    assert_eq!((s.pick, s.attempt, s.valid), (Pick::Check, Some(0), true));
    assert!(check_answer(&solution, &s.grid).is_ok());
}

#[test]
fn noise_zero_is_the_plain_run_and_seeds_are_deterministic() {
    let puzzle = parse(PUZZLE).unwrap();
    let bytes = random_model(Variant::MlpT, 6);
    let model = Model::from_bytes(&bytes).unwrap();
    let base = opts(&model, 4, AttemptSource::Noise, Selection::Vote, 2);
    let (_, quiet) = run(&model, &puzzle, &AttemptOptions { noise: 0.0, ..base }).unwrap();
    for r in &quiet[1..] {
        assert_eq!(
            (r.grid, r.q_halt.to_bits()),
            (quiet[0].grid, quiet[0].q_halt.to_bits())
        );
    }
    let (a, ra) = run(&model, &puzzle, &base).unwrap();
    let (b, rb) = run(&model, &puzzle, &base).unwrap();
    assert_eq!((a, &ra), (b, &rb), "same seed, same result");
    assert!(ra[1..].iter().all(|r| r.q_halt != quiet[0].q_halt));
    let (_, rc) = run(&model, &puzzle, &AttemptOptions { seed: 8, ..base }).unwrap();
    assert_ne!(ra[1].q_halt, rc[1].q_halt, "another seed, other draws");
    assert_eq!(ra[0], rc[0], "attempt 0 does not depend on the seed");
    assert_ne!(augmentation(7, 1), augmentation(8, 1));
}

#[test]
fn bad_options_are_typed_errors() {
    let puzzle = parse(PUZZLE).unwrap();
    let bytes = random_model(Variant::MlpT, 8);
    let model = Model::from_bytes(&bytes).unwrap();
    let base = opts(&model, 2, AttemptSource::Aug, Selection::Q, 2);
    let err = |o: AttemptOptions| run(&model, &puzzle, &o).unwrap_err();
    assert_eq!(
        err(AttemptOptions {
            attempts: 0,
            ..base
        }),
        AttemptError::NoAttempts
    );
    for (steps, total) in [(0, 4), (2, 0)] {
        let o = AttemptOptions {
            steps_per_attempt: steps,
            total_budget: total,
            ..base
        };
        assert_eq!(err(o), AttemptError::Run(RunError::ZeroBudget));
    }
    for noise in [f32::NAN, -0.1, f32::INFINITY] {
        assert_eq!(
            err(AttemptOptions { noise, ..base }),
            AttemptError::BadNoise
        );
    }
    // Mixed needs two more state buffers than the single solver.
    let mut arena = vec![0f32; Solver::arena_len(&model)];
    let mut solver = AttemptSolver::new(&model, &mut arena).unwrap();
    let mixed = AttemptOptions {
        source: AttemptSource::Mixed,
        ..base
    };
    assert!(matches!(
        solver.solve(&puzzle, &mixed),
        Err(AttemptError::Run(RunError::BufferSize {
            buffer: "arena",
            ..
        }))
    ));
    assert!(solver.solve(&puzzle, &base).is_ok());
    let mut short = vec![0f32; Solver::arena_len(&model) - 1];
    assert!(AttemptSolver::new(&model, &mut short).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Whatever K, N, budget, source, rule and seed: the steps spent never exceed the budget,
    /// equal the observed attempts' steps, and q/vote spend exactly min(K·N, budget).
    #[test]
    fn total_steps_never_exceed_the_budget(
        k in 1usize..7,
        n in 1usize..4,
        budget in 1usize..20,
        source in 0usize..4,
        rule in 0usize..3,
        seed in any::<u64>(),
        solved in any::<bool>(),
    ) {
        let bytes = if solved { echo_model(0.5) } else { random_model(Variant::MlpT, 9) };
        let model = Model::from_bytes(&bytes).unwrap();
        let puzzle = parse(if solved { SOLUTION } else { PUZZLE }).unwrap();
        let o = AttemptOptions {
            attempts: k,
            steps_per_attempt: n,
            total_budget: budget,
            seed,
            ..AttemptOptions::new(&model, k, SOURCES[source], RULES[rule])
        };
        let (s, recs) = run(&model, &puzzle, &o).unwrap();
        prop_assert!(s.total_steps <= budget);
        prop_assert_eq!(s.total_steps, recs.iter().map(|r| r.steps).sum::<usize>());
        prop_assert_eq!(s.attempts, recs.len());
        prop_assert!(recs.len() <= k && recs.iter().all(|r| (1..=n).contains(&r.steps)));
        if RULES[rule] == Selection::Check && solved {
            prop_assert_eq!((s.total_steps, s.pick), (1, Pick::Check));
        } else if RULES[rule] != Selection::Check {
            prop_assert_eq!(s.total_steps, (k * n).min(budget));
        }
    }
}
