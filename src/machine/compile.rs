//! `Graph::compile`: the nodes some outputs need, in arena order, with their buffer plan.

use alloc::vec;
use alloc::vec::Vec;
use core::mem;

use super::{FedRows, Machine, Memory, RunStep, Step, ABSENT};
use crate::error::{Caller, Error, Result};
use crate::grads::{AsGrads, GradHandles};
use crate::graph::{AsHandle, Graph, Handle, Kind, Tensor};
use crate::plan::{self, StepInfo};
use crate::scalar::Scalar;
use crate::shape::Shape;
use crate::shared::Shared;
use ndarray::ArrayD;

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
        self.build(
            outputs,
            grads.grad_pairs(),
            None,
            Build::Plan,
            Caller::here(),
        )
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
        let (pairs, caller) = (grads.grad_pairs(), Caller::here());
        self.build(outputs, pairs, None, Build::Unplanned, caller)
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
        let (pairs, caller) = (grads.grad_pairs(), Caller::here());
        self.build(outputs, pairs, Some(bytes), Build::Plan, caller)
    }

    /// [`compile`](Graph::compile), consuming the graph: each parameter's initial value
    /// moves into the machine instead of being copied, so that the parameters are held
    /// once, not twice, while the machine is made (for a large model, what sets the
    /// process's peak memory). The machine is the one `compile` makes, value for value.
    ///
    /// The tensors of a graph borrow it, so name the outputs and gradients by their
    /// `'static` [`Handle`]s and [`GradHandles`] (as a machine stored away from its graph
    /// is addressed). To keep an evaluation machine beside the training one, `compile`
    /// it first (it copies the values it needs), then move the graph into the other.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.input("x", [2]);
    /// let w = g.param("w", tapegrad::ndarray::arr1(&[3.0f32, 4.0]));
    /// let loss = (x * w).sum();
    /// let grads = g.grad(loss, &[w])?;
    /// let eval = g.compile(&[loss], &[])?; // copies w's value
    /// // handles outlive the graph's borrow; `w`'s initial value moves into `train`
    /// let (x, loss, grads) = (x.handle(), loss.handle(), grads.handles());
    /// let mut train = g.into_machine(&[loss], &grads)?;
    /// train.feed(x, &tapegrad::ndarray::arr1(&[1.0, 2.0]))?;
    /// train.run()?;
    /// assert_eq!(train.item(loss)?, 11.0);
    /// assert_eq!(train.value(grads.iter().next().unwrap().1)?.as_slice(), Some(&[1.0, 2.0][..]));
    /// assert_eq!(eval.params().count(), 1);
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for `compile` (an output or gradient of another graph is
    /// [`Error::WrongGraph`](crate::Error::WrongGraph)); the graph is dropped either way.
    #[track_caller]
    pub fn into_machine<G: AsGrads + ?Sized>(
        self,
        outputs: &[Handle],
        grads: &G,
    ) -> Result<Machine<T>> {
        let (pairs, caller) = (grads.grad_pairs(), Caller::here());
        let mut m = self.build(outputs, pairs, None, Build::Move, caller)?;
        // Every parameter is in the machine, its buffer its own and left empty by `build`;
        // the graph's nodes are dropped one by one, as their values move.
        let nodes = core::mem::take(&mut self.inner.into_inner().nodes);
        for (i, node) in nodes.into_iter().enumerate() {
            let k = m.slot.get(i).copied().filter(|&k| k != ABSENT);
            if let (Kind::Param { init, .. }, Some(k)) = (node.kind, k) {
                let b = m.buf_of[k as usize] as usize;
                m.bufs[b] = row_major(init, caller)?;
            }
        }
        Ok(m)
    }

    /// Generic in the outputs' type, so that a binary that only `compile`s holds one copy.
    fn build<H: AsHandle>(
        &self,
        outputs: &[H],
        pairs: &[(Handle, Handle)],
        budget: Option<usize>,
        how: Build,
        caller: Caller,
    ) -> Result<Machine<T>> {
        let unplanned = how == Build::Unplanned;
        let mine = |h: Handle| h.graph == self.id;
        let alien = outputs.iter().any(|t| !mine(t.as_handle()))
            || pairs.iter().any(|&(x, dx)| !mine(x) || !mine(dx));
        if alien {
            return Err(Error::WrongGraph {
                op: "compile",
                caller,
            });
        }
        let grads: Vec<Handle> = pairs.iter().map(|p| p.1).collect();
        let wanted: Vec<Handle> = outputs
            .iter()
            .map(|t| t.as_handle())
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
                    caller: node.caller(),
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
        let is_out = |i: usize| outputs.iter().any(|t| t.as_handle().id.index() == i);
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
        let callers = order.iter().map(|&i| nodes[i].caller()).collect();
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
        let mut sizes = plan.sizes;
        if how == Build::Move {
            // left empty: `into_machine` moves each parameter's own value in
            for (k, &i) in order.iter().enumerate() {
                if let Kind::Param { .. } = nodes[i].kind {
                    sizes[m.buf_of[k] as usize] = 0;
                }
            }
        }
        for &n in &sizes {
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
            // (nothing, into a buffer left empty)
            for (d, &v) in m.bufs[b].iter_mut().zip(init.iter()) {
                *d = v;
            }
        }
        // Shapes are recorded at their own bounds; inputs of different bounds meet at the
        // smallest one.
        m.set_rows(most_rows.unwrap_or(0));
        // Start the threads kernels split over now, so that no run allocates them.
        crate::par::prepare();
        Ok(m)
    }
}

/// How `build` makes a machine.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Build {
    /// With the buffer plan, copying the leaves' values (`compile`).
    Plan,
    /// Every step its own buffer (`compile_unplanned`).
    Unplanned,
    /// With the plan, leaving the parameters' buffers empty for `into_machine` to move
    /// their values into.
    Move,
}

/// The elements of `a` in row-major order, in a vector of exactly their number: `a`'s
/// own storage when it holds them so (no copy), else a copy.
fn row_major<T: Scalar>(a: ArrayD<T>, caller: Caller) -> Result<Vec<T>> {
    let n = a.len();
    if !a.is_standard_layout() {
        let mut v = crate::limit::try_vec("compile", &[], n, T::zero(), caller)?;
        v.iter_mut().zip(a.iter()).for_each(|(d, &x)| *d = x);
        return Ok(v);
    }
    // in standard layout, the elements are `n` in a row from the offset (none if empty)
    let (mut v, offset) = a.into_raw_vec_and_offset();
    let at = offset.unwrap_or(0);
    v.truncate(at + n);
    v.drain(..at);
    v.shrink_to_fit();
    Ok(v)
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
