//! Reductions over given axes (with `keepdim`) or over everything: sum, mean, max, and
//! the composite min. Axes may be negative (`-1` is the last). var and std are in
//! `moments.rs`.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::panic::Location;

use super::{Inputs, Op, Out};
use crate::error::Result;
use crate::graph::Tensor;
use crate::scalar::Scalar;
use crate::shape::{AxisArg, Shape};

/// Folds `x` (row-major, `dims`) over the sorted `axes` into `out`, starting every output
/// element at `init`. No allocation; the order of accumulation depends only on the shape.
fn fold<T: Scalar>(
    x: &[T],
    dims: &[usize],
    axes: &[usize],
    out: &mut [T],
    init: T,
    f: impl Fn(T, T) -> T,
) {
    out.fill(init);
    if x.is_empty() {
        return;
    }
    let r = dims.len();
    let trailing = axes
        .iter()
        .enumerate()
        .all(|(i, &a)| a == r - axes.len() + i);
    let leading = axes.iter().enumerate().all(|(i, &a)| a == i);
    if trailing {
        // out[i] = f over the contiguous block i; four accumulators break the dependency
        // chain (and keep f32 sums more accurate).
        let block = x.len() / out.len().max(1);
        for (o, chunk) in out.iter_mut().zip(x.chunks_exact(block)) {
            let mut acc = [init; 4];
            let mut quads = chunk.chunks_exact(4);
            for q in &mut quads {
                for k in 0..4 {
                    acc[k] = f(acc[k], q[k]);
                }
            }
            let mut v = f(f(acc[0], acc[1]), f(acc[2], acc[3]));
            for &e in quads.remainder() {
                v = f(v, e);
            }
            *o = v;
        }
    } else if leading {
        for row in x.chunks_exact(out.len()) {
            for (o, &e) in out.iter_mut().zip(row) {
                *o = f(*o, e);
            }
        }
    } else {
        for (n, &e) in x.iter().enumerate() {
            let (mut rem, mut off, mut stride) = (n, 0, 1);
            for a in (0..r).rev() {
                let i = rem % dims[a];
                rem /= dims[a];
                if axes.binary_search(&a).is_err() {
                    off += i * stride;
                    stride *= dims[a];
                }
            }
            out[off] = f(out[off], e);
        }
    }
}

/// Sums `x` (row-major, `dims`) over the sorted `axes` into `out`. Axes in one run
/// (`[p, q)`) are summed pairwise (see `pairwise.rs`): `x` is then `[outer, r, inner]` and
/// `out[o, j] = sum_k x[o, k, j]`. Other axis sets (`[0, 2, 3]` of NCHW) are summed
/// pairwise too, through strided offsets.
fn sum_fold<T: Scalar>(x: &[T], dims: &[usize], axes: &[usize], out: &mut [T]) {
    let run = axes.windows(2).all(|w| w[1] == w[0] + 1);
    let (Some(&p), Some(&last)) = (axes.first(), axes.last()) else {
        // no axes: a copy
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v;
        }
        return;
    };
    if !run {
        if x.is_empty() {
            out.fill(T::zero());
        } else {
            super::pairwise::sum_axes_strided(x, dims, axes, out);
        }
        return;
    }
    let r: usize = dims[p..=last].iter().product();
    let inner: usize = dims[last + 1..].iter().product();
    if r == 0 || out.is_empty() {
        out.fill(T::zero());
        return;
    }
    if inner == 1 {
        for (o, chunk) in out.iter_mut().zip(x.chunks_exact(r)) {
            *o = super::pairwise::sum(chunk);
        }
        return;
    }
    for (o, block) in out.chunks_exact_mut(inner).zip(x.chunks_exact(r * inner)) {
        super::pairwise::sum_columns(block, r, inner, o);
    }
}

/// Sum over `axes` (sorted), keeping them as size 1 if `keepdim`.
#[derive(Debug)]
pub struct Sum {
    axes: Vec<usize>,
    keepdim: bool,
}

