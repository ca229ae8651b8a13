//! Selection: `where_` (pick from two tensors by a 0/1 mask, broadcasting all three) and
//! the composites `clamp`, `clamp_min`, `clamp_max`.
//!
//! `where_` is a primitive rather than `mask * a + (1 - mask) * b` because the product
//! lets a NaN or infinity on the side not taken leak into the value (`0 * inf = NaN`):
//! the common `where_(x > 0, x.log(), 0)` must be finite.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::panic::Location;

use super::binary::{inner_step, row_start};
use super::{Inputs, Op, Out};
use crate::error::Result;
use crate::graph::{Graph, Tensor};
use crate::scalar::Scalar;
use crate::shape::Shape;

/// `a` (input 1) where `cond` (input 0) is nonzero, `b` (input 2) elsewhere, with NumPy
/// broadcasting of all three. Gradients: `where(cond, g, 0)` to `a`, `where(cond, 0, g)` to
/// `b`, none to `cond`.
#[derive(Debug)]
pub struct Where;

impl<T: Scalar> Op<T> for Where {
    fn name(&self) -> &'static str {
        "where"
    }
    fn shape(&self, s: &[&Shape]) -> core::result::Result<Shape, String> {
        s[0].broadcast(s[1])
            .and_then(|cb| cb.broadcast(s[2]))
            .ok_or_else(|| {
                format!(
                    "condition {}, and values {} and {} do not broadcast",
                    s[0], s[1], s[2]
                )
            })
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let pick = |c: T, a: T, b: T| if c != T::zero() { a } else { b };
        let (c, a, b) = (x.slice(0), x.slice(1), x.slice(2));
        let n = out.slice().len();
        // each operand full-size or a single value: index it directly
        if [c, a, b].iter().all(|v| v.len() == n || v.len() == 1) {
            let at = |v: &[T], i: usize| v[if v.len() == 1 { 0 } else { i }];
            for (i, o) in out.slice().iter_mut().enumerate() {
                *o = pick(at(c, i), at(a, i), at(b, i));
            }
        } else {
            // row by row along the last axis, as the binary ops broadcast (no view, so
            // nothing allocated at any rank)
            let shape: &Shape = out.shape;
            let od = shape.dims();
            let (xd, yd, zd) = (x.shape(0).dims(), x.shape(1).dims(), x.shape(2).dims());
            let w = od.last().copied().unwrap_or(1);
            let steps = [inner_step(od, xd), inner_step(od, yd), inner_step(od, zd)];
            let starts = |r| {
                [
                    row_start(r, od, xd),
                    row_start(r, od, yd),
                    row_start(r, od, zd),
                ]
            };
            let rows = n / w.max(1);
            for r in 0..rows {
                let [i, j, k] = starts(r);
                let row = &mut out.slice()[r * w..(r + 1) * w];
                for (e, o) in row.iter_mut().enumerate() {
                    let at = |v: &[T], start: usize, step: usize| v[start + e * step];
                    *o = pick(at(c, i, steps[0]), at(a, j, steps[1]), at(b, k, steps[2]));
                }
            }
        }
        Ok(())
    }
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let zero = g.graph.full(Shape::scalar(), T::zero());
        let cond = x[0];
        vec![None, Some(g.where_(cond, zero)), Some(zero.where_(cond, g))]
    }
}

impl<'g, T: Scalar> Tensor<'g, T> {
    /// `self` where `mask` is nonzero, `other` elsewhere (PyTorch's `x.where(mask, y)`),
    /// broadcasting all three. The gradient flows to the side that was picked, and none
    /// to the mask. A NaN on the side not picked stays out of the value; as in PyTorch,
    /// the side not picked still gets a zero gradient, which its own VJP can turn into
    /// NaN (`log` at 0: `0 / 0`), so guard its input too
    /// (`x.where_(pos, one).log().where_(pos, zero)`).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f64>::new();
    /// let x = g.param("x", tapegrad::ndarray::arr1(&[-1.0, 4.0]));
    /// let zero = g.full(Shape::scalar(), 0.0);
    /// // log where positive, 0 elsewhere: log(-1) = NaN is never picked
    /// let y = x.log().where_(x.gt(zero), zero);
    /// let dx = g.grad(y.sum(), &[x])?[0];
    /// let mut m = g.compile(&[y, dx], &[])?;
    /// m.run()?;
    /// assert_eq!(m.value(y)?.as_slice(), Some(&[0.0, 4f64.ln()][..]));
    /// assert_eq!(m.value(dx)?.as_slice(), Some(&[0.0, 0.25][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn where_(self, mask: Tensor<'g, T>, other: Tensor<'g, T>) -> Tensor<'g, T> {
        self.apply(Where, &[mask, self, other], Location::caller())
    }

    /// Elementwise `min(max(x, lo), hi)`, as PyTorch's `clamp`: everything is `hi` if
    /// `lo > hi`, NaN stays NaN. The gradient is 1 where `lo <= x <= hi` and 0 elsewhere.
    /// Composed of [`maximum`](Tensor::maximum) and [`minimum`](Tensor::minimum).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let y = g.constant(tapegrad::ndarray::arr1(&[-2.0, 0.5, 3.0])).clamp(0.0, 1.0);
    /// let mut m = g.compile(&[y], &[])?;
    /// m.run()?;
    /// assert_eq!(m.value(y)?.as_slice(), Some(&[0.0, 0.5, 1.0][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn clamp(self, lo: f64, hi: f64) -> Tensor<'g, T> {
        self.clamp_min(lo).clamp_max(hi)
    }

    /// Elementwise `max(x, lo)` (PyTorch's `clamp_min`); the gradient is 1 where
    /// `x >= lo`, else 0.
    #[track_caller]
    pub fn clamp_min(self, lo: f64) -> Tensor<'g, T> {
        self.maximum(self.graph.full(Shape::scalar(), T::of(lo)))
    }

    /// Elementwise `min(x, hi)` (PyTorch's `clamp_max`); the gradient is 1 where
    /// `x <= hi`, else 0.
    #[track_caller]
    pub fn clamp_max(self, hi: f64) -> Tensor<'g, T> {
        self.minimum(self.graph.full(Shape::scalar(), T::of(hi)))
    }
}

