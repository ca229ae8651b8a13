//! Elementwise binary ops with NumPy broadcasting: add, sub, mul, div, maximum, minimum,
//! and the comparisons gt, ge, lt, le, eq (1 where true, 0 elsewhere, no gradient).

use alloc::vec::Vec;
use core::fmt::Debug;
use core::panic::Location;

use super::{grads, Inputs, Op, Out};
use crate::error::Result;
use crate::graph::Tensor;
use crate::scalar::Scalar;
use crate::shape::Shape;

/// The math of one broadcasting binary op: its value and its VJP side by side.
pub trait BinaryFn: Debug + Send + Sync + 'static {
    /// The op's name.
    const NAME: &'static str;
    /// The value at one element.
    fn f<T: Scalar>(&self, a: T, b: T) -> T;
    /// Gradients for `a` and `b` in the output's (broadcast) shape.
    fn vjp<'g, T: Scalar>(
        &self,
        a: Tensor<'g, T>,
        b: Tensor<'g, T>,
        out: Tensor<'g, T>,
        grad_out: Tensor<'g, T>,
    ) -> [Option<Tensor<'g, T>>; 2];
}

/// A broadcasting binary op made from a [`BinaryFn`].
#[derive(Debug)]
pub struct Binary<F>(pub F);

impl<T: Scalar, F: BinaryFn> Op<T> for Binary<F> {
    fn name(&self) -> &'static str {
        F::NAME
    }

    fn shape(&self, s: &[&Shape]) -> core::result::Result<Shape, alloc::string::String> {
        s[0].broadcast_why(s[1])
    }
    fn takes_run_axis(&self) -> bool {
        true
    }

    fn in_place(&self, s: &[&Shape]) -> &'static [usize] {
        // in place over a full-size operand when the other is full-size or a scalar
        let (a, b) = (s[0].numel(), s[1].numel());
        let n = s[0].broadcast(s[1]).map_or(0, |o| o.numel());
        match (a == n, b == n, a == 1, b == 1) {
            (true, true, ..) => &[0, 1],
            (true, false, _, true) => &[0],
            (false, true, true, _) => &[1],
            _ => &[],
        }
    }

    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let f = |a, b| self.0.f(a, b);
        if let Some(k) = x.in_out() {
            // the output holds input k's values; the other input is full or one value
            let other = x.slice(1 - k);
            let scalar = other.len() == 1;
            crate::par::each(out.slice(), |o, i| {
                let v = other[if scalar { 0 } else { i }];
                *o = if k == 0 { f(*o, v) } else { f(v, *o) };
            });
            return Ok(());
        }
        let (a, b) = (x.slice(0), x.slice(1));
        let out_shape = out.shape;
        let o = out.slice();
        if a.len() == o.len() && b.len() == o.len() {
            crate::par::zip(o, a, |o, a, i| *o = f(a, b[i]));
        } else if b.len() == 1 && a.len() == o.len() {
            let b = b[0];
            crate::par::zip(o, a, |o, a, _| *o = f(a, b));
        } else if a.len() == 1 && b.len() == o.len() {
            let a = a[0];
            crate::par::zip(o, b, |o, b, _| *o = f(a, b));
        } else {
            // Broadcasting: row by row along the output's last axis, each operand's row
            // found by `row_start` (not generic, so not copied into every op).
            let (d, da, db) = (out_shape.dims(), x.shape(0).dims(), x.shape(1).dims());
            let len = d.last().copied().unwrap_or(1);
            if len == 0 {
                return Ok(());
            }
            let (sa, sb) = (inner_step(d, da), inner_step(d, db));
            let full = o.len();
            // a full operand's row is the output's; a single row (a bias) is always row 0
            let start = |r: usize, x: &[usize], n: usize, step: usize| match (n, step) {
                (n, _) if n == full => r * len,
                (n, 1) if n == len => 0,
                _ => row_start(r, d, x),
            };
            for (r, o) in o.chunks_exact_mut(len).enumerate() {
                let (a, b) = (
                    &a[start(r, da, a.len(), sa)..],
                    &b[start(r, db, b.len(), sb)..],
                );
                if sa == 1 && sb == 1 {
                    for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
                        *o = f(a, b);
                    }
                } else {
                    for (j, o) in o.iter_mut().enumerate() {
                        *o = f(a[j * sa], b[j * sb]);
                    }
                }
            }
        }
        Ok(())
    }

    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        out: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        grads(self.0.vjp(x[0], x[1], out, g))
    }
}

/// The extent of `x` (aligned to the right of `out`'s `rank` axes) along axis `k`.
fn extent(x: &[usize], rank: usize, k: usize) -> usize {
    (k + x.len()).checked_sub(rank).map_or(1, |i| x[i])
}

