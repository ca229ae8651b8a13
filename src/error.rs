//! The crate's error type.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::panic::Location;

use crate::num::{Num, Sci};
use crate::shape::Shape;

/// Where in the user's code a call was made (from `#[track_caller]`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// Source file of the call.
    pub file: &'static str,
    /// Line of the call.
    pub line: u32,
    /// Column of the call.
    pub column: u32,
}

impl Caller {
    /// The location of the caller of the `#[track_caller]` function this is called in.
    #[track_caller]
    pub fn here() -> Self {
        Self::from(Location::caller())
    }
}

impl From<&'static Location<'static>> for Caller {
    fn from(l: &'static Location<'static>) -> Self {
        Caller {
            file: l.file(),
            line: l.line(),
            column: l.column(),
        }
    }
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Everything that can go wrong in tapegrad. Nothing a user passes makes the crate panic;
/// it returns one of these instead. Its `Debug` is its message, as `Display` writes it
/// (so that `fn main() -> Result<(), Error>` and `unwrap` print the message, and a
/// program links no float formatting for it).
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// An op was recorded with operands whose shapes it cannot take.
    Shape {
        /// The op's name (`"matmul"`, `"add"`, ...).
        op: &'static str,
        /// The shapes of the operands, in argument order.
        shapes: Vec<Shape>,
        /// What is wrong, in words.
        reason: String,
        /// Where the op was recorded.
        caller: Caller,
    },
    /// A tensor of one graph was used with a tensor or machine of another.
    WrongGraph {
        /// The op or call that mixed graphs.
        op: &'static str,
        /// Where it was called.
        caller: Caller,
    },
    /// A parameter or input name was used twice in one graph.
    DuplicateName {
        /// The name.
        name: String,
        /// Where the second one was declared.
        caller: Caller,
    },
    /// An operation needed a scalar (one-element) tensor.
    NotScalar {
        /// What needed it.
        op: &'static str,
        /// The shape it got.
        shape: Shape,
        /// Where it was called.
        caller: Caller,
    },
    /// A value fed or written has the wrong shape or size.
    Feed {
        /// The name of the input or parameter.
        name: String,
        /// The shape the graph declared.
        expected: Shape,
        /// The shape (or, for flat slices, `[len]`) that was given.
        got: Shape,
        /// Where it was called.
        caller: Caller,
    },
    /// The node is of the wrong kind for the call (feeding a parameter, for instance).
    WrongKind {
        /// What the call needs (`"input"`, `"parameter"`).
        expected: &'static str,
        /// What the node is.
        got: &'static str,
        /// Where it was called.
        caller: Caller,
    },
    /// The node is not part of the compiled machine.
    NotCompiled {
        /// The node's op.
        op: &'static str,
        /// The node's id in its graph.
        node: u32,
        /// Where it was called.
        caller: Caller,
    },
    /// No parameter or input has this name.
    UnknownName {
        /// The name asked for.
        name: String,
        /// Where it was called.
        caller: Caller,
    },
    /// `run` was called before an input was fed.
    NotFed {
        /// The input's name.
        name: String,
        /// Where the input was declared ([`Graph::input`](crate::Graph::input)).
        declared: Caller,
    },
    /// An intermediate value was read whose buffer the machine reuses during a run.
    NotKept {
        /// The node's op.
        op: &'static str,
        /// Where it was called.
        caller: Caller,
    },
    /// A value was read before the machine ran.
    NotRun {
        /// The node's op.
        op: &'static str,
        /// Where it was called.
        caller: Caller,
    },
    /// Inputs with a run-time axis were fed different numbers of rows before a run; all
    /// of them take the same number of rows in one run.
    Rows {
        /// One input's name.
        first: String,
        /// The rows it was fed.
        first_rows: usize,
        /// Where it was fed.
        first_fed_at: Caller,
        /// Another input, fed another number of rows.
        second: String,
        /// The rows it was fed.
        second_rows: usize,
        /// Where it was fed.
        second_fed_at: Caller,
    },
    /// An integer id held in a tensor (a class id, a row id) is out of range or not a
    /// whole number. Found while running: the kernel reports the id and its position, and
    /// [`Machine::run`](crate::Machine::run) adds the op and where it was recorded.
    Index {
        /// The op that read the id (`"cross_entropy"`, `"index_select"`, ...).
        op: &'static str,
        /// What the id counts: `"class"` (cross_entropy, one_hot) or `"row"`
        /// (index_select, scatter_add).
        of: &'static str,
        /// The value found (NaN for a NaN id).
        value: f64,
        /// Its flat, row-major position in the tensor of ids (the row, for ids `[N]`).
        position: usize,
        /// The number of classes or rows: valid ids are `0..bound`.
        bound: usize,
        /// Where the op was recorded; `None` only for an error straight from a kernel,
        /// before `run` fills it in. For a gradient op, where the op it differentiates
        /// was recorded.
        caller: Option<Caller>,
    },
    /// A kernel found nothing to compute on where it needs something: an
    /// [`argmax`](crate::Tensor::argmax) over a run-time axis fed no rows, or a
    /// [`batch_norm`](crate::Tensor::batch_norm) in training mode over at most one value
    /// per channel (PyTorch's "Expected more than 1 value per channel when training").
    /// Found while running; [`Machine::run`](crate::Machine::run) adds where the op was
    /// recorded. (One variant for both keeps `Error`, and every binary, small.)
    Empty {
        /// The op (`"argmax"`, `"argmin"`, `"batch_norm"`).
        op: &'static str,
        /// The axis that was empty.
        axis: usize,
        /// Where the op was recorded; `None` only for an error straight from a kernel.
        caller: Option<Caller>,
    },
    /// Gradient pairs do not fit: not the pairs a machine was compiled with, a parameter
    /// listed twice, or not the parameters (by name and size) an optimizer's state was
    /// made for.
    Mismatch {
        /// The call that found it (`"Sgd::step"`).
        what: &'static str,
        /// Details.
        reason: String,
        /// Where it was called.
        caller: Caller,
    },
    /// An optimizer or other setting is invalid (negative learning rate, NaN, ...).
    InvalidArgument {
        /// The setting.
        what: &'static str,
        /// Details.
        reason: String,
    },
    /// A gradient check found the analytic gradient far from the numeric one.
    GradCheck {
        /// Which input (position in the list given).
        input: usize,
        /// Flat index of the element.
        index: usize,
        /// The graph's gradient.
        analytic: f64,
        /// The central finite difference.
        numeric: f64,
    },
    /// Reading or writing a file failed (no such directory, permission denied, disk full).
    Io {
        /// The file.
        path: String,
        /// What the operating system said.
        reason: String,
        /// Where it was called.
        caller: Caller,
    },
    /// A machine does not fit the byte budget given to
    /// [`Graph::compile_within`](crate::Graph::compile_within), or (from
    /// [`Graph::compile`](crate::Graph::compile), with a budget of `isize::MAX`) is larger
    /// than any allocation may be. Nothing was allocated for its values.
    Budget {
        /// The budget, in bytes.
        budget: usize,
        /// The bytes the machine needs: `memory.total()`, `usize::MAX` if more than a
        /// `usize` counts.
        needed: usize,
        /// The bytes it needs, by role.
        memory: crate::Memory,
        /// Where it was compiled.
        caller: Caller,
    },
    /// A constructor, an op or a machine would hold more bytes than
    /// [`max_bytes`](crate::max_bytes) allows (`isize::MAX` unless set lower), or the
    /// system refused an allocation under that limit. Nothing was allocated for it.
    TooLarge {
        /// The op or constructor (`"input"`, `"init::zeros"`, `"compile"`, ...).
        what: &'static str,
        /// The shape asked for; for an op, its inputs' shapes, then the result's; none
        /// for a machine.
        shapes: Vec<Shape>,
        /// The bytes asked for, `usize::MAX` if more than a `usize` counts. For a shape
        /// with an empty axis, the bytes of its non-empty extents: they bound its strides.
        bytes: usize,
        /// The limit in force; `bytes <= limit` when the system refused the allocation.
        limit: usize,
        /// Where it was called.
        caller: Caller,
    },
    /// Weights are not a valid safetensors file: empty, cut short, or not safetensors at
    /// all. Nothing was loaded.
    WeightsFormat {
        /// The file, or `"<bytes>"` for an in-memory buffer.
        origin: String,
        /// What is wrong, in words.
        reason: String,
        /// Where it was called.
        caller: Caller,
    },
    /// An ONNX model could not be read or imported (feature `onnx`): bytes that are not a
    /// model, an opset or domain outside the supported range, an operator or attribute
    /// the importer does not support, or a node whose shapes do not fit.
    #[cfg(feature = "onnx")]
    Onnx {
        /// The node's operator (`"Conv"`), or empty for the model as a whole.
        op: String,
        /// The node's name (or `#i`, its position, when unnamed), or empty for the model.
        node: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// A tensor in a weights file does not fit the machine: missing, of another shape or
    /// dtype, or (when loading strictly) not a parameter of the machine. Nothing was loaded.
    Weights {
        /// The tensor's name in the file.
        name: String,
        /// What the machine needs, as `"f32 [16, 4]"`, or `"no tensor"` for an extra one.
        expected: String,
        /// What the file holds, as `"f64 [16, 4]"`, or `"no tensor"` for a missing one.
        found: String,
        /// Where it was called.
        caller: Caller,
    },
}

impl Error {
    /// A kernel's data error located at the step that ran it: an [`Error::Index`] gets the
    /// op's name and where it was recorded (a kernel cannot know either).
    pub(crate) fn at_step(self, step_op: &'static str, recorded: Caller) -> Error {
        match self {
            Error::Index {
                of,
                value,
                position,
                bound,
                caller,
                ..
            } => Error::Index {
                op: step_op,
                of,
                value,
                position,
                bound,
                caller: caller.or(Some(recorded)),
            },
            Error::Empty { op, axis, caller } => Error::Empty {
                op,
                axis,
                caller: caller.or(Some(recorded)),
            },
            e => e,
        }
    }
}

/// `core::result::Result` with [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

fn write_shapes(f: &mut fmt::Formatter<'_>, shapes: &[Shape]) -> fmt::Result {
    for (i, s) in shapes.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{s}")?;
    }
    Ok(())
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Shape {
                op,
                shapes,
                reason,
                caller,
            } => {
                write!(f, "shape error in `{op}` at {caller}: {reason} (shapes: ")?;
                write_shapes(f, shapes)?;
                f.write_str(")")
            }
            Error::WrongGraph { op, caller } => write!(
                f,
                "`{op}` at {caller} mixes tensors (or a machine) from different graphs"
            ),
            Error::DuplicateName { name, caller } => {
                write!(
                    f,
                    "the name {name:?} at {caller} is already used in this graph"
                )
            }
            Error::NotScalar { op, shape, caller } => write!(
                f,
                "`{op}` at {caller} needs a scalar (one-element) tensor, got shape {shape}"
            ),
            Error::Feed {
                name,
                expected,
                got,
                caller,
            } => write!(
                f,
                "value for {name:?} at {caller} has shape {got}, but the graph declared {expected}"
            ),
            Error::WrongKind {
                expected,
                got,
                caller,
            } => write!(
                f,
                "call at {caller} needs a(n) {expected}, but the node is a(n) {got}"
            ),
            Error::NotCompiled { op, node, caller } => write!(
                f,
                "node {node} (`{op}`) used at {caller} is not in this machine: \
                 add it (or something that needs it) to the outputs given to `compile`"
            ),
            Error::UnknownName { name, caller } => {
                write!(f, "no input or parameter is named {name:?} (at {caller})")
            }
            Error::NotFed { name, declared } => write!(
                f,
                "input {name:?} declared at {declared} was never fed: call `feed` before `run`"
            ),
            Error::NotKept { op, caller } => write!(
                f,
                "the value of `{op}` read at {caller} is not kept: its buffer is reused during \
                 a run; pass it to `compile` as an output to read it"
            ),
            Error::NotRun { op, caller } => write!(
                f,
                "the value of `{op}` was read at {caller} before the machine ran: call `run` first"
            ),
            Error::Rows {
                first,
                first_rows,
                first_fed_at,
                second,
                second_rows,
                second_fed_at,
            } => write!(
                f,
                "inputs with a run-time axis must be fed the same number of rows before a \
                 run, but {first:?} was fed {first_rows} rows at {first_fed_at} and \
                 {second:?} {second_rows} rows at {second_fed_at}"
            ),
            Error::Index {
                op,
                of,
                value,
                position,
                bound,
                caller,
            } => {
                write!(f, "`{op}`")?;
                if let Some(at) = caller {
                    write!(f, " recorded at {at}")?;
                }
                write!(f, ": {of} id {} at position {position} ", Num(*value))?;
                let plural = match (*bound, of.ends_with('s')) {
                    (1, _) => "",
                    (_, true) => "es",
                    _ => "s",
                };
                if value % 1.0 == 0.0 {
                    write!(f, "is out of range for {bound} {of}{plural}")?;
                } else {
                    write!(f, "is not a whole number")?;
                }
                write!(f, " (valid {of} ids: 0..{bound})")
            }
            Error::Empty { op, axis, caller } => {
                write!(f, "`{op}`")?;
                if let Some(at) = caller {
                    write!(f, " recorded at {at}")?;
                }
                if *op == "batch_norm" {
                    write!(
                        f,
                        ": expected more than 1 value per channel when training, as PyTorch \
                         (axis {axis} and the spatial axes hold at most one per channel in \
                         this run)"
                    )
                } else {
                    write!(f, ": axis {axis} has no rows to choose from")
                }
            }
            Error::Mismatch {
                what,
                reason,
                caller,
            } => write!(f, "{what} at {caller}: {reason}"),
            Error::InvalidArgument { what, reason } => write!(f, "invalid {what}: {reason}"),
            Error::GradCheck {
                input,
                index,
                analytic,
                numeric,
            } => write!(
                f,
                "gradient check failed for input {input} at flat index {index}: \
                 analytic {}, numeric {}",
                Sci(*analytic),
                Sci(*numeric)
            ),
            #[cfg(feature = "onnx")]
            Error::Onnx { op, reason, .. } if op.is_empty() => {
                write!(f, "ONNX model: {reason}")
            }
            #[cfg(feature = "onnx")]
            Error::Onnx { op, node, reason } => {
                write!(f, "ONNX node {node:?} ({op}): {reason}")
            }
            Error::Io {
                path,
                reason,
                caller,
            } => write!(f, "I/O error on {path:?} at {caller}: {reason}"),
            Error::Budget {
                budget,
                needed,
                memory: m,
                caller,
            } => write!(
                f,
                "the machine compiled at {caller} needs {}{needed} bytes but the budget is \
                 {budget}: {} bytes short (params {}, inputs {}, constants {}, grads {}, \
                 outputs {}, workspace {}, scratch {}, metadata {})",
                // a count that saturated
                if *needed == usize::MAX {
                    "more than "
                } else {
                    ""
                },
                needed.saturating_sub(*budget),
                m.params,
                m.inputs,
                m.constants,
                m.grads,
                m.outputs,
                m.workspace,
                m.scratch,
                m.metadata
            ),
            Error::TooLarge {
                what,
                shapes,
                bytes,
                limit,
                caller,
            } => {
                write!(f, "`{what}` at {caller} ")?;
                match (*bytes == usize::MAX, bytes > limit) {
                    (true, _) => f.write_str("needs more bytes than a usize counts")?,
                    (false, true) => write!(f, "needs {bytes} bytes")?,
                    (false, false) => write!(f, "could not allocate {bytes} bytes")?,
                }
                if !shapes.is_empty() {
                    f.write_str(" for shapes ")?;
                    write_shapes(f, shapes)?;
                }
                write!(
                    f,
                    "; the limit is {limit} bytes (`tapegrad::set_max_bytes`)"
                )
            }
            Error::WeightsFormat {
                origin,
                reason,
                caller,
            } => write!(
                f,
                "weights from {origin:?} loaded at {caller} are not a valid safetensors file \
                 (empty, cut short or corrupt): {reason}; nothing was loaded"
            ),
            Error::Weights {
                name,
                expected,
                found,
                caller,
            } => write!(
                f,
                "weights tensor {name:?} loaded at {caller}: expected {expected}, found \
                 {found}; nothing was loaded"
            ),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
