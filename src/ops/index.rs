//! Integer indexing with ids stored as `T`: index_select (the embedding lookup), its
//! adjoint scatter_add, and one_hot. An id that is not an integer in range is an
//! [`Error::Index`](crate::Error::Index) from `run`.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::panic::Location;

use super::{Inputs, Op, Out};
use crate::error::{Error, Result};
use crate::graph::Tensor;
use crate::scalar::Scalar;
use crate::shape::Shape;

type ShapeResult = core::result::Result<Shape, String>;

/// `v`, found at `position` among the ids, as an index below `bound`, or an error naming
/// `op` and what the id counts (`of`: `"class"`, `"row"`). `Machine::run` adds where the
/// op was recorded.
pub(super) fn to_index<T: Scalar>(
    op: &'static str,
    of: &'static str,
    v: T,
    position: usize,
    bound: usize,
) -> Result<usize> {
    let ok = v >= T::zero() && v.fract() == T::zero() && v < crate::scalar::count::<T>(bound);
    match v.to_usize() {
        Some(i) if ok => Ok(i),
        _ => Err(Error::Index {
            op,
            of,
            value: v.to_f64().unwrap_or(f64::NAN),
            position,
            bound,
            caller: None,
        }),
    }
}

/// Rows of `table` (input 0, `[R, ..]`) picked by `ids` (input 1, any shape):
/// `out[i.., ..] = table[ids[i..], ..]`.
#[derive(Debug)]
pub struct IndexSelect;

impl<T: Scalar> Op<T> for IndexSelect {
    fn name(&self) -> &'static str {
        "index_select"
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        let (table, ids) = (s[0], s[1]);
        if table.rank() == 0 {
            return Err(String::from("the table must have at least one axis"));
        }
        if table.run().is_some() {
            return Err(String::from("the table cannot have a run-time axis"));
        }
        let mut d = ids.dims().to_vec();
        d.extend_from_slice(&table.dims()[1..]);
        Ok(Shape::with_dims_of(d, ids.run()))
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let (table, ids) = (x.slice(0), x.slice(1));
        let rows = x.shape(0).dim(0);
        let width = x.shape(0).dims()[1..].iter().product::<usize>();
        let o = out.slice();
        // indexed by id, not by output row, so that ids are checked even when rows are empty
        for (n, &id) in ids.iter().enumerate() {
            let r = to_index("index_select", "row", id, n, rows)?;
            o[n * width..(n + 1) * width].copy_from_slice(&table[r * width..(r + 1) * width]);
        }
        Ok(())
    }
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let rows = x[0].shape().dim(0);
        vec![Some(x[1].scatter_add(g, rows)), None]
    }
}

/// Sums rows of `src` (input 1, `[ids.., ..]`) into a zero `[rows, ..]` at the rows
/// named by `ids` (input 0); repeated ids add up.
#[derive(Debug)]
pub struct ScatterAdd(usize);

impl<T: Scalar> Op<T> for ScatterAdd {
    fn name(&self) -> &'static str {
        "scatter_add"
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        let (ids, src) = (s[0], s[1]);
        let src_run = src.run().filter(|r| r.axis < ids.rank());
        if src.rank() < ids.rank()
            || src.dims()[..ids.rank()] != *ids.dims()
            || src_run != ids.run()
            || src.run().is_some() && src_run.is_none()
        {
            return Err(format!(
                "the source's leading axes must be the ids' shape {ids}"
            ));
        }
        let mut d = vec![self.0];
        d.extend_from_slice(&src.dims()[ids.rank()..]);
        Ok(Shape::new(d))
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let (ids, src) = (x.slice(0), x.slice(1));
        let width = x.shape(1).dims()[x.shape(0).rank()..]
            .iter()
            .product::<usize>();
        let o = out.slice();
        o.fill(T::zero());
        for (n, &id) in ids.iter().enumerate() {
            let r = to_index("scatter_add", "row", id, n, self.0)?;
            let row = &src[n * width..(n + 1) * width];
            for (o, &v) in o[r * width..(r + 1) * width].iter_mut().zip(row) {
                *o = *o + v;
            }
        }
        Ok(())
    }
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        vec![None, Some(g.index_select(x[0]))]
    }
}

/// `ids` (any shape) as one-hot rows `[ids.., classes]`; no gradient.
#[derive(Debug)]
pub struct OneHot(usize);

