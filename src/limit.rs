//! The process-wide limit on the bytes one tensor or one machine may take, and the checks
//! every constructor and `compile` make against it.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Caller, Error, Result};
use crate::shape::Shape;

/// `isize::MAX` is the most any allocation may hold (`Layout`'s rule).
const MOST: usize = isize::MAX as usize;

// Only loads and stores: targets without atomic read-modify-write (Cortex-M0+, RISC-V imc)
// have both.
static MAX_BYTES: AtomicUsize = AtomicUsize::new(MOST);

/// Sets the most bytes that one tensor made by a constructor (`init::*`,
/// [`Graph::input`](crate::Graph::input), [`Graph::full`](crate::Graph::full), an op's
/// result) or one compiled [`Machine`](crate::Machine) may take, process-wide. Past it
/// they return (or the graph records) [`Error::TooLarge`] instead of allocating. The
/// default, and the most it can be, is `isize::MAX`; larger values are taken as that.
///
/// An edge build sets it to its RAM so that an oversized model fails at `compile`, with
/// the bytes it wanted, rather than in the allocator.
///
/// ```
/// use tapegrad::prelude::*;
/// tapegrad::set_max_bytes(64 << 10); // this device gives the model 64 KiB
/// assert_eq!(tapegrad::max_bytes(), 64 << 10);
/// let g = Graph::<f32>::new();
/// let x = g.input("x", [1 << 20, 8]); // 32 MiB of input
/// let err = g.compile(&[x.relu().sum()], &[]).unwrap_err();
/// assert!(matches!(err, tapegrad::Error::TooLarge { .. }));
/// tapegrad::set_max_bytes(usize::MAX); // back to the default, isize::MAX
/// assert_eq!(tapegrad::max_bytes(), isize::MAX as usize);
/// ```
pub fn set_max_bytes(bytes: usize) {
    MAX_BYTES.store(bytes.min(MOST), Ordering::Relaxed);
}

/// The limit set by [`set_max_bytes`] (`isize::MAX` by default).
pub fn max_bytes() -> usize {
    MAX_BYTES.load(Ordering::Relaxed)
}

/// The bytes of `shape`'s elements of `size` bytes, counting an empty axis as 1: a shape
/// with an empty axis holds nothing, but its other extents still make its strides and
/// every later product, so they must fit too. `None` past a `usize`.
pub(crate) fn shape_bytes(shape: &Shape, size: usize) -> Option<usize> {
    shape
        .dims()
        .iter()
        .try_fold(size, |n, &d| n.checked_mul(d.max(1)))
}

/// `Err(TooLarge)` unless `shape` with elements of `size` bytes fits the limit.
pub(crate) fn check_shape(
    what: &'static str,
    shape: &Shape,
    size: usize,
    caller: Caller,
) -> Result<()> {
    let bytes = shape_bytes(shape, size).unwrap_or(usize::MAX);
    check_bytes(what, core::slice::from_ref(shape), bytes, caller)
}

/// `Err(TooLarge)` unless `bytes` fits the limit.
pub(crate) fn check_bytes(
    what: &'static str,
    shapes: &[Shape],
    bytes: usize,
    caller: Caller,
) -> Result<()> {
    if bytes > max_bytes() {
        return Err(too_large(what, shapes, bytes, caller));
    }
    Ok(())
}

/// The `TooLarge` error, built out of line: the shapes are copied only on this path, and
/// its code is not repeated where a size is checked (flash on a microcontroller).
#[cold]
#[inline(never)]
pub(crate) fn too_large(
    what: &'static str,
    shapes: &[Shape],
    bytes: usize,
    caller: Caller,
) -> Error {
    Error::TooLarge {
        what,
        shapes: shapes.to_vec(),
        bytes,
        limit: max_bytes(),
        caller,
    }
}

/// A `Vec` of `n` copies of `value`, or `Err(TooLarge)` if `n` of them pass the limit or
/// the system refuses the allocation (instead of aborting the process).
#[inline(never)]
pub(crate) fn try_vec<T: Clone>(
    what: &'static str,
    shapes: &[Shape],
    n: usize,
    value: T,
    caller: Caller,
) -> Result<Vec<T>> {
    let size = core::mem::size_of::<T>();
    let bytes = n.saturating_mul(size);
    check_bytes(what, shapes, bytes, caller)?;
    let mut v = Vec::new();
    if v.try_reserve_exact(n).is_err() {
        return Err(too_large(what, shapes, bytes, caller));
    }
    v.resize(n, value);
    Ok(v)
}
