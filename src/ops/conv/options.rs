//! The options of `conv1d` and `conv2d`, with PyTorch's defaults.

use crate::ops::Extent;

/// Stride, zero padding, dilation and groups of [`Tensor::conv2d`](crate::Tensor::conv2d),
/// `[height, width]` (one `usize` sets both); the default is PyTorch's (stride 1, padding 0, dilation 1, groups 1).
///
/// ```
/// use tapegrad::ops::Conv2dOptions;
/// let o = Conv2dOptions::default().stride(2).padding([1, 0]);
/// assert_eq!((o.stride, o.padding, o.dilation, o.groups), ([2, 2], [1, 0], [1, 1], 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Step between windows.
    pub stride: [usize; 2],
    /// Zeros added on each side.
    pub padding: [usize; 2],
    /// Step between a window's taps.
    pub dilation: [usize; 2],
    /// Channel groups: input and output channels split into `groups` independent
    /// convolutions.
    pub groups: usize,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

impl Conv2dOptions {
    /// With this stride.
    pub fn stride(mut self, s: impl Extent<2>) -> Self {
        self.stride = s.per_axis();
        self
    }
    /// With this zero padding on each side.
    pub fn padding(mut self, p: impl Extent<2>) -> Self {
        self.padding = p.per_axis();
        self
    }
    /// With this dilation.
    pub fn dilation(mut self, d: impl Extent<2>) -> Self {
        self.dilation = d.per_axis();
        self
    }
    /// With this many groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
}

/// Stride, zero padding, dilation and groups of [`Tensor::conv1d`](crate::Tensor::conv1d);
/// the default is PyTorch's (stride 1, padding 0, dilation 1, groups 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dOptions {
    /// Step between windows.
    pub stride: usize,
    /// Zeros added on each side.
    pub padding: usize,
    /// Step between a window's taps.
    pub dilation: usize,
    /// Channel groups.
    pub groups: usize,
}

impl Default for Conv1dOptions {
    fn default() -> Self {
        Conv1dOptions {
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
        }
    }
}

impl Conv1dOptions {
    /// With this stride.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }
    /// With this zero padding on each side.
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = p;
        self
    }
    /// With this dilation.
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = d;
        self
    }
    /// With this many groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
}
