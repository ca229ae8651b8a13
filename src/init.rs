//! Initial values for parameters, drawn from any `tapegrad::rand::Rng` so a seed fixes them.
//!
//! # Weight layout and fans
//! Layers compute `x.matmul(w)`, so a tapegrad weight is `[in, out]`: the transpose of
//! PyTorch's `[out, in]` for the same layer. [`fans`] reads the axes accordingly, so each
//! initialiser here gives a layer the same bounds (or standard deviation) as PyTorch's
//! `torch.nn.init` function of the same name gives the same layer:
//!
//! | layer              | PyTorch weight      | tapegrad weight     | fan_in      | fan_out      |
//! |--------------------|---------------------|---------------------|-------------|--------------|
//! | `in` → `out`       | `[out, in]`         | `[in, out]`         | `in`        | `out`        |
//! | kernel `k1 × k2`   | `[out, in, k1, k2]` | `[in, out, k1, k2]` | `in·k1·k2`  | `out·k1·k2`  |
//!
//! That is: axis 0 is the input axis, axis 1 the output axis, and further axes a receptive
//! field multiplying both (PyTorch: axis 1 is the input, axis 0 the output). PyTorch
//! refuses tensors of fewer than two axes; here `[n]` has both fans `n` and a scalar both
//! fans 1.
//!
//! # Reproducibility
//! Every value is computed in the element type `T` from uniform draws of 53 bits (one
//! `rng.next_u64()` each, the numbers `rng.random::<f64>()` gives) with `+ - * /` and
//! `sqrt`, which IEEE 754 rounds the same way on every platform (the normal sampler's
//! logarithm is written out below rather than taken from the platform's C library, whose
//! last bits differ between systems). So a seeded portable generator such as
//! `tapegrad::rand::rngs::StdRng` gives the same weights everywhere, in row-major order
//! of the shape. `f32` and `f64` weights come from the same draws: the `f32` ones are
//! computed in `f32` (no `f64` arithmetic per element, which an f32-only FPU would do in
//! software), so they are within a few `f32` ulp of the `f64` ones rounded.

use core::f64::consts::{LN_2, SQRT_2};

use ndarray::ArrayD;
use rand::Rng;

use crate::error::{Caller, Result};
use crate::limit;
use crate::scalar::Scalar;
use crate::shape::Shape;

/// All zeros.
///
/// # Errors
/// [`Error::TooLarge`](crate::Error::TooLarge) if the array would pass [`max_bytes`](crate::max_bytes) or the
/// system cannot allocate it; so for every constructor here.
#[track_caller]
#[inline(never)]
pub fn zeros<T: Scalar>(shape: impl Into<Shape>) -> Result<ArrayD<T>> {
    filled("init::zeros", shape.into(), Caller::here(), &mut T::zero)
}

/// All ones.
///
/// # Errors
/// [`Error::TooLarge`](crate::Error::TooLarge), as for [`zeros`].
#[track_caller]
#[inline(never)]
pub fn ones<T: Scalar>(shape: impl Into<Shape>) -> Result<ArrayD<T>> {
    filled("init::ones", shape.into(), Caller::here(), &mut T::one)
}

/// Every element `value`.
///
/// # Errors
/// [`Error::TooLarge`](crate::Error::TooLarge), as for [`zeros`].
#[track_caller]
#[inline(never)]
pub fn constant<T: Scalar>(shape: impl Into<Shape>, value: f64) -> Result<ArrayD<T>> {
    filled("init::constant", shape.into(), Caller::here(), &mut || {
        T::of(value)
    })
}

/// Uniform in `[lo, hi)`.
///
/// # Errors
/// [`Error::TooLarge`](crate::Error::TooLarge), as for [`zeros`].
#[track_caller]
#[inline(never)]
pub fn uniform<T: Scalar, R: Rng + ?Sized>(
    shape: impl Into<Shape>,
    lo: f64,
    hi: f64,
    rng: &mut R,
) -> Result<ArrayD<T>> {
    let (lo, span) = (T::of(lo), T::of(hi - lo));
    filled("init::uniform", shape.into(), Caller::here(), &mut || {
        lo + span * unit(rng)
    })
}

