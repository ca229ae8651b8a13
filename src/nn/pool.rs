//! Pooling layers and [`Flatten`]: parameter-free [`Module`]s over the pooling ops, named
//! and defaulted as PyTorch's `nn.MaxPool2d`, `nn.AvgPool2d`, `nn.AdaptiveAvgPool2d`,
//! `nn.Flatten` (and their 1-D forms).

use crate::graph::Tensor;
use crate::ops::Window;
use crate::scalar::Scalar;

use super::Module;

/// `nn.MaxPool1d(kernel, stride=kernel, padding=0)` over `[N, C, L]`: see
/// [`Tensor::max_pool1d`].
///
/// ```
/// use tapegrad::nn::{MaxPool1d, Module};
/// use tapegrad::ops::Window;
/// use tapegrad::prelude::*;
/// let g = Graph::<f32>::new();
/// let x = g.input("x", (Dim::upto(8), 4, 10));
/// let pool = MaxPool1d::new(Window::new(3).stride(2).padding(1));
/// assert_eq!(pool.forward(x).shape(), Shape::from((Dim::upto(8), 4, 5)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool1d {
    /// Kernel, stride and padding.
    pub window: Window<1>,
}

impl MaxPool1d {
    /// A layer pooling over `window` (a kernel size, or a [`Window`]).
    pub fn new(window: impl Into<Window<1>>) -> Self {
        MaxPool1d {
            window: window.into(),
        }
    }
}

impl<'g, T: Scalar> Module<'g, T> for MaxPool1d {
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        x.max_pool1d(self.window)
    }
}

/// `nn.MaxPool2d(kernel, stride=kernel, padding=0)` over `[N, C, H, W]`: see
/// [`Tensor::max_pool2d`].
///
/// ```
/// use tapegrad::nn::{MaxPool2d, Module};
/// use tapegrad::prelude::*;
/// let g = Graph::<f32>::new();
/// let x = g.input("x", (Dim::upto(8), 6, 28, 28));
/// assert_eq!(MaxPool2d::new(2).forward(x).shape(), Shape::from((Dim::upto(8), 6, 14, 14)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    /// Kernel, stride and padding.
    pub window: Window<2>,
}

impl MaxPool2d {
    /// A layer pooling over `window` (a kernel size, `[kh, kw]`, or a [`Window`]).
    pub fn new(window: impl Into<Window<2>>) -> Self {
        MaxPool2d {
            window: window.into(),
        }
    }
}

impl<'g, T: Scalar> Module<'g, T> for MaxPool2d {
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        x.max_pool2d(self.window)
    }
}

/// `nn.AvgPool1d(kernel, stride=kernel, padding=0)` (`count_include_pad=True`,
/// `ceil_mode=False`) over `[N, C, L]`: see [`Tensor::avg_pool1d`].
///
/// ```
/// use tapegrad::nn::{AvgPool1d, Module};
/// use tapegrad::prelude::*;
/// let g = Graph::<f32>::new();
/// let x = g.input("x", [2, 4, 9]);
/// assert_eq!(AvgPool1d::new(3).forward(x).shape(), Shape::from([2, 4, 3]));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool1d {
    /// Kernel, stride and padding.
    pub window: Window<1>,
}

impl AvgPool1d {
    /// A layer pooling over `window` (a kernel size, or a [`Window`]).
    pub fn new(window: impl Into<Window<1>>) -> Self {
        AvgPool1d {
            window: window.into(),
        }
    }
}

impl<'g, T: Scalar> Module<'g, T> for AvgPool1d {
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        x.avg_pool1d(self.window)
    }
}

/// `nn.AvgPool2d(kernel, stride=kernel, padding=0)` (`count_include_pad=True`,
/// `ceil_mode=False`) over `[N, C, H, W]`: see [`Tensor::avg_pool2d`].
///
/// ```
/// use tapegrad::nn::{AvgPool2d, Module};
/// use tapegrad::ops::Window;
/// use tapegrad::prelude::*;
/// let g = Graph::<f32>::new();
/// let x = g.input("x", [2, 3, 8, 8]);
/// let pool = AvgPool2d::new(Window::new([3, 2]).stride(2).padding([1, 0]));
/// assert_eq!(pool.forward(x).shape(), Shape::from([2, 3, 4, 4]));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d {
    /// Kernel, stride and padding.
    pub window: Window<2>,
}

impl AvgPool2d {
    /// A layer pooling over `window` (a kernel size, `[kh, kw]`, or a [`Window`]).
    pub fn new(window: impl Into<Window<2>>) -> Self {
        AvgPool2d {
            window: window.into(),
        }
    }
}

impl<'g, T: Scalar> Module<'g, T> for AvgPool2d {
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        x.avg_pool2d(self.window)
    }
}

/// `nn.AdaptiveAvgPool1d(1)`: `[N, C, L]` to `[N, C, 1]`, the mean over `L` (only an
/// output size of 1: see [`Tensor::adaptive_avg_pool1d`]).
///
/// ```
/// use tapegrad::nn::{AdaptiveAvgPool1d, Module};
/// use tapegrad::prelude::*;
/// let g = Graph::<f32>::new();
/// let x = g.input("x", [2, 4, 9]);
/// assert_eq!(AdaptiveAvgPool1d::new(1).forward(x).shape(), Shape::from([2, 4, 1]));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptiveAvgPool1d {
    /// The output length (1).
    pub output_size: usize,
}

impl AdaptiveAvgPool1d {
    /// A layer pooling to `output_size`; another than 1 is a shape error at `forward`.
    pub fn new(output_size: usize) -> Self {
        AdaptiveAvgPool1d { output_size }
    }
}

impl<'g, T: Scalar> Module<'g, T> for AdaptiveAvgPool1d {
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        x.adaptive_avg_pool1d(self.output_size)
    }
}

