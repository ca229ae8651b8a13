//! Layout composites: `transpose(a, b)` and `t` over `permute`; `squeeze`, `unsqueeze`
//! and `flatten` over `reshape`; `stack` over `unsqueeze` and `concat`; `split`,
//! `split_sizes` and `chunk` over `narrow`. They have no `Op` of their own, so their
//! gradients (of any order) are those of the ops they are made of. Axes may be negative
//! (`-1` is the last).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::panic::Location;

use crate::graph::{Graph, Tensor};
use crate::scalar::Scalar;
use crate::shape::{AxisArg, RunAxis, Shape};

impl<'g, T: Scalar> Tensor<'g, T> {
    /// Swaps axes `a` and `b` of a tensor of any rank (negative axes count from the
    /// back), as PyTorch's `transpose(a, b)`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.input("x", [2, 3, 4]);
    /// assert_eq!(x.transpose(0, -1).shape(), Shape::from([4, 3, 2]));
    /// assert_eq!(g.input("m", [2, 3]).t().shape(), Shape::from([3, 2]));
    /// ```
    #[track_caller]
    pub fn transpose<A: AxisArg, B: AxisArg>(self, a: A, b: B) -> Tensor<'g, T> {
        let caller = Location::caller();
        let a = match self.axis_for("transpose", a, caller) {
            Ok(a) => a,
            Err(stand_in) => return stand_in,
        };
        let b = match self.axis_for("transpose", b, caller) {
            Ok(b) => b,
            Err(stand_in) => return stand_in,
        };
        let mut axes: Vec<usize> = (0..self.rank()).collect();
        axes.swap(a, b);
        self.permute(&axes)
    }

    /// The transpose of a matrix; a tensor of rank 0 or 1 is returned as it is (PyTorch's
    /// `t()`). A shape error for rank 3 and above (use [`transpose`](Tensor::transpose)).
    #[track_caller]
    pub fn t(self) -> Tensor<'g, T> {
        match self.rank() {
            0 | 1 => self,
            2 => self.transpose(0, 1),
            r => {
                let reason = format!(
                    "takes a tensor of at most 2 axes, got rank {r} (use `transpose(a, b)`)"
                );
                self.fail_with("t", reason, Location::caller())
            }
        }
    }

    /// Removes `axis`, which must have extent 1 (a shape error otherwise, where PyTorch
    /// would return the tensor unchanged).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.input("x", [4, 1, 3]);
    /// assert_eq!(x.squeeze(1).shape(), Shape::from([4, 3]));
    /// assert_eq!(x.unsqueeze(-1).shape(), Shape::from([4, 1, 3, 1]));
    /// ```
    #[track_caller]
    pub fn squeeze<A: AxisArg>(self, axis: A) -> Tensor<'g, T> {
        let caller = Location::caller();
        let axis = match self.axis_for("squeeze", axis, caller) {
            Ok(axis) => axis,
            Err(stand_in) => return stand_in,
        };
        let mut dims = self.shape().dims().to_vec();
        if dims[axis] != 1 {
            let reason = format!("axis {axis} has extent {}, not 1", dims[axis]);
            return self.fail_with("squeeze", reason, caller);
        }
        if self.shape().run_axis() == Some(axis) {
            let reason = format!("axis {axis} is the run-time axis, which cannot be removed");
            return self.fail_with("squeeze", reason, caller);
        }
        dims.remove(axis);
        self.reshape_moving_rows(dims, |r| r - usize::from(axis < r))
    }

    /// A reshape to `dims` whose run-time axis (if `self` has one) goes where `to` moves
    /// it, rather than where `reshape` would guess: with a bound of 1 every axis of
    /// extent 1 could hold it.
    #[track_caller]
    fn reshape_moving_rows(self, dims: Vec<usize>, to: impl Fn(usize) -> usize) -> Tensor<'g, T> {
        let run = self.shape().run().map(|r| RunAxis {
            axis: to(r.axis),
            ..r
        });
        self.reshape(Shape::with_dims_of(dims, run))
    }

    /// Inserts an axis of extent 1 at position `axis` in `0..=rank` (`-1` appends one at
    /// the end, as in PyTorch).
    #[track_caller]
    pub fn unsqueeze<A: AxisArg>(self, axis: A) -> Tensor<'g, T> {
        let caller = Location::caller();
        let shape = self.shape();
        match shape.resolve_new_axis(axis) {
            Ok(axis) => {
                let mut dims = shape.dims().to_vec();
                dims.insert(axis, 1);
                self.reshape_moving_rows(dims, |r| r + usize::from(axis <= r))
            }
            Err(reason) => self.fail_with("unsqueeze", reason, caller),
        }
    }

    /// Merges axes `start..=end` (both inclusive, negative counting from the back) into
    /// one: `flatten(0, -1)` gives one axis, `flatten(1, -1)` keeps the leading one. A
    /// scalar flattens to `[1]`, as in PyTorch.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.input("x", [2, 3, 4, 5]);
    /// assert_eq!(x.flatten(1, -1).shape(), Shape::from([2, 60]));
    /// assert_eq!(x.flatten(1, 2).shape(), Shape::from([2, 12, 5]));
    /// assert_eq!(x.flatten(0, -1).shape(), Shape::from([120]));
    /// ```
    #[track_caller]
    pub fn flatten<A: AxisArg, B: AxisArg>(self, start: A, end: B) -> Tensor<'g, T> {
        let caller = Location::caller();
        let shape = match self.rank() {
            0 => Shape::from([1]),
            _ => self.shape(),
        };
        let (start, end) = match (shape.resolve_axis(start), shape.resolve_axis(end)) {
            (Ok(s), Ok(e)) if s <= e => (s, e),
            (Ok(s), Ok(e)) => {
                let reason = format!("the start axis {s} comes after the end axis {e}");
                return self.fail_with("flatten", reason, caller);
            }
            (Err(reason), _) | (_, Err(reason)) => {
                return self.fail_with("flatten", reason, caller)
            }
        };
        let d = shape.dims();
        let mut dims = d[..start].to_vec();
        dims.push(d[start..=end].iter().product());
        dims.extend_from_slice(&d[end + 1..]);
        self.reshape_moving_rows(dims, |r| match r {
            r if r < start => r,
            r if r <= end => start,
            r => r - (end - start),
        })
    }

    /// Pieces of `size` entries along `axis`, the last one shorter if `size` does not
    /// divide the extent (PyTorch's `split(size, dim)`). A `size` of 0 is a shape error.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.input("x", [2, 7]);
    /// let parts = x.split(3, -1);
    /// let widths: Vec<usize> = parts.iter().map(|p| p.shape().dims()[1]).collect();
    /// assert_eq!(widths, [3, 3, 1]);
    /// let widths: Vec<usize> = x.chunk(2, 1).iter().map(|p| p.shape().dims()[1]).collect();
    /// assert_eq!(widths, [4, 3]);
    /// let widths: Vec<usize> = x.split_sizes(&[2, 5], 1).iter().map(|p| p.shape().dims()[1]).collect();
    /// assert_eq!(widths, [2, 5]);
    /// ```
    #[track_caller]
    pub fn split<A: AxisArg>(self, size: usize, axis: A) -> Vec<Tensor<'g, T>> {
        self.split_by("split", size, axis, Location::caller())
    }

    /// `n` pieces along `axis` of `ceil(extent / n)` entries each, the last shorter; as in
    /// PyTorch there may be fewer than `n` (an extent of 6 in 4 chunks gives 3 of 2).
    /// An `n` of 0 is a shape error.
    #[track_caller]
    pub fn chunk<A: AxisArg>(self, n: usize, axis: A) -> Vec<Tensor<'g, T>> {
        let caller = Location::caller();
        if n == 0 {
            let reason = String::from("cannot split into 0 chunks");
            return vec![self.fail_with("chunk", reason, caller)];
        }
        let extent = match self.axis_for("chunk", axis, caller) {
            Ok(axis) => self.shape().dims()[axis],
            Err(stand_in) => return vec![stand_in],
        };
        self.split_by("chunk", extent.div_ceil(n).max(1), axis, caller)
    }

    /// Pieces of the given `sizes` along `axis`, which must add up to its extent
    /// (PyTorch's `split([sizes], dim)`); a shape error otherwise.
    #[track_caller]
    pub fn split_sizes<A: AxisArg>(self, sizes: &[usize], axis: A) -> Vec<Tensor<'g, T>> {
        let caller = Location::caller();
        let axis = match self.axis_for("split_sizes", axis, caller) {
            Ok(axis) => axis,
            Err(stand_in) => return vec![stand_in],
        };
        if let Err(reason) = self.shape().fixed_axis(axis) {
            return vec![self.fail_with("split_sizes", reason, caller)];
        }
        let extent = self.shape().dims()[axis];
        let total = sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s));
        if total != Some(extent) {
            let reason =
                format!("sizes {sizes:?} do not add up to the extent {extent} of axis {axis}");
            return vec![self.fail_with("split_sizes", reason, caller)];
        }
        let mut at = 0;
        let mut parts = Vec::with_capacity(sizes.len());
        for &s in sizes {
            parts.push(self.narrow(axis, at, s));
            at += s;
        }
        parts
    }

    /// `#[track_caller]`: the `narrow`s it records are the user's call of `split` or
    /// `chunk`.
    #[track_caller]
    fn split_by<A: AxisArg>(
        self,
        op: &'static str,
        size: usize,
        axis: A,
        caller: &'static Location<'static>,
    ) -> Vec<Tensor<'g, T>> {
        let axis = match self.axis_for(op, axis, caller) {
            Ok(axis) => axis,
            Err(stand_in) => return vec![stand_in],
        };
        if size == 0 {
            let reason = String::from("cannot split into pieces of size 0");
            return vec![self.fail_with(op, reason, caller)];
        }
        if let Err(reason) = self.shape().fixed_axis(axis) {
            return vec![self.fail_with(op, reason, caller)];
        }
        let extent = self.shape().dims()[axis];
        if extent == 0 {
            return vec![self.narrow(axis, 0, 0)];
        }
        let mut parts = Vec::with_capacity(extent.div_ceil(size));
        for start in (0..extent).step_by(size) {
            parts.push(self.narrow(axis, start, size.min(extent - start)));
        }
        parts
    }
}

