//! `Graph::compile`: the nodes some outputs need, in arena order, with their buffer plan.

use alloc::vec;
use alloc::vec::Vec;
use core::mem;

use super::{FedRows, Machine, Memory, RunStep, Step, ABSENT};
use crate::error::{Caller, Error, Result};
use crate::grads::{AsGrads, GradHandles};
use crate::graph::{Graph, Handle, Kind, Tensor};
use crate::plan::{self, StepInfo};
use crate::scalar::Scalar;
use crate::shape::Shape;
use crate::shared::Shared;

impl<T: Scalar> Graph<T> {
    /// Compiles the nodes that `outputs` and the gradients of `grads` need, and every
    /// parameter, into a [`Machine`]. Outputs and gradients stay readable after a run;
    /// other intermediate values share reused buffers (see [`Memory`]). The machine
    /// remembers the `(parameter, gradient)` pairs of `grads` ([`Machine::grads`]), which
    /// optimizers step on. Pass `&[]` for a machine without gradients (evaluation):
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let w = g.param("w", tapegrad::ndarray::arr1(&[2.0f32]));
    /// let y = (w * w).sum();
    /// let grads = g.grad(y, &[w])?;
    /// let train = g.compile(&[y], &grads)?; // pairs (w, dy/dw)
    /// let eval = g.compile(&[y], &[])?; // no gradients
    /// assert_eq!((train.grads().len(), eval.grads().len()), (1, 0));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    ///
    /// A machine compiled with gradients starts in training mode; one compiled with
    /// none (`grads` empty: evaluation, prediction, serving) starts in evaluation mode,
    /// where [`dropout`](crate::Tensor::dropout) is the identity. Either can switch with
    /// [`Machine::set_training`].
    ///
    /// # Errors
    /// The first error recorded while building the graph, or
    /// [`Error::WrongGraph`](crate::Error::WrongGraph) if an output or gradient belongs to
    /// another graph, or [`Error::TooLarge`](crate::Error::TooLarge) if the machine would
    /// take more than [`max_bytes`](crate::max_bytes) (`isize::MAX` by default) or the
    /// system cannot allocate its buffers.
    #[track_caller]
    pub fn compile<G: AsGrads + ?Sized>(
        &self,
        outputs: &[Tensor<'_, T>],
        grads: &G,
    ) -> Result<Machine<T>> {
        self.build(outputs, grads.grad_pairs(), None, false, Caller::here())
    }

    /// [`compile`](Graph::compile) without the buffer plan: every step its own buffer,
    /// never reused, nothing computed in place (views still share their input's). The
    /// reference the planner is tested against (tests/planner.rs); not for users.
    ///
    /// # Errors
    /// As for `compile`.
    #[doc(hidden)]
    #[track_caller]
    pub fn compile_unplanned<G: AsGrads + ?Sized>(
        &self,
        outputs: &[Tensor<'_, T>],
        grads: &G,
    ) -> Result<Machine<T>> {
        self.build(outputs, grads.grad_pairs(), None, true, Caller::here())
    }

    /// [`compile`](Graph::compile) within a budget of `bytes`: the machine's whole
    /// [`Memory::total`] (buffers and metadata) must fit in it. The plan is checked
    /// before any value buffer is allocated, so a machine that would not fit costs only
    /// its tables, briefly: on a device, the budget is the heap left for the machine.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.input("x", (Dim::upto(64), 784));
    /// let w = g.param("w", init::zeros([784, 10])?);
    /// let y = x.matmul(w).relu().sum();
    /// let grads = g.grad(y, &[w])?;
    ///
    /// let needed = g.compile(&[y], &grads)?.memory().total();
    /// let m = g.compile_within(&[y], &grads, needed)?; // fits exactly
    /// assert_eq!(m.memory().total(), needed);
    ///
    /// let err = g.compile_within(&[y], &grads, 64 * 1024).unwrap_err();
    /// let Error::Budget { budget, needed: n, .. } = err else { panic!() };
    /// assert_eq!((budget, n), (64 * 1024, needed));
    /// assert!(err.to_string().contains("short")); // the shortfall, by role
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for `compile`, and [`Error::Budget`] (the budget, the bytes needed, the
    /// shortfall and the bytes by role, at the caller's line) if the machine needs more
    /// than `bytes` (checked before the limit of `compile`).
    #[track_caller]
    pub fn compile_within<G: AsGrads + ?Sized>(
        &self,
        outputs: &[Tensor<'_, T>],
        grads: &G,
        bytes: usize,
    ) -> Result<Machine<T>> {
        self.build(
            outputs,
            grads.grad_pairs(),
            Some(bytes),
            false,
            Caller::here(),
        )
    }

    fn build(
        &self,
        outputs: &[Tensor<'_, T>],
        pairs: &[(Handle, Handle)],
        budget: Option<usize>,
        unplanned: bool,
        caller: Caller,
    ) -> Result<Machine<T>> {
        for t in outputs {
            self.owns(t, "compile", caller)?;
        }
        for &(x, dx) in pairs {
            if x.graph != self.id || dx.graph != self.id {
                return Err(Error::WrongGraph {
                    op: "compile",
                    caller,
                });
            }
        }
        let grads: Vec<Handle> = pairs.iter().map(|p| p.1).collect();
        let wanted: Vec<Handle> = outputs
            .iter()
            .map(|t| t.handle())
            .chain(grads.iter().copied())
            .collect();
        self.check()?;
        let nodes = self.nodes();
        let needed = needed_nodes(&nodes, &wanted);
        let n = needed.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
        let order: Vec<usize> = (0..n).filter(|&i| needed[i] != 0).collect();
        // Inputs fed together take the same rows, so no run can have more rows than the
        // smallest bound of an input: a value planned for fewer (a shape of the user's
        // with a run-time axis, as `broadcast_to` takes) cannot be computed.
        let bound_of = |i: usize| nodes[i].shape.bound();
        let is_input = |i: usize| matches!(nodes[i].kind, Kind::Input { .. });
        let most_rows = order
            .iter()
            .filter(|&&i| is_input(i))
            .filter_map(|&i| bound_of(i))
            .min()
            .or_else(|| order.iter().filter_map(|&i| bound_of(i)).min());
        if let Some(rows) = most_rows {
            if let Some(&i) = order
                .iter()
                .find(|&&i| bound_of(i).is_some_and(|b| b < rows))
            {
                let node = &nodes[i];
                let op = match &node.kind {
                    Kind::Op(op) => op.name(),
                    _ => "compile",
                };
                return Err(Error::Shape {
                    op,
                    shapes: vec![node.shape.clone()],
                    reason: alloc::format!(
                        "its run-time axis holds up to {} rows, but the inputs take up to {rows}",
                        node.shape.bound().unwrap_or(0)
                    ),
                    caller: node.caller,
                });
            }
        }
        let mut slot = vec![ABSENT; n];
        for (k, &i) in order.iter().enumerate() {
            slot[i] = k as u32;
        }
        let mut args = Vec::new();
        let mut ranges = Vec::with_capacity(order.len());
        for &i in &order {
            let start = args.len() as u32;
            args.extend(nodes[i].inputs.iter().map(|j| slot[j.index()]));
            ranges.push((start, args.len() as u32));
        }
        let is_grad = |i: usize| grads.iter().any(|t| t.id.index() == i);
        let distinct = pairs
            .iter()
            .enumerate()
            .all(|(k, p)| pairs[..k].iter().all(|q| q.0 != p.0));
        let is_out = |i: usize| outputs.iter().any(|t| t.id.index() == i);
        // an update's value is read after the run: its buffer is never reused
        let is_update = |i: usize| needed[i] == UPDATE;
        let mut steps = Vec::with_capacity(order.len());
        let mut infos = Vec::with_capacity(order.len());
        let mut run_inputs = Vec::new();
        for (k, &i) in order.iter().enumerate() {
            let node = &nodes[i];
            let step = match &node.kind {
                Kind::Input { name } => {
                    if let Some(r) = node.shape.run() {
                        run_inputs.push(FedRows {
                            step: k as u32,
                            // inputs are fed the same rows, so none takes more than the
                            // smallest bound, which every buffer is planned for
                            bound: r.bound.min(most_rows.unwrap_or(r.bound)),
                            row_len: node.shape.numel() / r.bound.max(1),
                            rows: r.bound,
                            at: None,
                        });
                    }
                    Step::Input {
                        name: name.clone(),
                        fed: false,
                    }
                }
                Kind::Param { name, layout, .. } => Step::Param {
                    name: name.clone(),
                    layout: *layout,
                },
                Kind::Buffer { name, .. } => Step::Buffer { name: name.clone() },
                Kind::Const(_) => Step::Const,
                Kind::Op(op) if op.is_view() => Step::View(Shared::clone(op)),
                Kind::Op(op) => Step::Op(Shared::clone(op)),
                // `check` above returns the error that made this node.
                Kind::Invalid => unreachable!("invalid node in a graph without errors"),
            };
            let (a, b) = ranges[k];
            let in_place = match &step {
                Step::Op(op) => {
                    let shapes: Vec<&Shape> = node
                        .inputs
                        .iter()
                        .map(|j| &nodes[j.index()].shape)
                        .collect();
                    // Over an input only when both scale alike with the rows fed.
                    let run = node.shape.run();
                    let ok = |k: &usize| shapes.get(*k).is_some_and(|s| s.run() == run);
                    let wanted = op.in_place(&shapes);
                    if !unplanned && wanted.iter().all(ok) {
                        wanted
                    } else {
                        &[]
                    }
                }
                _ => &[],
            };
            infos.push(StepInfo {
                numel: node.shape.numel(),
                inputs: &args[a as usize..b as usize],
                view: matches!(step, Step::View(_)),
                // pinned, a buffer is never reused: unplanned, every step is
                pinned: unplanned || is_out(i) || is_grad(i) || is_update(i),
                in_place,
            });
            steps.push(step);
        }
        let plan = plan::plan(&infos);
        let mut memory = Memory::default();
        let size = mem::size_of::<T>();
        // A buffer counts once, under the first role that holds it in this order:
        // input, parameter, constant, gradient, output, workspace.
        let mut role = vec![5usize; plan.sizes.len()];
        for (k, &i) in order.iter().enumerate() {
            if !infos[k].view {
                memory.unplanned = memory
                    .unplanned
                    .saturating_add(nodes[i].shape.numel().saturating_mul(size));
            }
            let r = match &steps[k] {
                Step::Input { .. } => 0,
                Step::Param { .. } | Step::Buffer { .. } => 1,
                Step::Const => 2,
                _ if is_grad(i) => 3,
                _ if is_out(i) => 4,
                _ => 5,
            };
            let b = plan.buf_of[k] as usize;
            role[b] = role[b].min(r);
        }
        for (&n, r) in plan.sizes.iter().zip(role) {
            let field = match r {
                0 => &mut memory.inputs,
                1 => &mut memory.params,
                2 => &mut memory.constants,
                3 => &mut memory.grads,
                4 => &mut memory.outputs,
                _ => &mut memory.workspace,
            };
            // saturating: a count past `usize` is over every budget (below), never a
            // small wrapped one that passes
            *field = field.saturating_add(n.saturating_mul(size));
        }
        let scratch_len = order
            .iter()
            .zip(&steps)
            .map(|(&i, step)| match step {
                Step::Op(op) => {
                    let shapes: Vec<&Shape> = nodes[i]
                        .inputs
                        .iter()
                        .map(|j| &nodes[j.index()].shape)
                        .collect();
                    op.scratch(&shapes)
                }
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        memory.scratch = scratch_len.saturating_mul(size);
        memory.unplanned = memory.unplanned.saturating_add(memory.scratch);
        let numel = order.iter().map(|&i| nodes[i].shape.numel()).collect();
        let shapes = order.iter().map(|&i| nodes[i].shape.clone()).collect();
        let callers = order.iter().map(|&i| nodes[i].caller).collect();
        let runs: Vec<RunStep> = order
            .iter()
            .enumerate()
            .filter_map(|(k, &i)| {
                let r = nodes[i].shape.run()?;
                Some(RunStep {
                    step: k as u32,
                    axis: r.axis as u32,
                    per_row: nodes[i].shape.dim(r.axis) / r.bound.max(1),
                })
            })
            .collect();
        // (buffer's buffer, value's buffer, elements) of each update followed, after the
        // steps' arguments (see `Machine::args`)
        for (&i, &bb) in order.iter().zip(&plan.buf_of) {
            if let Kind::Buffer {
                update: Some(v), ..
            } = nodes[i].kind
            {
                if needed[v.index()] == UPDATE {
                    let bv = plan.buf_of[slot[v.index()] as usize];
                    args.extend([bb, bv, nodes[i].shape.numel() as u32]);
                }
            }
        }
        let mut m = Machine {
            graph: self.id,
            slot,
            steps,
            shapes,
            numel,
            callers,
            runs,
            run_inputs,
            // not a number of rows: `set_rows` below sets every shape
            rows: usize::MAX,
            buf_of: plan.buf_of,
            kept: plan.kept,
            root: plan.root,
            in_place: plan.in_place,
            // allocated below, once the budget is known to hold them
            bufs: Vec::with_capacity(plan.sizes.len()),
            args,
            ranges,
            scratch: Vec::new(),
            rng: crate::rng::KernelRng::new(0),
            // what a machine is for decides the mode dropout starts in: see `compile`
            training: !grads.is_empty(),
            memory,
            ran: false,
            grads: GradHandles::from_pairs(pairs.to_vec()),
            distinct,
        };
        // A total that saturated is past every budget.
        let needed = m.memory().total();
        if let Some(budget) = budget.filter(|&b| needed > b || needed == usize::MAX) {
            return Err(Error::Budget {
                budget,
                needed,
                memory: m.memory(),
                caller,
            });
        }
        // The process-wide limit (`isize::MAX` unless set lower) holds with or without a
        // budget, and each buffer is allocated fallibly: a plan the system cannot hold is
        // an `Err`, not an abort in the allocator.
        crate::limit::check_bytes("compile", &[], needed, caller)?;
        for &n in &plan.sizes {
            let buf = crate::limit::try_vec("compile", &[], n, T::zero(), caller)?;
            m.bufs.push(buf);
        }
        m.scratch = crate::limit::try_vec("compile", &[], scratch_len, T::zero(), caller)?;
        for (k, &i) in order.iter().enumerate() {
            let init = match &nodes[i].kind {
                Kind::Param { init, .. } => init,
                Kind::Buffer { init, .. } => match &nodes[init.index()].kind {
                    Kind::Const(v) => &**v,
                    _ => continue,
                },
                Kind::Const(v) => &**v,
                _ => continue,
            };
            let b = m.buf_of[k] as usize;
            for (d, &v) in m.bufs[b].iter_mut().zip(init.iter()) {
                *d = v;
            }
        }
        // Shapes are recorded at their own bounds; inputs of different bounds meet at the
        // smallest one.
        m.set_rows(most_rows.unwrap_or(0));
        Ok(m)
    }
}

/// Which nodes a machine of `wanted` holds (nonzero): what they read, the values of the
/// updates of the buffers read ([`UPDATE`]; and what those read), and every parameter and
/// buffer. (Left to the compiler to inline: measured on the firmware, the frame of
/// `compile` stays as on main either way, and inlined it is smaller.)
fn needed_nodes<T: Scalar>(nodes: &[crate::graph::Node<T>], wanted: &[Handle]) -> Vec<u8> {
    let mut needed = vec![0u8; nodes.len()];
    for t in wanted {
        needed[t.id.index()] = 1;
    }
    // What the needed nodes read, and the update values of the buffers read (and what
    // those read), in one sweep down the arena that goes back up to an update value it
    // has passed (one computed later than its buffer) when that value is new.
    let mut i = needed.len();
    while i > 0 {
        i -= 1;
        if needed[i] == 0 {
            continue;
        }
        for j in &nodes[i].inputs {
            needed[j.index()] |= 1;
        }
        if let Kind::Buffer {
            update: Some(v), ..
        } = nodes[i].kind
        {
            if needed[v.index()] == 0 {
                // a value new to the sweep: sweep again from it
                i = i.max(v.index() + 1);
            }
            needed[v.index()] = UPDATE;
        }
    }
    // Every parameter and buffer of the graph lives in the machine, used or not, so that
    // an optimizer stepping on `graph.params()` finds them all (an unused one has a zero
    // gradient) and every machine of a graph holds (and saves) the same state.
    for (need, node) in needed.iter_mut().zip(nodes) {
        if matches!(node.kind, Kind::Param { .. } | Kind::Buffer { .. }) {
            *need |= 1;
        }
    }
    needed
}

/// In [`needed_nodes`]'s answer: the value of an update that the machine follows (it is
/// needed too).
const UPDATE: u8 = 3;
