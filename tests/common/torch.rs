//! Reading the PyTorch fixtures of tests/fixtures/ and comparing tapegrad's values with
//! them: what tests/pytorch_fixture.rs and tests/pytorch_layers.rs share.

#![allow(dead_code)] // each test binary uses part of it

use std::path::PathBuf;

use ndarray::{ArrayD, IxDyn};
use safetensors::{Dtype, SafeTensors};
use tapegrad::Scalar;

/// The path of a file in tests/fixtures/.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A tensor of the fixture as f64 (f32 values widen exactly; int64 class ids too).
pub fn tensor(file: &SafeTensors<'_>, name: &str) -> ArrayD<f64> {
    let t = file.tensor(name).unwrap();
    let values: Vec<f64> = match t.dtype() {
        Dtype::F32 => t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        Dtype::F64 => t
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        Dtype::I64 => t
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        d => panic!("{name}: unexpected dtype {d:?}"),
    };
    ArrayD::from_shape_vec(IxDyn(t.shape()), values).unwrap()
}

/// Checks `got` against PyTorch's `want` element by element: equal within `max_relative`
/// of the larger magnitude, or within `epsilon` for values near zero. Returns the largest
/// relative error among elements of magnitude at least `epsilon`.
pub fn compare<T: Scalar>(
    what: &str,
    got: ndarray::ArrayViewD<'_, T>,
    want: &ArrayD<f64>,
    max_relative: f64,
    epsilon: f64,
) -> f64 {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let mut worst: f64 = 0.0;
    for (i, (g, &w)) in got.iter().zip(want.iter()).enumerate() {
        let g = g.to_f64().unwrap();
        let diff = (g - w).abs();
        let scale = g.abs().max(w.abs());
        assert!(
            diff <= epsilon || diff <= max_relative * scale,
            "{what}[{i}]: tapegrad {g:e}, PyTorch {w:e} (relative error {:e})",
            diff / scale
        );
        if scale >= epsilon {
            worst = worst.max(diff / scale);
        }
    }
    worst
}
