//! argmax and argmin: the position of the largest or smallest entry along an axis, as an
//! id stored as `T` (like the ids `index_select` and `cross_entropy` take). Piecewise
//! constant, so no gradient flows through them.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::panic::Location;

use super::{Inputs, Op, Out};
use crate::error::{Error, Result};
use crate::graph::Tensor;
use crate::scalar::Scalar;
use crate::shape::{AxisArg, Shape};

/// The index of the largest (or, with `min`, smallest) entry along `axis`. Ties go to the
/// first index, as in PyTorch; a NaN wins (the first NaN), as in [`max`](Tensor::max).
#[derive(Debug)]
pub struct ArgExtreme {
    axis: usize,
    keepdim: bool,
    min: bool,
}

impl<T: Scalar> Op<T> for ArgExtreme {
    fn name(&self) -> &'static str {
        if self.min {
            "argmin"
        } else {
            "argmax"
        }
    }
    fn shape(&self, s: &[&Shape]) -> core::result::Result<Shape, String> {
        let axes = s[0].check_axes(&[self.axis])?;
        if s[0].dims()[self.axis] == 0 {
            return Err(format!(
                "cannot take the {} over axis {}, which is empty",
                <Self as Op<T>>::name(self),
                self.axis
            ));
        }
        Ok(s[0].reduced(&axes, self.keepdim))
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let dims = x.shape(0).dims();
        let n = dims[self.axis];
        if n == 0 && !out.slice().is_empty() {
            // a run-time axis fed no rows
            return Err(Error::Empty {
                op: <Self as Op<T>>::name(self),
                axis: self.axis,
                caller: None,
            });
        }
        let inner: usize = dims[self.axis + 1..].iter().product();
        let x = x.slice(0);
        let better = |v: T, best: T| if self.min { v < best } else { v > best };
        // out[o, i] = the first k maximising x[o, k, i]; x[o, k, i] = x[(o n + k) inner + i]
        for (j, o) in out.slice().iter_mut().enumerate() {
            let base = (j / inner) * n * inner + j % inner;
            let (mut best, mut at) = (x[base], 0);
            for k in 1..n {
                if best.is_nan() {
                    break;
                }
                let v = x[base + k * inner];
                if v.is_nan() || better(v, best) {
                    (best, at) = (v, k);
                }
            }
            *o = crate::scalar::count::<T>(at);
        }
        Ok(())
    }
    fn vjp<'g>(
        &self,
        _: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        _: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        vec![None]
    }
}