/// Maximum over `axes` (sorted), keeping them as size 1 if `keepdim`. The gradient is
/// shared equally among tied maxima.
#[derive(Debug)]
pub struct Max {
    axes: Vec<usize>,
    keepdim: bool,
}

fn reduced_shape(s: &Shape, axes: &[usize], keepdim: bool) -> core::result::Result<Shape, String> {
    let axes = s.check_axes(axes)?;
    Ok(s.reduced(&axes, keepdim))
}

impl<T: Scalar> Op<T> for Sum {
    fn heap_bytes(&self) -> usize {
        self.axes.capacity() * core::mem::size_of::<usize>()
    }
    fn name(&self) -> &'static str {
        "sum"
    }
    fn shape(&self, s: &[&Shape]) -> core::result::Result<Shape, String> {
        reduced_shape(s[0], &self.axes, self.keepdim)
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        sum_fold(x.slice(0), x.shape(0).dims(), &self.axes, out.slice());
        Ok(())
    }
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let shape = x[0].shape();
        let kept = shape.reduced(&self.axes, true);
        vec![Some(g.reshape(kept).broadcast_to(shape))]
    }
}

impl<T: Scalar> Op<T> for Max {
    fn heap_bytes(&self) -> usize {
        self.axes.capacity() * core::mem::size_of::<usize>()
    }
    fn name(&self) -> &'static str {
        "max"
    }
    fn shape(&self, s: &[&Shape]) -> core::result::Result<Shape, String> {
        let axes = s[0].check_axes(&self.axes)?;
        if let Some(&a) = axes.iter().find(|&&a| s[0].dim(a) == 0) {
            return Err(format!("cannot take the max over axis {a}, which is empty"));
        }
        Ok(s[0].reduced(&axes, self.keepdim))
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let dims = x.shape(0).dims();
        let max = |acc: T, v: T| if v > acc || v.is_nan() { v } else { acc };
        fold(
            x.slice(0),
            dims,
            &self.axes,
            out.slice(),
            T::neg_infinity(),
            max,
        );
        Ok(())
    }
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        out: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let kept = x[0].shape().reduced(&self.axes, true);
        let mask = x[0].eq(out.reshape(kept.clone()));
        let count = mask.sum_axes(&self.axes, true);
        vec![Some(mask * g.reshape(kept) / count)]
    }
}

/// `1 / (rows * per_row)` for the rows fed in this run: the divisor of a mean over a
/// run-time axis. No inputs, so no gradient flows into it.
#[derive(Debug)]
pub struct InvRows {
    per_row: usize,
}

impl<T: Scalar> Op<T> for InvRows {
    fn name(&self) -> &'static str {
        "inv_rows"
    }
    fn shape(&self, _: &[&Shape]) -> core::result::Result<Shape, String> {
        Ok(Shape::scalar())
    }
    fn forward(&self, _: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let n = out.rows().saturating_mul(self.per_row);
        out.slice()[0] = T::one() / crate::scalar::count::<T>(n);
        Ok(())
    }
    fn vjp<'g>(
        &self,
        _: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        _: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        Vec::new()
    }
}

impl<'g, T: Scalar> Tensor<'g, T> {
    fn all_axes(self) -> Vec<usize> {
        (0..self.rank()).collect()
    }

