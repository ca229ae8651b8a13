//! Movement: reshape, transpose/permute, broadcast_to, narrow (slice along an axis), pad,
//! concat, and detach.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::panic::Location;

use super::strided::{around, axis_stride, gather};
use super::{Inputs, Op, Out};
use crate::error::Result;
use crate::graph::{Graph, Tensor};
use crate::scalar::Scalar;
use crate::shape::{AxisArg, Shape};

type ShapeResult = core::result::Result<Shape, String>;

/// Same elements, new shape (same count).
#[derive(Debug)]
pub struct Reshape(Shape);

impl<T: Scalar> Op<T> for Reshape {
    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }
    fn is_view(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        s[0].reshaped(&self.0)
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        out.slice().copy_from_slice(x.slice(0));
        Ok(())
    }
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        vec![Some(g.reshape(x[0].shape()))]
    }
}

/// Reorders the axes: output axis `i` is input axis `axes[i]`.
#[derive(Debug)]
pub struct Permute(Vec<usize>);

impl<T: Scalar> Op<T> for Permute {
    fn heap_bytes(&self) -> usize {
        self.0.capacity() * core::mem::size_of::<usize>()
    }
    fn name(&self) -> &'static str {
        "permute"
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        let mut seen = self.0.clone();
        seen.sort_unstable();
        if seen != (0..s[0].rank()).collect::<Vec<_>>() {
            return Err(format!(
                "axes {:?} are not a permutation of 0..{}",
                self.0,
                s[0].rank()
            ));
        }
        Ok(s[0].permuted(&self.0))
    }
    fn takes_run_axis(&self) -> bool {
        true
    }

    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let dims = x.shape(0).dims();
        let axes = self.0.iter().map(|&a| axis_stride(dims, a));
        gather(x.slice(0), axes, out.slice());
        Ok(())
    }
    fn vjp<'g>(
        &self,
        _: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let mut inverse = vec![0; self.0.len()];
        for (i, &a) in self.0.iter().enumerate() {
            inverse[a] = i;
        }
        vec![Some(g.permute(&inverse))]
    }
}

/// Repeats the input along broadcast axes (NumPy rules).
#[derive(Debug)]
pub struct BroadcastTo(Shape);

impl<T: Scalar> Op<T> for BroadcastTo {
    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }
    fn name(&self) -> &'static str {
        "broadcast_to"
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        if s[0].broadcasts_to(&self.0) {
            Ok(self.0.clone())
        } else {
            Err(format!("{} does not broadcast to {}", s[0], self.0))
        }
    }
    fn takes_run_axis(&self) -> bool {
        true
    }

    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        // Row by row along the output's last axis, each source row found as the binary
        // ops find theirs (plain slices: no ndarray iteration linked for this op).
        let (src, dx) = (x.slice(0), x.shape(0).dims());
        let out_shape = out.shape;
        let d = out_shape.dims();
        let len = d.last().copied().unwrap_or(1);
        if len == 0 {
            return Ok(());
        }
        let step = super::binary::inner_step(d, dx);
        for (r, o) in out.slice().chunks_exact_mut(len).enumerate() {
            let start = super::binary::row_start(r, d, dx);
            if step == 1 {
                o.copy_from_slice(&src[start..start + len]);
            } else {
                o.fill(src[start]);
            }
        }
        Ok(())
    }
    fn vjp<'g>(
        &self,
        _: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        // summed back over the broadcast axes by autodiff's unbroadcast
        vec![Some(g)]
    }
}

/// `len` entries of `axis` from `start`.
#[derive(Debug)]
pub struct Narrow {
    axis: usize,
    start: usize,
    len: usize,
}

