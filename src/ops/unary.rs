//! Elementwise unary ops: neg, exp, log, sqrt, abs, tanh, sigmoid, relu, leaky_relu,
//! powf, and the composites square, sign and gelu.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Debug;
use core::panic::Location;

use super::{Inputs, Op, Out};
use crate::error::Result;
use crate::graph::Tensor;
use crate::num::Num;
use crate::scalar::Scalar;
use crate::shape::Shape;

/// The math of one elementwise unary op: its value and its VJP side by side.
pub trait UnaryFn: Debug + Send + Sync + 'static {
    /// The op's name.
    const NAME: &'static str;
    /// The value at one element.
    fn f<T: Scalar>(&self, x: T) -> T;
    /// The gradient of the input, given the input, the output and the output's gradient.
    fn vjp<'g, T: Scalar>(
        &self,
        x: Tensor<'g, T>,
        out: Tensor<'g, T>,
        grad_out: Tensor<'g, T>,
    ) -> Tensor<'g, T>;
    /// Whether the kernel offers runs of elements to [`f_slice`](UnaryFn::f_slice) before
    /// computing them with [`f`](UnaryFn::f) one at a time (the built-in `exp`, `sigmoid`
    /// and `tanh`, vectorised for `f32` on x86-64).
    #[doc(hidden)]
    const SLICES: bool = false;
    /// The values of a run of elements, in place, where there is a kernel for them here;
    /// `false`, nothing done, if not. Called only if [`SLICES`](UnaryFn::SLICES).
    #[doc(hidden)]
    fn f_slice<T: Scalar>(&self, x: &mut [T]) -> bool {
        let _ = x;
        false
    }
}

/// An elementwise op made from a [`UnaryFn`].
#[derive(Debug)]
pub struct Unary<F>(pub F);

impl<T: Scalar, F: UnaryFn> Op<T> for Unary<F> {
    fn name(&self) -> &'static str {
        F::NAME
    }
    fn shape(&self, s: &[&Shape]) -> core::result::Result<Shape, alloc::string::String> {
        Ok(s[0].clone())
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        if F::SLICES {
            if x.in_out() != Some(0) {
                out.slice().copy_from_slice(x.slice(0));
            }
            crate::par::runs(out.slice(), |run| {
                if !self.0.f_slice(run) {
                    for v in run {
                        *v = self.0.f(*v);
                    }
                }
            });
        } else if x.in_out() == Some(0) {
            crate::par::each(out.slice(), |o, _| *o = self.0.f(*o));
        } else {
            crate::par::zip(out.slice(), x.slice(0), |o, a, _| *o = self.0.f(a));
        }
        Ok(())
    }
    fn in_place(&self, _: &[&Shape]) -> &'static [usize] {
        &[0]
    }
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        out: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        vec![Some(self.0.vjp(x[0], out, g))]
    }
}

/// `-x`
#[derive(Debug)]
pub struct Neg;
impl UnaryFn for Neg {
    const NAME: &'static str = "neg";
    fn f<T: Scalar>(&self, x: T) -> T {
        -x
    }
    fn vjp<'g, T: Scalar>(
        &self,
        _: Tensor<'g, T>,
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Tensor<'g, T> {
        -g
    }
}

/// `e^x`; d/dx = e^x
#[derive(Debug)]
pub struct Exp;
impl UnaryFn for Exp {
    const NAME: &'static str = "exp";
    fn f<T: Scalar>(&self, x: T) -> T {
        x.exp()
    }
    const SLICES: bool = true;
    fn f_slice<T: Scalar>(&self, x: &mut [T]) -> bool {
        T::exp_in_place(x);
        true
    }
    fn vjp<'g, T: Scalar>(
        &self,
        _: Tensor<'g, T>,
        out: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Tensor<'g, T> {
        g * out
    }
}

/// natural log; d/dx = 1/x
#[derive(Debug)]
pub struct Log;
impl UnaryFn for Log {
    const NAME: &'static str = "log";
    fn f<T: Scalar>(&self, x: T) -> T {
        x.ln()
    }
    fn vjp<'g, T: Scalar>(
        &self,
        x: Tensor<'g, T>,
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Tensor<'g, T> {
        g / x
    }
}

