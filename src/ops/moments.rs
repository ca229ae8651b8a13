//! Moments over axes, composed of existing ops: `var` and `std` with PyTorch's
//! `correction` (Bessel's correction when 1). Their gradients (of any order) are those of
//! the ops they are made of.

use core::panic::Location;

use crate::graph::Tensor;
use crate::scalar::Scalar;
use crate::shape::AxisArg;

impl<'g, T: Scalar> Tensor<'g, T> {
    /// Variance over `axes` (negative ones count from the back):
    /// `sum((x - mean)^2) / max(0, n - correction)` for `n` elements per output, as in
    /// PyTorch (`correction = 1` is the unbiased estimate, `0` the population variance;
    /// no degrees of freedom left gives NaN or infinity like PyTorch). `keepdim` keeps the
    /// axes as size 1. Composed of existing ops.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f64>::new();
    /// let x = g.constant(tapegrad::ndarray::arr1(&[1.0, 2.0, 3.0, 4.0]));
    /// // mean 2.5, squared deviations sum to 5: 5 / 3 unbiased, 5 / 4 biased
    /// let (unbiased, biased) = (x.var(&[0], 1, false), x.var(&[-1], 0, false));
    /// let mut m = g.compile(&[unbiased, biased], &[])?;
    /// m.run()?;
    /// assert!((m.value(unbiased)?[[]] - 5.0 / 3.0).abs() < 1e-12);
    /// assert_eq!(m.value(biased)?[[]], 1.25);
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn var<A: AxisArg>(self, axes: &[A], correction: usize, keepdim: bool) -> Tensor<'g, T> {
        let axes = match self.axes_for("var", axes, Location::caller()) {
            Ok(axes) => axes,
            Err(stand_in) => return stand_in,
        };
        let d = self - self.mean_axes(&axes, true);
        let mean_sq = d.square().sum_axes(&axes, keepdim) * self.inv_count(&axes);
        if correction == 0 {
            return mean_sq;
        }
        // sum / (n - c) = (sum / n) / (1 - c / n), from 1 / n as `mean` has it; with no
        // degrees of freedom left this divides by 0 (clamped there), as PyTorch does
        let inv_n = self.inv_count(&axes);
        let dof_share = (inv_n * T::of(-(correction as f64)) + T::one()).clamp_min(0.0);
        mean_sq / dof_share
    }

    /// Standard deviation over `axes`: the square root of [`var`](Tensor::var), with the
    /// same `correction` and `keepdim`. Where it is zero (all elements equal) its
    /// gradient is NaN (`0 * inf`), as in PyTorch.
    #[track_caller]
    pub fn std<A: AxisArg>(self, axes: &[A], correction: usize, keepdim: bool) -> Tensor<'g, T> {
        match self.axes_for("std", axes, Location::caller()) {
            Ok(axes) => self.var(&axes, correction, keepdim).sqrt(),
            Err(stand_in) => stand_in,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, check, eval, grads_of, rand_array};
    use approx::assert_abs_diff_eq;
    use ndarray::{arr1, arr2};

    #[test]
    fn var_and_std_known_values() {
        // rows [1, 2, 3, 4] (mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5)
        // and [2, 2, 2, 2] (0): unbiased 5/3 and 0, biased 5/4 and 0
        let x = arr2(&[[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]]).into_dyn();
        let xs = core::slice::from_ref(&x);
        let v = eval(xs, |_, t| t[0].var(&[1], 1, false));
        assert_close(&v, &arr1(&[5.0 / 3.0, 0.0]).into_dyn());
        let v = eval(xs, |_, t| t[0].var(&[-1], 0, true));
        assert_close(&v, &arr2(&[[1.25], [0.0]]).into_dyn());
        let s = eval(xs, |_, t| t[0].std(&[1], 1, false));
        assert_close(&s, &arr1(&[(5.0f64 / 3.0).sqrt(), 0.0]).into_dyn());
        // all 8 elements: mean 2.25, squared deviations 5.5, unbiased 5.5 / 7
        let v = eval(xs, |_, t| t[0].var(&[0, 1], 1, false));
        assert_abs_diff_eq!(v[[]], 5.5 / 7.0, epsilon = 1e-15);
        // no degrees of freedom left: 0 / 0 = NaN for one element, 5 / 0 = inf otherwise
        let one = [arr1(&[3.0]).into_dyn()];
        assert!(eval(&one, |_, t| t[0].var(&[0], 1, false))[[]].is_nan());
        assert_eq!(
            eval(xs, |_, t| t[0].var(&[1], 4, false))[[0]],
            f64::INFINITY
        );
        // d var / dx_i = 2 (x_i - mean) / (n - c): row 0 with c = 1 gives 2/3 [-1.5, -0.5, 0.5, 1.5]
        // std of the constant row 1: d/dx = (x - mean) / ((n - c) std) = 0 / 0
        let g = grads_of(xs, |_, t| t[0].std(&[1], 1, false));
        assert!(
            g[0].index_axis(ndarray::Axis(0), 1)
                .iter()
                .all(|v| v.is_nan()),
            "{}",
            g[0]
        );
        assert!(
            g[0].index_axis(ndarray::Axis(0), 0)
                .iter()
                .all(|v| v.is_finite()),
            "{}",
            g[0]
        );
        let g = grads_of(xs, |_, t| t[0].var(&[1], 1, false));
        let want = arr2(&[[-1.0, -1.0 / 3.0, 1.0 / 3.0, 1.0], [0.0; 4]]).into_dyn();
        assert_close(&g[0], &want);
    }

    #[test]
    fn gradcheck_var_and_std() {
        let x = [rand_array(&[3, 4, 5], 7, -1.0, 1.0)];
        for axes in [vec![0], vec![1], vec![2], vec![0, 2], vec![0, 1, 2]] {
            for keep in [false, true] {
                check(&x, |_, t| t[0].var(&axes, 1, keep).square());
                check(&x, |_, t| t[0].var(&axes, 0, keep) * 3.0);
                check(&x, |_, t| t[0].std(&axes, 1, keep) * 3.0);
            }
        }
        // second order: the gradient of var is linear in x, so the gradcheck of a
        // gradient penalty exercises every VJP it is composed of
        check(&x, |g, t| {
            let d = g.grad(t[0].var(&[-1], 1, false).sum(), &[t[0]]).unwrap()[0];
            (d * d * t[0]).sum()
        });
        check(&x, |g, t| {
            let d = g.grad(t[0].std(&[0, 2], 1, false).sum(), &[t[0]]).unwrap()[0];
            (d * d).sum()
        });
    }
}
