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
//!
//! Its loop is 20 instructions a depth for f32 (2 `ldp`, 16 `fmla`, a count and a branch:
//! 0.31 per multiply-add) and 21 for f64 (0.66). Counted under qemu-aarch64 over a whole
//! product (`benches/aarch64_insns.sh`: emulated instructions, not time), packing
//! included: f32 256³ 0.339 per multiply-add against matrixmultiply's 0.332, 64³ 0.427
//! against 0.394; f64 256³ 0.726 against 0.717. The gap is outside the kernel: at 64³
//! f32 the kernels take 86,912 and 87,104 instructions, packing and the loop nest 24,820
//! and 15,477.

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
    /// `x` is valid for reading `LANES` values.
    unsafe fn load(x: *const Self) -> Self::V;
    /// # Safety
    /// `x` is valid for writing `LANES` values.
    unsafe fn store(x: *mut Self, v: Self::V);
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
    unsafe fn load(x: *const f32) -> float32x4_t {
        vld1q_f32(x)
    }
    #[inline(always)]
    unsafe fn store(x: *mut f32, v: float32x4_t) {
        vst1q_f32(x, v)
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
    unsafe fn load(x: *const f64) -> float64x2_t {
        vld1q_f64(x)
    }
    #[inline(always)]
    unsafe fn store(x: *mut f64, v: float64x2_t) {
        vst1q_f64(x, v)
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
/// product of packed panels (`super::kernel::micro`'s contract), in NEON registers. Tiles whose
/// rows and columns are not whole numbers of vectors take the portable kernel, fused, with
/// the same bits.
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
    super::kernel::micro::<T, MR, NR, true>(ap, bp, c, rsc, load)
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
                // SAFETY: a slice of `L` values.
                *acc = unsafe { E::load(row[v * L..][..L].as_ptr()) };
            }
        }
    }
    // Pointers rather than chunks: one count for the loop, and loads that advance their
    // pointer (`ldp q, q, [x], #32`): 20 instructions a step of 16 `fmla`, as in
    // matrixmultiply's kernel, where chunks took 21.5.
    let steps = (ap.len() / MR).min(bp.len() / NR);
    let (mut a, mut b) = (ap.as_ptr(), bp.as_ptr());
    for _ in 0..steps {
        // SAFETY: step `p < steps` reads `ap[p * MR..][..MR]` and `bp[p * NR..][..NR]`,
        // inside both slices; after the last step the pointers are one past their ends.
        unsafe {
            step::<E, MR, NR, L>(&mut acc, a, b);
            a = a.add(MR);
            b = b.add(NR);
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        let row = &mut c[i * rsc..][..NR];
        for (v, &acc) in acc.iter().enumerate().take(nv) {
            // SAFETY: a slice of `L` values.
            unsafe { E::store(row[v * L..][..L].as_mut_ptr(), acc) };
        }
    }
}

/// One depth of the tile: `acc[i][..] += a[i] · b[..]` for every row `i`.
///
/// # Safety
/// `a` is valid for reading `MR` values and `b` for `NR`.
#[inline(always)]
unsafe fn step<E: Lanes, const MR: usize, const NR: usize, const L: usize>(
    acc: &mut [[E::V; 4]; MR],
    a: *const E,
    b: *const E,
) {
    let nv = NR / L;
    let mut bv = [E::zero(); 4];
    for (v, bv) in bv.iter_mut().enumerate().take(nv) {
        // SAFETY: `v * L + L <= NR` values from `b` (this function's contract).
        *bv = unsafe { E::load(b.add(v * L)) };
    }
    // `a` in two (f32) or four (f64) registers, one `fmla` by element per vector of each
    // row: 16 `fmla` and 3 (f32) or 5 (f64) loads a step for the 8 × 8 and 8 × 4 tiles.
    for r in (0..MR).step_by(L) {
        // SAFETY: `r + L <= MR` values from `a` (this function's contract).
        let av = unsafe { E::load(a.add(r)) };
        E::fma_lanes(acc, r, &bv, nv, av);
    }
}

#[cfg(test)]
mod tests;
