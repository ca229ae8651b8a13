//! Names of nodes: the `Copy` [`Tensor`] that records ops into its graph, and the
//! `'static` [`Handle`] a machine is addressed with.

use core::fmt;
use core::panic::Location;

use super::{Graph, NodeId};
use crate::ops::Op;
use crate::scalar::Scalar;
use crate::shape::Shape;

/// A handle to a node of a [`Graph`]: two words, `Copy`, combined with `+ - * /` and the
/// op methods, which record new nodes.
///
/// ```
/// use tapegrad::prelude::*;
/// let g = Graph::<f32>::new();
/// let x = g.input("x", [2, 3]);
/// let y = (2.0 * x + 1.0).relu().sum();
/// assert_eq!(y.shape(), Shape::scalar());
/// ```
pub struct Tensor<'g, T: Scalar> {
    pub(crate) graph: &'g Graph<T>,
    pub(crate) id: NodeId,
}

impl<T: Scalar> Clone for Tensor<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Scalar> Copy for Tensor<'_, T> {}

impl<T: Scalar> fmt::Debug for Tensor<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes = self.graph.nodes();
        match nodes.get(self.id.index()) {
            Some(n) => write!(f, "Tensor({} #{} {})", n.kind.name(), self.id.0, n.shape),
            None => write!(f, "Tensor(#{})", self.id.0),
        }
    }
}

impl<'g, T: Scalar> Tensor<'g, T> {
    pub(crate) fn new(graph: &'g Graph<T>, id: NodeId) -> Self {
        Tensor { graph, id }
    }

    /// The node's id in its graph.
    pub fn id(self) -> NodeId {
        self.id
    }

    /// The graph this tensor belongs to.
    pub fn graph(self) -> &'g Graph<T> {
        self.graph
    }

    /// The shape, known from recording.
    pub fn shape(self) -> Shape {
        self.graph.nodes()[self.id.index()].shape.clone()
    }

    /// The number of elements.
    pub fn numel(self) -> usize {
        self.graph.nodes()[self.id.index()].shape.numel()
    }

    /// The number of axes.
    pub fn rank(self) -> usize {
        self.graph.nodes()[self.id.index()].shape.rank()
    }

    /// The name of the op that made this node (`"input"`, `"parameter"`, `"matmul"`, ...).
    pub fn op_name(self) -> &'static str {
        self.graph.nodes()[self.id.index()].kind.name()
    }

    /// A `'static` handle to this node, for addressing a machine without the graph.
    pub fn handle(self) -> Handle {
        Handle {
            graph: self.graph.id,
            id: self.id,
        }
    }

    /// Records `op` on `inputs` (which must include `self` where it is an operand).
    pub(crate) fn apply<O: Op<T>>(
        self,
        op: O,
        inputs: &[Tensor<'g, T>],
        caller: &'static Location<'static>,
    ) -> Tensor<'g, T> {
        self.graph.apply(op, inputs, caller)
    }
}

/// A `'static`, `Copy` name of a node: the graph's identity and the node id. A
/// [`Machine`](crate::Machine) is addressed by anything that gives one ([`Tensor`] or
/// `Handle`), so a machine stored away from its graph can still be fed and read.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Handle {
    pub(crate) graph: super::GraphId,
    pub(crate) id: NodeId,
}

impl Handle {
    /// The node's id in its graph.
    pub fn id(self) -> NodeId {
        self.id
    }
}

/// Anything that names a node: a [`Tensor`] or a [`Handle`].
pub trait AsHandle {
    /// The node's handle.
    fn as_handle(&self) -> Handle;

    /// The name of the node's op, for error messages (`"node"` where unknown).
    fn op_name(&self) -> &'static str {
        "node"
    }
}

impl AsHandle for Handle {
    fn as_handle(&self) -> Handle {
        *self
    }
}

impl<T: Scalar> AsHandle for Tensor<'_, T> {
    fn as_handle(&self) -> Handle {
        self.handle()
    }
    fn op_name(&self) -> &'static str {
        Tensor::op_name(*self)
    }
}

impl<H: AsHandle> AsHandle for &H {
    fn as_handle(&self) -> Handle {
        (*self).as_handle()
    }
    fn op_name(&self) -> &'static str {
        (*self).op_name()
    }
}
