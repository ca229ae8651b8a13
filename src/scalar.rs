//! The element types tapegrad computes with: `f32` and `f64`.

use core::fmt::{Debug, Display};
use num_traits::{Float, FromPrimitive};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point element type: `f32` or `f64`. Sealed; the GEMM behind `matmul` is
/// chosen per type.
pub trait Scalar:
    Float + FromPrimitive + Debug + Display + Default + Send + Sync + 'static + sealed::Sealed
{
    /// The type's name as written in Rust (`"f32"`).
    const NAME: &'static str;

    /// `v` as this type (lossy for `f32`).
    fn of(v: f64) -> Self {
        // `from_f64` never fails for f32 and f64 (out-of-range values become ±inf).
        <Self as FromPrimitive>::from_f64(v).unwrap_or_else(Self::nan)
    }

    /// The square root, correctly rounded as IEEE 754 requires, by the FPU's instruction
    /// where `Float::sqrt` would not use it: without `std`, `num_traits` calls `libm`,
    /// which computes `sqrtf` in software on 32-bit Arm (a Cortex-M4F has `vsqrt.f32`).
    #[doc(hidden)]
    #[inline]
    fn root(self) -> Self {
        Float::sqrt(self)
    }

    /// `exp` of every element, in place. For `f32` on an x86-64 host with `std`, AVX2 and
    /// FMA, vectorised (`ops/vexp.rs`); elsewhere `Float::exp` per element.
    #[doc(hidden)]
    #[inline(never)]
    fn exp_in_place(x: &mut [Self]) {
        for v in x {
            *v = v.exp();
        }
    }

    /// The logistic sigmoid of every element, in place, where it is vectorised (`f32` on
    /// an x86-64 host with `std`, AVX2 and FMA); `false`, nothing done, elsewhere.
    #[doc(hidden)]
    #[inline]
    fn sigmoid_in_place(x: &mut [Self]) -> bool {
        let _ = x;
        false
    }

    /// `tanh` of every element, in place, where it is vectorised (as
    /// [`sigmoid_in_place`](Scalar::sigmoid_in_place)); `false`, nothing done, elsewhere.
    #[doc(hidden)]
    #[inline]
    fn tanh_in_place(x: &mut [Self]) -> bool {
        let _ = x;
        false
    }
}

/// `n` as `T`, converted directly (no `f64` on the way: on an `f32`-only FPU that would be
/// software arithmetic). Exact up to 2^24 for `f32`, 2^53 for `f64`, rounded beyond.
#[inline]
pub(crate) fn count<T: Scalar>(n: usize) -> T {
    // `from_usize` never fails for f32 and f64.
    T::from_usize(n).unwrap_or_else(T::nan)
}

impl Scalar for f32 {
    const NAME: &'static str = "f32";

    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[inline]
    fn exp_in_place(x: &mut [Self]) {
        crate::ops::vexp::exp_slice(x);
    }

    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[inline]
    fn sigmoid_in_place(x: &mut [Self]) -> bool {
        crate::ops::vexp::sigmoid_slice(x)
    }

    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[inline]
    fn tanh_in_place(x: &mut [Self]) -> bool {
        crate::ops::vexp::tanh_slice(x)
    }

    #[cfg(all(target_arch = "arm", target_feature = "fpregs", not(feature = "std")))]
    #[inline]
    fn root(self) -> Self {
        let bits: u32;
        // SAFETY: saves s0, computes in it and restores it, so no register but the
        // operands changes; touches only the stack it pushes and pops. `vsqrt.f32` is in
        // every FPU of an Arm core with `fpregs`. (The `sreg` operand class would need the
        // `vfp2` target feature enabled in Rust, which these targets leave off.)
        unsafe {
            core::arch::asm!(
                "vpush {{s0}}",
                "vmov s0, {x}",
                "vsqrt.f32 s0, s0",
                "vmov {r}, s0",
                "vpop {{s0}}",
                x = in(reg) self.to_bits(),
                r = lateout(reg) bits,
                options(pure, nomem, preserves_flags)
            );
        }
        f32::from_bits(bits)
    }
}

impl Scalar for f64 {
    const NAME: &'static str = "f64";
}
