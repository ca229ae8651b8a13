//! Feeding a machine: inputs (with their run-time axis: the rows fed, checked across
//! inputs before a run, and every shape set for them) and parameters.

use alloc::string::{String, ToString};

use ndarray::{ArrayBase, ArrayRef, ArrayViewD, Data, Dimension};

use super::{FedRows, Machine, Step};
use crate::error::{Caller, Error, Result};
use crate::graph::AsHandle;
use crate::scalar::Scalar;
use crate::shape::Shape;

impl<T: Scalar> Machine<T> {
    /// Copies `data` into input `x`; its shape must be the one declared, but for a
    /// run-time axis, which takes any number of rows up to its bound.
    ///
    /// # Errors
    /// [`Error::Feed`] for a wrong shape, [`Error::WrongKind`] if `x` is not an input,
    /// [`Error::NotCompiled`] / [`Error::WrongGraph`] if the machine does not hold `x`.
    #[track_caller]
    pub fn feed<S, D>(&mut self, x: impl AsHandle, data: &ArrayBase<S, D>) -> Result<()>
    where
        S: Data<Elem = T>,
        D: Dimension,
    {
        let caller = Caller::here();
        let i = self.position(&x, caller)?;
        // The checks are not generic, so each array type fed adds only the copy.
        let (len, rows) = self.feed_len(i, data.shape(), caller)?;
        self.write_flat(i, len, data);
        self.fed(i, rows, caller);
        Ok(())
    }

    /// For feeding input `i` an array of dimensions `d`: the elements to copy and the
    /// rows fed (0 for an input without a run-time axis), or the error.
    fn feed_len(&self, i: usize, d: &[usize], caller: Caller) -> Result<(usize, usize)> {
        self.expect_kind(i, "input", caller)?;
        if let Some(run) = self.input_run(i) {
            let expected = &self.shapes[i].dims()[1..];
            if d.is_empty() || d[0] > run.bound || &d[1..] != expected {
                return Err(self.feed_error(i, Shape::from(d), caller));
            }
            return Ok((d[0] * run.row_len, d[0]));
        }
        if d != self.shapes[i].dims() {
            return Err(self.feed_error(i, Shape::from(d), caller));
        }
        Ok((self.numel[i], 0))
    }

    /// Marks input `i` fed (with `rows` rows for one with a run-time axis).
    pub(super) fn fed(&mut self, i: usize, rows: usize, caller: Caller) {
        if let Step::Input { fed, .. } = &mut self.steps[i] {
            *fed = true;
        }
        let mut row_len = None;
        if let Some(r) = self.run_inputs.iter_mut().find(|r| r.step as usize == i) {
            r.rows = rows;
            r.at = Some(caller);
            row_len = Some(r.row_len);
        }
        if let Some(len) = row_len {
            // read back as fed, before the next run sets every other shape
            self.shapes[i].set_dim(0, rows);
            self.numel[i] = rows * len;
        }
    }

    pub(super) fn input_run(&self, i: usize) -> Option<FedRows> {
        self.run_inputs
            .iter()
            .find(|r| r.step as usize == i)
            .copied()
    }

