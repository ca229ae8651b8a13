//! Small data helpers over the rows of ndarray arrays: a seeded train/test split and a
//! shuffling mini-batch iterator that copies rows into buffers the caller owns.
//!
//! A row is an index along axis 0, whatever the array's rank (`[N, 64]` pixels, `[N]`
//! labels, `[N, 8, 8]` images). Both helpers are seeded by the caller's RNG: the same seed
//! gives the same split and the same batches on every platform.
//!
//! When the batch size `B` does not divide the number of rows, the last batch of an epoch
//! has `r < B` rows. [`Batches`] either drops it (`drop_last = true`; after a
//! [`shuffle`](Batches::shuffle) the leftover rows are other rows each epoch) or yields it:
//!
//! - [`next_batch`](Batches::next_batch) gives views of exactly the batch's rows, `r` for
//!   the last one. Feed them to inputs whose leading axis is a run-time axis
//!   ([`Dim::upto(B)`](crate::Dim::upto)): the step computes on those `r` rows and a mean
//!   loss divides by `r`.
//! - [`next_into`](Batches::next_into) fills all `B` rows of the buffers, for an input of
//!   a fixed `B` rows: the last batch's other `B - r` slots repeat rows from the start of
//!   the epoch, so a step never sees stale or zero rows, and it returns `r`.
//!
//! ```
//! use tapegrad::data::{train_test_split, Batches};
//! use tapegrad::ndarray::{Array1, Array2};
//! use tapegrad::rand::{rngs::StdRng, SeedableRng};
//!
//! let x = Array2::from_shape_fn((10, 3), |(i, j)| (i * 3 + j) as f32);
//! let y = Array1::from_shape_fn(10, |i| i as f32);
//! let mut rng = StdRng::seed_from_u64(0);
//! let (train, test) = train_test_split(10, 0.2, &mut rng)?;
//! assert_eq!((train.len(), test.len()), (8, 2));
//!
//! // Batches of 3 over the training rows; buffers allocated once, before the epochs.
//! let mut batches = Batches::from_indices(train, 3, false)?;
//! let (mut xbuf, mut ybuf) = (Array2::zeros((3, 3)), Array1::zeros(3));
//! for _epoch in 0..2 {
//!     batches.shuffle(&mut rng);
//!     let mut sizes = Vec::new();
//!     while let Some((xb, yb)) = batches.next_batch(&x, &y, &mut xbuf, &mut ybuf)? {
//!         assert_eq!(xb.nrows(), yb.len());
//!         sizes.push(xb.nrows()); // feed xb and yb here
//!     }
//!     assert_eq!(sizes, [3, 3, 2]);
//! }
//! # Ok::<(), tapegrad::Error>(())
//! ```

use alloc::format;
use alloc::vec::Vec;

use ndarray::{Array, ArrayBase, ArrayView, Axis, Data, DataMut, RemoveAxis, Slice};
use rand::seq::SliceRandom;
use rand::Rng;

use crate::error::{Caller, Error, Result};
use crate::num::Num;

mod moons;
pub use moons::{two_moons, two_moons_into};

/// Splits the row indices `0..n_rows` at random into a training part and a test part of
/// `round(test_fraction * n_rows)` rows. Both parts are in the shuffled order; together
/// they hold every index once.
///
/// ```
/// use tapegrad::data::train_test_split;
/// use tapegrad::rand::{rngs::StdRng, SeedableRng};
/// let (train, test) = train_test_split(1797, 0.2, &mut StdRng::seed_from_u64(7))?;
/// assert_eq!((train.len(), test.len()), (1438, 359));
/// # Ok::<(), tapegrad::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] if `test_fraction` is not in `[0, 1]` (NaN included);
/// [`Error::TooLarge`] if `n_rows` indices do not fit in memory.
#[track_caller]
pub fn train_test_split<R: Rng + ?Sized>(
    n_rows: usize,
    test_fraction: f64,
    rng: &mut R,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(0.0..=1.0).contains(&test_fraction) {
        return Err(Error::InvalidArgument {
            what: "test fraction",
            reason: format!("{} is not in [0, 1]", Num(test_fraction)),
        });
    }
    let n_test = round_usize(test_fraction * n_rows as f64).min(n_rows);
    let mut order = indices("train_test_split", n_rows, Caller::here())?;
    order.shuffle(rng);
    let test = order.split_off(n_rows - n_test);
    Ok((order, test))
}

