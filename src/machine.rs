//! The tape machine: `compile` copies the nodes some outputs need out of the graph, in
//! arena (topological) order, and gives each a buffer; `run` executes the tape again and
//! again on new feeds without allocating.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::mem;

use ndarray::ArrayViewD;

use crate::error::{Caller, Error, Result};
use crate::grads::GradHandles;
use crate::graph::{AsHandle, Handle};
use crate::ops::{view, Inputs, Op, Out};
use crate::scalar::Scalar;
use crate::shape::Shape;
use crate::shared::Shared;

mod compile;
mod feed;
mod memory;
mod pairs;

pub use memory::Memory;

const ABSENT: u32 = u32::MAX;

enum Step<T: Scalar> {
    Input {
        name: String,
        fed: bool,
    },
    /// `layout`: how PyTorch stores it (see `WeightMap::torch`); kept here, where it
    /// fits beside the name, so that the machine does not grow.
    Param {
        name: String,
        layout: crate::weights::Layout,
    },
    /// Non-trainable state (see [`Graph::buffer`](crate::Graph::buffer)).
    Buffer {
        name: String,
    },
    Const,
    Op(Shared<dyn Op<T>>),
    /// An op whose output is its first input's data unchanged: shares its buffer.
    View(Shared<dyn Op<T>>),
}

/// An input with a run-time axis (kept apart from `Step`, which `run` walks and should
/// stay small): its step, bound and elements per row, and the rows and place of its last
/// feed.
#[derive(Clone, Copy)]
struct FedRows {
    step: u32,
    bound: usize,
    row_len: usize,
    rows: usize,
    at: Option<Caller>,
}

/// A step whose shape has a run-time axis: its extent there is `rows * per_row`.
#[derive(Clone, Copy)]
struct RunStep {
    step: u32,
    axis: u32,
    per_row: usize,
}

/// A kernel's error with the step's op and where it was recorded; out of `run`'s loop.
#[cold]
#[inline(never)]
fn located(e: Error, op: &'static str, recorded: Caller) -> Error {
    e.at_step(op, recorded)
}

impl<T: Scalar> Step<T> {
    fn kind(&self) -> &'static str {
        match self {
            Step::Input { .. } => "input",
            Step::Param { .. } => "parameter",
            Step::Buffer { .. } => "buffer",
            Step::Const => "constant",
            Step::Op(op) | Step::View(op) => op.name(),
        }
    }
}

/// A compiled graph that owns every value: parameters, fed inputs, activations and
/// gradients. It borrows nothing from its [`Graph`](crate::Graph), so it is `'static` and `Send`; it is
/// addressed with the graph's tensors or their [`Handle`]s.
///
/// ```
/// use tapegrad::prelude::*;
/// let g = Graph::<f32>::new();
/// let x = g.input("x", [2]);
/// let w = g.param("w", tapegrad::ndarray::arr1(&[3.0, 4.0]));
/// let y = (x * w).sum();
/// let mut m = g.compile(&[y], &[])?;
/// m.feed(x, &tapegrad::ndarray::arr1(&[1.0, 2.0]))?;
/// m.run()?;
/// assert_eq!(m.item(y)?, 11.0);
/// m.feed(x, &tapegrad::ndarray::arr1(&[0.0, 1.0]))?; // new values, same machine
/// m.run()?;
/// assert_eq!(m.item(y)?, 4.0);
/// # Ok::<(), tapegrad::Error>(())
/// ```
pub struct Machine<T: Scalar> {
    graph: crate::graph::GraphId,
    /// Tape position of each node id, or `ABSENT`.
    slot: Vec<u32>,
    steps: Vec<Step<T>>,
    /// Each step's shape and element count at the rows of the current run (at the bound
    /// until another number of rows is fed).
    shapes: Vec<Shape>,
    numel: Vec<usize>,
    /// Where each step's node was recorded (declared, for an input), for run-time errors.
    callers: Vec<Caller>,
    /// The steps with a run-time axis, the inputs among them, and the rows the shapes are
    /// set for.
    runs: Vec<RunStep>,
    run_inputs: Vec<FedRows>,
    rows: usize,
    /// The buffer each step's value lives in (see `plan.rs`).
    buf_of: Vec<u32>,
    /// Whether a step's value stays readable after a run (leaves, outputs, views of them).
    kept: Vec<bool>,
    /// The step whose buffer a step's value lives in (itself unless it is a view).
    root: Vec<usize>,
    /// The input a step overwrites in place, if it does.
    in_place: Vec<Option<usize>>,
    bufs: Vec<Vec<T>>,
    /// The input positions of every step, back to back; `ranges[i]` indexes into it.
    /// After the last step's: `(buffer's buffer, value's buffer, elements)` of each update
    /// a training run writes (see [`Graph::buffer`](crate::Graph::buffer)), kept here rather than in
    /// a field of their own so that the `Machine` value does not grow (on a device, its
    /// copies are on the stack).
    args: Vec<u32>,
    ranges: Vec<(u32, u32)>,
    /// Shared by all kernels, sized for the largest need (see `Op::scratch`).
    scratch: Vec<T>,
    rng: crate::rng::KernelRng,
    training: bool,
    memory: Memory,
    ran: bool,
    /// The `(x, dx)` pairs passed to `compile`.
    grads: GradHandles,
    /// Whether no `x` appears twice in `grads`.
    distinct: bool,
}

