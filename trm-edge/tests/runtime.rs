//! The runtime against a plain f64 reference written from the fixture README (§5), on small
//! random models of both variants; the solver's budget, policies, errors and determinism.

use std::collections::HashMap;

use trm_edge::format::{DType, Model, ModelConfig, TensorId, TensorKind, Variant};
use trm_edge::kernels::TILE;
use trm_edge::runtime::RunError;
use trm_edge::solver::{HaltPolicy, SolveOptions, Solver, StopReason, predict};
use trm_edge::sudoku::{Grid, parse};
use trm_testkit::models::{pack, random_tensors, tiny_config};

type Tensors = HashMap<TensorId, Vec<f64>>;

fn tensors_f64(t: &[(TensorId, [usize; 2], Vec<f32>)]) -> Tensors {
    t.iter()
        .map(|(id, _, d)| (*id, d.iter().map(|&v| v as f64).collect()))
        .collect()
}

fn get(t: &Tensors, kind: TensorKind, layer: u16) -> &[f64] {
    &t[&TensorId { kind, layer }]
}

/// `W v` for `W` `[out, in]` row-major.
fn linear(w: &[f64], v: &[f64]) -> Vec<f64> {
    w.chunks_exact(v.len())
        .map(|row| row.iter().zip(v).map(|(a, b)| a * b).sum())
        .collect()
}

fn rms(v: &mut [f64], eps: f64) {
    let ms = v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64;
    let inv = 1.0 / (ms + eps).sqrt();
    v.iter_mut().for_each(|x| *x *= inv);
}

fn swiglu_res(v: &mut [f64], gate_up: &[f64], down: &[f64], eps: f64) {
    let gu = linear(gate_up, v);
    let (g, u) = gu.split_at(gu.len() / 2);
    let a: Vec<f64> = g
        .iter()
        .zip(u)
        .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
        .collect();
    for (x, o) in v.iter_mut().zip(linear(down, &a)) {
        *x += o;
    }
    rms(v, eps);
}

fn block(cfg: &ModelConfig, t: &Tensors, layer: u16, h: &mut [Vec<f64>]) {
    let eps = cfg.rms_eps as f64;
    let (s_len, d) = (cfg.seq_total(), cfg.hidden);
    match cfg.variant {
        Variant::MlpT => {
            for c in 0..d {
                let mut col: Vec<f64> = h.iter().map(|r| r[c]).collect();
                swiglu_res(
                    &mut col,
                    get(t, TensorKind::MlpTGateUp, layer),
                    get(t, TensorKind::MlpTDown, layer),
                    eps,
                );
                h.iter_mut().zip(col).for_each(|(r, v)| r[c] = v);
            }
        }
        Variant::Attention => {
            let (nh, hd) = (cfg.num_heads, cfg.head_dim);
            let cos = get(t, TensorKind::RopeCos, 0);
            let sin = get(t, TensorKind::RopeSin, 0);
            let mut qkv: Vec<Vec<f64>> = h
                .iter()
                .map(|r| linear(get(t, TensorKind::AttnQkv, layer), r))
                .collect();
            for (p, row) in qkv.iter_mut().enumerate() {
                for head in 0..2 * nh {
                    let v = row[head * hd..(head + 1) * hd].to_vec();
                    for j in 0..hd {
                        let rot = if j < hd / 2 {
                            -v[j + hd / 2]
                        } else {
                            v[j - hd / 2]
                        };
                        row[head * hd + j] = v[j] * cos[p * hd + j] + rot * sin[p * hd + j];
                    }
                }
            }
            for i in 0..s_len {
                let mut out = vec![0.0; d];
                for head in 0..nh {
                    let q = &qkv[i][head * hd..(head + 1) * hd];
                    let mut sc: Vec<f64> = (0..s_len)
                        .map(|j| {
                            let k = &qkv[j][d + head * hd..d + (head + 1) * hd];
                            q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>() / (hd as f64).sqrt()
                        })
                        .collect();
                    let m = sc.iter().cloned().fold(f64::MIN, f64::max);
                    sc.iter_mut().for_each(|x| *x = (*x - m).exp());
                    let z: f64 = sc.iter().sum();
                    for (j, p) in sc.iter().enumerate() {
                        for e in 0..hd {
                            out[head * hd + e] += p / z * qkv[j][2 * d + head * hd + e];
                        }
                    }
                }
                let o = linear(get(t, TensorKind::AttnOut, layer), &out);
                h[i].iter_mut().zip(o).for_each(|(a, b)| *a += b);
                rms(&mut h[i], eps);
            }
        }
    }
    for r in h.iter_mut() {
        swiglu_res(
            r,
            get(t, TensorKind::MlpGateUp, layer),
            get(t, TensorKind::MlpDown, layer),
            eps,
        );
    }
}

