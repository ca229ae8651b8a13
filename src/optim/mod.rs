//! Optimizers: update a machine's parameters in place from its gradient outputs.

mod sgd;

pub use sgd::Sgd;

use crate::error::Result;
use crate::graph::AsHandle;
use crate::machine::Machine;
use crate::scalar::Scalar;

/// An update rule applied to parameters from their gradients, in place and without
/// allocating.
pub trait Optimizer<T: Scalar> {
    /// Updates each `params[i]` from `grads[i]` (values of the machine's last run).
    ///
    /// # Errors
    /// [`Error::Mismatch`](crate::Error::Mismatch) if the lists differ in length or a
    /// gradient's shape is not its parameter's; the machine's errors for nodes it does not
    /// hold or that are not parameters.
    fn step<P: AsHandle, G: AsHandle>(
        &mut self,
        m: &mut Machine<T>,
        params: &[P],
        grads: &[G],
    ) -> Result<()>;
}
