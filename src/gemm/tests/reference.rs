//! The GEMM against an independent implementation: matrixmultiply's `sgemm` and `dgemm`,
//! which read the operands through strides rather than our `a_t` / `b_t` layouts. It
//! checks, for every kernel this CPU runs, both types and every transpose, what the triple
//! loop of `tests.rs` leaves out because it is slow in a debug build or needs a split:
//! the real blocking's `kc`, `mc` and `nc` crossed one axis at a time and together, the
//! products that split over 2 threads (straight and swapped), the edges of the thin
//! products, and the shapes of the benchmark (M of `benches/gemm.rs`).
use super::{isas, product, swaps, tiny};
use super::{plan, scratch_len_with, thin, Blocking, Isa, PAR_MIN};
use crate::scalar::Scalar;
use alloc::vec;
use alloc::vec::Vec;
use approx::abs_diff_eq;
use core::mem::size_of;

/// matrixmultiply's general product for `T`.
pub(in crate::gemm) trait Reference:
    Scalar + approx::AbsDiffEq<Epsilon = Self>
{
    /// `c[m, n] = a · b` (row-major `c`) with the strides (rows, columns) of `a` as
    /// `[m, k]` and of `b` as `[k, n]`.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        m: usize,
        k: usize,
        n: usize,
        a: &[Self],
        sa: [isize; 2],
        b: &[Self],
        sb: [isize; 2],
        c: &mut [Self],
    );
}

macro_rules! reference {
    ($t:ty, $gemm:path) => {
        impl Reference for $t {
            fn reference(
                m: usize,
                k: usize,
                n: usize,
                a: &[$t],
                sa: [isize; 2],
                b: &[$t],
                sb: [isize; 2],
                c: &mut [$t],
            ) {
                assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
                // SAFETY: the strides address `a` as `[m, k]` and `b` as `[k, n]` inside
                // their lengths (checked above), `c` as `[m, n]` row-major.
                unsafe {
                    $gemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        sa[0],
                        sa[1],
                        b.as_ptr(),
                        sb[0],
                        sb[1],
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                }
            }
        }
    };
}
reference!(f32, matrixmultiply::sgemm);
reference!(f64, matrixmultiply::dgemm);

/// matrixmultiply's `op(a) · op(b)` (`a` stored `[k, m]` if transposed, `b` `[n, k]`),
/// and the same product of the absolute values, `Σ|a||b|`, which bounds the error.
pub(in crate::gemm) fn want_and_bound<T: Reference>(
    (m, k, n): (usize, usize, usize),
    (a, a_t): (&[T], bool),
    (b, b_t): (&[T], bool),
) -> (Vec<T>, Vec<T>) {
    // element (i, p) of a transposed `a` at `p * m + i`
    let sa = if a_t {
        [1, m as isize]
    } else {
        [k as isize, 1]
    };
    let sb = if b_t {
        [1, k as isize]
    } else {
        [n as isize, 1]
    };
    let mut want = vec![T::zero(); m * n];
    T::reference(m, k, n, a, sa, b, sb, &mut want);
    let abs = |x: &[T]| x.iter().map(|v| v.abs()).collect::<Vec<_>>();
    let mut bound = vec![T::zero(); m * n];
    T::reference(m, k, n, &abs(a), sa, &abs(b), sb, &mut bound);
    (want, bound)
}

/// `gemm_with` (`product`: sentinels past every buffer checked) against matrixmultiply,
/// element by element. Either result differs from the exact sum by at most
/// `γ_k Σ|a||b|` (`γ_k ≈ k ε / 2`, with or without fused multiply-adds, in any order), so
/// they differ from each other by at most `k ε Σ|a||b|`; the test allows `(k + 1) ε`
/// times `Σ|a||b|` as matrixmultiply computes it.
fn against<T: Reference>(
    isa: Isa,
    blk: Blocking,
    threads: usize,
    (m, k, n): (usize, usize, usize),
    a_t: bool,
    b_t: bool,
) {
    let (a, b, got) = product::<T>(isa, blk, threads, (m, k, n), a_t, b_t);
    let (want, bound) = want_and_bound((m, k, n), (&a, a_t), (&b, b_t));
    let eps = T::epsilon() * T::of((k + 1) as f64);
    for (i, ((&got, &want), &bound)) in got.iter().zip(&want).zip(&bound).enumerate() {
        assert!(
            got.is_finite() && abs_diff_eq!(got, want, epsilon = eps * bound),
            "{isa:?} {} {m}x{k}x{n} a_t={a_t} b_t={b_t} threads={threads} c[{},{}]: \
             {got} != {want}",
            T::NAME,
            i / n,
            i % n
        );
    }
}

const TRANSPOSES: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

