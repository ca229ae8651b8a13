//! Symbolic reverse-mode differentiation: `grad` appends the VJP of every op on the path
//! from the output back to the inputs, as ordinary ops in the same arena.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Caller, Error, Result};
use crate::grads::Grads;
use crate::graph::{Graph, Kind, NodeId, Tensor};
use crate::scalar::Scalar;
use crate::shape::Shape;
use crate::shared::Shared;

impl<T: Scalar> Graph<T> {
    /// The gradients of the scalar `y` with respect to each of `xs`, as new nodes of this
    /// graph, each paired with its `x` ([`Grads`]: index it, look a gradient up by tensor,
    /// or pass it whole to [`compile`](Graph::compile) and an optimizer). Gradients along
    /// several paths are summed; an `x` that `y` does not depend on gets zeros. The
    /// results are ordinary tensors, so they can be differentiated again.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f64>::new();
    /// let x = g.param("x", tapegrad::ndarray::arr0(2.0));
    /// let y = x.powf(3.0);
    /// let dy = g.grad(y, &[x])?[0]; // 3x^2 = 12
    /// let d2y = g.grad(dy, &[x])?[0]; // 6x = 12
    /// let mut m = g.compile(&[dy, d2y], &[])?; // no (parameter, gradient) pairs to step
    /// m.run()?;
    /// assert_eq!((m.item(dy)?, m.item(d2y)?), (12.0, 12.0));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    ///
    /// # Errors
    /// The first error recorded while building the graph; [`Error::NotScalar`] if `y` has
    /// more than one element or a run-time axis (use [`grad_with`](Graph::grad_with));
    /// [`Error::WrongGraph`] if a tensor belongs to another graph.
    #[track_caller]
    pub fn grad<'g>(&'g self, y: Tensor<'g, T>, xs: &[Tensor<'g, T>]) -> Result<Grads<'g, T>> {
        let caller = Caller::here();
        self.owns(&y, "grad", caller)?;
        // a run-time axis of bound 1 holds one element, or none at 0 rows
        if y.numel() != 1 || y.shape().run().is_some() {
            return Err(Error::NotScalar {
                op: "grad",
                shape: y.shape(),
                caller,
            });
        }
        // a gradient node (see `Caller::in_grad`)
        let seed = self.full_at(y.shape(), T::one(), caller.in_grad());
        self.grad_with(y, seed, xs)
    }

    /// Like [`grad`](Graph::grad) for a `y` of any shape, with `seed` (the gradient of
    /// some scalar with respect to `y`, of `y`'s shape) as the starting gradient: the
    /// vector-Jacobian product `seedᵀ · ∂y/∂x`.
    ///
    /// # Errors
    /// As for `grad`, and [`Error::Shape`] if `seed`'s shape is not `y`'s.
    #[track_caller]
    pub fn grad_with<'g>(
        &'g self,
        y: Tensor<'g, T>,
        seed: Tensor<'g, T>,
        xs: &[Tensor<'g, T>],
    ) -> Result<Grads<'g, T>> {
        let caller = Caller::here();
        for t in xs.iter().chain([&y, &seed]) {
            self.owns(t, "grad", caller)?;
        }
        self.check()?;
        if seed.shape() != y.shape() {
            return Err(Error::Shape {
                op: "grad",
                shapes: vec![y.shape(), seed.shape()],
                reason: "the seed must have the output's shape".into(),
                caller,
            });
        }
        let n = y.id.index() + 1;
        // depends[i]: node i depends on some x, so gradient flows through it
        let mut depends = vec![false; n];
        for x in xs {
            if x.id.index() < n {
                depends[x.id.index()] = true;
            }
        }
        {
            let nodes = self.nodes();
            for i in 0..n {
                if !depends[i] && nodes[i].inputs.iter().any(|j| depends[j.index()]) {
                    depends[i] = true;
                }
            }
        }
        let mut grads: Vec<Option<Tensor<'g, T>>> = vec![None; n];
        grads[y.id.index()] = Some(seed);
        for i in (0..n).rev() {
            let Some(g) = grads[i] else { continue };
            if !depends[i] {
                continue;
            }
            // Copy what the VJP needs out of the arena: it records new nodes.
            let (op, inputs, recorded) = {
                let nodes = self.nodes();
                match &nodes[i].kind {
                    Kind::Op(op) => (
                        Shared::clone(op),
                        nodes[i].inputs.clone(),
                        nodes[i].caller(),
                    ),
                    _ => continue,
                }
            };
            let args: Vec<Tensor<'g, T>> = inputs.iter().map(|&j| Tensor::new(self, j)).collect();
            let out = Tensor::new(self, NodeId(i as u32));
            // The VJP's nodes are recorded inside the crate: a run-time error in one of
            // them (a bad class id in `cross_entropy_grad`) points at the user's op.
            let outer = self.set_vjp_of(Some(recorded.in_grad()));
            let input_grads = op.vjp(&args, out, g);
            for (k, (x, gx)) in args.iter().zip(input_grads).enumerate() {
                let (Some(gx), true) = (gx, depends[x.id.index()]) else {
                    continue;
                };
                let (x_shape, g_shape) = (x.shape(), gx.shape());
                if !x_shape.broadcasts_to(&g_shape) {
                    // a VJP of the user's (`Graph::custom`) that gives a gradient of
                    // another shape: an error at the op, not at a reshape inside `grad`
                    let reason = alloc::format!(
                        "its VJP gave input {k} ({x_shape}) a gradient of shape {g_shape}, \
                         which does not sum back to the input's shape"
                    );
                    self.record_error(Error::Shape {
                        op: op.name(),
                        shapes: vec![x_shape, g_shape],
                        reason,
                        caller: recorded,
                    });
                    continue;
                }
                let gx = gx.sum_to(x_shape);
                let slot = &mut grads[x.id.index()];
                *slot = Some(match *slot {
                    Some(acc) => acc + gx,
                    None => gx,
                });
            }
            self.set_vjp_of(outer);
        }
        // The zeros of an `x` that `y` does not depend on are not marked as gradient
        // nodes: marking them took 56 B of the Cortex-M4 firmware and 35 to 106 B of the
        // WebAssembly module, which has no room for them.
        let out: Vec<Tensor<'g, T>> = xs
            .iter()
            .map(|x| match grads.get(x.id.index()).copied().flatten() {
                Some(g) => g,
                // a run-time axis keeps following the rows fed: a constant has none
                None => match x.shape().run() {
                    Some(_) => {
                        let shape = x.shape();
                        let ones = alloc::vec![1; shape.rank()];
                        self.zeros(ones).broadcast_to(shape)
                    }
                    None => self.zeros(x.shape()),
                },
            })
            .collect();
        self.check()?;
        Ok(Grads::new(xs.to_vec(), out))
    }
}

impl<'g, T: Scalar> Tensor<'g, T> {
    /// Sums a broadcast gradient back to `shape`: over the leading axes `shape` lacks and
    /// the axes where `shape` has extent 1. The one place unbroadcasting happens.
    #[track_caller]
    pub(crate) fn sum_to(self, shape: Shape) -> Tensor<'g, T> {
        let from = self.shape();
        if from == shape {
            return self;
        }
        let lead = from.rank().saturating_sub(shape.rank());
        // a run-time axis of extent 1 (a bound of 1) still holds 0 rows or 1: summed into
        // an axis of `shape` that is fixed
        let rows_here = |a: usize| from.run_axis() == Some(a) && shape.run_axis() != Some(a - lead);
        let axes: Vec<usize> = (0..from.rank())
            .filter(|&a| {
                a < lead || (shape.dim(a - lead) == 1 && (from.dim(a) != 1 || rows_here(a)))
            })
            .collect();
        self.sum_axes(&axes, true).reshape(shape)
    }
}
