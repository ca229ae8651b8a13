//! The NEON micro-kernel (aarch64: Raspberry Pi 3/4/5 class boards and up).
//!
//! NEON is part of the aarch64 baseline, so this kernel is chosen at compile time, with no
//! run-time detection and no `#[target_feature]`. Its tiles follow matrixmultiply's NEON
//! kernels: 8 × 8 for `f32` and 8 × 4 for `f64`, both sixteen 128-bit accumulators, which
//! leaves half of the 32 vector registers for the panels of `a` and `b`.
//!
//! It **fuses**: each step is one `fmla` (multiply-add by element, rounded once), so every
//! element of `c` is the chain `acc = fma(a(i, p), b(j, p), acc)` over `p` in order, the
//! same bits as the portable `micro` with `FUSED = true` (checked in the tests below). The
//! thin products that skip packing fuse too, so a thin product's rows keep the bits of the
//! packed product (the contract in `gemm.rs`).

use core::any::TypeId;
use core::arch::aarch64::{
    float32x4_t, float64x2_t, vdupq_n_f32, vdupq_n_f64, vfmaq_n_f32, vfmaq_n_f64, vld1q_f32,
    vld1q_f64, vst1q_f32, vst1q_f64,
};

use crate::scalar::Scalar;

/// An element type with a 128-bit NEON vector of [`Lanes::LANES`] values.
trait Lanes: Copy + 'static {
    /// The vector type.
    type V: Copy;
    /// Values in one vector.
    const LANES: usize;
    fn zero() -> Self::V;
    /// # Safety
    /// `x` holds at least `LANES` values.
    unsafe fn load(x: &[Self]) -> Self::V;
    /// # Safety
    /// `x` holds at least `LANES` values.
    unsafe fn store(x: &mut [Self], v: Self::V);
    /// `acc + b · a` per lane, rounded once.
    fn fma(acc: Self::V, b: Self::V, a: Self) -> Self::V;
}

impl Lanes for f32 {
    type V = float32x4_t;
    const LANES: usize = 4;
    #[inline(always)]
    fn zero() -> float32x4_t {
        // SAFETY: NEON is in the aarch64 baseline (this module's cfg).
        #[allow(unused_unsafe)]
        unsafe {
            vdupq_n_f32(0.0)
        }
    }
    #[inline(always)]
    unsafe fn load(x: &[f32]) -> float32x4_t {
        debug_assert!(x.len() >= 4);
        vld1q_f32(x.as_ptr())
    }
    #[inline(always)]
    unsafe fn store(x: &mut [f32], v: float32x4_t) {
        debug_assert!(x.len() >= 4);
        vst1q_f32(x.as_mut_ptr(), v)
    }
    #[inline(always)]
    fn fma(acc: float32x4_t, b: float32x4_t, a: f32) -> float32x4_t {
        // SAFETY: as above.
        #[allow(unused_unsafe)]
        unsafe {
            vfmaq_n_f32(acc, b, a)
        }
    }
}

impl Lanes for f64 {
    type V = float64x2_t;
    const LANES: usize = 2;
    #[inline(always)]
    fn zero() -> float64x2_t {
        // SAFETY: as above.
        #[allow(unused_unsafe)]
        unsafe {
            vdupq_n_f64(0.0)
        }
    }
    #[inline(always)]
    unsafe fn load(x: &[f64]) -> float64x2_t {
        debug_assert!(x.len() >= 2);
        vld1q_f64(x.as_ptr())
    }
    #[inline(always)]
    unsafe fn store(x: &mut [f64], v: float64x2_t) {
        debug_assert!(x.len() >= 2);
        vst1q_f64(x.as_mut_ptr(), v)
    }
    #[inline(always)]
    fn fma(acc: float64x2_t, b: float64x2_t, a: f64) -> float64x2_t {
        // SAFETY: as above.
        #[allow(unused_unsafe)]
        unsafe {
            vfmaq_n_f64(acc, b, a)
        }
    }
}