impl<T: Scalar> Graph<T> {
    /// `a` where `cond` is nonzero, `b` elsewhere (PyTorch's `torch.where(cond, a, b)`),
    /// broadcasting all three: the same as `a.where_(cond, b)`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let cond = g.constant(tapegrad::ndarray::arr2(&[[1.0], [0.0]]));
    /// let a = g.constant(tapegrad::ndarray::arr1(&[1.0, 2.0]));
    /// let y = g.where_(cond, a, g.full(Shape::scalar(), -1.0)); // [2, 1], [2], [] -> [2, 2]
    /// let mut m = g.compile(&[y], &[])?;
    /// m.run()?;
    /// assert_eq!(m.value(y)?.as_slice(), Some(&[1.0, 2.0, -1.0, -1.0][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn where_<'g>(
        &'g self,
        cond: Tensor<'g, T>,
        a: Tensor<'g, T>,
        b: Tensor<'g, T>,
    ) -> Tensor<'g, T> {
        self.apply(Where, &[cond, a, b], Location::caller())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, check, eval, grads_of, rand_array};
    use crate::prelude::*;
    use ndarray::{arr1, arr2, ArrayD};

    fn mask() -> ArrayD<f64> {
        arr2(&[[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]).into_dyn()
    }

    #[test]
    fn where_known_values_and_broadcasting() {
        let a = arr2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).into_dyn();
        let b = arr1(&[10.0, 20.0, 30.0]).into_dyn();
        let ab = [a, b];
        // mask [[1, 0, 1], [0, 0, 1]]: a where 1, the row b where 0
        let y = eval(&ab, |g, t| t[0].where_(g.constant(mask()), t[1]));
        let want = arr2(&[[1.0, 20.0, 3.0], [10.0, 20.0, 6.0]]).into_dyn();
        assert_eq!(y, want);
        // the same through Graph::where_, and a column mask broadcast against a row
        assert_eq!(
            eval(&ab, |g, t| g.where_(g.constant(mask()), t[0], t[1])),
            want
        );
        let y = eval(&ab, |g, t| {
            g.where_(
                g.constant(arr2(&[[0.0], [2.0]])),
                t[1],
                g.full(Shape::scalar(), -1.0),
            )
        });
        assert_eq!(
            y,
            arr2(&[[-1.0, -1.0, -1.0], [10.0, 20.0, 30.0]]).into_dyn()
        );
        // every operand broadcast: [2, 1, 1] x [3] x [2, 1] -> [2, 2, 3]
        let y = eval(&ab, |g, t| {
            let c = g.constant(arr1(&[1.0, 0.0]).into_shape_with_order((2, 1, 1)).unwrap());
            g.where_(c, t[1], t[0].narrow(1, 0, 1))
        });
        assert_eq!(y.shape(), &[2, 2, 3]);
        assert_eq!(y[[0, 1, 2]], 30.0); // c = 1: b[2]
        assert_eq!(y[[1, 1, 2]], 4.0); // c = 0: a[1, 0]
    }

    #[test]
    fn where_gradient_goes_to_the_picked_side_only() {
        // y = sum(where(mask, a, b)): dy/da = mask, dy/db = 1 - mask summed over rows
        let a = arr2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).into_dyn();
        let b = arr1(&[10.0, 20.0, 30.0]).into_dyn();
        let g = grads_of(&[a, b, mask()], |_, t| t[0].where_(t[2], t[1]));
        assert_eq!(g[0], mask());
        assert_eq!(g[1], arr1(&[1.0, 2.0, 0.0]).into_dyn());
        // no gradient to the mask
        assert_eq!(g[2], ArrayD::<f64>::zeros(vec![2, 3]));
        // a NaN on the side not picked leaks into neither value nor gradient
        let x = [arr1(&[-1.0, 0.0, 4.0]).into_dyn()];
        fn f<'g>(g: &'g Graph<f64>, t: &[Tensor<'g, f64>]) -> Tensor<'g, f64> {
            let zero = g.full(Shape::scalar(), 0.0);
            t[0].log().where_(t[0].gt(zero), zero)
        }
        assert_eq!(eval(&x, f), arr1(&[0.0, 0.0, 4f64.ln()]).into_dyn());
        // d/dx log x = 1/x where picked; where not picked log's VJP sees a zero gradient,
        // 0 / x, which is NaN at x = 0 (as in PyTorch) ...
        let d = grads_of(&x, f)[0].clone();
        assert_eq!((d[[0]], d[[2]]), (0.0, 0.25));
        assert!(d[[1]].is_nan());
        // ... unless the input is guarded too
        fn guarded<'g>(g: &'g Graph<f64>, t: &[Tensor<'g, f64>]) -> Tensor<'g, f64> {
            let (zero, one) = (g.full(Shape::scalar(), 0.0), g.full(Shape::scalar(), 1.0));
            let pos = t[0].gt(zero);
            t[0].where_(pos, one).log().where_(pos, zero)
        }
        assert_eq!(grads_of(&x, guarded)[0], arr1(&[0.0, 0.0, 0.25]).into_dyn());
    }

    #[test]
    fn gradcheck_where_first_and_second_order() {
        let a = rand_array(&[2, 3], 1, -1.0, 1.0);
        let b = rand_array(&[3], 2, -1.0, 1.0);
        let m = mask();
        let m2 = m.clone();
        check(&[a.clone(), b.clone()], move |g, t| {
            (t[0].where_(g.constant(m.clone()), t[1]) * t[0]).square()
        });
        // the gradient of where is where: check the gradient of a gradient
        check(&[a, b], move |g, t| {
            let y = g.where_(g.constant(m2.clone()), t[0].square(), t[1].tanh());
            let d = g.grad((y * t[0]).sum(), &[t[0], t[1]]).unwrap();
            (d[0] * d[0]).sum() + (d[1] * t[1]).sum()
        });
    }

    #[test]
    fn clamp_known_values_and_gradient() {
        let x = [arr1(&[-2.0, 0.0, 0.5, 1.0, 3.0]).into_dyn()];
        assert_eq!(
            eval(&x, |_, t| t[0].clamp(0.0, 1.0)),
            arr1(&[0.0, 0.0, 0.5, 1.0, 1.0]).into_dyn()
        );
        assert_eq!(
            eval(&x, |_, t| t[0].clamp_min(0.25)),
            arr1(&[0.25, 0.25, 0.5, 1.0, 3.0]).into_dyn()
        );
        assert_eq!(
            eval(&x, |_, t| t[0].clamp_max(0.25)),
            arr1(&[-2.0, 0.0, 0.25, 0.25, 0.25]).into_dyn()
        );
        // lo > hi gives hi everywhere, as in PyTorch
        assert_eq!(
            eval(&x, |_, t| t[0].clamp(2.0, 1.0)),
            arr1(&[1.0; 5]).into_dyn()
        );
        // d/dx clamp(x, 0, 1) = 1 for 0 <= x <= 1 (bounds included, as PyTorch), else 0
        assert_eq!(
            grads_of(&x, |_, t| t[0].clamp(0.0, 1.0))[0],
            arr1(&[0.0, 1.0, 1.0, 1.0, 0.0]).into_dyn()
        );
        let n = [arr1(&[f64::NAN]).into_dyn()];
        assert!(eval(&n, |_, t| t[0].clamp(0.0, 1.0))[[0]].is_nan());
        let r = [rand_array(&[4, 5], 3, -2.0, 2.0)];
        let want = r[0].mapv(|v| v.clamp(-0.5, 0.7));
        assert_close(&eval(&r, |_, t| t[0].clamp(-0.5, 0.7)), &want);
    }

    #[test]
    fn gradcheck_clamp() {
        // away from the bounds, where the gradient jumps
        let x = [rand_array(&[3, 4], 4, -2.0, 2.0).mapv(|v| {
            if (v.abs() - 0.5).abs() < 0.05 {
                v + 0.1
            } else {
                v
            }
        })];
        check(&x, |_, t| t[0].clamp(-0.5, 0.5) * t[0]);
        check(&x, |_, t| t[0].clamp_min(0.5).square());
        check(&x, |_, t| t[0].clamp_max(-0.5).square());
    }

    #[test]
    fn where_shape_error() {
        let g = Graph::<f32>::new();
        let _ = g.where_(
            g.input("c", [2]),
            g.input("a", [3]),
            g.full(Shape::scalar(), 0.0),
        );
        let e = g.check().unwrap_err().to_string();
        assert!(e.contains("`where`") && e.contains("[2], [3], []"), "{e}");
    }
}
