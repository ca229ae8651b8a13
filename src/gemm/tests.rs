//! Tests of the GEMM: against a triple loop, at every block boundary, every kernel,
//! both orientations, and bit-identity across thread counts; against matrixmultiply in
//! `reference`.
use super::*;
use alloc::vec;
use alloc::vec::Vec;

/// matrixmultiply as the reference, also of the NEON kernel's tests.
pub(super) mod reference;

/// The kernel versions this CPU runs.
fn isas() -> Vec<Isa> {
    let mut v = vec![Isa::Portable];
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            v.push(Isa::Avx2);
        }
        if is_x86_feature_detected!("avx512f") {
            v.push(Isa::Avx512);
        }
    }
    #[cfg(all(feature = "std", target_arch = "aarch64", target_feature = "neon"))]
    v.push(Isa::Neon);
    v
}

/// Small blocks, so that small products cross every block boundary.
fn tiny<T>(isa: Isa) -> Blocking {
    let b = isa.blocking::<T>();
    Blocking {
        kc: 5,
        mc: 2 * b.mr,
        nc: 2 * b.nr,
        ..b
    }
}

/// `len` values in [-1, 1) from a linear congruential generator.
fn values<T: Scalar>(len: usize, seed: u64) -> Vec<T> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            T::of((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        })
        .collect()
}

const SENTINEL: f64 = 12345.0;

/// `c` of `gemm_with` on random operands, after checking that no scratch past what
/// `plan` asked for and nothing of `c` past `m * n` was written; and the operands.
#[allow(clippy::type_complexity)]
fn product<T: Scalar>(
    isa: Isa,
    blk: Blocking,
    threads: usize,
    (m, k, n): (usize, usize, usize),
    a_t: bool,
    b_t: bool,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let (a, b) = (values::<T>(m * k, 1), values::<T>(k * n, 2));
    let p = plan::<T>(blk, m, k, n, threads);
    let len = p.len();
    let mut scratch = vec![T::of(SENTINEL); len + 100];
    let mut c = vec![T::nan(); m * n + 3];
    c[m * n..].fill(T::of(SENTINEL));
    let (ab, s) = ((&a[..], &b[..]), &mut scratch[..]);
    gemm_with(isa, blk, threads, m, k, n, ab.0, a_t, ab.1, b_t, &mut c, s);
    assert!(scratch[len..].iter().all(|&s| s == T::of(SENTINEL)));
    assert!(c[m * n..].iter().all(|&s| s == T::of(SENTINEL)));
    c.truncate(m * n);
    (a, b, c)
}

/// `product`, checked against a triple loop in f64 within the error bound of a
/// length-`k` sum.
fn check<T: Scalar>(
    isa: Isa,
    blk: Blocking,
    threads: usize,
    (m, k, n): (usize, usize, usize),
    a_t: bool,
    b_t: bool,
) -> Vec<T> {
    let (a, b, c) = product::<T>(isa, blk, threads, (m, k, n), a_t, b_t);
    let f = |x: T| x.to_f64().unwrap();
    let eps = f(T::epsilon());
    for i in 0..m {
        for j in 0..n {
            let (mut sum, mut abs) = (0.0, 0.0);
            for p in 0..k {
                let x = f(if a_t { a[p * m + i] } else { a[i * k + p] });
                let y = f(if b_t { b[j * k + p] } else { b[p * n + j] });
                sum += x * y;
                abs += (x * y).abs();
            }
            let got = f(c[i * n + j]);
            assert!(
                (got - sum).abs() <= (k + 1) as f64 * eps * abs,
                "{isa:?} {} {m}x{k}x{n} a_t={a_t} b_t={b_t} c[{i},{j}]: {got} != {sum}",
                T::NAME
            );
        }
    }
    c
}

