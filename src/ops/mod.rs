//! Ops: each a small type implementing [`Op`], with its `Tensor` method, kernel, VJP and
//! tests in one file. Wherever an axis is taken it may be negative (`-1` is the last;
//! see [`AxisArg`](crate::AxisArg)).
//!
//! | file            | ops |
//! |-----------------|-----|
//! | `binary.rs`     | add, sub, mul, div, maximum, minimum, gt, ge, lt, le, eq (broadcasting) |
//! | `unary.rs`      | neg, exp, log, sqrt, abs, square, tanh, sigmoid, relu, leaky_relu, gelu, powf |
//! | `select.rs`     | where_ (by a 0/1 mask, broadcasting); clamp, clamp_min, clamp_max (composites) |
//! | `reduce.rs`     | sum, mean, max, min (composite) over axes (keepdim) or over everything |
//! | `moments.rs`    | var, std with a `correction` (composites) |
//! | `argmax.rs`     | argmax, argmin along an axis (ids as `T`, no gradient) |
//! | `matmul.rs`     | matmul: 2-D × 2-D, 3-D × 3-D, 3-D × 2-D |
//! | `movement.rs`   | reshape, permute, broadcast_to, narrow, pad, concat, detach |
//! | `layout.rs`     | transpose(a, b), t, squeeze, unsqueeze, flatten, stack, split, split_sizes, chunk (composites) |
//! | `index.rs`      | index_select, scatter_add, one_hot |
//! | `nn.rs`         | softmax, log_softmax, mse (composites) |
//! | `loss.rs`       | cross_entropy (fused forward and gradient) |
//! | `conv.rs`       | conv1d, conv2d (zero padding, stride, dilation, groups; im2col + GEMM) and their input and weight gradients |
//! | `dropout.rs`    | dropout (mask drawn by the machine, training mode only) |
//! | `pool.rs`       | max_pool1d/2d, avg_pool1d/2d (a [`Window`]: kernel, stride, padding), adaptive_avg_pool1d/2d to 1 |
//! | `norm.rs`       | batch_norm (running statistics in buffers, by the machine's mode), layer_norm (composites) |
//!
//! Kernel helpers, no ops: `pairwise.rs` (the sums' pairwise summation), `strided.rs`
//! (strided copies with indices on the stack, allocation-free at any rank).

use alloc::vec::Vec;
use core::fmt::Debug;

use ndarray::{ArrayViewD, ArrayViewMutD};

use crate::error::Result;
use crate::graph::{Graph, Tensor};
use crate::scalar::Scalar;
use crate::shape::Shape;

mod argmax;
mod arith;
mod binary;
mod conv;
mod dropout;
mod index;
mod layout;
mod loss;
mod matmul;
mod moments;
mod movement;
mod nn;
mod norm;
mod pairwise;
mod pool;
mod reduce;
mod select;
mod strided;

pub(crate) use strided::gather_signed;
mod unary;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub(crate) mod vexp;

pub use binary::{Binary, BinaryFn};
pub use conv::{Conv, Conv1dOptions, Conv2dOptions, ConvBiasGrad, ConvInputGrad, ConvWeightGrad};
pub use pool::{Extent, Window};
pub use unary::{Unary, UnaryFn};