impl<T: Scalar> Op<T> for Narrow {
    fn name(&self) -> &'static str {
        "narrow"
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        let s = s[0];
        if self.axis >= s.rank() {
            return Err(format!(
                "axis {} is out of range for rank {}",
                self.axis,
                s.rank()
            ));
        }
        let end = self.start.checked_add(self.len);
        if end.is_none_or(|e| e > s.dim(self.axis)) {
            return Err(format!(
                "range {}..{}+{} is outside axis {} of extent {}",
                self.start,
                self.start,
                self.len,
                self.axis,
                s.dim(self.axis)
            ));
        }
        s.fixed_axis(self.axis)?;
        let mut d = s.dims().to_vec();
        d[self.axis] = self.len;
        Ok(Shape::with_dims_of(d, s.run()))
    }
    fn takes_run_axis(&self) -> bool {
        true
    }

    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let (_, d, inner) = around(x.shape(0).dims(), self.axis);
        let (from, n) = (self.start * inner, self.len * inner);
        if n == 0 {
            return Ok(());
        }
        for (o, x) in out
            .slice()
            .chunks_exact_mut(n)
            .zip(x.slice(0).chunks_exact(d * inner))
        {
            o.copy_from_slice(&x[from..from + n]);
        }
        Ok(())
    }
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let extent = x[0].shape().dim(self.axis);
        let after = extent - self.start - self.len;
        vec![Some(g.pad(self.axis, self.start, after))]
    }
}

/// Zeros added before and after along `axis`; the adjoint of [`Narrow`].
#[derive(Debug)]
pub struct Pad {
    axis: usize,
    before: usize,
    after: usize,
}

impl<T: Scalar> Op<T> for Pad {
    fn name(&self) -> &'static str {
        "pad"
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        if self.axis >= s[0].rank() {
            return Err(format!(
                "axis {} is out of range for rank {}",
                self.axis,
                s[0].rank()
            ));
        }
        s[0].fixed_axis(self.axis)?;
        let mut d = s[0].dims().to_vec();
        // saturating: an extent past usize is past every byte limit too, and the graph
        // refuses the result as too large, naming it
        d[self.axis] = self
            .before
            .saturating_add(self.after)
            .saturating_add(d[self.axis]);
        Ok(Shape::with_dims_of(d, s[0].run()))
    }
    fn takes_run_axis(&self) -> bool {
        true
    }

    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let (_, n, inner) = around(x.shape(0).dims(), self.axis);
        let (from, len) = (self.before * inner, n * inner);
        let total = (self.before + n + self.after) * inner;
        let o = out.slice();
        o.fill(T::zero());
        if len == 0 {
            return Ok(());
        }
        for (o, x) in o.chunks_exact_mut(total).zip(x.slice(0).chunks_exact(len)) {
            o[from..from + len].copy_from_slice(x);
        }
        Ok(())
    }
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let n = x[0].shape().dim(self.axis);
        vec![Some(g.narrow(self.axis, self.before, n))]
    }
}

/// Joins tensors along `axis`.
#[derive(Debug)]
pub struct Concat(usize);

impl<T: Scalar> Op<T> for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        let first = s
            .first()
            .ok_or_else(|| String::from("needs at least one tensor"))?;
        let axis = self.0;
        if axis >= first.rank() {
            return Err(format!(
                "axis {axis} is out of range for rank {}",
                first.rank()
            ));
        }
        let mut d = first.dims().to_vec();
        d[axis] = 0;
        for t in s {
            let same = t.rank() == first.rank()
                && (0..t.rank()).all(|i| i == axis || t.dim(i) == first.dim(i));
            if !same {
                return Err(format!("all shapes must match except along axis {axis}"));
            }
            if t.run() != first.run() {
                return Err(String::from(
                    "all tensors must have the same run-time axis, or none",
                ));
            }
            t.fixed_axis(axis)?;
            // saturating, as in `Pad::shape`: the graph refuses the result as too large
            d[axis] = d[axis].saturating_add(t.dim(axis));
        }
        Ok(Shape::with_dims_of(d, first.run()))
    }
    fn takes_run_axis(&self) -> bool {
        true
    }

    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let (outer, total, inner) = around(out.shape().dims(), self.0);
        let o = out.slice();
        let mut at = 0;
        for i in 0..x.len() {
            let n = x.shape(i).dim(self.0) * inner;
            if n > 0 {
                let rows = o.chunks_exact_mut(total * inner).take(outer);
                for (o, x) in rows.zip(x.slice(i).chunks_exact(n)) {
                    o[at..at + n].copy_from_slice(x);
                }
            }
            at += n;
        }
        Ok(())
    }
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let mut at = 0;
        x.iter()
            .map(|t| {
                let n = t.shape().dim(self.0);
                at += n;
                Some(g.narrow(self.0, at - n, n))
            })
            .collect()
    }
}

