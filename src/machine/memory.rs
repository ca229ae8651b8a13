//! What a machine holds on the heap ([`Memory`]): its buffers by role, counted by the
//! plan, and its own tables, counted from their capacities.

use core::mem::size_of;

use alloc::vec::Vec;

use super::{Machine, Step};
use crate::scalar::Scalar;
use crate::shape::Shape;
use crate::shared;

/// Bytes of the heap a machine holds, by role; and what its buffers would take with every
/// node in a buffer of its own.
///
/// [`total`](Memory::total) is every byte the machine holds on the heap: the buffers
/// (parameters, inputs, constants, gradients, outputs, workspace, scratch) and the
/// [`metadata`](Memory::metadata) that describes the tape. Bytes are those requested from
/// the allocator (its own bookkeeping per block is not included), and the `Machine` value
/// itself, wherever it is stored, is not on the heap. An optimizer's state (momentum,
/// Adam's moments) lives in the optimizer, not in the machine: see
/// [`Sgd::state_bytes`](crate::Sgd::state_bytes) and
/// [`Adam::state_bytes`](crate::Adam::state_bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Parameters and buffers ([`Graph::buffer`](crate::Graph::buffer)).
    pub params: usize,
    /// Fed inputs.
    pub inputs: usize,
    /// Constants.
    pub constants: usize,
    /// The outputs passed to `compile` as `grads`.
    pub grads: usize,
    /// The other outputs passed to `compile`.
    pub outputs: usize,
    /// Everything else: activations and intermediate results, in reused buffers.
    pub workspace: usize,
    /// The kernels' shared scratch memory (GEMM packing buffers).
    pub scratch: usize,
    /// The tape itself: its steps with their ops (the op and its reference counts, which
    /// the graph shares while it lives), names, shapes, buffer plan, the tables of the
    /// run-time axis and the gradient pairs.
    pub metadata: usize,
    /// The buffers without planning: every node its own buffer (and the same scratch);
    /// compare it with [`buffers`](Memory::buffers).
    pub unplanned: usize,
}

impl Memory {
    /// Every byte held on the heap: [`buffers`](Memory::buffers) and
    /// [`metadata`](Memory::metadata); `usize::MAX` if that is more than a `usize` counts
    /// (a plan [`compile`](crate::Graph::compile) refuses).
    pub fn total(&self) -> usize {
        self.buffers().saturating_add(self.metadata)
    }

    /// The bytes of the value buffers and the scratch memory, all roles together
    /// (saturating at `usize::MAX`, as each role does).
    pub fn buffers(&self) -> usize {
        [
            self.inputs,
            self.constants,
            self.grads,
            self.outputs,
            self.workspace,
            self.scratch,
        ]
        .into_iter()
        .fold(self.params, usize::saturating_add)
    }
}

fn vec_bytes<V>(v: &Vec<V>) -> usize {
    v.capacity() * size_of::<V>()
}

impl<T: Scalar> Machine<T> {
    /// The bytes of the machine's own tables on the heap (every field is named, so that
    /// a new one cannot be left out).
    pub(super) fn metadata_bytes(&self) -> usize {
        let Machine {
            graph: _,
            slot,
            steps,
            shapes,
            numel,
            callers,
            runs,
            run_inputs,
            rows: _,
            buf_of,
            kept,
            root,
            in_place,
            // the values' buffers are counted by role, in the plan
            bufs,
            args,
            ranges,
            scratch: _,
            rng: _,
            training: _,
            memory: _,
            ran: _,
            grads,
            distinct: _,
        } = self;
        let per_step: usize = steps
            .iter()
            .map(|s| match s {
                Step::Input { name, .. } | Step::Param { name, .. } | Step::Buffer { name } => {
                    name.capacity()
                }
                Step::Const => 0,
                Step::Op(op) | Step::View(op) => shared::block_bytes(&**op) + op.heap_bytes(),
            })
            .sum();
        let per_shape: usize = shapes.iter().map(Shape::heap_bytes).sum();
        vec_bytes(slot)
            + vec_bytes(steps)
            + per_step
            + vec_bytes(shapes)
            + per_shape
            + vec_bytes(numel)
            + vec_bytes(callers)
            + vec_bytes(runs)
            + vec_bytes(run_inputs)
            + vec_bytes(buf_of)
            + vec_bytes(kept)
            + vec_bytes(root)
            + vec_bytes(in_place)
            + vec_bytes(bufs)
            + vec_bytes(args)
            + vec_bytes(ranges)
            + grads.heap_bytes()
    }
}