/// An operation on tensors. Implement it to add an op, and record it with
/// [`Graph::custom`]: the machine calls `forward` with buffers it owns, and
/// [`Graph::grad`](crate::Graph::grad) calls `vjp` to append the gradient as ordinary ops.
pub trait Op<T: Scalar>: Debug + Send + Sync + 'static {
    /// A short name used in errors (`"matmul"`).
    fn name(&self) -> &'static str;

    /// The shape rule: the output shape for these input shapes, or why they do not fit.
    /// This is the only place a shape error is produced.
    fn shape(&self, inputs: &[&Shape]) -> core::result::Result<Shape, alloc::string::String>;

    /// The kernel: reads the inputs, writes every element of `out`.
    ///
    /// # Errors
    /// Only for data that cannot be known while recording (an index out of range).
    fn forward(&self, inputs: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()>;

    /// The vector-Jacobian product: given the gradient of the output, the gradient of each
    /// input (or `None` where none flows), written with ordinary ops. A gradient may have
    /// the output's (broadcast) shape; it is summed back to the input's shape by the
    /// caller. One of a shape the input's does not broadcast to is a shape error located
    /// at the op.
    fn vjp<'g>(
        &self,
        inputs: &[Tensor<'g, T>],
        out: Tensor<'g, T>,
        grad_out: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>>;

    /// Whether the output is input 0's data unchanged (a reshape): the machine then
    /// shares that buffer and never calls `forward`. Recording a view whose shape does
    /// not hold exactly input 0's elements (or that has no input) is a shape error.
    fn is_view(&self) -> bool {
        false
    }

    /// Inputs (by position) whose buffer the kernel can overwrite with its output, in
    /// order of preference. When the planner uses one (the input's value dies here and
    /// has the output's size), [`Inputs::in_out`] names it and its values are already in
    /// the output buffer.
    fn in_place(&self, inputs: &[&Shape]) -> &'static [usize] {
        let _ = inputs;
        &[]
    }

    /// Whether this op takes inputs with a run-time axis (see [`Shape`] and
    /// [`Dim::upto`](crate::Dim::upto)). An op that does gives the output's run-time axis
    /// in its shape rule (the shapes it is given and returns hold that axis at its bound)
    /// and sizes its kernel's work from [`Inputs::shape`] and [`Out::shape`], which hold
    /// the rows fed in this run, never from shapes it stored. For an op that does not
    /// (the default), recording it on such an input is a shape error.
    fn takes_run_axis(&self) -> bool {
        false
    }

    /// Elements of scratch memory `forward` needs for these input shapes (packing buffers
    /// of a GEMM). The machine allocates the largest once, at compile time, and hands it
    /// to every kernel as [`Out::with_scratch`].
    fn scratch(&self, inputs: &[&Shape]) -> usize {
        let _ = inputs;
        0
    }

    /// Bytes the op itself holds on the heap beyond its own size (the storage of a
    /// `Vec` or [`Shape`] among its fields), which [`Machine::memory`](crate::Machine::memory)
    /// counts. The default, 0, is right for an op whose fields are plain numbers.
    fn heap_bytes(&self) -> usize {
        0
    }
}

impl<T: Scalar> Graph<T> {
    /// Records `op`, an [`Op`] of your own, applied to `inputs`: the door for ops defined
    /// outside the crate. Like the built-in ops it never fails on the spot: if the shape
    /// rule refuses the inputs' shapes, or an input belongs to another graph, the error is
    /// stored with this call's file and line and returned by the next fallible call
    /// (`grad`, `compile`, [`check`](Graph::check)).
    ///
    /// ```
    /// use tapegrad::ops::{Inputs, Op, Out};
    /// use tapegrad::prelude::*;
    ///
    /// /// y = x^3, elementwise.
    /// #[derive(Debug)]
    /// struct Cube;
    ///
    /// impl Op<f64> for Cube {
    ///     fn name(&self) -> &'static str {
    ///         "cube"
    ///     }
    ///     fn shape(&self, inputs: &[&Shape]) -> Result<Shape, String> {
    ///         match inputs {
    ///             [x] => Ok((*x).clone()),
    ///             _ => Err(format!("takes 1 input, got {}", inputs.len())),
    ///         }
    ///     }
    ///     fn forward(&self, inputs: &Inputs<'_, f64>, out: &mut Out<'_, f64>) -> tapegrad::Result<()> {
    ///         for (y, &x) in out.slice().iter_mut().zip(inputs.slice(0)) {
    ///             *y = x * x * x;
    ///         }
    ///         Ok(())
    ///     }
    ///     // d/dx x^3 = 3x^2
    ///     fn vjp<'g>(
    ///         &self,
    ///         inputs: &[Tensor<'g, f64>],
    ///         _out: Tensor<'g, f64>,
    ///         grad_out: Tensor<'g, f64>,
    ///     ) -> Vec<Option<Tensor<'g, f64>>> {
    ///         vec![Some(grad_out * inputs[0].square() * 3.0)]
    ///     }
    /// }
    ///
    /// let g = Graph::<f64>::new();
    /// let x = g.param("x", tapegrad::ndarray::arr1(&[2.0, -1.0]));
    /// let y = g.custom(Cube, &[x]);
    /// let grads = g.grad(y.sum(), &[x])?;
    /// let mut m = g.compile(&[y], &grads)?;
    /// m.run()?;
    /// assert_eq!(m.value(y)?.as_slice(), Some(&[8.0, -1.0][..]));
    /// assert_eq!(m.value(grads[0])?.as_slice(), Some(&[12.0, 3.0][..])); // 3x^2
    ///
    /// let _ = g.custom(Cube, &[x, x]); // refused by the shape rule: an error at this line
    /// assert!(matches!(g.check(), Err(Error::Shape { op: "cube", .. })));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn custom<O: Op<T>>(&self, op: O, inputs: &[Tensor<'_, T>]) -> Tensor<'_, T> {
        self.apply(op, inputs, core::panic::Location::caller())
    }
}

