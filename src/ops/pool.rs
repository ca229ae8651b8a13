//! Max and average pooling over the last one (`[N, C, L]`) or two (`[N, C, H, W]`) axes,
//! with PyTorch's semantics (`ceil_mode=False`, no dilation), and global average pooling.
//!
//! A window of kernel `k`, stride `s` and padding `p` gives `(L + 2p - k) / s + 1` outputs
//! along an axis of `L`; output `o` covers `o s - p .. o s - p + k`. Max pooling pads with
//! `-inf`; average pooling pads with zeros and divides by the whole window, `k_h k_w`
//! (`count_include_pad=True`). `p <= k / 2` keeps at least one input in every window.
//!
//! Gradients, as ops with their own VJPs so that gradients of gradients work:
//! - max: `y = gather(x, x)` picks `x` at each window's arg-max; `dL/dx = scatter(x, g)`
//!   routes `g` to those arg-maxes (summing where windows overlap). Both are linear in
//!   their second input and piecewise constant in `x`: gather's VJP is scatter and
//!   scatter's is gather, with nothing flowing to `x` (0 almost everywhere).
//! - avg: `y = A x` with `A` linear; `dL/dx = A^T g` ([`AvgPoolGrad`]), whose VJP is `A`.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;
use core::panic::Location;

use super::{Inputs, Op, Out};
use crate::error::Result;
use crate::graph::Tensor;
use crate::scalar::Scalar;
use crate::shape::Shape;

#[cfg(test)]
mod tests;

type ShapeResult = core::result::Result<Shape, String>;

/// The window of a pooling op over `D` spatial axes: `kernel`, `stride` (by default the
/// kernel, as in PyTorch) and `padding` (by default 0), each per axis. A `usize` or a
/// `[usize; D]` converts into a window of that kernel.
///
/// ```
/// use tapegrad::ops::Window;
/// let w = Window::<2>::new(3).stride(2).padding([1, 0]);
/// assert_eq!((w.kernel, w.stride, w.padding), ([3, 3], [2, 2], [1, 0]));
/// assert_eq!(Window::<1>::from(2).stride, [2]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window<const D: usize> {
    /// The window's extent along each spatial axis.
    pub kernel: [usize; D],
    /// The step between windows.
    pub stride: [usize; D],
    /// Implicit padding on both sides of each axis.
    pub padding: [usize; D],
}

/// A per-axis extent: one `usize` for every axis, or a `[usize; D]`.
pub trait Extent<const D: usize> {
    /// The extent along each axis.
    fn per_axis(self) -> [usize; D];
}

impl<const D: usize> Extent<D> for usize {
    fn per_axis(self) -> [usize; D] {
        [self; D]
    }
}

impl<const D: usize> Extent<D> for [usize; D] {
    fn per_axis(self) -> [usize; D] {
        self
    }
}

impl<const D: usize> Window<D> {
    /// A window of `kernel`, stride `kernel`, no padding.
    pub fn new(kernel: impl Extent<D>) -> Self {
        let kernel = kernel.per_axis();
        Window {
            kernel,
            stride: kernel,
            padding: [0; D],
        }
    }

    /// The same window with another stride.
    pub fn stride(self, stride: impl Extent<D>) -> Self {
        Window {
            stride: stride.per_axis(),
            ..self
        }
    }

    /// The same window with another padding.
    pub fn padding(self, padding: impl Extent<D>) -> Self {
        Window {
            padding: padding.per_axis(),
            ..self
        }
    }
}

impl<const D: usize> From<usize> for Window<D> {
    fn from(kernel: usize) -> Self {
        Window::new(kernel)
    }
}

impl<const D: usize> From<[usize; D]> for Window<D> {
    fn from(kernel: [usize; D]) -> Self {
        Window::new(kernel)
    }
}

/// A window over two axes; a 1-D one is a 2-D one of kernel 1 over a height of 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geom {
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
    /// Spatial axes: 1 or 2.
    d: usize,
    max: bool,
}

