//! `exp`, the logistic sigmoid and `tanh` of many `f32`s at once, for x86-64 hosts with
//! AVX2 and FMA (the `std` build).
//!
//! The C library's `expf` is called once per element and is not vectorised: in the S
//! configuration's step its 640 calls (softmax cross-entropy over 32 × 10 logits, forward
//! and gradient) were 12% of the time. [`exp_f32`] computes in `f64`, where the argument
//! reduction and a degree-11 polynomial carry about 2^-47 relative error, so its `f32`
//! result is `(x as f64).exp() as f32` for all but 2 of the 2,239,889,410 `f32`s in
//! `[-104, 89]` (checked exhaustively once, 1 ulp off for those 2; the test below samples
//! every 613th). The body is plain arithmetic with no table, so in a function compiled
//! for AVX2 the loop in [`exp_slice`] becomes vector code, 4 (AVX2) or 8 (AVX-512) lanes
//! per instruction.
//! Results do not depend on the lane count: every lane runs the same IEEE operations.
//!
//! Only the `std` build on x86-64 uses it ([`Scalar::exp_in_place`]): devices and the
//! `no_std` host keep the `libm` crate's `expf`, so their loss traces stay bit for bit
//! what they were and their images do not grow.
//!
//! [`Scalar::exp_in_place`]: crate::scalar::Scalar::exp_in_place

/// `e^x` in `f64` for `x` in `[-104, 89]` (callers hold it there): `x = k ln 2 + r` with
/// `|r| <= ln 2 / 2`, `e^x = 2^k e^r`, `e^r` by its Taylor series to degree 11 (truncation
/// below `7e-15` relative; evaluated by Estrin's scheme, four operations deep rather than
/// Horner's eleven), `2^k` written into the exponent bits.
#[inline(always)]
fn exp_f64(xd: f64) -> f64 {
    // 1.5 * 2^52: added to a value of magnitude below 2^51, rounds it to an integer (to
    // nearest, ties to even) that the low bits of the sum then hold
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    const C: [f64; 12] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5_040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
    ];
    let shifted = xd * core::f64::consts::LOG2_E + SHIFT;
    let k = shifted - SHIFT;
    let r = (-k).mul_add(core::f64::consts::LN_2, xd);
    let (r2, q) = (r * r, |i: usize| C[i + 1].mul_add(r, C[i]));
    let r4 = r2 * r2;
    let s0 = q(2).mul_add(r2, q(0));
    let s1 = q(6).mul_add(r2, q(4));
    let s2 = q(10).mul_add(r2, q(8));
    let p = s2.mul_add(r4 * r4, s1.mul_add(r4, s0));
    // the low bits of `shifted` are k (|k| <= 151) above SHIFT's own, whose low 12 bits
    // are 0: so (bits + 1023) << 52 is 2^k's bit pattern, 1023 + k in [872, 1152]
    p * f64::from_bits(shifted.to_bits().wrapping_add(1023) << 52)
}

