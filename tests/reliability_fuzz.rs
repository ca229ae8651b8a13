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

// fuzz target `graphs`: two inputs with run-time axes of different bounds (4 and 1); the
// machine is planned for the smaller one, yet feeding the larger one more rows than that
// took a row count its buffers do not hold.
#[test]
fn inputs_of_different_bounds_take_no_more_rows_than_the_smaller() {
    let g = Graph::<f32>::new();
    let a = g.input("a", Dim::upto(4));
    let b = g.input("b", (Dim::upto(1), 4));
    let y = b.sum() + a.sum();
    let mut m = g.compile(&[y, b], &[]).unwrap();
    let err = m.feed(a, &tapegrad::ndarray::Array1::<f32>::ones(3));
    let msg = err.unwrap_err().to_string();
    assert!(msg.contains("[..=1]") && msg.contains("\"a\""), "{msg}");
    let err = m.feed(b, &tapegrad::ndarray::Array2::<f32>::ones((3, 4)));
    assert!(err.is_err(), "3 rows past b's bound of 1: {err:?}");
    // what fits still runs
    m.feed(a, &tapegrad::ndarray::Array1::<f32>::ones(1))
        .unwrap();
    m.feed(b, &tapegrad::ndarray::Array2::<f32>::ones((1, 4)))
        .unwrap();
    m.run().unwrap();
    assert_eq!(m.item(y).unwrap(), 5.0);
    assert_eq!(m.value(b).unwrap().len(), 4);
}

// fuzz target `graphs`: `mse` of mismatched shapes recorded its failed node with
// `Shape::default()`, which (derived) was a scalar with a run-time axis of bound 0; an
// `unsqueeze` or `stack` of it then indexed past its dimensions.
#[test]
fn the_default_shape_is_a_scalar_without_a_run_time_axis() {
    assert_eq!(Shape::default(), Shape::scalar());
    assert_eq!(Shape::default().run_axis(), None);
    let g = Graph::<f32>::new();
    let x = g.input("x", [2]);
    let bad = x.mse(g.input("y", [3]));
    assert_eq!(bad.shape().run_axis(), None);
    let y = g.stack(&[bad, bad], 0).unsqueeze(0).sum();
    let err = g.compile(&[y], &[]).unwrap_err();
    let Error::Shape { op, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*op, "mse", "{err}");
}
