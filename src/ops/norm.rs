//! Normalisation, composed of existing ops (so gradients of every order come for free):
//!
//! - `batch_norm` (PyTorch's `F.batch_norm`): per channel `c` of `x` `[N, C, *]`, over
//!   the batch and the spatial axes,
//!   `y = (x - mean) / sqrt(var + eps) * weight[c] + bias[c]`. In training mode `mean`
//!   and `var` are the batch's mean and biased variance, and the running statistics (when
//!   they are [buffers](crate::Graph::buffer)) take, after the run,
//!   `running = (1 - momentum) * running + momentum * batch`, with the *unbiased* batch
//!   variance `var * n / (n - 1)` for `running_var` (`n` values per channel); in
//!   evaluation mode `mean` and `var` are the running statistics. The mode is the
//!   machine's at run time, as for dropout: a scalar `t` (1 training, 0 evaluation) from
//!   [`TrainingFlag`] selects with `where_`, whose gradient sends nothing to the side
//!   not taken.
//! - `layer_norm` (PyTorch's `F.layer_norm`): over the trailing `normalized_shape` axes,
//!   `y = (x - mean) / sqrt(var + eps) * weight + bias` with the biased variance.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::panic::Location;

use super::{Inputs, Op, Out};
use crate::error::{Error, Result};
use crate::graph::{Kind, Tensor};
use crate::num::Num;
use crate::scalar::Scalar;
use crate::shape::Shape;

/// A scalar, 1 in training mode and 0 in evaluation mode, read from the machine at each
/// run. Its input `x` (`[N, C, *]`, read only for its shape at the rows fed) must hold
/// more than one value per channel in training mode (PyTorch's "Expected more than 1
/// value per channel when training"; an [`Error::Empty`] here). No gradient.
#[derive(Debug)]
pub struct TrainingFlag {
    channels: usize,
}

impl<T: Scalar> Op<T> for TrainingFlag {
    fn name(&self) -> &'static str {
        "batch_norm"
    }
    fn shape(&self, _: &[&Shape]) -> core::result::Result<Shape, String> {
        Ok(Shape::scalar())
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        if !out.training() {
            out.slice().fill(T::zero());
            return Ok(());
        }
        if x.shape(0).numel() / self.channels.max(1) <= 1 {
            return Err(Error::Empty {
                op: "batch_norm",
                axis: 0,
                caller: None,
            });
        }
        out.slice().fill(T::one());
        Ok(())
    }
    fn vjp<'g>(
        &self,
        _: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        _: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        vec![None]
    }
}

/// Why an affine parameter or statistic of `what` does not fit `want`, if it does not.
fn misfit<T: Scalar>(what: &str, t: Option<Tensor<'_, T>>, want: &Shape) -> Option<String> {
    let s = t?.shape();
    (s != *want).then(|| format!("{what} must have shape {want}, not {s}"))
}

/// Whether `t` is a buffer of its graph (only buffers get running updates).
fn is_buffer<T: Scalar>(t: Tensor<'_, T>) -> bool {
    let nodes = t.graph.nodes();
    matches!(nodes[t.id.index()].kind, Kind::Buffer { .. })
}

