//! Every small window against a plain reference: kernels, strides and paddings that
//! cross the input's edges in every way, on inputs with and without ties, values and
//! gradients; and every window the reference calls invalid must be a shape error.

use super::super::testing::{eval, grads_of, rand_array};
use super::window::Geom;
use super::Window;
use crate::prelude::*;
use crate::scalar::Scalar;
use ndarray::ArrayD;

/// A window over `[H, W]` (1-D: `H = 1`, kernel 1 along it).
#[derive(Clone, Copy, Debug)]
struct Case {
    hw: [usize; 2],
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
    d: usize,
}

impl Case {
    fn valid(&self) -> bool {
        (0..2).all(|i| self.p[i] * 2 <= self.k[i] && self.hw[i] + 2 * self.p[i] >= self.k[i])
    }

    fn shape(&self, n: usize, c: usize) -> Vec<usize> {
        match self.d {
            1 => vec![n, c, self.hw[1]],
            _ => vec![n, c, self.hw[0], self.hw[1]],
        }
    }

    fn pool<'g>(&self, x: Tensor<'g, f64>, max: bool) -> Tensor<'g, f64> {
        let (k, s, p) = (self.k, self.s, self.p);
        match (self.d, max) {
            (1, true) => x.max_pool1d(Window::new(k[1]).stride(s[1]).padding(p[1])),
            (1, false) => x.avg_pool1d(Window::new(k[1]).stride(s[1]).padding(p[1])),
            (_, true) => x.max_pool2d(Window::new(k).stride(s).padding(p)),
            (_, false) => x.avg_pool2d(Window::new(k).stride(s).padding(p)),
        }
    }

    /// The pooled values and `d/dx sum(y * w)`, straight from the definition: the padded
    /// plane read cell by cell (`-inf` or 0 outside), the first largest cell in row-major
    /// order taking the gradient.
    fn reference(&self, x: &ArrayD<f64>, w: &ArrayD<f64>, max: bool) -> (Vec<f64>, Vec<f64>) {
        let [h, wd] = self.hw;
        let planes = x.len() / (h * wd);
        let o = [0, 1].map(|i| (self.hw[i] + 2 * self.p[i] - self.k[i]) / self.s[i] + 1);
        let xs = x.as_slice().unwrap();
        let (mut y, mut dx) = (Vec::new(), vec![0.0; x.len()]);
        for n in 0..planes {
            for oh in 0..o[0] {
                for ow in 0..o[1] {
                    let (mut best, mut at, mut sum) = (f64::NEG_INFINITY, None, 0.0);
                    for i in 0..self.k[0] {
                        for j in 0..self.k[1] {
                            let r = (oh * self.s[0] + i)
                                .checked_sub(self.p[0])
                                .filter(|&r| r < h);
                            let c = (ow * self.s[1] + j)
                                .checked_sub(self.p[1])
                                .filter(|&c| c < wd);
                            let cell = r.zip(c).map(|(r, c)| n * h * wd + r * wd + c);
                            let v = cell.map_or(f64::NEG_INFINITY, |i| xs[i]);
                            sum += cell.map_or(0.0, |i| xs[i]);
                            if v > best {
                                (best, at) = (v, cell);
                            }
                        }
                    }
                    let g = w.as_slice().unwrap()[y.len()];
                    let area = (self.k[0] * self.k[1]) as f64;
                    if max {
                        y.push(best);
                        dx[at.unwrap()] += g;
                    } else {
                        y.push(sum / area);
                        for i in 0..self.k[0] {
                            for j in 0..self.k[1] {
                                let r = (oh * self.s[0] + i)
                                    .checked_sub(self.p[0])
                                    .filter(|&r| r < h);
                                let c = (ow * self.s[1] + j)
                                    .checked_sub(self.p[1])
                                    .filter(|&c| c < wd);
                                if let (Some(r), Some(c)) = (r, c) {
                                    dx[n * h * wd + r * wd + c] += g / area;
                                }
                            }
                        }
                    }
                }
            }
        }
        (y, dx)
    }
}

/// Checks `case`; whether it was a valid window.
fn check_case(case: Case, seed: u64) -> bool {
    let shape = case.shape(2, 2);
    for max in [true, false] {
        let g = Graph::<f64>::new();
        let _ = case.pool(g.input("x", shape.clone()), max);
        let err = g.check().err();
        assert_eq!(err.is_none(), case.valid(), "{case:?} max {max}: {err:?}");
        if !case.valid() {
            assert!(
                matches!(err, Some(Error::Shape { .. })),
                "{case:?}: {err:?}"
            );
            continue;
        }
        // distinct values, then integers from {0, 1, 2} (ties everywhere)
        let x_distinct = rand_array(&shape, seed, -1.0, 1.0);
        let x_ties = x_distinct.mapv(|v| ((v + 1.0) * 1.5).floor());
        for x in [x_distinct, x_ties] {
            let x = [x];
            let y = eval(&x, |_, t| case.pool(t[0], max));
            let w = rand_array(y.shape(), seed + 1, -1.0, 1.0);
            let (y_want, dx_want) = case.reference(&x[0], &w, max);
            let dx = grads_of(&x, |g, t| case.pool(t[0], max) * g.constant(w.clone()));
            for (a, b) in y.iter().zip(&y_want).chain(dx[0].iter().zip(&dx_want)) {
                approx::assert_abs_diff_eq!(*a, *b, epsilon = 1e-12);
            }
            assert_eq!((y.len(), dx[0].len()), (y_want.len(), dx_want.len()));
        }
    }
    case.valid()
}