/// `0..n` in a vector allocated fallibly: `Err(TooLarge)` past the byte limit or what the
/// system gives.
fn indices(what: &'static str, n: usize, caller: Caller) -> Result<Vec<usize>> {
    let shape = crate::Shape::from([n]);
    let mut v = crate::limit::try_vec(what, &[shape], n, 0, caller)?;
    v.iter_mut().enumerate().for_each(|(i, x)| *x = i);
    Ok(v)
}

/// `x.round()` as a `usize` for a finite `x >= 0`, without `std`.
fn round_usize(x: f64) -> usize {
    num_traits::Float::round(x) as usize
}

/// The four arrays of a train/test split, from [`split_rows`].
#[derive(Clone, Debug, PartialEq)]
pub struct Split<X, Y> {
    /// Training inputs.
    pub x_train: X,
    /// Training targets, row for row with `x_train`.
    pub y_train: Y,
    /// Test inputs.
    pub x_test: X,
    /// Test targets, row for row with `x_test`.
    pub y_test: Y,
}

/// Copies the rows of `x` and `y` into a training and a test part, split as
/// [`train_test_split`] splits `0..n` (same seed, same split).
///
/// ```
/// use tapegrad::data::split_rows;
/// use tapegrad::ndarray::{array, Array1};
/// use tapegrad::rand::{rngs::StdRng, SeedableRng};
/// let x = array![[0.0f32, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]];
/// let y = Array1::from_vec(vec![0u8, 1, 2, 3]);
/// let s = split_rows(&x, &y, 0.25, &mut StdRng::seed_from_u64(0))?;
/// assert_eq!((s.x_train.nrows(), s.x_test.nrows()), (3, 1));
/// assert_eq!(s.x_test[[0, 0]], s.y_test[0] as f32); // rows stay paired
/// # Ok::<(), tapegrad::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] as for [`train_test_split`]; [`Error::Mismatch`] if `x` and
/// `y` have different numbers of rows, or a 0-dimensional array has none.
#[track_caller]
pub fn split_rows<T, U, Sx, Sy, Dx, Dy, R>(
    x: &ArrayBase<Sx, Dx>,
    y: &ArrayBase<Sy, Dy>,
    test_fraction: f64,
    rng: &mut R,
) -> Result<Split<Array<T, Dx>, Array<U, Dy>>>
where
    T: Clone,
    U: Clone,
    Sx: Data<Elem = T>,
    Sy: Data<Elem = U>,
    Dx: RemoveAxis,
    Dy: RemoveAxis,
    R: Rng + ?Sized,
{
    let caller = Caller::here();
    let n = rows(x, "x", caller)?;
    if rows(y, "y", caller)? != n {
        return Err(Error::Mismatch {
            what: "split_rows",
            reason: format!(
                "x has {n} rows but y has {}; they must pair up row for row",
                y.len_of(Axis(0))
            ),
            caller,
        });
    }
    let (train, test) = train_test_split(n, test_fraction, rng)?;
    Ok(Split {
        x_train: x.select(Axis(0), &train),
        y_train: y.select(Axis(0), &train),
        x_test: x.select(Axis(0), &test),
        y_test: y.select(Axis(0), &test),
    })
}

/// The length of axis 0, or a [`Error::Mismatch`] for a 0-dimensional array.
fn rows<S: Data, D: RemoveAxis>(a: &ArrayBase<S, D>, name: &str, caller: Caller) -> Result<usize> {
    match a.shape().first() {
        Some(&n) => Ok(n),
        None => Err(Error::Mismatch {
            what: "data rows",
            reason: format!("{name} is 0-dimensional: it has no rows"),
            caller,
        }),
    }
}

