//! Weight encodings used by the writer: f16 and symmetric per-row int8.

use crate::kernels::f16::f32_to_f16;

/// Largest int8 magnitude used (symmetric range, `-128` never appears).
pub const I8_MAX: f32 = 127.0;

/// Quantises one row to int8: `scale = max|w| / 127`, `q = round_half_away(w / scale)`
/// clamped to `[-127, 127]`. Writes `q` (as bytes) into `out` and returns the scale
/// (0 for an all-zero row, whose `q` are all 0).
///
/// # Shapes
/// - `row`, `out`: `[cols]`
pub fn quantize_row_i8(row: &[f32], out: &mut [u8]) -> f32 {
    let max = row.iter().fold(0f32, |m, w| m.max(w.abs()));
    let scale = max / I8_MAX;
    for (o, &w) in out.iter_mut().zip(row) {
        let q = if scale > 0.0 {
            libm::roundf(w / scale).clamp(-I8_MAX, I8_MAX)
        } else {
            0.0
        };
        *o = (q as i8) as u8;
    }
    scale
}

/// Writes `values` as little-endian binary16 (round to nearest even) into `out`.
///
/// # Shapes
/// - `values`: `[n]`, `out`: `[2·n]` bytes
pub fn encode_f16(values: &[f32], out: &mut [u8]) {
    for (o, &v) in out.as_chunks_mut::<2>().0.iter_mut().zip(values) {
        *o = f32_to_f16(v).to_le_bytes();
    }
}

/// Writes `values` as little-endian f32 into `out`.
///
/// # Shapes
/// - `values`: `[n]`, `out`: `[4·n]` bytes
pub fn encode_f32(values: &[f32], out: &mut [u8]) {
    for (o, &v) in out.as_chunks_mut::<4>().0.iter_mut().zip(values) {
        *o = v.to_le_bytes();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn int8_error_is_at_most_half_a_step(row in proptest::collection::vec(-3f32..3.0, 1..64)) {
            let mut q = std::vec![0u8; row.len()];
            let s = quantize_row_i8(&row, &mut q);
            for (&w, &b) in row.iter().zip(&q) {
                let back = f32::from(b as i8) * s;
                prop_assert!((back - w).abs() <= s * 0.5 + 1e-6);
                prop_assert!((b as i8) != i8::MIN);
            }
        }
    }

    #[test]
    fn zero_row_has_zero_scale() {
        let mut q = [9u8; 3];
        assert_eq!(quantize_row_i8(&[0.0; 3], &mut q), 0.0);
        assert_eq!(q, [0; 3]);
    }
}
