//! Crashes the fuzz targets (fuzz/) found outside the classes fixed elsewhere, each
//! reproduced as the user would write it: an `Err` or a value, never a panic.

use tapegrad::prelude::*;

// fuzz target `graphs`: a reshape (here `unsqueeze`, `reshape`) of an input whose
// run-time axis has a bound of 0 divided by the bound; the input's own error is the one
// returned.
#[test]
fn reshape_of_a_run_axis_of_bound_zero_is_the_inputs_error() {
    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(0), 3));
    let y = x.unsqueeze(1).sum() + x.reshape([0, 3]).sum();
    let err = g.compile(&[y], &[]).unwrap_err();
    let Error::Shape { op, reason, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*op, "input", "{err}");
    assert!(reason.contains("bound of at least 1"), "{err}");
}