#[test]
fn every_small_1d_window_matches_the_reference() {
    let (mut seed, mut valid) = (0, 0);
    for l in 1..=6 {
        for k in 1..=4 {
            for s in 1..=3 {
                for p in 0..=3 {
                    seed += 2;
                    let case = Case {
                        hw: [1, l],
                        k: [1, k],
                        s: [1, s],
                        p: [0, p],
                        d: 1,
                    };
                    valid += usize::from(check_case(case, seed));
                }
            }
        }
    }
    // of 288 windows, p <= k / 2 leaves 8 (k, p) pairs x 3 strides x 6 lengths = 144;
    // k <= L + 2p drops (k, p, L) = (2, 0, 1), (3, 0, 1..=2), (4, 0, 1..=3), (4, 1, 1)
    // at each stride: 144 - 7 x 3 = 123
    assert_eq!((seed / 2, valid), (288, 123));
}

#[test]
fn small_2d_windows_match_the_reference() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut valid = 0;
    for seed in 0..150 {
        let mut r = |lo: usize, hi: usize| rng.random_range(lo..=hi);
        let case = Case {
            hw: [r(1, 5), r(1, 5)],
            k: [r(1, 4), r(1, 4)],
            s: [r(1, 3), r(1, 3)],
            p: [r(0, 2), r(0, 2)],
            d: 2,
        };
        valid += usize::from(check_case(case, 1000 + 2 * seed));
    }
    assert!((30..120).contains(&valid), "{valid} of 150 valid");
}

#[test]
fn tiling_2d_windows_match_the_reference() {
    // the kernels with a fast path (stride = kernel, no padding), and one without, on
    // planes that they divide and planes with rows and columns left over
    let mut seed = 0;
    for k in [[2, 2], [3, 3], [1, 2], [1, 3], [2, 3]] {
        for h in k[0]..=k[0] * 2 + 1 {
            for w in k[1]..=k[1] * 2 + 1 {
                seed += 2;
                let case = Case {
                    hw: [h, w],
                    k,
                    s: k,
                    p: [0, 0],
                    d: 2,
                };
                assert!(check_case(case, 5000 + seed), "{case:?}");
            }
        }
    }
}

/// Planes of `hw` with entries drawn from values that tie, signed zeros and NaNs.
fn awkward_planes<T: Scalar>(hw: [usize; 2], planes: usize, seed: u64) -> Vec<T> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let pick = [-1.0, 0.0, -0.0, 1.0, f64::NAN, 2.0, -2.5];
    (0..hw[0] * hw[1] * planes)
        .map(|_| T::from_f64(pick[rng.random_range(0..pick.len())]).unwrap())
        .collect()
}

fn fast_matches_general<T: Scalar>() {
    use super::{fast, general};
    let bits = |v: &[T]| {
        v.iter()
            .map(|x| x.to_f64().unwrap().to_bits())
            .collect::<Vec<_>>()
    };
    let mut seed = 0;
    for k in [[1, 2], [1, 3], [2, 2], [3, 3]] {
        for max in [true, false] {
            let g = Geom::of(Window::<2>::new(k), max);
            assert_eq!(g.tiling(), Some(k));
            for h in k[0]..=7 {
                for w in k[1]..=7 {
                    seed += 1;
                    let hw = [h, w];
                    let ohw = g.out_hw(hw);
                    let xp = awkward_planes::<T>(hw, 1, seed);
                    let vp = awkward_planes::<T>(hw, 1, seed + 1000);
                    let gp = awkward_planes::<T>(ohw, 1, seed + 2000);
                    let inv = T::from_f64(1.0 / (k[0] * k[1]) as f64).unwrap();
                    // outputs start as garbage: a kernel must write every cell
                    let (mut a, mut b) = (
                        vec![T::one(); ohw[0] * ohw[1]],
                        vec![T::zero(); ohw[0] * ohw[1]],
                    );
                    let (mut da, mut db) = (vec![T::one(); h * w], vec![T::zero(); h * w]);
                    let case = format!("k {k:?} hw {hw:?}");
                    if max {
                        for v in [None, Some(&vp[..])] {
                            assert!(fast::max(&g, hw, &xp, v, &mut a));
                            general::max(&g, hw, &xp, v, &mut b);
                            assert_eq!(bits(&a), bits(&b), "max {case} gather {}", v.is_some());
                        }
                        assert!(fast::scatter(&g, hw, &xp, &gp, &mut da));
                        general::scatter(&g, hw, &xp, &gp, &mut db);
                        assert_eq!(bits(&da), bits(&db), "max grad {case}");
                    } else {
                        assert!(fast::avg(&g, hw, &xp, inv, &mut a));
                        general::avg(&g, hw, &xp, inv, &mut b);
                        assert_eq!(bits(&a), bits(&b), "avg {case}");
                        assert!(fast::avg_grad(&g, hw, &gp, inv, &mut da));
                        general::avg_grad(&g, hw, &gp, inv, &mut db);
                        assert_eq!(bits(&da), bits(&db), "avg grad {case}");
                    }
                }
            }
        }
    }
}

#[test]
fn fast_paths_are_bit_identical_to_the_general_kernels() {
    fast_matches_general::<f32>();
    fast_matches_general::<f64>();
}
