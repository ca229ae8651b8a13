//! Loading a tensor of the other float dtype, when [`WeightMap::convert_dtype`] asks for
//! it: f32 to f64 is exact (every f32 is an f64); f64 to f32 rounds to nearest, ties to
//! even (Rust's `as f32`, IEEE 754's default), and a finite f64 that rounds past f32's
//! largest finite value (3.4028235e38) is refused rather than made an infinity.
//!
//! [`WeightMap::convert_dtype`]: super::WeightMap::convert_dtype

use alloc::format;
use alloc::vec::Vec;

use super::format::{Dtype, Tensor};
use super::{describe, from_le_bytes};
use crate::error::{Caller, Error, Result};
use crate::num::Num;
use crate::scalar::Scalar;

/// The values of `view` (F32 or F64, the other dtype than `T`) as `T`; `expected`
/// describes what the machine needs, for the error.
pub(super) fn converted<T: Scalar>(
    view: &Tensor<'_>,
    expected: &str,
    caller: Caller,
) -> Result<Vec<T>> {
    if view.dtype == Dtype::F32 {
        // f32 -> f64 -> T: exact for T = f64, the identity for T = f32
        return Ok(from_le_bytes::<f32>(view.data)
            .into_iter()
            .map(|x| T::of(f64::from(x)))
            .collect());
    }
    let wide = from_le_bytes::<f64>(view.data);
    let mut out = Vec::with_capacity(wide.len());
    for (i, &x) in wide.iter().enumerate() {
        // `T::of` is `as`: round to nearest; out of range it gives an infinity
        let y = T::of(x);
        if x.is_finite() && !y.is_finite() {
            return Err(Error::Weights {
                name: view.name.clone(),
                expected: expected.into(),
                found: format!(
                    "{} whose element {i}, {}, is beyond the range of {} (nothing was \
                     converted)",
                    describe(view.dtype, &view.shape),
                    Num(x),
                    T::NAME
                ),
                caller,
            });
        }
        out.push(y);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Graph;
    use crate::weights::WeightMap;
    use alloc::string::ToString;

    /// An f64 machine's file of one parameter `w` holding `values`.
    fn f64_file(values: &[f64]) -> Vec<u8> {
        let g = Graph::<f64>::new();
        let w = g.param("w", ndarray::arr1(values));
        g.compile(&[w], &[]).unwrap().save_to_bytes().unwrap()
    }

    fn f32_machine(n: usize) -> crate::Machine<f32> {
        let g = Graph::<f32>::new();
        let w = g.param("w", ndarray::Array1::<f32>::zeros(n));
        g.compile(&[w], &[]).unwrap()
    }

    fn w32(m: &crate::Machine<f32>) -> Vec<f32> {
        let h = m.handle_of("w").unwrap();
        m.value(h).unwrap().iter().copied().collect()
    }

    #[test]
    fn f64_to_f32_rounds_to_nearest() {
        let convert = WeightMap::new().convert_dtype(true);
        // 0.1 is not an f32: the nearest is 13421773 * 2^-27 = 0.100000001490116...
        // (bits 0x3DCCCCCD); 1 + 2^-24 is halfway between 1 and 1 + 2^-23: ties to even, 1;
        // f32::MAX itself and a value just above it that still rounds down to it
        // (less than half an ulp, 2^103, above) stay finite; -0.0 keeps its sign.
        let just_above = f64::from(f32::MAX) + 2f64.powi(102);
        let values = [
            0.1,
            1.0 + 2f64.powi(-24),
            f64::from(f32::MAX),
            just_above,
            -0.0,
        ];
        let mut m = f32_machine(values.len());
        m.load_from_bytes_with(&f64_file(&values), &convert)
            .unwrap();
        let got = w32(&m);
        assert_eq!(got[0].to_bits(), 0x3DCC_CCCD);
        assert_eq!(got[0], 0.1f32);
        assert_eq!(got[1], 1.0);
        assert_eq!(got[2], f32::MAX);
        assert_eq!(got[3], f32::MAX);
        assert_eq!(got[4].to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn non_finite_values_convert_as_they_are() {
        let convert = WeightMap::new().convert_dtype(true);
        let mut m = f32_machine(3);
        let file = f64_file(&[f64::INFINITY, f64::NEG_INFINITY, f64::NAN]);
        m.load_from_bytes_with(&file, &convert).unwrap();
        let got = w32(&m);
        assert_eq!(got[..2], [f32::INFINITY, f32::NEG_INFINITY]);
        assert!(got[2].is_nan());
    }

    #[test]
    fn a_finite_f64_beyond_f32_is_refused_by_name_and_nothing_loads() {
        let convert = WeightMap::new().convert_dtype(true);
        let mut m = f32_machine(3);
        for bad in [1e39, -1e39, f64::MAX] {
            let e = m
                .load_from_bytes_with(&f64_file(&[1.0, 2.0, bad]), &convert)
                .unwrap_err();
            match &e {
                Error::Weights { name, found, .. } => {
                    assert_eq!(name, "w");
                    assert!(found.contains("element 2"), "{found}");
                    assert!(found.contains("beyond the range of f32"), "{found}");
                }
                e => panic!("{e}"),
            }
            assert!(e.to_string().contains("convert.rs"), "{e}");
            assert_eq!(w32(&m), [0.0; 3], "nothing loads");
        }
    }

    #[test]
    fn f32_to_f64_is_exact() {
        let g = Graph::<f32>::new();
        let small = f32::from_bits(1); // the smallest subnormal, 2^-149
        let values = [0.1f32, f32::MAX, small, -3.5];
        let w = g.param("w", ndarray::arr1(&values));
        let file = g.compile(&[w], &[]).unwrap().save_to_bytes().unwrap();
        let g = Graph::<f64>::new();
        let w = g.param("w", ndarray::Array1::<f64>::zeros(4));
        let mut m = g.compile(&[w], &[]).unwrap();
        let convert = WeightMap::new().convert_dtype(true);
        m.load_from_bytes_with(&file, &convert).unwrap();
        let got = m.value(w).unwrap();
        // 0.1f32 as f64 is 13421773 * 2^-27 = 0.100000001490116119384765625 exactly,
        // not 0.1
        assert_eq!(got[[0]], 13_421_773.0 * 2f64.powi(-27));
        assert_ne!(got[[0]], 0.1);
        assert_eq!(got[[1]], 3.402_823_466_385_288_6e38);
        assert_eq!(got[[2]], 2f64.powi(-149));
        assert_eq!(got[[3]], -3.5);
    }

    #[test]
    fn the_default_still_refuses_the_other_dtype_both_ways() {
        let mut m = f32_machine(1);
        let e = m.load_from_bytes(&f64_file(&[0.5])).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("expected f32 [1], found f64 [1]"), "{msg}");
        assert!(msg.contains("convert_dtype(true)"), "{msg}");
        assert_eq!(w32(&m), [0.0]);
        let g = Graph::<f32>::new();
        let w = g.param("w", ndarray::arr1(&[0.5f32]));
        let file = g.compile(&[w], &[]).unwrap().save_to_bytes().unwrap();
        let g = Graph::<f64>::new();
        let w = g.param("w", ndarray::arr1(&[0.0f64]));
        let mut m = g.compile(&[w], &[]).unwrap();
        assert!(m.load_from_bytes(&file).is_err());
        // explicitly off is the default
        let off = WeightMap::new().convert_dtype(false);
        assert!(m.load_from_bytes_with(&file, &off).is_err());
        assert_eq!(m.value(w).unwrap()[[0]], 0.0);
    }
}