/// The reference step: returns (logits `[L·V]`, q_halt) and updates the carry.
fn reference_step(
    cfg: &ModelConfig,
    t: &Tensors,
    x: &[Vec<f64>],
    z_h: &mut [Vec<f64>],
    z_l: &mut [Vec<f64>],
) -> (Vec<f64>, f64) {
    let f = |h: &mut [Vec<f64>]| {
        for layer in 0..cfg.layers as u16 {
            block(cfg, t, layer, h);
        }
    };
    for _ in 0..cfg.h_cycles {
        for _ in 0..cfg.l_cycles {
            for ((l, hh), xx) in z_l.iter_mut().zip(z_h.iter()).zip(x) {
                l.iter_mut()
                    .zip(hh)
                    .zip(xx)
                    .for_each(|((a, b), c)| *a += b + c);
            }
            f(z_l);
        }
        for (hh, l) in z_h.iter_mut().zip(z_l.iter()) {
            hh.iter_mut().zip(l).for_each(|(a, b)| *a += b);
        }
        f(z_h);
    }
    let logits = z_h[cfg.puzzle_emb_len..]
        .iter()
        .flat_map(|r| linear(get(t, TensorKind::LmHead, 0), r))
        .collect();
    let q = linear(get(t, TensorKind::QHeadWeight, 0), &z_h[0])[0]
        + get(t, TensorKind::QHeadBias, 0)[0];
    (logits, q)
}

fn rows(v: &[f32], d: usize) -> Vec<Vec<f64>> {
    v.chunks(d)
        .map(|r| r.iter().map(|&x| x as f64).collect())
        .collect()
}