impl Geom {
    fn of<const D: usize>(w: Window<D>, max: bool) -> Geom {
        let mut g = Geom {
            k: [1; 2],
            s: [1; 2],
            p: [0; 2],
            d: D,
            max,
        };
        for i in 0..D {
            (g.k[2 - D + i], g.s[2 - D + i]) = (w.kernel[i], w.stride[i]);
            g.p[2 - D + i] = w.padding[i];
        }
        g
    }

    fn name(&self, what: &str) -> &'static str {
        match (self.max, self.d, what) {
            (true, 1, "") => "max_pool1d",
            (true, _, "") => "max_pool2d",
            (true, 1, "grad") => "max_pool1d_grad",
            (true, _, "grad") => "max_pool2d_grad",
            (true, 1, _) => "max_pool1d_gather",
            (true, _, _) => "max_pool2d_gather",
            (false, 1, "") => "avg_pool1d",
            (false, _, "") => "avg_pool2d",
            (false, 1, _) => "avg_pool1d_grad",
            (false, _, _) => "avg_pool2d_grad",
        }
    }

    /// `a` over the spatial axes: `3` in 1-D, `[3, 3]` in 2-D.
    fn show(&self, a: [usize; 2]) -> String {
        match self.d {
            1 => format!("{}", a[1]),
            _ => format!("[{}, {}]", a[0], a[1]),
        }
    }

    /// The pooled shape of `x`, or why the window does not fit it.
    fn pooled(&self, x: &Shape) -> ShapeResult {
        let rank = 2 + self.d;
        let layout = if self.d == 1 {
            "[N, C, L]"
        } else {
            "[N, C, H, W]"
        };
        let (k, s, p) = (self.show(self.k), self.show(self.s), self.show(self.p));
        if self.k.contains(&0) {
            return Err(format!("the kernel size must be positive, got {k}"));
        }
        if self.s.contains(&0) {
            return Err(format!("the stride must be positive, got {s}"));
        }
        if (0..2).any(|i| 2 * self.p[i] > self.k[i]) {
            return Err(format!(
                "pad should be at most half of effective kernel size, got padding {p} and \
                 kernel {k}"
            ));
        }
        if x.rank() != rank {
            return Err(format!(
                "takes a rank-{rank} input {layout}, got rank {}",
                x.rank()
            ));
        }
        if x.run_axis().is_some_and(|a| a >= 2) {
            return Err(format!("a run-time axis must be N or C of {layout}"));
        }
        let hw = self.hw(x.dims());
        if hw.contains(&0) {
            return Err(format!("the spatial extents of {layout} must be positive"));
        }
        let padded = [0, 1].map(|i| hw[i] + 2 * self.p[i]);
        if (0..2).any(|i| padded[i] < self.k[i]) {
            return Err(format!(
                "the kernel {k} is larger than the padded input {} (padding {p})",
                self.show(padded)
            ));
        }
        let mut dims = x.dims().to_vec();
        for (i, o) in self.out_hw(hw).into_iter().enumerate().skip(2 - self.d) {
            dims[i + self.d] = o;
        }
        Ok(Shape::with_dims_of(dims, x.run()))
    }

    /// `[H, W]` of an input's dims (`[1, L]` in 1-D).
    fn hw(&self, dims: &[usize]) -> [usize; 2] {
        match self.d {
            1 => [1, dims[2]],
            _ => [dims[2], dims[3]],
        }
    }

    /// `[OH, OW]` for an input plane of `hw` (which the shape rule accepted).
    fn out_hw(&self, hw: [usize; 2]) -> [usize; 2] {
        [0, 1].map(|i| (hw[i] + 2 * self.p[i] - self.k[i]) / self.s[i] + 1)
    }

    /// Calls `f(o, rows, cols)` for output `o` of a plane of `hw` and the input rows and
    /// columns its window covers, clipped to the plane (never empty: `p <= k / 2`).
    fn windows(&self, hw: [usize; 2], mut f: impl FnMut(usize, Range<usize>, Range<usize>)) {
        let ohw = self.out_hw(hw);
        let span = |i: usize, o: usize| {
            let start = (o * self.s[i]).saturating_sub(self.p[i]);
            let end = (o * self.s[i] + self.k[i] - self.p[i]).min(hw[i]);
            start..end
        };
        for oh in 0..ohw[0] {
            for ow in 0..ohw[1] {
                f(oh * ohw[1] + ow, span(0, oh), span(1, ow));
            }
        }
    }

    /// Runs `f(x_plane, out_plane)` on each `[N, C]` plane of input 0 and of `out`, planes
    /// of `x_len` and `out_len` elements.
    fn planes<T: Scalar>(
        &self,
        x: &Inputs<'_, T>,
        out: &mut Out<'_, T>,
        mut f: impl FnMut(usize, [usize; 2], &mut [T]),
    ) {
        let dims = x.shape(0).dims();
        let planes = dims[0] * dims[1];
        let len = out.slice().len() / planes.max(1);
        let hw = self.hw(dims);
        for (n, o) in out
            .slice()
            .chunks_exact_mut(len.max(1))
            .take(planes)
            .enumerate()
        {
            f(n, hw, o);
        }
    }
}

