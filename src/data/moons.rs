//! A toy data set: two interleaving half circles ("two moons", as scikit-learn's
//! `make_moons`), generated from the caller's RNG with nothing but `+ - * /` in `T`, so
//! the same seed gives the same bits on every platform (no `sin`/`cos`, whose last bit
//! differs between math libraries) and no f64 code on an f32-only FPU.

use alloc::format;

use ndarray::{Array1, Array2, ArrayViewMut1, ArrayViewMut2};
use rand::Rng;

use crate::error::{Caller, Error, Result};
use crate::scalar::Scalar;

/// `n` points of two interleaving half circles with uniform noise in `[-noise, noise)`
/// on each coordinate, in random order, and their labels (`0` or `1`, as `T`). Class 0
/// lies on the upper unit half circle centred at the origin, class 1 on the lower one
/// centred at `(1, 0.5)`.
///
/// A point's angle is drawn through the circle's rational parametrisation
/// (`s` uniform in `[-1, 1]`, angle `π/2 + 2·atan(s)`), which is exact in floating point
/// and everywhere the same; the points are up to twice as dense near the top of an arc
/// as at its ends.
///
/// ```
/// use tapegrad::data::two_moons;
/// use tapegrad::rand::{rngs::StdRng, SeedableRng};
///
/// let (x, y) = two_moons::<f32, _>(100, 0.1, &mut StdRng::seed_from_u64(0));
/// assert_eq!((x.dim(), y.len()), ((100, 2), 100));
/// assert!(y.iter().all(|&c| c == 0.0 || c == 1.0));
/// ```
pub fn two_moons<T: Scalar, R: Rng + ?Sized>(
    n: usize,
    noise: T,
    rng: &mut R,
) -> (Array2<T>, Array1<T>) {
    let mut points = Array2::zeros((n, 2));
    let mut labels = Array1::zeros(n);
    fill(points.view_mut(), labels.view_mut(), noise, rng);
    (points, labels)
}

/// [`two_moons`] into buffers the caller owns: as many points as `points` has rows
/// (`[n, 2]`, with `labels` of length `n`), drawn from the same stream, so a program can
/// draw a fresh batch each step with no allocation and no data set in memory.
///
/// ```
/// use tapegrad::data::two_moons_into;
/// use tapegrad::ndarray::{Array1, Array2};
/// use tapegrad::rand::{rngs::StdRng, SeedableRng};
///
/// let (mut x, mut y) = (Array2::<f32>::zeros((32, 2)), Array1::zeros(32));
/// let mut rng = StdRng::seed_from_u64(0);
/// two_moons_into(x.view_mut(), y.view_mut(), 0.1, &mut rng)?;
/// assert!(two_moons_into(x.view_mut(), Array1::zeros(31).view_mut(), 0.1, &mut rng).is_err());
/// # Ok::<(), tapegrad::Error>(())
/// ```
///
/// # Errors
/// [`Error::Mismatch`] if `points` does not have 2 columns or `labels` is not as long as
/// `points` has rows.
#[track_caller]
pub fn two_moons_into<T: Scalar, R: Rng + ?Sized>(
    points: ArrayViewMut2<'_, T>,
    labels: ArrayViewMut1<'_, T>,
    noise: T,
    rng: &mut R,
) -> Result<()> {
    let ((n, cols), len) = (points.dim(), labels.len());
    if cols != 2 || len != n {
        return Err(Error::Mismatch {
            what: "two_moons_into",
            reason: format!(
                "points must be [n, 2] and labels [n]: got points [{n}, {cols}] and labels [{len}]"
            ),
            caller: Caller::here(),
        });
    }
    fill(points, labels, noise, rng);
    Ok(())
}