#[test]
fn step_matches_the_f64_reference() {
    for variant in [Variant::MlpT, Variant::Attention] {
        let cfg = tiny_config(variant, 81, 11);
        let raw = random_tensors(&cfg, 7);
        let t = tensors_f64(&raw);
        let file = pack(&cfg, &raw, DType::F32);
        let model = Model::from_bytes(&file).unwrap();
        let n = model.state_len();
        let (mut x, mut z_h, mut z_l) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
        let mut logits = vec![0f32; model.logits_len()];
        let mut scratch = vec![0f32; model.scratch_len()];
        let tokens: Vec<u8> = (0..81).map(|i| (i * 7 % 11) as u8).collect();
        model.embed_input(&tokens, 1, &mut x).unwrap();
        // Reference embedding: √D · [row 1 of the puzzle table, zero-padded to P·D ; E[tok]].
        let d = cfg.hidden;
        let scale = (d as f64).sqrt();
        let pe = get(&t, TensorKind::PuzzleEmb, 0);
        let ndim = cfg.puzzle_emb_ndim;
        let mut x_ref = vec![0.0; n];
        x_ref[..ndim].copy_from_slice(&pe[ndim..2 * ndim]);
        for (j, &tok) in tokens.iter().enumerate() {
            let at = (cfg.puzzle_emb_len + j) * d;
            x_ref[at..at + d]
                .copy_from_slice(&get(&t, TensorKind::Embed, 0)[tok as usize * d..][..d]);
        }
        for (a, b) in x.iter().zip(&x_ref) {
            assert!((*a as f64 - b * scale).abs() < 1e-6);
        }
        model.reset_carry(&mut z_h, &mut z_l).unwrap();
        let x_rows = rows(&x, d);
        let (mut rh, mut rl) = (rows(&z_h, d), rows(&z_l, d));
        for step in 0..3 {
            let q = model
                .step(&x, &mut z_h, &mut z_l, &mut logits, &mut scratch)
                .unwrap();
            let (ref_logits, ref_q) = reference_step(&cfg, &t, &x_rows, &mut rh, &mut rl);
            let scale = ref_logits.iter().fold(1f64, |m, v| m.max(v.abs()));
            let err = logits
                .iter()
                .zip(&ref_logits)
                .fold(0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
            assert!(
                err / scale < 2e-5,
                "{variant:?} step {step}: logits error {err}"
            );
            assert!((q.q_halt as f64 - ref_q).abs() < 2e-5 * ref_q.abs().max(1.0));
            // Continue from the reference carry (teacher forcing), as the runtime allows.
            for (dst, src) in z_h.chunks_mut(d).zip(&rh) {
                dst.iter_mut().zip(src).for_each(|(a, b)| *a = *b as f32);
            }
            for (dst, src) in z_l.chunks_mut(d).zip(&rl) {
                dst.iter_mut().zip(src).for_each(|(a, b)| *a = *b as f32);
            }
        }
    }
}

const PUZZLE: &str =
    "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";

/// A model whose Q-head bias makes `q_halt` ≈ `bias` whatever the state.
fn model_with_halt_bias(variant: Variant, bias: f32) -> Vec<u8> {
    let cfg = tiny_config(variant, 81, 11);
    let mut raw = random_tensors(&cfg, 11);
    for (id, _, data) in raw.iter_mut() {
        match id.kind {
            TensorKind::QHeadWeight => data.iter_mut().for_each(|v| *v = 0.0),
            TensorKind::QHeadBias => data[0] = bias,
            _ => {}
        }
    }
    pack(&cfg, &raw, DType::I8)
}

#[test]
fn solver_budget_policies_and_determinism() {
    let puzzle = parse(PUZZLE).unwrap();
    for variant in [Variant::MlpT, Variant::Attention] {
        let never = model_with_halt_bias(variant, -3.0);
        let model = Model::from_bytes(&never).unwrap();
        let mut arena = vec![0f32; Solver::arena_len(&model)];
        let mut solver = Solver::new(&model, &mut arena).unwrap();
        let full = SolveOptions {
            budget: 3,
            policy: HaltPolicy::Full,
            puzzle_id: 0,
        };
        let a = solver.solve(&puzzle, &full).unwrap();
        assert_eq!((a.steps, a.reason), (3, StopReason::Budget));
        assert!((a.q.q_halt + 3.0).abs() < 1e-6);
        let b = solver.solve(&puzzle, &full).unwrap();
        assert_eq!(a, b, "deterministic");
        let q = solver
            .solve(
                &puzzle,
                &SolveOptions {
                    policy: HaltPolicy::Q,
                    ..full
                },
            )
            .unwrap();
        assert_eq!((q.steps, q.reason), (3, StopReason::Budget));
        assert_eq!(q.grid, a.grid);
        let check = solver
            .solve(
                &puzzle,
                &SolveOptions {
                    policy: HaltPolicy::Check,
                    ..full
                },
            )
            .unwrap();
        assert_eq!(check.valid, check.reason == StopReason::Solved);
        assert_eq!(
            solver.solve(&puzzle, &SolveOptions { budget: 0, ..full }),
            Err(RunError::ZeroBudget)
        );
        assert!(matches!(
            solver.solve(
                &puzzle,
                &SolveOptions {
                    puzzle_id: 5,
                    ..full
                }
            ),
            Err(RunError::PuzzleId { id: 5, count: 2 })
        ));

        let eager = model_with_halt_bias(variant, 2.0);
        let model = Model::from_bytes(&eager).unwrap();
        let mut solver = Solver::new(&model, &mut arena).unwrap();
        for policy in [HaltPolicy::Q, HaltPolicy::QCheck] {
            let s = solver
                .solve(&puzzle, &SolveOptions { policy, ..full })
                .unwrap();
            assert_eq!(s.steps, 1);
            assert!(matches!(s.reason, StopReason::QHalt | StopReason::Solved));
        }
        let s = solver.solve(&puzzle, &full).unwrap();
        assert_eq!(s.steps, 3);
    }
}

#[test]
fn caller_buffers_are_checked() {
    let cfg = tiny_config(Variant::MlpT, 81, 11);
    let file = pack(&cfg, &random_tensors(&cfg, 1), DType::F16);
    let model = Model::from_bytes(&file).unwrap();
    let n = model.state_len();
    let mut small = vec![0f32; Solver::arena_len(&model) - 1];
    assert!(matches!(
        Solver::new(&model, &mut small),
        Err(RunError::BufferSize {
            buffer: "arena",
            ..
        })
    ));
    let (x, mut z_h, mut z_l) = (vec![0f32; n], vec![0f32; n], vec![0f32; n - 1]);
    let mut logits = vec![0f32; model.logits_len()];
    let mut scratch = vec![0f32; model.scratch_len()];
    assert!(matches!(
        model.step(&x, &mut z_h, &mut z_l, &mut logits, &mut scratch),
        Err(RunError::BufferSize { buffer: "z_l", .. })
    ));
    let mut x = vec![0f32; n];
    let mut tokens = vec![1u8; 81];
    tokens[4] = 11;
    assert_eq!(
        model.embed_input(&tokens, 0, &mut x),
        Err(RunError::Token {
            position: 4,
            token: 11
        })
    );
    // A model that does not read 81 cells is not a Sudoku solver.
    let other = tiny_config(Variant::MlpT, 9, 11);
    let file = pack(&other, &random_tensors(&other, 1), DType::F32);
    let model = Model::from_bytes(&file).unwrap();
    let mut arena = vec![0f32; Solver::arena_len(&model)];
    assert!(matches!(
        Solver::new(&model, &mut arena),
        Err(RunError::NotSudoku)
    ));
}

#[test]
fn scratch_does_not_grow_with_expansion_times_sequence() {
    let mut cfg = tiny_config(Variant::MlpT, 81, 11);
    let base = {
        let file = pack(&cfg, &random_tensors(&cfg, 1), DType::I8);
        Model::from_bytes(&file).unwrap().scratch_len()
    };
    cfg.mlp_t_inter *= 4;
    cfg.mlp_inter *= 4;
    let file = pack(&cfg, &random_tensors(&cfg, 1), DType::I8);
    let grown = Model::from_bytes(&file).unwrap().scratch_len();
    // Only the inner widths of one tile of TILE rows or columns are added, not S × It.
    assert!(grown - base <= TILE * 2 * 3 * (cfg.mlp_t_inter / 4).max(cfg.mlp_inter / 4));
    // One token-mixing tile, plus the int8 work buffer (lane scales and a quantised tile of
    // the widest product, S = 83 columns) when tiles are wider than 1.
    let work = if TILE > 1 { TILE * (1 + 84 / 4) } else { 0 };
    assert!(base <= TILE * (2 * 16 + 2 * 83) + work);
}

#[test]
fn predictions_map_tokens_to_digits() {
    let mut logits = vec![0f32; 81 * 11];
    for (cell, row) in logits.chunks_mut(11).enumerate() {
        row[cell % 11] = 1.0;
    }
    let g = predict(&logits);
    for cell in 0..81 {
        let t = cell % 11;
        let want = if t >= 2 { t as u8 - 1 } else { 0 };
        assert_eq!(g.cells()[cell], want);
    }
    assert_eq!(predict(&[0.0; 5]), Grid::EMPTY);
}
