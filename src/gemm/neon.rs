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
    float32x4_t, float64x2_t, vdupq_n_f32, vdupq_n_f64, vfmaq_laneq_f32, vfmaq_laneq_f64,
    vld1q_f32, vld1q_f64, vst1q_f32, vst1q_f64,
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
    /// `acc[r + l][v] += b[v] · a[l]` (rounded once) for the lanes `l` of `a` and the
    /// vectors `v < nv` of each row: one `fmla` by element each, so `a` is loaded as
    /// vectors and never broadcast. (Rows as constant indices of the whole array, once
    /// unrolled, keep `acc` in registers; slices of it did not.)
    fn fma_lanes<const MR: usize>(
        acc: &mut [[Self::V; 4]; MR],
        r: usize,
        b: &[Self::V; 4],
        nv: usize,
        a: Self::V,
    );
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
    fn fma_lanes<const MR: usize>(
        acc: &mut [[float32x4_t; 4]; MR],
        r: usize,
        b: &[float32x4_t; 4],
        nv: usize,
        a: float32x4_t,
    ) {
        for (v, &b) in b.iter().enumerate().take(nv) {
            // SAFETY: as above.
            #[allow(unused_unsafe)]
            unsafe {
                acc[r + 0][v] = vfmaq_laneq_f32(acc[r + 0][v], b, a, 0);
                acc[r + 1][v] = vfmaq_laneq_f32(acc[r + 1][v], b, a, 1);
                acc[r + 2][v] = vfmaq_laneq_f32(acc[r + 2][v], b, a, 2);
                acc[r + 3][v] = vfmaq_laneq_f32(acc[r + 3][v], b, a, 3);
            }
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
    fn fma_lanes<const MR: usize>(
        acc: &mut [[float64x2_t; 4]; MR],
        r: usize,
        b: &[float64x2_t; 4],
        nv: usize,
        a: float64x2_t,
    ) {
        for (v, &b) in b.iter().enumerate().take(nv) {
            // SAFETY: as above.
            #[allow(unused_unsafe)]
            unsafe {
                acc[r + 0][v] = vfmaq_laneq_f64(acc[r + 0][v], b, a, 0);
                acc[r + 1][v] = vfmaq_laneq_f64(acc[r + 1][v], b, a, 1);
            }
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
    if MR % 4 == 0 && NR % 4 == 0 && NR / 4 <= 4 {
        if let (Some(ap), Some(bp), Some(c)) = (same_ref(ap), same_ref(bp), same(c)) {
            return tile::<f32, MR, NR, 4>(ap, bp, c, rsc, load);
        }
    }
    if MR % 2 == 0 && NR % 2 == 0 && NR / 2 <= 4 {
        if let (Some(ap), Some(bp), Some(c)) = (same_ref(ap), same_ref(bp), same(c)) {
            return tile::<f64, MR, NR, 2>(ap, bp, c, rsc, load);
        }
    }
    super::micro::<T, MR, NR, true>(ap, bp, c, rsc, load)
}

/// `micro` for one element type `E` with `L` lanes: `MR` a multiple of `L`, `NR / L` (at
/// most 4) vectors a row.
#[inline(always)]
fn tile<E: Lanes, const MR: usize, const NR: usize, const L: usize>(
    ap: &[E],
    bp: &[E],
    c: &mut [E],
    rsc: usize,
    load: bool,
) {
    debug_assert!(L == E::LANES && MR % L == 0 && NR % L == 0 && NR / L <= 4);
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
    debug_assert_eq!(ap.len() / MR, bp.len() / NR);
    // Two steps an iteration: the loop's own instructions (two pointers, a count, a
    // branch) then cost 2 instead of 4 per 16 `fmla`. The order of the steps is unchanged.
    let (mut a2, mut b2) = (ap.chunks_exact(2 * MR), bp.chunks_exact(2 * NR));
    for (a, b) in (&mut a2).zip(&mut b2) {
        step::<E, MR, NR, L>(&mut acc, &a[..MR], &b[..NR]);
        step::<E, MR, NR, L>(&mut acc, &a[MR..], &b[NR..]);
    }
    let (a1, b1) = (
        a2.remainder().chunks_exact(MR),
        b2.remainder().chunks_exact(NR),
    );
    for (a, b) in a1.zip(b1) {
        step::<E, MR, NR, L>(&mut acc, a, b);
    }
    for (i, acc) in acc.iter().enumerate() {
        let row = &mut c[i * rsc..][..NR];
        for (v, &acc) in acc.iter().enumerate().take(nv) {
            // SAFETY: as for the loads.
            unsafe { E::store(&mut row[v * L..], acc) };
        }
    }
}

/// One depth of the tile: `acc[i][..] += a[i] · b[..]` for every row `i`.
#[inline(always)]
fn step<E: Lanes, const MR: usize, const NR: usize, const L: usize>(
    acc: &mut [[E::V; 4]; MR],
    a: &[E],
    b: &[E],
) {
    let nv = NR / L;
    let mut bv = [E::zero(); 4];
    for (v, bv) in bv.iter_mut().enumerate().take(nv) {
        // SAFETY: `b[v * L..]` holds `NR - v * L >= L` values.
        *bv = unsafe { E::load(&b[v * L..]) };
    }
    // `a` in two (f32) or four (f64) registers, one `fmla` by element per vector of each
    // row: 16 `fmla` and 3 (f32) or 5 (f64) loads a step for the 8 × 8 and 8 × 4 tiles.
    for r in (0..MR).step_by(L) {
        // SAFETY: `a[r..]` holds `MR - r >= L` values.
        let av = unsafe { E::load(&a[r..]) };
        E::fma_lanes(acc, r, &bv, nv, av);
    }
}

#[cfg(test)]
mod tests;