/// The identity with no gradient.
#[derive(Debug)]
pub struct Detach;

impl<T: Scalar> Op<T> for Detach {
    fn is_view(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "detach"
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        Ok(s[0].clone())
    }
    fn takes_run_axis(&self) -> bool {
        true
    }

    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        out.slice().copy_from_slice(x.slice(0));
        Ok(())
    }
    fn vjp<'g>(
        &self,
        _: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        _: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        vec![None]
    }
}

impl<'g, T: Scalar> Tensor<'g, T> {
    /// The same elements in a new shape with the same element count.
    #[track_caller]
    pub fn reshape(self, shape: impl Into<Shape>) -> Tensor<'g, T> {
        self.apply(Reshape(shape.into()), &[self], Location::caller())
    }

    /// Reorders the axes: output axis `i` is input axis `axes[i]` (negative axes count
    /// from the back).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.input("x", [2, 3, 4]);
    /// assert_eq!(x.permute(&[2, 0, 1]).shape(), Shape::from([4, 2, 3]));
    /// assert_eq!(x.permute(&[-1, 0, 1]).shape(), Shape::from([4, 2, 3]));
    /// ```
    #[track_caller]
    pub fn permute<A: AxisArg>(self, axes: &[A]) -> Tensor<'g, T> {
        let caller = Location::caller();
        let shape = self.shape();
        match axes.iter().map(|&a| shape.resolve_axis(a)).collect() {
            Ok(axes) => self.apply(Permute(axes), &[self], caller),
            Err(reason) => self.fail_with("permute", reason, caller),
        }
    }

    /// Repeats the tensor to `shape` by NumPy broadcasting.
    #[track_caller]
    pub fn broadcast_to(self, shape: impl Into<Shape>) -> Tensor<'g, T> {
        self.apply(BroadcastTo(shape.into()), &[self], Location::caller())
    }

    /// The `len` entries of `axis` starting at `start` (PyTorch's `narrow`; a negative
    /// axis counts from the back).
    ///
    /// Its gradient is the incoming one padded with zeros to the input's whole shape: a
    /// tensor read a step at a time by many `narrow`s gets back that many whole-size
    /// gradients, summed. Where a computation allows, narrow its input rather than a large
    /// intermediate (the recurrent layers narrow the sequence, then project each step).
    #[track_caller]
    pub fn narrow<A: AxisArg>(self, axis: A, start: usize, len: usize) -> Tensor<'g, T> {
        let caller = Location::caller();
        match self.axis_for("narrow", axis, caller) {
            Ok(axis) => self.apply(Narrow { axis, start, len }, &[self], caller),
            Err(stand_in) => stand_in,
        }
    }

    /// `before` zeros in front of and `after` zeros behind the entries of `axis` (a
    /// negative axis counts from the back).
    #[track_caller]
    pub fn pad<A: AxisArg>(self, axis: A, before: usize, after: usize) -> Tensor<'g, T> {
        let caller = Location::caller();
        let axis = match self.axis_for("pad", axis, caller) {
            Ok(axis) => axis,
            Err(stand_in) => return stand_in,
        };
        let op = Pad {
            axis,
            before,
            after,
        };
        self.apply(op, &[self], caller)
    }

    /// The same values, with no gradient flowing back through them.
    #[track_caller]
    pub fn detach(self) -> Tensor<'g, T> {
        self.apply(Detach, &[self], Location::caller())
    }
}

