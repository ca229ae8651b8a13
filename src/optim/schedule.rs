//! Learning-rate schedules: a learning rate for each step, set on any optimizer.

use core::f64::consts::PI;

use num_traits::Float;

use super::{check_lr, LearningRate};
use crate::error::{Error, Result};

/// A learning rate as a function of the step (or epoch) number, usable with any
/// optimizer: call [`apply`](Schedule::apply) (or `opt.set_lr(schedule.lr(step))`)
/// before the step it is for.
///
/// ```
/// use tapegrad::prelude::*;
/// let schedule = WarmupCosineLr::new(1e-3, 0.0, 100, 1000)?;
/// let mut opt = Adam::new(schedule.lr(0));
/// for step in 0..1000 {
///     schedule.apply(&mut opt, step)?;
///     // m.run()?; opt.step(&mut m, &grads)?;
/// }
/// assert_eq!(opt.lr(), schedule.lr(999));
/// # Ok::<(), tapegrad::Error>(())
/// ```
pub trait Schedule {
    /// The learning rate for step `step` (counting from 0).
    fn lr(&self, step: usize) -> f64;

    /// Sets the learning rate of `opt` for step `step`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if the schedule's value
    /// is not a valid learning rate (it overflowed to infinity).
    fn apply<O: LearningRate + ?Sized>(&self, opt: &mut O, step: usize) -> Result<()>
    where
        Self: Sized,
    {
        opt.set_lr(self.lr(step))
    }
}

/// Step decay, as `torch.optim.lr_scheduler.StepLR`: the learning rate is multiplied by
/// `gamma` every `step_size` steps,
/// `lr(step) = base_lr * gamma^floor(step / step_size)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLr {
    base_lr: f64,
    step_size: usize,
    gamma: f64,
}

impl StepLr {
    /// Starts at `base_lr` and multiplies by `gamma` every `step_size` steps.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `base_lr` is not a valid learning rate, `step_size`
    /// is 0, or `gamma` is negative, NaN or infinite.
    pub fn new(base_lr: f64, step_size: usize, gamma: f64) -> Result<Self> {
        if step_size == 0 {
            return Err(Error::InvalidArgument {
                what: "step size",
                reason: "0 steps between decays; it must be at least 1".into(),
            });
        }
        Ok(StepLr {
            base_lr: check_lr(base_lr)?,
            step_size,
            gamma: super::check_non_negative("gamma", gamma)?,
        })
    }
}

impl Schedule for StepLr {
    fn lr(&self, step: usize) -> f64 {
        self.base_lr * Float::powf(self.gamma, (step / self.step_size) as f64)
    }
}

/// Linear warm-up, then cosine decay (`LinearLR` followed by `CosineAnnealingLR` in
/// PyTorch's terms). With `s` the start factor (default 0):
/// ```text
/// lr(step) = base_lr * (s + (1 - s) * step / warmup)                 step < warmup
/// lr(step) = min_lr + (base_lr - min_lr)
///            * (1 + cos(pi * (step - warmup) / (total - warmup))) / 2    warmup <= step < total
/// lr(step) = min_lr                                                   step >= total
/// ```
/// So `lr(0) = s * base_lr`, `lr(warmup) = base_lr`, and the rate reaches `min_lr` at
/// `total` and stays there. With `warmup = 0` it is a plain cosine decay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarmupCosineLr {
    base_lr: f64,
    min_lr: f64,
    warmup: usize,
    total: usize,
    start_factor: f64,
}

impl WarmupCosineLr {
    /// Warms up from 0 to `base_lr` over `warmup` steps, then decays to `min_lr` at step
    /// `total`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `base_lr` or `min_lr` is not a valid learning rate,
    /// `min_lr > base_lr`, or `warmup > total`.
    pub fn new(base_lr: f64, min_lr: f64, warmup: usize, total: usize) -> Result<Self> {
        let (base_lr, min_lr) = (check_lr(base_lr)?, check_lr(min_lr)?);
        if min_lr > base_lr {
            return Err(Error::InvalidArgument {
                what: "minimum learning rate",
                reason: alloc::format!("{min_lr} is above the base learning rate {base_lr}"),
            });
        }
        if warmup > total {
            return Err(Error::InvalidArgument {
                what: "warm-up",
                reason: alloc::format!("{warmup} steps is longer than the {total} in total"),
            });
        }
        Ok(WarmupCosineLr {
            base_lr,
            min_lr,
            warmup,
            total,
            start_factor: 0.0,
        })
    }

    /// Starts the warm-up at `start_factor * base_lr` instead of 0.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `start_factor` is not in `[0, 1]`.
    pub fn start_factor(mut self, start_factor: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&start_factor) {
            return Err(Error::InvalidArgument {
                what: "start factor",
                reason: alloc::format!("{start_factor} is not in [0, 1]"),
            });
        }
        self.start_factor = start_factor;
        Ok(self)
    }
}

