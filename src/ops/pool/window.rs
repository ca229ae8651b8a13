//! The window of a pooling op, its shape rule and the loops over its windows.

use alloc::format;
use alloc::string::String;
use core::ops::Range;

use crate::scalar::Scalar;
use crate::shape::Shape;

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

/// Which op of a pooling: the pooling, its gradient, or (max) the gradient's VJP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Part {
    Forward,
    Grad,
    Gather,
}

/// A window over two axes; a 1-D one is a 2-D one of kernel 1 over a height of 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Geom {
    pub(super) k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
    /// Spatial axes: 1 or 2.
    pub(super) d: usize,
    max: bool,
}

impl Geom {
    pub(super) fn of<const D: usize>(w: Window<D>, max: bool) -> Geom {
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

    /// The name of `part` of this pooling, for errors.
    pub(super) fn name(&self, part: Part) -> &'static str {
        match (self.max, self.d, part) {
            (true, 1, Part::Forward) => "max_pool1d",
            (true, _, Part::Forward) => "max_pool2d",
            (true, 1, Part::Grad) => "max_pool1d_grad",
            (true, _, Part::Grad) => "max_pool2d_grad",
            (true, 1, Part::Gather) => "max_pool1d_gather",
            (true, _, Part::Gather) => "max_pool2d_gather",
            (false, 1, Part::Forward) => "avg_pool1d",
            (false, _, Part::Forward) => "avg_pool2d",
            (false, 1, _) => "avg_pool1d_grad",
            (false, _, _) => "avg_pool2d_grad",
        }
    }

    /// `a` over the spatial axes: `3` in 1-D, `[3, 3]` in 2-D.
    pub(super) fn show(&self, a: [usize; 2]) -> String {
        match self.d {
            1 => format!("{}", a[1]),
            _ => format!("[{}, {}]", a[0], a[1]),
        }
    }

    /// The pooled shape of `x`, or why the window does not fit it.
    pub(super) fn pooled(&self, x: &Shape) -> ShapeResult {
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
        if (0..2).any(|i| self.p[i] > self.k[i] / 2) {
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
        // 2p <= k fits; the padded extent may not, for a window larger than any input
        let Some(padded) = checked_pair(|i| hw[i].checked_add(2 * self.p[i])) else {
            return Err(format!("the padding {p} is too large"));
        };
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
    pub(super) fn hw(&self, dims: &[usize]) -> [usize; 2] {
        match self.d {
            1 => [1, dims[2]],
            _ => [dims[2], dims[3]],
        }
    }

    /// `[OH, OW]` for an input plane of `hw` (which the shape rule accepted).
    pub(super) fn out_hw(&self, hw: [usize; 2]) -> [usize; 2] {
        [0, 1].map(|i| (hw[i] + 2 * self.p[i] - self.k[i]) / self.s[i] + 1)
    }

    /// Calls `f(o, rows, cols)` for output `o` of a plane of `hw` and the input rows and
    /// columns its window covers, clipped to the plane (never empty: `p <= k / 2`).
    pub(super) fn windows(
        &self,
        hw: [usize; 2],
        mut f: impl FnMut(usize, Range<usize>, Range<usize>),
    ) {
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

    /// The kernel, if the windows tile the plane: stride = kernel, no padding.
    pub(super) fn tiling(&self) -> Option<[usize; 2]> {
        (self.s == self.k && self.p == [0, 0]).then_some(self.k)
    }
}

/// Input elements below which a pooling kernel stays on one thread: half the elementwise
/// kernels' bound, a pooling doing a few compares or adds per element. Not yet measured
/// on a quiet machine: on the shared 2-core one (load 3 to 5), 2 threads came out between
/// 15% faster and 40% slower than 1 on LeNet's pools (`benches/pool.rs`).
#[cfg(feature = "rayon")]
const PARALLEL_MIN: usize = 1 << 15;

/// Whether [`planes`] splits `planes` planes of `work` input elements over threads.
pub(super) fn splits(planes: usize, work: usize) -> bool {
    #[cfg(feature = "rayon")]
    {
        crate::par::kernel_threads() > 1 && planes > 1 && work >= PARALLEL_MIN
    }
    #[cfg(not(feature = "rayon"))]
    {
        let _ = (planes, work);
        false
    }
}

/// Calls `f(n, out_plane)` for each of the `planes` planes of `len` elements of `out`;
/// on several threads, whole planes each, when `work` (input elements read) is large
/// enough. A plane's values do not depend on the split: bit-identical at any thread count.
pub(super) fn planes<T: Scalar>(
    out: &mut [T],
    planes: usize,
    len: usize,
    work: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let len = len.max(1);
    let n = planes.saturating_mul(len).min(out.len());
    let out = &mut out[..n];
    #[cfg(feature = "rayon")]
    {
        let t = crate::par::kernel_threads();
        if splits(planes, work) {
            let per = planes.div_ceil(t);
            crate::par::pieces(out, per * len, &mut [], 0, &[], 0, &|k, o, _, _| {
                for (i, p) in o.chunks_exact_mut(len).enumerate() {
                    f(k * per + i, p);
                }
            });
            return;
        }
    }
    let _ = work;
    for (i, p) in out.chunks_exact_mut(len).enumerate() {
        f(i, p);
    }
}

fn checked_pair(f: impl Fn(usize) -> Option<usize>) -> Option<[usize; 2]> {
    Some([f(0)?, f(1)?])
}

/// The index in a plane of width `w` of the largest entry in `rows` x `cols`: the first
/// of equal ones, a NaN if any (the last one), as PyTorch's CPU kernel.
pub(super) fn argmax<T: Scalar>(
    x: &[T],
    w: usize,
    rows: Range<usize>,
    cols: Range<usize>,
) -> usize {
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