/// square root; d/dx = 1/(2 sqrt x)
#[derive(Debug)]
pub struct Sqrt;
impl UnaryFn for Sqrt {
    const NAME: &'static str = "sqrt";
    fn f<T: Scalar>(&self, x: T) -> T {
        x.root()
    }
    fn vjp<'g, T: Scalar>(
        &self,
        _: Tensor<'g, T>,
        out: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Tensor<'g, T> {
        g * T::of(0.5) / out
    }
}

/// `|x|`; d/dx = sign(x), 0 at 0
#[derive(Debug)]
pub struct Abs;
impl UnaryFn for Abs {
    const NAME: &'static str = "abs";
    fn f<T: Scalar>(&self, x: T) -> T {
        x.abs()
    }
    fn vjp<'g, T: Scalar>(
        &self,
        x: Tensor<'g, T>,
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Tensor<'g, T> {
        g * x.sign()
    }
}

/// tanh; d/dx = 1 - tanh^2
#[derive(Debug)]
pub struct Tanh;
impl UnaryFn for Tanh {
    const NAME: &'static str = "tanh";
    fn f<T: Scalar>(&self, x: T) -> T {
        x.tanh()
    }
    const SLICES: bool = true;
    fn f_slice<T: Scalar>(&self, x: &mut [T]) -> bool {
        // vectorised for f32 on x86-64 (`ops/vexp.rs`)
        T::tanh_in_place(x)
    }
    fn vjp<'g, T: Scalar>(
        &self,
        _: Tensor<'g, T>,
        out: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Tensor<'g, T> {
        out.binary(TanhGrad, g)
    }
}

/// `g (1 - y^2)` for `y = tanh(x)`: the gradient of [`Tanh`] in one kernel.
#[derive(Debug)]
pub struct TanhGrad;
impl crate::ops::BinaryFn for TanhGrad {
    const NAME: &'static str = "tanh_grad";
    fn f<T: Scalar>(&self, y: T, g: T) -> T {
        g * (T::one() - y * y)
    }
    fn vjp<'g, T: Scalar>(
        &self,
        y: Tensor<'g, T>,
        g: Tensor<'g, T>,
        _: Tensor<'g, T>,
        gg: Tensor<'g, T>,
    ) -> [Option<Tensor<'g, T>>; 2] {
        // d/dy = -2 y g, d/dg = 1 - y^2
        [Some(gg * g * y * T::of(-2.0)), Some(y.binary(TanhGrad, gg))]
    }
}

/// logistic sigmoid, computed without overflow; d/dx = s (1 - s)
#[derive(Debug)]
pub struct Sigmoid;
impl UnaryFn for Sigmoid {
    const NAME: &'static str = "sigmoid";
    fn f<T: Scalar>(&self, x: T) -> T {
        if x >= T::zero() {
            T::one() / (T::one() + (-x).exp())
        } else {
            let e = x.exp();
            e / (T::one() + e)
        }
    }
    const SLICES: bool = true;
    fn f_slice<T: Scalar>(&self, x: &mut [T]) -> bool {
        // vectorised for f32 on x86-64 (`ops/vexp.rs`: these formulas in f64)
        T::sigmoid_in_place(x)
    }
    fn vjp<'g, T: Scalar>(
        &self,
        _: Tensor<'g, T>,
        out: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Tensor<'g, T> {
        out.binary(SigmoidGrad, g)
    }
}

/// `g s (1 - s)` for `s = sigmoid(x)`: the gradient of [`Sigmoid`] in one kernel.
#[derive(Debug)]
pub struct SigmoidGrad;
impl crate::ops::BinaryFn for SigmoidGrad {
    const NAME: &'static str = "sigmoid_grad";
    fn f<T: Scalar>(&self, s: T, g: T) -> T {
        g * s * (T::one() - s)
    }
    fn vjp<'g, T: Scalar>(
        &self,
        s: Tensor<'g, T>,
        g: Tensor<'g, T>,
        _: Tensor<'g, T>,
        gg: Tensor<'g, T>,
    ) -> [Option<Tensor<'g, T>>; 2] {
        // d/ds = g (1 - 2 s), d/dg = s (1 - s)
        [
            Some(gg * g * (s.lit(1.0) - s * T::of(2.0))),
            Some(s.binary(SigmoidGrad, gg)),
        ]
    }
}

