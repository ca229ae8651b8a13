//! Adam, and the update it shares with AdamW.

use core::panic::Location;

use super::{check_lr, check_non_negative, check_unit, LearningRate, Optimizer, State};
use crate::error::{Caller, Error, Result};
use crate::grads::AsGrads;
use crate::graph::Handle;
use crate::machine::Machine;
use crate::num::Num;
use crate::scalar::Scalar;

/// Adam, as `torch.optim.Adam` (without `amsgrad`).
///
/// For each parameter `p` with gradient `g`, step `t` (from 1) is
/// ```text
/// g = g + weight_decay * p                       (L2 penalty in the gradient)
/// m = beta1 * m + (1 - beta1) * g                (first moment, 0 before step 1)
/// v = beta2 * v + (1 - beta2) * g^2              (second moment, 0 before step 1)
/// p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// ```
/// Defaults as PyTorch: `betas = (0.9, 0.999)`, `eps = 1e-8`, `weight_decay = 0`. The
/// moments are allocated at the first step, in the machine's element type; later steps
/// allocate nothing. For weight decay decoupled from the gradient, use [`AdamW`](super::AdamW).
///
/// The setters cannot fail; the configuration is checked at every step before anything
/// changes ([`Adam::check`]), so a bad setting is an [`Error::InvalidArgument`] from the
/// first step.
///
/// ```
/// use tapegrad::prelude::*;
/// // Minimise (w - 3)^2 from w = 0.
/// let g = Graph::<f32>::new();
/// let w = g.param("w", tapegrad::ndarray::arr1(&[0.0f32]));
/// let loss = (w - 3.0).square().sum();
/// let grads = g.grad(loss, &[w])?;
/// let mut m = g.compile(&[loss], &grads)?;
/// let mut opt = Adam::new(0.1).betas(0.9, 0.99);
/// m.run()?;
/// opt.step(&mut m, &grads)?;
/// // the first step moves by lr: m̂ / sqrt(v̂) = g / |g| = -1
/// assert!((m.value(w)?[[0]] - 0.1).abs() < 1e-6);
/// for _ in 0..300 {
///     m.run()?;
///     opt.step(&mut m, &grads)?;
/// }
/// assert!((m.value(w)?[[0]] - 3.0).abs() < 1e-2);
/// # Ok::<(), tapegrad::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Adam {
    pub(super) lr: f64,
    pub(super) beta1: f64,
    pub(super) beta2: f64,
    pub(super) eps: f64,
    pub(super) weight_decay: f64,
    /// AdamW: `p *= 1 - lr * weight_decay` instead of the L2 term in the gradient.
    pub(super) decoupled: bool,
    pub(super) state: State,
}

impl Adam {
    /// Bytes of the heap its state holds, outside any machine ([`Machine::memory`]
    /// does not count them): two buffers of each parameter's elements (the moments), and the parameters' names. 0 until a step makes the state.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let w = g.param("w", init::zeros([100])?);
    /// let grads = g.grad(w.square().sum(), &[w])?;
    /// let mut m = g.compile(&[], &grads)?;
    /// let mut opt = Adam::new(1e-3);
    /// assert_eq!(opt.state_bytes(), 0);
    /// m.run()?;
    /// opt.step(&mut m, &grads)?;
    /// assert!(opt.state_bytes() >= 2 * 100 * 4); // two moments of 100 f32
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    ///
    /// [`Machine::memory`]: crate::Machine::memory
    pub fn state_bytes(&self) -> usize {
        self.state.bytes()
    }

