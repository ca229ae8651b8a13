//! Buffers (`Graph::buffer`, `Graph::update`): non-trainable state that a machine owns,
//! saves with the parameters, and updates after each run in training mode only.

use tapegrad::ndarray::arr1;
use tapegrad::prelude::*;

#[test]
fn updates_follow_the_buffers_read_and_apply_in_training_only() {
    let g = Graph::<f64>::new();
    let x = g.input("x", [2]);
    let a = g.buffer("a", arr1(&[0.0, 0.0]));
    let b = g.buffer("b", arr1(&[1.0, 1.0]));
    let unread = g.buffer("unread", arr1(&[5.0, 5.0]));
    // a += x * b; b *= 2 (read through a's update); unread's update is never compiled
    let (new_a, new_b, new_unread) = (a + x * b, b * 2.0, unread + 1.0);
    g.update(a, new_a);
    g.update(b, new_b);
    g.update(unread, new_unread);
    let y = a.sum();
    let mut m = g.compile(&[y], &[]).unwrap();
    assert!(m.holds(new_a) && m.holds(new_b) && !m.holds(new_unread));
    assert!(m.holds(unread)); // every buffer lives in every machine, as parameters do
    m.feed(x, &arr1(&[1.0, 2.0])).unwrap();
    assert!(!m.training()); // compiled without gradients
    m.run().unwrap();
    assert_eq!(m.value(a).unwrap().as_slice(), Some(&[0.0, 0.0][..]));
    m.set_training(true);
    for _ in 0..2 {
        m.run().unwrap();
    }
    // run 1: a = 0 + x * 1 = [1, 2], b = 2; run 2 reads them: a = [1, 2] + x * 2, y = 3
    assert_eq!(m.value(a).unwrap().as_slice(), Some(&[3.0, 6.0][..]));
    assert_eq!(m.value(b).unwrap().as_slice(), Some(&[4.0, 4.0][..]));
    assert_eq!(m.item(y).unwrap(), 3.0);
    assert_eq!(m.value(unread).unwrap().as_slice(), Some(&[5.0, 5.0][..]));
    let names: Vec<&str> = m.buffers().map(|(n, _)| n).collect();
    assert_eq!(names, ["a", "b", "unread"]);
    assert!(m.params().next().is_none() && g.params().is_empty());
    assert_eq!(m.memory().params, 6 * 8); // buffers count with the parameters
}

#[test]
fn update_mistakes_are_located_errors() {
    // each case on its own graph: the error, its line and its reason
    let one = |case: usize| -> (u32, String) {
        let g = Graph::<f32>::new();
        let p = g.param("p", arr1(&[0.0f32, 0.0]));
        let b = g.buffer("b", arr1(&[0.0f32, 0.0]));
        let x = g.input("x", (Dim::upto(2), 2));
        let line = match case {
            0 => (g.update(p, p + 1.0), line!()).1,
            1 => (g.update(b, g.full([3], 1.0)), line!()).1,
            2 => (g.update(b, x.sum_axes(&[1], false)), line!()).1,
            _ => {
                g.update(b, b + 1.0);
                (g.update(b, b * 2.0), line!()).1
            }
        };
        match g.check() {
            Err(Error::Shape {
                op: "update",
                caller,
                reason,
                ..
            }) => {
                assert_eq!(caller.line, line, "{reason}");
                (caller.line, reason)
            }
            other => panic!("case {case}: {other:?}"),
        }
    };
    assert!(one(0).1.contains("only a buffer"));
    assert!(one(1).1.contains("[3]"));
    assert!(one(2).1.contains("shape"));
    assert!(one(3).1.contains("already has an update"));
    // a tensor of another graph
    let h = Graph::<f32>::new();
    let other = h.buffer("o", arr1(&[0.0f32]));
    let g = Graph::<f32>::new();
    let b = g.buffer("b", arr1(&[0.0f32]));
    let line = (g.update(b, other), line!()).1;
    match g.check() {
        Err(Error::WrongGraph {
            op: "update",
            caller,
        }) => assert_eq!(caller.line, line),
        other => panic!("{other:?}"),
    }
}

#[test]
fn buffers_copy_set_and_stay_out_of_gradients() {
    let g = Graph::<f64>::new();
    let w = g.param("w", arr1(&[2.0]));
    let s = g.buffer("s", arr1(&[3.0]));
    g.update(s, s + w);
    let y = (w * s).sum();
    let grads = g.grad(y, &g.params()).unwrap();
    assert_eq!(grads.len(), 1); // w only
    let mut train = g.compile(&[y], &grads).unwrap();
    train.run().unwrap();
    assert_eq!(train.value(grads[0]).unwrap()[[0]], 3.0); // dy/dw = s before the update
    assert_eq!(train.value(s).unwrap()[[0]], 5.0);
    let mut eval = g.compile(&[y], &[]).unwrap();
    assert_eq!(eval.copy_params_from(&train).unwrap(), ["w", "s"]);
    assert_eq!(eval.value(s).unwrap()[[0]], 5.0);
    eval.set_buffer(s, &arr1(&[7.0])).unwrap();
    assert_eq!(eval.value(s).unwrap()[[0]], 7.0);
    assert!(matches!(
        eval.set_param(s, &arr1(&[1.0])),
        Err(Error::WrongKind {
            expected: "parameter",
            got: "buffer",
            ..
        })
    ));
    assert!(matches!(
        eval.set_buffer(w, &arr1(&[1.0])),
        Err(Error::WrongKind {
            expected: "buffer",
            got: "parameter",
            ..
        })
    ));
    assert!(matches!(
        eval.set_buffer(s, &arr1(&[1.0, 2.0])),
        Err(Error::Feed { .. })
    ));
    assert_eq!(g.get("s").map(|t| t.id()), Some(s.id()));
    // a name is taken by a buffer as by a parameter
    let _ = g.buffer("w", arr1(&[0.0]));
    assert!(matches!(g.check(), Err(Error::DuplicateName { .. })));
}
