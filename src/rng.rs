//! The machine's random numbers: a small, portable generator (SplitMix64) that kernels
//! such as dropout draw from. Seeded by the user; the same seed gives the same stream on
//! every platform, and drawing allocates nothing.

/// SplitMix64 (Steele, Lea and Flood 2014): 64 bits of state, one multiply-xorshift
/// round per output; plenty for dropout masks, and identical everywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelRng {
    state: u64,
}

impl KernelRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        KernelRng { state: seed }
    }

    /// The whole state: `KernelRng::new(r.state())` continues `r`'s stream.
    pub(crate) fn state(&self) -> u64 {
        self.state
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_stream_and_range() {
        // SplitMix64 from seed 0: the reference values of the published algorithm
        let mut r = KernelRng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let mut r = KernelRng::new(7);
        let mean = (0..10_000).map(|_| r.next_f64()).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }
}