impl<T: Scalar> Graph<T> {
    /// Joins `tensors` along `axis` (a negative axis counts from the back); all other
    /// extents must match.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let (a, b) = (g.input("a", [2, 3]), g.input("b", [2, 5]));
    /// assert_eq!(g.concat(&[a, b], 1).shape(), Shape::from([2, 8]));
    /// assert_eq!(g.concat(&[a, b], -1).shape(), Shape::from([2, 8]));
    /// ```
    #[track_caller]
    pub fn concat<A: AxisArg>(&self, tensors: &[Tensor<'_, T>], axis: A) -> Tensor<'_, T> {
        let caller = Location::caller();
        // with no tensors there is no rank to resolve against; the shape rule says so
        let axis = match tensors.first().map(|t| t.shape().resolve_axis(axis)) {
            None => 0,
            Some(Ok(axis)) => axis,
            Some(Err(reason)) => {
                let shapes: Vec<Shape> = tensors.iter().map(|t| t.shape()).collect();
                let fallback = shapes[0].clone();
                return self.fail("concat", shapes, reason, caller, fallback);
            }
        };
        self.apply(Concat(axis), tensors, caller)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, eval, grads_of, rand_array};
    use ndarray::{arr1, arr2, arr3};

    #[test]
    fn known_values() {
        let x = [arr2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).into_dyn()];
        assert_eq!(
            eval(&x, |_, t| t[0].transpose(0, 1)),
            arr2(&[[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]).into_dyn()
        );
        assert_eq!(
            eval(&x, |_, t| t[0].reshape([3, 2])),
            arr2(&[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]).into_dyn()
        );
        assert_eq!(
            eval(&x, |_, t| t[0].narrow(1, 1, 2)),
            arr2(&[[2.0, 3.0], [5.0, 6.0]]).into_dyn()
        );
        assert_eq!(
            eval(&x, |_, t| t[0].pad(0, 1, 0)),
            arr2(&[[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).into_dyn()
        );
        assert_eq!(
            eval(&x, |_, t| t[0].narrow(0, 1, 1).broadcast_to([2, 3])),
            arr2(&[[4.0, 5.0, 6.0], [4.0, 5.0, 6.0]]).into_dyn()
        );
        assert_eq!(
            eval(&x, |g, t| g.concat(&[t[0], t[0].narrow(1, 0, 1)], 1)),
            arr2(&[[1.0, 2.0, 3.0, 1.0], [4.0, 5.0, 6.0, 4.0]]).into_dyn()
        );
        let p = eval(&[arr3(&[[[1.0, 2.0]], [[3.0, 4.0]]]).into_dyn()], |_, t| {
            t[0].permute(&[2, 0, 1])
        });
        assert_eq!(p, arr3(&[[[1.0], [3.0]], [[2.0], [4.0]]]).into_dyn());
        // negative axes count from the back: -1 is axis 1, -2 axis 0 of these matrices
        assert_eq!(
            eval(&x, |_, t| t[0].narrow(-1, 1, 2)),
            eval(&x, |_, t| t[0].narrow(1, 1, 2))
        );
        assert_eq!(
            eval(&x, |_, t| t[0].pad(-2, 1, 0)),
            eval(&x, |_, t| t[0].pad(0, 1, 0))
        );
        assert_eq!(
            eval(&x, |g, t| g.concat(&[t[0], t[0]], -1)),
            eval(&x, |g, t| g.concat(&[t[0], t[0]], 1))
        );
        assert_eq!(
            eval(&x, |_, t| t[0].permute(&[-1, -2])),
            eval(&x, |_, t| t[0].t())
        );
    }

    #[test]
    fn broadcast_to_matches_ndarray() {
        // ndarray's own `broadcast` is the reference: a trailing row, a column, a scalar,
        // a middle axis, a leading axis of 1, rank lifting by two, and an empty output
        let cases: [(&[usize], &[usize]); 8] = [
            (&[3], &[2, 3]),
            (&[2, 1], &[2, 3]),
            (&[], &[2, 2]),
            (&[2, 1, 3], &[2, 4, 3]),
            (&[1, 3], &[4, 3]),
            (&[3, 1], &[2, 2, 3, 2]),
            (&[1], &[1]),
            (&[1, 3], &[0, 3]),
        ];
        for (i, (from, to)) in cases.iter().enumerate() {
            let n: usize = from.iter().product();
            let x = ndarray::ArrayD::from_shape_vec(
                from.to_vec(),
                (0..n).map(|v| v as f64 + 1.0).collect(),
            )
            .unwrap();
            let want = x.broadcast(to.to_vec()).unwrap().to_owned();
            let got = eval(&[x], |_, t| t[0].broadcast_to(to.to_vec()));
            assert_eq!(got, want, "case {i}: {from:?} to {to:?}");
        }
    }

    #[test]
    fn known_gradients() {
        // broadcast [3] to [2, 3]: each element is used twice
        let g = grads_of(&[arr1(&[1.0, 2.0, 3.0]).into_dyn()], |_, t| {
            t[0].broadcast_to([2, 3])
        });
        assert_eq!(g[0], arr1(&[2.0, 2.0, 2.0]).into_dyn());
        // narrow passes gradient to the kept entries only
        let g = grads_of(&[arr1(&[1.0, 2.0, 3.0]).into_dyn()], |_, t| {
            t[0].narrow(0, 1, 2)
        });
        assert_eq!(g[0], arr1(&[0.0, 1.0, 1.0]).into_dyn());
        // detach stops the gradient
        let g = grads_of(&[arr1(&[1.0, 2.0]).into_dyn()], |_, t| t[0].detach() * t[0]);
        assert_eq!(g[0], arr1(&[1.0, 2.0]).into_dyn());
    }

    #[test]
    fn gradcheck_movement() {
        let x = [rand_array(&[2, 3, 4], 5, -1.0, 1.0)];
        let w = rand_array(&[2, 3, 4], 6, -1.0, 1.0);
        let wt = w.clone();
        check(&x, move |g, t| {
            t[0].reshape([6, 4]).reshape([2, 3, 4]) * g.constant(wt.clone())
        });
        check(&x, |_, t| t[0].permute(&[1, 2, 0]).square());
        check(&x, |_, t| t[0].narrow(1, 1, 2).square());
        check(&x, |_, t| t[0].narrow(2, 0, 3).pad(2, 2, 1).square());
        check(&x, |g, t| {
            g.concat(&[t[0].square(), t[0].narrow(0, 1, 1)], 0).square()
        });
        check(&[rand_array(&[3, 1], 7, -1.0, 1.0)], |_, t| {
            t[0].broadcast_to([2, 3, 4]).square()
        });
        check(&[rand_array(&[4, 3], 8, -1.0, 1.0)], |_, t| {
            t[0].transpose(-1, 0).square()
        });
    }

    #[test]
    fn shape_errors() {
        let g = crate::Graph::<f32>::new();
        let x = g.input("x", [2, 3]);
        let cases = [
            (x.reshape([4, 2]), "cannot reshape 6 elements"),
            (x.permute(&[0, 0]), "not a permutation"),
            (x.broadcast_to([3, 3]), "does not broadcast"),
            (x.narrow(1, 2, 2), "outside axis 1"),
            (x.narrow(2, 0, 1), "out of range"),
            (g.concat(&[x, g.input("y", [3, 3])], 1), "must match"),
            (g.concat(&[], 0), "at least one"),
            (g.input("z", [2, 3, 4]).transpose(0, 3), "out of range"),
            (g.input("w", [2, 3, 4]).t(), "at most 2 axes"),
            (x.permute(&[0, -3]), "axis -3 is out of range"),
            (x.pad(-3, 1, 1), "out of range"),
            (g.concat(&[x, x], 2), "axis 2 is out of range"),
            // inputs of 2^60 - 1 elements are valid declarations; 17 of them along that
            // axis overflowed the extent's sum (a panic in debug builds)
            (
                g.concat(&[g.input("big", [isize::MAX as usize / 8]); 17], 0),
                "`concat`",
            ),
        ];
        let errs = g.inner.borrow().errors.clone();
        assert_eq!(errs.len(), cases.len());
        for (e, (_, what)) in errs.iter().zip(&cases) {
            let e = e.to_string();
            assert!(e.contains(what), "{e}");
        }
    }
}
