//! The NEON kernel against the portable fused kernel (bits) and against matrixmultiply's
//! NEON sgemm and dgemm (values), on the shapes of `gemm/tests.rs`: block boundaries of
//! tiny and real blockings, thin products, every transpose.
use super::super::tests::reference::{want_and_bound, Reference};
use super::super::{gemm_with, Blocking, Isa};
use crate::scalar::Scalar;
use alloc::vec;
use alloc::vec::Vec;
use approx::abs_diff_eq;

/// `len` values in [-1, 1) from a linear congruential generator.
fn values<T: Scalar>(len: usize, seed: u64) -> Vec<T> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            T::of((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        })
        .collect()
}

/// `gemm_with` on the NEON kernel against matrixmultiply, element by element within twice
/// the error bound of a length-`k` sum (each differs from the exact sum by at most one).
fn against<T: Reference>(blk: Blocking, (m, k, n): (usize, usize, usize), a_t: bool, b_t: bool) {
    let (a, b) = (values::<T>(m * k, 3), values::<T>(k * n, 4));
    let (want, bound) = want_and_bound((m, k, n), (&a, a_t), (&b, b_t));
    let threads = 1;
    let mut scratch = vec![T::zero(); super::super::scratch_len_with::<T>(blk, m, k, n, threads)];
    let mut got = vec![T::nan(); m * n];
    gemm_with(
        Isa::Neon,
        blk,
        threads,
        m,
        k,
        n,
        &a,
        a_t,
        &b,
        b_t,
        &mut got,
        &mut scratch,
    );
    let eps = T::epsilon() * T::of(2.0 * (k + 1) as f64);
    for (i, ((&got, &want), &bound)) in got.iter().zip(&want).zip(&bound).enumerate() {
        let (r, c) = (i / n, i % n);
        assert!(
            got.is_finite() && abs_diff_eq!(got, want, epsilon = eps * bound),
            "{} {m}x{k}x{n} a_t={a_t} b_t={b_t} c[{r},{c}]: {got} != {want}",
            T::NAME
        );
    }
}

/// Every shape `gemm/tests.rs` checks, for `T`, against matrixmultiply.
fn shapes<T: Reference>() {
    let real = Isa::Neon.blocking::<T>();
    let tiny = Blocking {
        kc: 5,
        mc: 2 * real.mr,
        nc: 2 * real.nr,
        ..real
    };
    let (mr, nr, kc, mc, nc) = (tiny.mr, tiny.nr, tiny.kc, tiny.mc, tiny.nc);
    let mut cases = vec![(1, 1, 1), (7, 13, 5), (2, 3, 4), (1, 17, 33), (33, 1, 2)];
    // thin products: a batch of one, a small depth, dot products with a remainder
    cases.extend([
        (1, 784, 300),
        (4, 40, 7),
        (3, 1, 50),
        (300, 1, 20),
        (70, 4, 33),
    ]);
    for m in [1, mr - 1, mr + 1, mc + 1, 2 * mc + 3] {
        for k in [1, kc, kc + 1, 2 * kc + 3] {
            for n in [1, nr - 1, nr + 1, nc + 1, 2 * nc + 5] {
                cases.push((m, k, n));
            }
        }
    }
    for &mkn in &cases {
        for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
            against::<T>(tiny, mkn, a_t, b_t);
            against::<T>(real, mkn, a_t, b_t);
        }
    }
    // past every block of the real blocking, and a square product of several tiles
    against::<T>(real, (real.mc + 1, real.kc + 1, real.nc + 1), true, false);
    against::<T>(real, (67, 67, 67), false, true);
}

#[test]
fn f32_matches_matrixmultiply() {
    shapes::<f32>();
}

#[test]
fn f64_matches_matrixmultiply() {
    shapes::<f64>();
}

#[test]
fn neon_is_chosen_with_its_tiles() {
    assert_eq!(Isa::get(), Isa::Neon);
    let (s, d) = (Isa::Neon.blocking::<f32>(), Isa::Neon.blocking::<f64>());
    assert_eq!((s.mr, s.nr, d.mr, d.nr), (8, 8, 8, 4));
}

/// The NEON tile has the bits of the portable kernel with fused multiply-adds, from zero
/// and from loaded partial sums, in rows of `c` longer than the tile.
fn same_bits<T: Scalar, const MR: usize, const NR: usize>() {
    for kc in [1, 2, 7, 64] {
        let (ap, bp) = (values::<T>(MR * kc, kc as u64), values::<T>(NR * kc, 99));
        let rsc = NR + 3;
        for load in [false, true] {
            let start = values::<T>(MR * rsc, 7);
            let (mut neon, mut portable) = (start.clone(), start.clone());
            super::micro::<T, MR, NR>(&ap, &bp, &mut neon, rsc, load);
            super::super::kernel::micro::<T, MR, NR, true>(&ap, &bp, &mut portable, rsc, load);
            let bits = |c: &[T]| {
                c.iter()
                    .map(|x| x.to_f64().map(f64::to_bits))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                bits(&neon),
                bits(&portable),
                "{} kc {kc} load {load}",
                T::NAME
            );
            // the padding between rows is untouched
            for i in 0..MR {
                assert_eq!(
                    bits(&neon[i * rsc + NR..][..3]),
                    bits(&start[i * rsc + NR..][..3])
                );
            }
            // and the tile is a product: from zero, not the start values
            if !load {
                assert_ne!(bits(&neon[..NR]), bits(&start[..NR]));
            }
        }
    }
}

#[test]
fn tiles_have_the_fused_portable_bits() {
    same_bits::<f32, 8, 8>();
    same_bits::<f64, 8, 4>();
    // other widths: whole vectors, and the portable fallback
    same_bits::<f32, 4, 16>();
    same_bits::<f64, 6, 2>();
    same_bits::<f32, 3, 5>();
}