    /// Adam with learning rate `lr` (a finite number >= 0) and PyTorch's defaults for the
    /// rest.
    pub fn new(lr: f64) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            state: State::default(),
        }
    }

    /// AdamW's settings: [`Adam::new`] with decoupled weight decay of 0.01.
    pub(super) fn decoupled(lr: f64) -> Self {
        let mut adam = Adam::new(lr);
        adam.decoupled = true;
        adam.weight_decay = 0.01;
        adam
    }

    /// Sets the decay rates of the moment estimates (default `(0.9, 0.999)`), each in
    /// `[0, 1)`.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// Sets the term added to the denominator (default `1e-8`), a finite number > 0.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets the weight decay, an L2 penalty `weight_decay * p` added to the gradient
    /// (default 0), a finite number >= 0.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Checks the configuration: what [`step`](Optimizer::step) does first.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the first setting out of range: the learning
    /// rate, `beta1`, `beta2`, `eps` or the weight decay.
    pub fn check(&self) -> Result<()> {
        check_lr(self.lr)?;
        check_unit("beta1", self.beta1)?;
        check_unit("beta2", self.beta2)?;
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::InvalidArgument {
                what: "eps",
                reason: alloc::format!("{} is not a finite number > 0", Num(self.eps)),
            });
        }
        check_non_negative("weight decay", self.weight_decay)?;
        Ok(())
    }

    /// The update of both Adam and AdamW.
    pub(super) fn update<T: Scalar>(
        &mut self,
        m: &mut Machine<T>,
        pairs: &[(Handle, Handle)],
        what: &'static str,
        caller: Caller,
    ) -> Result<()> {
        self.check()?;
        let (b1, b2) = (self.beta1, self.beta2);
        let lr = self.lr;
        let (wd, decoupled) = (self.weight_decay, self.decoupled);
        let (t, bufs) = self.state.buffers(m, pairs, 2, what, caller)?;
        // Bias corrections in f64, as PyTorch computes them on Python floats: a few f64
        // operations per step, none per element; beta^t by repeated squaring, so no f64
        // `pow` (nor `sqrt`) is linked into f32 firmware, and the root is taken in `T`.
        let step_size = T::of(lr / (1.0 - powi(b1, t)));
        let bc2_sqrt = T::of(1.0 - powi(b2, t)).root();
        let (b1, b2, eps) = (T::of(b1), T::of(b2), T::of(self.eps));
        let (one_b1, one_b2) = (T::one() - b1, T::one() - b2);
        let l2 = T::of(if decoupled { 0.0 } else { wd });
        let shrink = T::of(if decoupled { 1.0 - lr * wd } else { 1.0 });
        // each element's two moments side by side, so that a run of the parameter has
        // its moments in one run of the buffer (split over the threads by `par::runs3`)
        m.each_pair(pairs, caller, move |pg| {
            crate::par::runs3(pg.param, &mut bufs[pg.index], pg.grad, |p, mv, g| {
                for ((p, &g), mv) in p.iter_mut().zip(g).zip(mv.chunks_exact_mut(2)) {
                    let g = g + l2 * *p;
                    *p = *p * shrink;
                    let m1 = b1 * mv[0] + one_b1 * g;
                    let v = b2 * mv[1] + one_b2 * g * g;
                    *p = *p - step_size * m1 / (v.root() / bc2_sqrt + eps);
                    mv[0] = m1;
                    mv[1] = v;
                }
            })
        })
    }
}

/// `b^t` by repeated squaring: within about `2·log2(t)` ulp of the exact power, with no
/// `pow` from a math library.
fn powi(b: f64, mut t: u64) -> f64 {
    let (mut acc, mut sq) = (1.0, b);
    while t > 0 {
        if t & 1 == 1 {
            acc *= sq;
        }
        sq *= sq;
        t >>= 1;
    }
    acc
}

impl LearningRate for Adam {
    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) -> Result<()> {
        self.lr = check_lr(lr)?;
        Ok(())
    }
}

impl<T: Scalar> Optimizer<T> for Adam {
    #[track_caller]
    fn step<G: AsGrads + ?Sized>(&mut self, m: &mut Machine<T>, grads: &G) -> Result<()> {
        let caller = Location::caller().into();
        self.update(m, grads.grad_pairs(), "Adam::step", caller)
    }
}

#[cfg(test)]
mod tests;
