//! The run-time axis of a shape: `Dim::upto` on an input's leading axis, and the shape
//! rules that move it (permute), keep it whole (reshape) or refuse it (narrow, pad,
//! concat along it).

use alloc::format;
use alloc::string::String;

use super::Shape;

/// Where a shape's run-time axis is, and the bound on the rows fed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct RunAxis {
    /// The axis whose extent follows the rows fed: `rows * (dims[axis] / bound)`.
    pub axis: usize,
    /// The most rows an input may be fed.
    pub bound: usize,
}

/// A run-time extent for an input's leading axis: `Dim::upto(256)` accepts any number of
/// rows from 0 to 256 on each feed. Used in a shape: `g.input("x", (Dim::upto(256), 784))`,
/// or `g.input("ids", Dim::upto(256))` for one axis.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Dim {
    bound: usize,
}

impl Dim {
    /// Any extent from 0 to `bound`, chosen at each feed.
    pub fn upto(bound: usize) -> Self {
        Dim { bound }
    }

    /// The bound.
    pub fn bound(self) -> usize {
        self.bound
    }
}

impl Shape {
    /// The shape of `self`'s elements laid out as `target` (the same element count). A
    /// run-time axis must stay whole with the same elements before it; `target` may give
    /// it, or it is found as the first axis after those elements whose extent is a
    /// multiple of the bound (`[..=B, 3, 4]` into `[B * 3, 4]` or `[B, 12]`).
    pub(crate) fn reshaped(&self, target: &Shape) -> Result<Shape, String> {
        // a target too large to hold is the graph's to refuse, as too large, naming it
        let Some(count) = target.checked_numel() else {
            return Ok(target.clone());
        };
        if self.checked_numel() != Some(count) {
            return Err(format!(
                "cannot reshape {} elements into {target} ({} elements)",
                self.numel(),
                target.numel()
            ));
        }
        let Some(r) = self.run() else {
            return match target.run() {
                None => Ok(target.clone()),
                Some(_) => Err(format!(
                    "cannot give {self}, which has no run-time axis, the run-time axis of {target}"
                )),
            };
        };
        let pre: usize = self.dims[..r.axis].iter().product();
        let keeps = |j: usize| {
            // a bound of 0 rows holds no elements along the axis: it stays whole only as 0
            target.dims[..j].iter().product::<usize>() == pre
                && target.dims[j]
                    .checked_rem(r.bound)
                    .unwrap_or(target.dims[j])
                    == 0
        };
        let axis = match target.run() {
            Some(t) => (t.bound == r.bound && keeps(t.axis)).then_some(t.axis),
            None => (0..target.rank()).find(|&j| keeps(j)),
        };
        match axis {
            Some(axis) => Ok(Shape::with_dims_of(
                target.dims.clone(),
                Some(RunAxis { axis, ..r }),
            )),
            None => Err(format!(
                "cannot reshape {self} into {target}: the run-time axis must stay whole, \
                 after the same {pre} elements"
            )),
        }
    }

    /// The shape with axis `i` of the result being axis `axes[i]` of `self` (checked).
    pub(crate) fn permuted(&self, axes: &[usize]) -> Shape {
        let dims = axes.iter().map(|&a| self.dims[a]).collect();
        let run = self.run().and_then(|r| {
            let axis = axes.iter().position(|&a| a == r.axis)?;
            Some(RunAxis { axis, ..r })
        });
        Shape::with_dims_of(dims, run)
    }

    /// An error if `axis` is the run-time axis (narrow, pad and concat along it).
    pub(crate) fn fixed_axis(&self, axis: usize) -> Result<(), String> {
        match self.run() {
            Some(r) if r.axis == axis => Err(format!(
                "axis {axis} of {self} is a run-time axis; only fixed axes can be sliced, padded \
                 or joined"
            )),
            _ => Ok(()),
        }
    }
}

impl From<Dim> for Shape {
    fn from(d: Dim) -> Self {
        Shape::upto(d.bound, &[])
    }
}

impl From<(Dim,)> for Shape {
    fn from(d: (Dim,)) -> Self {
        Shape::upto(d.0.bound, &[])
    }
}

impl From<(Dim, usize)> for Shape {
    fn from(d: (Dim, usize)) -> Self {
        Shape::upto(d.0.bound, &[d.1])
    }
}

impl From<(Dim, usize, usize)> for Shape {
    fn from(d: (Dim, usize, usize)) -> Self {
        Shape::upto(d.0.bound, &[d.1, d.2])
    }
}

impl From<(Dim, usize, usize, usize)> for Shape {
    fn from(d: (Dim, usize, usize, usize)) -> Self {
        Shape::upto(d.0.bound, &[d.1, d.2, d.3])
    }
}

impl From<(Dim, usize, usize, usize, usize)> for Shape {
    fn from(d: (Dim, usize, usize, usize, usize)) -> Self {
        Shape::upto(d.0.bound, &[d.1, d.2, d.3, d.4])
    }
}