impl<T: Scalar> fmt::Debug for Machine<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Machine")
            .field("steps", &self.steps.len())
            .field("memory", &self.memory())
            .finish()
    }
}

/// One parameter and its gradient, handed out by [`Machine::for_each_pair`] for an
/// in-place update.
#[non_exhaustive]
pub struct ParamGrad<'a, T> {
    /// The pair's position in the gradients given (an optimizer's state index).
    pub index: usize,
    /// The parameter's name.
    pub name: &'a str,
    /// The parameter's current value, flat and row-major, to update in place.
    pub param: &'a mut [T],
    /// Its gradient from the last run, of the same length.
    pub grad: &'a [T],
}

impl<T: Scalar> Machine<T> {
    /// Runs the tape: every op, in order, on the current feeds and parameters. Allocates
    /// nothing. With inputs that have a run-time axis, it computes on the rows fed.
    ///
    /// # Errors
    /// [`Error::NotFed`] if an input was never fed; [`Error::Rows`] if inputs with a
    /// run-time axis were fed different numbers of rows; [`Error::Index`] if an id held
    /// in a tensor is out of range; [`Error::Empty`] for an `argmax` over no rows.
    #[track_caller]
    pub fn run(&mut self) -> Result<()> {
        // A run that fails part-way leaves a mix of old and new values: none is readable.
        self.ran = false;
        let rows = self.fed_rows(Caller::here())?;
        self.set_rows(rows);
        for i in 0..self.steps.len() {
            match &self.steps[i] {
                Step::Op(op) => {
                    // The plan never gives a step a buffer it reads, but the one input it
                    // overwrites in place (`in_out`, which the kernel then reads from the
                    // output), so the output buffer can be taken out while the inputs are
                    // borrowed.
                    let b = self.buf_of[i] as usize;
                    let mut out = mem::take(&mut self.bufs[b]);
                    let (lo, hi) = self.ranges[i];
                    let inputs = Inputs {
                        bufs: &self.bufs,
                        buf_of: &self.buf_of,
                        numel: &self.numel,
                        shapes: &self.shapes,
                        args: &self.args[lo as usize..hi as usize],
                        in_out: self.in_place[i],
                    };
                    let mut o = Out {
                        data: &mut out[..self.numel[i]],
                        shape: &self.shapes[i],
                        scratch: &mut self.scratch,
                        rng: &mut self.rng,
                        training: self.training,
                        rows: self.rows,
                    };
                    let r = op.forward(&inputs, &mut o);
                    self.bufs[b] = out;
                    if let Err(e) = r {
                        return Err(located(e, op.name(), self.callers[i]));
                    }
                }
                Step::Input {
                    name, fed: false, ..
                } => {
                    return Err(Error::NotFed {
                        name: name.clone(),
                        declared: self.callers[i],
                    });
                }
                _ => {}
            }
        }
        if self.training {
            self.write_updates();
        }
        self.ran = true;
        Ok(())
    }

