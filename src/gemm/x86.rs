//! The loop nest and micro-kernel compiled for wider vectors; the caller checks the CPU.

use super::kernel::{micro, run};
use super::{Blocking, Rhs, View};
use crate::scalar::Scalar;

/// `super::thin` with fused multiply-adds, vectorized for AVX2.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn thin<T: Scalar>(
    mkn: (usize, usize, usize),
    a: View<T>,
    b: &[T],
    b_t: bool,
    c: &mut [T],
) {
    super::thin::thin::<T, true>(mkn, a, b, b_t, c)
}

#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn avx2<T: Scalar, const MR: usize, const NR: usize>(
    blk: Blocking,
    mkn: (usize, usize, usize),
    a: View<T>,
    b: Rhs<T>,
    c: &mut [T],
    csr: (usize, usize),
    s: &mut [T],
) {
    // SAFETY: we run on a CPU with AVX2 and FMA (this function's contract).
    let micro = |ap: &_, bp: &_, c: &mut _, rsc, load| unsafe {
        micro_avx2::<T, MR, NR>(ap, bp, c, rsc, load)
    };
    run::<T, MR, NR>(micro, blk, mkn, a, b, c, csr, s)
}

#[target_feature(enable = "avx2,fma")]
#[inline(never)]
unsafe fn micro_avx2<T: Scalar, const MR: usize, const NR: usize>(
    ap: &[T],
    bp: &[T],
    c: &mut [T],
    rsc: usize,
    load: bool,
) {
    micro::<T, MR, NR, true>(ap, bp, c, rsc, load)
}

// The loop nest without AVX-512: with it LLVM turns the strided stores of packing into
// scatters, which are slow.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn avx512<T: Scalar, const MR: usize, const NR: usize>(
    blk: Blocking,
    mkn: (usize, usize, usize),
    a: View<T>,
    b: Rhs<T>,
    c: &mut [T],
    csr: (usize, usize),
    s: &mut [T],
) {
    // SAFETY: we run on a CPU with AVX-512F (this function's contract).
    let micro = |ap: &_, bp: &_, c: &mut _, rsc, load| unsafe {
        micro_avx512::<T, MR, NR>(ap, bp, c, rsc, load)
    };
    run::<T, MR, NR>(micro, blk, mkn, a, b, c, csr, s)
}

#[target_feature(enable = "avx512f,avx2,fma")]
#[inline(never)]
unsafe fn micro_avx512<T: Scalar, const MR: usize, const NR: usize>(
    ap: &[T],
    bp: &[T],
    c: &mut [T],
    rsc: usize,
    load: bool,
) {
    micro::<T, MR, NR, true>(ap, bp, c, rsc, load)
}
