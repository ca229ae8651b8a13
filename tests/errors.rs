//! Every way a user can get it wrong comes back as a typed `Err` with a message that names
//! the facts (op, shapes, name, the user's file and line), never as a panic.

use ndarray::{arr1, arr2, Array1, Array2};
use tapegrad::prelude::*;
use tapegrad::{Caller, Shape};

/// The caller points at this file, at `line`.
#[track_caller]
fn assert_at(caller: &Caller, line: u32) {
    assert!(
        caller.file.ends_with("errors.rs"),
        "caller file {} is not this test file",
        caller.file
    );
    assert_eq!(caller.line, line, "caller {caller:?}");
}

/// An `Error::Shape` naming `op` and `shapes`, recorded at `line` of this file; its message
/// says all of that too.
#[track_caller]
fn assert_shape_error(e: &Error, op: &str, shapes: &[Shape], line: u32) {
    match e {
        Error::Shape {
            op: got_op,
            shapes: got_shapes,
            caller,
            ..
        } => {
            assert_eq!(*got_op, op, "{e}");
            assert_eq!(got_shapes.as_slice(), shapes, "{e}");
            assert_at(caller, line);
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains(&format!("`{op}`")), "{msg}");
    for s in shapes {
        assert!(msg.contains(&s.to_string()), "{msg} lacks {s}");
    }
    assert!(msg.contains(&format!("errors.rs:{line}:")), "{msg}");
}

#[test]
fn shape_error_is_returned_from_check_grad_and_compile() {
    let g = Graph::<f32>::new();
    let a = g.param("a", Array2::<f32>::zeros((2, 3)));
    let b = g.input("b", [4]);
    let (c, line) = (a + b, line!());
    // ops recorded after the error still chain
    let loss = (c.tanh() * 2.0).sum();
    let shapes = [Shape::from([2, 3]), Shape::from([4])];
    assert_shape_error(&g.check().unwrap_err(), "add", &shapes, line);
    assert_shape_error(&g.grad(loss, &[a]).unwrap_err(), "add", &shapes, line);
    assert_shape_error(&g.compile(&[loss], &[]).unwrap_err(), "add", &shapes, line);
    assert!(g
        .check()
        .unwrap_err()
        .to_string()
        .contains("do not broadcast"));
}

#[test]
fn first_of_several_shape_errors_wins() {
    let g = Graph::<f64>::new();
    let x = g.input("x", [2, 3]);
    let w = g.input("w", [4, 5]);
    let (h, line) = (x.matmul(w), line!());
    let _ = h.reshape([7]);
    let e = g.compile(&[h], &[]).unwrap_err();
    assert_shape_error(
        &e,
        "matmul",
        &[Shape::from([2, 3]), Shape::from([4, 5])],
        line,
    );
    // [2, 3] · [4, 5]: inner dimensions 3 and 4
    assert!(e.to_string().contains("3 and 4"), "{e}");
}

#[test]
fn operator_overloads_report_the_callers_line() {
    let g = Graph::<f32>::new();
    let a = g.input("a", [2, 3]);
    let b = g.input("b", [3, 2]);
    let shapes = [Shape::from([2, 3]), Shape::from([3, 2])];
    let (_, line) = (a + b, line!());
    assert_shape_error(&g.check().unwrap_err(), "add", &shapes, line);

    for (k, op) in ["sub", "mul", "div"].into_iter().enumerate() {
        let g = Graph::<f32>::new();
        let a = g.input("a", [2, 3]);
        let b = g.input("b", [3, 2]);
        let line = match k {
            0 => (a - b, line!()).1,
            1 => (a * b, line!()).1,
            _ => (a / b, line!()).1,
        };
        assert_shape_error(&g.check().unwrap_err(), op, &shapes, line);
    }
}

#[test]
fn composite_ops_report_the_callers_line() {
    let g = Graph::<f32>::new();
    let logits = g.input("logits", [4, 3]);
    let ids = g.input("ids", [5]);
    let (_, line) = (logits.cross_entropy(ids), line!());
    let e = g.grad(g.full([], 0.0), &[logits]).unwrap_err();
    assert_shape_error(
        &e,
        "cross_entropy",
        &[Shape::from([4, 3]), Shape::from([5])],
        line,
    );

    let g = Graph::<f64>::new();
    let p = g.input("p", [2]);
    let t = g.input("t", [3]);
    let (_, line) = (p.mse(t), line!());
    let e = g.check().unwrap_err();
    assert_shape_error(&e, "mse", &[Shape::from([2]), Shape::from([3])], line);
}

#[test]
fn grad_with_a_seed_of_the_wrong_shape() {
    let g = Graph::<f64>::new();
    let x = g.param("x", arr1(&[1.0, 2.0, 3.0]));
    let y = x * x;
    let seed = g.ones([2]);
    let (e, line) = (g.grad_with(y, seed, &[x]).unwrap_err(), line!());
    assert_shape_error(&e, "grad", &[Shape::from([3]), Shape::from([2])], line);
}

#[test]
fn feed_of_the_wrong_shape() {
    let g = Graph::<f32>::new();
    let x = g.input("x", [2, 3]);
    let y = x.sum();
    let mut m = g.compile(&[y], &[]).unwrap();
    let (e, line) = (m.feed(x, &Array2::<f32>::zeros((3, 2))), line!());
    let e = e.unwrap_err();
    match &e {
        Error::Feed {
            name,
            expected,
            got,
            caller,
        } => {
            assert_eq!(name, "x");
            assert_eq!(*expected, Shape::from([2, 3]));
            assert_eq!(*got, Shape::from([3, 2]));
            assert_at(caller, line);
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("\"x\"") && msg.contains("[3, 2]") && msg.contains("[2, 3]"),
        "{msg}"
    );
    // a rank mismatch with the same element count is also refused
    let e = m.feed(x, &Array1::<f32>::zeros(6)).unwrap_err();
    assert!(matches!(e, Error::Feed { .. }), "{e}");
    // nothing was fed, so the machine cannot run
    assert!(matches!(m.run(), Err(Error::NotFed { .. })));
}

#[test]
fn feeding_a_parameter_or_setting_an_input_is_the_wrong_kind() {
    let g = Graph::<f32>::new();
    let x = g.input("x", [2]);
    let w = g.param("w", arr1(&[1.0f32, 2.0]));
    let y = x * w;
    let mut m = g.compile(&[y], &[]).unwrap();
    let (e, line) = (m.feed(w, &arr1(&[0.0f32, 0.0])).unwrap_err(), line!());
    match &e {
        Error::WrongKind {
            expected,
            got,
            caller,
        } => {
            assert_eq!((*expected, *got), ("input", "parameter"));
            assert_at(caller, line);
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("input") && msg.contains("parameter"), "{msg}");

    let e = m.set_param(x, &arr1(&[0.0f32, 0.0])).unwrap_err();
    assert!(
        matches!(
            e,
            Error::WrongKind {
                expected: "parameter",
                got: "input",
                ..
            }
        ),
        "{e}"
    );
    // an op's value is not a parameter either; the message names the op
    let e = m.set_param(y, &arr1(&[0.0f32, 0.0])).unwrap_err();
    assert!(
        matches!(
            e,
            Error::WrongKind {
                expected: "parameter",
                got: "mul",
                ..
            }
        ),
        "{e}"
    );
    // the parameter kept its value
    assert_eq!(m.value(w).unwrap().as_slice(), Some(&[1.0f32, 2.0][..]));
}

#[test]
fn feed_slice_of_the_wrong_length() {
    let g = Graph::<f64>::new();
    let x = g.input("x", [2, 3]);
    let mut m = g.compile(&[x.sum()], &[]).unwrap();
    let (e, line) = (m.feed_slice(x, &[1.0; 5]).unwrap_err(), line!());
    match &e {
        Error::Feed {
            name,
            expected,
            got,
            caller,
        } => {
            assert_eq!(name, "x");
            assert_eq!(*expected, Shape::from([2, 3]));
            // a flat slice is reported as [len]
            assert_eq!(*got, Shape::from([5]));
            assert_at(caller, line);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("[5]"), "{e}");
    m.feed_slice(x, &[1.0; 6]).unwrap();
}

#[test]
fn feed_named_with_an_unknown_name() {
    let g = Graph::<f32>::new();
    let x = g.input("x", [2]);
    let y = x.sum();
    let mut m = g.compile(&[y], &[]).unwrap();
    let data = arr1(&[1.0f32, 2.0]);
    let (e, line) = (m.feed_named("nope", &data).unwrap_err(), line!());
    match &e {
        Error::UnknownName { name, caller } => {
            assert_eq!(name, "nope");
            assert_at(caller, line);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("\"nope\""), "{e}");
    // the right name works: 1 + 2 = 3
    m.feed_named("x", &data).unwrap();
    m.run().unwrap();
    approx::assert_abs_diff_eq!(m.item(y).unwrap(), 3.0);
}

#[test]
fn reading_a_node_that_was_not_compiled() {
    let g = Graph::<f32>::new();
    let x = g.input("x", [2]);
    let unused = g.input("unused", [2]);
    let y = x.sum();
    let z = x.exp();
    let mut m = g.compile(&[y], &[]).unwrap();
    m.feed(x, &arr1(&[1.0f32, 2.0])).unwrap();
    m.run().unwrap();
    let (e, line) = (m.value(z).unwrap_err(), line!());
    match &e {
        Error::NotCompiled { node, caller, .. } => {
            assert_eq!(*node as usize, z.id().index());
            assert_at(caller, line);
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("node {}", z.id().index())) && msg.contains("compile"),
        "{msg}"
    );
    // an input the outputs do not need is not in the machine either
    let e = m.feed(unused, &arr1(&[0.0f32, 0.0])).unwrap_err();
    assert!(matches!(e, Error::NotCompiled { .. }), "{e}");
    assert!(matches!(
        m.feed_named("unused", &arr1(&[0.0f32, 0.0])),
        Err(Error::UnknownName { .. })
    ));
}

#[test]
fn reading_an_op_value_before_run() {
    let g = Graph::<f32>::new();
    let w = g.param("w", arr1(&[1.5f32, -2.0]));
    let y = (w * w).sum();
    let mut m = g.compile(&[y], &[]).unwrap();
    let (e, line) = (m.value(y).unwrap_err(), line!());
    match &e {
        Error::NotRun { op, caller } => {
            assert_eq!(*op, "sum");
            assert_at(caller, line);
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("`sum`") && msg.contains("run"), "{msg}");
    assert!(matches!(m.item(y), Err(Error::NotRun { .. })));
    // a parameter holds its initial value before any run
    assert_eq!(m.value(w).unwrap().as_slice(), Some(&[1.5f32, -2.0][..]));
    m.run().unwrap();
    // 1.5^2 + 2^2 = 6.25
    approx::assert_abs_diff_eq!(m.item(y).unwrap(), 6.25);
}

#[test]
fn run_with_an_unfed_input() {
    let g = Graph::<f64>::new();
    let a = g.input("a", [2]);
    let (b, line) = (g.input("bravo", [2]), line!());
    let y = (a * b).sum();
    let mut m = g.compile(&[y], &[]).unwrap();
    m.feed(a, &arr1(&[1.0, 2.0])).unwrap();
    let e = m.run().unwrap_err();
    match &e {
        Error::NotFed { name, declared } => {
            assert_eq!(name, "bravo");
            assert_at(declared, line);
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("\"bravo\"")
            && msg.contains("feed")
            && msg.contains(&format!("declared at {}", file!()))
            && msg.contains(&format!("errors.rs:{line}:")),
        "{msg}"
    );
    // a failed run leaves nothing readable
    assert!(matches!(m.value(y), Err(Error::NotRun { .. })));
    m.feed(b, &arr1(&[3.0, 4.0])).unwrap();
    m.run().unwrap();
    // 1*3 + 2*4 = 11
    approx::assert_abs_diff_eq!(m.item(y).unwrap(), 11.0);
}

#[test]
fn grad_of_a_non_scalar_and_grad_with_a_seed() {
    let g = Graph::<f64>::new();
    let x = g.param("x", arr1(&[1.0, 2.0, 3.0]));
    let y = x * x;
    let (e, line) = (g.grad(y, &[x]).unwrap_err(), line!());
    match &e {
        Error::NotScalar { op, shape, caller } => {
            assert_eq!(*op, "grad");
            assert_eq!(*shape, Shape::from([3]));
            assert_at(caller, line);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("[3]"), "{e}");

    let seed = g.constant(arr1(&[1.0, 0.5, -1.0]));
    let dx = g.grad_with(y, seed, &[x]).unwrap()[0];
    let mut m = g.compile(&[y, dx], &[]).unwrap();
    m.run().unwrap();
    // seed · d(x²)/dx = seed * 2x = [1*2, 0.5*4, -1*6]
    let dx = m.value(dx).unwrap();
    for (got, want) in dx.iter().zip([2.0, 2.0, -6.0]) {
        approx::assert_abs_diff_eq!(*got, want, epsilon = 1e-15);
    }
    // reading a non-scalar as a scalar
    assert!(matches!(
        m.item(y),
        Err(Error::NotScalar { op: "item", .. })
    ));
}

#[test]
fn tensors_of_two_graphs_do_not_mix() {
    let g1 = Graph::<f32>::new();
    let g2 = Graph::<f32>::new();
    let a = g1.input("a", [2]);
    let b = g2.input("b", [2]);
    let (c, line) = (a + b, line!());
    let e = g1.compile(&[c], &[]).unwrap_err();
    match &e {
        Error::WrongGraph { op, caller } => {
            assert_eq!(*op, "add");
            assert_at(caller, line);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("`add`"), "{e}");
    // g2 recorded nothing wrong
    g2.check().unwrap();

    // outputs and differentiation targets of another graph
    let (e, line) = (g2.compile(&[a], &[]).unwrap_err(), line!());
    match &e {
        Error::WrongGraph { op, caller } => {
            assert_eq!(*op, "compile");
            assert_at(caller, line);
        }
        other => panic!("{other:?}"),
    }
    let y = b.sum();
    assert!(matches!(
        g2.grad(y, &[a]),
        Err(Error::WrongGraph { op: "grad", .. })
    ));
}

#[test]
fn a_handle_of_another_graph_passed_to_a_machine() {
    let g1 = Graph::<f32>::new();
    let g2 = Graph::<f32>::new();
    let a = g1.input("x", [2]);
    let b = g2.input("x", [2]);
    let ya = a.sum();
    let yb = b.sum();
    let mut m = g1.compile(&[ya], &[]).unwrap();
    // same name, same node id, other graph
    assert_eq!(a.id(), b.id());
    let data = arr1(&[1.0f32, 2.0]);
    let (e, line) = (m.feed(b, &data).unwrap_err(), line!());
    match &e {
        Error::WrongGraph { caller, .. } => assert_at(caller, line),
        other => panic!("{other:?}"),
    }
    m.feed(a, &data).unwrap();
    m.run().unwrap();
    assert!(matches!(m.value(yb), Err(Error::WrongGraph { .. })));
    assert!(matches!(
        m.value(yb.handle()),
        Err(Error::WrongGraph { .. })
    ));
}

#[test]
fn duplicate_names() {
    let g = Graph::<f32>::new();
    let _ = g.param("w", arr1(&[1.0f32]));
    let (_, line) = (g.param("w", arr1(&[2.0f32])), line!());
    for e in [g.check().unwrap_err(), g.compile(&[], &[]).unwrap_err()] {
        match &e {
            Error::DuplicateName { name, caller } => {
                assert_eq!(name, "w");
                assert_at(caller, line);
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("\"w\""), "{e}");
    }
    // an input may not take a parameter's name either
    let g = Graph::<f32>::new();
    let _ = g.param("x", arr1(&[1.0f32]));
    let _ = g.input("x", [1]);
    assert!(matches!(g.check(), Err(Error::DuplicateName { .. })));
}

#[test]
fn sgd_rejects_bad_learning_rates() {
    for (lr, shown) in [
        (-0.1, "-0.1"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
    ] {
        let e = Sgd::new(lr).check().unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidArgument {
                    what: "learning rate",
                    ..
                }
            ),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("learning rate") && msg.contains(shown),
            "{msg}"
        );
    }
    assert_eq!(Sgd::new(0.0).lr(), 0.0);
    assert_eq!(Sgd::new(0.5).lr(), 0.5);
}

#[test]
fn sgd_step_with_pairs_the_machine_was_not_compiled_with() {
    let g = Graph::<f64>::new();
    let w1 = g.param("w1", arr1(&[1.0, 2.0]));
    let w2 = g.param("w2", arr2(&[[1.0, 2.0, 3.0]]));
    let loss = w1.sum() + w2.square().sum();
    let grads = g.grad(loss, &[w1, w2]).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    let mut opt = Sgd::new(0.1);

    // before any run there are no gradients to step on
    assert!(matches!(
        opt.step(&mut m, &grads),
        Err(Error::NotRun { .. })
    ));
    m.run().unwrap();

    // gradients from another `grad` call are other nodes, not compiled as the pairs
    let other = g.grad(loss, &[w2, w1]).unwrap();
    let (e, line) = (opt.step(&mut m, &other), line!());
    let e = e.unwrap_err();
    match &e {
        Error::Mismatch { reason, caller, .. } => {
            assert!(reason.contains("parameter \"w2\""), "{reason}");
            assert!(reason.contains("pass the same `grads`"), "{reason}");
            assert_at(caller, line);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("Sgd::step"), "{e}");
    // an evaluation machine has no pairs to step
    let mut eval = g.compile(&[loss], &[]).unwrap();
    eval.run().unwrap();
    assert!(matches!(
        opt.step(&mut eval, &grads),
        Err(Error::Mismatch { .. })
    ));

    // stepping on an input is the wrong kind
    let g2 = Graph::<f64>::new();
    let x = g2.input("x", [2]);
    let p = g2.param("p", arr1(&[0.0, 0.0]));
    let y = (x * p).sum();
    let gx = g2.grad(y, &[x]).unwrap();
    let mut m2 = g2.compile(&[y], &gx).unwrap();
    m2.feed(x, &arr1(&[1.0, 1.0])).unwrap();
    m2.run().unwrap();
    assert!(matches!(
        opt.step(&mut m2, &gx),
        Err(Error::WrongKind {
            expected: "parameter",
            ..
        })
    ));
    // and gradients of one graph do not step a machine of another
    assert!(matches!(
        opt.step(&mut m2, &grads),
        Err(Error::WrongGraph { .. })
    ));

    // nothing above changed a parameter: w1 is still [1, 2]
    assert_eq!(m.value(w1).unwrap().as_slice(), Some(&[1.0, 2.0][..]));
}

/// An `Error::Index` from `run` naming `op`, recorded at `line` of this file, for the id
/// `value` at `position` among ids for `bound` `of`s; its message says all of that too.
#[track_caller]
#[allow(clippy::too_many_arguments)]
fn assert_index_error(
    e: &Error,
    op: &str,
    of: &str,
    value: f64,
    position: usize,
    bound: usize,
    line: u32,
) {
    match e {
        Error::Index {
            op: got_op,
            of: got_of,
            value: got_value,
            position: got_position,
            bound: got_bound,
            caller,
            ..
        } => {
            assert_eq!((*got_op, *got_of), (op, of), "{e}");
            assert_eq!((*got_position, *got_bound), (position, bound), "{e}");
            if value.is_nan() {
                assert!(got_value.is_nan(), "{e}");
            } else {
                assert_eq!(*got_value, value, "{e}");
            }
            assert_at(caller.as_ref().expect("run fills in the caller"), line);
        }
        other => panic!("expected an index error, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains(&format!("`{op}` recorded at ")), "{msg}");
    assert!(msg.contains(&format!("errors.rs:{line}:")), "{msg}");
    assert!(
        msg.contains(&format!("{of} id {value} at position {position} ")),
        "{msg}"
    );
    assert!(msg.contains(&format!("0..{bound}")), "{msg}");
}

#[test]
fn class_ids_out_of_range_or_not_integers() {
    let g = Graph::<f32>::new();
    let logits = g.param("logits", Array2::<f32>::zeros((3, 10)));
    let ids = g.input("ids", [3]);
    let (loss, line) = (logits.cross_entropy(ids), line!());
    let gl = g.grad(loss, &[logits]).unwrap()[0];
    let mut m = g.compile(&[loss, gl], &[]).unwrap();
    for bad in [12.0f32, 1.5, -1.0, f32::NAN] {
        m.feed(ids, &arr1(&[0.0, 9.0, bad])).unwrap();
        let e = m.run().unwrap_err();
        assert_index_error(&e, "cross_entropy", "class", bad as f64, 2, 10, line);
        let msg = e.to_string();
        if bad == 12.0 || bad == -1.0 {
            assert!(msg.contains("is out of range for 10 classes"), "{msg}");
        } else {
            assert!(msg.contains("is not a whole number"), "{msg}");
        }
    }
    // good ids after bad ones: uniform logits give ln 10
    m.feed(ids, &arr1(&[0.0, 9.0, 3.0])).unwrap();
    m.run().unwrap();
    approx::assert_abs_diff_eq!(m.item(loss).unwrap(), 10f32.ln(), epsilon = 1e-6);
}

/// A machine of the gradient alone runs `cross_entropy_grad`, recorded by `grad` inside
/// the crate: its error points at the user's `cross_entropy` line.
#[test]
fn class_ids_out_of_range_in_the_gradient_point_at_the_loss() {
    let g = Graph::<f64>::new();
    let logits = g.param("logits", Array2::<f64>::zeros((2, 3)));
    let ids = g.input("ids", [2]);
    let (loss, line) = (logits.cross_entropy(ids), line!());
    let gl = g.grad(loss, &[logits]).unwrap();
    let mut m = g.compile(&[], &gl).unwrap();
    m.feed(ids, &arr1(&[3.0, 0.0])).unwrap();
    let e = m.run().unwrap_err();
    assert_index_error(&e, "cross_entropy_grad", "class", 3.0, 0, 3, line);
}

#[test]
fn row_ids_out_of_range_in_index_select() {
    let g = Graph::<f64>::new();
    let table = g.param("table", arr2(&[[0.0, 1.0], [2.0, 3.0]]));
    let ids = g.input("ids", [3]);
    let (rows, line) = (table.index_select(ids), line!());
    let mut m = g.compile(&[rows], &[]).unwrap();
    m.feed(ids, &arr1(&[0.0, 1.0, 2.0])).unwrap();
    let e = m.run().unwrap_err();
    assert_index_error(&e, "index_select", "row", 2.0, 2, 2, line);
    assert!(e.to_string().contains("out of range for 2 rows"), "{e}");

    // the gradient of the table is a scatter_add recorded by `grad`: same line
    let gt = g.grad(rows.sum(), &[table]).unwrap();
    let mut m = g.compile(&[], &gt).unwrap();
    m.feed(ids, &arr1(&[1.0, 5.0, 0.0])).unwrap();
    let e = m.run().unwrap_err();
    assert_index_error(&e, "scatter_add", "row", 5.0, 1, 2, line);
}

#[test]
fn row_ids_out_of_range_in_scatter_add_and_class_ids_in_one_hot() {
    let g = Graph::<f32>::new();
    let ids = g.input("ids", [2, 2]);
    let src = g.param("src", Array2::<f32>::ones((2, 2)));
    let (summed, sum_line) = (ids.scatter_add(src, 4), line!());
    let (hot, hot_line) = (ids.one_hot(3), line!());
    let mut m = g.compile(&[summed], &[]).unwrap();
    // ids [[0, 1], [4, 2]]: 4 at flat position 2 is past the 4 rows
    m.feed(ids, &arr2(&[[0.0, 1.0], [4.0, 2.0]])).unwrap();
    let e = m.run().unwrap_err();
    assert_index_error(&e, "scatter_add", "row", 4.0, 2, 4, sum_line);

    let mut m = g.compile(&[hot], &[]).unwrap();
    m.feed(ids, &arr2(&[[0.0, 1.0], [2.0, 3.0]])).unwrap();
    let e = m.run().unwrap_err();
    assert_index_error(&e, "one_hot", "class", 3.0, 3, 3, hot_line);
    assert!(e.to_string().contains("out of range for 3 classes"), "{e}");
}

#[test]
fn copy_params_from_a_machine_with_no_common_name() {
    let g = Graph::<f32>::new();
    let w = g.param("weight", arr1(&[1.0f32, 2.0]));
    let mut m = g.compile(&[w.sum()], &[]).unwrap();
    let other = Graph::<f32>::new();
    let v = other.param("w", arr1(&[5.0f32, 6.0]));
    let src = other.compile(&[v.sum()], &[]).unwrap();
    let (e, line) = (m.copy_params_from(&src).unwrap_err(), line!());
    match &e {
        Error::Mismatch { what, caller, .. } => {
            assert_eq!(*what, "copy_params_from");
            assert_at(caller, line);
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("no parameter name is common")
            && msg.contains("[\"w\"]")
            && msg.contains("[\"weight\"]")
            && msg.contains(&format!("errors.rs:{line}:")),
        "{msg}"
    );
    // nothing was copied
    assert_eq!(m.value(w).unwrap().as_slice(), Some(&[1.0, 2.0][..]));
}

#[test]
fn nan_in_data_propagates_without_panic() {
    let g = Graph::<f32>::new();
    let x = g.input("x", [2, 3]);
    let ids = g.input("ids", [2]);
    let w = g.param("w", Array2::<f32>::from_elem((3, 4), 0.1));
    let b = g.param("b", Array1::<f32>::zeros(4));
    let h = (x.matmul(w) + b).relu();
    let loss = h.cross_entropy(ids) + h.max() * 0.0;
    let params = g.params();
    let grads = g.grad(loss, &params).unwrap();
    let mut m = g.compile(&[loss, h], &grads).unwrap();
    m.feed(x, &arr2(&[[1.0, f32::NAN, 0.0], [1.0, 2.0, 3.0]]))
        .unwrap();
    m.feed(ids, &arr1(&[1.0, 3.0])).unwrap();
    m.run().unwrap();
    assert!(m.item(loss).unwrap().is_nan());
    // the NaN row is NaN through relu; the clean row is not: 0.1 * (1 + 2 + 3) = 0.6
    let hv = m.value(h).unwrap();
    assert!(hv[[0, 0]].is_nan());
    approx::assert_abs_diff_eq!(hv[[1, 0]], 0.6, epsilon = 1e-6);
    assert!(m.value(grads[0]).unwrap().iter().any(|v| v.is_nan()));
    // SGD on NaN gradients makes NaN parameters, but does not fail or panic
    Sgd::new(0.1).step(&mut m, &grads).unwrap();
}

#[test]
fn zero_length_batch_gives_nan_mean_loss() {
    let g = Graph::<f32>::new();
    let x = g.input("x", [0, 3]);
    let ids = g.input("ids", [0]);
    let target = g.input("target", [0, 2]);
    let w = g.param("w", Array2::<f32>::ones((3, 2)));
    let logits = x.matmul(w);
    let ce = logits.cross_entropy(ids);
    let mse = logits.mse(target);
    let gw = g.grad(ce + mse, &[w]).unwrap()[0];
    let mut m = g.compile(&[ce, mse, logits, gw], &[]).unwrap();
    m.feed(x, &Array2::<f32>::zeros((0, 3))).unwrap();
    m.feed(ids, &Array1::<f32>::zeros(0)).unwrap();
    m.feed(target, &Array2::<f32>::zeros((0, 2))).unwrap();
    m.run().unwrap();
    // mean over no rows = 0 / 0 = NaN, as in PyTorch
    assert!(m.item(ce).unwrap().is_nan());
    assert!(m.item(mse).unwrap().is_nan());
    assert_eq!(m.value(logits).unwrap().shape(), &[0, 2]);
    // the weight gradient is a sum over no rows: xᵀ [3, 0] · [0, 2] = zeros [3, 2]
    let gw = m.value(gw).unwrap();
    assert_eq!(gw.shape(), &[3, 2]);
    assert!(gw.iter().all(|&v| v == 0.0), "{gw:?}");
}

#[test]
fn max_over_an_empty_axis_is_an_error() {
    let g = Graph::<f32>::new();
    let x = g.input("x", [0, 3]);
    let (_, line) = (x.max_axes(&[0], false), line!());
    let e = g.compile(&[], &[]).unwrap_err();
    assert_shape_error(&e, "max", &[Shape::from([0, 3])], line);
    assert!(e.to_string().contains("empty"), "{e}");

    let g = Graph::<f32>::new();
    let x = g.input("x", [2, 0]);
    let (_, line) = (x.max(), line!());
    assert_shape_error(&g.check().unwrap_err(), "max", &[Shape::from([2, 0])], line);

    // over the non-empty axis it is fine: [0, 3] -> [0]
    let g = Graph::<f32>::new();
    let x = g.input("x", [0, 3]);
    let y = x.max_axes(&[1], false);
    let mut m = g.compile(&[y], &[]).unwrap();
    m.feed(x, &Array2::<f32>::zeros((0, 3))).unwrap();
    m.run().unwrap();
    assert_eq!(m.value(y).unwrap().shape(), &[0]);
}

#[test]
fn other_recording_errors_point_at_the_caller() {
    fn first_error(build: impl Fn(&Graph<f32>) -> u32) -> (Error, u32) {
        let g = Graph::<f32>::new();
        let line = build(&g);
        (g.check().unwrap_err(), line)
    }
    /// Records one faulty op and returns the line it is on.
    type Build = fn(&Graph<f32>) -> u32;
    let cases: [(&str, Shape, Build); 8] = [
        ("reshape", Shape::from([2, 3]), |g| {
            (g.input("x", [2, 3]).reshape([4]), line!()).1
        }),
        ("transpose", Shape::from([2, 3, 4]), |g| {
            (g.input("x", [2, 3, 4]).transpose(0, 3), line!()).1
        }),
        ("sum", Shape::from([2, 3]), |g| {
            (g.input("x", [2, 3]).sum_axes(&[2], false), line!()).1
        }),
        ("narrow", Shape::from([2, 3]), |g| {
            (g.input("x", [2, 3]).narrow(1, 2, 2), line!()).1
        }),
        ("matmul", Shape::from([2, 3]), |g| {
            (g.input("x", [2, 3]).matmul(g.input("v", [3])), line!()).1
        }),
        // split and chunk record `narrow`s: along a run-time axis they were refused at
        // a line inside the crate
        ("split", Shape::upto(4, &[3]), |g| {
            (g.input("x", (Dim::upto(4), 3)).split(2, 0), line!()).1
        }),
        ("chunk", Shape::upto(4, &[3]), |g| {
            (g.input("x", (Dim::upto(4), 3)).chunk(2, -2), line!()).1
        }),
        ("split_sizes", Shape::upto(4, &[3]), |g| {
            let x = g.input("x", (Dim::upto(4), 3));
            (x.split_sizes(&[2, 2], 0), line!()).1
        }),
    ];
    for (op, first_shape, build) in cases {
        let (e, line) = first_error(build);
        match &e {
            Error::Shape {
                op: got,
                shapes,
                caller,
                ..
            } => {
                assert_eq!(*got, op, "{e}");
                assert_eq!(shapes[0], first_shape, "{e}");
                assert_at(caller, line);
            }
            other => panic!("{op}: {other:?}"),
        }
    }
}

#[test]
fn errors_are_std_errors_and_thread_safe() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
    let e = Sgd::new(-1.0).check().unwrap_err();
    is_error(&e);
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    assert!(boxed.to_string().contains("learning rate"));
}

/// The index ops promise an `Error::Index` for any id out of range; with rows of width
/// zero (or zero classes) there is nothing to copy, but the ids are still wrong.
#[test]
fn ids_are_checked_even_when_rows_are_empty() {
    let g = Graph::<f64>::new();
    let table = g.param("table", Array2::<f64>::zeros((2, 0)));
    let ids = g.input("ids", [2]);
    let rows = table.index_select(ids);
    let hot = ids.one_hot(0);
    let mut m = g.compile(&[rows, hot], &[]).unwrap();
    // 7 is not in 0..2 (nor in 0..0)
    m.feed(ids, &arr1(&[7.0, 0.0])).unwrap();
    assert!(matches!(m.run(), Err(Error::Index { value, .. }) if value == 7.0));
}

/// Extents whose product overflows (or passes `isize::MAX` bytes) are located
/// `TooLarge` errors, never an arithmetic panic while recording or compiling (more cases
/// in `tests/sizes.rs`).
#[test]
fn overflowing_extents_are_too_large_errors() {
    let big = usize::MAX / 2;
    type Make = Box<dyn for<'g> Fn(&'g Graph<f64>) -> u32>;
    let cases: Vec<(Make, &str)> = vec![
        (
            Box::new(|g| {
                let x = g.input("x", [2, 3]);
                let _ = x.pad(1, usize::MAX, 1);
                line!() - 1
            }),
            "pad",
        ),
        (
            Box::new(|g| {
                let x = g.input("x", [2, 3]);
                let _ = x.reshape([usize::MAX, 2]);
                line!() - 1
            }),
            "reshape",
        ),
        (
            Box::new(move |g| {
                let x = g.input("x", tapegrad::Shape::upto(4, &[big, 3]));
                let _ = x.sum().reshape([1]);
                line!() - 2
            }),
            "input",
        ),
        (
            Box::new(move |g| {
                let _ = g.zeros([big, 3]);
                line!() - 1
            }),
            "full",
        ),
        (
            Box::new(move |g| {
                let x = g.input("x", [4]);
                let _ = x.one_hot(big);
                line!() - 1
            }),
            "one_hot",
        ),
        (
            // no elements, but ndarray refuses it (the product of the non-zero extents
            // passes isize::MAX): `flatten(1, 2)` overflowed while recording, and reading
            // the input back panicked making its view
            Box::new(|g| {
                let x = g.input("x", [0, usize::MAX, usize::MAX]);
                let _ = x.flatten(1, 2);
                line!() - 2
            }),
            "input",
        ),
        (
            Box::new(|g| {
                let x = g.input("x", [0, 3]);
                let _ = x.broadcast_to([usize::MAX, 2, 0, 3]).flatten(0, 1);
                line!() - 1
            }),
            "broadcast_to",
        ),
    ];
    for (make, op) in cases {
        let g = Graph::<f64>::new();
        let line = make(&g);
        match g.check().unwrap_err() {
            Error::TooLarge {
                what: got, caller, ..
            } => {
                assert_eq!((got, caller.line), (op, line), "{op}");
                assert!(caller.file.ends_with("errors.rs"));
            }
            other => panic!("{op}: {other:?}"),
        }
    }
}