/// `max(x, 0)`; d/dx = 1 where x > 0, else 0. NaN stays NaN.
///
/// The gradient reads the output, not `x`: `relu(x) > 0` exactly where `x > 0` (a NaN is
/// neither), so the mask is the same bit for bit, and `x` need not outlive the forward
/// pass. The output usually lives until the backward pass anyway (the next layer's weight
/// gradient reads it), and `x` (a bias-add's result) then dies at `relu`, which computes
/// in place over it: an MLP keeps one activation per layer, not two.
#[derive(Debug)]
pub struct Relu;
impl UnaryFn for Relu {
    const NAME: &'static str = "relu";
    fn f<T: Scalar>(&self, x: T) -> T {
        if x > T::zero() || x.is_nan() {
            x
        } else {
            T::zero()
        }
    }
    fn vjp<'g, T: Scalar>(
        &self,
        _: Tensor<'g, T>,
        out: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Tensor<'g, T> {
        out.binary(ReluGrad, g)
    }
}

/// `g` where `x > 0`, else 0: the gradient of [`Relu`] as one kernel instead of a
/// comparison and a product. Linear in `g`, and its derivative in `x` is zero almost
/// everywhere, so its own VJP is itself on the upstream gradient.
#[derive(Debug)]
pub struct ReluGrad;
impl crate::ops::BinaryFn for ReluGrad {
    const NAME: &'static str = "relu_grad";
    fn f<T: Scalar>(&self, x: T, g: T) -> T {
        if x > T::zero() {
            g
        } else {
            T::zero()
        }
    }
    fn vjp<'g, T: Scalar>(
        &self,
        x: Tensor<'g, T>,
        _: Tensor<'g, T>,
        _: Tensor<'g, T>,
        gg: Tensor<'g, T>,
    ) -> [Option<Tensor<'g, T>>; 2] {
        [None, Some(x.binary(ReluGrad, gg))]
    }
}

/// `x` where positive, `alpha * x` elsewhere; d/dx = 1 or alpha.
pub struct LeakyRelu(pub f64);
impl UnaryFn for LeakyRelu {
    const NAME: &'static str = "leaky_relu";
    fn f<T: Scalar>(&self, x: T) -> T {
        if x > T::zero() {
            x
        } else {
            x * T::of(self.0)
        }
    }
    fn vjp<'g, T: Scalar>(
        &self,
        x: Tensor<'g, T>,
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Tensor<'g, T> {
        let slope = x.gt(x.lit(0.0)) * T::of(1.0 - self.0) + T::of(self.0);
        g * slope
    }
}

/// `x^p` for a scalar exponent; d/dx = p x^(p-1), and 0 for p = 0 (also at x = 0).
pub struct Powf(pub f64);

// By hand, as the other ops' `Debug` with an `f64`: see `num.rs`.
impl Debug for LeakyRelu {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "LeakyRelu({})", Num(self.0))
    }
}

impl Debug for Powf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Powf({})", Num(self.0))
    }
}
impl UnaryFn for Powf {
    const NAME: &'static str = "powf";
    fn f<T: Scalar>(&self, x: T) -> T {
        x.powf(T::of(self.0))
    }
    fn vjp<'g, T: Scalar>(
        &self,
        x: Tensor<'g, T>,
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Tensor<'g, T> {
        if self.0 == 0.0 {
            // x^0 = 1 is flat everywhere; p x^(p-1) would be 0 * inf = NaN at x = 0
            // (PyTorch masks its pow gradient to 0 where p == 0 likewise)
            return x.lit(0.0).broadcast_to(x.shape());
        }
        g * T::of(self.0) * x.powf(self.0 - 1.0)
    }
}

