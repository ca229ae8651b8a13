//! The graph: an append-only arena of nodes, and the `Tensor` handle that records into it.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::{Ref, RefCell};
use core::fmt;
use core::mem;
use core::panic::Location;

use ndarray::{Array, ArrayD, Dimension};

use crate::error::{Caller, Error, Result};
use crate::ops::Op;
use crate::scalar::Scalar;
use crate::shape::Shape;
use crate::shared::Shared;
use crate::weights::Layout;

mod buffer;
mod dot;
mod handle;
mod id;

pub(crate) use id::GraphId;

pub use handle::{AsHandle, Handle, Tensor};

/// The position of a node in its graph's arena. Nodes only refer to smaller ids, so
/// ascending id order is a topological order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct NodeId(pub(crate) u32);

impl NodeId {
    /// The id as an index into the arena.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What a node is.
pub(crate) enum Kind<T: Scalar> {
    /// A placeholder fed on every run.
    Input { name: String },
    /// A trainable value with its initial value; the machine owns its current value.
    /// `layout` says how PyTorch stores it (see `WeightMap::torch`).
    Param {
        name: String,
        init: ArrayD<T>,
        layout: Layout,
    },
    /// Non-trainable state (see [`Graph::buffer`]): its initial value is the constant
    /// node `init`, and `update` the node of its update ([`Graph::update`]), if any; the
    /// machine owns its current value and writes the update's value into it after a
    /// training run. (Ids, and the update kept here rather than in a list of the graph's,
    /// so that neither a node nor the graph grows: on a device the stack holds them.)
    Buffer {
        name: String,
        init: NodeId,
        update: Option<NodeId>,
    },
    /// A fixed value.
    Const(Shared<ArrayD<T>>),
    /// The result of an op on earlier nodes.
    Op(Shared<dyn Op<T>>),
    /// Stands in for an op that failed to record; the graph holds its error.
    Invalid,
}

impl<T: Scalar> Kind<T> {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Kind::Input { .. } => "input",
            Kind::Param { .. } => "parameter",
            Kind::Buffer { .. } => "buffer",
            Kind::Const(_) => "constant",
            Kind::Op(op) => op.name(),
            Kind::Invalid => "invalid",
        }
    }
}

pub(crate) struct Node<T: Scalar> {
    pub(crate) kind: Kind<T>,
    pub(crate) inputs: Vec<NodeId>,
    pub(crate) shape: Shape,
    /// Where the user recorded it; for a gradient node, where the op it differentiates
    /// was recorded (the machine reports a run-time error of its kernel here), with
    /// [`GRAD_MARK`] set in its column. Read through [`Node::caller`].
    at: Caller,
}

/// The top bit of a node's caller's column marks a node recorded by `grad` (for
/// [`Graph::to_dot`]): a flag kept in a bit no column uses rather than in a field, so that
/// a node does not grow (a device's graph is short of RAM).
const GRAD_MARK: u32 = 1 << 31;

impl Caller {
    /// This caller, marking the nodes recorded with it as recorded by `grad`.
    pub(crate) fn in_grad(self) -> Caller {
        Caller {
            column: self.column | GRAD_MARK,
            ..self
        }
    }
}

impl<T: Scalar> Node<T> {
    /// Where the node was recorded (see the field `at`).
    pub(crate) fn caller(&self) -> Caller {
        Caller {
            column: self.at.column & !GRAD_MARK,
            ..self.at
        }
    }

    /// Whether `grad` recorded the node.
    pub(crate) fn is_grad(&self) -> bool {
        self.at.column & GRAD_MARK != 0
    }
}

pub(crate) struct Inner<T: Scalar> {
    pub(crate) nodes: Vec<Node<T>>,
    pub(crate) errors: Vec<Error>,
    /// While `grad` records an op's VJP: where that op was recorded, given to every node
    /// the VJP records (their own callers are inside the crate).
    pub(crate) vjp_of: Option<Caller>,
}

impl<T: Scalar> Drop for Inner<T> {
    fn drop(&mut self) {
        drop_errors(core::mem::take(&mut self.errors));
    }
}

/// Drops the errors a graph holds, out of line: the drop code of [`Error`] (a cold path,
/// most graphs hold none) is then linked once, not copied into every drop of a graph
/// (measured: 450 B of the WebAssembly module).
#[inline(never)]
fn drop_errors(errors: Vec<Error>) {
    drop(errors);
}