/// The step of operand `x` along the output's last axis: 1, or 0 where it is broadcast.
pub(super) fn inner_step(out: &[usize], x: &[usize]) -> usize {
    match out.len() {
        0 => 0,
        r => usize::from(extent(x, r, r - 1) != 1),
    }
}

/// Where row `r` of the output (its elements along the last axis) starts in operand `x`,
/// which broadcasts to `out`: the row's index along each outer axis, times `x`'s stride
/// there (0 along an axis `x` broadcasts).
#[inline(never)]
pub(super) fn row_start(mut r: usize, out: &[usize], x: &[usize]) -> usize {
    let rank = out.len();
    if rank == 0 {
        return 0;
    }
    let mut stride = extent(x, rank, rank - 1);
    let mut at = 0;
    for k in (0..rank - 1).rev() {
        let i = r % out[k];
        r /= out[k];
        let e = extent(x, rank, k);
        if e != 1 {
            at += i * stride;
        }
        stride *= e;
    }
    at
}

/// `a + b`.
#[derive(Debug)]
pub struct Add;
impl BinaryFn for Add {
    const NAME: &'static str = "add";
    fn f<T: Scalar>(&self, a: T, b: T) -> T {
        a + b
    }
    fn vjp<'g, T: Scalar>(
        &self,
        _: Tensor<'g, T>,
        _: Tensor<'g, T>,
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> [Option<Tensor<'g, T>>; 2] {
        [Some(g), Some(g)]
    }
}

/// `a - b`.
#[derive(Debug)]
pub struct Sub;
impl BinaryFn for Sub {
    const NAME: &'static str = "sub";
    fn f<T: Scalar>(&self, a: T, b: T) -> T {
        a - b
    }
    fn vjp<'g, T: Scalar>(
        &self,
        _: Tensor<'g, T>,
        _: Tensor<'g, T>,
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> [Option<Tensor<'g, T>>; 2] {
        [Some(g), Some(-g)]
    }
}

/// `a * b`.
#[derive(Debug)]
pub struct Mul;
impl BinaryFn for Mul {
    const NAME: &'static str = "mul";
    fn f<T: Scalar>(&self, a: T, b: T) -> T {
        a * b
    }
    fn vjp<'g, T: Scalar>(
        &self,
        a: Tensor<'g, T>,
        b: Tensor<'g, T>,
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> [Option<Tensor<'g, T>>; 2] {
        [Some(g * b), Some(g * a)]
    }
}

/// `a / b`.
#[derive(Debug)]
pub struct Div;
impl BinaryFn for Div {
    const NAME: &'static str = "div";
    fn f<T: Scalar>(&self, a: T, b: T) -> T {
        a / b
    }
    fn vjp<'g, T: Scalar>(
        &self,
        _: Tensor<'g, T>,
        b: Tensor<'g, T>,
        out: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> [Option<Tensor<'g, T>>; 2] {
        // d(a/b)/da = 1/b; d(a/b)/db = -a/b^2 = -out/b
        [Some(g / b), Some(-(g * out) / b)]
    }
}

/// `max(a, b)`; on ties the gradient goes to `a`. NaN in either operand gives NaN.
#[derive(Debug)]
pub struct Maximum;
impl BinaryFn for Maximum {
    const NAME: &'static str = "maximum";
    fn f<T: Scalar>(&self, a: T, b: T) -> T {
        if a.is_nan() || b.is_nan() {
            T::nan()
        } else if a >= b {
            a
        } else {
            b
        }
    }
    fn vjp<'g, T: Scalar>(
        &self,
        a: Tensor<'g, T>,
        b: Tensor<'g, T>,
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> [Option<Tensor<'g, T>>; 2] {
        [Some(g * a.ge(b)), Some(g * a.lt(b))]
    }
}

/// `min(a, b)`; on ties the gradient goes to `a`. NaN in either operand gives NaN.
#[derive(Debug)]
pub struct Minimum;
impl BinaryFn for Minimum {
    const NAME: &'static str = "minimum";
    fn f<T: Scalar>(&self, a: T, b: T) -> T {
        if a.is_nan() || b.is_nan() {
            T::nan()
        } else if a <= b {
            a
        } else {
            b
        }
    }
    fn vjp<'g, T: Scalar>(
        &self,
        a: Tensor<'g, T>,
        b: Tensor<'g, T>,
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> [Option<Tensor<'g, T>>; 2] {
        [Some(g * a.le(b)), Some(g * a.gt(b))]
    }
}

/// A comparison giving 1 where it holds and 0 elsewhere; it has no gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `a > b`
    Gt,
    /// `a >= b`
    Ge,
    /// `a < b`
    Lt,
    /// `a <= b`
    Le,
    /// `a == b`
    Eq,
}