/// An array of `shape` whose elements `next` gives in row-major order, allocated only
/// once the shape is known to fit the byte limit, and fallibly. Never inlined, and
/// `next` is a `dyn`: one copy of it in a firmware (about 500 B of flash each), whose
/// temporaries add to no model-building frame.
#[inline(never)]
pub(crate) fn filled<T: Scalar>(
    what: &'static str,
    shape: Shape,
    caller: Caller,
    next: &mut dyn FnMut() -> T,
) -> Result<ArrayD<T>> {
    limit::check_shape(what, &shape, core::mem::size_of::<T>(), caller)?;
    let shapes = core::slice::from_ref(&shape);
    let mut data = limit::try_vec(what, shapes, shape.numel(), T::zero(), caller)?;
    data.iter_mut().for_each(|x| *x = next());
    // cannot fail: the data holds the shape's elements, and the shape fits an isize.
    // (`from_shape_vec` would check general strides, with a 4 KiB stack frame on a
    // Cortex-M4; a row-major reshape of a vector checks only the count.)
    ndarray::Array1::from_vec(data)
        .into_shape_with_order(shape.ix())
        .map_err(|_| limit::too_large(what, core::slice::from_ref(&shape), usize::MAX, caller))
}

/// `rng.random::<f64>()`'s number, `k / 2^53` for the top 53 bits `k` of a `u64`, in `T`
/// (for `f32`, `k` rounded to 24 bits, and below 1).
fn unit<T: Scalar, R: Rng + ?Sized>(rng: &mut R) -> T {
    let k = T::from_u64(rng.next_u64() >> 11).unwrap_or_else(T::zero);
    let u = k * T::of(1.0 / (1u64 << 53) as f64);
    // In f32 the largest `k` round up to 2^53, so `u` to 1: the largest value below 1
    // instead, so that `[0, 1)` (and `uniform`'s `[lo, hi)`) holds.
    if u < T::one() {
        u
    } else {
        T::one() - T::epsilon() / (T::one() + T::one())
    }
}

/// Normal with mean `mean` and standard deviation `std`, as `torch.nn.init.normal_`.
///
/// Samples come in pairs from the Marsaglia polar method; each uses one or more pairs of
/// `rng.random::<f64>()` draws.
///
/// # Errors
/// [`Error::TooLarge`](crate::Error::TooLarge), as for [`zeros`].
#[track_caller]
#[inline(never)]
pub fn normal<T: Scalar, R: Rng + ?Sized>(
    shape: impl Into<Shape>,
    mean: f64,
    std: f64,
    rng: &mut R,
) -> Result<ArrayD<T>> {
    let caller = Caller::here();
    normal_in(
        "init::normal",
        shape.into(),
        T::of(mean),
        T::of(std),
        rng,
        caller,
    )
}

/// `mean + std · z` for standard normal `z`, in `T`.
fn normal_in<T: Scalar, R: Rng + ?Sized>(
    what: &'static str,
    shape: Shape,
    mean: T,
    std: T,
    rng: &mut R,
    caller: Caller,
) -> Result<ArrayD<T>> {
    let mut spare = None;
    filled(what, shape, caller, &mut || {
        let z = spare.take().unwrap_or_else(|| {
            let (z0, z1) = standard_normal_pair::<T, R>(rng);
            spare = Some(z1);
            z0
        });
        mean + std * z
    })
}