/// `x` as a slice of `U`, if `T` is `U`.
fn same<T: 'static, U: 'static>(x: &mut [T]) -> Option<&mut [U]> {
    (TypeId::of::<T>() == TypeId::of::<U>()).then(|| {
        // SAFETY: `T` and `U` are the same type.
        unsafe { core::slice::from_raw_parts_mut(x.as_mut_ptr().cast::<U>(), x.len()) }
    })
}

/// `same` for a shared slice.
fn same_ref<T: 'static, U: 'static>(x: &[T]) -> Option<&[U]> {
    (TypeId::of::<T>() == TypeId::of::<U>()).then(|| {
        // SAFETY: `T` and `U` are the same type.
        unsafe { core::slice::from_raw_parts(x.as_ptr().cast::<U>(), x.len()) }
    })
}

/// The `MR × NR` tile whose row `i` is `c[i * rsc..][..NR]` `=`, or if `load` `+=`, the
/// product of packed panels (`super::micro`'s contract), in NEON registers. Tiles that are
/// not a whole number of vectors wide take the portable kernel, fused, with the same bits.
#[inline(never)]
pub(super) fn micro<T: Scalar, const MR: usize, const NR: usize>(
    ap: &[T],
    bp: &[T],
    c: &mut [T],
    rsc: usize,
    load: bool,
) {
    if NR % 4 == 0 && NR / 4 <= 4 {
        if let (Some(ap), Some(bp), Some(c)) = (same_ref(ap), same_ref(bp), same(c)) {
            return tile::<f32, MR, NR, 4>(ap, bp, c, rsc, load);
        }
    }
    if NR % 2 == 0 && NR / 2 <= 4 {
        if let (Some(ap), Some(bp), Some(c)) = (same_ref(ap), same_ref(bp), same(c)) {
            return tile::<f64, MR, NR, 2>(ap, bp, c, rsc, load);
        }
    }
    super::micro::<T, MR, NR, true>(ap, bp, c, rsc, load)
}

/// `micro` for one element type `E` with `L` lanes, `NR / L` (at most 4) vectors a row.
#[inline(always)]
fn tile<E: Lanes, const MR: usize, const NR: usize, const L: usize>(
    ap: &[E],
    bp: &[E],
    c: &mut [E],
    rsc: usize,
    load: bool,
) {
    debug_assert!(L == E::LANES && NR % L == 0 && NR / L <= 4);
    let nv = NR / L;
    // Every row of the tile is in `c`; rows must not overlap (`rsc >= NR`) for the
    // result to be the product, not for memory safety.
    let c = &mut c[..(MR - 1) * rsc + NR];
    let mut acc = [[E::zero(); 4]; MR];
    if load {
        for (i, acc) in acc.iter_mut().enumerate() {
            let row = &c[i * rsc..][..NR];
            for (v, acc) in acc.iter_mut().enumerate().take(nv) {
                // SAFETY: `row[v * L..]` holds `NR - v * L >= L` values.
                *acc = unsafe { E::load(&row[v * L..]) };
            }
        }
    }
    for (a, b) in ap.chunks_exact(MR).zip(bp.chunks_exact(NR)) {
        let mut bv = [E::zero(); 4];
        for (v, bv) in bv.iter_mut().enumerate().take(nv) {
            // SAFETY: `b[v * L..]` holds `NR - v * L >= L` values.
            *bv = unsafe { E::load(&b[v * L..]) };
        }
        // One `fmla` by element per vector of each row: the broadcast of `a(i, p)` is
        // free, and `a` stays in two (f32) or four (f64) registers.
        for (acc, &a) in acc.iter_mut().zip(a) {
            for (acc, &b) in acc.iter_mut().zip(&bv).take(nv) {
                *acc = E::fma(*acc, b, a);
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        let row = &mut c[i * rsc..][..NR];
        for (v, &acc) in acc.iter().enumerate().take(nv) {
            // SAFETY: as for the loads.
            unsafe { E::store(&mut row[v * L..], acc) };
        }
    }
}

#[cfg(test)]
mod tests;