impl BinaryFn for Cmp {
    const NAME: &'static str = "compare";
    fn f<T: Scalar>(&self, a: T, b: T) -> T {
        let holds = match self {
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Eq => a == b,
        };
        if holds {
            T::one()
        } else {
            T::zero()
        }
    }
    fn vjp<'g, T: Scalar>(
        &self,
        _: Tensor<'g, T>,
        _: Tensor<'g, T>,
        _: Tensor<'g, T>,
        _: Tensor<'g, T>,
    ) -> [Option<Tensor<'g, T>>; 2] {
        [None, None]
    }
}

impl<'g, T: Scalar> Tensor<'g, T> {
    #[track_caller]
    pub(crate) fn binary<F: BinaryFn>(self, f: F, rhs: Tensor<'g, T>) -> Tensor<'g, T> {
        self.apply(Binary(f), &[self, rhs], Location::caller())
    }

    /// Elementwise maximum, broadcasting.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let y = g.constant(tapegrad::ndarray::arr1(&[1.0, 5.0])).maximum(g.full([], 2.0));
    /// let mut m = g.compile(&[y], &[])?;
    /// m.run()?;
    /// assert_eq!(m.value(y)?.as_slice(), Some(&[2.0, 5.0][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn maximum(self, rhs: Tensor<'g, T>) -> Tensor<'g, T> {
        self.binary(Maximum, rhs)
    }

