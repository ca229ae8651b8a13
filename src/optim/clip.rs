//! Gradient clipping by global norm.

use core::panic::Location;

use crate::error::{Caller, Error, Result};
use crate::grads::AsGrads;
use crate::machine::Machine;
use crate::num::Num;
use crate::scalar::Scalar;

/// Scales the gradients of `grads` (a [`Grads`](crate::Grads) or its
/// [`GradHandles`](crate::GradHandles), values of `m`'s last run) in place so that their
/// global L2 norm is at most `max_norm`, as `torch.nn.utils.clip_grad_norm_`; returns the
/// norm before clipping.
///
/// The norm is `sqrt(sum of g^2 over every element of every gradient)`: squares summed
/// in the machine's type over runs of 64 elements, the runs' sums in `f64`, and the root
/// taken in the machine's type (so an `f32` machine does no `f64` work per element); a
/// run whose squares pass the type's range is summed in `f64` instead, and a sum past it
/// is scaled by powers of 4 before the root, so an `f32` norm up to `f32::MAX` is
/// returned and clipped, not infinite. If `norm > max_norm`, every gradient is multiplied by
/// `max_norm / (norm + 1e-6)`; otherwise nothing changes. (PyTorch also scales when the
/// norm is within 1e-6 below `max_norm`; here clipping twice is the same as once.) A NaN
/// or infinite norm is returned without scaling (check it, and skip the step). A buffer listed twice (the same gradient, or a reshaped
/// view of it) counts twice in the norm, as two parameters' gradients, but is scaled once.
/// Allocates nothing.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::optim::clip_grad_norm;
/// let g = Graph::<f64>::new();
/// let w = g.param("w", tapegrad::ndarray::arr1(&[3.0, 4.0]));
/// let loss = (w * w).sum() * 0.5; // gradient = w, norm 5
/// let grads = g.grad(loss, &[w])?;
/// let mut m = g.compile(&[loss], &grads)?;
/// m.run()?;
/// assert_eq!(clip_grad_norm(&mut m, &grads, 1.0)?, 5.0);
/// let clipped = m.value(grads[0])?;
/// assert!((clipped[[0]] - 0.6).abs() < 1e-6 && (clipped[[1]] - 0.8).abs() < 1e-6);
/// # Ok::<(), tapegrad::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] if `max_norm` is negative or NaN; [`Error::Mismatch`],
/// naming the parameter, for a gradient the machine does not hold; the machine's errors
/// for gradients that are not outputs of an op (a parameter or input), or
/// before a run. Nothing is scaled when an error is returned.
#[track_caller]
pub fn clip_grad_norm<T: Scalar, G: AsGrads + ?Sized>(
    m: &mut Machine<T>,
    grads: &G,
    max_norm: f64,
) -> Result<f64> {
    let pairs = grads.grad_pairs();
    let caller = Caller::from(Location::caller());
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(Error::InvalidArgument {
            what: "max_norm",
            reason: alloc::format!("{} is not a number >= 0", Num(max_norm)),
        });
    }
    // Squares summed in `T` over runs of CHUNK elements (at most CHUNK roundings each),
    // the runs' sums in f64: one f64 addition per CHUNK elements, so f32 stays f32 per
    // element (no soft-float on an f32-only FPU) and a million gradients still sum to
    // about f32's precision. The root is taken in `T`.
    const CHUNK: usize = 64;
    if let Some((x, _)) = pairs.iter().find(|(x, g)| m.holds(*x) && !m.holds(*g)) {
        // named by its parameter (held, so of this graph): a gradient has no name
        return Err(Error::Mismatch {
            what: "clip_grad_norm",
            reason: alloc::format!(
                "the gradient given for {} is not in this machine: pass the same `grads` to \
                 `compile` and to `clip_grad_norm`",
                m.describe(*x)
            ),
            caller,
        });
    }
    let mut sum = 0.0f64;
    for (_, g) in pairs {
        for run in m.output_mut(g, caller)?.chunks(CHUNK) {
            let s = run.iter().fold(T::zero(), |s, &v| s + v * v);
            sum += if s.is_infinite() {
                // squares past `T`'s range (exploding gradients, what clipping is for):
                // this run again in f64, only then
                run.iter()
                    .map(|v| v.to_f64().unwrap_or(f64::NAN))
                    .map(|v| v * v)
                    .sum()
            } else {
                s.to_f64().unwrap_or(f64::NAN)
            };
        }
    }
    let norm = root::<T>(sum);
    if norm.is_finite() && norm > max_norm {
        let c = T::of(max_norm / (norm + 1e-6));
        for (k, (_, g)) in pairs.iter().enumerate() {
            let here = m.output_mut(g, caller)?.as_ptr();
            // Quadratic in the number of gradients, but only a pointer compare each: the
            // alternative, remembering the buffers seen, would allocate.
            let mut seen = false;
            for (_, earlier) in &pairs[..k] {
                seen |= m.output_mut(earlier, caller)?.as_ptr() == here;
            }
            if !seen {
                for v in m.output_mut(g, caller)?.iter_mut() {
                    *v = *v * c;
                }
            }
        }
    }
    Ok(norm)
}

