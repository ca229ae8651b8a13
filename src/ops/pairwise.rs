//! Pairwise summation: the accuracy of long sums (full sums, sums over axes, means,
//! softmax denominators, cross_entropy's mean over rows).
//!
//! Summed one by one in f32, `1e8` followed by `2^20 - 1` ones stays at `1e8` (every
//! `1e8 + 1` rounds back, the ulp there being 8): the error grows as `n` ulps. Summed in
//! a tree, it grows as `log2(n)`. As numpy and PyTorch do, a leaf of [`BLOCK`] elements is
//! summed into [`LANES`] running sums (one per lane, which also breaks the dependency
//! chain for speed), the lanes are added as a tree, and leaves are added pairwise, halves
//! split at a multiple of [`BLOCK`]. With `BLOCK / LANES = 4` elements per lane, the
//! example above loses at most 7 (tests/reliability.rs).
//!
//! The tree depends only on `n`: results are deterministic and the same at any thread
//! count (nothing here is split over threads). Recursion depth is `log2(n / BLOCK)`; no
//! allocation.

use crate::scalar::Scalar;

/// Running sums in a leaf.
const LANES: usize = 16;
/// Elements in a leaf.
const BLOCK: usize = 64;

/// Adds the lanes as a balanced tree.
#[inline(always)]
fn lanes_total<T: Scalar>(acc: &[T; LANES]) -> T {
    let mut w = *acc;
    let mut n = LANES;
    while n > 1 {
        n /= 2;
        for k in 0..n {
            w[k] = w[k] + w[k + n];
        }
    }
    w[0]
}

/// Where a range of `n > BLOCK` elements is split: about the middle, at a multiple of
/// `BLOCK` (so `0 < split < n`).
#[inline(always)]
fn split(n: usize) -> usize {
    (n / 2).div_ceil(BLOCK) * BLOCK
}