fn shapes<T: Scalar>() {
    for isa in isas() {
        let tb = tiny::<T>(isa);
        let (mr, nr, kc, mc, nc) = (tb.mr, tb.nr, tb.kc, tb.mc, tb.nc);
        let mut cases = vec![(1, 1, 1), (7, 13, 5), (2, 3, 4), (1, 17, 33), (33, 1, 2)];
        for m in [1, mr - 1, mr + 1, mc + 1, 2 * mc + 3] {
            for k in [1, kc, kc + 1, 2 * kc + 3] {
                for n in [1, nr - 1, nr + 1, nc + 1, 2 * nc + 5] {
                    cases.push((m, k, n));
                }
            }
        }
        for &mkn in &cases {
            for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
                check::<T>(isa, tb, 1, mkn, a_t, b_t);
                check::<T>(isa, isa.blocking::<T>(), 1, mkn, a_t, b_t);
            }
        }
        // One product past every block of the real blocking.
        let b = isa.blocking::<T>();
        check::<T>(isa, b, 1, (b.mc + 1, b.kc + 1, b.nc + 1), true, false);
    }
}

#[test]
fn f64_matches_triple_loop() {
    shapes::<f64>();
}

#[test]
fn f32_matches_triple_loop() {
    shapes::<f32>();
}

#[test]
fn thin_products_match_triple_loop_and_packed_chains() {
    for isa in isas() {
        let blk = isa.blocking::<f32>();
        // few rows (a batch of one), a small depth (its weight gradient), dot products of
        // two lane blocks and a remainder
        for mkn in [
            (1, 784, 300),
            (4, 40, 7),
            (3, 1, 50),
            (300, 1, 20),
            (70, 4, 33),
        ] {
            for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
                check::<f32>(isa, blk, 1, mkn, a_t, b_t);
                check::<f64>(isa, blk, 1, mkn, a_t, b_t);
            }
        }
        // Without a transposed `b`, a thin product's rows are the packed product's bits:
        // the same chain of multiply-adds over `k`, in order.
        let (k, n) = (37, 45);
        for a_t in [false, true] {
            let (_, _, packed) = product::<f32>(isa, blk, 1, (9, k, n), a_t, false);
            let a = values::<f32>(9 * k, 1);
            // the first 3 rows of `a`, in its layout
            let a3: Vec<f32> = if a_t {
                (0..k).flat_map(|p| a[p * 9..p * 9 + 3].to_vec()).collect()
            } else {
                a[..3 * k].to_vec()
            };
            let b = values::<f32>(k * n, 2);
            let mut c = vec![f32::NAN; 3 * n];
            gemm_with(isa, blk, 1, 3, k, n, &a3, a_t, &b, false, &mut c, &mut []);
            assert_eq!(c, packed[..3 * n], "{isa:?} a_t={a_t}");
        }
    }
}

/// Products of few columns (a two-class output layer, its gradients) are thin: computed
/// with no scratch at all, each element the chain of multiply-adds over `k` in order from
/// zero (the packed kernels' bits), fused where the kernel fuses.
#[test]
fn few_columns_are_thin_chains_without_scratch() {
    for isa in isas() {
        let blk = isa.blocking::<f32>();
        let fused = isa != Isa::Portable;
        // the two-moons MLP's output layer and the gradient of its weights; a 4-column
        // edge; the largest `a` that is thin
        for (m, k, n) in [(32, 16, 2), (16, 32, 2), (70, 9, 4), (128, 128, 1)] {
            assert_eq!(scratch_len_with::<f32>(blk, m, k, n, 2), 0, "{m}x{k}x{n}");
            for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
                let (a, b) = (values::<f32>(m * k, 1), values::<f32>(k * n, 2));
                let mut c = vec![f32::NAN; m * n];
                gemm_with(isa, blk, 1, m, k, n, &a, a_t, &b, b_t, &mut c, &mut []);
                for i in 0..m {
                    for j in 0..n {
                        let chain = (0..k).fold(0.0f32, |acc, p| {
                            let x = if a_t { a[p * m + i] } else { a[i * k + p] };
                            let y = if b_t { b[j * k + p] } else { b[p * n + j] };
                            if fused {
                                x.mul_add(y, acc)
                            } else {
                                x * y + acc
                            }
                        });
                        assert_eq!(
                            c[i * n + j].to_bits(),
                            chain.to_bits(),
                            "{isa:?} {m}x{k}x{n} a_t={a_t} b_t={b_t} ({i}, {j})"
                        );
                    }
                }
            }
        }
        // one more element of `a` and it packs
        assert!(!thin::is_thin(128, 129, 1));
        assert!(scratch_len_with::<f32>(blk, 128, 129, 1, 1) > 0);
    }
}