    /// The rows every input with a run-time axis was fed (the current rows if none has
    /// one).
    pub(super) fn fed_rows(&self, caller: Caller) -> Result<usize> {
        let mut first: Option<(usize, FedRows)> = None;
        for r in &self.run_inputs {
            let i = r.step as usize;
            if !matches!(self.steps[i], Step::Input { fed: true, .. }) {
                continue;
            }
            match first {
                None => first = Some((i, *r)),
                Some((j, f)) if f.rows != r.rows => {
                    let name = |k: usize| match &self.steps[k] {
                        Step::Input { name, .. } => name.clone(),
                        _ => String::new(),
                    };
                    return Err(Error::Rows {
                        first: name(j),
                        first_rows: f.rows,
                        first_fed_at: f.at.unwrap_or(caller),
                        second: name(i),
                        second_rows: r.rows,
                        second_fed_at: r.at.unwrap_or(caller),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(first.map_or(self.rows, |(_, f)| f.rows))
    }

    /// Sets every shape with a run-time axis for `rows` rows (no allocation).
    pub(super) fn set_rows(&mut self, rows: usize) {
        if rows == self.rows {
            return;
        }
        self.rows = rows;
        for r in &self.runs {
            let i = r.step as usize;
            self.shapes[i].set_dim(r.axis as usize, rows * r.per_row);
            self.numel[i] = self.shapes[i].numel();
        }
    }

    /// The rows the machine computed on in its last run, or will compute on: for a
    /// machine with no input with a run-time axis, the bound of its other shapes that
    /// have one, and 0 if no shape has one.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Copies a flat row-major slice into input `x`; its length must be the element count.
    ///
    /// # Errors
    /// As for [`feed`](Machine::feed).
    #[track_caller]
    pub fn feed_slice(&mut self, x: impl AsHandle, data: &[T]) -> Result<()> {
        let caller = Caller::here();
        let i = self.position(&x, caller)?;
        self.expect_kind(i, "input", caller)?;
        if let Some(run) = self.input_run(i) {
            let whole = data.len() % run.row_len.max(1) == 0;
            let rows = data.len() / run.row_len.max(1);
            if !whole || rows > run.bound || run.row_len == 0 && !data.is_empty() {
                return Err(self.feed_error(i, Shape::from([data.len()]), caller));
            }
            self.write_flat(i, data.len(), &ndarray::ArrayView1::from(data));
            self.fed(i, rows, caller);
            return Ok(());
        }
        if data.len() != self.numel[i] {
            return Err(self.feed_error(i, Shape::from([data.len()]), caller));
        }
        self.data_mut(i).copy_from_slice(data);
        self.fed(i, 0, caller);
        Ok(())
    }

    /// Feeds the input called `name`.
    ///
    /// # Errors
    /// [`Error::UnknownName`], and as for [`feed`](Machine::feed).
    #[track_caller]
    pub fn feed_named<S, D>(&mut self, name: &str, data: &ArrayBase<S, D>) -> Result<()>
    where
        S: Data<Elem = T>,
        D: Dimension,
    {
        let h = self.handle_of(name)?;
        self.feed(h, data)
    }

    /// Overwrites the value of parameter `p`.
    ///
    /// # Errors
    /// As for [`feed`](Machine::feed), with `p` a parameter.
    #[track_caller]
    pub fn set_param<S, D>(&mut self, p: impl AsHandle, data: &ArrayBase<S, D>) -> Result<()>
    where
        S: Data<Elem = T>,
        D: Dimension,
    {
        let caller = Caller::here();
        let i = self.position(&p, caller)?;
        self.expect_kind(i, "parameter", caller)?;
        self.write(i, data, caller)
    }

    /// Overwrites the value of buffer `b` (see [`Graph::buffer`](crate::Graph::buffer)).
    ///
    /// # Errors
    /// As for [`feed`](Machine::feed), with `b` a buffer.
    #[track_caller]
    pub fn set_buffer<S, D>(&mut self, b: impl AsHandle, data: &ArrayBase<S, D>) -> Result<()>
    where
        S: Data<Elem = T>,
        D: Dimension,
    {
        let caller = Caller::here();
        let i = self.position(&b, caller)?;
        self.expect_kind(i, "buffer", caller)?;
        self.write(i, data, caller)
    }

    /// Overwrites parameter or buffer `h` (loading weights).
    pub(crate) fn set_state(
        &mut self,
        h: crate::graph::Handle,
        data: &ndarray::ArrayD<T>,
        caller: Caller,
    ) -> Result<()> {
        let i = self.position(&h, caller)?;
        if !matches!(self.steps[i], Step::Buffer { .. }) {
            self.expect_kind(i, "parameter", caller)?;
        }
        self.write(i, data, caller)
    }

    pub(super) fn feed_error(&self, i: usize, got: Shape, caller: Caller) -> Error {
        let name = match &self.steps[i] {
            Step::Input { name, .. } | Step::Param { name, .. } | Step::Buffer { name } => {
                name.clone()
            }
            s => s.kind().to_string(),
        };
        let expected = match self.input_run(i) {
            Some(r) => Shape::upto(r.bound, &self.shapes[i].dims()[1..]),
            None => self.shapes[i].clone(),
        };
        Error::Feed {
            name,
            expected,
            got,
            caller,
        }
    }

    /// Copies the `len` elements of `data` to the front of step `i`'s buffer (an input
    /// with a run-time axis; its buffer holds the bound).
    ///
    /// Generic over the dimension only: owned arrays and views of one rank share a copy.
    pub(super) fn write_flat<D: Dimension>(&mut self, i: usize, len: usize, data: &ArrayRef<T, D>) {
        let b = self.buf_of[i] as usize;
        let dst = &mut self.bufs[b][..len];
        copy_into(dst, data);
    }

    pub(super) fn write<D: Dimension>(
        &mut self,
        i: usize,
        data: &ArrayRef<T, D>,
        caller: Caller,
    ) -> Result<()> {
        if data.shape() != self.shapes[i].dims() {
            return Err(self.feed_error(i, Shape::from(data.shape()), caller));
        }
        copy_into(self.data_mut(i), data);
        Ok(())
    }
}

/// Copies `data` in logical (row-major) order into `dst`, which is as long.
pub(crate) fn copy_into<T: Copy, D: Dimension>(dst: &mut [T], data: &ArrayRef<T, D>) {
    if let Some(s) = data.as_slice() {
        dst.copy_from_slice(s);
    } else if let Some(mem) = data.as_slice_memory_order() {
        copy_strided(dst, mem, data.shape(), data.strides());
    } else if D::NDIM.is_some_and(|n| n > 4) {
        // stepped views of a fixed rank past 4: ndarray's iterator of that rank (an
        // `IxDyn` index would be on the heap)
        for (b, &v) in dst.iter_mut().zip(data.iter()) {
            *b = v;
        }
    } else {
        copy_stepped(dst, data.view().into_dyn());
    }
}

/// Permuted or flipped axes: read through the view's strides (ndarray's own iterator
/// keeps an `IxDyn` index, on the heap at rank >= 5). Not generic over the dimension.
fn copy_strided<T: Copy>(dst: &mut [T], mem: &[T], dims: &[usize], strides: &[isize]) {
    // the first element sits past the flipped axes' extents in memory order
    let base: usize = dims
        .iter()
        .zip(strides)
        .filter(|(_, &s)| s < 0)
        .map(|(&d, &s)| d.saturating_sub(1) * s.unsigned_abs())
        .sum();
    let axes = dims.iter().copied().zip(strides.iter().copied());
    crate::ops::gather_signed(mem, base, axes, dst);
}

/// Stepped views: one copy of ndarray's `IxDyn` iterator serves every rank (its index is
/// inline up to rank 4, and on the heap past it, as that iterator's own is).
fn copy_stepped<T: Copy>(dst: &mut [T], data: ArrayViewD<'_, T>) {
    for (b, &v) in dst.iter_mut().zip(data.iter()) {
        *b = v;
    }
}
