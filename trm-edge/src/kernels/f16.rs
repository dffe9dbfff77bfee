//! IEEE-754 binary16 ⇄ binary32 conversion, without any dependency.

/// Exact conversion of binary16 bits to f32 (subnormals, infinities and NaN preserved).
///
/// All three cases are computed and one is selected, so that loops over it vectorise; the
/// subnormal case goes through an integer conversion (no f32 denormal arithmetic, which some
/// FPUs flush to zero).
#[inline]
pub const fn f16_to_f32(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let exp = h & 0x7c00;
    let man = h & 0x3ff;
    // Normal: rebias the exponent by 127 − 15 = 112 (112 << 23 = 0x3800_0000).
    let normal = sign | (((h & 0x7fff) << 13) + 0x3800_0000);
    // Subnormal: man · 2^-24, exact in f32.
    let sub = sign | ((man as i32) as f32 * (1.0 / 16_777_216.0)).to_bits();
    let special = sign | 0x7f80_0000 | (man << 13);
    // Branch-free selection (all-ones masks), so that loops over this vectorise.
    let is_sub = ((exp == 0) as u32).wrapping_neg();
    let is_special = ((exp == 0x7c00) as u32).wrapping_neg();
    let bits = (sub & is_sub) | (special & is_special) | (normal & !(is_sub | is_special));
    f32::from_bits(bits)
}

/// Rounds `k + rem / 2^shift` to the nearest integer, ties to even (`rem < 2^shift`).
const fn round_even(k: u32, rem: u32, shift: u32) -> u32 {
    let half = 1u32 << (shift - 1);
    if rem > half || (rem == half && k & 1 == 1) {
        k + 1
    } else {
        k
    }
}

/// Converts f32 to binary16 bits with round-to-nearest-even.
///
/// Overflow gives ±infinity, values below half the smallest subnormal (2^-25) give ±0,
/// NaN stays a (quiet) NaN.
pub const fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        let nan = if man != 0 {
            0x200 | (man >> 13) as u16
        } else {
            0
        };
        return sign | 0x7c00 | nan;
    }
    let e = exp - 112; // rebias 127 → 15
    if e >= 31 {
        return sign | 0x7c00;
    }
    if e <= 0 {
        // Result is subnormal (or rounds up to the smallest normal): k = m · 2^(e - 14).
        let shift = (14 - e) as u32;
        if shift > 24 {
            return sign;
        }
        let m = man | 0x80_0000;
        let k = round_even(m >> shift, m & ((1 << shift) - 1), shift);
        return sign | k as u16;
    }
    let k = ((e as u32) << 10) | (man >> 13);
    // A carry out of the mantissa correctly bumps the exponent (up to infinity).
    sign | round_even(k, man & 0x1fff, 13) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Slow reference: the nearest binary16 by exhaustive search in f64, ties to even bits.
    fn reference(x: f32) -> u16 {
        if x.is_nan() {
            return 0x7e00;
        }
        let x = x as f64;
        let max = 65504.0f64;
        if x.abs() >= max + 16.0 {
            return if x > 0.0 { 0x7c00 } else { 0xfc00 };
        }
        let sign: u16 = if x.is_sign_negative() { 0x8000 } else { 0 };
        let mut best = 0u16;
        let mut best_err = f64::INFINITY;
        for h in 0u16..0x7c00 {
            let err = (f16_to_f32(h) as f64 - x.abs()).abs();
            if err < best_err || (err == best_err && h & 1 == 0) {
                best = h;
                best_err = err;
            }
        }
        sign | best
    }

    #[test]
    fn every_f16_round_trips() {
        for h in 0..=u16::MAX {
            let f = f16_to_f32(h);
            if f.is_nan() {
                assert!(f32_to_f16(f) & 0x7c00 == 0x7c00 && f32_to_f16(f) & 0x3ff != 0);
            } else {
                assert_eq!(f32_to_f16(f), h, "{h:#06x}");
            }
        }
    }

    #[test]
    fn known_values_and_ties() {
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(-2.0), 0xc000);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00); // the tie above max rounds to infinity
        assert_eq!(f32_to_f16(1.0 + 1.0 / 2048.0), 0x3c00); // tie, even stays
        assert_eq!(f32_to_f16(1.0 + 3.0 / 2048.0), 0x3c02); // tie, odd rounds up
        assert_eq!(f32_to_f16(2f32.powi(-25)), 0); // half the smallest subnormal: tie to 0
        assert_eq!(f32_to_f16(2f32.powi(-25) * 1.5), 1);
        assert_eq!(f16_to_f32(1), 2f32.powi(-24));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn matches_the_exhaustive_reference(bits in any::<u32>()) {
            let x = f32::from_bits(bits);
            prop_assume!(!x.is_nan());
            prop_assert_eq!(f32_to_f16(x), reference(x));
        }

        #[test]
        fn matches_the_reference_in_the_f16_range(x in -70000f32..70000f32) {
            prop_assert_eq!(f32_to_f16(x), reference(x));
        }
    }
}