    /// Copies each update's value into its buffer: `compile` put `(buffer's buffer,
    /// value's buffer, elements)` after the steps' arguments (the plan pins update values,
    /// so no step writes them after the value is computed; the two may be one buffer, if
    /// the update was computed in place, and the copy then changes nothing).
    fn write_updates(&mut self) {
        let mut k = self.ranges.last().map_or(0, |r| r.1 as usize);
        // element by element: the smallest code (a few values per channel to copy)
        while let Some(t) = self.args.get(k..k + 3) {
            let (dst, src) = (t[0] as usize, t[1] as usize);
            for j in 0..t[2] as usize {
                self.bufs[dst][j] = self.bufs[src][j];
            }
            k += 3;
        }
    }

    /// The current value of a compiled node.
    ///
    /// # Errors
    /// [`Error::NotCompiled`] / [`Error::WrongGraph`] if the machine does not hold it;
    /// [`Error::NotKept`] for an intermediate value whose buffer the plan reuses (pass it
    /// to `compile` as an output to keep it); [`Error::NotRun`] for an op's value before
    /// a successful [`run`](Machine::run).
    #[track_caller]
    pub fn value(&self, t: impl AsHandle) -> Result<ArrayViewD<'_, T>> {
        let caller = Caller::here();
        let i = self.position(&t, caller)?;
        self.readable(i, caller)?;
        Ok(view(&self.shapes[i], self.data(i)))
    }

    /// The value of a one-element node (a loss), as a number: PyTorch's `loss.item()`.
    ///
    /// # Errors
    /// As for [`value`](Machine::value), and [`Error::NotScalar`] if it has more elements.
    #[track_caller]
    pub fn item(&self, t: impl AsHandle) -> Result<T> {
        let caller = Caller::here();
        let i = self.position(&t, caller)?;
        self.readable(i, caller)?;
        match self.data(i) {
            &[x] => Ok(x),
            _ => Err(Error::NotScalar {
                op: "item",
                shape: self.shapes[i].clone(),
                caller,
            }),
        }
    }

    /// The handle of the input, parameter or buffer called `name`.
    ///
    /// # Errors
    /// [`Error::UnknownName`] if the machine holds no such input, parameter or buffer.
    #[track_caller]
    pub fn handle_of(&self, name: &str) -> Result<Handle> {
        let caller = Caller::here();
        let found = self.steps.iter().position(|s| match s {
            Step::Input { name: n, .. }
            | Step::Param { name: n, .. }
            | Step::Buffer { name: n } => n == name,
            _ => false,
        });
        let i = found.ok_or_else(|| Error::UnknownName {
            name: name.to_string(),
            caller,
        })?;
        let id = self
            .slot
            .iter()
            .position(|&s| s as usize == i)
            .unwrap_or_default();
        Ok(Handle {
            graph: self.graph,
            id: crate::graph::NodeId(id as u32),
        })
    }

    /// Whether this machine holds node `t` (it was compiled with `t` or something that
    /// needs it).
    pub fn holds(&self, t: impl AsHandle) -> bool {
        let h = t.as_handle();
        h.graph == self.graph && self.slot.get(h.id.index()).is_some_and(|&s| s != ABSENT)
    }

    /// How PyTorch stores parameter `name` (see `WeightMap::torch`).
    pub(crate) fn layout_of(&self, name: &str) -> crate::weights::Layout {
        self.steps
            .iter()
            .find_map(|s| match s {
                Step::Param { name: n, layout } if n == name => Some(*layout),
                _ => None,
            })
            .unwrap_or(crate::weights::Layout::ByName)
    }

    /// The state of the machine's random numbers (dropout masks), for a checkpoint.
    pub(crate) fn rng_state(&self) -> u64 {
        self.rng.state()
    }

    /// Restores a state from [`rng_state`](Machine::rng_state).
    pub(crate) fn set_rng_state(&mut self, state: u64) {
        // SplitMix64's whole state is its counter: seeding with it resumes the stream
        self.rng = crate::rng::KernelRng::new(state);
    }

    /// Names and shapes of the parameters this machine holds, in declaration order.
    pub fn params(&self) -> impl Iterator<Item = (&str, &Shape)> + '_ {
        self.steps
            .iter()
            .zip(&self.shapes)
            .filter_map(|(s, sh)| match s {
                Step::Param { name, .. } => Some((name.as_str(), sh)),
                _ => None,
            })
    }

    /// Names and shapes of the buffers this machine holds (non-trainable state such as
    /// batch norm's running statistics: see [`Graph::buffer`](crate::Graph::buffer)), in
    /// declaration order. Read one with `m.value(m.handle_of(name)?)`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let bn = tapegrad::nn::BatchNorm1d::new(&g, "bn", 3);
    /// let x = g.input("x", (Dim::upto(8), 3));
    /// let m = g.compile(&[bn.forward(x)], &[])?;
    /// let names: Vec<&str> = m.buffers().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["bn.running_mean", "bn.running_var"]);
    /// let var = m.value(m.handle_of("bn.running_var")?)?;
    /// assert_eq!(var.as_slice(), Some(&[1.0, 1.0, 1.0][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    pub fn buffers(&self) -> impl Iterator<Item = (&str, &Shape)> + '_ {
        self.steps
            .iter()
            .zip(&self.shapes)
            .filter_map(|(s, sh)| match s {
                Step::Buffer { name } => Some((name.as_str(), sh)),
                _ => None,
            })
    }

    /// Names and shapes of the parameters and buffers, in declaration order: what
    /// [`save`](Machine::save) writes and [`load`](Machine::load) reads.
    pub(crate) fn state(&self) -> impl Iterator<Item = (&str, &Shape)> + '_ {
        self.steps
            .iter()
            .zip(&self.shapes)
            .filter_map(|(s, sh)| match s {
                Step::Param { name, .. } | Step::Buffer { name } => Some((name.as_str(), sh)),
                _ => None,
            })
    }

    /// Copies every parameter and buffer of `other` that this machine also holds (by name
    /// and kind), for instance from a training machine into an evaluation machine of the
    /// same graph (the running statistics of a batch norm come along). Returns the names
    /// copied, in `other`'s declaration order; one of only one of the machines is left
    /// alone.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let w = g.param("w", tapegrad::ndarray::arr1(&[1.0, 2.0]));
    /// let train = g.compile(&[w.sum()], &[])?;
    /// let mut eval = g.compile(&[w.sum()], &[])?;
    /// assert_eq!(eval.copy_params_from(&train)?, ["w"]);
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Feed`] if a parameter of the same name has another shape;
    /// [`Error::Mismatch`] if no parameter name is common to both machines (a machine of
    /// another model, or parameters named differently). Nothing is copied on an error.
    #[track_caller]
    pub fn copy_params_from(&mut self, other: &Machine<T>) -> Result<Vec<String>> {
        let caller = Caller::here();
        // (this machine's step, other's step) for every shared name; check all before
        // copying any, so that an error leaves this machine as it was
        let mut pairs = Vec::new();
        for (j, step) in other.steps.iter().enumerate() {
            let (Step::Param { name, .. } | Step::Buffer { name }) = step else {
                continue;
            };
            let buffer = matches!(step, Step::Buffer { .. });
            let mine = self.steps.iter().position(|s| match s {
                Step::Param { name: n, .. } => !buffer && n == name,
                Step::Buffer { name: n } => buffer && n == name,
                _ => false,
            });
            if let Some(i) = mine {
                if self.shapes[i] != other.shapes[j] {
                    return Err(self.feed_error(i, other.shapes[j].clone(), caller));
                }
                pairs.push((i, j));
            }
        }
        if pairs.is_empty() {
            let names = |m: &Machine<T>| {
                let v: Vec<&str> = m.params().map(|(n, _)| n).collect();
                if v.is_empty() {
                    String::from("none")
                } else {
                    alloc::format!("{v:?}")
                }
            };
            return Err(Error::Mismatch {
                what: "copy_params_from",
                reason: alloc::format!(
                    "no parameter name is common to both machines, so nothing was copied \
                     (the source holds {}, this machine holds {}): are they machines of \
                     the same model?",
                    names(other),
                    names(self)
                ),
                caller,
            });
        }
        let mut copied = Vec::with_capacity(pairs.len());
        for (i, j) in pairs {
            let b = self.buf_of[i] as usize;
            self.bufs[b][..self.numel[i]].copy_from_slice(other.data(j));
            if let Step::Param { name, .. } | Step::Buffer { name } = &other.steps[j] {
                copied.push(name.clone());
            }
        }
        Ok(copied)
    }

    /// Every byte of the heap this machine holds, by role (see [`Memory`]): its buffers,
    /// and the tape's own tables in [`Memory::metadata`]. Known once `compile` returns,
    /// before anything runs, and unchanged by feeding and running.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.input("x", [4, 3]);
    /// let w = g.param("w", init::zeros([3, 2])?);
    /// let m = g.compile(&[x.matmul(w)], &[])?;
    /// let mem = m.memory();
    /// assert_eq!((mem.inputs, mem.params, mem.outputs), (48, 24, 32));
    /// assert!(mem.metadata > 0);
    /// assert_eq!(mem.total(), mem.buffers() + mem.metadata);
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    pub fn memory(&self) -> Memory {
        Memory {
            metadata: self.metadata_bytes(),
            ..self.memory
        }
    }

    /// Training mode or evaluation mode: ops such as [`dropout`](crate::Tensor::dropout)
    /// behave differently. A machine starts in training mode if it was compiled with
    /// gradient outputs (the `grads` of [`Graph::compile`](crate::Graph::compile)), and
    /// in evaluation mode if not.
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// Whether the machine is in training mode (see
    /// [`set_training`](Machine::set_training)).
    pub fn training(&self) -> bool {
        self.training
    }

    /// Reseeds the machine's random numbers (dropout masks); a new machine starts from
    /// seed 0, so runs are reproducible.
    pub fn seed(&mut self, seed: u64) {
        self.rng = crate::rng::KernelRng::new(seed);
    }

    /// The number of steps on the tape (leaves included).
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether the tape is empty.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// A kept output's buffer, writable (gradient clipping scales gradients in place).
    pub(crate) fn output_mut(&mut self, t: &impl AsHandle, caller: Caller) -> Result<&mut [T]> {
        let i = self.position(t, caller)?;
        self.readable(i, caller)?;
        // a view writes into its root's buffer, which must not be a leaf's
        if !matches!(self.steps[self.root[i]], Step::Op(_)) {
            return Err(Error::WrongKind {
                expected: "op output",
                got: self.steps[self.root[i]].kind(),
                caller,
            });
        }
        Ok(self.data_mut(i))
    }

    fn data(&self, i: usize) -> &[T] {
        &self.bufs[self.buf_of[i] as usize][..self.numel[i]]
    }

    fn data_mut(&mut self, i: usize) -> &mut [T] {
        &mut self.bufs[self.buf_of[i] as usize][..self.numel[i]]
    }

    fn position(&self, node: &impl AsHandle, caller: Caller) -> Result<usize> {
        let h = node.as_handle();
        if h.graph != self.graph {
            return Err(Error::WrongGraph {
                op: "machine",
                caller,
            });
        }
        match self.slot.get(h.id.index()) {
            Some(&s) if s != ABSENT => Ok(s as usize),
            _ => Err(Error::NotCompiled {
                op: node.op_name(),
                node: h.id.0,
                caller,
            }),
        }
    }

    /// Checks that step `i` holds its own value after a run.
    fn readable(&self, i: usize, caller: Caller) -> Result<()> {
        let op = self.steps[i].kind();
        if !self.kept[i] {
            return Err(Error::NotKept { op, caller });
        }
        if matches!(self.steps[i], Step::Op(_) | Step::View(_)) && !self.ran {
            return Err(Error::NotRun { op, caller });
        }
        Ok(())
    }

    fn expect_kind(&self, i: usize, expected: &'static str, caller: Caller) -> Result<()> {
        let got = self.steps[i].kind();
        if got == expected {
            Ok(())
        } else {
            Err(Error::WrongKind {
                expected,
                got,
                caller,
            })
        }
    }
}