/// `(fan_in, fan_out)` of a weight in tapegrad's `[in, out, ...]` layout: the numbers
/// PyTorch's `_calculate_fan_in_and_fan_out` gives for the same layer's `[out, in, ...]`
/// weight (see the [module docs](self)).
///
/// ```
/// // nn.Linear(64, 32) in PyTorch: weight [32, 64], fan_in 64, fan_out 32
/// assert_eq!(tapegrad::init::fans([64, 32]), (64, 32));
/// // nn.Conv2d(3, 8, 5): weight [8, 3, 5, 5], fan_in 3·25, fan_out 8·25
/// assert_eq!(tapegrad::init::fans([3, 8, 5, 5]), (75, 200));
/// ```
pub fn fans(shape: impl Into<Shape>) -> (usize, usize) {
    match shape.into().dims() {
        [] => (1, 1),
        &[n] => (n, n),
        &[i, o, ref field @ ..] => {
            // saturating: a fan only sets a bound `sqrt(a / fan)`, and every shape an
            // initialiser fills is first checked to fit in memory, far below usize::MAX
            let field = field.iter().fold(1usize, |n, &d| n.saturating_mul(d));
            (i.saturating_mul(field), o.saturating_mul(field))
        }
    }
}

/// Kaiming/He uniform for layers followed by ReLU, as `torch.nn.init.kaiming_uniform_`
/// with its defaults (`mode = "fan_in"`, gain `sqrt 2`): `U(-b, b)` with
/// `b = sqrt(6 / fan_in)`.
///
/// # Errors
/// [`Error::TooLarge`](crate::Error::TooLarge), as for [`zeros`].
#[track_caller]
#[inline(never)]
pub fn kaiming_uniform<T: Scalar, R: Rng + ?Sized>(
    shape: impl Into<Shape>,
    rng: &mut R,
) -> Result<ArrayD<T>> {
    let caller = Caller::here();
    let shape = shape.into();
    let b = root_of::<T>(6, fans(&shape).0);
    let span = b + b;
    filled("init::kaiming_uniform", shape, caller, &mut || {
        -b + span * unit(rng)
    })
}

/// Kaiming/He normal for layers followed by ReLU, as `torch.nn.init.kaiming_normal_`
/// with its defaults (`mode = "fan_in"`, gain `sqrt 2`): `N(0, std^2)` with
/// `std = sqrt(2 / fan_in)`.
///
/// # Errors
/// [`Error::TooLarge`](crate::Error::TooLarge), as for [`zeros`].
#[track_caller]
#[inline(never)]
pub fn kaiming_normal<T: Scalar, R: Rng + ?Sized>(
    shape: impl Into<Shape>,
    rng: &mut R,
) -> Result<ArrayD<T>> {
    let caller = Caller::here();
    let shape = shape.into();
    let std = root_of::<T>(2, fans(&shape).0);
    normal_in("init::kaiming_normal", shape, T::zero(), std, rng, caller)
}

/// Xavier/Glorot uniform, as `torch.nn.init.xavier_uniform_` (gain 1): `U(-b, b)` with
/// `b = sqrt(6 / (fan_in + fan_out))`.
///
/// # Errors
/// [`Error::TooLarge`](crate::Error::TooLarge), as for [`zeros`].
#[track_caller]
#[inline(never)]
pub fn xavier_uniform<T: Scalar, R: Rng + ?Sized>(
    shape: impl Into<Shape>,
    rng: &mut R,
) -> Result<ArrayD<T>> {
    let caller = Caller::here();
    let shape = shape.into();
    let (i, o) = fans(&shape);
    let b = root_of::<T>(6, i.saturating_add(o));
    let span = b + b;
    filled("init::xavier_uniform", shape, caller, &mut || {
        -b + span * unit(rng)
    })
}