    /// Sum of all elements (shape `[]`). Summed pairwise, as every sum over axes: the
    /// rounding error grows as `log2(n)`, not `n` (an f32 `1e8` followed by `2^20 - 1`
    /// ones sums to within 8 of the exact 101,048,575), the same at any thread count.
    #[track_caller]
    pub fn sum(self) -> Tensor<'g, T> {
        self.sum_axes(&self.all_axes(), false)
    }

    /// Sum over `axes` (negative ones count from the back); `keepdim` keeps them as size 1.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.constant(tapegrad::ndarray::arr2(&[[1.0, 2.0], [3.0, 4.0]]));
    /// let rows = x.sum_axes(&[-1], false);
    /// let mut m = g.compile(&[rows], &[])?;
    /// m.run()?;
    /// assert_eq!(m.value(rows)?.as_slice(), Some(&[3.0, 7.0][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn sum_axes<A: AxisArg>(self, axes: &[A], keepdim: bool) -> Tensor<'g, T> {
        let caller = Location::caller();
        match self.axes_for("sum", axes, caller) {
            Ok(axes) => self.apply(Sum { axes, keepdim }, &[self], caller),
            Err(stand_in) => stand_in,
        }
    }

    /// Mean of all elements (NaN for an empty tensor, as in PyTorch).
    #[track_caller]
    pub fn mean(self) -> Tensor<'g, T> {
        self.mean_axes(&self.all_axes(), false)
    }

    /// Mean over `axes` (negative ones count from the back); `keepdim` keeps them as
    /// size 1.
    #[track_caller]
    pub fn mean_axes<A: AxisArg>(self, axes: &[A], keepdim: bool) -> Tensor<'g, T> {
        let axes = match self.axes_for("mean", axes, Location::caller()) {
            Ok(axes) => axes,
            Err(stand_in) => return stand_in,
        };
        self.sum_axes(&axes, keepdim) * self.inv_count(&axes)
    }

    /// A scalar holding `1 / n`, `n` the number of elements along `axes` (in range) at the
    /// rows fed: a constant, or, when `axes` include the run-time axis, a value computed
    /// at each run (`inf` for an empty batch, so a mean over it is NaN as in PyTorch).
    #[track_caller]
    pub(crate) fn inv_count(self, axes: &[usize]) -> Tensor<'g, T> {
        let shape = self.shape();
        let mut fixed = 1usize;
        let mut per_row = None;
        for (a, &d) in shape.dims().iter().enumerate() {
            if !axes.contains(&a) {
                continue;
            }
            match shape.run().filter(|r| r.axis == a) {
                Some(r) => per_row = Some(d / r.bound.max(1)),
                None => fixed = fixed.saturating_mul(d),
            }
        }
        match per_row {
            None => self
                .graph
                .full(Shape::scalar(), T::one() / crate::scalar::count::<T>(fixed)),
            Some(k) => self.apply(
                InvRows {
                    per_row: fixed.saturating_mul(k),
                },
                &[],
                Location::caller(),
            ),
        }
    }

    /// Maximum of all elements. An `Err` (from `compile`) if the tensor is empty.
    #[track_caller]
    pub fn max(self) -> Tensor<'g, T> {
        self.max_axes(&self.all_axes(), false)
    }

    /// Maximum over `axes` (negative ones count from the back); `keepdim` keeps them as
    /// size 1. NaN wins; tied maxima share the gradient equally.
    #[track_caller]
    pub fn max_axes<A: AxisArg>(self, axes: &[A], keepdim: bool) -> Tensor<'g, T> {
        let caller = Location::caller();
        match self.axes_for("max", axes, caller) {
            Ok(axes) => self.apply(Max { axes, keepdim }, &[self], caller),
            Err(stand_in) => stand_in,
        }
    }

    /// Minimum of all elements. An `Err` (from `compile`) if the tensor is empty.
    #[track_caller]
    pub fn min(self) -> Tensor<'g, T> {
        self.min_axes(&self.all_axes(), false)
    }

    /// Minimum over `axes` (negative ones count from the back); `keepdim` keeps them as
    /// size 1. NaN wins; tied minima share the gradient equally. Composed as
    /// `-max(-x)`, so its gradients (of any order) are those of [`max_axes`](Tensor::max_axes).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.constant(tapegrad::ndarray::arr2(&[[3.0, 1.0], [2.0, 4.0]]));
    /// let (cols, all) = (x.min_axes(&[0], false), x.min());
    /// let mut m = g.compile(&[cols, all], &[])?;
    /// m.run()?;
    /// assert_eq!(m.value(cols)?.as_slice(), Some(&[2.0, 1.0][..]));
    /// assert_eq!(m.value(all)?[[]], 1.0);
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn min_axes<A: AxisArg>(self, axes: &[A], keepdim: bool) -> Tensor<'g, T> {
        let caller = Location::caller();
        let axes = match self.axes_for("min", axes, caller) {
            Ok(axes) => axes,
            Err(stand_in) => return stand_in,
        };
        let shape = self.shape();
        if let Some(&a) = axes.iter().find(|&&a| shape.dims()[a] == 0) {
            let reason = format!("cannot take the min over axis {a}, which is empty");
            return self.fail_with("min", reason, caller);
        }
        -(-self).max_axes(&axes, keepdim)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, eval, grads_of, rand_array};
    use ndarray::{arr1, arr2, arr3, Array, ArrayD};

    fn x3() -> ArrayD<f64> {
        Array::range(0.0, 24.0, 1.0)
            .into_shape_with_order(vec![2, 3, 4])
            .unwrap()
    }

    #[test]
    fn sums_match_ndarray_on_every_axis_set() {
        let x = x3();
        for axes in [
            vec![0],
            vec![1],
            vec![2],
            vec![0, 1],
            vec![0, 2],
            vec![1, 2],
        ] {
            let mut want = x.clone();
            for &a in axes.iter().rev() {
                want = want.sum_axis(ndarray::Axis(a));
            }
            let got = eval(core::slice::from_ref(&x), |_, t| {
                t[0].sum_axes(&axes, false)
            });
            assert_eq!(got, want, "axes {axes:?}");
        }
        assert_eq!(
            eval(core::slice::from_ref(&x), |_, t| t[0].sum())[[]],
            276.0
        );
        // mean over axis 1 with keepdim of [[0..4], [4..8], [8..12]] = [4, 5, 6, 7]
        let m = eval(&[x], |_, t| t[0].mean_axes(&[1], true));
        assert_eq!(m.shape(), &[2, 1, 4]);
        assert_eq!(m.slice(ndarray::s![0, 0, ..]), arr1(&[4.0, 5.0, 6.0, 7.0]));
    }

    #[test]
    fn max_known_values_and_nan() {
        let x = arr2(&[[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]]).into_dyn();
        assert_eq!(
            eval(core::slice::from_ref(&x), |_, t| t[0].max_axes(&[1], false)),
            arr1(&[5.0, 7.0]).into_dyn()
        );
        assert_eq!(
            eval(core::slice::from_ref(&x), |_, t| t[0].max_axes(&[0], false)),
            arr1(&[7.0, 5.0, 7.0]).into_dyn()
        );
        assert_eq!(eval(core::slice::from_ref(&x), |_, t| t[0].max())[[]], 7.0);
        // the tie at 7 shares the gradient: 1/2 each
        let g = grads_of(&[x], |_, t| t[0].max_axes(&[1], false));
        assert_eq!(g[0], arr2(&[[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]).into_dyn());
        let n = arr1(&[1.0, f64::NAN, 2.0]).into_dyn();
        assert!(eval(&[n], |_, t| t[0].max())[[]].is_nan());
    }

    #[test]
    fn empty_axes() {
        let e = ArrayD::<f64>::zeros(vec![0, 3]);
        assert_eq!(
            eval(core::slice::from_ref(&e), |_, t| t[0].sum_axes(&[0], false)),
            arr1(&[0.0; 3]).into_dyn()
        );
        assert!(eval(core::slice::from_ref(&e), |_, t| t[0].mean())[[]].is_nan());
        let g = crate::Graph::<f64>::new();
        let x = g.param("e", e);
        let _ = x.max_axes(&[0], false);
        let err = g.check().unwrap_err().to_string();
        assert!(
            err.contains("`max`") && err.contains("[0, 3]") && err.contains("empty"),
            "{err}"
        );
    }

    #[test]
    fn known_gradient_of_mean() {
        // d/dx mean(x) = 1/n
        let g = grads_of(&[arr3(&[[[1.0, 2.0]], [[3.0, 4.0]]]).into_dyn()], |_, t| {
            t[0].mean()
        });
        assert_eq!(g[0], arr3(&[[[0.25, 0.25]], [[0.25, 0.25]]]).into_dyn());
    }

    #[test]
    fn negative_axes_count_from_the_back() {
        let x = x3();
        let x = core::slice::from_ref(&x);
        // rank 3: -1 is axis 2, -3 is axis 0
        assert_eq!(
            eval(x, |_, t| t[0].sum_axes(&[-1, 0], true)),
            eval(x, |_, t| t[0].sum_axes(&[0, 2], true))
        );
        assert_eq!(
            eval(x, |_, t| t[0].max_axes(&[-2], false)),
            eval(x, |_, t| t[0].max_axes(&[1usize], false))
        );
        assert_eq!(
            eval(x, |_, t| t[0].mean_axes(&[-3], false)),
            eval(x, |_, t| t[0].mean_axes(&[0], false))
        );
        let g = crate::Graph::<f64>::new();
        let p = g.param("p", x[0].clone());
        let _ = p.sum_axes(&[-4], false);
        let _ = p.mean_axes(&[2, -1], false);
        let _ = p.var(&[3], 1, false);
        let errs: Vec<_> = g
            .inner
            .borrow()
            .errors
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].contains("`sum`") && errs[0].contains("axis -4"),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].contains("`mean`") && errs[1].contains("twice"),
            "{}",
            errs[1]
        );
        assert!(
            errs[2].contains("`var`") && errs[2].contains("[2, 3, 4]"),
            "{}",
            errs[2]
        );
    }

    #[test]
    fn min_known_values_ties_and_errors() {
        let x = arr2(&[[4.0, 1.0, 2.0], [0.0, 3.0, 0.0]]).into_dyn();
        let xs = core::slice::from_ref(&x);
        assert_eq!(
            eval(xs, |_, t| t[0].min_axes(&[1], false)),
            arr1(&[1.0, 0.0]).into_dyn()
        );
        assert_eq!(
            eval(xs, |_, t| t[0].min_axes(&[-2], true)),
            arr2(&[[0.0, 1.0, 0.0]]).into_dyn()
        );
        assert_eq!(eval(xs, |_, t| t[0].min())[[]], 0.0);
        // the tie at 0 shares the gradient: 1/2 each, as for max
        let g = grads_of(&[x], |_, t| t[0].min_axes(&[1], false));
        assert_eq!(g[0], arr2(&[[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]).into_dyn());
        let n = arr1(&[1.0, f64::NAN, 2.0]).into_dyn();
        assert!(eval(&[n], |_, t| t[0].min())[[]].is_nan());
        let g = crate::Graph::<f64>::new();
        let _ = g.input("e", [2, 0]).min();
        let err = g.check().unwrap_err().to_string();
        assert!(
            err.contains("`min`") && err.contains("[2, 0]") && err.contains("empty"),
            "{err}"
        );
    }

    #[test]
    fn gradcheck_reductions() {
        let x = [rand_array(&[3, 4, 5], 7, -1.0, 1.0)];
        for axes in [vec![0], vec![1], vec![2], vec![0, 2], vec![0, 1, 2]] {
            for keep in [false, true] {
                check(&x, |_, t| t[0].sum_axes(&axes, keep).square());
                check(&x, |_, t| t[0].mean_axes(&axes, keep).square());
                check(&x, |_, t| t[0].max_axes(&axes, keep) * 2.0);
                check(&x, |_, t| t[0].min_axes(&axes, keep) * 2.0);
            }
        }
    }
}