impl Schedule for WarmupCosineLr {
    fn lr(&self, step: usize) -> f64 {
        let (base, min) = (self.base_lr, self.min_lr);
        if step < self.warmup {
            let s = self.start_factor;
            base * (s + (1.0 - s) * step as f64 / self.warmup as f64)
        } else if step < self.total {
            let progress = (step - self.warmup) as f64 / (self.total - self.warmup) as f64;
            min + (base - min) * (1.0 + Float::cos(PI * progress)) / 2.0
        } else {
            min
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Adam, Sgd};
    use alloc::string::ToString;
    use approx::assert_relative_eq;
    use core::f64::consts::FRAC_1_SQRT_2;

    #[test]
    fn step_decay() {
        // StepLR(step_size = 3, gamma = 0.5) from 0.1: 0.1 for steps 0-2, 0.05 for 3-5, ...
        let s = StepLr::new(0.1, 3, 0.5).unwrap();
        let want = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025];
        for (step, w) in want.into_iter().enumerate() {
            assert_relative_eq!(s.lr(step), w, max_relative = 1e-15);
        }
        assert_relative_eq!(s.lr(30), 0.1 / 1024.0, max_relative = 1e-15);
    }

    #[test]
    fn warmup_then_cosine() {
        // base 1, min 0.1, warm-up 4 steps, total 12 (cosine over 8 steps)
        let s = WarmupCosineLr::new(1.0, 0.1, 4, 12).unwrap();
        // warm-up: step / 4
        assert_eq!(s.lr(0), 0.0);
        assert_eq!(s.lr(1), 0.25);
        assert_eq!(s.lr(3), 0.75);
        assert_eq!(s.lr(4), 1.0);
        // a quarter of the way: 0.1 + 0.9 (1 + cos(pi/4)) / 2 = 0.1 + 0.45 (1 + 1/sqrt 2)
        //                                                  = 0.868198052...
        assert_relative_eq!(
            s.lr(6),
            0.1 + 0.45 * (1.0 + FRAC_1_SQRT_2),
            max_relative = 1e-15
        );
        assert_relative_eq!(s.lr(6), 0.868198052, max_relative = 1e-9);
        // half way: the mean of base and min
        assert_relative_eq!(s.lr(8), 0.55, max_relative = 1e-15);
        // three quarters: 0.1 + 0.45 (1 - 1/sqrt 2) = 0.231801948...
        assert_relative_eq!(
            s.lr(10),
            0.1 + 0.45 * (1.0 - FRAC_1_SQRT_2),
            max_relative = 1e-15
        );
        assert_relative_eq!(s.lr(10), 0.231801948, max_relative = 1e-8);
        assert_eq!(s.lr(12), 0.1);
        assert_eq!(s.lr(1000), 0.1);
        // start factor 0.2: 0.2 + 0.8 * step / 4
        let s = s.start_factor(0.2).unwrap();
        assert_relative_eq!(s.lr(0), 0.2);
        assert_relative_eq!(s.lr(2), 0.6);
        assert_eq!(s.lr(4), 1.0);
        // no warm-up: cosine from step 0
        let s = WarmupCosineLr::new(2.0, 0.0, 0, 4).unwrap();
        assert_eq!(s.lr(0), 2.0);
        assert_relative_eq!(s.lr(2), 1.0, max_relative = 1e-15);
        assert_eq!(s.lr(4), 0.0);
    }

    #[test]
    fn applies_to_any_optimizer() {
        let s = StepLr::new(0.1, 2, 0.1).unwrap();
        let mut sgd = Sgd::new(1.0).momentum(0.9);
        let mut adam = Adam::new(1.0);
        s.apply(&mut sgd, 2).unwrap();
        s.apply(&mut adam, 4).unwrap();
        assert_relative_eq!(sgd.lr(), 0.01, max_relative = 1e-15);
        assert_relative_eq!(adam.lr(), 0.001, max_relative = 1e-15);
        // through a trait object
        let dynamic: &mut dyn LearningRate = &mut adam;
        s.apply(dynamic, 0).unwrap();
        assert_eq!(adam.lr(), 0.1);
        // a value that overflowed is refused and the rate kept
        let huge = StepLr::new(1.0, 1, 1e300).unwrap();
        assert!(huge.apply(&mut adam, 2).is_err());
        assert_eq!(adam.lr(), 0.1);
    }

    #[test]
    fn bad_settings() {
        let e = StepLr::new(0.1, 0, 0.5).unwrap_err();
        assert!(e.to_string().starts_with("invalid step size"), "{e}");
        assert!(StepLr::new(0.1, 1, -0.5).is_err());
        assert!(StepLr::new(f64::NAN, 1, 0.5).is_err());
        let e = WarmupCosineLr::new(0.1, 0.2, 0, 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid minimum learning rate: 0.2 is above the base learning rate 0.1"
        );
        let e = WarmupCosineLr::new(0.1, 0.0, 11, 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid warm-up: 11 steps is longer than the 10 in total"
        );
        assert!(WarmupCosineLr::new(-0.1, 0.0, 0, 10).is_err());
        let s = WarmupCosineLr::new(0.1, 0.0, 1, 10).unwrap();
        assert!(s.start_factor(1.5).is_err());
        assert!(s.start_factor(f64::NAN).is_err());
    }
}
