//! Numbers in messages, printed without the standard library's float formatting, which is
//! about 23 KB of every binary that can print one (measured: a hello world at the
//! `release-small` profile, 287,856 B, grows to 311,096 B printing an `f64` with `{}`,
//! `{:?}` and `{:e}`). Errors and ops' `Debug` print through these instead, so a program
//! links float formatting only if it formats a float itself.
//!
//! [`Num`] prints what `{}` prints for every value whose shortest decimal form has at most
//! 17 digits after the point and at most 2^53 as its digits (hyper-parameters, class ids,
//! probabilities); others, and [`Sci`], in scientific notation with up to 15 significant
//! digits (`1.5e-30`), which round-trips for most values but not all.

use core::fmt;

/// `2^53`: integers up to it are exact in an `f64`.
const EXACT: f64 = 9_007_199_254_740_992.0;

/// An `f64` printed as `{}` prints it (see the module docs for the exceptions).
#[derive(Clone, Copy)]
pub(crate) struct Num(pub f64);

/// An `f64` in scientific notation, as `{:e}` prints it but with at most 15 significant
/// digits.
#[derive(Clone, Copy)]
pub(crate) struct Sci(pub f64);

/// `10^k` for `k <= 22` (exact in an `f64`).
fn pow10(k: u32) -> f64 {
    let mut p = 1.0;
    for _ in 0..k {
        p *= 10.0;
    }
    p
}

/// `x` (>= 0, below 2^53) rounded to the nearest integer, exactly (`x + 0.5` is not).
fn round(x: f64) -> u64 {
    let t = x as u64;
    t + u64::from(x - t as f64 >= 0.5)
}

/// The exact product `a · s` (>= 0, its rounding below 2^53) rounded to the nearest
/// integer, ties up: the nearer of two decimals, as `{}` picks it. Rounding the rounded
/// product instead goes wrong at ties: 857.59283447265625 · 10^13 rounds to the even
/// 8575928344726562, which `round` keeps. The rounding error of `a · s` is found exactly
/// by Dekker's product (splitting, no fused multiply-add).
fn round_product(a: f64, s: f64) -> u64 {
    let x = a * s;
    let split = |v: f64| {
        let c = 134_217_729.0 * v; // 2^27 + 1
        let hi = c - (c - v);
        (hi, v - hi)
    };
    let ((ah, al), (sh, sl)) = (split(a), split(s));
    let err = ((ah * sh - x) + ah * sl + al * sh) + al * sl;
    let t = x as u64;
    // exact: `x`'s fraction, a multiple of its ulp, against an error below half an ulp
    let f = x - t as f64;
    let up = f > 0.5 || (f == 0.5 && err >= 0.0) || (f == 0.0 && err >= 0.5);
    t + u64::from(up)
}

/// Writes `m / 10^k` with exactly `k` digits after the point (none if `k` is 0).
fn write_fixed(f: &mut fmt::Formatter<'_>, m: u64, k: u32) -> fmt::Result {
    if k == 0 {
        return write!(f, "{m}");
    }
    let scale = 10u64.pow(k);
    write!(f, "{}.{:0width$}", m / scale, m % scale, width = k as usize)
}

/// NaN, infinities and the sign; `None` once the sign is written for a finite value.
fn special(f: &mut fmt::Formatter<'_>, v: f64) -> Option<fmt::Result> {
    if v.is_nan() {
        return Some(f.write_str("NaN"));
    }
    if v.is_sign_negative() {
        if let Err(e) = f.write_str("-") {
            return Some(Err(e));
        }
    }
    if v.is_infinite() {
        return Some(f.write_str("inf"));
    }
    None
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = special(f, self.0) {
            return r;
        }
        let a = self.0.abs();
        // The fewest digits after the point that give `a` back: `m / 10^k` is the
        // correctly rounded quotient of two exact numbers, so it equals `a` exactly when
        // the decimal `m e-k` parses to `a`.
        for k in 0..=17 {
            let s = pow10(k);
            let x = a * s;
            if x >= EXACT {
                break;
            }
            let m = round_product(a, s);
            if m as f64 / s == a {
                return write_fixed(f, m, k);
            }
        }
        write_sci(f, a)
    }
}

impl fmt::Display for Sci {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match special(f, self.0) {
            Some(r) => r,
            None => write_sci(f, self.0.abs()),
        }
    }
}

