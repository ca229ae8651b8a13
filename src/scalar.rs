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
}

impl Scalar for f32 {
    const NAME: &'static str = "f32";
}

impl Scalar for f64 {
    const NAME: &'static str = "f64";
}