/// Xavier/Glorot normal, as `torch.nn.init.xavier_normal_` (gain 1): `N(0, std^2)` with
/// `std = sqrt(2 / (fan_in + fan_out))`.
///
/// # Errors
/// [`Error::TooLarge`](crate::Error::TooLarge), as for [`zeros`].
#[track_caller]
#[inline(never)]
pub fn xavier_normal<T: Scalar, R: Rng + ?Sized>(
    shape: impl Into<Shape>,
    rng: &mut R,
) -> Result<ArrayD<T>> {
    let caller = Caller::here();
    let shape = shape.into();
    let (i, o) = fans(&shape);
    let std = root_of::<T>(2, i.saturating_add(o));
    normal_in("init::xavier_normal", shape, T::zero(), std, rng, caller)
}

/// `sqrt(a / fan)` in `T` (`fan` at least 1).
fn root_of<T: Scalar>(a: u32, fan: usize) -> T {
    let fan = T::from_usize(fan.max(1)).unwrap_or_else(T::one);
    (T::from_u32(a).unwrap_or_else(T::one) / fan).root()
}

/// Two independent standard normal samples (Marsaglia's polar method): for `(u, v)`
/// uniform in the unit disc with `s = u^2 + v^2`, `(u, v) * sqrt(-2 ln(s) / s)`.
fn standard_normal_pair<T: Scalar, R: Rng + ?Sized>(rng: &mut R) -> (T, T) {
    let (one, two) = (T::one(), T::one() + T::one());
    loop {
        let u = two * unit::<T, R>(rng) - one;
        let v = two * unit::<T, R>(rng) - one;
        let s = u * u + v * v;
        if s >= T::min_positive_value() && s < one {
            let f = (-two * ln(s) / s).root();
            return (u * f, v * f);
        }
    }
}

