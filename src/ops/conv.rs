//! Convolutions: `conv1d` over `[N, C, L]` and `conv2d` over `[N, C, H, W]`, with
//! PyTorch's `F.conv1d` / `F.conv2d` semantics (zero padding, stride, dilation, groups;
//! weight `[O, C/groups, k..]`, optional bias `[O]`). A 1-D convolution is the 2-D one
//! with a height of 1, so one set of ops and kernels serves both.
//!
//! Three ops, each linear in both inputs, close the family under differentiation. With
//! `y = conv(x, w)` and `<a, b>` the sum of elementwise products:
//! - `conv_input_grad(gy, w)` is the adjoint in `x` (a transposed convolution):
//!   `<conv_input_grad(gy, w), x> = <gy, conv(x, w)>`;
//! - `conv_weight_grad(x, gy)` is the adjoint in `w`: `<conv_weight_grad(x, gy), w> = <gy, conv(x, w)>`.
//!
//! So `dx = conv_input_grad(gy, w)`, `dw = conv_weight_grad(x, gy)`, and the VJPs of the two
//! gradient ops are again the three ops (see each `vjp`): gradients of gradients work.
//!
//! The kernels (`conv/kernel.rs`) unfold each sample into columns (im2col) in the
//! machine's planned scratch and multiply with the crate's GEMM, which writes the output
//! in NCHW order directly: `y[n, group] = w[group] · cols(x[n, group])`.

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

mod geom;
mod kernel;
mod options;
#[cfg(test)]
mod tests;
mod unfold;

pub use options::{Conv1dOptions, Conv2dOptions};

use geom::{Geom, Sizes};

type ShapeResult = core::result::Result<Shape, String>;

/// `conv(x, w) + b`: inputs `[x, w]` or `[x, w, b]` (the bias added by the kernel, as the
/// output rows are written).
#[derive(Debug, Clone, Copy)]
pub struct Conv(Geom);

/// The gradient of a convolution's bias: `grad_out` `[N, O, ..]` summed over all but the
/// channels, `[O]`.
#[derive(Debug, Clone, Copy)]
pub struct ConvBiasGrad(Geom);

/// The gradient of a convolution in its input, for an input of spatial extent `in_hw`:
/// inputs `[grad_out, w]`.
#[derive(Debug, Clone, Copy)]
pub struct ConvInputGrad(Geom, [usize; 2]);

/// The gradient of a convolution in its weight, for a kernel of extent `k_hw`: inputs
/// `[x, grad_out]`.
#[derive(Debug, Clone, Copy)]
pub struct ConvWeightGrad(Geom, [usize; 2]);

impl<T: Scalar> Op<T> for Conv {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        let z = self.0.sizes(s[0], s[1])?;
        if let Some(b) = s.get(2) {
            if b.dims() != [z.o] || b.run().is_some() {
                return Err(format!(
                    "the bias must be [{}] (one per output channel), got {b}",
                    z.o
                ));
            }
        }
        Ok(self.0.out_shape(&z, s[0]))
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn scratch(&self, s: &[&Shape]) -> usize {
        self.0
            .sizes(s[0], s[1])
            .map_or(0, |z| kernel::forward_scratch::<T>(&self.0, &z))
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        if let Ok(z) = self.0.sizes(x.shape(0), x.shape(1)) {
            let (y, scratch) = out.with_scratch();
            let bias = (x.len() == 3).then(|| x.slice(2));
            kernel::forward(&self.0, &z, x.slice(0), x.slice(1), bias, y, scratch);
        }
        Ok(())
    }
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let caller = Location::caller();
        let (xs, ws) = (x[0].shape(), x[1].shape());
        let (Ok([_, _, h, w]), Ok([_, _, kh, kw])) =
            (self.0.nchw(&xs, "input"), self.0.weight(&ws))
        else {
            return vec![None, None];
        };
        let dx = g.apply(ConvInputGrad(self.0, [h, w]), &[g, x[1]], caller);
        let dw = g.apply(ConvWeightGrad(self.0, [kh, kw]), &[x[0], g], caller);
        let mut d = vec![Some(dx), Some(dw)];
        if x.len() == 3 {
            d.push(Some(g.apply(ConvBiasGrad(self.0), &[g], caller)));
        }
        d
    }
}

impl<T: Scalar> Op<T> for ConvBiasGrad {
    fn name(&self) -> &'static str {
        if self.0.spatial == 1 {
            "conv1d_bias_grad"
        } else {
            "conv2d_bias_grad"
        }
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        let [_, o, _, _] = self.0.nchw(s[0], "output gradient")?;
        Ok(Shape::new([o]))
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        if let Ok([n, o, h, w]) = self.0.nchw(x.shape(0), "output gradient") {
            kernel::bias_grad(n, o, h * w, x.slice(0), out.slice());
        }
        Ok(())
    }
    // out[o] = sum_{n, p} gy[n, o, p]: each element of gy gets gg[o]
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        gg: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let s = x[0].shape();
        let o = s.dims().get(1).copied().unwrap_or(0);
        let per_channel = if self.0.spatial == 1 {
            vec![o, 1]
        } else {
            vec![o, 1, 1]
        };
        vec![Some(gg.reshape(per_channel).broadcast_to(s))]
    }
}