impl<T: Scalar> Op<T> for OneHot {
    fn name(&self) -> &'static str {
        "one_hot"
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        let mut d = s[0].dims().to_vec();
        d.push(self.0);
        Ok(Shape::with_dims_of(d, s[0].run()))
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let o = out.slice();
        o.fill(T::zero());
        for (n, &id) in x.slice(0).iter().enumerate() {
            o[n * self.0 + to_index("one_hot", "class", id, n, self.0)?] = T::one();
        }
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
    /// Rows of `self` (`[R, ..]`) picked by integer `ids` of any shape: the embedding
    /// lookup. The result has shape `[ids.., ..]`; repeated ids get summed gradients.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let table = g.constant(tapegrad::ndarray::arr2(&[[0.0, 0.5], [1.0, 1.5], [2.0, 2.5]]));
    /// let ids = g.constant(tapegrad::ndarray::arr1(&[2.0, 0.0]));
    /// let rows = table.index_select(ids);
    /// let mut m = g.compile(&[rows], &[])?;
    /// m.run()?;
    /// assert_eq!(m.value(rows)?.as_slice(), Some(&[2.0, 2.5, 0.0, 0.5][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn index_select(self, ids: Tensor<'g, T>) -> Tensor<'g, T> {
        self.apply(IndexSelect, &[self, ids], Location::caller())
    }

    /// With `self` as integer ids, sums the rows of `src` (`[ids.., ..]`) into a zero
    /// tensor `[rows, ..]`: the adjoint of [`index_select`](Tensor::index_select).
    #[track_caller]
    pub fn scatter_add(self, src: Tensor<'g, T>, rows: usize) -> Tensor<'g, T> {
        self.apply(ScatterAdd(rows), &[self, src], Location::caller())
    }

    /// With `self` as integer class ids, one-hot rows of length `classes`.
    #[track_caller]
    pub fn one_hot(self, classes: usize) -> Tensor<'g, T> {
        self.apply(OneHot(classes), &[self], Location::caller())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, eval, grads_of, rand_array};
    use crate::prelude::*;
    use ndarray::{arr1, arr2};

    #[test]
    fn repeated_ids_add_gradients() {
        // y = sum(table[ids] * w): row 1 picked twice gets w0 + w2
        let table = arr2(&[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]).into_dyn();
        let g = grads_of(&[table], |g, t| {
            let ids = g.constant(arr1(&[1.0, 0.0, 1.0]));
            let w = g.constant(arr2(&[[1.0, 10.0], [100.0, 1000.0], [2.0, 20.0]]));
            t[0].index_select(ids) * w
        });
        assert_eq!(
            g[0],
            arr2(&[[100.0, 1000.0], [3.0, 30.0], [0.0, 0.0]]).into_dyn()
        );
    }

    #[test]
    fn one_hot_and_scatter_values() {
        let ids = [arr1(&[2.0, 0.0]).into_dyn()];
        assert_eq!(
            eval(&ids, |_, t| t[0].one_hot(3)),
            arr2(&[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]).into_dyn()
        );
        let s = eval(&ids, |g, t| {
            t[0].scatter_add(g.constant(arr2(&[[1.0], [2.0]])), 4)
        });
        assert_eq!(s, arr2(&[[2.0], [0.0], [1.0], [0.0]]).into_dyn());
    }

    #[test]
    fn gradcheck_index_ops() {
        let table = rand_array(&[5, 3], 1, -1.0, 1.0);
        check(&[table], |g, t| {
            let ids = g.constant(arr2(&[[4.0, 1.0], [1.0, 1.0]]));
            t[0].index_select(ids).square()
        });
        let src = rand_array(&[4, 2], 2, -1.0, 1.0);
        check(&[src], |g, t| {
            g.constant(arr1(&[3.0, 0.0, 3.0, 1.0]))
                .scatter_add(t[0], 5)
                .square()
        });
    }

    #[test]
    fn bad_ids_are_errors_from_run() {
        for (bad, shown) in [
            (3.0, "row id 3 "),
            (-1.0, "row id -1 "),
            (0.5, "row id 0.5 "),
            (f64::NAN, "NaN"),
        ] {
            let g = Graph::<f64>::new();
            let table = g.param("t", ndarray::Array2::<f64>::zeros((3, 2)));
            let ids = g.input("ids", [2]);
            let y = table.index_select(ids);
            let oh = ids.one_hot(3);
            let mut m = g.compile(&[y, oh], &[]).unwrap();
            m.feed(ids, &arr1(&[0.0, bad])).unwrap();
            let e = m.run().unwrap_err().to_string();
            assert!(
                e.contains("`index_select`") && e.contains(shown) && e.contains("0..3"),
                "{e}"
            );
        }
    }
}