/// Natural logarithm of a positive normal `x`, from `+ - * /` only, so that it is the
/// same on every platform (within 2 ulp of the true value).
///
/// `x = m * 2^e` with `m` in `[sqrt(1/2), sqrt(2))`; `ln m = 2 atanh(r)` with
/// `r = (m - 1) / (m + 1)`, `|r| <= 0.1716`, and `atanh r = r + r^3/3 + r^5/5 + ...`,
/// whose terms fall by `r^2 <= 0.0295` each: 11 terms reach below 1e-17.
fn ln<T: Scalar>(x: T) -> T {
    // x = mantissa · 2^exponent, the mantissa an integer of `top + 1` bits
    let (mantissa, exponent, _) = x.integer_decode();
    let top = 63 - mantissa.leading_zeros().min(63);
    let mut e = i32::from(exponent) + top as i32;
    // m in [1, 2): the mantissa over 2^top, exact
    let int = |v: u64| T::from_u64(v).unwrap_or_else(T::one);
    let mut m = int(mantissa) / int(1 << top);
    let (one, two) = (T::one(), T::one() + T::one());
    if m >= T::of(SQRT_2) {
        m = m / two;
        e += 1;
    }
    let r = (m - one) / (m + one);
    let r2 = r * r;
    let mut series = T::zero();
    for k in (0..11u32).rev() {
        series = series * r2 + one / int(u64::from(2 * k + 1));
    }
    two * r * series + T::from_i32(e).unwrap_or_else(T::zero) * T::of(LN_2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// A generator at the top of its range: every draw `u64::MAX`.
    struct Top;

    impl rand::RngCore for Top {
        fn next_u32(&mut self) -> u32 {
            u32::MAX
        }
        fn next_u64(&mut self) -> u64 {
            u64::MAX
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            dst.fill(0xff);
        }
    }

    /// The largest draws, `(2^53 - 1) / 2^53`, round to 1 in f32 (24 bits): `[lo, hi)`
    /// must still hold, and does in f64.
    #[test]
    fn the_largest_draw_stays_below_hi_in_f32() {
        let u: ArrayD<f32> = uniform([3], 0.0, 1.0, &mut Top).unwrap();
        assert!(u.iter().all(|&v| v < 1.0), "{u}");
        assert_eq!(u[[0]], 1.0 - f32::EPSILON / 2.0);
        let u: ArrayD<f64> = uniform([3], 0.0, 1.0, &mut Top).unwrap();
        assert_eq!(u[[0]], 1.0 - f64::EPSILON / 2.0);
        let u: ArrayD<f32> = uniform([3], -2.0, 2.0, &mut Top).unwrap();
        assert!(u.iter().all(|&v| v < 2.0), "{u}");
    }

    /// Mean and (population) standard deviation.
    fn stats(w: &ArrayD<f64>) -> (f64, f64) {
        let n = w.len() as f64;
        let mean = w.sum() / n;
        let var = w.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn bounds_and_seeding() {
        let mut rng = StdRng::seed_from_u64(1);
        let w: ArrayD<f64> = kaiming_uniform([600, 10], &mut rng).unwrap();
        let b = (6.0f64 / 600.0).sqrt();
        assert!(w.iter().all(|v| v.abs() < b));
        // the sample fills the range: max |w| is close to the bound
        assert!(w.iter().fold(0.0f64, |m, v| m.max(v.abs())) > 0.99 * b);
        let mut rng2 = StdRng::seed_from_u64(1);
        assert_eq!(w, kaiming_uniform::<f64, _>([600, 10], &mut rng2).unwrap());
        let x: ArrayD<f32> = xavier_uniform([3, 5], &mut rng).unwrap();
        assert!(x.iter().all(|v| v.abs() < (6.0f32 / 8.0).sqrt()));
        assert_eq!(zeros::<f32>([2, 2]).unwrap().sum(), 0.0);
        assert_eq!(ones::<f32>([2, 2]).unwrap().sum(), 4.0);
        assert!(constant::<f32>([2, 3], 0.25)
            .unwrap()
            .iter()
            .all(|&v| v == 0.25));
    }

    #[test]
    fn fans_follow_pytorch() {
        // nn.Linear(in = 7, out = 3): PyTorch weight [3, 7] has fan_in 7 (its axis 1)
        assert_eq!(fans([7, 3]), (7, 3));
        // a [in, out, k1, k2] kernel: both fans times the receptive field k1 k2
        assert_eq!(fans([2, 4, 3, 3]), (18, 36));
        assert_eq!(fans([5]), (5, 5));
        assert_eq!(fans(Shape::scalar()), (1, 1));
        // the same layer's bound, PyTorch's sqrt(6 / fan_in) with fan_in = in = 7
        let mut rng = StdRng::seed_from_u64(3);
        let w: ArrayD<f64> = kaiming_uniform([7, 3], &mut rng).unwrap();
        assert!(w.iter().all(|v| v.abs() < (6.0f64 / 7.0).sqrt()));
    }

    #[test]
    fn normal_statistics() {
        // 10,000 samples: the mean's standard error is std / 100, the std's about
        // std / 141; tolerances are several of those
        let mut rng = StdRng::seed_from_u64(42);
        let w: ArrayD<f64> = normal([100, 100], 2.0, 3.0, &mut rng).unwrap();
        let (mean, std) = stats(&w);
        assert_abs_diff_eq!(mean, 2.0, epsilon = 0.12);
        assert_abs_diff_eq!(std, 3.0, epsilon = 0.09);
        // the shape of a normal: 68.27% within one std, 95.45% within two
        let within = |k: f64| w.iter().filter(|v| (*v - 2.0).abs() < k * 3.0).count() as f64 / 1e4;
        assert_abs_diff_eq!(within(1.0), 0.6827, epsilon = 0.015);
        assert_abs_diff_eq!(within(2.0), 0.9545, epsilon = 0.01);

        // kaiming_normal [fan_in 200, fan_out 50]: std sqrt(2 / 200) = 0.1
        let w: ArrayD<f64> = kaiming_normal([200, 50], &mut rng).unwrap();
        let (mean, std) = stats(&w);
        assert_abs_diff_eq!(mean, 0.0, epsilon = 0.004);
        assert_abs_diff_eq!(std, 0.1, epsilon = 0.003);
        // xavier_normal [150, 50]: std sqrt(2 / 200) = 0.1
        let w: ArrayD<f64> = xavier_normal([150, 50], &mut rng).unwrap();
        let (mean, std) = stats(&w);
        assert_abs_diff_eq!(mean, 0.0, epsilon = 0.004);
        assert_abs_diff_eq!(std, 0.1, epsilon = 0.003);
        // xavier_uniform [150, 50]: U(-b, b), b = sqrt(6 / 200), std b / sqrt(3) = 0.1
        let w: ArrayD<f64> = xavier_uniform([150, 50], &mut rng).unwrap();
        assert_abs_diff_eq!(stats(&w).1, 0.1, epsilon = 0.003);
    }

    #[test]
    fn normal_is_seeded_and_portable() {
        // Literal values for seed 7 (StdRng is ChaCha12; the sampler uses only IEEE
        // arithmetic): a change here means weights differ from earlier releases. The
        // normals follow from the uniform draws `2r - 1` checked below (the same numbers
        // as `uniform(.., -1, 1)`): pairs 1 and 3 fall outside the unit disc and are
        // rejected; pairs 2 and 4 give `(u, v) sqrt(-2 ln s / s)`, which Python's
        // `math.log` reproduces to the last bit.
        let mut rng = StdRng::seed_from_u64(7);
        let w: ArrayD<f64> = normal([4], 0.0, 1.0, &mut rng).unwrap();
        let want = [
            -1.1388633853576775,
            0.13549798302201654,
            -0.7321933958735392,
            -0.5487621476191515,
        ];
        assert_eq!(w.as_slice().unwrap(), &want);
        // f32 comes from the same draws, computed in f32: within a few f32 ulp
        let mut rng = StdRng::seed_from_u64(7);
        let w32: ArrayD<f32> = normal([4], 0.0, 1.0, &mut rng).unwrap();
        for (&a, b) in w32.iter().zip(want) {
            approx::assert_relative_eq!(
                f64::from(a),
                b,
                max_relative = 4.0 * f64::from(f32::EPSILON)
            );
        }
        // uniform, likewise
        let mut rng = StdRng::seed_from_u64(7);
        let u: ArrayD<f64> = uniform([8], -1.0, 1.0, &mut rng).unwrap();
        let u_want = [
            -0.9393652782697972,
            -0.38582743325151836,
            -0.7147156865984547,
            0.08503437305421091,
            -0.4550054456951633,
            0.9022626056042811,
            -0.6490767395142147,
            -0.48646812106316273,
        ];
        assert_eq!(u.as_slice().unwrap(), &u_want);
    }

    #[test]
    fn portable_ln_is_accurate() {
        let mut rng = StdRng::seed_from_u64(0);
        let mut xs: alloc::vec::Vec<f64> = (0..10_000).map(|_| rng.random::<f64>()).collect();
        xs.extend([
            1.0,
            0.5,
            2.0,
            SQRT_2,
            1e-300,
            1e300,
            f64::MIN_POSITIVE,
            1e-310, // subnormal
            1.0 - 1e-16,
        ]);
        for x in xs.into_iter().filter(|&x| x > 0.0) {
            let (got, want) = (ln(x), x.ln());
            assert!(
                (got - want).abs() <= 2.0 * f64::EPSILON * want.abs().max(1e-300),
                "ln({x}) = {got}, std says {want}"
            );
        }
        assert_eq!(ln(1.0), 0.0);
        // f32: the same series in f32
        for x in [1e-30f32, 1e-3, 0.3, 0.9, 0.999_999, 1.0, 1.5, 3e7, 1e-40] {
            let (got, want) = (ln(x), f64::from(x).ln());
            assert!(
                (f64::from(got) - want).abs()
                    <= 2.0 * f64::from(f32::EPSILON) * want.abs().max(1.0),
                "ln({x}) = {got}, f64 says {want}"
            );
        }
    }
}
