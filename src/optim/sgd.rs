//! Stochastic gradient descent with momentum, Nesterov momentum and weight decay.

use core::panic::Location;

use super::{check_lr, check_non_negative, check_unit, LearningRate, Optimizer, State};
use crate::error::{Caller, Error, Result};
use crate::grads::AsGrads;
use crate::machine::Machine;
use crate::num::Num;
use crate::scalar::Scalar;

/// Stochastic gradient descent, as `torch.optim.SGD`.
///
/// For each parameter `p` with gradient `g`, one step is
/// ```text
/// d = g + weight_decay * p                        (L2 penalty in the gradient)
/// b = d                                           at the first step (momentum buffer)
/// b = momentum * b + (1 - dampening) * d          after it
/// d = d + momentum * b   if nesterov,   d = b  otherwise      (when momentum > 0)
/// p = p - lr * d
/// ```
/// With the defaults (momentum, dampening and weight decay 0) this is `p -= lr * g`, and
/// the optimizer holds no state. With momentum, one buffer per parameter is allocated at
/// the first step.
///
/// Settings are chained after [`Sgd::new`] and cannot fail half-way; the whole
/// configuration is checked at every step, before anything changes, so a bad one is an
/// [`Error::InvalidArgument`] from the first step:
/// ```
/// use tapegrad::prelude::*;
/// let g = Graph::<f64>::new();
/// let w = g.param("w", tapegrad::ndarray::arr1(&[1.0]));
/// let loss = (w * w).sum(); // d/dw = 2w = 2
/// let grads = g.grad(loss, &[w])?;
/// let mut m = g.compile(&[loss], &grads)?;
/// m.run()?;
/// Sgd::new(0.25).step(&mut m, &grads)?; // 1 - 0.25 * 2
/// assert_eq!(m.value(w)?[[0]], 0.5);
///
/// let mut opt = Sgd::new(0.1).momentum(0.9).nesterov(true).weight_decay(1e-4);
/// opt.step(&mut m, &grads)?;
/// let mut bad = Sgd::new(0.1).nesterov(true); // Nesterov needs momentum
/// assert!(bad.step(&mut m, &grads).is_err());
/// # Ok::<(), tapegrad::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Sgd {
    pub(super) lr: f64,
    pub(super) momentum: f64,
    pub(super) dampening: f64,
    pub(super) nesterov: bool,
    pub(super) weight_decay: f64,
    pub(super) state: State,
}

impl Sgd {
    /// Bytes of the heap its state holds, outside any machine ([`Machine::memory`]
    /// does not count them): with momentum, one buffer per parameter's elements, and the parameters' names. 0 until a step makes the state.
    ///
    /// [`Machine::memory`]: crate::Machine::memory
    pub fn state_bytes(&self) -> usize {
        self.state.bytes()
    }

    /// SGD with learning rate `lr`, no momentum and no weight decay. The learning rate
    /// must be a finite number >= 0, checked at each [`step`](Optimizer::step).
    pub fn new(lr: f64) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            state: State::default(),
        }
    }

    /// Sets the momentum factor (`torch.optim.SGD`'s `momentum`, default 0), in `[0, 1)`.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets the dampening of the momentum buffer's update (default 0), in `[0, 1]`.
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }

    /// Turns Nesterov momentum on or off (default off); on, it needs a momentum > 0 and
    /// zero dampening (as in PyTorch).
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// Sets the L2 penalty added to the gradient, `weight_decay * p` (default 0), a
    /// finite number >= 0.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Checks the configuration: what [`step`](Optimizer::step) does first.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the first setting out of range: the learning
    /// rate, momentum, dampening or weight decay, or Nesterov momentum without momentum
    /// or with dampening.
    pub fn check(&self) -> Result<()> {
        check_lr(self.lr)?;
        check_unit("momentum", self.momentum)?;
        if !(0.0..=1.0).contains(&self.dampening) {
            return Err(Error::InvalidArgument {
                what: "dampening",
                reason: alloc::format!("{} is not in [0, 1]", Num(self.dampening)),
            });
        }
        check_non_negative("weight decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::InvalidArgument {
                what: "Nesterov momentum",
                reason: alloc::format!(
                    "it needs a momentum > 0 and zero dampening, but momentum is {} and \
                     dampening {}",
                    Num(self.momentum),
                    Num(self.dampening)
                ),
            });
        }
        Ok(())
    }
}