/// The inputs of a node during a run: contiguous, row-major buffers with their shapes.
pub struct Inputs<'a, T> {
    pub(crate) bufs: &'a [Vec<T>],
    pub(crate) buf_of: &'a [u32],
    pub(crate) numel: &'a [usize],
    pub(crate) shapes: &'a [Shape],
    pub(crate) args: &'a [u32],
    pub(crate) in_out: Option<usize>,
}

impl<'a, T> Inputs<'a, T> {
    /// How many inputs.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// The input computed over in place, if any (see [`Op::in_place`]): its values are
    /// in the output buffer, and `slice`/`view` must not be called for it.
    pub fn in_out(&self) -> Option<usize> {
        self.in_out
    }

    /// Input `i` as a flat row-major slice.
    ///
    /// # Panics
    /// If `i` is the input overwritten in place ([`in_out`](Inputs::in_out)).
    pub fn slice(&self, i: usize) -> &'a [T] {
        let a = self.args[i] as usize;
        &self.bufs[self.buf_of[a] as usize][..self.numel[a]]
    }

    /// The shape of input `i`, at the rows fed in this run.
    pub fn shape(&self, i: usize) -> &'a Shape {
        &self.shapes[self.args[i] as usize]
    }

    /// Input `i` as an ndarray view. At rank 5 and above the view keeps its shape and
    /// strides on the heap (ndarray's `IxDyn`), so a kernel that must not allocate reads
    /// [`slice`](Inputs::slice) and [`shape`](Inputs::shape) instead.
    pub fn view(&self, i: usize) -> ArrayViewD<'a, T> {
        view(self.shape(i), self.slice(i))
    }
}

/// The output buffer of a node during a run.
pub struct Out<'a, T> {
    pub(crate) data: &'a mut [T],
    pub(crate) shape: &'a Shape,
    pub(crate) scratch: &'a mut [T],
    pub(crate) rng: &'a mut crate::rng::KernelRng,
    pub(crate) training: bool,
    pub(crate) rows: usize,
}

impl<T> Out<'_, T> {
    /// The output as a flat row-major slice.
    pub fn slice(&mut self) -> &mut [T] {
        self.data
    }

    /// The output's shape, at the rows fed in this run.
    pub fn shape(&self) -> &Shape {
        self.shape
    }

    /// The machine's random number generator (seeded with
    /// [`Machine::seed`](crate::Machine::seed)).
    pub fn rng(&mut self) -> &mut crate::rng::KernelRng {
        self.rng
    }

    /// Whether the machine runs in training mode
    /// ([`Machine::set_training`](crate::Machine::set_training)).
    pub fn training(&self) -> bool {
        self.training
    }

    /// The rows fed to the run-time axis in this run (see
    /// [`Machine::rows`](crate::Machine::rows): 0 in a machine where no shape has a
    /// run-time axis, so size a kernel's work from its shapes).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The output and scratch memory of at least the length [`Op::scratch`] asked for.
    pub fn with_scratch(&mut self) -> (&mut [T], &mut [T]) {
        (self.data, self.scratch)
    }

    /// The output as an ndarray view (allocating at rank 5 and above, as
    /// [`Inputs::view`]).
    pub fn view(&mut self) -> ArrayViewMutD<'_, T> {
        // The machine sizes every buffer from the node's shape at compile time.
        ArrayViewMutD::from_shape(self.shape.ix(), self.data).expect("buffer sized from its shape")
    }
}

pub(crate) fn view<'a, T>(shape: &Shape, data: &'a [T]) -> ArrayViewD<'a, T> {
    ArrayViewD::from_shape(shape.ix(), data).expect("buffer sized from its shape")
}