/// A recorded computation: an arena of nodes that tensors point into.
///
/// Build it once with [`Graph::input`], [`Graph::param`] and the methods of [`Tensor`];
/// differentiate it with [`Graph::grad`]; turn it into a runnable
/// [`Machine`](crate::Machine) with [`Graph::compile`] (or [`Graph::into_machine`], which
/// moves the parameters' values instead of copying them). Recording never fails on the
/// spot: a shape error is stored with the caller's location and returned by the next
/// fallible call (`grad`, `compile`, [`check`](Graph::check)).
///
/// ```
/// use tapegrad::prelude::*;
/// let g = Graph::<f64>::new();
/// let x = g.param("x", tapegrad::ndarray::arr1(&[3.0]));
/// let y = x * x * x; // y = x^3
/// let dy = g.grad(y.sum(), &[x])?[0]; // 3x^2
/// let mut m = g.compile(&[y, dy], &[])?;
/// m.run()?;
/// assert_eq!(m.value(dy)?[[0]], 27.0);
/// # Ok::<(), tapegrad::Error>(())
/// ```
pub struct Graph<T: Scalar> {
    pub(crate) id: GraphId,
    pub(crate) inner: RefCell<Inner<T>>,
}

impl<T: Scalar> Default for Graph<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Scalar> fmt::Debug for Graph<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("Graph")
            .field("id", &self.id)
            .field("nodes", &inner.nodes.len())
            .field("errors", &inner.errors.len())
            .finish()
    }
}

impl<T: Scalar> Graph<T> {
    /// An empty graph.
    pub fn new() -> Self {
        Graph {
            id: GraphId::next(),
            inner: RefCell::new(Inner {
                nodes: Vec::new(),
                errors: Vec::new(),
                vjp_of: None,
            }),
        }
    }

    /// The number of nodes recorded so far (gradients add more).
    pub fn len(&self) -> usize {
        self.inner.borrow().nodes.len()
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A placeholder fed with [`Machine::feed`](crate::Machine::feed) before each run.
    /// Integer data (class ids, row ids) is stored as `T`.
    ///
    /// Its leading axis may be a run-time axis: `g.input("x", (Dim::upto(256), 784))`
    /// takes any number of rows from 0 to 256 at each feed. The machine is planned for
    /// 256 rows and computes on the rows fed; every input with a run-time axis must be
    /// fed the same number of rows before a run, and a mean over that axis divides by
    /// the rows fed (an empty batch gives NaN, as in PyTorch).
    ///
    /// A shape past [`max_bytes`](crate::max_bytes) (counting an empty axis as 1, since
    /// the other extents still make strides) records [`Error::TooLarge`], returned by the
    /// next fallible call; so do [`param`](Graph::param), [`constant`](Graph::constant),
    /// [`full`](Graph::full) and every op whose result would be that large.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.input("x", (Dim::upto(4), 2));
    /// let y = x.sum_axes(&[1], false).mean(); // mean over the rows fed
    /// let mut m = g.compile(&[y], &[])?;
    /// m.feed(x, &tapegrad::ndarray::arr2(&[[1.0, 2.0], [3.0, 4.0]]))?; // 2 rows of 4
    /// m.run()?;
    /// assert_eq!(m.item(y)?, 5.0); // (3 + 7) / 2
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn input(&self, name: &str, shape: impl Into<Shape>) -> Tensor<'_, T> {
        let caller = Caller::here();
        self.check_name(name, caller);
        let shape = shape.into();
        if let Err(e) = self.check_size("input", &shape, caller) {
            return self.fail_with(e, &shape, caller);
        }
        if let Some(r) = shape.run() {
            let reason = if r.axis != 0 {
                Some("a run-time axis must be an input's leading axis")
            } else if r.bound == 0 {
                Some("a run-time axis needs a bound of at least 1 row")
            } else if r.bound >= u32::MAX as usize {
                Some("a run-time axis takes fewer than 2^32 - 1 rows")
            } else {
                None
            };
            if let Some(reason) = reason {
                return self.fail(
                    "input",
                    alloc::vec![shape.clone()],
                    reason.into(),
                    Location::caller(),
                    shape,
                );
            }
        }
        self.push(
            Kind::Input {
                name: name.to_string(),
            },
            Vec::new(),
            shape,
            caller,
        )
    }

