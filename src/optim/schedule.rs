//! Learning-rate schedules: a learning rate for each step, set on any optimizer.

use core::f64::consts::PI;

use num_traits::Float;

use super::{check_lr, LearningRate};
use crate::error::{Error, Result};
use crate::num::Num;

/// A learning rate as a function of the step (or epoch) number, usable with any
/// optimizer: call [`apply`](Schedule::apply) (or `opt.set_lr(schedule.lr(step))`)
/// before the step it is for.
///
/// ```
/// use tapegrad::prelude::*;
/// let schedule = WarmupCosineLr::new(1e-3, 0.0, 100, 1000);
/// let mut opt = Adam::new(schedule.lr(0));
/// for step in 0..1000 {
///     schedule.apply(&mut opt, step)?;
///     // m.run()?; opt.step(&mut m, &grads)?;
/// }
/// assert_eq!(opt.lr(), schedule.lr(999));
/// # Ok::<(), tapegrad::Error>(())
/// ```
///
/// Schedules are built without failing; their settings are checked by
/// [`check`](Schedule::check), which [`apply`](Schedule::apply) calls first.
pub trait Schedule {
    /// The learning rate for step `step` (counting from 0); NaN if the settings are
    /// invalid (see [`check`](Schedule::check)).
    fn lr(&self, step: usize) -> f64;

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming the first invalid
    /// setting.
    fn check(&self) -> Result<()> {
        Ok(())
    }

    /// Sets the learning rate of `opt` for step `step`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if a setting is invalid
    /// or the schedule's value is not a valid learning rate (it overflowed to infinity);
    /// the optimizer's learning rate is then unchanged.
    fn apply<O: LearningRate + ?Sized>(&self, opt: &mut O, step: usize) -> Result<()>
    where
        Self: Sized,
    {
        self.check()?;
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
    /// Starts at `base_lr` (a valid learning rate) and multiplies by `gamma` (a finite
    /// number >= 0) every `step_size` (at least 1) steps.
    pub fn new(base_lr: f64, step_size: usize, gamma: f64) -> Self {
        StepLr {
            base_lr,
            step_size,
            gamma,
        }
    }
}

impl Schedule for StepLr {
    fn lr(&self, step: usize) -> f64 {
        match step.checked_div(self.step_size) {
            Some(k) if self.check().is_ok() => self.base_lr * Float::powf(self.gamma, k as f64),
            _ => f64::NAN,
        }
    }

    /// # Errors
    /// [`Error::InvalidArgument`] if `base_lr` is not a valid learning rate, `step_size`
    /// is 0, or `gamma` is negative, NaN or infinite.
    fn check(&self) -> Result<()> {
        if self.step_size == 0 {
            return Err(Error::InvalidArgument {
                what: "step size",
                reason: "0 steps between decays; it must be at least 1".into(),
            });
        }
        check_lr(self.base_lr)?;
        super::check_non_negative("gamma", self.gamma)?;
        Ok(())
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
/// So `lr(0) = s * base_lr`, `lr(warmup) = base_lr` (when `warmup < total`), and the
/// rate reaches `min_lr` at `total` and stays there. With `warmup = 0` it is a plain
/// cosine decay; with `warmup = total` there is no decay: the rate drops to `min_lr` at
/// `total`.
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
    /// `total`; `min_lr <= base_lr` (both valid learning rates), `warmup <= total`.
    pub fn new(base_lr: f64, min_lr: f64, warmup: usize, total: usize) -> Self {
        WarmupCosineLr {
            base_lr,
            min_lr,
            warmup,
            total,
            start_factor: 0.0,
        }
    }

    /// Starts the warm-up at `start_factor * base_lr` (`start_factor` in `[0, 1]`)
    /// instead of 0.
    pub fn start_factor(mut self, start_factor: f64) -> Self {
        self.start_factor = start_factor;
        self
    }
}

impl Schedule for WarmupCosineLr {
    /// # Errors
    /// [`Error::InvalidArgument`] if `base_lr` or `min_lr` is not a valid learning rate,
    /// `min_lr > base_lr`, `warmup > total`, or `start_factor` is not in `[0, 1]`.
    fn check(&self) -> Result<()> {
        let (base_lr, min_lr) = (check_lr(self.base_lr)?, check_lr(self.min_lr)?);
        if min_lr > base_lr {
            return Err(Error::InvalidArgument {
                what: "minimum learning rate",
                reason: alloc::format!(
                    "{} is above the base learning rate {}",
                    Num(min_lr),
                    Num(base_lr)
                ),
            });
        }
        if self.warmup > self.total {
            return Err(Error::InvalidArgument {
                what: "warm-up",
                reason: alloc::format!(
                    "{} steps is longer than the {} in total",
                    self.warmup,
                    self.total
                ),
            });
        }
        if !(0.0..=1.0).contains(&self.start_factor) {
            return Err(Error::InvalidArgument {
                what: "start factor",
                reason: alloc::format!("{} is not in [0, 1]", Num(self.start_factor)),
            });
        }
        Ok(())
    }

