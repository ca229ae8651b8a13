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

    /// `c = a · b + beta · c` for row-major `a` `[m, k]` and `b` `[k, n]` given by
    /// row and column strides, and a contiguous row-major `c` `[m, n]`.
    ///
    /// # Safety
    /// `a` and `b` must be valid for reads at every `i * rs + j * cs` offset of their
    /// shapes, and `c` valid for writes of `m * n` elements, not overlapping `a` or `b`.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        a: *const Self,
        a_strides: (isize, isize),
        b: *const Self,
        b_strides: (isize, isize),
        beta: Self,
        c: *mut Self,
    );

    /// `v` as this type (lossy for `f32`).
    fn of(v: f64) -> Self {
        // `from_f64` never fails for f32 and f64 (out-of-range values become ±inf).
        <Self as FromPrimitive>::from_f64(v).unwrap_or_else(Self::nan)
    }
}

impl Scalar for f32 {
    const NAME: &'static str = "f32";
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        a: *const f32,
        (rsa, csa): (isize, isize),
        b: *const f32,
        (rsb, csb): (isize, isize),
        beta: f32,
        c: *mut f32,
    ) {
        matrixmultiply::sgemm(
            m, k, n, 1.0, a, rsa, csa, b, rsb, csb, beta, c, n as isize, 1,
        );
    }
}

impl Scalar for f64 {
    const NAME: &'static str = "f64";
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        a: *const f64,
        (rsa, csa): (isize, isize),
        b: *const f64,
        (rsb, csb): (isize, isize),
        beta: f64,
        c: *mut f64,
    ) {
        matrixmultiply::dgemm(
            m, k, n, 1.0, a, rsa, csa, b, rsb, csb, beta, c, n as isize, 1,
        );
    }
}

/// Safe row-major GEMM over contiguous matrices: `c[m, n] = a[m, k] · b[k, n]`, where
/// `a_t` / `b_t` say the operand is stored transposed (`[k, m]` / `[n, k]`). Large products
/// are split by rows of `c` over threads (see `par.rs`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<T: Scalar>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_t: bool,
    b: &[T],
    b_t: bool,
    c: &mut [T],
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(T::zero());
        return;
    }
    let sa = if a_t {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let sb = if b_t {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    crate::par::row_blocks(&mut c[..m * n], m, n, m * n * k, |row, block| {
        let rows = block.len() / n;
        // Row `row` of op(a) starts at this offset; the strides stay those of all of `a`.
        let off = if a_t { row } else { row * k };
        let a = &a[off..];
        // The last element read is (rows - 1, k - 1) of this block.
        let last = (rows - 1) * sa.0 as usize + (k - 1) * sa.1 as usize;
        assert!(last < a.len());
        // SAFETY: every offset read in `a` is at most `last` (checked), every offset in `b`
        // at most (k - 1, n - 1) of a `k * n` matrix (checked above), and `block` is an
        // exclusive `rows * n` slice, so it cannot overlap `a` or `b`.
        unsafe {
            T::gemm_raw(
                rows,
                k,
                n,
                a.as_ptr(),
                sa,
                b.as_ptr(),
                sb,
                T::zero(),
                block.as_mut_ptr(),
            )
        }
    });
}