impl ConvInputGrad {
    fn sizes(&self, gy: &Shape, w: &Shape) -> core::result::Result<Sizes, String> {
        let g = self.0;
        let [n, _, _, _] = g.nchw(gy, "output gradient")?;
        let [_, cg, _, _] = g.weight(w)?;
        let [h, wd] = self.1;
        let mut dims = vec![n, cg.saturating_mul(g.groups)];
        dims.extend(g.spatial_dims([h, wd]));
        let x = Shape::with_dims_of(dims, gy.run());
        let z = g.sizes(&x, w)?;
        g.check_grad_out(&z, &x, gy)?;
        Ok(z)
    }
}

impl ConvInputGrad {
    /// The sizes at run time, shapes checked when recorded, without allocating.
    fn run_sizes(&self, gy: &Shape, w: &Shape) -> core::result::Result<Sizes, String> {
        let [n, _, _, _] = self.0.nchw(gy, "output gradient")?;
        let wd = self.0.weight(w)?;
        let [h, iw] = self.1;
        self.0.sizes_of([n, wd[1] * self.0.groups, h, iw], wd)
    }
}

impl<T: Scalar> Op<T> for ConvInputGrad {
    fn name(&self) -> &'static str {
        if self.0.spatial == 1 {
            "conv1d_input_grad"
        } else {
            "conv2d_input_grad"
        }
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        let z = self.sizes(s[0], s[1])?;
        let mut dims = vec![z.n, z.c];
        dims.extend(self.0.spatial_dims([z.h, z.w]));
        Ok(Shape::with_dims_of(dims, s[0].run()))
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn scratch(&self, s: &[&Shape]) -> usize {
        self.sizes(s[0], s[1])
            .map_or(0, |z| kernel::input_grad_scratch::<T>(&self.0, &z))
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        if let Ok(z) = self.run_sizes(x.shape(0), x.shape(1)) {
            let (dx, scratch) = out.with_scratch();
            kernel::input_grad(&self.0, &z, x.slice(0), x.slice(1), dx, scratch);
        }
        Ok(())
    }
    // out = T(gy, w), bilinear, with <T(gy, w), x> = <gy, conv(x, w)>; for the upstream
    // `gg` (shaped like x): d/dgy = conv(gg, w), d/dw = conv_weight_grad(gg, gy).
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        gg: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let caller = Location::caller();
        let Ok([_, _, kh, kw]) = self.0.weight(&x[1].shape()) else {
            return vec![None, None];
        };
        let dgy = gg.apply(Conv(self.0), &[gg, x[1]], caller);
        let dw = gg.apply(ConvWeightGrad(self.0, [kh, kw]), &[gg, x[0]], caller);
        vec![Some(dgy), Some(dw)]
    }
}

impl ConvWeightGrad {
    fn sizes(&self, x: &Shape, gy: &Shape) -> core::result::Result<Sizes, String> {
        let g = self.0;
        let [_, c, _, _] = g.nchw(x, "input")?;
        let [_, o, _, _] = g.nchw(gy, "output gradient")?;
        if g.groups == 0 || c % g.groups != 0 {
            return Err(format!(
                "groups ({}) must divide the input channels ({c})",
                g.groups
            ));
        }
        let [kh, kw] = self.1;
        let mut dims = vec![o, c / g.groups];
        dims.extend(g.spatial_dims([kh, kw]));
        let z = g.sizes(x, &Shape::new(dims))?;
        g.check_grad_out(&z, x, gy)?;
        Ok(z)
    }
}

impl ConvWeightGrad {
    /// The sizes at run time, shapes checked when recorded, without allocating.
    fn run_sizes(&self, x: &Shape, gy: &Shape) -> core::result::Result<Sizes, String> {
        let xd = self.0.nchw(x, "input")?;
        let [_, o, _, _] = self.0.nchw(gy, "output gradient")?;
        let [kh, kw] = self.1;
        self.0
            .sizes_of(xd, [o, xd[1] / self.0.groups.max(1), kh, kw])
    }
}

