//! Shapes, broadcasting and axis handling.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

mod axis;
mod run;

pub use axis::AxisArg;
pub use run::Dim;
pub(crate) use run::RunAxis;

/// The shape of a tensor: its extent along each axis, outermost first. A scalar has the
/// empty shape `[]`.
///
/// One axis may be a **run-time axis**: an input declares its leading axis as "any size
/// up to a bound" ([`Dim::upto`]), and the shape rules carry that axis through every op
/// that can take it (it may move, as in a transpose, or grow by a fixed factor, as in a
/// reshape of `[B, 3, 4]` to `[B * 3, 4]`). Such a shape holds the extent at the bound;
/// a [`Machine`](crate::Machine) is planned for the bound and computes on the rows fed.
/// It prints as `[..=256, 784]`.
///
/// ```
/// use tapegrad::{Dim, Shape};
/// let s = Shape::from((Dim::upto(256), 784));
/// assert_eq!(s.dims(), &[256, 784]);
/// assert_eq!(s.run_axis(), Some(0));
/// assert_eq!(s.to_string(), "[..=256, 784]");
/// assert_eq!(Shape::from(Dim::upto(32)).bound(), Some(32));
/// assert_eq!(Shape::from([2, 3]).run_axis(), None);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Shape {
    dims: Vec<usize>,
    /// The run-time axis and its bound, `NO_RUN` for none: packed into 8 bytes, as every
    /// error that names shapes carries them.
    run: (u32, u32),
}

const NO_RUN: (u32, u32) = (u32::MAX, 0);

fn pack(run: Option<RunAxis>) -> (u32, u32) {
    match run {
        // Graph::input refuses bounds above u32::MAX; other axes do not reach such ranks.
        Some(r) => (r.axis as u32, r.bound.min(u32::MAX as usize) as u32),
        None => NO_RUN,
    }
}