/// `exp(x)` for one `f32`, computed in `f64` ([`exp_f64`]). The argument is first held to
/// `[-104, 89]`: below, `exp` rounds to 0 in `f32`; above, to infinity; so the result is
/// also right for the infinities and for every overflow and underflow, subnormals
/// included (one rounding, from `f64` to `f32`). NaN gives NaN.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    let y = exp_f64(f64::from(x).clamp(-104.0, 89.0)) as f32;
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// The logistic sigmoid of one `f32`, in `f64`: `1 / (1 + e)` for `x >= 0` and
/// `e / (1 + e)` below, `e = exp(-|x|)` (the op's formulas, without their rounding to
/// `f32` between steps). `|x|` is held to 104, past which the result rounds to 1 or 0.
#[inline(always)]
pub(crate) fn sigmoid_f32(x: f32) -> f32 {
    let xd = f64::from(x);
    let e = exp_f64(-xd.abs().min(104.0));
    let y = (if xd >= 0.0 { 1.0 } else { e } / (1.0 + e)) as f32;
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// `tanh` of one `f32`, in `f64`: `(1 - e) / (1 + e)` with `e = exp(-2|x|)`, the sign of
/// `x`. `1 - e` cancels for small `|x|`, but in `f64` its relative error stays below
/// `1e-11` for `|x| >= 2^-12`; below, `tanh(x) = x (1 - x²/3 + ...)` rounds to `x` itself
/// or its neighbour, and `x` is returned (signed zeros kept). `|x|` is held to 10, past
/// which `tanh` rounds to ±1.
#[inline(always)]
pub(crate) fn tanh_f32(x: f32) -> f32 {
    let a = f64::from(x).abs().min(10.0);
    let e = exp_f64(-2.0 * a);
    let t = ((1.0 - e) / (1.0 + e)) as f32;
    if x.is_nan() || a < 1.0 / 4096.0 {
        x
    } else {
        t.copysign(x)
    }
}

/// Elements computed side by side: enough independent vectors to keep the FMA units busy
/// (4 of AVX-512's 8 doubles, 8 of AVX2's 4).
const W: usize = 32;

/// One of the functions above, applied to slices.
trait Kernel {
    fn f(x: f32) -> f32;
}

struct Exp;
impl Kernel for Exp {
    #[inline(always)]
    fn f(x: f32) -> f32 {
        exp_f32(x)
    }
}

struct Sigmoid;
impl Kernel for Sigmoid {
    #[inline(always)]
    fn f(x: f32) -> f32 {
        sigmoid_f32(x)
    }
}

struct Tanh;
impl Kernel for Tanh {
    #[inline(always)]
    fn f(x: f32) -> f32 {
        tanh_f32(x)
    }
}

/// `exp` of every element of `x`, in place, vectorised where the CPU allows.
pub(crate) fn exp_slice(x: &mut [f32]) {
    if !slice::<Exp>(x) {
        // without FMA, `mul_add` is a library call per use: the C library's `expf` is faster
        for v in x {
            *v = v.exp();
        }
    }
}

/// The sigmoid of every element of `x`, in place, if the CPU has AVX2 and FMA.
pub(crate) fn sigmoid_slice(x: &mut [f32]) -> bool {
    slice::<Sigmoid>(x)
}

/// `tanh` of every element of `x`, in place, if the CPU has AVX2 and FMA.
pub(crate) fn tanh_slice(x: &mut [f32]) -> bool {
    slice::<Tanh>(x)
}

/// `K::f` of every element, vectorised; `false` (nothing done) on a CPU without AVX2 and
/// FMA.
fn slice<K: Kernel>(x: &mut [f32]) -> bool {
    let fma = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    if fma && is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, AVX2 and FMA (just checked).
        unsafe { avx512::<K>(x) }
    } else if fma {
        // SAFETY: the CPU has AVX2 and FMA (just checked).
        unsafe { avx2::<K>(x) }
    }
    fma
}

/// [`W`] elements at a time, the tail through a zero-padded block.
#[inline(always)]
fn blocks<K: Kernel>(x: &mut [f32]) {
    let mut chunks = x.chunks_exact_mut(W);
    for c in &mut chunks {
        for v in c {
            *v = K::f(*v);
        }
    }
    let tail = chunks.into_remainder();
    if tail.is_empty() {
        return;
    }
    let mut b = [0.0f32; W];
    b[..tail.len()].copy_from_slice(tail);
    for v in &mut b {
        *v = K::f(*v);
    }
    tail.copy_from_slice(&b[..tail.len()]);
}

#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<K: Kernel>(x: &mut [f32]) {
    blocks::<K>(x)
}

#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn avx512<K: Kernel>(x: &mut [f32]) {
    blocks::<K>(x)
}

#[cfg(test)]
mod tests {
    use super::{exp_f32, exp_slice, sigmoid_slice, tanh_slice};
    use alloc::vec::Vec;

    /// Distance in units in the last place between two finite `f32`s of one sign.
    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn within_one_ulp_of_the_rounded_f64_exp_and_nearly_always_equal() {
        // every 613th f32 from -104 to 89 (about 3.6 million of them): the range where
        // exp is neither 0 nor infinite in f32, with margin
        let (lo, hi) = (-104.0f32, 89.0f32);
        let (mut n, mut differ, mut worst) = (0u64, 0u64, 0u32);
        let mut check = |x: f32| {
            let want = (f64::from(x)).exp() as f32;
            let got = exp_f32(x);
            if got.to_bits() != want.to_bits() {
                differ += 1;
                worst = worst.max(ulps(got, want));
            }
            n += 1;
        };
        // negative values: bits from -0 up to lo's; positive: from +0 up to hi's
        for b in (0x8000_0000u32..=lo.to_bits()).step_by(613) {
            check(f32::from_bits(b));
        }
        for b in (0u32..=hi.to_bits()).step_by(613) {
            check(f32::from_bits(b));
        }
        assert!(n > 3_000_000, "{n}");
        assert!(worst <= 1, "{differ} of {n} differ, by up to {worst} ulp");
        assert!(differ * 100_000 < n, "{differ} of {n} differ");
    }

