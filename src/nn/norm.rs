//! Normalisation layers: [`BatchNorm1d`], [`BatchNorm2d`] and [`LayerNorm`], named and
//! initialised as PyTorch's.

use alloc::format;
use alloc::vec::Vec;
use core::panic::Location;

use crate::error::Caller;
use crate::graph::{Graph, Tensor};
use crate::init;
use crate::scalar::Scalar;
use crate::shape::Shape;

use super::Module;

/// The parameters, buffers and settings of [`BatchNorm1d`] and [`BatchNorm2d`], named
/// as PyTorch's `state_dict` names them: parameters `{name}.weight` and `{name}.bias`,
/// [buffers](crate::Graph::buffer) `{name}.running_mean` and `{name}.running_var`, all
/// `[C]`. PyTorch's `num_batches_tracked` is not kept (its `load_state_dict` makes it
/// again when missing; it only matters with `momentum=None`). A layer applied twice in
/// a graph updates its running statistics twice per training run, in call order, as
/// PyTorch does.
#[derive(Clone, Copy, Debug)]
pub struct BatchNorm<'g, T: Scalar> {
    /// `{name}.weight` `[C]`, PyTorch's init: ones.
    pub weight: Tensor<'g, T>,
    /// `{name}.bias` `[C]`, PyTorch's init: zeros.
    pub bias: Tensor<'g, T>,
    /// The buffer `{name}.running_mean` `[C]`, zeros at first.
    pub running_mean: Tensor<'g, T>,
    /// The buffer `{name}.running_var` `[C]`, ones at first.
    pub running_var: Tensor<'g, T>,
    /// Added to the variance (PyTorch's default `1e-5`).
    pub eps: f64,
    /// The running statistics' weight on each batch (PyTorch's default `0.1`).
    pub momentum: f64,
}

impl<'g, T: Scalar> BatchNorm<'g, T> {
    fn new_at(
        g: &'g Graph<T>,
        name: &str,
        channels: usize,
        caller: &'static Location<'static>,
    ) -> Self {
        let shape = Shape::from([channels]);
        let filled = |what, one: bool| {
            let mut v = || if one { T::one() } else { T::zero() };
            init::filled(what, shape.clone(), Caller::from(caller), &mut v)
        };
        // PyTorch's `reset_parameters`: weight 1, bias 0; `reset_running_stats`: mean 0, var 1
        let param = |n: &str, one| {
            g.param_or_fail(
                &format!("{name}.{n}"),
                filled("batch_norm", one),
                shape.clone(),
                caller,
            )
        };
        let buffer = |n: &str, one| {
            g.buffer_or_fail(
                &format!("{name}.{n}"),
                filled("batch_norm", one),
                shape.clone(),
                caller,
            )
        };
        BatchNorm {
            weight: param("weight", true),
            bias: param("bias", false),
            running_mean: buffer("running_mean", false),
            running_var: buffer("running_var", true),
            eps: 1e-5,
            momentum: 0.1,
        }
    }

    /// `batch_norm` of `x` if its rank is one of `ranks`; located at the caller of the
    /// layer's `forward`, for the op's own errors too.
    #[track_caller]
    fn forward_at(&self, x: Tensor<'g, T>, layer: &str, ranks: &[usize]) -> Tensor<'g, T> {
        let caller = Location::caller();
        let rank = x.rank();
        if !ranks.contains(&rank) {
            let reason = format!(
                "{layer} takes an input of rank {ranks:?}, got {}",
                x.shape()
            );
            return x.fail_with("batch_norm", reason, caller);
        }
        x.batch_norm(
            self.running_mean,
            self.running_var,
            Some(self.weight),
            Some(self.bias),
            self.momentum,
            self.eps,
        )
    }
}

/// PyTorch's `nn.BatchNorm1d`: [`Tensor::batch_norm`] of an input `[N, C]` or `[N, C, L]` (see
/// [`BatchNorm`] for its parameters, buffers and settings). In training mode it
/// normalises with the batch statistics and the machine updates the running ones after
/// each run; in evaluation mode it normalises with the running ones.
///
/// ```
/// use tapegrad::prelude::*;
/// let g = Graph::<f32>::new();
/// let bn = tapegrad::nn::BatchNorm1d::new(&g, "bn", 3);
/// let x = g.input("x", (Dim::upto(16), 3, 10));
/// assert_eq!(bn.forward(x).shape(), x.shape());
/// assert_eq!((g.params().len(), g.buffers().len()), (2, 2));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct BatchNorm1d<'g, T: Scalar>(pub BatchNorm<'g, T>);

impl<'g, T: Scalar> BatchNorm1d<'g, T> {
    /// A layer over `channels` channels, named `name` (see [`BatchNorm`]). A size past
    /// [`max_bytes`](crate::max_bytes) records [`Error::TooLarge`](crate::Error::TooLarge)
    /// in `g`, located here.
    #[track_caller]
    pub fn new(g: &'g Graph<T>, name: &str, channels: usize) -> Self {
        BatchNorm1d(BatchNorm::new_at(g, name, channels, Location::caller()))
    }

    /// With `eps` added to the variance.
    pub fn eps(mut self, eps: f64) -> Self {
        self.0.eps = eps;
        self
    }

    /// With the running statistics' weight `momentum` on each batch.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.0.momentum = momentum;
        self
    }

    /// The layer applied to `x` `[N, C]` or `[N, C, L]`; another rank is a shape error at the
    /// caller's line.
    #[track_caller]
    pub fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        self.0.forward_at(x, "BatchNorm1d", &[2, 3])
    }
}