/// The scalar shape `[]`. Written out: a derived `Default` packed the run-time axis as
/// `(0, 0)`, a scalar with a run-time axis at 0.
impl Default for Shape {
    fn default() -> Self {
        Shape::scalar()
    }
}

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape {
            dims: dims.into(),
            run: NO_RUN,
        }
    }

    /// A shape whose leading axis is a run-time axis of up to `bound` rows, followed by
    /// the fixed axes `rest`: `Shape::upto(256, &[784])` is `[..=256, 784]`.
    pub fn upto(bound: usize, rest: &[usize]) -> Self {
        let mut dims = Vec::with_capacity(rest.len() + 1);
        dims.push(bound);
        dims.extend_from_slice(rest);
        Shape::with_dims_of(dims, Some(RunAxis { axis: 0, bound }))
    }

    /// The shape `[]` of a scalar.
    pub fn scalar() -> Self {
        Shape::new(Vec::new())
    }

    pub(crate) fn run(&self) -> Option<RunAxis> {
        (self.run != NO_RUN).then_some(RunAxis {
            axis: self.run.0 as usize,
            bound: self.run.1 as usize,
        })
    }

    /// The run-time axis, if this shape has one (see [`Dim::upto`]).
    pub fn run_axis(&self) -> Option<usize> {
        self.run().map(|r| r.axis)
    }

    /// The bound on the rows of the run-time axis, if this shape has one.
    pub fn bound(&self) -> Option<usize> {
        self.run().map(|r| r.bound)
    }

    /// Sets the extent of `axis` in place (the run-time axis at the rows fed).
    pub(crate) fn set_dim(&mut self, axis: usize, extent: usize) {
        self.dims[axis] = extent;
    }

    /// The dimensions, outermost first (a run-time axis at its bound).
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The bytes of its extents on the heap.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.dims.capacity() * core::mem::size_of::<usize>()
    }

    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// The number of elements (1 for a scalar, 0 if any axis is empty; at the bound for a
    /// shape with a run-time axis), `usize::MAX` if more than a `usize` counts (no shape
    /// in a graph is that large: the graph refuses it as
    /// [`Error::TooLarge`](crate::Error::TooLarge)).
    ///
    /// ```
    /// use tapegrad::Shape;
    /// assert_eq!(Shape::from([2, 3]).numel(), 6);
    /// assert_eq!(Shape::from([usize::MAX, 2]).numel(), usize::MAX);
    /// assert_eq!(Shape::from([usize::MAX, 2, 0]).numel(), 0);
    /// ```
    pub fn numel(&self) -> usize {
        // saturating is exact whenever the product fits, and 0 whenever an axis is empty
        self.dims.iter().fold(1usize, |n, &d| n.saturating_mul(d))
    }

    /// The number of elements, or `None` if the product of the non-zero extents does not
    /// fit in an `isize` (ndarray's rule, so that every view of the shape can be made, and
    /// so that the product of any of its extents, as kernels and shape rules take it,
    /// cannot overflow even when another extent is 0): shapes built from a user's extents
    /// are checked with it.
    pub(crate) fn checked_numel(&self) -> Option<usize> {
        self.dims
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d.max(1)))
            .filter(|&n| n <= isize::MAX as usize)?;
        Some(self.numel())
    }

    /// The extent of `axis`. Panics if `axis >= rank`; internal use only.
    pub(crate) fn dim(&self, axis: usize) -> usize {
        self.dims[axis]
    }

    /// The ndarray dimension of this shape (no allocation for up to four axes).
    pub(crate) fn ix(&self) -> ndarray::IxDyn {
        ndarray::IxDyn(&self.dims)
    }

    /// NumPy broadcasting of two shapes: align on the right, each pair of extents equal or
    /// one of them 1. `None` when they do not broadcast. A run-time axis broadcasts with
    /// the same run-time axis or with an extent of 1, never with a fixed extent.
    pub fn broadcast(&self, other: &Shape) -> Option<Shape> {
        self.broadcast_why(other).ok()
    }

    /// [`broadcast`](Shape::broadcast), saying why not.
    pub(crate) fn broadcast_why(&self, other: &Shape) -> Result<Shape, String> {
        let r = self.rank().max(other.rank());
        let mut out = alloc::vec![0; r];
        let mut run: Option<RunAxis> = None;
        for (i, o) in out.iter_mut().enumerate() {
            let k = r - 1 - i;
            let a = self.dim_from_right(k);
            let b = other.dim_from_right(k);
            let (ra, rb) = (self.run_from_right(k), other.run_from_right(k));
            *o = match (a, b) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => return Err(format!("shapes {self} and {other} do not broadcast")),
            };
            let here = match (ra, rb) {
                (Some(p), Some(q)) if p == q => Some(p),
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "shapes {self} and {other} have run-time axes of different bounds"
                    ))
                }
                (Some(p), None) if b == 1 => Some(p),
                (None, Some(q)) if a == 1 => Some(q),
                (None, None) => None,
                _ => {
                    return Err(format!(
                        "shapes {self} and {other} do not broadcast: a run-time axis meets \
                         a fixed extent (only an extent of 1 broadcasts against it)"
                    ))
                }
            };
            if let Some(h) = here {
                run = Some(RunAxis { axis: i, ..h });
            }
        }
        let s = Shape::with_dims_of(out, run);
        Ok(s)
    }

    /// The same dims with another run-time axis (or none).
    pub(crate) fn with_dims_of(dims: Vec<usize>, like: Option<RunAxis>) -> Shape {
        Shape {
            dims,
            run: pack(like),
        }
    }

    fn run_from_right(&self, k: usize) -> Option<RunAxis> {
        let r = self.run()?;
        (k < self.rank() && r.axis == self.rank() - 1 - k).then_some(r)
    }

    /// Whether this shape broadcasts to `target` (a one-sided broadcast).
    pub fn broadcasts_to(&self, target: &Shape) -> bool {
        self.rank() <= target.rank() && self.broadcast(target).as_ref() == Some(target)
    }

    fn dim_from_right(&self, k: usize) -> usize {
        if k < self.rank() {
            self.dims[self.rank() - 1 - k]
        } else {
            1
        }
    }

    /// Checks a list of axes against the rank: in range and without repeats. Returns them
    /// sorted.
    pub(crate) fn check_axes(&self, axes: &[usize]) -> Result<Vec<usize>, String> {
        let mut sorted = axes.to_vec();
        heapsort(&mut sorted);
        for w in sorted.windows(2) {
            if w[0] == w[1] {
                return Err(format!("axis {} is given twice", w[0]));
            }
        }
        if let Some(&a) = sorted.iter().find(|&&a| a >= self.rank()) {
            return Err(format!(
                "axis {a} is out of range for a tensor of rank {}",
                self.rank()
            ));
        }
        Ok(sorted)
    }

    /// The shape left after reducing `axes` (sorted, checked), kept as 1 or removed. A
    /// reduced run-time axis becomes a fixed one.
    pub(crate) fn reduced(&self, axes: &[usize], keepdim: bool) -> Shape {
        let mut out = Vec::with_capacity(self.rank());
        let mut run = None;
        for (i, &d) in self.dims.iter().enumerate() {
            if axes.contains(&i) {
                if keepdim {
                    out.push(1);
                }
            } else {
                if let Some(r) = self.run().filter(|r| r.axis == i) {
                    run = Some(RunAxis {
                        axis: out.len(),
                        ..r
                    });
                }
                out.push(d);
            }
        }
        Shape::with_dims_of(out, run)
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.dims.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if self.run_axis() == Some(i) {
                f.write_str("..=")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape::new(d.to_vec())
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape::new(d.to_vec())
    }
}

impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape::new(d)
    }
}

impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}

impl<const N: usize> From<&[usize; N]> for Shape {
    fn from(d: &[usize; N]) -> Self {
        Shape::new(d.to_vec())
    }
}

impl From<&Vec<usize>> for Shape {
    fn from(d: &Vec<usize>) -> Self {
        Shape::new(d.clone())
    }
}

/// Sorts a list of axes in place: a few lines of heapsort in place of the standard
/// library's sort, whose several KiB would be in every binary for lists of a few axes (and
/// a heapsort stays O(n log n) for any list a user passes).
fn heapsort(v: &mut [usize]) {
    fn sift(v: &mut [usize], mut root: usize, end: usize) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && v[child] < v[child + 1] {
                child += 1;
            }
            if v[root] >= v[child] {
                return;
            }
            v.swap(root, child);
            root = child;
        }
    }
    for i in (0..v.len() / 2).rev() {
        sift(v, i, v.len());
    }
    for end in (1..v.len()).rev() {
        v.swap(0, end);
        sift(v, 0, end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn heapsort_sorts(mut v in proptest::collection::vec(0usize..8, 0..40)) {
            let mut want = v.clone();
            want.sort_unstable();
            heapsort(&mut v);
            prop_assert_eq!(v, want);
        }
    }

    #[test]
    fn broadcast_known() {
        let a = Shape::from([4, 1, 3]);
        assert_eq!(
            a.broadcast(&Shape::from([5, 1])),
            Some(Shape::from([4, 5, 3]))
        );
        assert_eq!(a.broadcast(&Shape::scalar()), Some(a.clone()));
        assert_eq!(a.broadcast(&Shape::from([2])), None);
        assert!(Shape::from([3]).broadcasts_to(&a));
        assert!(!Shape::from([4, 5, 3]).broadcasts_to(&a));
    }

    #[test]
    fn axes_checked() {
        let s = Shape::from([2, 3]);
        assert_eq!(s.check_axes(&[1, 0]), Ok(alloc::vec![0, 1]));
        assert!(s.check_axes(&[2]).unwrap_err().contains("out of range"));
        assert!(s.check_axes(&[1, 1]).unwrap_err().contains("twice"));
        assert_eq!(s.reduced(&[1], true), Shape::from([2, 1]));
        assert_eq!(s.reduced(&[0, 1], false), Shape::scalar());
    }

    // borrowed forms are what users write; that they convert is the point
    #[allow(clippy::needless_borrows_for_generic_args)]
    #[test]
    fn every_shape_form_converts() {
        fn take(s: impl Into<Shape>) -> Shape {
            s.into()
        }
        let want = Shape::new(alloc::vec![2, 12]);
        let v: Vec<usize> = alloc::vec![2, 12];
        let slice: &[usize] = &[2, 12];
        assert_eq!(take([2, 12]), want);
        assert_eq!(take(&[2, 12]), want);
        assert_eq!(take(slice), want);
        assert_eq!(take(&v), want);
        assert_eq!(take(v), want);
        assert_eq!(take(&want), want);
        assert_eq!(take(want.clone()), want);
        assert_eq!(take([]), Shape::scalar());
    }

    proptest! {
        // Broadcasting is commutative, and the result is reached by both sides.
        #[test]
        fn broadcast_commutes(a in proptest::collection::vec(1usize..4, 0..4),
                              b in proptest::collection::vec(1usize..4, 0..4)) {
            let (a, b) = (Shape::new(a), Shape::new(b));
            let ab = a.broadcast(&b);
            prop_assert_eq!(&ab, &b.broadcast(&a));
            if let Some(s) = ab {
                prop_assert!(a.broadcasts_to(&s));
                prop_assert!(b.broadcasts_to(&s));
                prop_assert_eq!(s.rank(), a.rank().max(b.rank()));
            }
        }
    }
}
