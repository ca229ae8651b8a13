//! Buffers: named, non-trainable state in the graph (PyTorch's `register_buffer`), such
//! as batch norm's running statistics.
//!
//! The design is in [`Graph::buffer`]'s documentation.

use alloc::vec::Vec;
use core::panic::Location;

use ndarray::{Array, ArrayD, Dimension};

use super::{Graph, Kind, NodeId, Tensor};
use crate::error::{Caller, Error, Result};
use crate::scalar::Scalar;
use crate::shape::Shape;

impl<T: Scalar> Graph<T> {
    /// A buffer: named, non-trainable state with its initial value (PyTorch's
    /// `register_buffer`). It reads like a parameter, is saved and loaded with the
    /// parameters, but is not in [`params`](Graph::params), so no optimizer steps it; it
    /// changes only through its [`update`](Graph::update), after each training run.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// use tapegrad::ndarray::arr1;
    /// let g = Graph::<f32>::new();
    /// let x = g.input("x", [2]);
    /// let seen = g.buffer("seen", arr1(&[0.0f32, 0.0])); // a running sum of the inputs
    /// g.update(seen, seen + x);
    /// let y = x * 2.0 + seen;
    /// let mut m = g.compile(&[y], &[])?;
    /// m.set_training(true);
    /// m.feed(x, &arr1(&[1.0, 2.0]))?;
    /// m.run()?; // y read the buffer before the run's update
    /// assert_eq!(m.value(y)?.as_slice(), Some(&[2.0, 4.0][..]));
    /// assert_eq!(m.value(seen)?.as_slice(), Some(&[1.0, 2.0][..]));
    /// m.set_training(false); // evaluation: buffers stay as they are
    /// m.run()?;
    /// assert_eq!(m.value(seen)?.as_slice(), Some(&[1.0, 2.0][..]));
    /// assert!(g.params().is_empty() && g.buffers().len() == 1);
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    ///
    /// # Design
    /// - A buffer is a leaf like a parameter (`Graph::buffer`): a compiled machine owns its
    ///   value in a buffer of its own, every machine of a graph holds every buffer (as it
    ///   holds every parameter), and [`Machine::save`](crate::Machine::save) /
    ///   [`load`](crate::Machine::load) and their `*_bytes` forms write and read buffers
    ///   with the parameters, by name, as a PyTorch `state_dict` holds both. It is not in
    ///   [`Graph::params`] (so `g.grad(loss, &g.params())` and the optimizers never see it);
    ///   [`Graph::buffers`] and [`Machine::buffers`](crate::Machine::buffers) list them.
    /// - Its change is recorded, not performed: [`Graph::update`]`(buffer, value)` says
    ///   that after a run in training mode the buffer takes `value`, an ordinary node
    ///   computed from anything (the buffer's old value, batch statistics, ...). At most one
    ///   update per buffer, of the buffer's exact shape.
    /// - `compile` follows the updates of the buffers that the compiled outputs read: their
    ///   values (and whatever those need) are compiled too, in buffers the plan never reuses.
    /// - [`Machine::run`](crate::Machine::run) computes every step first, then, in training
    ///   mode only ([`Machine::set_training`](crate::Machine::set_training)), copies each
    ///   update's value into its buffer (all computed before any is written, so the order
    ///   does not matter). So every read of a buffer in a run sees the value it had before
    ///   the run (as PyTorch's running statistics, updated after use), a run is
    ///   deterministic, and the copy allocates nothing. An evaluation run leaves every buffer as it was; a failed run writes none.
    #[track_caller]
    pub fn buffer<D: Dimension>(&self, name: &str, init: Array<T, D>) -> Tensor<'_, T> {
        self.buffer_at(name, init.into_dyn(), Location::caller())
    }

    /// Not generic and never inlined, as `param_at`.
    #[inline(never)]
    fn buffer_at(
        &self,
        name: &str,
        init: ArrayD<T>,
        caller: &'static Location<'static>,
    ) -> Tensor<'_, T> {
        let caller = Caller::from(caller);
        self.check_name(name, caller);
        let shape = Shape::from(init.shape());
        if let Err(e) = self.check_size("buffer", &shape, caller) {
            return self.fail_with(e, &shape, caller);
        }
        let init = self.push(
            Kind::Const(crate::shared::Shared::new(init)),
            Vec::new(),
            shape.clone(),
            caller,
        );
        self.push(
            Kind::Buffer {
                name: name.into(),
                init: init.id,
                update: None,
            },
            Vec::new(),
            shape,
            caller,
        )
    }

    /// [`buffer`](Graph::buffer) of an initial value that may have failed to be made, as
    /// `param_or_fail`.
    pub(crate) fn buffer_or_fail(
        &self,
        name: &str,
        init: Result<ArrayD<T>>,
        shape: Shape,
        caller: &'static Location<'static>,
    ) -> Tensor<'_, T> {
        match init {
            Ok(a) => self.buffer_at(name, a, caller),
            Err(e) => {
                self.check_name(name, caller.into());
                self.fail_with(e, &shape, caller.into())
            }
        }
    }

    /// Every buffer, in the order they were declared.
    pub fn buffers(&self) -> Vec<Tensor<'_, T>> {
        self.leaves(|k| matches!(k, Kind::Buffer { .. }))
    }

    /// Records that after each run in training mode, `buffer` takes the value `value`
    /// had in that run (see the design in [`buffer`](Graph::buffer)).
    /// `value` is any node of `buffer`'s shape; it may read `buffer` itself (a running
    /// average), and sees its value from before the run.
    ///
    /// Like the ops it never fails on the spot: a mistake is recorded, located here, and
    /// returned by the next fallible call (`grad`, `compile`, [`check`](Graph::check)).
    ///
    /// # Errors
    /// (deferred) [`Error::Shape`] if `buffer` is not a buffer, already has an update, or
    /// `value` has another shape (a run-time axis included); [`Error::WrongGraph`] if
    /// either belongs to another graph.
    #[track_caller]
    pub fn update(&self, buffer: Tensor<'_, T>, value: Tensor<'_, T>) {
        let caller = Location::caller();
        if buffer.graph.id != self.id || value.graph.id != self.id {
            self.record_error(Error::WrongGraph {
                op: "update",
                caller: caller.into(),
            });
            return;
        }
        let (b, v) = (buffer.shape(), value.shape());
        let reason = {
            let inner = self.inner.borrow();
            let kind = &inner.nodes[buffer.id.index()].kind;
            if !matches!(kind, Kind::Buffer { .. }) {
                Some(alloc::format!(
                    "only a buffer can be updated, not a(n) {}",
                    kind.name()
                ))
            } else if matches!(
                kind,
                Kind::Buffer {
                    update: Some(_),
                    ..
                }
            ) {
                Some("the buffer already has an update".into())
            } else if b != v {
                Some(alloc::format!(
                    "the new value must have the buffer's shape {b}, not {v}"
                ))
            } else {
                None
            }
        };
        match reason {
            Some(reason) => self.record_error(Error::Shape {
                op: "update",
                shapes: alloc::vec![b, v],
                reason,
                caller: caller.into(),
            }),
            None => self.set_update(buffer.id, value.id),
        }
    }

    /// The value `buffer` takes after a training run as recorded so far: its update's
    /// value, or the buffer itself.
    pub(crate) fn pending(&self, buffer: Tensor<'_, T>) -> Tensor<'_, T> {
        let inner = self.inner.borrow();
        let v = match inner.nodes.get(buffer.id.index()).map(|n| &n.kind) {
            Some(Kind::Buffer {
                update: Some(v), ..
            }) if buffer.graph.id == self.id => *v,
            _ => buffer.id,
        };
        Tensor::new(self, v)
    }

    /// Records `value` as `buffer`'s update, replacing the one recorded: for an op that
    /// updates a buffer each time it is applied, with a `value` computed from
    /// [`pending`](Graph::pending), so that the updates compose in call order as
    /// PyTorch's do.
    #[track_caller]
    pub(crate) fn chain_update(&self, buffer: Tensor<'_, T>, value: Tensor<'_, T>) {
        let same = buffer.graph.id == self.id && value.graph.id == self.id;
        if same && buffer.shape() == value.shape() && self.pending(buffer).id != buffer.id {
            self.set_update(buffer.id, value.id);
        } else {
            self.update(buffer, value);
        }
    }

    fn set_update(&self, buffer: NodeId, value: NodeId) {
        if let Some(Kind::Buffer { update, .. }) = self
            .inner
            .borrow_mut()
            .nodes
            .get_mut(buffer.index())
            .map(|n| &mut n.kind)
        {
            *update = Some(value);
        }
    }
}
