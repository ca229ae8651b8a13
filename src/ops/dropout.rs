//! Dropout: `x * mask`, where the mask is drawn by the machine on every run in training
//! mode (each element kept with probability `1 - p` and scaled by `1 / (1 - p)`), and is
//! all ones in evaluation mode. The gradient is the product rule through the mask.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::panic::Location;

use super::{Inputs, Op, Out};
use crate::error::Result;
use crate::graph::Tensor;
use crate::num::Num;
use crate::scalar::Scalar;
use crate::shape::Shape;

/// The mask of [`Tensor::dropout`], shaped like its input (which it reads only for the
/// shape); no gradient.
pub struct DropoutMask(f64);

impl core::fmt::Debug for DropoutMask {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "DropoutMask({})", Num(self.0))
    }
}

impl<T: Scalar> Op<T> for DropoutMask {
    fn name(&self) -> &'static str {
        "dropout"
    }
    fn shape(&self, s: &[&Shape]) -> core::result::Result<Shape, String> {
        if !(0.0..1.0).contains(&self.0) {
            return Err(format!(
                "the drop probability {} is not in [0, 1)",
                Num(self.0)
            ));
        }
        Ok(s[0].clone())
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, _: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        if !out.training() {
            out.slice().fill(T::one());
            return Ok(());
        }
        let keep = T::of(1.0 / (1.0 - self.0));
        let below = drop_below(self.0);
        let (data, rng) = (&mut *out.data, &mut *out.rng);
        for d in data.iter_mut() {
            // `rng.next_f64() < p`, compared as integers: no f64 work per element
            *d = if rng.next_u64() >> 11 < below {
                T::zero()
            } else {
                keep
            };
        }
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

/// The number of 53-bit draws `k` (`next_f64() = k / 2^53`) below `p`: an element is
/// dropped when `k < drop_below(p)`, exactly when `next_f64() < p`. (`p · 2^53` is exact,
/// and an integer `k` is below a real `y` when it is below `ceil(y)`.)
fn drop_below(p: f64) -> u64 {
    let y = p * (1u64 << 53) as f64;
    let k = y as u64; // y is in [0, 2^53): truncation is floor
    if (k as f64) < y {
        k + 1
    } else {
        k
    }
}

impl<'g, T: Scalar> Tensor<'g, T> {
    /// Dropout with drop probability `p` in `[0, 1)`: in training mode each element is
    /// zeroed with probability `p` and the rest scaled by `1 / (1 - p)`; in evaluation mode
    /// it is the identity. A machine compiled with gradients starts in training mode, one
    /// compiled without in evaluation mode
    /// ([`Machine::set_training`](crate::Machine::set_training) switches). The mask is
    /// drawn from the machine's seeded generator on every run, without allocating.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.input("x", [1000]);
    /// let y = x.dropout(0.5);
    /// let mut m = g.compile(&[y], &[])?; // no gradients: evaluation mode
    /// m.feed(x, &tapegrad::ndarray::Array1::ones(1000))?;
    /// m.run()?;
    /// assert!(m.value(y)?.iter().all(|&v| v == 1.0));
    /// m.set_training(true);
    /// m.run()?;
    /// let kept = m.value(y)?.iter().filter(|&&v| v == 2.0).count();
    /// assert!((400..600).contains(&kept));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn dropout(self, p: f64) -> Tensor<'g, T> {
        let mask = self.apply(DropoutMask(p), &[self], Location::caller());
        self * mask
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::rng::KernelRng;
    use ndarray::Array1;

    #[test]
    fn the_integer_threshold_drops_exactly_what_the_float_compare_drops() {
        // the same decisions as `next_f64() < p`, for awkward p and for the draws next to
        // the threshold
        for p in [0.0, 0.1, 0.25, 1.0 / 3.0, 0.5, 0.9, 1.0 - f64::EPSILON] {
            let below = super::drop_below(p);
            for k in [below.saturating_sub(1), below, below + 1, 0, (1 << 53) - 1] {
                let f = k as f64 * (1.0 / (1u64 << 53) as f64);
                assert_eq!(k < below, f < p, "p {p} k {k}");
            }
            let mut rng = KernelRng::new(9);
            for _ in 0..10_000 {
                let mut twin = rng.clone();
                assert_eq!(rng.next_u64() >> 11 < below, twin.next_f64() < p);
            }
        }
    }

    #[test]
    fn gradient_goes_through_the_same_mask_and_seeds_repeat() {
        let g = Graph::<f64>::new();
        let x = g.param("x", Array1::from_elem(64, 3.0));
        let y = x.dropout(0.25);
        let grads = g.grad(y.sum(), &[x]).unwrap();
        let dx = grads[0];
        let mut m = g.compile(&[y], &grads).unwrap(); // with gradients: training mode
        m.run().unwrap();
        let (y1, d1) = (
            m.value(y).unwrap().to_owned(),
            m.value(dx).unwrap().to_owned(),
        );
        // y = x * mask with mask in {0, 4/3}; dy/dx = mask, the same draw
        for (yv, dv) in y1.iter().zip(d1.iter()) {
            assert!(*dv == 0.0 || (*dv - 4.0 / 3.0).abs() < 1e-15);
            assert!((yv - 3.0 * dv).abs() < 1e-15);
        }
        assert!(d1.iter().any(|&v| v == 0.0) && d1.iter().any(|&v| v != 0.0));
        // a new run draws a new mask; reseeding replays the stream
        m.run().unwrap();
        assert_ne!(m.value(dx).unwrap().to_owned(), d1);
        m.seed(0);
        m.run().unwrap();
        assert_eq!(m.value(dx).unwrap().to_owned(), d1);
    }

    #[test]
    fn bad_probability_is_a_shape_time_error() {
        let g = Graph::<f32>::new();
        let _ = g.input("x", [3]).dropout(1.0);
        let e = g.check().unwrap_err().to_string();
        assert!(
            e.contains("`dropout`") && e.contains("not in [0, 1)"),
            "{e}"
        );
    }
}