/// The index in a plane of width `w` of the largest entry in `rows` x `cols`: the first
/// of equal ones, a NaN if any (the last one), as PyTorch's CPU kernel.
fn argmax<T: Scalar>(x: &[T], w: usize, rows: Range<usize>, cols: Range<usize>) -> usize {
    let mut at = rows.start * w + cols.start;
    let mut best = x[at];
    for r in rows {
        let row = r * w + cols.start..r * w + cols.end;
        for (i, &v) in x[row.clone()].iter().enumerate() {
            if v > best || v.is_nan() {
                (best, at) = (v, row.start + i);
            }
        }
    }
    at
}

/// Max pooling: `gather(x, x)`, sharing [`MaxPoolGather`]'s kernel.
#[derive(Debug)]
pub struct MaxPool(Geom);

impl<T: Scalar> Op<T> for MaxPool {
    fn name(&self) -> &'static str {
        self.0.name("")
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        self.0.pooled(s[0])
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        gather(&self.0, x, x.slice(0), out);
        Ok(())
    }
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let scatter = MaxPoolScatter(self.0);
        vec![Some(x[0].apply(scatter, &[x[0], g], Location::caller()))]
    }
}

/// `out` = `v` at the arg-max of input 0 in each window.
fn gather<T: Scalar>(geom: &Geom, x: &Inputs<'_, T>, vs: &[T], out: &mut Out<'_, T>) {
    let xs = x.slice(0);
    geom.planes(x, out, |n, hw, o| {
        let at = n * hw[0] * hw[1];
        let (xp, vp) = (&xs[at..at + hw[0] * hw[1]], &vs[at..]);
        geom.windows(hw, |j, rows, cols| {
            o[j] = vp[argmax(xp, hw[1], rows, cols)];
        });
    });
}

/// `v` at the arg-max of `x` in each window.
#[derive(Debug)]
pub struct MaxPoolGather(Geom);

impl<T: Scalar> Op<T> for MaxPoolGather {
    fn name(&self) -> &'static str {
        self.0.name("gather")
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        if s[1] != s[0] {
            return Err(format!(
                "takes two inputs of one shape, got {} and {}",
                s[0], s[1]
            ));
        }
        self.0.pooled(s[0])
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        gather(&self.0, x, x.slice(1), out);
        Ok(())
    }
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let scatter = MaxPoolScatter(self.0);
        vec![
            None,
            Some(x[0].apply(scatter, &[x[0], g], Location::caller())),
        ]
    }
}