impl<'g, T: Scalar> Tensor<'g, T> {
    #[track_caller]
    fn arg_extreme<A: AxisArg>(self, axis: A, keepdim: bool, min: bool) -> Tensor<'g, T> {
        let caller = Location::caller();
        let op = if min { "argmin" } else { "argmax" };
        match self.axis_for(op, axis, caller) {
            Ok(axis) => {
                let op = ArgExtreme { axis, keepdim, min };
                self.apply(op, &[self], caller)
            }
            Err(stand_in) => stand_in,
        }
    }

    /// The index of the largest entry along `axis` (`-1` is the last), as `T`; `keepdim`
    /// keeps the axis as size 1. Ties give the first index and a NaN wins, as in
    /// PyTorch. No gradient flows through it. For the index into all elements, reshape
    /// to one axis first.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let logits = g.constant(tapegrad::ndarray::arr2(&[[0.1, 2.0, 0.3], [5.0, 1.0, 5.0]]));
    /// let ids = g.constant(tapegrad::ndarray::arr1(&[1.0, 2.0]));
    /// let pred = logits.argmax(-1, false); // [1, 0]: the tie at 5 goes to the first
    /// let accuracy = pred.eq(ids).mean();
    /// let mut m = g.compile(&[pred, accuracy], &[])?;
    /// m.run()?;
    /// assert_eq!(m.value(pred)?.as_slice(), Some(&[1.0, 0.0][..]));
    /// assert_eq!(m.value(accuracy)?[[]], 0.5);
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn argmax<A: AxisArg>(self, axis: A, keepdim: bool) -> Tensor<'g, T> {
        self.arg_extreme(axis, keepdim, false)
    }

    /// The index of the smallest entry along `axis` (`-1` is the last), as `T`; `keepdim`
    /// keeps the axis as size 1. Ties give the first index and a NaN wins, as in
    /// PyTorch. No gradient flows through it.
    #[track_caller]
    pub fn argmin<A: AxisArg>(self, axis: A, keepdim: bool) -> Tensor<'g, T> {
        self.arg_extreme(axis, keepdim, true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, eval, grads_of, rand_array};
    use crate::prelude::*;
    use ndarray::{arr1, arr2, arr3, Array, ArrayD};

    #[test]
    fn known_values_ties_and_nan() {
        let x = [arr2(&[[3.0, 7.0, 7.0, 1.0], [2.0, 2.0, 9.0, 2.0]]).into_dyn()];
        // rows: max 7 first at 1, 9 at 2; min 1 at 3, 2 first at 0
        assert_eq!(
            eval(&x, |_, t| t[0].argmax(1, false)),
            arr1(&[1.0, 2.0]).into_dyn()
        );
        assert_eq!(
            eval(&x, |_, t| t[0].argmin(-1, false)),
            arr1(&[3.0, 0.0]).into_dyn()
        );
        // columns: [3, 2] -> 0 / 1, [7, 2] -> 0 / 1, [7, 9] -> 1 / 0, [1, 2] -> 1 / 0
        assert_eq!(
            eval(&x, |_, t| t[0].argmax(0, true)),
            arr2(&[[0.0, 0.0, 1.0, 1.0]]).into_dyn()
        );
        assert_eq!(
            eval(&x, |_, t| t[0].argmin(-2, true)),
            arr2(&[[1.0, 1.0, 0.0, 0.0]]).into_dyn()
        );
        // a NaN wins both, the first one if several
        let n = [arr1(&[1.0, f64::NAN, 5.0, f64::NAN]).into_dyn()];
        assert_eq!(eval(&n, |_, t| t[0].argmax(0, false))[[]], 1.0);
        assert_eq!(eval(&n, |_, t| t[0].argmin(0, false))[[]], 1.0);
        let n = [arr1(&[f64::NAN, 1.0]).into_dyn()];
        assert_eq!(eval(&n, |_, t| t[0].argmax(0, false))[[]], 0.0);
    }

    #[test]
    fn middle_axis_matches_a_direct_search() {
        // x[a, b, c] = (7 (a + 2b + 3c)) mod 11 has ties; compare with a plain loop
        let x: ArrayD<f64> = Array::from_shape_fn((3, 4, 5), |(a, b, c)| {
            ((7 * (a + 2 * b + 3 * c)) % 11) as f64
        })
        .into_dyn();
        let got = eval(core::slice::from_ref(&x), |_, t| t[0].argmax(1, false));
        let want = Array::from_shape_fn((3, 5), |(a, c)| {
            let col: Vec<f64> = (0..4).map(|b| x[[a, b, c]]).collect();
            let m = col.iter().cloned().fold(f64::MIN, f64::max);
            col.iter().position(|&v| v == m).unwrap() as f64
        });
        assert_eq!(got, want.into_dyn());
        let got = eval(&[x], |_, t| t[0].argmin(2, true));
        assert_eq!(got.shape(), &[3, 4, 1]);
    }

    #[test]
    fn no_gradient_flows() {
        // d/dx sum(x * argmax(x)) = argmax(x), treated as a constant: [[1, 1], [0, 0]]
        let x = [arr2(&[[1.0, 2.0], [4.0, 3.0]]).into_dyn()];
        let g = grads_of(&x, |_, t| t[0] * t[0].argmax(1, true));
        assert_eq!(g[0], arr2(&[[1.0, 1.0], [0.0, 0.0]]).into_dyn());
        // away from ties argmin is locally constant, so finite differences agree
        let r = [rand_array(&[3, 4, 2], 11, -1.0, 1.0)];
        check(&r, |_, t| t[0].square() * t[0].argmin(1, true));
        check(&r, |_, t| t[0] * t[0].argmax(-1, false).reshape([3, 4, 1]));
    }

    #[test]
    fn shape_errors() {
        let g = Graph::<f32>::new();
        let x = g.input("x", [2, 0]);
        let _ = x.argmax(2, false);
        let _ = x.argmin(-1, false);
        let _ = g.input("s", [3]).argmax(0, false) + g.full(Shape::scalar(), 0.0);
        let errs = g.inner.borrow().errors.clone();
        assert_eq!(errs.len(), 2, "{errs:?}");
        let e0 = errs[0].to_string();
        assert!(e0.contains("`argmax`") && e0.contains("axis 2"), "{e0}");
        let e1 = errs[1].to_string();
        assert!(e1.contains("`argmin`") && e1.contains("empty"), "{e1}");
        let x3 = arr3(&[[[1.0]]]).into_dyn();
        assert_eq!(eval(&[x3], |_, t| t[0].argmax(0, false)).shape(), &[1, 1]);
    }
}
