//! Optimizers: update a machine's parameters in place from its gradient outputs.
//!
//! [`Sgd`], [`Adam`] and [`AdamW`] follow PyTorch's update rules (`torch.optim.SGD`,
//! `Adam`, `AdamW`): same hyper-parameter names and meanings, same defaults, same bias
//! correction. Their state (momentum buffers, Adam moments) is allocated at the first
//! [`step`](Optimizer::step), in the machine's element type; later steps allocate
//! nothing. [`clip_grad_norm`] rescales gradients before a step, and a [`Schedule`]
//! ([`StepLr`], [`WarmupCosineLr`]) sets the learning rate of any optimizer.

mod adam;
mod adamw;
mod clip;
mod schedule;
mod sgd;

pub use adam::Adam;
pub use adamw::AdamW;
pub use clip::clip_grad_norm;
pub use schedule::{Schedule, StepLr, WarmupCosineLr};
pub use sgd::Sgd;

use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;
use core::any::Any;
use core::fmt;

use crate::error::{Caller, Error, Result};
use crate::graph::AsHandle;
use crate::machine::Machine;
use crate::scalar::Scalar;

/// An update rule applied to parameters from their gradients, in place and without
/// allocating.
pub trait Optimizer<T: Scalar>: LearningRate {
    /// Updates each `params[i]` from `grads[i]` (values of the machine's last run).
    ///
    /// Every pair is checked before any parameter changes, so a failed step leaves the
    /// machine and the optimizer as they were.
    ///
    /// # Errors
    /// [`Error::Mismatch`] if the lists differ in length, a
    /// gradient's shape is not its parameter's, or (for optimizers with state) the
    /// parameters are not those of the first step; the machine's errors for nodes it does
    /// not hold or that are not parameters.
    fn step<P: AsHandle, G: AsHandle>(
        &mut self,
        m: &mut Machine<T>,
        params: &[P],
        grads: &[G],
    ) -> Result<()>;
}

/// The learning rate of an optimizer, read and set the same way for all of them (a
/// [`Schedule`] uses it). Not generic, so `opt.set_lr(..)` needs no type annotation.
pub trait LearningRate {
    /// The learning rate the next step uses.
    fn lr(&self) -> f64;

    /// Sets the learning rate for the next steps; the optimizer's state is kept.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `lr` is negative, NaN
    /// or infinite; the learning rate is then unchanged.
    fn set_lr(&mut self, lr: f64) -> Result<()>;
}

/// `lr` if it is a finite number >= 0.
pub(crate) fn check_lr(lr: f64) -> Result<f64> {
    check(
        "learning rate",
        lr,
        lr.is_finite() && lr >= 0.0,
        "is not a finite number >= 0",
    )
}

/// `v` if it is in `[0, 1)` (momentum, Adam's betas).
pub(crate) fn check_unit(what: &'static str, v: f64) -> Result<f64> {
    check(what, v, (0.0..1.0).contains(&v), "is not in [0, 1)")
}

/// `v` if it is a finite number >= 0 (weight decay).
pub(crate) fn check_non_negative(what: &'static str, v: f64) -> Result<f64> {
    check(
        what,
        v,
        v.is_finite() && v >= 0.0,
        "is not a finite number >= 0",
    )
}

fn check(what: &'static str, v: f64, ok: bool, why: &str) -> Result<f64> {
    if ok {
        Ok(v)
    } else {
        Err(Error::InvalidArgument {
            what,
            reason: format!("{v} {why}"),
        })
    }
}

/// Checks that `params` and `grads` pair up in `m` (same count, each a parameter with a
/// gradient of its shape, after a run).
pub(crate) fn check_pairs<T: Scalar>(
    m: &mut Machine<T>,
    params: &[impl AsHandle],
    grads: &[impl AsHandle],
    what: &'static str,
    caller: Caller,
) -> Result<()> {
    if params.len() != grads.len() {
        return Err(Error::Mismatch {
            what,
            reason: format!("{} parameters but {} gradients", params.len(), grads.len()),
            caller,
        });
    }
    for (p, g) in params.iter().zip(grads) {
        m.param_and_grad(p, g, caller)?;
    }
    Ok(())
}

/// An optimizer's per-parameter buffers: one `Vec<T>` of `width * numel` elements per
/// parameter, made at the first step. Stored type-erased so that optimizers need no type
/// parameter (`Sgd::new(0.1)` works for `f32` and `f64` machines alike); the element type
/// is fixed by the first step.
#[derive(Default)]
pub(crate) struct State {
    bufs: Option<Box<dyn Any + Send + Sync>>,
    /// Steps taken since the buffers were made.
    steps: u64,
}

