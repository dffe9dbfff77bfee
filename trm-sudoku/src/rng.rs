//! A small, seedable pseudo-random generator for `no_std` code (SplitMix64).
//!
//! Used where the runtime needs reproducible randomness: the symmetry drawn for an augmented
//! attempt and the noise on perturbed initial latents (`trm_edge::solver::attempts`). The same
//! seed gives the same sequence on every target; the floating-point helpers use `libm`, so the
//! values do not depend on the platform's math library either.

/// SplitMix64 (Steele, Lea and Flood, 2014): one 64-bit word of state, full period 2^64, good
/// statistical quality for simulations, not cryptographic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl SplitMix64 {
    /// A generator starting from `seed` (any value, 0 included).
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for sub-stream `stream`, item `index` of `seed`: independent-looking
    /// sequences for every `(seed, stream, index)` without storing any state between them.
    pub fn derive(seed: u64, stream: u64, index: u64) -> Self {
        let mut g = Self::new(seed);
        let a = g.next_u64() ^ stream.wrapping_mul(GOLDEN);
        let mut g = Self::new(a);
        let b = g.next_u64() ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
        Self::new(b)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`0` when `n == 0`), by the multiply-shift method (bias below
    /// `n / 2^64`, irrelevant for the small ranges used here).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A uniform `f32` in `[0, 1)` (24 random bits).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// Two independent standard normal values (Box–Muller).
    pub fn normal_pair(&mut self) -> (f32, f32) {
        // u1 in (0, 1]: the logarithm stays finite.
        let u1 = 1.0 - self.next_f32();
        let u2 = self.next_f32();
        let r = libm::sqrtf(-2.0 * libm::logf(u1));
        let t = core::f32::consts::TAU * u2;
        (r * libm::cosf(t), r * libm::sinf(t))
    }

    /// Shuffles `items` in place (Fisher–Yates): every permutation equally likely.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_first_values() {
        // Reference values of SplitMix64 from seed 0 (as in the Java and C reference code).
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(g.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn below_and_shuffle_stay_in_range() {
        let mut g = SplitMix64::new(7);
        let mut seen = [0u32; 5];
        for _ in 0..5000 {
            let v = g.below(5);
            seen[v] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
        assert_eq!(g.below(0), 0);
        let mut v = [0u8, 1, 2, 3, 4, 5, 6, 7, 8];
        g.shuffle(&mut v);
        let mut sorted = v;
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn normals_have_unit_variance() {
        let mut g = SplitMix64::new(3);
        let (mut s, mut s2, n) = (0f64, 0f64, 20000);
        for _ in 0..n / 2 {
            let (a, b) = g.normal_pair();
            for v in [a, b] {
                assert!(v.is_finite());
                s += f64::from(v);
                s2 += f64::from(v) * f64::from(v);
            }
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(
            mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }

    #[test]
    fn derived_streams_differ_and_repeat() {
        let a = SplitMix64::derive(1, 2, 3).next_u64();
        assert_eq!(a, SplitMix64::derive(1, 2, 3).next_u64());
        assert_ne!(a, SplitMix64::derive(1, 2, 4).next_u64());
        assert_ne!(a, SplitMix64::derive(1, 3, 3).next_u64());
        assert_ne!(a, SplitMix64::derive(2, 2, 3).next_u64());
    }
}
