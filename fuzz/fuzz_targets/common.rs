//! What the targets share: a reader of the fuzz input, and the generator's switches.

#![allow(dead_code)] // each target uses part of it

/// Reads the fuzz input front to back; past its end every read is 0, so every input is
/// a whole program.
pub struct Src<'a>(pub &'a [u8]);

impl Src<'_> {
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn below(&mut self, n: usize) -> usize {
        self.byte() as usize % n.max(1)
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    /// An extent: mostly small (0 included), now and then one whose element count or
    /// byte count overflows or exceeds every allocation, unless [`tame`] says not to.
    pub fn extent(&mut self) -> usize {
        let b = self.byte();
        let huge = match b % 32 {
            26 => 1 << 40,
            27 => usize::MAX,
            28 => usize::MAX / 2 + 1,
            29 => 1 << 32,
            30 => 1 << 20,
            31 => isize::MAX as usize,
            k => {
                return [
                    0, 1, 2, 3, 4, 5, 1, 2, 3, 1, 2, 3, 7, 1, 2, 3, 4, 6, 2, 3, 1, 2, 3, 16, 8, 65,
                ][k as usize % 26]
            }
        };
        if tame() {
            (b % 5) as usize
        } else {
            huge
        }
    }
    pub fn dims(&mut self, max_rank: usize) -> Vec<usize> {
        let r = self.below(max_rank + 1);
        let mut dims: Vec<usize> = (0..r).map(|_| self.extent()).collect();
        // tame, the element count stays small too (65^4 elements would be 143 MB)
        if tame() && dims.iter().product::<usize>() > 1 << 16 {
            dims.iter_mut().for_each(|d| *d %= 4);
        }
        dims
    }
    /// An axis argument, often in range, sometimes far out of it either way.
    pub fn axis(&mut self) -> i64 {
        match self.byte() {
            250 => i64::MIN,
            251 => i64::MAX,
            252 => 1 << 40,
            b => (b as i8 % 7) as i64,
        }
    }
    /// A value: ordinary, zero, negative zero, huge, tiny, infinite or NaN.
    pub fn value(&mut self) -> f64 {
        match self.byte() % 16 {
            0 => 0.0,
            1 => -0.0,
            2 => f64::NAN,
            3 => f64::INFINITY,
            4 => f64::NEG_INFINITY,
            5 => 1e30,
            6 => -1e-30,
            7 => f64::MAX,
            8 => f64::MIN_POSITIVE,
            k => (k as f64 - 12.0) * 0.75,
        }
    }
    /// A count of elements a target may fill with values: past it the target does not
    /// build the data (an input that large is refused before its data is read).
    pub fn fillable(n: usize) -> bool {
        n <= 1 << 16
    }
}

/// What a target's graphs and machines may allocate: 64 MiB, through the crate's own
/// limit (`tapegrad::set_max_bytes`). Without it, a plan under `isize::MAX` bytes but
/// past what libFuzzer lets one `malloc` ask for (`-malloc_limit_mb`, the RSS limit) is
/// reported as a crash although tapegrad would turn the failed allocation into an `Err`;
/// with it, such a plan is refused as `Error::TooLarge` before anything is allocated,
/// which is how a program on a device of known memory uses the limit too.
pub fn limit_memory() {
    tapegrad::set_max_bytes(64 << 20);
}

/// `TAPEGRAD_FUZZ_TAME=1` keeps extents small (no huge or overflowing shapes) so that a
/// known crash in those classes does not stop the fuzzer from exploring the rest; by
/// default the generators produce them.
pub fn tame() -> bool {
    use std::sync::OnceLock;
    static TAME: OnceLock<bool> = OnceLock::new();
    *TAME.get_or_init(|| std::env::var_os("TAPEGRAD_FUZZ_TAME").is_some_and(|v| v != "0"))
}

/// `TAPEGRAD_FUZZ_TRACE=1` prints each step of a program (to triage a crash).
pub fn trace() -> bool {
    std::env::var_os("TAPEGRAD_FUZZ_TRACE").is_some_and(|v| v != "0")
}
