//! Gradients paired with what they are gradients of: [`Grads`] from
//! [`Graph::grad`](crate::Graph::grad), its `'static` form [`GradHandles`], and the
//! [`AsGrads`] trait that `compile`, the optimizers and `clip_grad_norm` take.

use alloc::vec::Vec;
use core::fmt;
use core::ops::Index;

use crate::error::{Caller, Error, Result};
use crate::graph::{AsHandle, Handle, Tensor};
use crate::scalar::Scalar;

/// The gradients from one [`Graph::grad`](crate::Graph::grad) call, each paired with
/// the tensor `x` it is the gradient of, in the order the `x`s were given.
///
/// Pass it whole to [`Graph::compile`](crate::Graph::compile) and to
/// [`Optimizer::step`](crate::Optimizer::step): a gradient travels with its parameter, so
/// it cannot be applied to another one. Index it by position for one gradient
/// (`g.grad(y, &[x])?[0]`), look one up by tensor with [`get`](Grads::get), or iterate
/// the `(x, dx)` pairs. It works the same for gradients with respect to inputs and
/// intermediate values (Hessian-vector products, gradient penalties); only the
/// optimizers require the `x`s to be parameters.
///
/// ```
/// use tapegrad::prelude::*;
/// let g = Graph::<f64>::new();
/// let a = g.param("a", tapegrad::ndarray::arr1(&[1.0, 2.0]));
/// let b = g.param("b", tapegrad::ndarray::arr1(&[3.0, 4.0]));
/// let loss = (a * b).sum(); // d/da = b, d/db = a
/// let grads = g.grad(loss, &[a, b])?;
/// let mut m = g.compile(&[loss], &grads)?;
/// m.run()?;
/// for (x, dx) in &grads {
///     assert_eq!(dx.shape(), x.shape());
/// }
/// assert_eq!(m.value(grads[0])?.as_slice(), Some(&[3.0, 4.0][..]));
/// let db = grads.get(b); // looked up by tensor
/// assert_eq!(db.map(|db| db.id()), Some(grads[1].id()));
/// assert!(grads.get(loss).is_none());
/// # Ok::<(), tapegrad::Error>(())
/// ```
pub struct Grads<'g, T: Scalar> {
    wrt: Vec<Tensor<'g, T>>,
    grads: Vec<Tensor<'g, T>>,
    handles: GradHandles,
}

impl<'g, T: Scalar> Grads<'g, T> {
    /// Pairs `wrt[i]` with `grads[i]`; only `grad_with` builds these, from one list.
    pub(crate) fn new(wrt: Vec<Tensor<'g, T>>, grads: Vec<Tensor<'g, T>>) -> Self {
        let pairs = wrt
            .iter()
            .zip(&grads)
            .map(|(x, dx)| (x.handle(), dx.handle()))
            .collect();
        Grads {
            wrt,
            grads,
            handles: GradHandles { pairs },
        }
    }

    /// How many gradients.
    pub fn len(&self) -> usize {
        self.grads.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }

    /// The `(x, dx)` pairs, in the order the `x`s were given to `grad`.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (Tensor<'g, T>, Tensor<'g, T>)> + '_ {
        self.wrt.iter().copied().zip(self.grads.iter().copied())
    }

    /// The gradient of `x`, or `None` if `x` was not among the tensors given to `grad`.
    pub fn get(&self, x: impl AsHandle) -> Option<Tensor<'g, T>> {
        let h = x.as_handle();
        self.wrt
            .iter()
            .position(|w| w.handle() == h)
            .map(|i| self.grads[i])
    }

    /// The gradient tensors alone, in order (for instance to compile them as plain
    /// outputs, or to differentiate them again).
    pub fn tensors(&self) -> &[Tensor<'g, T>] {
        &self.grads
    }

    /// The tensors the gradients are taken with respect to, in order.
    pub fn wrt(&self) -> &[Tensor<'g, T>] {
        &self.wrt
    }

    /// The pairs of `xs` only, in the order of `xs`: a parameter group to step with its
    /// own optimizer (or learning rate), the others frozen.
    ///
    /// # Errors
    /// [`Error::Mismatch`] if an `x` has no gradient here.
    #[track_caller]
    pub fn select(&self, xs: &[Tensor<'g, T>]) -> Result<Grads<'g, T>> {
        let caller = Caller::here();
        let mut wrt = Vec::with_capacity(xs.len());
        let mut grads = Vec::with_capacity(xs.len());
        for &x in xs {
            let dx = self.get(x).ok_or_else(|| not_here(x.handle(), caller))?;
            wrt.push(x);
            grads.push(dx);
        }
        Ok(Grads::new(wrt, grads))
    }

    /// The same pairs as `'static` handles, for stepping a machine stored away from its
    /// graph (in a struct, on another thread).
    pub fn handles(&self) -> GradHandles {
        self.handles.clone()
    }
}

impl<T: Scalar> Clone for Grads<'_, T> {
    fn clone(&self) -> Self {
        Grads {
            wrt: self.wrt.clone(),
            grads: self.grads.clone(),
            handles: self.handles.clone(),
        }
    }
}