impl<'g, T: Scalar> Tensor<'g, T> {
    /// Records a shape error for `op` on this tensor (a composite's check) and returns a
    /// stand-in of this tensor's shape.
    pub(crate) fn fail_with(
        self,
        op: &'static str,
        reason: alloc::string::String,
        caller: &'static core::panic::Location<'static>,
    ) -> Tensor<'g, T> {
        let s = self.shape();
        self.graph
            .fail(op, alloc::vec![s.clone()], reason, caller, s)
    }

    /// `axis` resolved against this tensor's rank (see [`Shape::resolve_axis`]), or the
    /// stand-in after recording a located shape error for `op`.
    pub(crate) fn axis_for<A: crate::shape::AxisArg>(
        self,
        op: &'static str,
        axis: A,
        caller: &'static core::panic::Location<'static>,
    ) -> core::result::Result<usize, Tensor<'g, T>> {
        self.shape()
            .resolve_axis(axis)
            .map_err(|reason| self.fail_with(op, reason, caller))
    }

    /// `axes` resolved, checked and sorted (see [`Shape::resolve_axes`]), or the stand-in
    /// after recording a located shape error for `op`.
    pub(crate) fn axes_for<A: crate::shape::AxisArg>(
        self,
        op: &'static str,
        axes: &[A],
        caller: &'static core::panic::Location<'static>,
    ) -> core::result::Result<Vec<usize>, Tensor<'g, T>> {
        self.shape()
            .resolve_axes(axes)
            .map_err(|reason| self.fail_with(op, reason, caller))
    }
}

/// Shorthand for a VJP result.
pub(crate) fn grads<'g, T: Scalar>(
    g: impl IntoIterator<Item = Option<Tensor<'g, T>>>,
) -> Vec<Option<Tensor<'g, T>>> {
    g.into_iter().collect()
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the in-file op tests.
    use crate::prelude::*;
    use ndarray::ArrayD;

    /// Deterministic values in [lo, hi) from a seed, away from nothing in particular.
    pub fn rand_array(shape: &[usize], seed: u64, lo: f64, hi: f64) -> ArrayD<f64> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        ArrayD::from_shape_fn(ndarray::IxDyn(shape), |_| rng.random_range(lo..hi))
    }

    /// Runs `f` on parameters holding `inputs` and returns the output's value.
    pub fn eval(
        inputs: &[ArrayD<f64>],
        f: impl for<'g> Fn(&'g Graph<f64>, &[Tensor<'g, f64>]) -> Tensor<'g, f64>,
    ) -> ArrayD<f64> {
        let g = Graph::new();
        let xs: Vec<_> = inputs
            .iter()
            .enumerate()
            .map(|(i, a)| g.param(&alloc::format!("x{i}"), a.clone()))
            .collect();
        let y = f(&g, &xs);
        let mut m = g.compile(&[y], &[]).unwrap();
        m.run().unwrap();
        m.value(y).unwrap().to_owned()
    }

    /// Gradients of `f` (summed to a scalar if needed) with respect to each input.
    pub fn grads_of(
        inputs: &[ArrayD<f64>],
        f: impl for<'g> Fn(&'g Graph<f64>, &[Tensor<'g, f64>]) -> Tensor<'g, f64>,
    ) -> Vec<ArrayD<f64>> {
        let g = Graph::new();
        let xs: Vec<_> = inputs
            .iter()
            .enumerate()
            .map(|(i, a)| g.param(&alloc::format!("x{i}"), a.clone()))
            .collect();
        let y = f(&g, &xs).sum();
        let gs = g.grad(y, &xs).unwrap();
        let mut m = g.compile(&[y], &gs).unwrap();
        m.run().unwrap();
        gs.tensors()
            .iter()
            .map(|t| m.value(*t).unwrap().to_owned())
            .collect()
    }

    /// Asserts equal shapes and elements within `1e-12` (NaN matching NaN).
    #[track_caller]
    pub fn assert_close(got: &ArrayD<f64>, want: &ArrayD<f64>) {
        assert_eq!(got.shape(), want.shape(), "{got} vs {want}");
        for (g, w) in got.iter().zip(want) {
            if !(g.is_nan() && w.is_nan()) {
                approx::assert_abs_diff_eq!(*g, *w, epsilon = 1e-12);
            }
        }
    }

    /// Asserts that `gradcheck` passes.
    pub fn check(
        inputs: &[ArrayD<f64>],
        f: impl for<'g> Fn(&'g Graph<f64>, &[Tensor<'g, f64>]) -> Tensor<'g, f64>,
    ) {
        if let Err(e) = crate::check::gradcheck(inputs, f) {
            panic!("{e}");
        }
    }
}