impl State {
    /// Checks every pair, makes the buffers (zeros) at the first call and checks them
    /// against the parameters after that. Returns the 1-based number of this step and the
    /// buffers, in `params` order.
    pub(crate) fn buffers<T: Scalar>(
        &mut self,
        m: &mut Machine<T>,
        params: &[impl AsHandle],
        grads: &[impl AsHandle],
        width: usize,
        what: &'static str,
        caller: Caller,
    ) -> Result<(u64, &mut [Vec<T>])> {
        let mismatch = |reason| Error::Mismatch {
            what,
            reason,
            caller,
        };
        match &mut self.bufs {
            None => {
                check_pairs(m, params, grads, what, caller)?;
                let mut bufs: Vec<Vec<T>> = Vec::with_capacity(params.len());
                for (p, g) in params.iter().zip(grads) {
                    let n = m.param_and_grad(p, g, caller)?.0.len();
                    bufs.push(alloc::vec![T::zero(); width * n]);
                }
                self.bufs = Some(Box::new(bufs));
                self.steps = 0;
            }
            Some(any) => {
                let bufs = any.downcast_mut::<Vec<Vec<T>>>().ok_or_else(|| {
                    mismatch(format!(
                        "the optimizer's state was made for another element type than {}",
                        T::NAME
                    ))
                })?;
                if params.len() != grads.len() || params.len() != bufs.len() {
                    return Err(mismatch(format!(
                        "{} parameters and {} gradients, but the optimizer's state was made \
                         for {} parameters at its first step (use a new optimizer for \
                         another parameter list)",
                        params.len(),
                        grads.len(),
                        bufs.len()
                    )));
                }
                for (k, (p, g)) in params.iter().zip(grads).enumerate() {
                    let n = m.param_and_grad(p, g, caller)?.0.len();
                    if bufs[k].len() != width * n {
                        return Err(mismatch(format!(
                            "parameter {k} has {n} elements, but the optimizer's state was \
                             made for {} at its first step",
                            bufs[k].len() / width.max(1)
                        )));
                    }
                }
            }
        }
        self.steps += 1;
        let steps = self.steps;
        match self
            .bufs
            .as_mut()
            .and_then(|b| b.downcast_mut::<Vec<Vec<T>>>())
        {
            Some(bufs) => Ok((steps, bufs.as_mut_slice())),
            // unreachable: the buffers were made or checked above
            None => Err(mismatch(format!("no state for {}", T::NAME))),
        }
    }

    fn erased_clone<T: Scalar>(
        any: &(dyn Any + Send + Sync),
    ) -> Option<Box<dyn Any + Send + Sync>> {
        any.downcast_ref::<Vec<Vec<T>>>()
            .map(|v| Box::new(v.clone()) as Box<dyn Any + Send + Sync>)
    }
}

impl Clone for State {
    fn clone(&self) -> Self {
        // `Scalar` is sealed: the buffers hold f32 or f64.
        let bufs = self
            .bufs
            .as_deref()
            .and_then(|b| Self::erased_clone::<f32>(b).or_else(|| Self::erased_clone::<f64>(b)));
        State {
            bufs,
            steps: self.steps,
        }
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bufs.as_deref();
        let (ty, params) = match (
            b.and_then(|b| b.downcast_ref::<Vec<Vec<f32>>>()),
            b.and_then(|b| b.downcast_ref::<Vec<Vec<f64>>>()),
        ) {
            (Some(v), _) => ("f32", v.len()),
            (_, Some(v)) => ("f64", v.len()),
            _ => ("none", 0),
        };
        f.debug_struct("State")
            .field("element", &ty)
            .field("params", &params)
            .field("steps", &self.steps)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimizers_can_move_to_other_threads() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Sgd>();
        send_sync::<Adam>();
        send_sync::<AdamW>();
        send_sync::<StepLr>();
        send_sync::<WarmupCosineLr>();
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    //! A machine with one 2-element parameter `w` whose gradient is fed each step, so an
    //! optimizer's tests choose the gradient sequence.
    use crate::graph::{Graph, Handle};
    use crate::machine::Machine;

    /// `loss = sum(w * gin)`, so `d loss / d w = gin`, the fed input.
    pub(crate) struct Fixture {
        pub m: Machine<f64>,
        pub w: Handle,
        pub gin: Handle,
        pub grad: Handle,
    }

    pub(crate) fn fixture(w0: [f64; 2]) -> Fixture {
        let g = Graph::<f64>::new();
        let w = g.param("w", ndarray::arr1(&w0));
        let gin = g.input("gin", [2]);
        let loss = (w * gin).sum();
        let grads = g.grad(loss, &[w]).unwrap();
        let m = g.compile(&[loss], &grads).unwrap();
        Fixture {
            m,
            w: w.handle(),
            gin: gin.handle(),
            grad: grads[0].handle(),
        }
    }

    impl Fixture {
        /// Feeds `grad` as this step's gradient and runs.
        pub(crate) fn run_with(&mut self, grad: [f64; 2]) {
            self.m.feed(self.gin, &ndarray::arr1(&grad)).unwrap();
            self.m.run().unwrap();
        }

        pub(crate) fn w(&self) -> [f64; 2] {
            let v = self.m.value(self.w).unwrap();
            [v[[0]], v[[1]]]
        }
    }
}
