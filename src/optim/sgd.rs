//! Plain stochastic gradient descent.

use core::panic::Location;

use super::Optimizer;
use crate::error::{Caller, Error, Result};
use crate::graph::AsHandle;
use crate::machine::Machine;
use crate::scalar::Scalar;

/// Stochastic gradient descent: `p -= lr * g`.
///
/// ```
/// use tapegrad::prelude::*;
/// let g = Graph::<f64>::new();
/// let w = g.param("w", ndarray::arr1(&[1.0]));
/// let loss = (w * w).sum(); // d/dw = 2w = 2
/// let grads = g.grad(loss, &[w])?;
/// let mut m = g.compile(&[loss], &grads)?;
/// m.run()?;
/// Sgd::new(0.25)?.step(&mut m, &[w], &grads)?; // 1 - 0.25 * 2
/// assert_eq!(m.value(w)?[[0]], 0.5);
/// # Ok::<(), tapegrad::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    lr: f64,
}

impl Sgd {
    /// SGD with learning rate `lr`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `lr` is negative, NaN or infinite.
    pub fn new(lr: f64) -> Result<Self> {
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::InvalidArgument {
                what: "learning rate",
                reason: alloc::format!("{lr} is not a finite number >= 0"),
            });
        }
        Ok(Sgd { lr })
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }
}

impl<T: Scalar> Optimizer<T> for Sgd {
    #[track_caller]
    fn step<P: AsHandle, G: AsHandle>(
        &mut self,
        m: &mut Machine<T>,
        params: &[P],
        grads: &[G],
    ) -> Result<()> {
        let caller = Caller::from(Location::caller());
        if params.len() != grads.len() {
            return Err(Error::Mismatch {
                what: "Sgd::step",
                reason: alloc::format!("{} parameters but {} gradients", params.len(), grads.len()),
                caller,
            });
        }
        let lr = T::of(self.lr);
        for (p, g) in params.iter().zip(grads) {
            let (p, g) = m.param_and_grad(p, g, caller)?;
            for (p, &g) in p.iter_mut().zip(g) {
                *p = *p - lr * g;
            }
        }
        Ok(())
    }
}
