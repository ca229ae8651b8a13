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
mod resume;
mod schedule;
mod sgd;

pub use adam::Adam;
pub use adamw::AdamW;
pub use clip::clip_grad_norm;
pub use resume::{OptimState, Resumable};
pub use schedule::{Schedule, StepLr, WarmupCosineLr};
pub use sgd::Sgd;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::any::Any;
use core::fmt;
use core::mem::size_of;

use crate::error::{Caller, Error, Result};
use crate::grads::AsGrads;
use crate::graph::Handle;
use crate::machine::Machine;
use crate::num::Num;
use crate::scalar::Scalar;

/// An update rule applied to parameters from their gradients, in place and without
/// allocating.
///
/// Implementable outside the crate: [`Machine::for_each_pair`] hands out each parameter
/// (mutable) with its gradient, allocation-free, after checking the pairs.
pub trait Optimizer<T: Scalar>: LearningRate {
    /// Updates each parameter of `grads` (a [`Grads`](crate::Grads), or its
    /// [`GradHandles`](crate::GradHandles)) from its gradient's value in the machine's
    /// last run.
    ///
    /// Every pair and every hyper-parameter is checked before any parameter changes, so
    /// a failed step leaves the machine and the optimizer as they were.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a hyper-parameter that is out of range;
    /// [`Error::Mismatch`] if a pair is not one the machine was compiled with, or (for
    /// optimizers with state) the parameters are not those, by name and size, of the
    /// first step that had any; [`Error::WrongKind`] if a gradient is not a parameter's;
    /// [`Error::NotRun`] before a run; [`Error::TooLarge`] if the first step's state
    /// (moments, momentum) passes [`max_bytes`](crate::max_bytes) or cannot be allocated.
    fn step<G: AsGrads + ?Sized>(&mut self, m: &mut Machine<T>, grads: &G) -> Result<()>;
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
            reason: format!("{} {why}", Num(v)),
        })
    }
}

/// An optimizer's per-parameter buffers: one `Vec<T>` of `width * numel` elements per
/// parameter (element `i`'s `width` values at `i * width..`), made at the first step, and
/// the names of the parameters they were made for. Stored type-erased so that optimizers need no type parameter (`Sgd::new(0.1)` works
/// for `f32` and `f64` machines alike); the element type is fixed by the first step.
#[derive(Default)]
pub(crate) struct State {
    bufs: Option<Box<dyn Any + Send + Sync>>,
    /// The parameters' names, in the order of the first step's pairs.
    names: Vec<String>,
    /// Steps taken since the buffers were made.
    steps: u64,
}

impl State {
    /// Checks every pair, makes the buffers (zeros) at the first call and checks them
    /// against the parameters (names and sizes) after that. Returns the 1-based number
    /// of this step and the buffers, in `pairs` order. Allocates only at the first call
    /// or to report an error.
    pub(crate) fn buffers<T: Scalar>(
        &mut self,
        m: &Machine<T>,
        pairs: &[(Handle, Handle)],
        width: usize,
        what: &'static str,
        caller: Caller,
    ) -> Result<(u64, &mut [Vec<T>])> {
        m.check_pairs(pairs, what, caller)?;
        if pairs.is_empty() && self.bufs.is_none() {
            // nothing to step: making state here would tie the optimizer to no
            // parameters, and refuse the first real step
            return Ok((0, &mut []));
        }
        let mismatch = |reason| Error::Mismatch {
            what,
            reason,
            caller,
        };
        match &mut self.bufs {
            None => {
                let mut bufs: Vec<Vec<T>> = Vec::with_capacity(pairs.len());
                let mut names = Vec::with_capacity(pairs.len());
                for &(x, _) in pairs {
                    let (name, n) = m.param_info(x, caller)?;
                    // fallible: the state is allocated outside the machine's plan
                    let len = width.saturating_mul(n);
                    let shape = crate::Shape::from([len]);
                    let buf = crate::limit::try_vec(what, &[shape], len, T::zero(), caller)?;
                    bufs.push(buf);
                    names.push(String::from(name));
                }
                self.bufs = Some(Box::new(bufs));
                self.names = names;
                self.steps = 0;
            }
            Some(any) => {
                let bufs = any.downcast_mut::<Vec<Vec<T>>>().ok_or_else(|| {
                    mismatch(format!(
                        "the optimizer's state was made for another element type than {}",
                        T::NAME
                    ))
                })?;
                let mut same = pairs.len() == bufs.len();
                for (k, &(x, _)) in pairs.iter().enumerate().take(bufs.len()) {
                    let (name, n) = m.param_info(x, caller)?;
                    same &= name == self.names[k] && bufs[k].len() == width * n;
                }
                if !same {
                    let mut now = Vec::with_capacity(pairs.len());
                    for &(x, _) in pairs {
                        let (name, n) = m.param_info(x, caller)?;
                        now.push(format!("{name:?} ({n})"));
                    }
                    let then: Vec<String> = self
                        .names
                        .iter()
                        .zip(bufs.iter())
                        .map(|(name, b)| format!("{name:?} ({})", b.len() / width.max(1)))
                        .collect();
                    return Err(mismatch(format!(
                        "the optimizer's state was made at its first step for the parameters \
                         [{}] (elements in parentheses), but this step has [{}]; use a new \
                         optimizer for other parameters",
                        then.join(", "),
                        now.join(", ")
                    )));
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

    /// The bytes of the heap the state holds: its buffers and the parameters' names.
    pub(crate) fn bytes(&self) -> usize {
        fn bufs<T: Scalar>(any: &(dyn Any + Send + Sync)) -> Option<usize> {
            let v = any.downcast_ref::<Vec<Vec<T>>>()?;
            let inner: usize = v.iter().map(|b| b.capacity() * size_of::<T>()).sum();
            Some(size_of::<Vec<Vec<T>>>() + v.capacity() * size_of::<Vec<T>>() + inner)
        }
        let b = self
            .bufs
            .as_deref()
            .and_then(|b| bufs::<f32>(b).or_else(|| bufs::<f64>(b)))
            .unwrap_or(0);
        let names: usize = self.names.iter().map(String::capacity).sum();
        b + self.names.capacity() * size_of::<String>() + names
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
            names: self.names.clone(),
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
    use crate::GradHandles;

    /// `loss = sum(w * gin)`, so `d loss / d w = gin`, the fed input.
    pub(crate) struct Fixture {
        pub m: Machine<f64>,
        pub w: Handle,
        pub gin: Handle,
        pub grads: GradHandles,
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
            grads: grads.handles(),
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