/// `g` routed to the arg-max of `x` in each window (summed where windows overlap): the
/// gradient of max pooling.
#[derive(Debug)]
pub struct MaxPoolScatter(Geom);

impl<T: Scalar> Op<T> for MaxPoolScatter {
    fn name(&self) -> &'static str {
        self.0.name("grad")
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        let pooled = self.0.pooled(s[0])?;
        if *s[1] != pooled {
            return Err(format!(
                "the gradient must have the pooled shape {pooled}, got {}",
                s[1]
            ));
        }
        Ok(s[0].clone())
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let (xs, gs) = (x.slice(0), x.slice(1));
        self.0.planes(x, out, |n, hw, o| {
            let ohw = self.0.out_hw(hw);
            let (xp, gp) = (&xs[n * o.len()..][..o.len()], &gs[n * ohw[0] * ohw[1]..]);
            o.fill(T::zero());
            self.0.windows(hw, |j, rows, cols| {
                let at = argmax(xp, hw[1], rows, cols);
                o[at] = o[at] + gp[j];
            });
        });
        Ok(())
    }
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        gg: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let gather = MaxPoolGather(self.0);
        vec![
            None,
            Some(x[0].apply(gather, &[x[0], gg], Location::caller())),
        ]
    }
}

/// Average pooling, zeros padded and counted (`count_include_pad=True`).
#[derive(Debug)]
pub struct AvgPool(Geom);

impl<T: Scalar> Op<T> for AvgPool {
    fn name(&self) -> &'static str {
        self.0.name("")
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        self.0.pooled(s[0])
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let xs = x.slice(0);
        let inv = T::one() / crate::scalar::count::<T>(self.0.k[0] * self.0.k[1]);
        self.0.planes(x, out, |n, hw, o| {
            let xp = &xs[n * hw[0] * hw[1]..];
            self.0.windows(hw, |j, rows, cols| {
                let mut sum = T::zero();
                for r in rows {
                    for &v in &xp[r * hw[1] + cols.start..r * hw[1] + cols.end] {
                        sum = sum + v;
                    }
                }
                o[j] = sum * inv;
            });
        });
        Ok(())
    }
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let hw = self.0.hw(x[0].shape().dims());
        vec![Some(g.apply(
            AvgPoolGrad(self.0, hw),
            &[g],
            Location::caller(),
        ))]
    }
}

/// The adjoint of [`AvgPool`] for inputs of spatial extent `[H, W]`: each output's
/// gradient spread evenly, `1 / (k_h k_w)` per cell, over its window (padding dropped).
#[derive(Debug)]
pub struct AvgPoolGrad(Geom, [usize; 2]);

impl<T: Scalar> Op<T> for AvgPoolGrad {
    fn name(&self) -> &'static str {
        self.0.name("grad")
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        let mut dims = s[0].dims().to_vec();
        let rank = 2 + self.0.d;
        if dims.len() == rank {
            dims[2..].copy_from_slice(&self.1[2 - self.0.d..]);
        }
        let x = Shape::with_dims_of(dims, s[0].run());
        let pooled = self.0.pooled(&x)?;
        if pooled != *s[0] {
            return Err(format!(
                "the gradient must have the pooled shape {pooled}, got {}",
                s[0]
            ));
        }
        Ok(x)
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let gs = x.slice(0);
        let hw = self.1;
        let ohw = self.0.out_hw(hw);
        let inv = T::one() / crate::scalar::count::<T>(self.0.k[0] * self.0.k[1]);
        let dims = x.shape(0).dims();
        let planes = dims[0] * dims[1];
        let len = hw[0] * hw[1];
        for (n, o) in out.slice().chunks_exact_mut(len).take(planes).enumerate() {
            let gp = &gs[n * ohw[0] * ohw[1]..];
            o.fill(T::zero());
            self.0.windows(hw, |j, rows, cols| {
                let share = gp[j] * inv;
                for r in rows {
                    for v in &mut o[r * hw[1] + cols.start..r * hw[1] + cols.end] {
                        *v = *v + share;
                    }
                }
            });
        }
        Ok(())
    }
    fn vjp<'g>(
        &self,
        _: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        gg: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        vec![Some(gg.apply(AvgPool(self.0), &[gg], Location::caller()))]
    }
}