/// The sum of `x`.
pub(crate) fn sum<T: Scalar>(x: &[T]) -> T {
    if x.len() > BLOCK {
        let (a, b) = x.split_at(split(x.len()));
        return sum(a) + sum(b);
    }
    if x.len() <= LANES {
        // a short row (a few classes): the tree over the used lanes only
        return sum_chunks(0, x.len(), &|at, chunk: &mut [T]| {
            chunk.copy_from_slice(&x[at..at + chunk.len()]);
        });
    }
    let mut acc = [T::zero(); LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for k in 0..LANES {
            acc[k] = acc[k] + c[k];
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a = *a + v;
    }
    lanes_total(&acc)
}

/// `sum_{i < n} f(start + i)`, in the same tree as [`sum`]: for strided or computed terms.
/// Only the loop writing a lane-wide chunk of terms is generic over `f`; the tree and the
/// running sums are one copy per element type ([`sum_chunks`]), not one per caller.
#[inline]
pub(crate) fn sum_by<T: Scalar>(start: usize, n: usize, f: &impl Fn(usize) -> T) -> T {
    sum_chunks(start, n, &|at, chunk: &mut [T]| {
        for (j, c) in chunk.iter_mut().enumerate() {
            *c = f(at + j);
        }
    })
}

/// Terms of a sum, written a chunk at a time. A trait of its own rather than `dyn Fn`:
/// a closure's vtable also holds a `call_once` copy of its body.
trait Terms<T> {
    fn fill(&self, at: usize, chunk: &mut [T]);
}

impl<T, F: Fn(usize, &mut [T])> Terms<T> for F {
    #[inline(always)]
    fn fill(&self, at: usize, chunk: &mut [T]) {
        self(at, chunk);
    }
}

/// [`sum_by`] with the terms written `LANES` at a time by `fill(at, chunk)` (terms
/// `at..at + chunk.len()`): the lanes take the terms in the same order as [`sum`]'s, so
/// the result is the same bit for bit.
fn sum_chunks<T: Scalar>(start: usize, n: usize, fill: &dyn Terms<T>) -> T {
    if n <= LANES {
        // A short sum (a row of a few classes): [`lanes_total`] over the zero-padded lanes
        // without the padding. Adding a zero changes only a -0 (to +0), and a +0 put
        // anywhere in a sum of `x + y` steps moves to its end ((x + 0) + y = (x + y) + 0),
        // so the tree over the `n` used lanes, plus 0, is the padded tree bit for bit.
        let mut w = [T::zero(); LANES];
        fill.fill(start, &mut w[..n]);
        let (mut used, mut h) = (n, LANES);
        while h > 1 {
            h /= 2;
            for k in 0..used.saturating_sub(h) {
                w[k] = w[k] + w[k + h];
            }
            used = used.min(h);
        }
        return w[0] + T::zero();
    }
    if n > BLOCK {
        let h = split(n);
        return sum_chunks(start, h, fill) + sum_chunks(start + h, n - h, fill);
    }
    let mut acc = [T::zero(); LANES];
    let mut chunk = [T::zero(); LANES];
    let mut i = 0;
    while i < n {
        let m = (n - i).min(LANES);
        fill.fill(start + i, &mut chunk[..m]);
        for (a, &v) in acc.iter_mut().zip(&chunk[..m]) {
            *a = *a + v;
        }
        i += m;
    }
    lanes_total(&acc)
}

/// Columns summed at once: as many as a leaf's running sums.
const TILE: usize = 16;
/// Rows in a leaf of [`sum_columns`]: as many terms as a lane of [`sum`] takes, times 2.
const ROWS: usize = 8;

/// `out[j] = sum_r x[r * cols + j]` for `x` of `rows` rows of `cols` columns: the rows
/// summed pairwise (leaves of [`ROWS`] rows in order), [`TILE`] columns at a time so the
/// inner loop runs along contiguous memory.
pub(crate) fn sum_columns<T: Scalar>(x: &[T], rows: usize, cols: usize, out: &mut [T]) {
    for (t, o) in out.chunks_mut(TILE).enumerate() {
        let acc = tile(x, cols, t * TILE, o.len(), 0, rows);
        o.copy_from_slice(&acc[..o.len()]);
    }
}

/// The sums of columns `j0..j0 + w` over rows `r0..r0 + n`.
fn tile<T: Scalar>(x: &[T], cols: usize, j0: usize, w: usize, r0: usize, n: usize) -> [T; TILE] {
    if n > ROWS {
        let h = (n / 2).div_ceil(ROWS) * ROWS;
        let (mut a, b) = (
            tile(x, cols, j0, w, r0, h),
            tile(x, cols, j0, w, r0 + h, n - h),
        );
        for (a, b) in a.iter_mut().zip(b) {
            *a = *a + b;
        }
        return a;
    }
    let mut acc = [T::zero(); TILE];
    for r in r0..r0 + n {
        let row = &x[r * cols + j0..r * cols + j0 + w];
        for (a, &v) in acc.iter_mut().zip(row) {
            *a = *a + v;
        }
    }
    acc
}

/// Groups on the stack: extent-1 axes are dropped and neighbours of one kind merged, so
/// groups alternate and each has extent >= 2; `usize::BITS` of them would hold more than
/// `usize::MAX` elements. Sized by the target's word: two arrays of it are on the stack.
const MAX_GROUPS: usize = usize::BITS as usize;

/// `(extent, stride)` of the groups of kept (`reduced == false`) or reduced axes of `x`
/// (row-major, `dims`, non-empty), neighbours merged. `n` groups of one kind hold at least
/// `2^n` elements and `x` at most `isize::MAX`, so `n < MAX_GROUPS - 1`: no fallback.
fn groups(dims: &[usize], axes: &[usize], reduced: bool) -> ([(usize, usize); MAX_GROUPS], usize) {
    let mut g = [(0usize, 0usize); MAX_GROUPS];
    let (mut n, mut stride, mut last) = (0, 1, usize::MAX);
    for a in (0..dims.len()).rev() {
        let e = dims[a];
        if e != 1 && axes.binary_search(&a).is_ok() == reduced {
            if last == a + 1 {
                // merged with the group just below: its extent grows, its stride stays
                g[n - 1].0 *= e;
            } else {
                g[n] = (e, stride);
                n += 1;
            }
            last = a;
        } else if e == 1 && last == a + 1 {
            last = a;
        }
        stride *= e;
    }
    // innermost first above; outermost first for the row-major walks below
    g[..n].reverse();
    (g, n)
}

/// The offset of flat index `k` of the row-major walk over `g`.
#[inline(always)]
fn offset(mut k: usize, g: &[(usize, usize)]) -> usize {
    let mut at = 0;
    for &(e, s) in g.iter().rev() {
        at += k % e * s;
        k /= e;
    }
    at
}

/// The sums of `x` (row-major, `dims`, non-empty) over the sorted `axes`, in any
/// arrangement, pairwise for each output element (at a division per reduced group and
/// term).
pub(crate) fn sum_axes_strided<T: Scalar>(x: &[T], dims: &[usize], axes: &[usize], out: &mut [T]) {
    let ((kept, nk), (red, nr)) = (groups(dims, axes, false), groups(dims, axes, true));
    let r = red[..nr].iter().map(|g| g.0).product();
    for (o, v) in out.iter_mut().enumerate() {
        let base = offset(o, &kept[..nk]);
        *v = sum_chunks(0, r, &|at, chunk: &mut [T]| {
            for (j, c) in chunk.iter_mut().enumerate() {
                *c = x[base + offset(at + j, &red[..nr])];
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{sum, sum_axes_strided, sum_by, sum_columns, BLOCK, LANES};
    use alloc::vec::Vec;

    #[test]
    fn every_length_sums_every_element_once() {
        // distinct powers of two in f64 are summed exactly: a missed or doubled element shows
        for n in (0..3 * BLOCK + 5).chain([1000, 4097]) {
            let x: Vec<f64> = (0..n).map(|i| (i % 40) as f64 * 3.0 + 1.0).collect();
            let want: f64 = x.iter().sum();
            assert_eq!(sum(&x), want, "n {n}");
            assert_eq!(sum_by(0, n, &|i| x[i]), want, "n {n}");
            if n > 2 {
                assert_eq!(sum_by(1, n - 1, &|i| x[i]), want - x[0], "n {n}");
            }
            // as rows of 1..=40 columns: every column's sum, tiles and leaves crossed
            for cols in [1, 3, 16, 17, 40] {
                let rows = n / cols;
                let mut out = alloc::vec![f64::NAN; cols];
                sum_columns(&x, rows, cols, &mut out);
                for (j, o) in out.iter().enumerate() {
                    let want: f64 = (0..rows).map(|r| x[r * cols + j]).sum();
                    assert_eq!(*o, want, "n {n} cols {cols} column {j}");
                }
            }
        }
    }

    #[test]
    fn sum_by_is_sum_bit_for_bit() {
        // inexact f32 terms: any change of the tree or of the lanes' order shows in the bits
        for n in (0..3 * BLOCK + 5).chain([1000, 4097]) {
            let x: Vec<f32> = (0..n)
                .map(|i| 1.0 / (i as f32 + 0.37) - 0.013 * i as f32)
                .collect();
            let want = sum(&x).to_bits();
            assert_eq!(sum_by(0, n, &|i| x[i]).to_bits(), want, "n {n}");
            let shifted = sum_by(5, n, &|i| x[i - 5]).to_bits();
            assert_eq!(shifted, want, "n {n}");
        }
        // a short sum (at most LANES terms, the short path) against the lanes padded with
        // zeros and added as a full tree: what a device computed before the short path
        for n in 0..=LANES {
            for seed in 0..50u32 {
                let x: Vec<f32> = (0..n)
                    .map(|i| match (i as u32 * 7 + seed) % 11 {
                        0 => -0.0,
                        1 => 1e30,
                        2 => -1e30,
                        v => (v as f32 + 0.37) / (seed as f32 + 1.3) - 2.1,
                    })
                    .collect();
                let mut lanes = [0.0f32; LANES];
                lanes[..n].copy_from_slice(&x);
                let padded = super::lanes_total(&lanes);
                assert_eq!(sum(&x).to_bits(), padded.to_bits(), "n {n} seed {seed}");
                assert_eq!(sum_by(0, n, &|i| x[i]).to_bits(), padded.to_bits());
            }
        }
        // signed zeros: a sum of -0s is +0 in the lanes (they start at +0), short or long
        for n in 1..=2 * LANES + 1 {
            let x = alloc::vec![-0.0f32; n];
            assert_eq!(sum(&x).to_bits(), 0, "n {n}");
            assert_eq!(sum_by(0, n, &|i| x[i]).to_bits(), 0, "n {n}");
        }
    }

    #[test]
    fn a_large_value_does_not_swallow_the_ones_after_it() {
        // 1e8 + (2^20 - 1) ones = 101,048,575; f32 holds it to within 4, ones in a row
        // would each round away (1e8 + 1 -> 1e8)
        let mut x = alloc::vec![1.0f32; 1 << 20];
        x[0] = 1e8;
        let exact = 101_048_575.0f64;
        assert!((f64::from(sum(&x)) - exact).abs() <= 8.0, "{}", sum(&x));
        let s = sum_by(0, x.len(), &|i| x[i]);
        assert!((f64::from(s) - exact).abs() <= 8.0, "{s}");
        // down the columns of [2^19, 2]: 1e8 then ones in column 0, ones in column 1
        let mut out = [0.0f32; 2];
        sum_columns(&x, 1 << 19, 2, &mut out);
        assert!(
            (f64::from(out[0]) - (1e8 + 524_287.0)).abs() <= 8.0,
            "{}",
            out[0]
        );
        assert_eq!(out[1], 524_288.0);
    }

    #[test]
    fn strided_sums_over_any_axes() {
        // against a sum in flat order, over every subset of the axes of [2, 1, 3, 4, 1, 5]
        let dims = [2usize, 1, 3, 4, 1, 5];
        let n: usize = dims.iter().product();
        let x: Vec<f64> = (0..n).map(|i| (i * 7 % 11) as f64).collect();
        for mask in 0u32..64 {
            let axes: Vec<usize> = (0..6).filter(|a| mask >> a & 1 == 1).collect();
            let kept: Vec<usize> = (0..6)
                .filter(|a| mask >> a & 1 == 0)
                .map(|a| dims[a])
                .collect();
            let mut want = alloc::vec![0.0; kept.iter().product()];
            for (i, &v) in x.iter().enumerate() {
                let (mut rem, mut o, mut stride) = (i, 0, 1);
                for a in (0..6).rev() {
                    let k = rem % dims[a];
                    rem /= dims[a];
                    if mask >> a & 1 == 0 {
                        o += k * stride;
                        stride *= dims[a];
                    }
                }
                want[o] += v;
            }
            let mut got = alloc::vec![f64::NAN; want.len()];
            sum_axes_strided(&x, &dims, &axes, &mut got);
            assert_eq!(got, want, "axes {axes:?}");
        }
    }
}