/// `a` (finite, >= 0) as `d.ddde±x` with up to 15 significant digits, trailing zeros cut.
fn write_sci(f: &mut fmt::Formatter<'_>, a: f64) -> fmt::Result {
    if a == 0.0 {
        return f.write_str("0e0");
    }
    // a = b * 10^e with 1 <= b < 10: e by counting, b by as few roundings as can be
    // (a power of ten up to 10^22 is exact)
    let (mut c, mut e) = (a, 0i32);
    while c >= 10.0 {
        c /= 10.0;
        e += 1;
    }
    while c < 1.0 {
        c *= 10.0;
        e -= 1;
    }
    let mut b = a;
    let mut left = e;
    while left != 0 {
        let step = left.clamp(-22, 22);
        let p = pow10(step.unsigned_abs());
        b = if step > 0 { b / p } else { b * p };
        left -= step;
    }
    if !(1.0..10.0).contains(&b) {
        // the roundings crossed a power of ten: the counted value is as good
        b = c;
    }
    let mut m = round(b * 1e14);
    if m >= 1_000_000_000_000_000 {
        // rounding gave 10.000...: one more power of ten
        m /= 10;
        e += 1;
    }
    // Rounded up, the largest values would read back as infinity (1.79769313486232e308
    // is past f64::MAX): the 15 digits below it instead.
    if e == 308 {
        m = m.min(179_769_313_486_231);
    }
    let mut k = 14;
    while k > 0 && m % 10 == 0 {
        m /= 10;
        k -= 1;
    }
    write_fixed(f, m, k)?;
    write!(f, "e{e}")
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::string::ToString;

    use super::{Num, Sci};

    #[test]
    fn prints_what_display_prints() {
        let values = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            2.5,
            0.1,
            0.2,
            1.0 / 3.0,
            2.0 / 3.0,
            0.9,
            0.999,
            1e-8,
            3e-8,
            123.456,
            -3.75,
            7.0,
            1e15,
            9007199254740991.0,
            0.01,
            1e-3,
            0.15,
            100.0,
            65504.0,
            // exact ties between two shortest forms: `{}` prints the upper, ...63
            14_050_801.0 / 16_384.0, // 857.59283447265625
            -8_778_821.0 / 16_384.0, // -535.81671142578125
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for v in values {
            assert_eq!(Num(v).to_string(), format!("{v}"), "{v:e}");
        }
        // ratios of small integers with short expansions (each correctly rounded)
        for p in -1000..1000 {
            for q in [
                1.0, 2.0, 4.0, 5.0, 8.0, 10.0, 16.0, 20.0, 100.0, 1000.0, 1024.0, 1e6,
            ] {
                let v = f64::from(p) / q;
                assert_eq!(Num(v).to_string(), format!("{v}"));
            }
        }
    }

    /// Random bit patterns (every exponent, subnormals, f32 values widened), and
    /// neighbours of powers of ten: what `Num` prints in fixed notation is what `{}`
    /// prints, and whatever either prints parses back to within 15 digits.
    #[test]
    fn random_values_print_as_display_or_close_in_scientific() {
        let mut s = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut values = alloc::vec::Vec::new();
        for _ in 0..20_000 {
            let bits = next();
            values.push(f64::from_bits(bits));
            values.push(f64::from(f32::from_bits(bits as u32)));
            // short decimals: a few digits at a random scale
            let digits = (bits >> 40) % 100_000;
            let scale = (bits >> 20) % 40;
            values.push(digits as f64 / 10f64.powi(scale as i32));
        }
        for k in -30..30 {
            let p = 10f64.powi(k);
            values.extend([
                p,
                p.next_up(),
                p.next_down(),
                -p,
                0.5 * p,
                9.999_999_999 * p,
            ]);
        }
        values.extend([
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            f64::EPSILON,
            2f64.powi(53),
            2f64.powi(53) + 2.0,
            0.5 - f64::EPSILON / 4.0,
        ]);
        for v in values {
            for text in [Num(v).to_string(), Sci(v).to_string()] {
                if v.is_nan() {
                    assert_eq!(text, "NaN");
                    continue;
                }
                let back: f64 = text.parse().unwrap();
                let tol = 1e-14 * v.abs();
                assert!(back == v || (back - v).abs() <= tol, "{v:e} printed {text}");
            }
            let num = Num(v).to_string();
            if !num.contains('e') && v.is_finite() {
                assert_eq!(num, format!("{v}"), "{v:e}");
            }
        }
    }

    #[test]
    fn the_rest_in_scientific_notation() {
        for (v, s) in [
            (1e30, "1e30"),
            (-2.5e-30, "-2.5e-30"),
            (1.0 / 3.0 * 1e-20, "3.33333333333333e-21"),
            (0.987_654_321_098_765_4, "9.87654321098765e-1"),
            (f64::from(0.1f32), "1.00000001490116e-1"),
            (1.5e-17, "1.5e-17"),
            // 17 significant digits: cut to 15, no longer the same number
            (0.30000000000000004, "3e-1"),
        ] {
            assert_eq!(Num(v).to_string(), s);
        }
        for (v, s) in [
            (0.0, "0e0"),
            (1.5, "1.5e0"),
            (-1e-3, "-1e-3"),
            (123.0, "1.23e2"),
            (1e23 * (1.0 - 1e-16), "1e23"),
            // not ...232e308, which reads back as infinity
            (f64::MAX, "1.79769313486231e308"),
            (-f64::MAX, "-1.79769313486231e308"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(Sci(v).to_string(), s, "{v:e}");
        }
        // where 15 digits are enough, what `{:e}` prints
        for v in [1.5, 2.25e-7, 6.02214076e23, 1.602176634e-19, 42.0] {
            assert_eq!(Sci(v).to_string(), format!("{v:e}"));
        }
    }
}