impl<'g, T: Scalar> Tensor<'g, T> {
    #[track_caller]
    fn max_pool(self, g: Geom) -> Tensor<'g, T> {
        self.apply(MaxPool(g), &[self], Location::caller())
    }

    /// Max pooling of `[N, C, L]` (PyTorch's `F.max_pool1d(x, kernel, stride, padding)`):
    /// `window` is a kernel size (stride the same, no padding) or a [`Window`]. Padding
    /// counts as `-inf`. The gradient goes to the first largest entry of each window
    /// (a NaN wins, the last one), as in PyTorch.
    ///
    /// ```
    /// use tapegrad::ops::Window;
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.constant(tapegrad::ndarray::arr3(&[[[1.0, 3.0, 2.0, 5.0, 4.0]]]));
    /// let y = x.max_pool1d(2); // windows [1, 3], [2, 5]
    /// let z = x.max_pool1d(Window::new(3).stride(2).padding(1)); // [-inf, 1, 3], [3, 2, 5], [5, 4, -inf]
    /// let mut m = g.compile(&[y, z], &[])?;
    /// m.run()?;
    /// assert_eq!(m.value(y)?.as_slice(), Some(&[3.0, 5.0][..]));
    /// assert_eq!(m.value(z)?.as_slice(), Some(&[3.0, 5.0, 5.0][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    ///
    /// A kernel or stride of 0, padding over half the kernel, a kernel larger than the
    /// padded input or another rank is a shape error at this call.
    #[track_caller]
    pub fn max_pool1d(self, window: impl Into<Window<1>>) -> Tensor<'g, T> {
        self.max_pool(Geom::of(window.into(), true))
    }

    /// Max pooling of `[N, C, H, W]` (PyTorch's `F.max_pool2d`), as
    /// [`max_pool1d`](Tensor::max_pool1d) over two axes; ties go to the first entry in
    /// row-major order.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f64>::new();
    /// let x = g.param("x", tapegrad::ndarray::Array::from_shape_vec(
    ///     (1, 1, 2, 4), vec![1.0, 2.0, 0.0, 7.0, 4.0, 3.0, 7.0, 0.0])?);
    /// let y = x.max_pool2d(2);
    /// let grads = g.grad(y.sum(), &[x])?;
    /// let mut m = g.compile(&[y], &grads)?;
    /// m.run()?;
    /// assert_eq!(m.value(y)?.as_slice(), Some(&[4.0, 7.0][..]));
    /// // the tie at 7 goes to the first in row-major order
    /// assert_eq!(m.value(grads[0])?.as_slice(), Some(&[0., 0., 0., 1., 1., 0., 0., 0.][..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn max_pool2d(self, window: impl Into<Window<2>>) -> Tensor<'g, T> {
        self.max_pool(Geom::of(window.into(), true))
    }

    /// Average pooling of `[N, C, L]` (PyTorch's `F.avg_pool1d` with
    /// `count_include_pad=True`): padding counts as zeros and every window divides by the
    /// kernel size. Errors as [`max_pool1d`](Tensor::max_pool1d).
    ///
    /// ```
    /// use tapegrad::ops::Window;
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.constant(tapegrad::ndarray::arr3(&[[[1.0, 3.0, 2.0, 6.0]]]));
    /// let y = x.avg_pool1d(Window::new(2).padding(1)); // [0, 1], [3, 2], [6, 0]
    /// let mut m = g.compile(&[y], &[])?;
    /// m.run()?;
    /// assert_eq!(m.value(y)?.as_slice(), Some(&[0.5, 2.5, 3.0][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn avg_pool1d(self, window: impl Into<Window<1>>) -> Tensor<'g, T> {
        let op = AvgPool(Geom::of(window.into(), false));
        self.apply(op, &[self], Location::caller())
    }

    /// Average pooling of `[N, C, H, W]` (PyTorch's `F.avg_pool2d` with
    /// `count_include_pad=True`), as [`avg_pool1d`](Tensor::avg_pool1d) over two axes.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.constant(tapegrad::ndarray::Array::from_shape_vec(
    ///     (1, 1, 2, 4), vec![1.0, 2.0, 0.0, 7.0, 4.0, 3.0, 7.0, 0.0])?);
    /// let y = x.avg_pool2d(2); // (1 + 2 + 4 + 3) / 4, (0 + 7 + 7 + 0) / 4
    /// let mut m = g.compile(&[y], &[])?;
    /// m.run()?;
    /// assert_eq!(m.value(y)?.as_slice(), Some(&[2.5, 3.5][..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn avg_pool2d(self, window: impl Into<Window<2>>) -> Tensor<'g, T> {
        let op = AvgPool(Geom::of(window.into(), false));
        self.apply(op, &[self], Location::caller())
    }

    #[track_caller]
    fn global_avg_pool(self, d: usize, output_size: usize) -> Tensor<'g, T> {
        let caller = Location::caller();
        let op = if d == 1 {
            "adaptive_avg_pool1d"
        } else {
            "adaptive_avg_pool2d"
        };
        let layout = if d == 1 { "[N, C, L]" } else { "[N, C, H, W]" };
        let shape = self.shape();
        let reason = if shape.rank() != 2 + d {
            format!(
                "takes a rank-{} input {layout}, got rank {}",
                2 + d,
                shape.rank()
            )
        } else if output_size != 1 {
            format!("only an output size of 1 (global pooling) is supported, got {output_size}")
        } else if shape.dims()[2..].contains(&0) {
            format!("the spatial extents of {layout} must be positive")
        } else if shape.run_axis().is_some_and(|a| a >= 2) {
            format!("a run-time axis must be N or C of {layout}")
        } else {
            let axes: Vec<usize> = (2..2 + d).collect();
            return self.mean_axes(&axes, true);
        };
        self.fail_with(op, reason, caller)
    }

    /// Global average pooling of `[N, C, L]` to `[N, C, 1]`, PyTorch's
    /// `F.adaptive_avg_pool1d(x, 1)`: the mean over `L`. Only `output_size` 1 is
    /// supported; another, or another rank, is a shape error at this call.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.constant(tapegrad::ndarray::arr3(&[[[1.0, 3.0, 2.0], [0.0, 0.0, 3.0]]]));
    /// let y = x.adaptive_avg_pool1d(1);
    /// assert_eq!(y.shape(), Shape::from([1, 2, 1]));
    /// let mut m = g.compile(&[y], &[])?;
    /// m.run()?;
    /// assert_eq!(m.value(y)?.as_slice(), Some(&[2.0, 1.0][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn adaptive_avg_pool1d(self, output_size: usize) -> Tensor<'g, T> {
        self.global_avg_pool(1, output_size)
    }

    /// Global average pooling of `[N, C, H, W]` to `[N, C, 1, 1]`, PyTorch's
    /// `F.adaptive_avg_pool2d(x, 1)`: the mean over `H` and `W`. Only `output_size` 1 is
    /// supported; another, or another rank, is a shape error at this call.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.input("x", (Dim::upto(8), 16, 7, 7));
    /// assert_eq!(x.adaptive_avg_pool2d(1).shape(), Shape::from((Dim::upto(8), 16, 1, 1)));
    /// ```
    #[track_caller]
    pub fn adaptive_avg_pool2d(self, output_size: usize) -> Tensor<'g, T> {
        self.global_avg_pool(2, output_size)
    }
}