/// Products across the real blocking's `kc`, `mc` and `nc`, one axis at a time (the others
/// a few tiles) and all three together, at one thread.
fn real_blocks<T: Reference>() {
    for isa in isas() {
        let b = isa.blocking::<T>();
        let (mr, nr) = (b.mr, b.nr);
        for mkn in [
            (2 * mr + 1, b.kc - 1, 2 * nr + 1),
            (2 * mr + 1, b.kc + 1, 2 * nr - 1),
            (b.mc - 1, 7, 3 * nr),
            (b.mc + mr + 1, 9, 2 * nr + 3),
            (mr + 3, 11, b.nc - 1),
            (mr - 1, 6, b.nc + nr + 1),
            (b.mc + 1, b.kc + 1, b.nc + 1),
        ] {
            for (a_t, b_t) in TRANSPOSES {
                against::<T>(isa, b, 1, mkn, a_t, b_t);
            }
        }
    }
}

#[test]
fn f32_across_real_blocks_matches_matrixmultiply() {
    real_blocks::<f32>();
}

#[test]
fn f64_across_real_blocks_matches_matrixmultiply() {
    real_blocks::<f64>();
}

/// Products split over 2 threads with tiny and real blocks, and one of few columns, which
/// the kernels whose tile is wider than tall swap (then the threads split the swapped
/// product's columns). `bit_identical_across_threads` holds the f32 products with both or
/// neither side transposed to one thread's bits, which the triple loop checks: those
/// take the mixed transposes here (the products are large for a debug build, and
/// larger under qemu-aarch64), the others every transpose.
fn two_threads<T: Reference>() {
    const MIXED: [(bool, bool); 2] = [(true, false), (false, true)];
    let f32 = size_of::<T>() == 4;
    for isa in isas() {
        let (tb, rb) = (tiny::<T>(isa), isa.blocking::<T>());
        // the third extent of a product of `PAR_MIN` multiply-adds
        let fill = |x: usize, y: usize| PAR_MIN.div_ceil(x * y);
        let few = rb.mr.min(rb.nr) - 1;
        let (m, k) = (rb.mc + 3, rb.kc + 5);
        let straight: &[_] = if f32 { &MIXED } else { &TRANSPOSES };
        for (blk, mkn, few_columns, transposes) in [
            (
                tb,
                (3 * tb.mr + 1, 7, fill(3 * tb.mr + 1, 7)),
                false,
                &MIXED[..],
            ),
            (rb, (m, k, fill(m, k)), false, straight),
            (
                rb,
                (fill(rb.kc + 1, few), rb.kc + 1, few),
                true,
                &TRANSPOSES[..],
            ),
        ] {
            let p = plan::<T>(blk, mkn.0, mkn.1, mkn.2, 2);
            if cfg!(feature = "rayon") {
                assert_eq!(p.threads, 2, "{isa:?} {mkn:?} does not split");
            }
            let swapped = few_columns && swaps::<T>(isa, false);
            assert_eq!(p.swap, swapped, "{isa:?} {mkn:?}");
            for &(a_t, b_t) in transposes {
                against::<T>(isa, blk, 2, mkn, a_t, b_t);
            }
        }
    }
}

#[test]
fn f32_on_two_threads_matches_matrixmultiply() {
    two_threads::<f32>();
}

#[test]
fn f64_on_two_threads_matches_matrixmultiply() {
    two_threads::<f64>();
}

/// Thin products and the packed products just past them: `THIN` and `THIN + 1` rows,
/// depth and columns, and few columns of an `a` at and past `THIN_COLUMNS_MAX_A` elements.
#[test]
fn thin_edges_match_matrixmultiply() {
    let (t, max_a) = (thin::THIN, thin::THIN_COLUMNS_MAX_A);
    let cases = [
        ((t, 37, 45), true),
        ((t + 1, 37, 45), false),
        ((40, t, 45), true),
        ((40, t + 1, 45), false),
        ((128, max_a / 128, t), true),
        ((128, max_a / 128 + 1, t), false),
        ((128, 40, t + 1), false),
    ];
    for isa in isas() {
        for (mkn, is_thin) in cases {
            let (m, k, n) = mkn;
            assert_eq!(thin::is_thin(m, k, n), is_thin, "{mkn:?}");
            let blk = isa.blocking::<f32>();
            assert_eq!(scratch_len_with::<f32>(blk, m, k, n, 1) == 0, is_thin);
            for (a_t, b_t) in TRANSPOSES {
                against::<f32>(isa, blk, 1, mkn, a_t, b_t);
                against::<f64>(isa, isa.blocking::<f64>(), 1, mkn, a_t, b_t);
            }
        }
    }
}

/// The M configuration's products as `benches/gemm.rs` runs them (batch 64, 784-128-10):
/// forward `x · W`, weight gradients `xᵀ · dy` (`a_t`), the input gradient `dy · Wᵀ`
/// (`b_t`), on the real blocking, at 1 and 2 threads.
#[test]
fn m_step_products_match_matrixmultiply() {
    let cases = [
        ((64, 784, 128), false, false),
        ((64, 128, 10), false, false),
        ((784, 64, 128), true, false),
        ((128, 64, 10), true, false),
        ((64, 10, 128), false, true),
    ];
    for isa in isas() {
        for (mkn, a_t, b_t) in cases {
            for threads in [1, 2] {
                against::<f32>(isa, isa.blocking::<f32>(), threads, mkn, a_t, b_t);
            }
        }
    }
}
