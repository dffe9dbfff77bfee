//! Helpers shared by the kernel tests (compiled for tests only).

use super::f16::f32_to_f16;
use super::{TILE, q8};
use std::vec::Vec;

/// A deterministic stream of values in `[-1, 1)` (xorshift64 of `seed | 1`).
pub(crate) fn uniform(seed: u64) -> impl FnMut() -> f32 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// `bytes` behind `offset` filler bytes, so that `&result[offset..]` starts misaligned.
pub(crate) fn shifted(bytes: &[u8], offset: usize) -> Vec<u8> {
    let mut v = std::vec![0xa5u8; offset];
    v.extend_from_slice(bytes);
    v
}

/// `w` as little-endian f32 bytes, binary16 bytes, and int8 values `(v · q_scale) as i8`.
pub(crate) fn encodings(w: &[f32], q_scale: f32) -> [Vec<u8>; 3] {
    [
        w.iter().flat_map(|a| a.to_le_bytes()).collect(),
        w.iter()
            .flat_map(|a| f32_to_f16(*a).to_le_bytes())
            .collect(),
        w.iter().map(|a| (a * q_scale) as i8 as u8).collect(),
    ]
}

/// Random activations for the int8 kernels: uniform in `[-3, 3)` with, every 97 values, a NaN,
/// an infinity (long vectors only, so that short ones keep a finite scale), a zero, exact
/// rounding ties (`2.5`, `-0.5`) and an outlier of up to `1e4`.
pub(crate) fn q8_activations(next: &mut impl FnMut() -> f32, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| match i % 97 {
            5 => f32::NAN,
            11 if n > 500 => f32::INFINITY,
            13 => 0.0,
            17 => 2.5,
            19 => -0.5,
            23 => next() * 1e4,
            _ => next() * 3.0,
        })
        .collect()
}

/// A SIMD int8 tile kernel, with the contract of [`q8::tile_q8`].
pub(crate) type Q8Tile<'a> =
    &'a dyn Fn(&[u8], &[u8], usize, usize, &[u8], &[f32; TILE], &mut [f32]);

/// `kernel` against [`q8::tile_q8`], bit for bit, on 300 random shapes: ragged column counts
/// (`k_len` not a multiple of 4, below `cols`; every `cols` from 1 to 40 once), row counts not
/// a multiple of any register block, weights including −128, misaligned weights, short `y`
/// and `w_scales`, and the activations of [`q8_activations`]; and a quantised tile one byte
/// short, which must leave `y` as it was.
pub(crate) fn check_q8_tile(name: &str, kernel: Q8Tile<'_>) {
    let mut next = uniform(0x5eed_0000 ^ name.len() as u64);
    let mut pick = |n: usize| ((next() + 1.0) * 0.5 * n as f32) as usize % n.max(1);
    for case in 0..300 {
        let rows = pick(20);
        let cols = if case < 40 { 1 + case } else { 1 + pick(600) };
        let k_len = cols - pick(cols.min(6));
        let w_off = pick(8);
        let mut next = uniform(case as u64 + 1);
        let mut w: Vec<u8> = std::vec![0xa5; w_off];
        w.extend((0..rows * cols).map(|i| {
            if i % 53 == 7 {
                0x80
            } else {
                (next() * 128.0) as i8 as u8
            }
        }));
        let w = &w[w_off..];
        let scales: Vec<u8> = (0..rows.saturating_sub(pick(2)))
            .flat_map(|r| (0.003 * (r + 1) as f32).to_le_bytes())
            .collect();
        let x = q8_activations(&mut next, k_len * TILE);
        let mut q = std::vec![0u8; q8::tile_bytes(k_len)];
        let mut s_x = [0f32; TILE];
        assert!(q8::quantize_tile(&x, k_len, &mut q, &mut s_x));
        let ylen = (rows * TILE).saturating_sub(pick(40));
        let (mut fast, mut spec) = (std::vec![7.0f32; ylen], std::vec![7.0f32; ylen]);
        kernel(w, &scales, cols, k_len, &q, &s_x, &mut fast);
        q8::tile_q8(w, &scales, cols, k_len, &q, &s_x, &mut spec);
        let fb: Vec<u32> = fast.iter().map(|v| v.to_bits()).collect();
        let sb: Vec<u32> = spec.iter().map(|v| v.to_bits()).collect();
        assert_eq!(fb, sb, "{name}: rows {rows} cols {cols} k_len {k_len}");
        if case % 8 == 0 && k_len > 0 {
            let short = &q[..q.len() - 1];
            kernel(w, &scales, cols, k_len, short, &s_x, &mut fast);
            assert_eq!(fast.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), fb);
            q8::tile_q8(w, &scales, cols, k_len, short, &s_x, &mut spec);
            assert_eq!(spec.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), sb);
        }
    }
}

/// A SIMD activation quantiser, with the contract of [`q8::quantize_tile`].
pub(crate) type Q8Quantize<'a> = &'a dyn Fn(&[f32], usize, &mut [u8], &mut [f32; TILE]) -> bool;

/// `quantize` against [`q8::quantize_tile`], bit for bit (values and scales), for column
/// counts 0–39, 127–129 and 513 (an `x` three values longer than needed), and a buffer one
/// byte too short, which must be refused with nothing written.
pub(crate) fn check_q8_quantize(name: &str, quantize: Q8Quantize<'_>) {
    let mut next = uniform(99);
    for k_len in (0..40).chain([127, 128, 129, 513]) {
        let x = q8_activations(&mut next, k_len * TILE + 3);
        let (mut q1, mut q2) = (
            std::vec![1u8; q8::tile_bytes(k_len)],
            std::vec![2u8; q8::tile_bytes(k_len)],
        );
        let (mut s1, mut s2) = ([0f32; TILE], [1f32; TILE]);
        assert!(
            quantize(&x, k_len, &mut q1, &mut s1),
            "{name}: k_len {k_len}"
        );
        assert!(q8::quantize_tile(&x, k_len, &mut q2, &mut s2));
        assert_eq!(q1, q2, "{name}: k_len {k_len}");
        assert_eq!(
            s1.map(f32::to_bits),
            s2.map(f32::to_bits),
            "{name}: k_len {k_len}"
        );
        if k_len > 0 {
            let mut short = std::vec![9u8; q8::tile_bytes(k_len) - 1];
            assert!(
                !quantize(&x, k_len, &mut short, &mut s1),
                "{name}: k_len {k_len}"
            );
            assert!(short.iter().all(|&b| b == 9), "{name}: k_len {k_len}");
        }
    }
}
