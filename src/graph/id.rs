//! Graph identities that never repeat in a process: a 64-bit count (2^64 graphs, one a
//! nanosecond, take 584 years), so a [`Handle`](super::Handle) of one graph can never
//! name a node of another, as a 32-bit count did after 2^32 graphs.

/// A graph's identity. The count is kept as two `u32` halves so that a `Handle` (identity
/// and node id) stays 4-byte aligned: 12 bytes rather than the 16 a `u64` would pad it to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct GraphId([u32; 2]);

impl core::fmt::Debug for GraphId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.get())
    }
}

impl GraphId {
    fn of(n: u64) -> Self {
        GraphId([n as u32, (n >> 32) as u32])
    }

    /// The count this identity was made from.
    pub(crate) fn get(self) -> u64 {
        u64::from(self.0[0]) | (u64::from(self.0[1]) << 32)
    }

    /// A new identity, never given before in this process.
    pub(crate) fn next() -> Self {
        GraphId::of(counter::next())
    }
}

/// One step of a count kept in two `u32` words: the number they hold, and the words of the
/// next one (the carry from the low word into the high one).
#[cfg_attr(target_has_atomic = "64", allow(dead_code))]
fn step(lo: u32, hi: u32) -> (u64, u32, u32) {
    let n = u64::from(lo) | (u64::from(hi) << 32);
    let (next_lo, carry) = lo.overflowing_add(1);
    (n, next_lo, hi.wrapping_add(u32::from(carry)))
}

#[cfg(target_has_atomic = "64")]
mod counter {
    use core::sync::atomic::{AtomicU64, Ordering};

    static NEXT: AtomicU64 = AtomicU64::new(1);

    pub(super) fn next() -> u64 {
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    /// Moves the count forward to `n` (never back, so graphs made meanwhile by other
    /// tests keep identities of their own).
    #[cfg(test)]
    pub(super) fn skip_to(n: u64) {
        NEXT.fetch_max(n, Ordering::Relaxed);
    }
}

// Targets without 64-bit atomics (Cortex-M4/M7 have 32-bit compare-and-swap only; Cortex-M0+
// and RISC-V imc have none) keep the count in two words with plain loads and stores. These
// are single-core chips whose graphs are built by one thread of control, not from interrupt
// handlers (the assumption the crate already made there), so no update is torn; this needs
// no critical section and no dependency (portable-atomic would need one of its cfgs or a
// critical-section implementation chosen by the firmware).
#[cfg(not(target_has_atomic = "64"))]
mod counter {
    use core::sync::atomic::{AtomicU32, Ordering};

    static LO: AtomicU32 = AtomicU32::new(1);
    static HI: AtomicU32 = AtomicU32::new(0);

    pub(super) fn next() -> u64 {
        let (n, lo, hi) = super::step(LO.load(Ordering::Relaxed), HI.load(Ordering::Relaxed));
        LO.store(lo, Ordering::Relaxed);
        HI.store(hi, Ordering::Relaxed);
        n
    }

    #[cfg(test)]
    pub(super) fn skip_to(n: u64) {
        LO.store(n as u32, Ordering::Relaxed);
        HI.store((n >> 32) as u32, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    #[test]
    fn two_words_carry() {
        assert_eq!(step(7, 0), (7, 8, 0));
        // 2^32 - 1 then 2^32: the low word wraps and carries
        assert_eq!(step(u32::MAX, 0), (u32::MAX as u64, 0, 1));
        assert_eq!(step(0, 1), (1 << 32, 1, 1));
        assert_eq!(step(u32::MAX, 5), ((6 << 32) - 1, 0, 6));
    }

    #[test]
    fn identities_past_u32_stay_distinct() {
        let g0 = Graph::<f32>::new();
        let x0 = g0.input("x", [2]);
        let mut m0 = g0.compile(&[x0], &[]).unwrap();
        // the next graph is 2^32 graphs after g0: a 32-bit count gave it g0's identity
        skip_to_after(g0.id.get() + (1u64 << 32));
        let g1 = Graph::<f32>::new();
        assert!(g1.id.get() >= g0.id.get() + (1 << 32), "{:?}", g1.id);
        assert_ne!(g1.id, g0.id);
        let x1 = g1.input("x", [2]);
        assert_eq!(x1.id(), x0.id());
        // g1's handle does not address g0's machine, nor does g0's tensor record into g1
        let r = m0.feed(x1, &ndarray::arr1(&[1.0, 2.0]));
        assert!(matches!(r, Err(Error::WrongGraph { .. })), "{r:?}");
        let _ = x1 + x0;
        assert!(matches!(g1.check(), Err(Error::WrongGraph { .. })));
        // and the next graph after that is new as well
        assert!(Graph::<f32>::new().id.get() > g1.id.get());
        // printed whole, as one number
        assert!(alloc::format!("{g1:?}").contains(&alloc::format!("id: {}", g1.id.get())));
    }

    fn skip_to_after(n: u64) {
        counter::skip_to(n);
    }

    #[test]
    fn a_handle_stays_small() {
        // graph identity (two u32) and node id (u32): 12 bytes, 4-byte aligned
        assert_eq!(core::mem::size_of::<crate::Handle>(), 12);
        // a tensor is a reference and a node id, whatever the identity's width
        let word = core::mem::size_of::<usize>();
        assert_eq!(core::mem::size_of::<Tensor<'_, f32>>(), 2 * word);
    }
}