impl<T: Scalar> Graph<T> {
    /// Joins equally shaped `tensors` along a new axis at position `axis` in `0..=rank`
    /// (`-1` appends it, as in PyTorch): each is unsqueezed, then concatenated.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let (a, b) = (g.input("a", [2, 3]), g.input("b", [2, 3]));
    /// assert_eq!(g.stack(&[a, b], 0).shape(), Shape::from([2, 2, 3]));
    /// assert_eq!(g.stack(&[a, b, a], -1).shape(), Shape::from([2, 3, 3]));
    /// ```
    #[track_caller]
    pub fn stack<A: AxisArg>(&self, tensors: &[Tensor<'_, T>], axis: A) -> Tensor<'_, T> {
        let caller = Location::caller();
        let shapes: Vec<Shape> = tensors.iter().map(|t| t.shape()).collect();
        let Some(first) = shapes.first().cloned() else {
            let reason = String::from("needs at least one tensor");
            return self.fail("stack", shapes, reason, caller, Shape::scalar());
        };
        let axis = match first.resolve_new_axis(axis) {
            Ok(axis) if shapes.iter().all(|s| *s == first) => axis,
            Ok(_) => {
                let reason = String::from("all shapes must be equal");
                return self.fail("stack", shapes, reason, caller, first);
            }
            Err(reason) => return self.fail("stack", shapes, reason, caller, first),
        };
        let mut parts = Vec::with_capacity(tensors.len());
        for t in tensors {
            parts.push(t.unsqueeze(axis));
        }
        self.concat(&parts, axis)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, eval, grads_of, rand_array};
    use crate::prelude::*;
    use ndarray::{arr1, arr2, arr3, Array, ArrayD};

    fn x234() -> ArrayD<f64> {
        Array::range(0.0, 24.0, 1.0)
            .into_shape_with_order(vec![2, 3, 4])
            .unwrap()
    }

    #[test]
    fn squeeze_unsqueeze_flatten_known_values() {
        let x = [arr2(&[[1.0, 2.0, 3.0]]).into_dyn()];
        // [1, 3] -> [3] -> [3, 1]: the same row-major elements
        assert_eq!(
            eval(&x, |_, t| t[0].squeeze(0)),
            arr1(&[1.0, 2.0, 3.0]).into_dyn()
        );
        assert_eq!(
            eval(&x, |_, t| t[0].squeeze(-2)),
            arr1(&[1.0, 2.0, 3.0]).into_dyn()
        );
        assert_eq!(
            eval(&x, |_, t| t[0].squeeze(0).unsqueeze(-1)),
            arr2(&[[1.0], [2.0], [3.0]]).into_dyn()
        );
        assert_eq!(
            eval(&x, |_, t| t[0].unsqueeze(1)),
            arr3(&[[[1.0, 2.0, 3.0]]]).into_dyn()
        );
        let x = [x234()];
        let f = eval(&x, |_, t| t[0].flatten(1, -1));
        assert_eq!(f.shape(), &[2, 12]);
        assert_eq!(f[[1, 5]], 17.0); // x[1, 1, 1] = 12 + 4 + 1
        assert_eq!(eval(&x, |_, t| t[0].flatten(0, 1)).shape(), &[6, 4]);
        assert_eq!(eval(&x, |_, t| t[0].flatten(-1, -1)).shape(), &[2, 3, 4]);
        let s = [ndarray::arr0(5.0).into_dyn()];
        assert_eq!(
            eval(&s, |_, t| t[0].flatten(0, -1)),
            arr1(&[5.0]).into_dyn()
        );
        assert_eq!(eval(&s, |_, t| t[0].unsqueeze(0)), arr1(&[5.0]).into_dyn());
    }

    #[test]
    fn transpose_any_two_axes() {
        let x = [x234()];
        // y[c, b, a] = x[a, b, c]
        let y = eval(&x, |_, t| t[0].transpose(0, -1));
        assert_eq!(y.shape(), &[4, 3, 2]);
        assert_eq!(y[[3, 1, 0]], x[0][[0, 1, 3]]);
        assert_eq!(y[[2, 0, 1]], x[0][[1, 0, 2]]);
        assert_eq!(eval(&x, |_, t| t[0].transpose(1, 1)), x[0]);
        let m = [arr2(&[[1.0, 2.0], [3.0, 4.0]]).into_dyn()];
        assert_eq!(
            eval(&m, |_, t| t[0].t()),
            arr2(&[[1.0, 3.0], [2.0, 4.0]]).into_dyn()
        );
        let v = [arr1(&[1.0, 2.0]).into_dyn()];
        assert_eq!(eval(&v, |_, t| t[0].t()), v[0]);
    }

    #[test]
    fn stack_split_chunk_known_values() {
        let ab = [arr1(&[1.0, 2.0]).into_dyn(), arr1(&[3.0, 4.0]).into_dyn()];
        assert_eq!(
            eval(&ab, |g, t| g.stack(&[t[0], t[1]], 0)),
            arr2(&[[1.0, 2.0], [3.0, 4.0]]).into_dyn()
        );
        assert_eq!(
            eval(&ab, |g, t| g.stack(&[t[0], t[1]], -1)),
            arr2(&[[1.0, 3.0], [2.0, 4.0]]).into_dyn()
        );
        let x = [Array::range(0.0, 7.0, 1.0).into_dyn()];
        // [0..7] in pieces of 3: [0, 1, 2], [3, 4, 5], [6]; the last piece picked here
        assert_eq!(
            eval(&x, |_, t| t[0].split(3, 0)[2]),
            arr1(&[6.0]).into_dyn()
        );
        assert_eq!(
            eval(&x, |_, t| t[0].split(3, -1)[1]),
            arr1(&[3.0, 4.0, 5.0]).into_dyn()
        );
        // 7 in 3 chunks: ceil(7 / 3) = 3 -> 3, 3, 1; 6 in 4 chunks: 2, 2, 2 (three)
        let g = Graph::<f64>::new();
        let widths = |ts: Vec<Tensor<'_, f64>>| -> Vec<usize> {
            ts.iter().map(|t| t.shape().dims()[0]).collect()
        };
        assert_eq!(widths(g.input("a", [7]).chunk(3, 0)), [3, 3, 1]);
        assert_eq!(widths(g.input("b", [6]).chunk(4, 0)), [2, 2, 2]);
        assert_eq!(widths(g.input("c", [2]).chunk(5, 0)), [1, 1]);
        assert_eq!(widths(g.input("d", [0]).split(2, 0)), [0]);
        assert_eq!(widths(g.input("e", [5]).split_sizes(&[0, 5], 0)), [0, 5]);
        g.check().unwrap();
        assert_eq!(
            eval(&x, |_, t| t[0].split_sizes(&[2, 4, 1], 0)[1]),
            arr1(&[2.0, 3.0, 4.0, 5.0]).into_dyn()
        );
    }

    #[test]
    fn known_gradients() {
        // y = sum(w * stack(a, b)) with w = [[1, 2], [3, 4]]: dy/da = [1, 2], dy/db = [3, 4]
        let ab = [arr1(&[1.0, 2.0]).into_dyn(), arr1(&[3.0, 4.0]).into_dyn()];
        let g = grads_of(&ab, |g, t| {
            g.stack(&[t[0], t[1]], 0) * g.constant(arr2(&[[1.0, 2.0], [3.0, 4.0]]))
        });
        assert_eq!(g[0], arr1(&[1.0, 2.0]).into_dyn());
        assert_eq!(g[1], arr1(&[3.0, 4.0]).into_dyn());
        // y = sum(3 * piece1 + piece2^2) over split(2) of [1, 2, 3, 4, 5]:
        // dy/dx = [3, 3, 2*3, 2*4, 0] (piece 3, [5], unused)
        let x = [arr1(&[1.0, 2.0, 3.0, 4.0, 5.0]).into_dyn()];
        let g = grads_of(&x, |_, t| {
            let p = t[0].split(2, 0);
            (p[0] * 3.0).sum() + p[1].square().sum()
        });
        assert_eq!(g[0], arr1(&[3.0, 3.0, 6.0, 8.0, 0.0]).into_dyn());
    }

    #[test]
    fn gradcheck_layout() {
        let x = [rand_array(&[2, 3, 4], 9, -1.0, 1.0)];
        let w = rand_array(&[3, 2, 4], 10, -1.0, 1.0);
        check(&x, move |g, t| {
            t[0].transpose(0, 1).square() * g.constant(w.clone())
        });
        check(&x, |_, t| t[0].transpose(-1, 0).flatten(1, 2).t().square());
        check(&x, |_, t| {
            t[0].unsqueeze(2).squeeze(-2).flatten(1, 2).square()
        });
        check(&x, |g, t| g.stack(&[t[0], t[0].square(), t[0]], 1).square());
        check(&x, |g, t| {
            let p = t[0].split(3, -1);
            g.concat(&[p[1].square(), p[0] * p[0].narrow(2, 0, 1)], 2)
        });
        check(&x, |_, t| {
            let p = t[0].chunk(2, 1);
            p[0].sum_axes(&[1], false) * p[1].squeeze(1).tanh()
        });
    }

    #[test]
    fn shape_errors_are_located() {
        let g = Graph::<f32>::new();
        let x = g.input("x", [2, 3]);
        let cases: Vec<(Tensor<'_, f32>, &str, &str)> = vec![
            (x.squeeze(1), "squeeze", "extent 3, not 1"),
            (x.squeeze(-3), "squeeze", "out of range"),
            (x.unsqueeze(3), "unsqueeze", "-3 to 2"),
            (x.flatten(1, 0), "flatten", "comes after"),
            (x.flatten(0, 2), "flatten", "out of range"),
            (x.split(0, 1)[0], "split", "size 0"),
            (x.split(2, 2)[0], "split", "out of range"),
            (x.chunk(0, 0)[0], "chunk", "0 chunks"),
            (x.split_sizes(&[1, 1], 1)[0], "split_sizes", "do not add up"),
            (
                x.split_sizes(&[usize::MAX, 4], 1)[0],
                "split_sizes",
                "do not add up",
            ),
            (
                g.stack(&[x, g.input("y", [3, 2])], 0),
                "stack",
                "must be equal",
            ),
            (g.stack(&[x], 3), "stack", "out of range"),
            (g.stack(&[], 0), "stack", "at least one"),
        ];
        let errs = g.inner.borrow().errors.clone();
        assert_eq!(errs.len(), cases.len(), "{errs:?}");
        for (e, (_, op, what)) in errs.iter().zip(&cases) {
            let s = e.to_string();
            assert!(
                s.contains(&alloc::format!("`{op}`")) && s.contains(what),
                "{s}"
            );
            match e {
                Error::Shape { caller, .. } => assert!(caller.file.ends_with("layout.rs")),
                _ => panic!("{e}"),
            }
        }
    }
}