/// `nn.AdaptiveAvgPool2d(1)`: `[N, C, H, W]` to `[N, C, 1, 1]`, global average pooling
/// (only an output size of 1: see [`Tensor::adaptive_avg_pool2d`]).
///
/// ```
/// use tapegrad::nn::{AdaptiveAvgPool2d, Flatten, Module};
/// use tapegrad::prelude::*;
/// let g = Graph::<f32>::new();
/// let x = g.input("x", (Dim::upto(8), 64, 7, 7));
/// let features = Flatten::new().forward(AdaptiveAvgPool2d::new(1).forward(x));
/// assert_eq!(features.shape(), Shape::from((Dim::upto(8), 64)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptiveAvgPool2d {
    /// The output height and width (1).
    pub output_size: usize,
}

impl AdaptiveAvgPool2d {
    /// A layer pooling to `output_size` x `output_size`; another than 1 is a shape error
    /// at `forward`.
    pub fn new(output_size: usize) -> Self {
        AdaptiveAvgPool2d { output_size }
    }
}

impl<'g, T: Scalar> Module<'g, T> for AdaptiveAvgPool2d {
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        x.adaptive_avg_pool2d(self.output_size)
    }
}

/// `nn.Flatten(start_dim=1, end_dim=-1)`: axes `start_dim..=end_dim` joined into one (see
/// [`Tensor::flatten`]), so `[N, C, H, W]` becomes `[N, C * H * W]` by default.
///
/// ```
/// use tapegrad::nn::{Flatten, Module};
/// use tapegrad::prelude::*;
/// let g = Graph::<f32>::new();
/// let x = g.input("x", (Dim::upto(8), 16, 5, 5));
/// assert_eq!(Flatten::new().forward(x).shape(), Shape::from((Dim::upto(8), 400)));
/// assert_eq!(Flatten::with_dims(0, 1).forward(x).shape().to_string(), "[..=128, 5, 5]");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flatten {
    /// The first axis joined (negative counts from the back).
    pub start_dim: isize,
    /// The last axis joined (negative counts from the back).
    pub end_dim: isize,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten::new()
    }
}

impl Flatten {
    /// PyTorch's defaults: every axis after the first (the batch) joined.
    pub fn new() -> Self {
        Flatten::with_dims(1, -1)
    }

    /// Axes `start_dim..=end_dim` joined; out of range, or start after end, is a shape
    /// error at `forward`.
    pub fn with_dims(start_dim: isize, end_dim: isize) -> Self {
        Flatten { start_dim, end_dim }
    }
}

impl<'g, T: Scalar> Module<'g, T> for Flatten {
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        x.flatten(self.start_dim, self.end_dim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{assert_close, eval, rand_array};
    use crate::prelude::*;

    /// Case `c` as a module (`module`) or as the op it wraps, on `[2, 3, 6, 5]` (cases
    /// 0..4) or `[2, 3, 7]` (4..7).
    fn case<'g>(x: Tensor<'g, f64>, c: usize, module: bool) -> Tensor<'g, f64> {
        let w2 = Window::new([3, 2]).stride([2, 1]).padding(1);
        let w1 = Window::new(3).stride(2).padding(1);
        match (c, module) {
            (0, true) => MaxPool2d::new(w2).forward(x),
            (0, false) => x.max_pool2d(w2),
            (1, true) => AvgPool2d::new(w2).forward(x),
            (1, false) => x.avg_pool2d(w2),
            (2, true) => AdaptiveAvgPool2d::new(1).forward(x),
            (2, false) => x.mean_axes(&[2, 3], true),
            (3, true) => Flatten::new().forward(x),
            (3, false) => x.reshape([2, 90]),
            (4, true) => MaxPool1d::new(w1).forward(x),
            (4, false) => x.max_pool1d(w1),
            (5, true) => AvgPool1d::new(w1).forward(x),
            (5, false) => x.avg_pool1d(w1),
            (_, true) => AdaptiveAvgPool1d::new(1).forward(x),
            (_, false) => x.mean_axes(&[2], true),
        }
    }

    #[test]
    fn modules_match_their_ops() {
        for c in 0..7 {
            let shape: &[usize] = if c < 4 { &[2, 3, 6, 5] } else { &[2, 3, 7] };
            let x = [rand_array(shape, c as u64, -1.0, 1.0)];
            let got = eval(&x, |_, t| case(t[0], c, true));
            assert_close(&got, &eval(&x, |_, t| case(t[0], c, false)));
        }
        assert_eq!(
            MaxPool2d::new(2).window,
            Window::new(2).stride(2).padding(0)
        );
        assert!(Module::<f64>::params(&Flatten::default()).is_empty());
    }

    #[test]
    fn errors_point_at_the_forward_call() {
        let g = Graph::<f32>::new();
        let x = g.input("x", [1, 2, 3]);
        let (_, line) = (Module::forward(&MaxPool2d::new(2), x), line!());
        let (_, line2) = (Module::forward(&AdaptiveAvgPool1d::new(3), x), line!());
        let (_, line3) = (Module::forward(&Flatten::with_dims(2, 1), x), line!());
        let errs = g.inner.borrow().errors.clone();
        let at: Vec<_> = errs
            .iter()
            .map(|e| match e {
                Error::Shape { op, caller, .. } => (*op, caller.line, caller.file),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(at.len(), 3, "{errs:?}");
        assert_eq!((at[0].0, at[0].1), ("max_pool2d", line));
        assert_eq!((at[1].0, at[1].1), ("adaptive_avg_pool1d", line2));
        assert_eq!((at[2].0, at[2].1), ("flatten", line3));
        assert!(at.iter().all(|a| a.2.ends_with("nn/pool.rs")), "{at:?}");
    }
}
