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
use core::panic::Location;

use super::{Inputs, Op, Out};
use crate::error::Result;
use crate::graph::Tensor;
use crate::scalar::Scalar;
use crate::shape::Shape;

mod fast;
mod general;
#[cfg(test)]
mod sweep;
#[cfg(test)]
mod tests;
mod window;

use window::{planes, splits, Geom, Part};
pub use window::{Extent, Window};

type ShapeResult = core::result::Result<Shape, String>;

/// Max pooling: `gather(x, x)`, sharing [`MaxPoolGather`]'s kernel.
#[derive(Debug)]
pub struct MaxPool(Geom);

impl<T: Scalar> Op<T> for MaxPool {
    fn name(&self) -> &'static str {
        self.0.name(Part::Forward)
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        self.0.pooled(s[0])
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        gather(&self.0, x, None, out);
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

/// The planes (`N C`), the input plane `[H, W]` and the output plane `[OH, OW]` of an op
/// whose input `i` has the unpooled shape.
fn extents<T: Scalar>(geom: &Geom, x: &Inputs<'_, T>, i: usize) -> (usize, [usize; 2], [usize; 2]) {
    let dims = x.shape(i).dims();
    let hw = geom.hw(dims);
    (dims[0] * dims[1], hw, geom.out_hw(hw))
}

/// `out` = `v` (`x` itself when `None`) at the arg-max of input 0 in each window.
fn gather<T: Scalar>(geom: &Geom, x: &Inputs<'_, T>, vs: Option<&[T]>, out: &mut Out<'_, T>) {
    let xs = x.slice(0);
    let (n, hw, ohw) = extents(geom, x, 0);
    // Planes a tiling window's height divides, stacked, are one tall plane with the same
    // windows: one call of the kernel rather than one per plane (the digits CNN's 4×4
    // planes at batch 1: 64 calls for 4 windows each), where the planes take one thread.
    let stack = geom.tiling().is_some_and(|k| hw[0] % k[0] == 0) && !splits(n, xs.len());
    let (n, hw, ohw) = if stack {
        (1, [n * hw[0], hw[1]], [n * ohw[0], ohw[1]])
    } else {
        (n, hw, ohw)
    };
    let len = hw[0] * hw[1];
    planes(out.slice(), n, ohw[0] * ohw[1], xs.len(), |n, o| {
        let xp = &xs[n * len..][..len];
        let vp = vs.map(|v| &v[n * len..][..len]);
        if !fast::max(geom, hw, xp, vp, o) {
            general::max(geom, hw, xp, vp, o);
        }
    });
}

/// `v` at the arg-max of `x` in each window.
#[derive(Debug)]
pub struct MaxPoolGather(Geom);

impl<T: Scalar> Op<T> for MaxPoolGather {
    fn name(&self) -> &'static str {
        self.0.name(Part::Gather)
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
        gather(&self.0, x, Some(x.slice(1)), out);
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
        self.0.name(Part::Grad)
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
        let (n, hw, ohw) = extents(&self.0, x, 0);
        let (len, olen) = (hw[0] * hw[1], ohw[0] * ohw[1]);
        planes(out.slice(), n, len, xs.len(), |n, o| {
            let (xp, gp) = (&xs[n * len..][..len], &gs[n * olen..][..olen]);
            if !fast::scatter(&self.0, hw, xp, gp, o) {
                general::scatter(&self.0, hw, xp, gp, o);
            }
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
        self.0.name(Part::Forward)
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        self.0.pooled(s[0])
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let xs = x.slice(0);
        let inv = T::one() / crate::scalar::count::<T>(self.0.k[0].saturating_mul(self.0.k[1]));
        let (n, hw, ohw) = extents(&self.0, x, 0);
        let len = hw[0] * hw[1];
        planes(out.slice(), n, ohw[0] * ohw[1], xs.len(), |n, o| {
            let xp = &xs[n * len..][..len];
            if !fast::avg(&self.0, hw, xp, inv, o) {
                general::avg(&self.0, hw, xp, inv, o);
            }
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
        self.0.name(Part::Grad)
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
        let inv = T::one() / crate::scalar::count::<T>(self.0.k[0].saturating_mul(self.0.k[1]));
        let dims = x.shape(0).dims();
        let (len, olen) = (hw[0] * hw[1], ohw[0] * ohw[1]);
        // the work is the output's: every input cell is written
        let work = dims[0] * dims[1] * len;
        planes(out.slice(), dims[0] * dims[1], len, work, |n, o| {
            let gp = &gs[n * olen..][..olen];
            if !fast::avg_grad(&self.0, hw, gp, inv, o) {
                general::avg_grad(&self.0, hw, gp, inv, o);
            }
        });
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
    /// (a NaN wins, the last one), as in PyTorch. `N` (or `C`) may be a run-time axis
    /// ([`Dim::upto`](crate::Dim::upto)).
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