impl<'g, T: Scalar> Module<'g, T> for BatchNorm1d<'g, T> {
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        BatchNorm1d::forward(self, x)
    }

    fn params(&self) -> Vec<Tensor<'g, T>> {
        alloc::vec![self.0.weight, self.0.bias]
    }

    fn buffers(&self) -> Vec<Tensor<'g, T>> {
        alloc::vec![self.0.running_mean, self.0.running_var]
    }
}

/// PyTorch's `nn.BatchNorm2d`: [`Tensor::batch_norm`] of an input `[N, C, H, W]` (see
/// [`BatchNorm`] for its parameters, buffers and settings). In training mode it
/// normalises with the batch statistics and the machine updates the running ones after
/// each run; in evaluation mode it normalises with the running ones.
///
/// ```
/// use tapegrad::prelude::*;
/// let g = Graph::<f32>::new();
/// let bn = tapegrad::nn::BatchNorm2d::new(&g, "bn", 3);
/// let x = g.input("x", (Dim::upto(16), 3, 8, 8));
/// assert_eq!(bn.forward(x).shape(), x.shape());
/// assert_eq!((g.params().len(), g.buffers().len()), (2, 2));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct BatchNorm2d<'g, T: Scalar>(pub BatchNorm<'g, T>);

impl<'g, T: Scalar> BatchNorm2d<'g, T> {
    /// A layer over `channels` channels, named `name` (see [`BatchNorm`]). A size past
    /// [`max_bytes`](crate::max_bytes) records [`Error::TooLarge`](crate::Error::TooLarge)
    /// in `g`, located here.
    #[track_caller]
    pub fn new(g: &'g Graph<T>, name: &str, channels: usize) -> Self {
        BatchNorm2d(BatchNorm::new_at(g, name, channels, Location::caller()))
    }

    /// With `eps` added to the variance.
    pub fn eps(mut self, eps: f64) -> Self {
        self.0.eps = eps;
        self
    }

    /// With the running statistics' weight `momentum` on each batch.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.0.momentum = momentum;
        self
    }

    /// The layer applied to `x` `[N, C, H, W]`; another rank is a shape error at the
    /// caller's line.
    #[track_caller]
    pub fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        self.0.forward_at(x, "BatchNorm2d", &[4])
    }
}

impl<'g, T: Scalar> Module<'g, T> for BatchNorm2d<'g, T> {
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        BatchNorm2d::forward(self, x)
    }

    fn params(&self) -> Vec<Tensor<'g, T>> {
        alloc::vec![self.0.weight, self.0.bias]
    }

    fn buffers(&self) -> Vec<Tensor<'g, T>> {
        alloc::vec![self.0.running_mean, self.0.running_var]
    }
}

/// PyTorch's `nn.LayerNorm`: [`Tensor::layer_norm`] over the trailing axes
/// `normalized_shape`, with the parameters `{name}.weight` (ones) and `{name}.bias`
/// (zeros) of that shape, and `eps` 1e-5 unless set.
///
/// ```
/// use tapegrad::prelude::*;
/// let g = Graph::<f32>::new();
/// let ln = tapegrad::nn::LayerNorm::new(&g, "ln", &[8]);
/// let x = g.input("x", (Dim::upto(4), 5, 8));
/// assert_eq!(ln.forward(x).shape(), x.shape());
/// assert_eq!(g.params().len(), 2); // ln.weight, ln.bias
/// ```
#[derive(Clone, Debug)]
pub struct LayerNorm<'g, T: Scalar> {
    /// `{name}.weight`, PyTorch's init: ones.
    pub weight: Tensor<'g, T>,
    /// `{name}.bias`, PyTorch's init: zeros.
    pub bias: Tensor<'g, T>,
    /// The trailing shape normalised over.
    pub normalized_shape: Vec<usize>,
    /// Added to the variance (PyTorch's default `1e-5`).
    pub eps: f64,
}

impl<'g, T: Scalar> LayerNorm<'g, T> {
    /// A layer over the trailing shape `normalized_shape`, parameters named
    /// `"{name}.weight"` and `"{name}.bias"`. A size past [`max_bytes`](crate::max_bytes)
    /// records [`Error::TooLarge`](crate::Error::TooLarge) in `g`, located here.
    #[track_caller]
    pub fn new(g: &'g Graph<T>, name: &str, normalized_shape: &[usize]) -> Self {
        let caller = Location::caller();
        let shape = Shape::from(normalized_shape);
        let param = |n: &str, one: bool| {
            let mut v = || if one { T::one() } else { T::zero() };
            let init = init::filled("layer_norm", shape.clone(), Caller::from(caller), &mut v);
            g.param_or_fail(&format!("{name}.{n}"), init, shape.clone(), caller)
        };
        LayerNorm {
            weight: param("weight", true),
            bias: param("bias", false),
            normalized_shape: normalized_shape.to_vec(),
            eps: 1e-5,
        }
    }

    /// With `eps` added to the variance.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// The layer applied to `x`, whose trailing shape must be `normalized_shape` (else a
    /// shape error at the caller's line).
    #[track_caller]
    pub fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        x.layer_norm(
            &self.normalized_shape,
            Some(self.weight),
            Some(self.bias),
            self.eps,
        )
    }
}

impl<'g, T: Scalar> Module<'g, T> for LayerNorm<'g, T> {
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        LayerNorm::forward(self, x)
    }

    fn params(&self) -> Vec<Tensor<'g, T>> {
        alloc::vec![self.weight, self.bias]
    }
}

#[cfg(test)]
mod tests;