/// A product one tile side thin is swapped exactly when that saves a quarter of the
/// padded tile area: with `big` rows (whole tiles either way) and one column, the straight
/// product pads to `big · nr` and the swapped one to `big · mr`. So a tile wider than tall
/// (x86) swaps few columns, one taller than wide (NEON f64) few rows, a square one neither.
/// At least one kernel this CPU runs must swap, or the tests above miss that orientation.
#[test]
fn both_orientations_are_used() {
    let mut swapped = 0;
    for isa in isas() {
        for (b, swaps) in [
            (
                isa.blocking::<f32>(),
                [false, true].map(|rows| swaps::<f32>(isa, rows)),
            ),
            (
                isa.blocking::<f64>(),
                [false, true].map(|rows| swaps::<f64>(isa, rows)),
            ),
        ] {
            let (few_cols, few_rows) = (4 * b.mr < 3 * b.nr, 4 * b.nr < 3 * b.mr);
            assert_eq!(swaps, [few_cols, few_rows], "{isa:?} {b:?}");
            swapped += usize::from(few_cols) + usize::from(few_rows);
        }
    }
    assert!(swapped > 0, "no kernel here swaps: {:?}", isas());
}

/// Whether `isa`'s plan swaps a product of many rows and one column, or if `rows`, one row
/// and many columns.
fn swaps<T>(isa: Isa, rows: bool) -> bool {
    let b = isa.blocking::<T>();
    let big = 4 * b.mr * b.nr;
    let (m, n) = if rows { (1, big) } else { (big, 1) };
    plan::<T>(b, m, 8, n, 1).swap
}

#[test]
fn empty_products() {
    for isa in isas() {
        let blk = isa.blocking::<f64>();
        // k = 0: c = 0 (an empty sum), overwriting what was there.
        let mut c = vec![f64::NAN; 6];
        gemm_with(
            isa,
            blk,
            1,
            2,
            0,
            3,
            &[],
            false,
            &[],
            false,
            &mut c,
            &mut [],
        );
        assert_eq!(c, [0.0; 6]);
        let mut c: [f64; 0] = [];
        gemm_with(
            isa,
            blk,
            1,
            0,
            4,
            3,
            &[],
            false,
            &[1.0; 12],
            true,
            &mut c,
            &mut [],
        );
        gemm_with(
            isa,
            blk,
            1,
            3,
            4,
            0,
            &[1.0; 12],
            true,
            &[],
            true,
            &mut c,
            &mut [],
        );
        assert_eq!(scratch_len::<f64>(0, 4, 3, 2), 0);
    }
}