impl LearningRate for Sgd {
    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) -> Result<()> {
        self.lr = check_lr(lr)?;
        Ok(())
    }
}

impl<T: Scalar> Optimizer<T> for Sgd {
    #[track_caller]
    fn step<G: AsGrads + ?Sized>(&mut self, m: &mut Machine<T>, grads: &G) -> Result<()> {
        const WHAT: &str = "Sgd::step";
        let caller = Caller::from(Location::caller());
        self.check()?;
        let pairs = grads.grad_pairs();
        let lr = T::of(self.lr);
        let wd = T::of(self.weight_decay);
        let decay = self.weight_decay != 0.0;
        if self.momentum == 0.0 {
            m.check_pairs(pairs, WHAT, caller)?;
            return m.each_pair(pairs, caller, move |pg| {
                crate::par::runs3(pg.param, &mut [], pg.grad, |p, _, g| {
                    for (p, &g) in p.iter_mut().zip(g) {
                        let d = if decay { g + wd * *p } else { g };
                        *p = *p - lr * d;
                    }
                })
            });
        }
        let mu = T::of(self.momentum);
        let keep = T::of(1.0 - self.dampening);
        let nesterov = self.nesterov;
        let (step, bufs) = self.state.buffers(m, pairs, 1, WHAT, caller)?;
        m.each_pair(pairs, caller, move |pg| {
            crate::par::runs3(pg.param, &mut bufs[pg.index], pg.grad, |p, b, g| {
                for ((p, &g), b) in p.iter_mut().zip(g).zip(b) {
                    let d = if decay { g + wd * *p } else { g };
                    *b = if step == 1 { d } else { mu * *b + keep * d };
                    let d = if nesterov { d + mu * *b } else { *b };
                    *p = *p - lr * d;
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_util::fixture;
    use alloc::format;
    use alloc::string::ToString;
    use approx::assert_relative_eq;

    const GRADS: [[f64; 2]; 3] = [[1.0, -2.0], [0.5, 3.0], [-1.0, 0.25]];

    /// Runs three steps on `w0 = [1, -1]` with the gradients `GRADS`.
    fn three_steps(mut opt: Sgd) -> [f64; 2] {
        let mut f = fixture([1.0, -1.0]);
        for g in GRADS {
            f.run_with(g);
            opt.step(&mut f.m, &f.grads).unwrap();
        }
        f.w()
    }

    #[test]
    fn plain() {
        // p = p - 0.1 * g, summed: 1 - 0.1 * (1 + 0.5 - 1) = 0.95; -1 - 0.1 * 1.25 = -1.125
        let w = three_steps(Sgd::new(0.1));
        assert_relative_eq!(w[0], 0.95, epsilon = 1e-15);
        assert_relative_eq!(w[1], -1.125, epsilon = 1e-15);
    }

    #[test]
    fn momentum_and_dampening() {
        // element 0, mu = 0.9, dampening 0.5, lr 0.1, g = 1, 0.5, -1:
        // b1 = 1 (no dampening at the first step)   p = 1 - 0.1 = 0.9
        // b2 = 0.9 * 1 + 0.5 * 0.5 = 1.15          p = 0.9 - 0.115 = 0.785
        // b3 = 0.9 * 1.15 + 0.5 * -1 = 0.535       p = 0.785 - 0.0535 = 0.7315
        // element 1, g = -2, 3, 0.25:
        // b1 = -2                                   p = -1 + 0.2 = -0.8
        // b2 = -1.8 + 1.5 = -0.3                    p = -0.8 + 0.03 = -0.77
        // b3 = -0.27 + 0.125 = -0.145               p = -0.77 + 0.0145 = -0.7555
        let opt = Sgd::new(0.1).momentum(0.9);
        let w = three_steps(opt.dampening(0.5));
        assert_relative_eq!(w[0], 0.7315, epsilon = 1e-14);
        assert_relative_eq!(w[1], -0.7555, epsilon = 1e-14);
    }

    #[test]
    fn nesterov_with_weight_decay() {
        // mu = 0.9, wd = 0.1, lr = 0.1; d = g + 0.1 p; b as plain momentum; p -= lr (d + mu b)
        // element 0 (p = 1; g = 1, 0.5, -1):
        // d1 = 1.1,                b1 = 1.1,     p = 1 - 0.1 (1.1 + 0.99)       = 0.791
        // d2 = 0.5 + 0.0791=0.5791, b2 = 0.99 + 0.5791 = 1.5691,
        //                          p = 0.791 - 0.1 (0.5791 + 1.41219)          = 0.591871
        // d3 = -1 + 0.0591871 = -0.9408129, b3 = 1.41219 - 0.9408129 = 0.4713771,
        //                          p = 0.591871 - 0.1 (-0.9408129 + 0.42423939) = 0.643528351
        let reference = |mut p: f64, gs: [f64; 3]| {
            let mut b = 0.0;
            for (k, g) in gs.into_iter().enumerate() {
                let d = g + 0.1 * p;
                b = if k == 0 { d } else { 0.9 * b + d };
                p -= 0.1 * (d + 0.9 * b);
            }
            p
        };
        let opt = Sgd::new(0.1).momentum(0.9);
        let opt = opt.nesterov(true).weight_decay(0.1);
        let w = three_steps(opt);
        assert_relative_eq!(w[0], 0.643528351, epsilon = 1e-14);
        assert_relative_eq!(w[0], reference(1.0, [1.0, 0.5, -1.0]), epsilon = 1e-14);
        assert_relative_eq!(w[1], reference(-1.0, [-2.0, 3.0, 0.25]), epsilon = 1e-14);
    }

    #[test]
    fn weight_decay_without_momentum() {
        // p = p - 0.1 (g + 0.5 p) = 0.95 p - 0.1 g
        // element 0: 0.95 - 0.1 = 0.85; 0.8075 - 0.05 = 0.7575; 0.719625 + 0.1 = 0.819625
        let w = three_steps(Sgd::new(0.1).weight_decay(0.5));
        assert_relative_eq!(w[0], 0.819625, epsilon = 1e-14);
    }

    #[test]
    fn bad_settings() {
        let e = Sgd::new(0.1).nesterov(true).check().unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidArgument {
                what: "Nesterov momentum",
                ..
            }
        ));
        // the order of the setters does not matter: the whole configuration is checked
        assert!(Sgd::new(0.1).nesterov(true).momentum(0.9).check().is_ok());
        let damped = Sgd::new(0.1).momentum(0.9).dampening(0.1);
        assert!(damped.nesterov(true).check().is_err());
        let nesterov = Sgd::new(0.1).momentum(0.9).nesterov(true);
        assert!(nesterov.momentum(0.0).check().is_err());
        for mu in [-0.1, 1.0, f64::NAN] {
            let e = Sgd::new(0.1).momentum(mu).check().unwrap_err();
            assert!(e.to_string().starts_with("invalid momentum: "), "{e}");
        }
        let e = Sgd::new(0.1).weight_decay(-1e-4).check().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid weight decay: -0.0001 is not a finite number >= 0"
        );
        assert!(Sgd::new(0.1).dampening(1.5).check().is_err());
        let mut opt = Sgd::new(0.1);
        assert!(opt.set_lr(f64::NAN).is_err());
        assert_eq!(opt.lr(), 0.1);
        opt.set_lr(0.01).unwrap();
        assert_eq!(opt.lr(), 0.01);
    }

    #[test]
    fn failed_step_changes_nothing() {
        let mut f = fixture([1.0, -1.0]);
        f.run_with([1.0, 1.0]);
        // a bad setting is found at the first step: nothing moves, no state is made
        let mut bad = Sgd::new(0.1).momentum(1.5);
        let e = bad.step(&mut f.m, &f.grads).unwrap_err();
        assert_eq!(e.to_string(), "invalid momentum: 1.5 is not in [0, 1)");
        assert_eq!(f.w(), [1.0, -1.0]);
        assert!(format!("{bad:?}").contains("params: 0"), "{bad:?}");
        let mut opt = Sgd::new(0.1).momentum(0.9);
        opt.step(&mut f.m, &f.grads).unwrap();
        assert_eq!(f.w(), [0.9, -1.1]);
        // the state is tied to the parameter "w": another machine's "v" is refused
        let g = crate::Graph::<f64>::new();
        let v = g.param("v", ndarray::arr1(&[1.0, -1.0]));
        let grads = g.grad(v.sum(), &[v]).unwrap();
        let mut m = g.compile(&[], &grads).unwrap();
        m.run().unwrap();
        let e = opt.step(&mut m, &grads).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(r#"["w" (2)]"#), "{msg}");
        assert!(msg.contains(r#"["v" (2)]"#), "{msg}");
        assert_eq!(m.value(v).unwrap().as_slice(), Some(&[1.0, -1.0][..]));
    }
}
