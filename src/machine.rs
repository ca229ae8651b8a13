//! The tape machine: `compile` copies the nodes some outputs need out of the graph, in
//! arena (topological) order, and gives each a buffer; `run` executes the tape again and
//! again on new feeds without allocating.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::mem;

use ndarray::{ArrayBase, ArrayViewD, Data, Dimension};

use crate::error::{Caller, Error, Result};
use crate::grads::{AsGrads, GradHandles};
use crate::graph::{AsHandle, Handle};
use crate::ops::{view, Inputs, Op, Out};
use crate::scalar::Scalar;
use crate::shape::Shape;
use crate::shared::Shared;

mod compile;

const ABSENT: u32 = u32::MAX;

enum Step<T: Scalar> {
    Input {
        name: String,
        fed: bool,
    },
    Param {
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
    graph: u32,
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

/// Bytes held by a machine's buffers, by role, after buffer planning; and what the same
/// tape would take with every node in a buffer of its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Parameters.
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
    /// The total without planning: every node its own buffer (and the same scratch).
    pub unplanned: usize,
}

impl Memory {
    /// The bytes held, all roles together.
    pub fn total(&self) -> usize {
        self.params
            + self.inputs
            + self.constants
            + self.grads
            + self.outputs
            + self.workspace
            + self.scratch
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
        self.ran = true;
        Ok(())
    }

    /// Copies `data` into input `x`; its shape must be the one declared, but for a
    /// run-time axis, which takes any number of rows up to its bound.
    ///
    /// # Errors
    /// [`Error::Feed`] for a wrong shape, [`Error::WrongKind`] if `x` is not an input,
    /// [`Error::NotCompiled`] / [`Error::WrongGraph`] if the machine does not hold `x`.
    #[track_caller]
    pub fn feed<S, D>(&mut self, x: impl AsHandle, data: &ArrayBase<S, D>) -> Result<()>
    where
        S: Data<Elem = T>,
        D: Dimension,
    {
        let caller = Caller::here();
        let i = self.position(&x, caller)?;
        self.expect_kind(i, "input", caller)?;
        let d = data.shape();
        if let Some(run) = self.input_run(i) {
            let expected = &self.shapes[i].dims()[1..];
            if d.is_empty() || d[0] > run.bound || &d[1..] != expected {
                return Err(self.feed_error(i, Shape::from(d), caller));
            }
            self.write_flat(i, d[0] * run.row_len, data);
            self.fed(i, d[0], caller);
            return Ok(());
        }
        self.write(i, data, caller)?;
        self.fed(i, 0, caller);
        Ok(())
    }

    /// Marks input `i` fed (with `rows` rows for one with a run-time axis).
    fn fed(&mut self, i: usize, rows: usize, caller: Caller) {
        if let Step::Input { fed, .. } = &mut self.steps[i] {
            *fed = true;
        }
        let mut row_len = None;
        if let Some(r) = self.run_inputs.iter_mut().find(|r| r.step as usize == i) {
            r.rows = rows;
            r.at = Some(caller);
            row_len = Some(r.row_len);
        }
        if let Some(len) = row_len {
            // read back as fed, before the next run sets every other shape
            self.shapes[i].set_dim(0, rows);
            self.numel[i] = rows * len;
        }
    }

    fn input_run(&self, i: usize) -> Option<FedRows> {
        self.run_inputs
            .iter()
            .find(|r| r.step as usize == i)
            .copied()
    }