impl<'g, T: Scalar> Tensor<'g, T> {
    /// Batch normalisation of `x` `[N, C]`, `[N, C, L]` or `[N, C, H, W]` (any rank from
    /// 2) per channel `C`, as PyTorch's `F.batch_norm(x, running_mean, running_var,
    /// weight, bias, training, momentum, eps)` (see the module's math above), with
    /// `training` the machine's mode at run time
    /// ([`Machine::set_training`](crate::Machine::set_training)): one compiled machine
    /// trains on batch statistics and evaluates on running ones.
    ///
    /// `running_mean` and `running_var` are `[C]`; when they are
    /// [buffers](crate::Graph::buffer), each training run updates them with `momentum`
    /// (PyTorch's default 0.1), `running_var` with the unbiased batch variance, exactly as
    /// PyTorch (applied twice to the same buffers, the second update goes on from the
    /// first, in call order); other tensors (constants) are fixed statistics for
    /// evaluation. `weight`
    /// and `bias` are `[C]` or `None` (1 and 0). PyTorch's default `eps` is `1e-5`. The
    /// batch axis may be a run-time axis ([`Dim::upto`](crate::Dim::upto)).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// use tapegrad::ndarray::{arr1, arr2};
    /// let g = Graph::<f64>::new();
    /// let x = g.input("x", (Dim::upto(8), 1));
    /// let (mean, var) = (g.buffer("mean", arr1(&[0.0])), g.buffer("var", arr1(&[1.0])));
    /// let y = x.batch_norm(mean, var, None, None, 0.1, 0.0);
    /// let mut m = g.compile(&[y], &[])?;
    /// m.set_training(true);
    /// m.feed(x, &arr2(&[[1.0], [3.0]]))?; // mean 2, biased variance 1, unbiased 2
    /// m.run()?;
    /// assert_eq!(m.value(y)?.as_slice(), Some(&[-1.0, 1.0][..]));
    /// assert!((m.value(mean)?[[0]] - 0.2).abs() < 1e-12); // 0.9 * 0 + 0.1 * 2
    /// assert!((m.value(var)?[[0]] - 1.1).abs() < 1e-12); // 0.9 * 1 + 0.1 * 2
    /// m.set_training(false); // evaluation: (x - 0.2) / sqrt(1.1)
    /// m.run()?;
    /// assert!((m.value(y)?[[0, 0]] - 0.8 / 1.1f64.sqrt()).abs() < 1e-12);
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    ///
    /// # Errors
    /// (deferred) [`Error::Shape`] for an `x` of rank below 2, statistics or affine
    /// tensors not `[C]`, or a `momentum` outside `[0, 1]` or negative `eps`. At run time,
    /// [`Error::Empty`] from [`Machine::run`](crate::Machine::run) in training mode when
    /// the batch holds one value per channel (or none).
    #[track_caller]
    pub fn batch_norm(
        self,
        running_mean: Tensor<'g, T>,
        running_var: Tensor<'g, T>,
        weight: Option<Tensor<'g, T>>,
        bias: Option<Tensor<'g, T>>,
        momentum: f64,
        eps: f64,
    ) -> Tensor<'g, T> {
        let caller = Location::caller();
        let shape = self.shape();
        if shape.rank() < 2 {
            let reason = format!("needs an input [N, C, *] of rank 2 or more, got {shape}");
            return self.fail_with("batch_norm", reason, caller);
        }
        let c = shape.dim(1);
        let want = Shape::from([c]);
        let bad = misfit("running_mean", Some(running_mean), &want)
            .or_else(|| misfit("running_var", Some(running_var), &want))
            .or_else(|| misfit("weight", weight, &want))
            .or_else(|| misfit("bias", bias, &want))
            .or_else(|| {
                (!(0.0..=1.0).contains(&momentum))
                    .then(|| format!("momentum {} is not in [0, 1]", Num(momentum)))
            })
            .or_else(|| {
                (!(eps >= 0.0 && eps.is_finite()))
                    .then(|| format!("eps {} is not a finite number >= 0", Num(eps)))
            });
        if let Some(reason) = bad {
            return self.fail_with("batch_norm", reason, caller);
        }
        let rank = shape.rank();
        let axes: Vec<usize> = core::iter::once(0).chain(2..rank).collect();
        // statistics as [1, C, 1, ...], to broadcast against x
        let mut stat = vec![1usize; rank];
        stat[1] = c;
        let stat = Shape::new(stat);
        let g = self.graph;
        let batch_mean = self.mean_axes(&axes, true);
        let batch_var = (self - batch_mean).square().mean_axes(&axes, true);
        let t = self.apply(TrainingFlag { channels: c }, &[self], caller);
        let mean = g.where_(t, batch_mean, running_mean.reshape(stat.clone()));
        let var = g.where_(t, batch_var, running_var.reshape(stat.clone()));
        // weight / sqrt(var + eps) per channel first: one pass over x fewer
        let mut scale = (var + T::of(eps)).powf(-0.5);
        if let Some(w) = weight {
            scale = scale * w.reshape(stat.clone());
        }
        let mut y = (self - mean) * scale;
        if let Some(b) = bias {
            y = y + b.reshape(stat);
        }
        let keep = T::of(1.0 - momentum);
        let m = T::of(momentum);
        // Applied again to the same buffers (a layer used twice), the update goes on from
        // the value the last one left, as PyTorch's in-place updates do in call order.
        if is_buffer(running_mean) {
            let new = g.pending(running_mean) * keep + batch_mean.reshape(want.clone()) * m;
            g.chain_update(running_mean, new);
        }
        if is_buffer(running_var) {
            // n / (n - 1) = 1 / (1 - 1/n), with 1/n at the rows fed
            let unbiased = batch_var / (-self.inv_count(&axes) + T::one());
            let new = g.pending(running_var) * keep + unbiased.reshape(want) * m;
            g.chain_update(running_var, new);
        }
        y
    }

    /// Layer normalisation over the trailing axes `normalized_shape`, as PyTorch's
    /// `F.layer_norm(x, normalized_shape, weight, bias, eps)`: each slice over those axes
    /// becomes `(x - mean) / sqrt(var + eps)` (biased variance), times `weight` plus
    /// `bias` (both of shape `normalized_shape`, or `None`). PyTorch's default `eps` is
    /// `1e-5`. The same in training and evaluation mode.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f64>::new();
    /// let x = g.input("x", (Dim::upto(4), 2));
    /// let y = x.layer_norm(&[2], None, None, 0.0);
    /// let mut m = g.compile(&[y], &[])?;
    /// m.feed(x, &tapegrad::ndarray::arr2(&[[1.0, 3.0]]))?; // mean 2, variance 1
    /// m.run()?;
    /// assert_eq!(m.value(y)?.as_slice(), Some(&[-1.0, 1.0][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    ///
    /// # Errors
    /// (deferred) [`Error::Shape`] if `normalized_shape` is empty or is not `x`'s
    /// trailing shape, `weight` or `bias` is not of that shape, or `eps` is negative.
    #[track_caller]
    pub fn layer_norm(
        self,
        normalized_shape: &[usize],
        weight: Option<Tensor<'g, T>>,
        bias: Option<Tensor<'g, T>>,
        eps: f64,
    ) -> Tensor<'g, T> {
        let caller = Location::caller();
        let shape = self.shape();
        let (rank, k) = (shape.rank(), normalized_shape.len());
        let want = Shape::from(normalized_shape);
        let trailing = k > 0 && k <= rank && shape.dims()[rank - k..] == *normalized_shape;
        let bad = if trailing {
            misfit("weight", weight, &want)
                .or_else(|| misfit("bias", bias, &want))
                .or_else(|| {
                    (!(eps >= 0.0 && eps.is_finite()))
                        .then(|| format!("eps {} is not a finite number >= 0", Num(eps)))
                })
        } else {
            Some(format!(
                "normalized_shape {want} must be the input's trailing (non-empty) shape"
            ))
        };
        if let Some(reason) = bad {
            return self.fail_with("layer_norm", reason, caller);
        }
        let axes: Vec<usize> = (rank - k..rank).collect();
        let d = self - self.mean_axes(&axes, true);
        let var = d.square().mean_axes(&axes, true);
        let mut y = d * (var + T::of(eps)).powf(-0.5);
        if let Some(w) = weight {
            y = y * w;
        }
        if let Some(b) = bias {
            y = y + b;
        }
        y
    }
}

#[cfg(test)]
mod tests;