    fn lr(&self, step: usize) -> f64 {
        if self.check().is_err() {
            return f64::NAN;
        }
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
        let s = StepLr::new(0.1, 3, 0.5);
        let want = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025];
        for (step, w) in want.into_iter().enumerate() {
            assert_relative_eq!(s.lr(step), w, max_relative = 1e-15);
        }
        assert_relative_eq!(s.lr(30), 0.1 / 1024.0, max_relative = 1e-15);
    }

    #[test]
    fn warmup_then_cosine() {
        // base 1, min 0.1, warm-up 4 steps, total 12 (cosine over 8 steps)
        let s = WarmupCosineLr::new(1.0, 0.1, 4, 12);
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
        let s = s.start_factor(0.2);
        assert_relative_eq!(s.lr(0), 0.2);
        assert_relative_eq!(s.lr(2), 0.6);
        assert_eq!(s.lr(4), 1.0);
        // no warm-up: cosine from step 0
        let s = WarmupCosineLr::new(2.0, 0.0, 0, 4);
        assert_eq!(s.lr(0), 2.0);
        assert_relative_eq!(s.lr(2), 1.0, max_relative = 1e-15);
        assert_eq!(s.lr(4), 0.0);
    }

    #[test]
    fn applies_to_any_optimizer() {
        let s = StepLr::new(0.1, 2, 0.1);
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
        let huge = StepLr::new(1.0, 1, 1e300);
        assert!(huge.apply(&mut adam, 2).is_err());
        assert_eq!(adam.lr(), 0.1);
    }

    #[test]
    fn bad_settings() {
        let e = StepLr::new(0.1, 0, 0.5).check().unwrap_err();
        assert!(e.to_string().starts_with("invalid step size"), "{e}");
        assert!(StepLr::new(0.1, 0, 0.5).lr(3).is_nan()); // no division by zero
        assert!(StepLr::new(0.1, 1, -0.5).check().is_err());
        // every invalid setting gives NaN, as `lr` says (a negative gamma gave -0.05 at
        // step 1, a minimum above the base a rate rising to it)
        assert!(StepLr::new(0.1, 1, -0.5).lr(1).is_nan());
        assert!(StepLr::new(-0.1, 1, 0.5).lr(0).is_nan());
        assert!(WarmupCosineLr::new(0.1, 0.2, 0, 10).lr(5).is_nan());
        assert!(WarmupCosineLr::new(0.1, 0.0, 2, 10)
            .start_factor(-1.0)
            .lr(0)
            .is_nan());
        assert!(StepLr::new(f64::NAN, 1, 0.5).check().is_err());
        let e = WarmupCosineLr::new(0.1, 0.2, 0, 10).check().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid minimum learning rate: 0.2 is above the base learning rate 0.1"
        );
        let bad = WarmupCosineLr::new(0.1, 0.0, 11, 10);
        let e = bad.check().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid warm-up: 11 steps is longer than the 10 in total"
        );
        assert!(bad.lr(10).is_nan());
        assert!(WarmupCosineLr::new(-0.1, 0.0, 0, 10).check().is_err());
        let s = WarmupCosineLr::new(0.1, 0.0, 1, 10);
        assert!(s.start_factor(1.5).check().is_err());
        assert!(s.start_factor(f64::NAN).check().is_err());
        // `apply` checks first and leaves the optimizer's rate as it was
        let mut opt = Sgd::new(0.5);
        let e = s.start_factor(2.0).apply(&mut opt, 0).unwrap_err();
        assert_eq!(e.to_string(), "invalid start factor: 2 is not in [0, 1]");
        assert_eq!(opt.lr(), 0.5);
        s.apply(&mut opt, 1).unwrap();
        assert_eq!(opt.lr(), 0.1);
    }
}