    /// The rows every input with a run-time axis was fed (the current rows if none has
    /// one).
    fn fed_rows(&self, caller: Caller) -> Result<usize> {
        let mut first: Option<(usize, FedRows)> = None;
        for r in &self.run_inputs {
            let i = r.step as usize;
            if !matches!(self.steps[i], Step::Input { fed: true, .. }) {
                continue;
            }
            match first {
                None => first = Some((i, *r)),
                Some((j, f)) if f.rows != r.rows => {
                    let name = |k: usize| match &self.steps[k] {
                        Step::Input { name, .. } => name.clone(),
                        _ => String::new(),
                    };
                    return Err(Error::Rows {
                        first: name(j),
                        first_rows: f.rows,
                        first_fed_at: f.at.unwrap_or(caller),
                        second: name(i),
                        second_rows: r.rows,
                        second_fed_at: r.at.unwrap_or(caller),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(first.map_or(self.rows, |(_, f)| f.rows))
    }

    /// Sets every shape with a run-time axis for `rows` rows (no allocation).
    fn set_rows(&mut self, rows: usize) {
        if rows == self.rows {
            return;
        }
        self.rows = rows;
        for r in &self.runs {
            let i = r.step as usize;
            self.shapes[i].set_dim(r.axis as usize, rows * r.per_row);
            self.numel[i] = self.shapes[i].numel();
        }
    }

    /// The rows the machine computed on in its last run, or will compute on: for a
    /// machine with no input with a run-time axis, the bound of its other shapes that
    /// have one, and 0 if no shape has one.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Copies a flat row-major slice into input `x`; its length must be the element count.
    ///
    /// # Errors
    /// As for [`feed`](Machine::feed).
    #[track_caller]
    pub fn feed_slice(&mut self, x: impl AsHandle, data: &[T]) -> Result<()> {
        let caller = Caller::here();
        let i = self.position(&x, caller)?;
        self.expect_kind(i, "input", caller)?;
        if let Some(run) = self.input_run(i) {
            let whole = data.len() % run.row_len.max(1) == 0;
            let rows = data.len() / run.row_len.max(1);
            if !whole || rows > run.bound || run.row_len == 0 && !data.is_empty() {
                return Err(self.feed_error(i, Shape::from([data.len()]), caller));
            }
            self.write_flat(i, data.len(), &ndarray::ArrayView1::from(data));
            self.fed(i, rows, caller);
            return Ok(());
        }
        if data.len() != self.numel[i] {
            return Err(self.feed_error(i, Shape::from([data.len()]), caller));
        }
        self.data_mut(i).copy_from_slice(data);
        self.fed(i, 0, caller);
        Ok(())
    }

    /// Feeds the input called `name`.
    ///
    /// # Errors
    /// [`Error::UnknownName`], and as for [`feed`](Machine::feed).
    #[track_caller]
    pub fn feed_named<S, D>(&mut self, name: &str, data: &ArrayBase<S, D>) -> Result<()>
    where
        S: Data<Elem = T>,
        D: Dimension,
    {
        let h = self.handle_of(name)?;
        self.feed(h, data)
    }

    /// Overwrites the value of parameter `p`.
    ///
    /// # Errors
    /// As for [`feed`](Machine::feed), with `p` a parameter.
    #[track_caller]
    pub fn set_param<S, D>(&mut self, p: impl AsHandle, data: &ArrayBase<S, D>) -> Result<()>
    where
        S: Data<Elem = T>,
        D: Dimension,
    {
        let caller = Caller::here();
        let i = self.position(&p, caller)?;
        self.expect_kind(i, "parameter", caller)?;
        self.write(i, data, caller)
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
        let v = self.value(t)?;
        match v.as_slice() {
            Some(&[x]) => Ok(x),
            _ => Err(Error::NotScalar {
                op: "item",
                shape: Shape::from(v.shape()),
                caller,
            }),
        }
    }

    /// The handle of the input or parameter called `name`.
    ///
    /// # Errors
    /// [`Error::UnknownName`] if the machine holds no such input or parameter.
    #[track_caller]
    pub fn handle_of(&self, name: &str) -> Result<Handle> {
        let caller = Caller::here();
        let found = self.steps.iter().position(|s| match s {
            Step::Input { name: n, .. } | Step::Param { name: n } => n == name,
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

    /// Names and shapes of the parameters this machine holds, in declaration order.
    pub fn params(&self) -> impl Iterator<Item = (&str, &Shape)> + '_ {
        self.steps
            .iter()
            .zip(&self.shapes)
            .filter_map(|(s, sh)| match s {
                Step::Param { name } => Some((name.as_str(), sh)),
                _ => None,
            })
    }

    /// Copies every parameter of `other` that this machine also holds (by name), for
    /// instance from a training machine into an evaluation machine of the same graph.
    /// Returns the names of the parameters copied, in `other`'s declaration order; a
    /// parameter of only one of the machines is left alone.
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
            let Step::Param { name } = step else { continue };
            let mine = self
                .steps
                .iter()
                .position(|s| matches!(s, Step::Param { name: n } if n == name));
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
            if let Step::Param { name } = &other.steps[j] {
                copied.push(name.clone());
            }
        }
        Ok(copied)
    }

    /// Bytes held, by role, and what they would be without buffer planning.
    pub fn memory(&self) -> Memory {
        self.memory
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

    /// The `(x, dx)` pairs this machine was compiled with, as `'static` handles: keep a
    /// clone beside a machine stored away from its graph, to step it.
    pub fn grads(&self) -> &GradHandles {
        &self.grads
    }

    /// Calls `f` with each parameter of `grads` (mutable, in place) and its gradient from
    /// the last run, in order: the door for an optimizer written outside the crate.
    /// Allocates nothing; every pair is checked before `f` is first called, so on an
    /// error nothing has been handed out. Capture hyper-parameters by value (a `move`
    /// closure): a value read through a captured reference may alias the parameter being
    /// written, so the compiler reloads it every element and cannot vectorize the loop
    /// (measured on the L configuration's SGD: 5× slower).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f64>::new();
    /// let w = g.param("w", tapegrad::ndarray::arr1(&[1.0, -2.0]));
    /// let loss = (w * w).sum(); // gradient 2w
    /// let grads = g.grad(loss, &[w])?;
    /// let mut m = g.compile(&[loss], &grads)?;
    /// m.run()?;
    /// // sign-SGD: p -= lr * sign(g)
    /// let lr = 0.5;
    /// m.for_each_pair(&grads, move |pg| {
    ///     for (p, &d) in pg.param.iter_mut().zip(pg.grad) {
    ///         *p -= lr * d.signum();
    ///     }
    /// })?;
    /// assert_eq!(m.value(w)?.as_slice(), Some(&[0.5, -1.5][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Mismatch`] if a pair is not one this machine was compiled with (pass the
    /// same gradients to `compile`) or a parameter appears twice; [`Error::WrongKind`] if
    /// an `x` is not a parameter; [`Error::NotRun`] before a successful run;
    /// [`Error::WrongGraph`] for gradients of another graph.
    #[track_caller]
    pub fn for_each_pair<G: AsGrads + ?Sized>(
        &mut self,
        grads: &G,
        f: impl FnMut(ParamGrad<'_, T>),
    ) -> Result<()> {
        let caller = Caller::here();
        let pairs = grads.grad_pairs();
        self.check_pairs(pairs, "for_each_pair", caller)?;
        self.each_pair(pairs, caller, f)
    }

    /// Checks that `pairs` can be stepped: each one this machine was compiled with, its
    /// `x` a parameter, no parameter twice, after a run. Allocates only to report an
    /// error.
    pub(crate) fn check_pairs(
        &self,
        pairs: &[(Handle, Handle)],
        what: &'static str,
        caller: Caller,
    ) -> Result<()> {
        let compiled = self.grads.grad_pairs();
        // the usual case, the compiled pairs themselves, is linear
        let same = pairs == compiled;
        for (k, pair) in pairs.iter().enumerate() {
            let (x, dx) = *pair;
            for h in [x, dx] {
                if h.graph != self.graph {
                    return Err(Error::WrongGraph { op: what, caller });
                }
            }
            if !same && !compiled.contains(pair) {
                return Err(Error::Mismatch {
                    what,
                    reason: alloc::format!(
                        "the gradient given for {} was not compiled into this machine as \
                         its gradient: pass the same `grads` to `compile` and to the step",
                        self.describe(x)
                    ),
                    caller,
                });
            }
            let (i, j) = (self.position(&x, caller)?, self.position(&dx, caller)?);
            self.expect_kind(i, "parameter", caller)?;
            self.readable(j, caller)?;
            if self.buf_of[i] == self.buf_of[j] {
                return Err(Error::Mismatch {
                    what,
                    reason: alloc::format!(
                        "the gradient of {} shares its buffer",
                        self.describe(x)
                    ),
                    caller,
                });
            }
            if !(same && self.distinct) && pairs[..k].iter().any(|p| p.0 == x) {
                return Err(Error::Mismatch {
                    what,
                    reason: alloc::format!("{} appears twice", self.describe(x)),
                    caller,
                });
            }
        }
        if !pairs.is_empty() && !self.ran {
            return Err(Error::NotRun {
                op: "gradient",
                caller,
            });
        }
        Ok(())
    }

    /// The name and element count of parameter `x` (after [`check_pairs`]).
    pub(crate) fn param_info(&self, x: Handle, caller: Caller) -> Result<(&str, usize)> {
        let i = self.position(&x, caller)?;
        match &self.steps[i] {
            Step::Param { name } => Ok((name, self.numel[i])),
            s => Err(Error::WrongKind {
                expected: "parameter",
                got: s.kind(),
                caller,
            }),
        }
    }

    /// Calls `f` on each pair of `pairs`, already checked with [`check_pairs`].
    pub(crate) fn each_pair(
        &mut self,
        pairs: &[(Handle, Handle)],
        caller: Caller,
        mut f: impl FnMut(ParamGrad<'_, T>),
    ) -> Result<()> {
        for (index, (x, dx)) in pairs.iter().enumerate() {
            let (i, j) = (self.position(x, caller)?, self.position(dx, caller)?);
            let (bi, bj) = (self.buf_of[i] as usize, self.buf_of[j] as usize);
            let Step::Param { name } = &self.steps[i] else {
                continue;
            };
            if bi == bj {
                continue;
            }
            // `bi != bj`, so the two buffers are distinct elements of `bufs`.
            let (pbuf, gbuf) = if bi < bj {
                let (lo, hi) = self.bufs.split_at_mut(bj);
                (&mut lo[bi], &hi[0])
            } else {
                let (lo, hi) = self.bufs.split_at_mut(bi);
                (&mut hi[0], &lo[bj])
            };
            f(ParamGrad {
                index,
                name,
                param: &mut pbuf[..self.numel[i]],
                grad: &gbuf[..self.numel[j]],
            });
        }
        Ok(())
    }

    /// `parameter "w"`, or the node's kind and id, for messages.
    fn describe(&self, x: Handle) -> alloc::string::String {
        match self.slot.get(x.id.index()).map(|&s| s as usize) {
            Some(i) if i < self.steps.len() => match &self.steps[i] {
                Step::Param { name } => alloc::format!("parameter {name:?}"),
                Step::Input { name, .. } => alloc::format!("input {name:?}"),
                s => alloc::format!("node {} (`{}`)", x.id.0, s.kind()),
            },
            _ => alloc::format!("node {}", x.id.0),
        }
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

    fn feed_error(&self, i: usize, got: Shape, caller: Caller) -> Error {
        let name = match &self.steps[i] {
            Step::Input { name, .. } | Step::Param { name } => name.clone(),
            s => s.kind().to_string(),
        };
        let expected = match self.input_run(i) {
            Some(r) => Shape::upto(r.bound, &self.shapes[i].dims()[1..]),
            None => self.shapes[i].clone(),
        };
        Error::Feed {
            name,
            expected,
            got,
            caller,
        }
    }

    /// Copies the `len` elements of `data` to the front of step `i`'s buffer (an input
    /// with a run-time axis; its buffer holds the bound).
    fn write_flat<S, D>(&mut self, i: usize, len: usize, data: &ArrayBase<S, D>)
    where
        S: Data<Elem = T>,
        D: Dimension,
    {
        let b = self.buf_of[i] as usize;
        let dst = &mut self.bufs[b][..len];
        match data.as_slice() {
            Some(s) => dst.copy_from_slice(s),
            None => {
                for (b, &v) in dst.iter_mut().zip(data.iter()) {
                    *b = v;
                }
            }
        }
    }

    fn write<S, D>(&mut self, i: usize, data: &ArrayBase<S, D>, caller: Caller) -> Result<()>
    where
        S: Data<Elem = T>,
        D: Dimension,
    {
        if data.shape() != self.shapes[i].dims() {
            return Err(self.feed_error(i, Shape::from(data.shape()), caller));
        }
        let dst = self.data_mut(i);
        match data.as_slice() {
            Some(s) => dst.copy_from_slice(s),
            None => {
                for (b, &v) in dst.iter_mut().zip(data.iter()) {
                    *b = v;
                }
            }
        }
        Ok(())
    }
}