/// Every element is the same chain of multiply-adds however the rows are split, so the
/// bits match at any thread count, even with too little scratch for all threads.
#[test]
fn bit_identical_across_threads() {
    let bits = |c: &[f32]| c.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for isa in isas() {
        for (blk, mkn, all_depths) in [
            // the threads share one packed panel of all depths (`SHARED_ALL`)
            (tiny::<f32>(isa), (40, 11, PAR_MIN.div_ceil(440)), true),
            (
                isa.blocking::<f32>(),
                (97, 300, PAR_MIN.div_ceil(97 * 300).max(61)),
                true,
            ),
            // a panel too large for that: packed and multiplied per block of `kc` depths
            (isa.blocking::<f32>(), (17, 300, 1100), false),
        ] {
            for (a_t, b_t) in [(false, false), (true, true)] {
                let one = check::<f32>(isa, blk, 1, mkn, a_t, b_t);
                for t in [2, 3] {
                    #[cfg(feature = "rayon")]
                    {
                        let p = plan::<f32>(blk, mkn.0, mkn.1, mkn.2, t);
                        assert!(p.threads > 1);
                        assert_eq!(p.kc == mkn.1, all_depths, "{mkn:?}");
                    }
                    #[cfg(not(feature = "rayon"))]
                    let _ = all_depths;
                    let (_, _, c) = product::<f32>(isa, blk, t, mkn, a_t, b_t);
                    assert_eq!(bits(&c), bits(&one));
                }
            }
        }
    }
    // Through the thread knob, with scratch enough for 2 threads or for 1.
    let (m, k, n) = (64, 300, PAR_MIN.div_ceil(64 * 300).max(50));
    let (a, b) = (values::<f32>(m * k, 3), values::<f32>(k * n, 4));
    let run = |threads: usize, scratch_threads: usize| {
        crate::par::set_threads(threads);
        let mut s = vec![0.0; scratch_len::<f32>(m, k, n, scratch_threads)];
        let mut c = vec![0.0; m * n];
        gemm(m, k, n, &a, false, &b, true, &mut c, &mut s);
        bits(&c)
    };
    let one = run(1, 1);
    assert_eq!(run(2, 2), one);
    assert_eq!(run(2, 1), one);
    crate::par::set_threads(0);
}

/// Scratch planned for a bound splits a product of fewer rows over as many threads as
/// before shared panels of all depths (`SHARED_ALL`): short of it, the plan goes back to
/// panels per block of depths before it drops a thread.
#[test]
fn fewer_rows_keep_their_threads() {
    for isa in isas() {
        let blk = isa.blocking::<f32>();
        for (bound, k, n) in [
            (256, 1000, 10),
            (256, 1000, 20),
            (200, 700, 40),
            (96, 3000, 10),
        ] {
            let have = scratch_len_with::<f32>(blk, bound, k, n, 2);
            for m in (8..=bound).step_by(8) {
                let per_block = plan_with::<f32>(blk, m, k, n, 2, false);
                let got = fitting::<f32>(blk, m, k, n, 2, have);
                assert!(got.len() <= have, "{isa:?} {m}x{k}x{n}");
                if per_block.len() <= have {
                    assert!(
                        got.threads >= per_block.threads,
                        "{isa:?} {m}x{k}x{n} of bound {bound}: {} threads",
                        got.threads
                    );
                }
            }
        }
    }
}

/// The scratch planned for a product suffices for every smaller one (a run-time axis fed
/// fewer rows): a smaller product may take the other orientation, with larger panels.
#[test]
fn scratch_for_the_bound_fits_fewer_rows() {
    for isa in isas() {
        for (blk, f32) in [
            (isa.blocking::<f32>(), true),
            (isa.blocking::<f64>(), false),
        ] {
            let plan_of = |m, k, n, t| {
                if f32 {
                    plan::<f32>(blk, m, k, n, t)
                } else {
                    plan::<f64>(blk, m, k, n, t)
                }
            };
            let have = |m, k, n, t| {
                if f32 {
                    scratch_len_with::<f32>(blk, m, k, n, t)
                } else {
                    scratch_len_with::<f64>(blk, m, k, n, t)
                }
            };
            for threads in [1, 2, 4] {
                for bound in 1..=100 {
                    for k in [1, 5, 17, 300] {
                        for n in [1, 5, 7, 13, 17, 20, 33, 100, 1100] {
                            let have = have(bound, k, n, threads);
                            for m in 1..=bound {
                                // the one-thread plan, which gemm falls back to; none
                                // for a thin product
                                let need = if thin::is_thin(m, k, n) {
                                    0
                                } else {
                                    plan_of(m, k, n, 1).per_thread
                                };
                                assert!(
                                    need <= have,
                                    "{isa:?} f32={f32} bound {bound}, {m} rows, k {k}, n {n}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