    /// A trainable parameter with its initial value. The compiled machine owns its current
    /// value; optimizers update it in place.
    #[track_caller]
    pub fn param<D: Dimension>(&self, name: &str, init: Array<T, D>) -> Tensor<'_, T> {
        self.param_at(name, init.into_dyn(), Location::caller(), Layout::ByName)
    }

    /// Not generic and never inlined: each `param` call of a model would otherwise add
    /// its checks' temporaries to the caller's frame (stack is scarce on a device).
    #[inline(never)]
    fn param_at(
        &self,
        name: &str,
        init: ArrayD<T>,
        caller: &'static Location<'static>,
        layout: Layout,
    ) -> Tensor<'_, T> {
        let caller = Caller::from(caller);
        self.check_name(name, caller);
        let shape = Shape::from(init.shape());
        if let Err(e) = self.check_size("param", &shape, caller) {
            return self.fail_with(e, &shape, caller);
        }
        self.push(
            Kind::Param {
                name: name.to_string(),
                init,
                layout,
            },
            Vec::new(),
            shape,
            caller,
        )
    }

    /// [`param`](Graph::param) of an initial value that may have failed to be made (an
    /// `init::*` too large): the error is recorded, located, for the next fallible call.
    /// For the parameters of `nn` layers, which PyTorch stores as they are here.
    pub(crate) fn param_or_fail(
        &self,
        name: &str,
        init: Result<ArrayD<T>>,
        shape: Shape,
        caller: &'static Location<'static>,
    ) -> Tensor<'_, T> {
        self.param_or_fail_laid(name, init, shape, caller, Layout::AsTorch)
    }

    /// [`param_or_fail`](Graph::param_or_fail) of a parameter PyTorch stores in `layout`
    /// (`nn::Linear`'s weight: transposed).
    pub(crate) fn param_or_fail_laid(
        &self,
        name: &str,
        init: Result<ArrayD<T>>,
        shape: Shape,
        caller: &'static Location<'static>,
        layout: Layout,
    ) -> Tensor<'_, T> {
        match init {
            Ok(a) => self.param_at(name, a, caller, layout),
            Err(e) => {
                self.check_name(name, caller.into());
                self.fail_with(e, &shape, caller.into())
            }
        }
    }

    /// A constant tensor.
    #[track_caller]
    pub fn constant<D: Dimension>(&self, value: Array<T, D>) -> Tensor<'_, T> {
        self.constant_at(value.into_dyn(), Caller::here())
    }

    /// As [`param_at`](Graph::param_at), for constants.
    #[inline(never)]
    fn constant_at(&self, value: ArrayD<T>, caller: Caller) -> Tensor<'_, T> {
        let shape = Shape::from(value.shape());
        if let Err(e) = self.check_size("constant", &shape, caller) {
            return self.fail_with(e, &shape, caller);
        }
        self.push(Kind::Const(Shared::new(value)), Vec::new(), shape, caller)
    }

    /// A constant of `shape` with every element `value` (PyTorch's `torch.full`). With
    /// the shape `[]` it is a scalar, which broadcasts against anything. A constant's
    /// shape is fixed: a run-time axis in `shape` is taken at its bound.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.input("x", [3]);
    /// let y = x.maximum(g.full([], 0.5)); // max(x, 0.5), element by element
    /// let mut m = g.compile(&[y], &[])?;
    /// m.feed(x, &tapegrad::ndarray::arr1(&[0.0, 1.0, 2.0]))?;
    /// m.run()?;
    /// assert_eq!(m.value(y)?.as_slice(), Some(&[0.5, 1.0, 2.0][..]));
    /// assert_eq!(g.full([2, 3], 7.0).shape(), Shape::from([2, 3]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn full(&self, shape: impl Into<Shape>, value: T) -> Tensor<'_, T> {
        self.full_at(shape.into(), value, Caller::here())
    }

    /// [`full`](Graph::full), not generic: one copy in a firmware.
    #[inline(never)]
    pub(crate) fn full_at(&self, shape: Shape, value: T, caller: Caller) -> Tensor<'_, T> {
        match crate::init::filled("full", shape.clone(), caller, &mut || value) {
            // the array's shape: a run-time axis is taken at its bound
            Ok(a) => {
                let fixed = Shape::from(a.shape());
                self.push(Kind::Const(Shared::new(a)), Vec::new(), fixed, caller)
            }
            Err(e) => self.fail_with(e, &shape, caller),
        }
    }

    /// A constant filled with zeros.
    #[track_caller]
    pub fn zeros(&self, shape: impl Into<Shape>) -> Tensor<'_, T> {
        self.full(shape, T::zero())
    }

    /// A constant filled with ones.
    #[track_caller]
    pub fn ones(&self, shape: impl Into<Shape>) -> Tensor<'_, T> {
        self.full(shape, T::one())
    }

    /// Every parameter, in the order they were declared.
    pub fn params(&self) -> Vec<Tensor<'_, T>> {
        self.leaves(|k| matches!(k, Kind::Param { .. }))
    }

    /// Every input, in the order they were declared.
    pub fn inputs(&self) -> Vec<Tensor<'_, T>> {
        self.leaves(|k| matches!(k, Kind::Input { .. }))
    }

    /// The input, parameter or buffer called `name`.
    pub fn get(&self, name: &str) -> Option<Tensor<'_, T>> {
        let inner = self.inner.borrow();
        let i = inner
            .nodes
            .iter()
            .position(|n| leaf_name(&n.kind) == Some(name))?;
        Some(Tensor::new(self, NodeId(i as u32)))
    }

    /// The first error recorded in this graph, if any.
    ///
    /// # Errors
    /// The first [`Error::Shape`], [`Error::WrongGraph`] or [`Error::DuplicateName`]
    /// recorded while building the graph.
    pub fn check(&self) -> Result<()> {
        match self.inner.borrow().errors.first() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn leaves(&self, keep: impl Fn(&Kind<T>) -> bool) -> Vec<Tensor<'_, T>> {
        let inner = self.inner.borrow();
        (0..inner.nodes.len())
            .filter(|&i| keep(&inner.nodes[i].kind))
            .map(|i| Tensor::new(self, NodeId(i as u32)))
            .collect()
    }

    fn check_name(&self, name: &str, caller: Caller) {
        let taken = {
            let inner = self.inner.borrow();
            inner.nodes.iter().any(|n| leaf_name(&n.kind) == Some(name))
        };
        if taken {
            self.record_error(Error::DuplicateName {
                name: name.to_string(),
                caller,
            });
        }
    }

    pub(crate) fn push(
        &self,
        kind: Kind<T>,
        inputs: Vec<NodeId>,
        shape: Shape,
        caller: Caller,
    ) -> Tensor<'_, T> {
        let mut inner = self.inner.borrow_mut();
        let id = NodeId(inner.nodes.len() as u32);
        let at = inner.vjp_of.unwrap_or(caller);
        inner.nodes.push(Node {
            kind,
            inputs,
            shape,
            at,
        });
        Tensor::new(self, id)
    }

    /// Gives the nodes recorded until the next call `caller` (see [`Node::caller`]) or,
    /// with `None`, their own callers again. Returns the previous setting.
    pub(crate) fn set_vjp_of(&self, caller: Option<Caller>) -> Option<Caller> {
        mem::replace(&mut self.inner.borrow_mut().vjp_of, caller)
    }

    pub(crate) fn record_error(&self, e: Error) {
        self.inner.borrow_mut().errors.push(e);
    }

    pub(crate) fn nodes(&self) -> Ref<'_, Vec<Node<T>>> {
        Ref::map(self.inner.borrow(), |i| &i.nodes)
    }

    /// Records `op` applied to `inputs`, or, if the shapes do not fit or the inputs come
    /// from another graph, records the error and returns a stand-in node.
    ///
    /// Generic only to box the op: the recording itself is compiled once per element
    /// type, not once per op (each copy was about 1 KiB of every binary).
    pub(crate) fn apply<O: Op<T>>(
        &self,
        op: O,
        inputs: &[Tensor<'_, T>],
        caller: &'static Location<'static>,
    ) -> Tensor<'_, T> {
        self.apply_shared(Shared::new(op), inputs, caller)
    }

    #[inline(never)]
    fn apply_shared(
        &self,
        op: Shared<dyn Op<T>>,
        inputs: &[Tensor<'_, T>],
        caller: &'static Location<'static>,
    ) -> Tensor<'_, T> {
        if inputs.iter().any(|t| t.graph.id != self.id) {
            self.record_error(Error::WrongGraph {
                op: op.name(),
                caller: caller.into(),
            });
            return self.push(Kind::Invalid, Vec::new(), Shape::scalar(), caller.into());
        }
        let shapes: Vec<Shape> = inputs.iter().map(|t| t.shape()).collect();
        let refs: Vec<&Shape> = shapes.iter().collect();
        let run_axis = shapes.iter().find(|s| s.run().is_some());
        if let (Some(s), false) = (run_axis, op.takes_run_axis()) {
            let reason = alloc::format!(
                "`{}` cannot take a tensor with a run-time axis ({s})",
                op.name()
            );
            let fallback = shapes.first().cloned().unwrap_or_default();
            return self.fail(op.name(), shapes, reason, caller, fallback);
        }
        match op.shape(&refs) {
            Ok(shape) if self.check_size(op.name(), &shape, caller.into()).is_err() => {
                let bytes = crate::limit::shape_bytes(&shape, mem::size_of::<T>());
                let mut shapes = shapes;
                shapes.push(shape.clone());
                self.fail_with(
                    Error::TooLarge {
                        what: op.name(),
                        shapes,
                        bytes: bytes.unwrap_or(usize::MAX),
                        limit: crate::limit::max_bytes(),
                        caller: caller.into(),
                    },
                    &shape,
                    caller.into(),
                )
            }
            // A view shares its first input's buffer, so it must hold exactly its
            // elements at every number of rows: an op of a user's that says otherwise
            // would make the machine slice past that buffer.
            Ok(shape)
                if op.is_view()
                    && shapes.first().is_none_or(|s0| {
                        s0.numel() != shape.numel() || s0.bound() != shape.bound()
                    }) =>
            {
                let reason = match shapes.first() {
                    None => String::from("a view needs an input whose data it shares"),
                    Some(s0) => alloc::format!(
                        "a view must hold its first input's elements, but {shape} does not \
                         hold those of {s0}"
                    ),
                };
                self.fail(op.name(), shapes, reason, caller, shape)
            }
            Ok(shape) => self.push(
                Kind::Op(op),
                inputs.iter().map(|t| t.id).collect(),
                shape,
                caller.into(),
            ),
            Err(reason) => {
                let fallback = shapes.first().cloned().unwrap_or_default();
                self.fail(op.name(), shapes, reason, caller, fallback)
            }
        }
    }

    /// Records a shape error for a composite method and returns a stand-in of `shape`.
    pub(crate) fn fail(
        &self,
        op: &'static str,
        shapes: Vec<Shape>,
        reason: String,
        caller: &'static Location<'static>,
        shape: Shape,
    ) -> Tensor<'_, T> {
        self.record_error(Error::Shape {
            op,
            shapes,
            reason,
            caller: caller.into(),
        });
        self.push(Kind::Invalid, Vec::new(), shape, caller.into())
    }

    /// `Err(TooLarge)` unless a tensor of `shape` fits the byte limit (which also keeps
    /// every product of its extents within `isize::MAX`).
    pub(crate) fn check_size(
        &self,
        what: &'static str,
        shape: &Shape,
        caller: Caller,
    ) -> Result<()> {
        crate::limit::check_shape(what, shape, mem::size_of::<T>().max(1), caller)
    }

    /// Records `e` and returns a stand-in of `shape` with its extents emptied, so that no
    /// later shape rule multiplies the extents that were refused.
    #[cold]
    #[inline(never)]
    pub(crate) fn fail_with(&self, e: Error, shape: &Shape, caller: Caller) -> Tensor<'_, T> {
        self.record_error(e);
        let stand_in = Shape::new(alloc::vec![0; shape.rank()]);
        self.push(Kind::Invalid, Vec::new(), stand_in, caller)
    }

    /// Checks that `t` belongs to this graph.
    pub(crate) fn owns(&self, t: &Tensor<'_, T>, op: &'static str, caller: Caller) -> Result<()> {
        if t.graph.id == self.id {
            Ok(())
        } else {
            Err(Error::WrongGraph { op, caller })
        }
    }
}

pub(crate) fn leaf_name<T: Scalar>(k: &Kind<T>) -> Option<&str> {
    match k {
        Kind::Input { name } | Kind::Param { name, .. } | Kind::Buffer { name, .. } => Some(name),
        _ => None,
    }
}
