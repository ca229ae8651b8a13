//! # tapegrad
//!
//! Tensors and reverse-mode automatic differentiation for Rust programs that train small
//! models in their own binary. A [`Graph`] records ops on [`Tensor`] handles into an arena;
//! [`Graph::grad`] adds the gradient to the same graph as ordinary ops (so gradients can
//! be differentiated again); [`Graph::compile`] turns the nodes some outputs need into a
//! [`Machine`], a tape that owns every value and runs forward and backward again and again
//! on new inputs without allocating; optimizers such as [`Sgd`] update its parameters in
//! place.
//!
//! ## Quick start
//! ```
//! use tapegrad::ndarray::{arr1, arr2};
//! use tapegrad::prelude::*;
//! use tapegrad::rand::{rngs::StdRng, SeedableRng};
//!
//! // Learn y = class of (x0 > x1) with a one-hidden-layer MLP.
//! let mut rng = StdRng::seed_from_u64(0);
//! let g = Graph::<f32>::new();
//! let x = g.input("x", (Dim::upto(4), 2)); // any batch of 0..=4 rows
//! let y = g.input("y", Dim::upto(4)); // class ids, stored as f32
//! let w1 = g.param("w1", init::kaiming_uniform([2, 16], &mut rng)?);
//! let b1 = g.param("b1", init::zeros([16])?);
//! let w2 = g.param("w2", init::kaiming_uniform([16, 2], &mut rng)?);
//! let b2 = g.param("b2", init::zeros([2])?);
//! let logits = (x.matmul(w1) + b1).relu().matmul(w2) + b2;
//! let loss = logits.cross_entropy(y); // mean over the rows fed
//! let class = logits.argmax(-1, false);
//! let grads = g.grad(loss, &g.params())?; // (parameter, gradient) pairs
//!
//! let mut m = g.compile(&[loss, class], &grads)?; // planned for 4 rows, once
//! let mut opt = Sgd::new(0.1);
//! m.feed(x, &arr2(&[[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [1.0, 3.0]]))?;
//! m.feed(y, &arr1(&[1.0, 0.0, 1.0, 0.0]))?;
//! m.run()?;
//! let first = m.item(loss)?;
//! for _ in 0..200 {
//!     m.run()?; // forward + backward, no allocation
//!     opt.step(&mut m, &grads)?; // in place, on the pairs
//! }
//! // one new row through the same machine
//! m.feed(x, &arr2(&[[3.0, 0.5]]))?;
//! m.feed(y, &arr1(&[1.0]))?;
//! m.run()?;
//! assert!(m.item(loss)? < first / 10.0);
//! assert_eq!(m.item(class)?, 1.0);
//! # Ok::<(), tapegrad::Error>(())
//! ```
//!
//! ## Any batch up to a bound
//! An input's leading axis may be a run-time axis ([`Dim::upto`]): the machine is planned
//! once for the bound and each run computes on the rows fed, from 0 to the bound, without
//! allocating. Shape rules carry the axis through every op (see [`Shape`]); a mean over it
//! divides by the rows fed; [`data::Batches::next_batch`] yields the last partial batch at
//! its size. Inputs fed different numbers of rows, more rows than the bound, or an op that
//! cannot take the axis are located errors.
//!
//! ## Extending
//! [`Graph::custom`] records an [`Op`](ops::Op) of your own (a kernel and its
//! vector-Jacobian product); [`Machine::for_each_pair`] hands an optimizer of your own
//! each parameter with its gradient, in place and without allocating, so it can implement
//! [`Optimizer`].
//!
//! ## Errors
//! Ops stay chainable: a shape error is recorded with the op, the shapes and your file and
//! line, and returned by the next fallible call ([`Graph::grad`], [`Graph::compile`],
//! [`Graph::check`]). Nothing a user passes makes the crate panic.
//!
//! ## Features
//! - `std` (default): `std::error::Error` for [`Error`], and weights in files
//!   (`Machine::save`, `Machine::load`). Without it the crate is `#![no_std]` +
//!   `alloc`; weights still load from and save to bytes ([`weights`]).
//! - `rayon` (default): large matrix products and elementwise kernels split over threads
//!   ([`set_threads`]); results are bit-identical at any thread count.
//! - `onnx` (off by default; implies `std`): `tapegrad::onnx` imports an ONNX model into
//!   a graph whose initializers are trainable parameters (it adds the `prost` dependency).
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

extern crate alloc;

#[cfg(feature = "std")]
#[doc(hidden)]
#[path = "bench_api.rs"]
pub mod __bench;
mod autodiff;
pub mod check;
pub mod data;
mod error;
mod gemm;
mod grads;
mod graph;
pub mod init;
mod limit;
mod machine;
pub mod nn;
mod num;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod ops;
pub mod optim;
mod par;
mod plan;
pub mod rng;
mod scalar;
mod shape;
mod shared;
pub mod weights;

pub use error::{Caller, Error, Result};
pub use grads::{AsGrads, GradHandles, Grads};
pub use graph::{AsHandle, Graph, Handle, NodeId, Tensor};
pub use limit::{max_bytes, set_max_bytes};
pub use machine::{Machine, Memory, ParamGrad};
pub use optim::{Adam, AdamW, LearningRate, Optimizer, Sgd};
pub use par::{set_threads, threads};
pub use scalar::Scalar;
pub use shape::{AxisArg, Dim, Shape};

pub use ndarray;
pub use rand;

/// The names most programs need: `use tapegrad::prelude::*;`.
pub mod prelude {
    pub use crate::init;
    pub use crate::nn::Module;
    pub use crate::optim::{Schedule, StepLr, WarmupCosineLr};
    pub use crate::{
        Adam, AdamW, AsHandle, Dim, Error, Grads, Graph, LearningRate, Machine, Optimizer, Result,
        Sgd, Shape, Tensor,
    };
}