impl<'g, T: Scalar> Tensor<'g, T> {
    #[track_caller]
    pub(crate) fn unary<F: UnaryFn>(self, f: F) -> Tensor<'g, T> {
        self.apply(Unary(f), &[self], Location::caller())
    }

    /// A scalar constant in this tensor's graph.
    pub(crate) fn lit(self, v: f64) -> Tensor<'g, T> {
        self.graph.full(Shape::scalar(), T::of(v))
    }

    /// Elementwise `e^self`.
    #[track_caller]
    pub fn exp(self) -> Tensor<'g, T> {
        self.unary(Exp)
    }

    /// Elementwise natural logarithm (NaN below zero, `-inf` at zero).
    #[track_caller]
    pub fn log(self) -> Tensor<'g, T> {
        self.unary(Log)
    }

    /// Elementwise square root.
    #[track_caller]
    pub fn sqrt(self) -> Tensor<'g, T> {
        self.unary(Sqrt)
    }

    /// Elementwise absolute value.
    #[track_caller]
    pub fn abs(self) -> Tensor<'g, T> {
        self.unary(Abs)
    }

    /// Elementwise hyperbolic tangent.
    #[track_caller]
    pub fn tanh(self) -> Tensor<'g, T> {
        self.unary(Tanh)
    }

    /// Elementwise logistic sigmoid `1 / (1 + e^-x)`.
    #[track_caller]
    pub fn sigmoid(self) -> Tensor<'g, T> {
        self.unary(Sigmoid)
    }

    /// Elementwise `max(x, 0)`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f64>::new();
    /// let x = g.param("x", tapegrad::ndarray::arr1(&[-1.0, 2.0]));
    /// let y = x.relu();
    /// let dx = g.grad(y.sum(), &[x])?[0];
    /// let mut m = g.compile(&[y, dx], &[])?;
    /// m.run()?;
    /// assert_eq!(m.value(y)?.as_slice(), Some(&[0.0, 2.0][..]));
    /// assert_eq!(m.value(dx)?.as_slice(), Some(&[0.0, 1.0][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn relu(self) -> Tensor<'g, T> {
        self.unary(Relu)
    }

    /// Elementwise `x` where positive, `alpha * x` elsewhere.
    #[track_caller]
    pub fn leaky_relu(self, alpha: f64) -> Tensor<'g, T> {
        self.unary(LeakyRelu(alpha))
    }

    /// Elementwise `x^p` for a scalar exponent `p`.
    #[track_caller]
    pub fn powf(self, p: f64) -> Tensor<'g, T> {
        self.unary(Powf(p))
    }

    /// Elementwise `x * x`.
    #[track_caller]
    pub fn square(self) -> Tensor<'g, T> {
        self * self
    }

    /// Elementwise sign: 1, -1 or 0 (no gradient).
    #[track_caller]
    pub fn sign(self) -> Tensor<'g, T> {
        let zero = self.lit(0.0);
        self.gt(zero) - self.lt(zero)
    }

    /// GELU, tanh form: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, composed of
    /// existing ops so its gradient (of any order) comes from theirs.
    #[track_caller]
    pub fn gelu(self) -> Tensor<'g, T> {
        let c = T::of(0.797_884_560_802_865_4); // sqrt(2/pi)
        let inner = (self + self.powf(3.0) * T::of(0.044715)) * c;
        self * (inner.tanh() + T::one()) * T::of(0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, eval, grads_of, rand_array};
    use approx::assert_abs_diff_eq;
    use ndarray::arr1;

    #[test]
    fn known_values() {
        let x = [arr1(&[-2.0, 0.5, 3.0]).into_dyn()];
        let v = |f: fn(f64) -> f64| arr1(&[f(-2.0), f(0.5), f(3.0)]).into_dyn();
        assert_eq!(eval(&x, |_, x| -x[0]), v(|x| -x));
        assert_eq!(eval(&x, |_, x| x[0].exp()), v(f64::exp));
        assert_eq!(eval(&x, |_, x| x[0].abs()), v(f64::abs));
        assert_eq!(eval(&x, |_, x| x[0].tanh()), v(f64::tanh));
        assert_eq!(eval(&x, |_, x| x[0].square()), v(|x| x * x));
        assert_eq!(eval(&x, |_, x| x[0].relu()), v(|x| x.max(0.0)));
        assert_eq!(
            eval(&x, |_, x| x[0].leaky_relu(0.1)),
            arr1(&[-0.2, 0.5, 3.0]).into_dyn()
        );
        assert_eq!(
            eval(&x, |_, x| x[0].sign()),
            arr1(&[-1.0, 1.0, 1.0]).into_dyn()
        );
        let s = eval(&x, |_, x| x[0].sigmoid());
        for (s, x) in s.iter().zip([-2.0f64, 0.5, 3.0]) {
            assert_abs_diff_eq!(*s, 1.0 / (1.0 + (-x).exp()), epsilon = 1e-15);
        }
        // gelu(1) = 0.5 (1 + tanh(0.79788456 * 1.044715)) = 0.8411919906
        let y = eval(&[arr1(&[1.0]).into_dyn()], |_, x| x[0].gelu());
        assert_abs_diff_eq!(y[[0]], 0.841_191_990_607_898_6, epsilon = 1e-12);
        let p = [arr1(&[4.0, 9.0]).into_dyn()];
        assert_eq!(eval(&p, |_, x| x[0].sqrt()), arr1(&[2.0, 3.0]).into_dyn());
        assert_eq!(
            eval(&p, |_, x| x[0].powf(1.5)),
            arr1(&[8.0, 27.0]).into_dyn()
        );
        assert_abs_diff_eq!(eval(&p, |_, x| x[0].log())[[0]], 4f64.ln());
    }

    #[test]
    fn sigmoid_does_not_overflow() {
        let y = eval(&[arr1(&[-1000.0, 1000.0]).into_dyn()], |_, x| {
            x[0].sigmoid()
        });
        assert_eq!(y, arr1(&[0.0, 1.0]).into_dyn());
    }

    #[test]
    fn nan_propagates() {
        let x = [arr1(&[f64::NAN]).into_dyn()];
        assert!(eval(&x, |_, x| x[0].relu())[[0]].is_nan());
        assert!(eval(&x, |_, x| x[0].tanh())[[0]].is_nan());
        assert!(eval(&[arr1(&[-1.0]).into_dyn()], |_, x| x[0].log())[[0]].is_nan());
    }

    #[test]
    fn known_gradients() {
        // d/dx x^3 at 2 = 3 * 4 = 12; d/dx sqrt(x) at 4 = 1/4; d/dx log(x) at 4 = 1/4
        let x = [arr1(&[2.0]).into_dyn()];
        assert_abs_diff_eq!(grads_of(&x, |_, x| x[0].powf(3.0))[0][[0]], 12.0);
        let x = [arr1(&[4.0]).into_dyn()];
        assert_abs_diff_eq!(grads_of(&x, |_, x| x[0].sqrt())[0][[0]], 0.25);
        assert_abs_diff_eq!(grads_of(&x, |_, x| x[0].log())[0][[0]], 0.25);
        // d/dx tanh(0) = 1, d/dx sigmoid(0) = 1/4
        let x = [arr1(&[0.0]).into_dyn()];
        assert_abs_diff_eq!(grads_of(&x, |_, x| x[0].tanh())[0][[0]], 1.0);
        assert_abs_diff_eq!(grads_of(&x, |_, x| x[0].sigmoid())[0][[0]], 0.25);
        // leaky_relu slope is alpha below zero, 1 above
        let x = [arr1(&[-1.0, 1.0]).into_dyn()];
        let g = grads_of(&x, |_, x| x[0].leaky_relu(0.2));
        assert_abs_diff_eq!(g[0][[0]], 0.2);
        assert_abs_diff_eq!(g[0][[1]], 1.0);
    }

    #[test]
    fn powers_at_zero_and_below_follow_pytorch() {
        // PyTorch: d/dx x^p = p x^(p-1), masked to 0 where p == 0
        let d = |p: f64, at: f64| grads_of(&[arr1(&[at]).into_dyn()], |_, x| x[0].powf(p))[0][[0]];
        assert_eq!(d(0.0, 0.0), 0.0); // x^0 = 1: flat everywhere, also at 0
        assert_eq!(d(0.0, -2.0), 0.0);
        assert_eq!(d(1.0, 0.0), 1.0); // 1 * 0^0 = 1
        assert_eq!(d(2.0, 0.0), 0.0); // 2 * 0^1
        assert_eq!(d(0.5, 0.0), f64::INFINITY); // 0.5 / sqrt(0), as PyTorch
        assert_eq!(d(3.0, -2.0), 12.0); // 3 (-2)^2
        assert_eq!(d(2.0, -3.0), -6.0); // 2 (-3)
        assert!(d(0.5, -1.0).is_nan()); // a fractional power of a negative
                                        // d/dx sqrt(x) = 1 / (2 sqrt x): +inf at 0, as PyTorch
        let s = grads_of(&[arr1(&[0.0]).into_dyn()], |_, x| x[0].sqrt());
        assert_eq!(s[0][[0]], f64::INFINITY);
        // second order at 0: d2/dx2 x^p = p (p-1) x^(p-2), 0 for p in {0, 1}, 2 for p = 2
        let dd = |p: f64, at: f64| {
            grads_of(&[arr1(&[at]).into_dyn()], |g, x| {
                g.grad(x[0].powf(p).sum(), &[x[0]]).unwrap()[0]
            })[0][[0]]
        };
        assert_eq!(dd(0.0, 0.0), 0.0);
        assert_eq!(dd(1.0, 0.0), 0.0);
        assert_eq!(dd(2.0, 0.0), 2.0);
        assert_eq!(dd(3.0, -2.0), -12.0); // 6x
                                          // away from the kinks, first and second order against finite differences
        let neg = [rand_array(&[5], 21, -2.0, -0.5)];
        let pos = [rand_array(&[5], 22, 0.5, 2.0)];
        for p in [0.0, 1.0, 2.0, 3.0, -1.0] {
            check(&neg, |_, x| x[0].powf(p));
            check(&neg, |g, x| {
                let d = g.grad(x[0].powf(p).sum(), &[x[0]]).unwrap()[0];
                (d * d).sum()
            });
        }
        for p in [0.0, 0.5, 1.0, 2.5] {
            check(&pos, |_, x| x[0].powf(p));
            check(&pos, |g, x| {
                let d = g.grad(x[0].powf(p).sum(), &[x[0]]).unwrap()[0];
                (d * d).sum()
            });
        }
    }

    #[test]
    fn gradcheck_second_order_of_fused_gradients() {
        // the gradient kernels (tanh_grad, sigmoid_grad, relu_grad) have VJPs of their own
        let x = [rand_array(&[6], 3, 0.2, 1.5).mapv(|v| if v > 0.8 { -v } else { v })];
        let w = rand_array(&[6], 4, -1.0, 1.0);
        for f in [0, 1, 2] {
            let w = w.clone();
            check(&x, move |g, t| {
                let wc = g.constant(w.clone());
                let y = match f {
                    0 => t[0].tanh(),
                    1 => t[0].sigmoid(),
                    _ => t[0].relu() * t[0],
                };
                let d = g.grad((y * wc).sum(), &[t[0]]).unwrap()[0];
                (d * d * wc).sum()
            });
        }
    }

    #[test]
    fn gradcheck_all() {
        for (i, shape) in [&[7][..], &[2, 3], &[2, 1, 3]].iter().enumerate() {
            // away from the kinks of relu/abs/leaky_relu at 0
            let x = rand_array(shape, i as u64, 0.2, 2.0).mapv(|v| {
                if (v * 10.0) as i64 % 2 == 0 {
                    v
                } else {
                    -v
                }
            });
            let pos = [rand_array(shape, 10 + i as u64, 0.5, 3.0)];
            let x = [x];
            check(&x, |_, x| -x[0]);
            check(&x, |_, x| x[0].exp());
            check(&x, |_, x| x[0].abs());
            check(&x, |_, x| x[0].tanh());
            check(&x, |_, x| x[0].sigmoid());
            check(&x, |_, x| x[0].relu());
            check(&x, |_, x| x[0].leaky_relu(0.1));
            check(&x, |_, x| x[0].square());
            check(&x, |_, x| x[0].gelu());
            check(&pos, |_, x| x[0].log());
            check(&pos, |_, x| x[0].sqrt());
            check(&pos, |_, x| x[0].powf(2.5));
            check(&pos, |_, x| x[0].powf(-1.0));
        }
    }
}