impl<T: Scalar> fmt::Debug for Grads<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The gradient at position `i`.
///
/// # Panics
/// If `i >= self.len()`, as slice indexing does; [`tensors`](Grads::tensors)`().get(i)`
/// does not panic.
impl<'g, T: Scalar> Index<usize> for Grads<'g, T> {
    type Output = Tensor<'g, T>;

    fn index(&self, i: usize) -> &Tensor<'g, T> {
        &self.grads[i]
    }
}

impl<'a, 'g, T: Scalar> IntoIterator for &'a Grads<'g, T> {
    type Item = (Tensor<'g, T>, Tensor<'g, T>);
    type IntoIter = core::iter::Zip<
        core::iter::Copied<core::slice::Iter<'a, Tensor<'g, T>>>,
        core::iter::Copied<core::slice::Iter<'a, Tensor<'g, T>>>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.wrt.iter().copied().zip(self.grads.iter().copied())
    }
}

/// The `(x, dx)` pairs of a [`Grads`] as `'static` handles: what a machine stored away
/// from its graph is stepped with. Made only by [`Grads::handles`] and
/// [`Machine::grads`](crate::Machine::grads), so its pairs are always ones `grad` made.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct GradHandles {
    pairs: Vec<(Handle, Handle)>,
}

impl GradHandles {
    /// The bytes of its list of pairs on the heap.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.pairs.capacity() * core::mem::size_of::<(Handle, Handle)>()
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The `(x, dx)` pairs, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (Handle, Handle)> + '_ {
        self.pairs.iter().copied()
    }

    /// The gradient of `x`, or `None` if it has none here.
    pub fn get(&self, x: impl AsHandle) -> Option<Handle> {
        let h = x.as_handle();
        self.pairs.iter().find(|p| p.0 == h).map(|p| p.1)
    }

    /// The pairs of `xs` only, in the order of `xs` (see [`Grads::select`]).
    ///
    /// # Errors
    /// [`Error::Mismatch`] if an `x` has no gradient here.
    #[track_caller]
    pub fn select<H: AsHandle>(&self, xs: &[H]) -> Result<GradHandles> {
        let caller = Caller::here();
        let mut pairs = Vec::with_capacity(xs.len());
        for x in xs {
            let x = x.as_handle();
            let dx = self.get(x).ok_or_else(|| not_here(x, caller))?;
            pairs.push((x, dx));
        }
        Ok(GradHandles { pairs })
    }

    pub(crate) fn from_pairs(pairs: Vec<(Handle, Handle)>) -> Self {
        GradHandles { pairs }
    }
}

fn not_here(x: Handle, caller: Caller) -> Error {
    Error::Mismatch {
        what: "select",
        reason: alloc::format!("node {} has no gradient among these", x.id.index()),
        caller,
    }
}

mod sealed {
    pub trait Sealed {}
    impl<T: crate::Scalar> Sealed for super::Grads<'_, T> {}
    impl Sealed for super::GradHandles {}
    impl Sealed for [crate::Handle; 0] {}
}

/// Gradient pairs as [`Graph::compile`](crate::Graph::compile), the optimizers and
/// [`clip_grad_norm`](crate::optim::clip_grad_norm) take them: a [`Grads`], its
/// [`GradHandles`], or `&[]` for none (a machine that only evaluates).
///
/// Sealed: only `grad` makes pairs, so a gradient is never paired with the wrong tensor.
pub trait AsGrads: sealed::Sealed {
    /// The `(x, dx)` pairs, in order.
    fn grad_pairs(&self) -> &[(Handle, Handle)];
}

impl<T: Scalar> AsGrads for Grads<'_, T> {
    fn grad_pairs(&self) -> &[(Handle, Handle)] {
        &self.handles.pairs
    }
}

impl AsGrads for GradHandles {
    fn grad_pairs(&self) -> &[(Handle, Handle)] {
        &self.pairs
    }
}

/// `&[]`: no gradients.
impl AsGrads for [Handle; 0] {
    fn grad_pairs(&self) -> &[(Handle, Handle)] {
        &[]
    }
}