    /// Sigmoid and tanh against their `f64` values rounded to `f32`, over every 6131st `f32`
    /// of either sign up to 120 in magnitude (past where both saturate) and the tiny ones.
    #[test]
    fn sigmoid_and_tanh_within_one_ulp_of_the_rounded_f64_values() {
        use super::{sigmoid_f32, tanh_f32};
        let sigmoid = |x: f64| {
            if x >= 0.0 {
                1.0 / (1.0 + (-x).exp())
            } else {
                x.exp() / (1.0 + x.exp())
            }
        };
        let (mut n, mut differ) = (0u64, [0u64; 2]);
        let top = 120.0f32.to_bits();
        let xs = (0u32..=top)
            .step_by(6131)
            .flat_map(|b| [f32::from_bits(b), -f32::from_bits(b)]);
        for x in xs {
            for (k, (got, want)) in [
                (sigmoid_f32(x), sigmoid(f64::from(x)) as f32),
                (tanh_f32(x), f64::from(x).tanh() as f32),
            ]
            .into_iter()
            .enumerate()
            {
                if got.to_bits() != want.to_bits() {
                    differ[k] += 1;
                    assert!(ulps(got, want) <= 1, "f{k}({x}) = {got}, want {want}");
                }
            }
            n += 1;
        }
        assert!(n > 300_000, "{n}");
        // nearly always the correctly rounded value (every 7th f32 once: sigmoid 0, tanh 2
        // of 320,864,258 differ)
        assert!(
            differ[0] * 10_000 < n && differ[1] * 10_000 < n,
            "{differ:?} of {n}"
        );
        for (x, s, t) in [
            (0.0f32, 0.5f32, 0.0f32),
            (f32::INFINITY, 1.0, 1.0),
            (f32::NEG_INFINITY, 0.0, -1.0),
            (200.0, 1.0, 1.0),
            (-200.0, 0.0, -1.0),
        ] {
            assert_eq!((sigmoid_f32(x), tanh_f32(x)), (s, t), "{x}");
        }
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanh_f32(1e-30), 1e-30);
        assert!(sigmoid_f32(f32::NAN).is_nan() && tanh_f32(f32::NAN).is_nan());
    }

    #[test]
    fn limits_and_special_values() {
        let max = f32::MAX.ln(); // 88.72284
        for (x, want) in [
            (0.0f32, 1.0f32),
            (-0.0, 1.0),
            (1.0, core::f32::consts::E),
            (f32::INFINITY, f32::INFINITY),
            (f32::NEG_INFINITY, 0.0),
            (1e30, f32::INFINITY),
            (-1e30, 0.0),
            (89.0, f32::INFINITY),
            (-104.0, 0.0),
            (max, (f64::from(max)).exp() as f32),
            (-87.0, (-87.0f64).exp() as f32),
            (-100.0, (-100.0f64).exp() as f32), // subnormal
            (-103.0, (-103.0f64).exp() as f32), // the smallest subnormals
        ] {
            assert_eq!(exp_f32(x).to_bits(), want.to_bits(), "exp({x})");
        }
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(exp_f32(-f32::NAN).is_nan());
        assert_eq!(exp_f32(max.next_up()), f32::INFINITY);
        assert!(exp_f32(-103.0) > 0.0 && exp_f32(-103.0) < f32::MIN_POSITIVE);
    }

    #[test]
    fn the_vector_loop_gives_the_scalar_bits_at_every_length() {
        for n in 0..70 {
            let x: Vec<f32> = (0..n)
                .map(|i| match i % 7 {
                    0 => f32::NAN,
                    1 => -120.0 + i as f32,
                    _ => (i as f32 * 0.731).sin() * 30.0,
                })
                .collect();
            let mut y = x.clone();
            exp_slice(&mut y);
            let (mut s, mut t) = (x.clone(), x.clone());
            let vector = sigmoid_slice(&mut s) && tanh_slice(&mut t);
            for (i, (a, b)) in x.iter().zip(&y).enumerate() {
                let want = exp_f32(*a);
                assert!(
                    want.to_bits() == b.to_bits() || (want.is_nan() && b.is_nan()),
                    "n {n}: exp({a}) = {b}, want {want}"
                );
                if vector {
                    for (got, want) in [(s[i], super::sigmoid_f32(*a)), (t[i], super::tanh_f32(*a))]
                    {
                        assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()));
                    }
                }
            }
        }
    }
}
