//! AdamW: Adam with decoupled weight decay.

use core::panic::Location;

use super::{Adam, LearningRate, Optimizer};
use crate::error::Result;
use crate::grads::AsGrads;
use crate::machine::Machine;
use crate::scalar::Scalar;

/// AdamW, as `torch.optim.AdamW` (without `amsgrad`): Adam whose weight decay shrinks the
/// parameter directly instead of entering the gradient and its moments.
///
/// For each parameter `p` with gradient `g`, step `t` (from 1) is
/// ```text
/// p = p * (1 - lr * weight_decay)                (decoupled decay, first)
/// m = beta1 * m + (1 - beta1) * g
/// v = beta2 * v + (1 - beta2) * g^2
/// p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// ```
/// Defaults as PyTorch: `betas = (0.9, 0.999)`, `eps = 1e-8`, `weight_decay = 0.01`. The
/// setters and their checks are [`Adam`]'s: they cannot fail, and a bad setting is an
/// [`Error::InvalidArgument`](crate::Error::InvalidArgument) from the first step.
#[derive(Clone, Debug)]
pub struct AdamW {
    pub(super) adam: Adam,
}

impl AdamW {
    /// Bytes of the heap its state holds: as [`Adam::state_bytes`].
    pub fn state_bytes(&self) -> usize {
        self.adam.state_bytes()
    }

    /// AdamW with learning rate `lr` (a finite number >= 0), weight decay 0.01 and
    /// Adam's defaults for the rest.
    pub fn new(lr: f64) -> Self {
        AdamW {
            adam: Adam::decoupled(lr),
        }
    }

    /// Sets the decay rates of the moment estimates (default `(0.9, 0.999)`), each in
    /// `[0, 1)`.
    pub fn betas(self, beta1: f64, beta2: f64) -> Self {
        AdamW {
            adam: self.adam.betas(beta1, beta2),
        }
    }

    /// Sets the term added to the denominator (default `1e-8`), a finite number > 0.
    pub fn eps(self, eps: f64) -> Self {
        AdamW {
            adam: self.adam.eps(eps),
        }
    }

    /// Sets the decoupled weight decay: each step first multiplies the parameter by
    /// `1 - lr * weight_decay` (default 0.01), a finite number >= 0.
    pub fn weight_decay(self, weight_decay: f64) -> Self {
        AdamW {
            adam: self.adam.weight_decay(weight_decay),
        }
    }

    /// Checks the configuration: what [`step`](Optimizer::step) does first.
    ///
    /// # Errors
    /// As [`Adam::check`].
    pub fn check(&self) -> Result<()> {
        self.adam.check()
    }
}

impl LearningRate for AdamW {
    fn lr(&self) -> f64 {
        self.adam.lr()
    }

    fn set_lr(&mut self, lr: f64) -> Result<()> {
        self.adam.set_lr(lr)
    }
}

impl<T: Scalar> Optimizer<T> for AdamW {
    #[track_caller]
    fn step<G: AsGrads + ?Sized>(&mut self, m: &mut Machine<T>, grads: &G) -> Result<()> {
        let caller = Location::caller().into();
        self.adam
            .update(m, grads.grad_pairs(), "AdamW::step", caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_util::fixture;
    use alloc::string::ToString;
    use approx::assert_relative_eq;

    #[test]
    fn three_steps_by_hand() {
        // lr 0.1, wd 0.5, betas (0.5, 0.75), eps 1e-8 (negligible here), element 0,
        // p = 1; g = 1, 0.5, -1. The moments are Adam's without decay (see adam.rs):
        // m̂ / sqrt(v̂) = 1, (2/3) / sqrt(4/7), (-2/7) / sqrt(28/37) at t = 1, 2, 3.
        // t=1: p = 1 * (1 - 0.05) = 0.95,        p = 0.95 - 0.1 * 1 = 0.85
        // t=2: p = 0.85 * 0.95 = 0.8075,         p = 0.8075 - 0.1 * 0.8819171 = 0.7193083
        // t=3: p = 0.7193083 * 0.95 = 0.6833429, p = 0.6833429 + 0.1 * 0.3284392 = 0.7161868
        let step = |p: f64, r: f64| p * 0.95 - 0.1 * r;
        let r2 = (2.0 / 3.0) / (4.0f64 / 7.0).sqrt();
        let r3 = (-2.0 / 7.0) / (28.0f64 / 37.0).sqrt();
        let want = step(step(step(1.0, 1.0), r2), r3);
        assert_relative_eq!(want, 0.7161868, epsilon = 1e-7);
        let mut f = fixture([1.0, -1.0]);
        let opt = AdamW::new(0.1).betas(0.5, 0.75);
        let mut opt = opt.weight_decay(0.5);
        for g in [[1.0, -2.0], [0.5, 3.0], [-1.0, 0.25]] {
            f.run_with(g);
            opt.step(&mut f.m, &f.grads).unwrap();
        }
        assert_relative_eq!(f.w()[0], want, max_relative = 1e-7);
    }

    #[test]
    fn default_decay_and_reference() {
        // AdamW with PyTorch's defaults against the rule written out, four steps
        let gs = [[1.0, -2.0], [0.5, 3.0], [-1.0, 0.25], [2.0, 0.0]];
        let mut f = fixture([1.0, -1.0]);
        let mut opt = AdamW::new(0.05);
        for g in gs {
            f.run_with(g);
            opt.step(&mut f.m, &f.grads).unwrap();
        }
        for (i, mut p) in [1.0f64, -1.0].into_iter().enumerate() {
            let (mut m, mut v) = (0.0, 0.0);
            for (k, g) in gs.iter().map(|g| g[i]).enumerate() {
                let t = (k + 1) as i32;
                p *= 1.0 - 0.05 * 0.01;
                m = 0.9 * m + 0.1 * g;
                v = 0.999 * v + 0.001 * g * g;
                let (mh, vh) = (m / (1.0 - 0.9f64.powi(t)), v / (1.0 - 0.999f64.powi(t)));
                p -= 0.05 * mh / (vh.sqrt() + 1e-8);
            }
            assert_relative_eq!(f.w()[i], p, max_relative = 1e-13);
        }
    }

    #[test]
    fn settings() {
        let mut opt = AdamW::new(1e-3);
        assert_eq!(opt.lr(), 1e-3);
        opt.set_lr(5e-4).unwrap();
        assert_eq!(opt.lr(), 5e-4);
        let e = AdamW::new(1e-3).weight_decay(-0.01).check().unwrap_err();
        assert!(e.to_string().contains("weight decay"), "{e}");
        assert!(AdamW::new(1e-3).betas(0.9, 1.0).check().is_err());
        assert!(AdamW::new(1e-3).eps(0.0).check().is_err());
        assert!(AdamW::new(f64::INFINITY).check().is_err());
        // the error names AdamW
        let mut f = fixture([1.0, -1.0]);
        f.run_with([1.0, 1.0]);
        opt.step(&mut f.m, &f.grads).unwrap();
        let g = crate::Graph::<f64>::new();
        let v = g.param("v", ndarray::arr1(&[1.0, -1.0]));
        let grads = g.grad(v.sum(), &[v]).unwrap();
        let mut m = g.compile(&[], &grads).unwrap();
        m.run().unwrap();
        let e = opt.step(&mut m, &grads).unwrap_err();
        assert!(e.to_string().starts_with("AdamW::step at "), "{e}");
    }
}
