//! Initial values for parameters, drawn from any `rand::Rng` so a seed fixes them.
//!
//! Weight shapes follow `x.matmul(w)`: a weight is `[fan_in, fan_out]`.

use ndarray::ArrayD;
use num_traits::Float;
use rand::Rng;

use crate::scalar::Scalar;
use crate::shape::Shape;

/// All zeros.
pub fn zeros<T: Scalar>(shape: impl Into<Shape>) -> ArrayD<T> {
    ArrayD::zeros(shape.into().ix())
}

/// All ones.
pub fn ones<T: Scalar>(shape: impl Into<Shape>) -> ArrayD<T> {
    ArrayD::ones(shape.into().ix())
}

/// Uniform in `[lo, hi)`.
pub fn uniform<T: Scalar, R: Rng + ?Sized>(
    shape: impl Into<Shape>,
    lo: f64,
    hi: f64,
    rng: &mut R,
) -> ArrayD<T> {
    ArrayD::from_shape_fn(shape.into().ix(), |_| {
        T::of(lo + (hi - lo) * rng.random::<f64>())
    })
}

fn fans(shape: &Shape) -> (usize, usize) {
    match shape.dims() {
        [] => (1, 1),
        [n] => (*n, *n),
        [i, o, ..] => (*i, *o),
    }
}

/// Kaiming/He uniform for layers followed by ReLU: `U(-b, b)` with
/// `b = sqrt(6 / fan_in)` (gain `sqrt 2`), fan_in being the first axis.
pub fn kaiming_uniform<T: Scalar, R: Rng + ?Sized>(
    shape: impl Into<Shape>,
    rng: &mut R,
) -> ArrayD<T> {
    let shape = shape.into();
    let b = Float::sqrt(6.0 / fans(&shape).0.max(1) as f64);
    uniform(shape, -b, b, rng)
}

/// Xavier/Glorot uniform: `U(-b, b)` with `b = sqrt(6 / (fan_in + fan_out))`.
pub fn xavier_uniform<T: Scalar, R: Rng + ?Sized>(
    shape: impl Into<Shape>,
    rng: &mut R,
) -> ArrayD<T> {
    let shape = shape.into();
    let (i, o) = fans(&shape);
    let b = Float::sqrt(6.0 / (i + o).max(1) as f64);
    uniform(shape, -b, b, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn bounds_and_seeding() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let w: ArrayD<f64> = kaiming_uniform([600, 10], &mut rng);
        let b = (6.0f64 / 600.0).sqrt();
        assert!(w.iter().all(|v| v.abs() < b));
        // the sample fills the range: max |w| is close to the bound
        assert!(w.iter().fold(0.0f64, |m, v| m.max(v.abs())) > 0.99 * b);
        let mut rng2 = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(w, kaiming_uniform([600, 10], &mut rng2));
        let x: ArrayD<f32> = xavier_uniform([3, 5], &mut rng);
        assert!(x.iter().all(|v| v.abs() < (6.0f32 / 8.0).sqrt()));
        assert_eq!(zeros::<f32>([2, 2]).sum(), 0.0);
        assert_eq!(ones::<f32>([2, 2]).sum(), 4.0);
    }
}