/// Mini-batches of rows, in an order reshuffled each epoch by a seeded RNG, copied into
/// buffers the caller allocates once: an epoch loop allocates nothing.
///
/// Each epoch visits every row once (every row but the leftover ones with `drop_last`);
/// see the [module documentation](self) for how the last partial batch is handled.
/// [`next_into`](Batches::next_into) returns `None` at the end of an epoch; the next
/// [`shuffle`](Batches::shuffle) (or [`rewind`](Batches::rewind)) starts another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batches {
    order: Vec<usize>,
    batch: usize,
    drop_last: bool,
    /// Position in `order` of the next batch's first row.
    pos: usize,
    /// One past the largest row index, checked against the arrays' rows.
    bound: usize,
}

impl Batches {
    /// Batches of `batch` rows over rows `0..n_rows`, in order until the first
    /// [`shuffle`](Batches::shuffle).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `batch` is 0; [`Error::TooLarge`] if `n_rows`
    /// indices do not fit in memory.
    #[track_caller]
    pub fn new(n_rows: usize, batch: usize, drop_last: bool) -> Result<Self> {
        let order = indices("Batches::new", n_rows, Caller::here())?;
        Self::from_indices(order, batch, drop_last)
    }

    /// Batches of `batch` rows over the rows `indices` (the training part of a
    /// [`train_test_split`], for instance), so the data need not be copied first.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `batch` is 0, or if an index is `usize::MAX`: no
    /// array has that many rows, and the rows the batches need (`max + 1`) would overflow.
    pub fn from_indices(indices: Vec<usize>, batch: usize, drop_last: bool) -> Result<Self> {
        if batch == 0 {
            return Err(Error::InvalidArgument {
                what: "batch size",
                reason: "0 rows; a batch needs at least one".into(),
            });
        }
        let Some(bound) = indices.iter().max().map_or(Some(0), |&m| m.checked_add(1)) else {
            return Err(Error::InvalidArgument {
                what: "batch indices",
                reason: format!(
                    "row {} is past every array (no array has {} rows)",
                    usize::MAX,
                    usize::MAX
                ),
            });
        };
        Ok(Batches {
            order: indices,
            batch,
            drop_last,
            pos: 0,
            bound,
        })
    }