    /// Elementwise minimum, broadcasting.
    #[track_caller]
    pub fn minimum(self, rhs: Tensor<'g, T>) -> Tensor<'g, T> {
        self.binary(Minimum, rhs)
    }

    /// 1 where `self > rhs`, else 0 (no gradient).
    #[track_caller]
    pub fn gt(self, rhs: Tensor<'g, T>) -> Tensor<'g, T> {
        self.binary(Cmp::Gt, rhs)
    }

    /// 1 where `self >= rhs`, else 0 (no gradient).
    #[track_caller]
    pub fn ge(self, rhs: Tensor<'g, T>) -> Tensor<'g, T> {
        self.binary(Cmp::Ge, rhs)
    }

    /// 1 where `self < rhs`, else 0 (no gradient).
    #[track_caller]
    pub fn lt(self, rhs: Tensor<'g, T>) -> Tensor<'g, T> {
        self.binary(Cmp::Lt, rhs)
    }

    /// 1 where `self <= rhs`, else 0 (no gradient).
    #[track_caller]
    pub fn le(self, rhs: Tensor<'g, T>) -> Tensor<'g, T> {
        self.binary(Cmp::Le, rhs)
    }

    /// 1 where `self == rhs`, else 0 (no gradient).
    #[track_caller]
    pub fn eq(self, rhs: Tensor<'g, T>) -> Tensor<'g, T> {
        self.binary(Cmp::Eq, rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, eval, grads_of, rand_array};
    use approx::assert_abs_diff_eq;
    use ndarray::{arr1, arr2};

    #[test]
    fn known_values_broadcast() {
        let a = arr2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).into_dyn();
        let b = arr1(&[10.0, 20.0, 30.0]).into_dyn();
        let y = eval(&[a.clone(), b.clone()], |_, x| x[0] + x[1]);
        assert_eq!(
            y,
            arr2(&[[11.0, 22.0, 33.0], [14.0, 25.0, 36.0]]).into_dyn()
        );
        let y = eval(&[a.clone(), b.clone()], |_, x| x[1] - x[0]);
        assert_eq!(y, arr2(&[[9.0, 18.0, 27.0], [6.0, 15.0, 24.0]]).into_dyn());
        let y = eval(&[a.clone(), b.clone()], |_, x| x[0] * x[1] / 10.0);
        assert_eq!(y, arr2(&[[1.0, 4.0, 9.0], [4.0, 10.0, 18.0]]).into_dyn());
        let y = eval(core::slice::from_ref(&a), |g, x| {
            x[0].maximum(g.full([], 3.5))
        });
        assert_eq!(y, arr2(&[[3.5, 3.5, 3.5], [4.0, 5.0, 6.0]]).into_dyn());
        let y = eval(&[a], |g, x| x[0].minimum(g.full([], 3.5)));
        assert_eq!(y, arr2(&[[1.0, 2.0, 3.0], [3.5, 3.5, 3.5]]).into_dyn());
    }

    #[test]
    fn comparisons_are_zero_one_without_gradient() {
        let a = arr1(&[1.0, 2.0, 3.0]).into_dyn();
        let b = arr1(&[2.0, 2.0, 2.0]).into_dyn();
        let ab = [a, b];
        assert_eq!(
            eval(&ab, |_, x| x[0].gt(x[1])),
            arr1(&[0., 0., 1.]).into_dyn()
        );
        assert_eq!(
            eval(&ab, |_, x| x[0].ge(x[1])),
            arr1(&[0., 1., 1.]).into_dyn()
        );
        assert_eq!(
            eval(&ab, |_, x| x[0].lt(x[1])),
            arr1(&[1., 0., 0.]).into_dyn()
        );
        assert_eq!(
            eval(&ab, |_, x| x[0].le(x[1])),
            arr1(&[1., 1., 0.]).into_dyn()
        );
        assert_eq!(
            eval(&ab, |_, x| x[0].eq(x[1])),
            arr1(&[0., 1., 0.]).into_dyn()
        );
        let g = grads_of(&ab, |_, x| x[0].gt(x[1]) * 3.0);
        assert_eq!(g[0], arr1(&[0., 0., 0.]).into_dyn());
        assert_eq!(g[1], arr1(&[0., 0., 0.]).into_dyn());
    }

    #[test]
    fn known_gradients() {
        // y = sum(a * b) with b broadcast over rows: dy/da = b, dy/db = column sums of a
        let a = arr2(&[[1.0, 2.0], [3.0, 4.0]]).into_dyn();
        let b = arr1(&[5.0, 7.0]).into_dyn();
        let g = grads_of(&[a, b], |_, x| x[0] * x[1]);
        assert_eq!(g[0], arr2(&[[5.0, 7.0], [5.0, 7.0]]).into_dyn());
        assert_eq!(g[1], arr1(&[4.0, 6.0]).into_dyn());
        // y = a / b: dy/da = 1/b = 0.5, dy/db = -a/b^2 = -3/4
        let g = grads_of(
            &[arr1(&[3.0]).into_dyn(), arr1(&[2.0]).into_dyn()],
            |_, x| x[0] / x[1],
        );
        assert_abs_diff_eq!(g[0][[0]], 0.5);
        assert_abs_diff_eq!(g[1][[0]], -0.75);
    }

    #[test]
    fn every_broadcast_agrees_with_ndarray() {
        // each row-walk case: a row broadcast over leading axes, columns against rows,
        // axes of 1 inside, a scalar-like [1, 1], empty axes, and either side the small one
        let shapes: [(&[usize], &[usize]); 11] = [
            (&[2, 3], &[3]),
            (&[3], &[2, 3]),
            (&[3, 1], &[1, 4]),
            (&[2, 1, 3], &[4, 1]),
            (&[4, 1], &[2, 1, 3]),
            (&[2, 3, 1], &[1, 3, 4]),
            (&[1, 1], &[2, 3]),
            (&[2, 1, 1, 5], &[3, 1, 5]),
            (&[0, 3], &[3]),
            (&[2, 0], &[1, 1]),
            (&[5, 1], &[5, 5]),
        ];
        for (i, (sa, sb)) in shapes.iter().enumerate() {
            let a = rand_array(sa, i as u64, -2.0, 2.0);
            let b = rand_array(sb, 50 + i as u64, 0.5, 1.5);
            let ab = [a.clone(), b.clone()];
            assert_eq!(eval(&ab, |_, x| x[0] + x[1]), &a + &b, "{sa:?} + {sb:?}");
            assert_eq!(eval(&ab, |_, x| x[0] / x[1]), &a / &b, "{sa:?} / {sb:?}");
            assert_eq!(eval(&ab, |_, x| x[1] - x[0]), &b - &a, "{sb:?} - {sa:?}");
        }
    }

    #[test]
    fn gradcheck_broadcasting() {
        let shapes: [(&[usize], &[usize]); 7] = [
            (&[3, 4], &[3, 4]),
            (&[3, 4], &[4]),
            (&[4], &[2, 3, 4]),
            (&[1, 4], &[3, 4]),
            (&[2, 1, 4], &[3, 1]),
            (&[], &[2, 3]),
            (&[5], &[1]),
        ];
        for (i, (sa, sb)) in shapes.iter().enumerate() {
            let a = rand_array(sa, i as u64, -2.0, 2.0);
            // b away from zero (div) and away from a (max/min kinks)
            let b = rand_array(sb, 100 + i as u64, 0.5, 1.5).mapv(|v| v + 3.0);
            let ab = [a, b];
            check(&ab, |_, x| x[0] + x[1]);
            check(&ab, |_, x| x[0] - x[1]);
            check(&ab, |_, x| x[0] * x[1]);
            check(&ab, |_, x| x[0] / x[1]);
            check(&ab, |_, x| x[0].maximum(x[1]) * x[0]);
            check(&ab, |_, x| x[0].minimum(x[1]) * x[1]);
        }
    }
}