/// `sqrt(sum)`, taken in `T`: a sum past `T`'s range is brought into it by powers of 4
/// (exact) and its root scaled back by as many powers of 2, so a norm that `T` holds is
/// never infinite because its square is not.
fn root<T: Scalar>(sum: f64) -> f64 {
    let big = T::max_value().to_f64().unwrap_or(f64::MAX) / 4.0;
    let (mut s, mut scale) = (sum, 1.0);
    while s.is_finite() && s > big {
        s /= 4.0;
        scale *= 2.0;
    }
    T::of(s).root().to_f64().unwrap_or(f64::NAN) * scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Graph;
    use alloc::string::ToString;
    use approx::assert_relative_eq;

    #[test]
    fn scales_above_and_not_below() {
        // loss = 0.5 (|a|^2 + |b|^2): gradients a = [1, 2], b = [[2], [4]];
        // norm = sqrt(1 + 4 + 4 + 16) = 5
        let g = Graph::<f32>::new();
        let a = g.param("a", ndarray::arr1(&[1.0f32, 2.0]));
        let b = g.param("b", ndarray::arr2(&[[2.0f32], [4.0]]));
        let loss = (a.square().sum() + b.square().sum()) * 0.5;
        let grads = g.grad(loss, &[a, b]).unwrap();
        let mut m = g.compile(&[loss], &grads).unwrap();
        m.run().unwrap();
        // below (and at) the limit: unchanged
        for max in [10.0, 5.0] {
            assert_relative_eq!(clip_grad_norm(&mut m, &grads, max).unwrap(), 5.0);
            assert_eq!(m.value(grads[0]).unwrap().as_slice().unwrap(), &[1.0, 2.0]);
        }
        // above: scaled by 2 / (5 + 1e-6)
        assert_relative_eq!(clip_grad_norm(&mut m, &grads, 2.0).unwrap(), 5.0);
        let c = 2.0 / (5.0 + 1e-6);
        let ga = m.value(grads[0]).unwrap();
        let gb = m.value(grads[1]).unwrap();
        assert_relative_eq!(ga[[0]], c as f32, max_relative = 1e-6);
        assert_relative_eq!(gb[[1, 0]], (4.0 * c) as f32, max_relative = 1e-6);
        // the new norm is max_norm (less 1e-6 relative), and clipping again changes nothing
        let before = m.value(grads[1]).unwrap().to_owned();
        let norm = clip_grad_norm(&mut m, &grads, 2.0).unwrap();
        assert_relative_eq!(norm, 2.0, max_relative = 1e-6);
        assert_eq!(m.value(grads[1]).unwrap(), before);
        // to zero
        assert_relative_eq!(
            clip_grad_norm(&mut m, &grads, 0.0).unwrap(),
            2.0,
            max_relative = 1e-6
        );
        assert!(m.value(grads[1]).unwrap().iter().all(|&v| v == 0.0));
    }

    /// Exploding gradients, what clipping is for: their squares pass f32's largest value
    /// (3.4e38) while the norm itself is an ordinary f32. They are clipped, and the norm
    /// returned is theirs, not infinity.
    #[test]
    fn gradients_whose_squares_overflow_f32_are_clipped() {
        // loss = 0.5 |w|^2: gradient = w
        for (w, norm) in [
            (alloc::vec![3e19f32, 4e19], 5e19),
            // one run of 64 overflows alone; 200 runs of squares 1e36 do only together
            (alloc::vec![2e19f32; 1], 2e19),
            (alloc::vec![1e18f32; 12_800], 1e18 * 12_800f64.sqrt()),
        ] {
            let g = Graph::<f32>::new();
            let n = w.len();
            let p = g.param("w", ndarray::Array1::from(w.clone()));
            let loss = p.square().sum() * 0.5;
            let grads = g.grad(loss, &[p]).unwrap();
            let mut m = g.compile(&[loss], &grads).unwrap();
            m.run().unwrap();
            let got = clip_grad_norm(&mut m, &grads, 1.0).unwrap();
            assert_relative_eq!(got, norm, max_relative = 1e-6);
            // d = w / |w|, of norm 1
            let clipped = m.value(grads[0]).unwrap();
            for (c, w) in clipped.iter().zip(&w) {
                assert_relative_eq!(f64::from(*c), f64::from(*w) / norm, max_relative = 1e-5);
            }
            assert_eq!(clipped.len(), n);
        }
    }

    #[test]
    fn a_buffer_listed_twice_is_scaled_once() {
        let g = Graph::<f64>::new();
        let a = g.param("a", ndarray::arr1(&[3.0, 4.0]));
        let loss = a.square().sum() * 0.5;
        let twice = g.grad(loss, &[a, a]).unwrap();
        let mut m = g.compile(&[loss], &twice).unwrap();
        m.run().unwrap();
        let grads = &twice;
        // sqrt(2 * 25)
        let norm = clip_grad_norm(&mut m, &twice, 1.0).unwrap();
        assert_relative_eq!(norm, 50.0f64.sqrt());
        let c = 1.0 / (50.0f64.sqrt() + 1e-6);
        assert_relative_eq!(
            m.value(grads[0]).unwrap()[[0]],
            3.0 * c,
            max_relative = 1e-12
        );
    }

    #[test]
    fn errors() {
        let g = Graph::<f64>::new();
        let a = g.param("a", ndarray::arr1(&[3.0, 4.0]));
        let loss = a.square().sum();
        let grads = g.grad(loss, &[a]).unwrap();
        let mut m = g.compile(&[loss], &grads).unwrap();
        // before a run
        assert!(matches!(
            clip_grad_norm(&mut m, &grads, 1.0),
            Err(Error::NotRun { .. })
        ));
        m.run().unwrap();
        let e = clip_grad_norm(&mut m, &grads, f64::NAN).unwrap_err();
        assert_eq!(e.to_string(), "invalid max_norm: NaN is not a number >= 0");
        assert!(clip_grad_norm(&mut m, &grads, -1.0).is_err());
        // a gradient that is a constant (of a parameter the loss does not use) is not
        // scaled in place: refused, nothing scaled
        let unused = g.param("unused", ndarray::arr1(&[1.0]));
        let grads = g.grad(loss, &[a, unused]).unwrap();
        let mut m = g.compile(&[loss], &grads).unwrap();
        m.run().unwrap();
        let e = clip_grad_norm(&mut m, &grads, 1.0).unwrap_err();
        assert!(matches!(e, Error::WrongKind { .. }), "{e}");
        assert_eq!(m.value(grads[0]).unwrap()[[0]], 6.0);
        // no gradients: norm 0
        assert_eq!(clip_grad_norm(&mut m, &[], 1.0).unwrap(), 0.0);
    }
}