impl<T: Scalar> Op<T> for ConvWeightGrad {
    fn name(&self) -> &'static str {
        if self.0.spatial == 1 {
            "conv1d_weight_grad"
        } else {
            "conv2d_weight_grad"
        }
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        let z = self.sizes(s[0], s[1])?;
        let mut dims = vec![z.o, z.cg];
        dims.extend(self.0.spatial_dims([z.kh, z.kw]));
        Ok(Shape::new(dims))
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn scratch(&self, s: &[&Shape]) -> usize {
        self.sizes(s[0], s[1])
            .map_or(0, |z| kernel::weight_grad_scratch::<T>(&self.0, &z))
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        if let Ok(z) = self.run_sizes(x.shape(0), x.shape(1)) {
            let (dw, scratch) = out.with_scratch();
            kernel::weight_grad(&self.0, &z, x.slice(0), x.slice(1), dw, scratch);
        }
        Ok(())
    }
    // out = U(x, gy), bilinear, with <U(x, gy), w> = <gy, conv(x, w)>; for the upstream
    // `gg` (shaped like w): d/dx = conv_input_grad(gy, gg), d/dgy = conv(x, gg).
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        gg: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let caller = Location::caller();
        let Ok([_, _, h, w]) = self.0.nchw(&x[0].shape(), "input") else {
            return vec![None, None];
        };
        let dx = gg.apply(ConvInputGrad(self.0, [h, w]), &[x[1], gg], caller);
        let dgy = gg.apply(Conv(self.0), &[x[0], gg], caller);
        vec![Some(dx), Some(dgy)]
    }
}

impl<'g, T: Scalar> Tensor<'g, T> {
    /// 2-D convolution of `self` `[N, C, H, W]` with `weight` `[O, C/groups, KH, KW]` and
    /// an optional `bias` `[O]`, as PyTorch's `F.conv2d`: output `[N, O, OH, OW]` with
    /// `OH = (H + 2 pad - dil (KH - 1) - 1) / stride + 1`. The batch axis may be a
    /// run-time axis ([`Dim::upto`](crate::Dim::upto)).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// use tapegrad::ops::Conv2dOptions;
    /// let g = Graph::<f32>::new();
    /// let x = g.constant(tapegrad::ndarray::Array4::from_elem((1, 1, 3, 3), 1.0));
    /// let w = g.constant(tapegrad::ndarray::Array4::from_elem((2, 1, 2, 2), 0.5));
    /// let y = x.conv2d(w, None, Conv2dOptions::default().padding(1));
    /// assert_eq!(y.shape(), Shape::from([1, 2, 4, 4]));
    /// let mut m = g.compile(&[y], &[])?;
    /// m.run()?;
    /// assert_eq!(m.value(y)?[[0, 0, 0, 0]], 0.5); // only the corner overlaps the input
    /// assert_eq!(m.value(y)?[[0, 1, 1, 1]], 2.0);
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    ///
    /// Wrong ranks, a channel count the weight does not take, `groups` that do not divide
    /// the channels, a stride, dilation or groups of 0, or a kernel larger than the padded
    /// (dilated) input are shape errors located at this call.
    #[track_caller]
    pub fn conv2d(
        self,
        weight: Tensor<'g, T>,
        bias: Option<Tensor<'g, T>>,
        opts: Conv2dOptions,
    ) -> Tensor<'g, T> {
        let geom = Geom {
            spatial: 2,
            stride: opts.stride,
            padding: opts.padding,
            dilation: opts.dilation,
            groups: opts.groups,
        };
        self.conv_at(geom, weight, bias, Location::caller())
    }

    /// 1-D convolution of `self` `[N, C, L]` with `weight` `[O, C/groups, K]` and an
    /// optional `bias` `[O]`, as PyTorch's `F.conv1d`: output `[N, O, OL]`. Errors as
    /// [`conv2d`](Tensor::conv2d).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// use tapegrad::ops::Conv1dOptions;
    /// let g = Graph::<f64>::new();
    /// let x = g.constant(tapegrad::ndarray::arr3(&[[[1.0, 2.0, 3.0, 4.0]]]));
    /// let w = g.constant(tapegrad::ndarray::arr3(&[[[1.0, -1.0]]]));
    /// let b = g.constant(tapegrad::ndarray::arr1(&[10.0]));
    /// let y = x.conv1d(w, Some(b), Conv1dOptions::default().stride(2));
    /// let mut m = g.compile(&[y], &[])?;
    /// m.run()?;
    /// // windows [1, 2] and [3, 4]: 1 - 2 + 10, 3 - 4 + 10
    /// assert_eq!(m.value(y)?.as_slice(), Some(&[9.0, 9.0][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn conv1d(
        self,
        weight: Tensor<'g, T>,
        bias: Option<Tensor<'g, T>>,
        opts: Conv1dOptions,
    ) -> Tensor<'g, T> {
        let geom = Geom {
            spatial: 1,
            stride: [1, opts.stride],
            padding: [0, opts.padding],
            dilation: [1, opts.dilation],
            groups: opts.groups,
        };
        self.conv_at(geom, weight, bias, Location::caller())
    }

    #[track_caller]
    fn conv_at(
        self,
        geom: Geom,
        weight: Tensor<'g, T>,
        bias: Option<Tensor<'g, T>>,
        caller: &'static Location<'static>,
    ) -> Tensor<'g, T> {
        match bias {
            Some(b) => self.apply(Conv(geom), &[self, weight, b], caller),
            None => self.apply(Conv(geom), &[self, weight], caller),
        }
    }
}