    /// Shuffles the rows with `rng` and starts a new epoch.
    pub fn shuffle<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        self.order.shuffle(rng);
        self.pos = 0;
    }

    /// Starts a new epoch in the current order.
    pub fn rewind(&mut self) {
        self.pos = 0;
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// The number of rows an epoch draws from.
    pub fn rows(&self) -> usize {
        self.order.len()
    }

    /// The rows in the current epoch's order.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Batches per epoch: `rows / batch`, rounded down with `drop_last`, up without.
    pub fn len(&self) -> usize {
        if self.drop_last {
            self.order.len() / self.batch
        } else {
            self.order.len().div_ceil(self.batch)
        }
    }

    /// Whether an epoch has no batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows of the next batch of this epoch (`batch` of them, fewer for the last one
    /// without `drop_last`), advancing past them; `None` at the end of the epoch. For
    /// callers that gather rows themselves; [`next_into`](Batches::next_into) copies them.
    pub fn next_indices(&mut self) -> Option<&[usize]> {
        let left = self.order.len() - self.pos;
        let take = left.min(self.batch);
        if take == 0 || (self.drop_last && take < self.batch) {
            return None;
        }
        let start = self.pos;
        self.pos += take;
        Some(&self.order[start..start + take])
    }

    /// Copies the next batch's rows of `x` and `y` into the front of `xb` and `yb` and
    /// returns views of them: `batch` rows, or fewer for the last batch of an epoch
    /// without `drop_last`. `None` at the end of the epoch, with the buffers untouched.
    /// Allocates nothing. Made for inputs with a run-time axis, which take any number of
    /// rows up to their bound.
    ///
    /// # Errors
    /// As for [`next_into`](Batches::next_into).
    #[track_caller]
    #[allow(clippy::type_complexity)]
    pub fn next_batch<'b, T, U, Sx, Sy, Bx, By, Dx, Dy>(
        &mut self,
        x: &ArrayBase<Sx, Dx>,
        y: &ArrayBase<Sy, Dy>,
        xb: &'b mut ArrayBase<Bx, Dx>,
        yb: &'b mut ArrayBase<By, Dy>,
    ) -> Result<Option<(ArrayView<'b, T, Dx>, ArrayView<'b, U, Dy>)>>
    where
        T: Clone,
        U: Clone,
        Sx: Data<Elem = T>,
        Sy: Data<Elem = U>,
        Bx: DataMut<Elem = T>,
        By: DataMut<Elem = U>,
        Dx: RemoveAxis,
        Dy: RemoveAxis,
    {
        let caller = Caller::here();
        let Some(rows) = self.fill(x, y, xb, yb, false, caller)? else {
            return Ok(None);
        };
        let (xb, yb): (&'b ArrayBase<Bx, Dx>, &'b ArrayBase<By, Dy>) = (xb, yb);
        Ok(Some((
            xb.slice_axis(Axis(0), Slice::from(..rows)),
            yb.slice_axis(Axis(0), Slice::from(..rows)),
        )))
    }

    /// Copies the next batch's rows of `x` and `y` into `xb` and `yb` and returns how many
    /// rows are new (`batch`, or fewer for the last batch without `drop_last`, whose
    /// remaining slots then repeat rows from the start of the epoch); `None` at the end of
    /// the epoch, with the buffers untouched. Allocates nothing.
    ///
    /// # Errors
    /// [`Error::Mismatch`] if `x` and `y` have different numbers of rows, a row index is
    /// beyond them, or a buffer is not `batch` rows of the data's row shape. Nothing is
    /// copied and the epoch does not advance.
    #[track_caller]
    pub fn next_into<T, U, Sx, Sy, Bx, By, Dx, Dy>(
        &mut self,
        x: &ArrayBase<Sx, Dx>,
        y: &ArrayBase<Sy, Dy>,
        xb: &mut ArrayBase<Bx, Dx>,
        yb: &mut ArrayBase<By, Dy>,
    ) -> Result<Option<usize>>
    where
        T: Clone,
        U: Clone,
        Sx: Data<Elem = T>,
        Sy: Data<Elem = U>,
        Bx: DataMut<Elem = T>,
        By: DataMut<Elem = U>,
        Dx: RemoveAxis,
        Dy: RemoveAxis,
    {
        self.fill(x, y, xb, yb, true, Caller::here())
    }

    /// Copies the next batch into the buffers (with `repeat`, filling the slots past the
    /// last batch's rows with the epoch's first rows); returns the batch's rows.
    #[allow(clippy::too_many_arguments)]
    fn fill<T, U, Sx, Sy, Bx, By, Dx, Dy>(
        &mut self,
        x: &ArrayBase<Sx, Dx>,
        y: &ArrayBase<Sy, Dy>,
        xb: &mut ArrayBase<Bx, Dx>,
        yb: &mut ArrayBase<By, Dy>,
        repeat: bool,
        caller: Caller,
    ) -> Result<Option<usize>>
    where
        T: Clone,
        U: Clone,
        Sx: Data<Elem = T>,
        Sy: Data<Elem = U>,
        Bx: DataMut<Elem = T>,
        By: DataMut<Elem = U>,
        Dx: RemoveAxis,
        Dy: RemoveAxis,
    {
        let n = rows(x, "x", caller)?;
        let ny = rows(y, "y", caller)?;
        let reason = if n != ny {
            Some(format!("x has {n} rows but y has {ny}"))
        } else if self.bound > n {
            Some(format!(
                "row {} is asked for but the data has {n} rows",
                self.bound - 1
            ))
        } else if !self.fits(xb.shape(), x.shape()) {
            Some(format!(
                "the x buffer is {:?}; it must be {} rows of {:?}",
                xb.shape(),
                self.batch,
                &x.shape()[1..]
            ))
        } else if !self.fits(yb.shape(), y.shape()) {
            Some(format!(
                "the y buffer is {:?}; it must be {} rows of {:?}",
                yb.shape(),
                self.batch,
                &y.shape()[1..]
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(Error::Mismatch {
                what: "batch",
                reason,
                caller,
            });
        }

        let batch = self.batch;
        let Some(rows) = self.next_indices() else {
            return Ok(None);
        };
        let fresh = rows.len();
        let start = self.pos - fresh;
        let slots = if repeat { batch } else { fresh };
        for slot in 0..slots {
            // Slots past the fresh rows repeat the epoch's first rows, wrapping around.
            let i = if slot < fresh {
                self.order[start + slot]
            } else {
                self.order[(slot - fresh) % self.order.len()]
            };
            xb.index_axis_mut(Axis(0), slot)
                .assign(&x.index_axis(Axis(0), i));
            yb.index_axis_mut(Axis(0), slot)
                .assign(&y.index_axis(Axis(0), i));
        }
        Ok(Some(fresh))
    }

    /// Whether a buffer of shape `buf` holds `batch` rows shaped as those of `data`.
    fn fits(&self, buf: &[usize], data: &[usize]) -> bool {
        buf.first() == Some(&self.batch) && buf[1..] == data[1..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use ndarray::{Array1, Array2};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn split_sizes_disjoint_and_reproducible() {
        for (n, f, n_test) in [(1797, 0.2, 359), (10, 0.3, 3), (5, 0.0, 0), (5, 1.0, 5)] {
            let (train, test) = train_test_split(n, f, &mut StdRng::seed_from_u64(3)).unwrap();
            assert_eq!(
                (train.len(), test.len()),
                (n - n_test, n_test),
                "n {n} f {f}"
            );
            let mut all: Vec<_> = train.iter().chain(&test).copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..n).collect::<Vec<_>>(), "disjoint and complete");
            let again = train_test_split(n, f, &mut StdRng::seed_from_u64(3)).unwrap();
            assert_eq!(again, (train, test), "same seed, same split");
        }
        let a = train_test_split(100, 0.5, &mut StdRng::seed_from_u64(1)).unwrap();
        let b = train_test_split(100, 0.5, &mut StdRng::seed_from_u64(2)).unwrap();
        assert_ne!(a, b, "another seed, another split");
    }

    #[test]
    fn split_rows_keeps_rows_paired() {
        let x = Array2::from_shape_fn((20, 3), |(i, j)| (10 * i + j) as f64);
        let y = Array1::from_shape_fn(20, |i| i);
        let s = split_rows(&x, &y, 0.25, &mut StdRng::seed_from_u64(5)).unwrap();
        assert_eq!((s.x_train.dim(), s.x_test.dim()), ((15, 3), (5, 3)));
        for (xs, ys) in [(&s.x_train, &s.y_train), (&s.x_test, &s.y_test)] {
            for (row, &label) in xs.rows().into_iter().zip(ys) {
                assert_eq!(row[1], (10 * label + 1) as f64);
            }
        }
        let again = split_rows(&x.view(), &y, 0.25, &mut StdRng::seed_from_u64(5)).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn every_row_once_per_epoch_in_a_new_order() {
        let x = Array2::from_shape_fn((10, 2), |(i, j)| (2 * i + j) as f32);
        let y = Array1::from_shape_fn(10, |i| i as f32);
        let mut b = Batches::new(10, 5, true).unwrap();
        assert_eq!(b.len(), 2);
        let (mut xb, mut yb) = (Array2::zeros((5, 2)), Array1::zeros(5));
        let mut rng = StdRng::seed_from_u64(9);
        let mut orders = vec![];
        for _ in 0..3 {
            b.shuffle(&mut rng);
            let mut seen = vec![];
            while let Some(n) = b.next_into(&x, &y, &mut xb, &mut yb).unwrap() {
                assert_eq!(n, 5);
                for (row, &label) in xb.rows().into_iter().zip(&yb) {
                    assert_eq!(row[0], 2.0 * label); // x and y rows stay paired
                }
                seen.extend(yb.iter().map(|&v| v as usize));
            }
            orders.push(seen.clone());
            seen.sort_unstable();
            assert_eq!(seen, (0..10).collect::<Vec<_>>());
        }
        assert!(
            orders[0] != orders[1] || orders[1] != orders[2],
            "reshuffled"
        );
        // The same seed gives the same batches.
        let mut b2 = Batches::new(10, 5, true).unwrap();
        let mut rng2 = StdRng::seed_from_u64(9);
        b2.shuffle(&mut rng2);
        let mut first = vec![];
        while let Some(rows) = b2.next_indices() {
            first.extend_from_slice(rows);
        }
        assert_eq!(first, orders[0]);
    }

    #[test]
    fn last_partial_batch_is_dropped_or_filled_with_repeats() {
        let x = Array2::from_shape_fn((7, 1), |(i, _)| i as f32);
        let y = Array1::from_shape_fn(7, |i| i as f32);
        let (mut xb, mut yb) = (Array2::zeros((3, 1)), Array1::zeros(3));

        // drop_last: 7 = 2 x 3 + 1, the leftover row is skipped.
        let mut b = Batches::new(7, 3, true).unwrap();
        assert_eq!(b.len(), 2);
        let mut counts = vec![];
        while let Some(n) = b.next_into(&x, &y, &mut xb, &mut yb).unwrap() {
            counts.push(n);
        }
        assert_eq!(counts, [3, 3]);

        // Kept: the third batch has 1 new row, then rows 0 and 1 of the epoch again.
        let mut b = Batches::new(7, 3, false).unwrap();
        assert_eq!(b.len(), 3);
        counts.clear();
        while let Some(n) = b.next_into(&x, &y, &mut xb, &mut yb).unwrap() {
            counts.push(n);
        }
        assert_eq!(counts, [3, 3, 1]);
        assert_eq!(yb.to_vec(), [6.0, 0.0, 1.0]);
        assert_eq!(xb.column(0).to_vec(), [6.0, 0.0, 1.0]);
        // Ended: buffers untouched until the next epoch.
        assert_eq!(b.next_into(&x, &y, &mut xb, &mut yb).unwrap(), None);
        b.rewind();
        assert_eq!(b.next_into(&x, &y, &mut xb, &mut yb).unwrap(), Some(3));

        // Fewer rows than a batch: the repeats wrap around more than once.
        let mut b = Batches::from_indices(vec![4, 2], 5, false).unwrap();
        let (mut xb, mut yb) = (Array2::zeros((5, 1)), Array1::zeros(5));
        assert_eq!(b.next_into(&x, &y, &mut xb, &mut yb).unwrap(), Some(2));
        assert_eq!(yb.to_vec(), [4.0, 2.0, 4.0, 2.0, 4.0]);
        assert!(Batches::new(2, 5, true).unwrap().is_empty());
    }

    #[test]
    fn next_batch_yields_the_last_partial_batch_at_its_size() {
        let x = Array2::from_shape_fn((7, 2), |(i, j)| (2 * i + j) as f32);
        let y = Array1::from_shape_fn(7, |i| i as f32);
        let (mut xbuf, mut ybuf) = (Array2::from_elem((3, 2), -1.0), Array1::from_elem(3, -1.0));
        let mut b = Batches::new(7, 3, false).unwrap();
        let mut seen = vec![];
        while let Some((xb, yb)) = b.next_batch(&x, &y, &mut xbuf, &mut ybuf).unwrap() {
            assert_eq!(xb.nrows(), yb.len());
            for (row, &label) in xb.rows().into_iter().zip(&yb) {
                assert_eq!(row[0], 2.0 * label);
            }
            seen.push(yb.to_vec());
        }
        assert_eq!(seen, [vec![0.0, 1.0, 2.0], vec![3.0, 4.0, 5.0], vec![6.0]]);
        // the slots past the last batch's row are not written
        assert_eq!(ybuf.to_vec(), [6.0, 4.0, 5.0]);
        // drop_last: only full batches
        let mut b = Batches::new(7, 3, true).unwrap();
        let mut n = 0;
        while let Some((xb, _)) = b.next_batch(&x, &y, &mut xbuf, &mut ybuf).unwrap() {
            assert_eq!(xb.nrows(), 3);
            n += 1;
        }
        assert_eq!(n, 2);
        // the same checks as next_into
        let mut wide = Array2::zeros((3, 4));
        assert!(Batches::new(7, 3, false)
            .unwrap()
            .next_batch(&x, &y, &mut wide, &mut ybuf)
            .is_err());
    }

    #[test]
    fn images_and_integer_labels() {
        // Rows of any rank: [N, 2, 2] images with u8 labels.
        let x = ndarray::Array3::from_shape_fn((4, 2, 2), |(i, _, _)| i as f32);
        let y = Array1::from_shape_fn(4, |i| i as u8);
        let mut b = Batches::new(4, 2, true).unwrap();
        let (mut xb, mut yb) = (ndarray::Array3::zeros((2, 2, 2)), Array1::zeros(2));
        assert_eq!(b.next_into(&x, &y, &mut xb, &mut yb).unwrap(), Some(2));
        assert_eq!(yb.to_vec(), [0, 1]);
        assert!(xb.index_axis(Axis(0), 1).iter().all(|&v| v == 1.0));
    }

    #[test]
    fn bad_arguments_are_errors() {
        let bad = |e: Error, what: &str| match e {
            Error::InvalidArgument { what: w, .. } => assert_eq!(w, what),
            e => panic!("{e}"),
        };
        bad(Batches::new(10, 0, false).unwrap_err(), "batch size");
        for f in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let mut rng = StdRng::seed_from_u64(0);
            bad(
                train_test_split(10, f, &mut rng).unwrap_err(),
                "test fraction",
            );
        }

        let x = Array2::<f32>::zeros((6, 2));
        let y = Array1::<f32>::zeros(6);
        let short = Array1::<f32>::zeros(5);
        let mismatch = |r: Result<Option<usize>>, needle: &str| match r {
            Err(Error::Mismatch { reason, .. }) => assert!(reason.contains(needle), "{reason}"),
            r => panic!("{r:?}"),
        };
        let (mut xb, mut yb) = (Array2::zeros((3, 2)), Array1::zeros(3));
        let mut b = Batches::new(6, 3, false).unwrap();
        mismatch(b.next_into(&x, &short, &mut xb, &mut yb), "y has 5");
        let mut wide = Array2::zeros((3, 4));
        mismatch(b.next_into(&x, &y, &mut wide, &mut yb), "x buffer");
        let mut long = Array1::zeros(4);
        mismatch(b.next_into(&x, &y, &mut xb, &mut long), "y buffer");
        let mut far = Batches::from_indices(vec![0, 9], 2, false).unwrap();
        mismatch(far.next_into(&x, &y, &mut xb, &mut yb), "row 9");
        // The failed calls did not advance the epoch.
        assert_eq!(b.next_into(&x, &y, &mut xb, &mut yb).unwrap(), Some(3));
        assert_eq!(b.next_into(&x, &y, &mut xb, &mut yb).unwrap(), Some(3));
        assert_eq!(b.next_into(&x, &y, &mut xb, &mut yb).unwrap(), None);

        let err = split_rows(&x, &short, 0.5, &mut StdRng::seed_from_u64(0)).unwrap_err();
        assert!(matches!(err, Error::Mismatch { .. }), "{err}");
    }
}