fn fill<T: Scalar, R: Rng + ?Sized>(
    mut points: ArrayViewMut2<'_, T>,
    mut labels: ArrayViewMut1<'_, T>,
    noise: T,
    rng: &mut R,
) {
    let (one, two) = (T::one(), T::one() + T::one());
    let half = one / two;
    for (mut p, label) in points.rows_mut().into_iter().zip(labels.iter_mut()) {
        let class = rng.next_u32() & 1;
        let s = two * unit::<T, R>(rng) - one;
        let d = one + s * s;
        // (cos θ, sin θ) at θ = π/2 + 2·atan(s)
        let (cos, sin) = (-(two * s) / d, (one - s * s) / d);
        let (px, py) = if class == 0 {
            (cos, sin)
        } else {
            (one - cos, half - sin)
        };
        p[0] = px + noise * (two * unit::<T, R>(rng) - one);
        p[1] = py + noise * (two * unit::<T, R>(rng) - one);
        *label = if class == 0 { T::zero() } else { one };
    }
}

/// A uniform number in `[0, 1)` with 24 random bits (exact in `f32` and `f64`).
fn unit<T: Scalar, R: Rng + ?Sized>(rng: &mut R) -> T {
    let bits = T::from_u32(rng.next_u32() >> 8).unwrap_or_else(T::zero);
    bits / T::from_u32(1 << 24).unwrap_or_else(T::one)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn points_lie_on_their_arcs_and_both_classes_appear() {
        let (x, y) = two_moons::<f64, _>(400, 0.0, &mut StdRng::seed_from_u64(7));
        let mut count = [0; 2];
        for (p, &c) in x.rows().into_iter().zip(&y) {
            // class 0: unit circle at the origin, y >= 0; class 1: centred at (1, 0.5), y <= 0.5
            let (cx, cy, upper) = if c == 0.0 {
                (0.0, 0.0, true)
            } else {
                (1.0, 0.5, false)
            };
            let (dx, dy) = (p[0] - cx, p[1] - cy);
            assert_abs_diff_eq!(dx * dx + dy * dy, 1.0, epsilon = 1e-12);
            assert!(if upper { dy >= 0.0 } else { dy <= 0.0 }, "{p} class {c}");
            count[c as usize] += 1;
        }
        assert!(count[0] > 150 && count[1] > 150, "{count:?}");
    }

    #[test]
    fn noise_is_bounded_and_the_stream_is_fixed_by_the_seed() {
        let clean = two_moons::<f32, _>(50, 0.0, &mut StdRng::seed_from_u64(1)).0;
        let noisy = two_moons::<f32, _>(50, 0.2, &mut StdRng::seed_from_u64(1)).0;
        // the noise is drawn even when it is 0: the same seed gives the same classes and angles
        let again = two_moons::<f32, _>(50, 0.2, &mut StdRng::seed_from_u64(1)).0;
        assert_eq!(noisy, again);
        assert!(noisy
            .iter()
            .zip(&clean)
            .all(|(a, b)| (a - b).abs() <= 0.2 + 1e-6));
        assert_ne!(noisy, clean);
    }

    #[test]
    fn into_buffers_continues_the_same_stream_and_checks_shapes() {
        let whole = two_moons::<f32, _>(8, 0.1, &mut StdRng::seed_from_u64(2));
        let mut rng = StdRng::seed_from_u64(2);
        let (mut x, mut y) = (Array2::zeros((8, 2)), Array1::zeros(8));
        let (top, bottom) = x.view_mut().split_at(ndarray::Axis(0), 3);
        let (y_top, y_bottom) = y.view_mut().split_at(ndarray::Axis(0), 3);
        two_moons_into(top, y_top, 0.1, &mut rng).unwrap();
        two_moons_into(bottom, y_bottom, 0.1, &mut rng).unwrap();
        assert_eq!((x, y), whole);
        let mut three = Array2::<f32>::zeros((4, 3));
        let err = two_moons_into(three.view_mut(), Array1::zeros(4).view_mut(), 0.1, &mut rng);
        match err {
            Err(Error::Mismatch { reason, caller, .. }) => {
                assert!(reason.contains("[4, 3]"), "{reason}");
                assert!(caller.file.ends_with("moons.rs"), "{caller}");
            }
            other => panic!("{other:?}"),
        }
    }
}
