//! Parameters travel with their gradients: `grad` pairs them, `compile` remembers the
//! pairs, optimizers step on them, and optimizer state is tied to parameter names.

use ndarray::{arr1, arr2};
use tapegrad::optim::clip_grad_norm;
use tapegrad::prelude::*;
use tapegrad::GradHandles;

#[path = "common/counting.rs"]
mod counting;
use counting::thread_allocs as allocs;

/// Two parameters of the same shape with different gradients:
/// `loss = sum(a * [1, 2]) + sum(b * [10, 20])`, so `d/da = [1, 2]`, `d/db = [10, 20]`.
fn two_same_shaped(g: &Graph<f64>) -> (Tensor<'_, f64>, Tensor<'_, f64>, Tensor<'_, f64>) {
    let a = g.param("a", arr1(&[0.0, 0.0]));
    let b = g.param("b", arr1(&[0.0, 0.0]));
    let loss =
        (a * g.constant(arr1(&[1.0, 2.0]))).sum() + (b * g.constant(arr1(&[10.0, 20.0]))).sum();
    (a, b, loss)
}

/// The old footgun: `step(&mut m, &[a, b], &[db, da])` silently trained `a` with `b`'s
/// gradient. Now a gradient only travels with its parameter.
#[test]
fn swapped_same_shaped_gradients_cannot_train_the_wrong_weights() {
    let g = Graph::<f64>::new();
    let (a, b, loss) = two_same_shaped(&g);
    // asked for in the "wrong" order: the pairs still say which is whose
    let grads = g.grad(loss, &[b, a]).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    m.run().unwrap();
    Sgd::new(0.1).step(&mut m, &grads).unwrap();
    // a -= 0.1 [1, 2]; b -= 0.1 [10, 20]
    assert_eq!(m.value(a).unwrap().as_slice(), Some(&[-0.1, -0.2][..]));
    assert_eq!(m.value(b).unwrap().as_slice(), Some(&[-1.0, -2.0][..]));
    // looked up by tensor, each gradient is its own parameter's
    assert_eq!(grads.get(a).map(|t| t.id()), Some(grads[1].id()));
    let mut seen = Vec::new();
    m.for_each_pair(&grads, |pg| {
        seen.push((pg.name.to_string(), pg.grad.to_vec()))
    })
    .unwrap();
    assert_eq!(
        seen,
        [
            ("b".to_string(), vec![10.0, 20.0]),
            ("a".to_string(), vec![1.0, 2.0])
        ]
    );

    // gradients made in another order by another `grad` call are not this machine's
    // pairs: an error naming the parameter, and nothing moves
    let other = g.grad(loss, &[a, b]).unwrap();
    let e = Sgd::new(0.1).step(&mut m, &other).unwrap_err();
    assert!(matches!(e, Error::Mismatch { .. }), "{e}");
    assert!(e.to_string().contains("parameter \"a\""), "{e}");
    assert_eq!(m.value(a).unwrap().as_slice(), Some(&[-0.1, -0.2][..]));
}

#[test]
fn a_parameter_listed_twice_is_refused() {
    let g = Graph::<f64>::new();
    let (a, _, loss) = two_same_shaped(&g);
    let grads = g.grad(loss, &[a, a]).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    m.run().unwrap();
    let e = Sgd::new(0.1).step(&mut m, &grads).unwrap_err();
    assert!(
        e.to_string().contains("parameter \"a\" appears twice"),
        "{e}"
    );
    assert_eq!(m.value(a).unwrap().as_slice(), Some(&[0.0, 0.0][..]));
}

#[test]
fn optimizer_state_is_tied_to_parameter_names() {
    fn machine(names: [&str; 2]) -> (Machine<f64>, GradHandles) {
        let g = Graph::<f64>::new();
        let p = g.param(names[0], arr1(&[1.0, 2.0]));
        let q = g.param(names[1], arr2(&[[1.0], [2.0]]));
        let loss = (p.square().sum() + q.sum()) * 1.0;
        let grads = g.grad(loss, &[p, q]).unwrap();
        let mut m = g.compile(&[loss], &grads).unwrap();
        m.run().unwrap();
        (m, grads.handles())
    }
    let (mut m, grads) = machine(["w", "b"]);
    let (mut same_names, same_grads) = machine(["w", "b"]);
    let (mut other, other_grads) = machine(["w", "bias"]);
    let before: Vec<f64> = other
        .value(other_grads.iter().next().unwrap().0)
        .unwrap()
        .iter()
        .copied()
        .collect();
    let mut sgd = Sgd::new(0.1).momentum(0.9);
    let mut adam = Adam::new(0.1);
    let mut adamw = AdamW::new(0.1);
    sgd.step(&mut m, &grads).unwrap();
    adam.step(&mut m, &grads).unwrap();
    adamw.step(&mut m, &grads).unwrap();
    // another machine with the same parameter names and sizes is fine
    sgd.step(&mut same_names, &same_grads).unwrap();
    adam.step(&mut same_names, &same_grads).unwrap();
    // other names: an error that names them, and nothing moves
    for e in [
        sgd.step(&mut other, &other_grads).unwrap_err(),
        adam.step(&mut other, &other_grads).unwrap_err(),
        adamw.step(&mut other, &other_grads).unwrap_err(),
    ] {
        assert!(matches!(e, Error::Mismatch { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains(r#"["w" (2), "b" (2)]"#), "{msg}");
        assert!(msg.contains(r#"["w" (2), "bias" (2)]"#), "{msg}");
    }
    let after: Vec<f64> = other
        .value(other_grads.iter().next().unwrap().0)
        .unwrap()
        .iter()
        .copied()
        .collect();
    assert_eq!(before, after);
    // a subset of the first step's parameters is another list too
    let only_w = grads.select(&[grads.iter().next().unwrap().0]).unwrap();
    let e = adam.step(&mut m, &only_w).unwrap_err();
    assert!(e.to_string().contains(r#"["w" (2)]"#), "{e}");
}

#[test]
fn bad_hyper_parameters_fail_the_first_step_and_change_nothing() {
    let g = Graph::<f64>::new();
    let (a, b, loss) = two_same_shaped(&g);
    let grads = g.grad(loss, &[a, b]).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    m.run().unwrap();
    fn expect_bad<O: Optimizer<f64>>(
        mut opt: O,
        m: &mut Machine<f64>,
        grads: &Grads<'_, f64>,
        what: &str,
    ) {
        match opt.step(m, grads) {
            Err(Error::InvalidArgument { what: w, .. }) => assert_eq!(w, what),
            other => panic!("{what}: {other:?}"),
        }
    }
    // the builder chains cannot fail; the first step says which setting is bad
    expect_bad(Sgd::new(f64::NAN), &mut m, &grads, "learning rate");
    expect_bad(Sgd::new(0.1).momentum(1.0), &mut m, &grads, "momentum");
    expect_bad(Sgd::new(0.1).dampening(-1.0), &mut m, &grads, "dampening");
    expect_bad(
        Sgd::new(0.1).weight_decay(-1.0),
        &mut m,
        &grads,
        "weight decay",
    );
    expect_bad(
        Sgd::new(0.1).nesterov(true),
        &mut m,
        &grads,
        "Nesterov momentum",
    );
    expect_bad(Adam::new(-1.0), &mut m, &grads, "learning rate");
    expect_bad(Adam::new(0.1).betas(0.9, 1.0), &mut m, &grads, "beta2");
    expect_bad(Adam::new(0.1).eps(0.0), &mut m, &grads, "eps");
    expect_bad(AdamW::new(0.1).betas(-0.1, 0.9), &mut m, &grads, "beta1");
    expect_bad(
        AdamW::new(0.1).weight_decay(f64::NAN),
        &mut m,
        &grads,
        "weight decay",
    );
    assert_eq!(m.value(a).unwrap().as_slice(), Some(&[0.0, 0.0][..]));
    assert_eq!(m.value(b).unwrap().as_slice(), Some(&[0.0, 0.0][..]));
    // a failed first step made no state: fixing the learning rate, the optimizer works
    let mut adam = Adam::new(f64::INFINITY);
    assert!(adam.step(&mut m, &grads).is_err());
    adam.set_lr(0.1).unwrap();
    adam.step(&mut m, &grads).unwrap();
    // Adam's first step moves every element by lr against its gradient's sign
    let moved = m.value(a).unwrap();
    approx::assert_relative_eq!(moved[[0]], -0.1, max_relative = 1e-6);
}

/// A machine kept in a struct, without its graph, is stepped with its own pairs; the
/// steps allocate nothing after the first.
#[test]
fn a_stored_machine_steps_with_handles_without_allocating() {
    struct Model {
        m: Machine<f64>,
        grads: GradHandles,
        opt: AdamW,
        sgd: Sgd,
    }
    tapegrad::set_threads(1);
    let mut model = {
        let g = Graph::<f64>::new();
        let (_, _, loss) = two_same_shaped(&g);
        let grads = g.grad(loss, &g.params()).unwrap();
        let m = g.compile(&[loss], &grads).unwrap();
        assert_eq!(m.grads(), &grads.handles());
        Model {
            grads: m.grads().clone(),
            m,
            opt: AdamW::new(0.01),
            sgd: Sgd::new(0.01).momentum(0.9).nesterov(true),
        }
    };
    let step = |model: &mut Model| {
        model.m.run().unwrap();
        clip_grad_norm(&mut model.m, &model.grads, 5.0).unwrap();
        model.opt.step(&mut model.m, &model.grads).unwrap();
        model.sgd.step(&mut model.m, &model.grads).unwrap();
    };
    step(&mut model);
    let before = allocs();
    for _ in 0..50 {
        step(&mut model);
    }
    let after = allocs();
    assert_eq!(after - before, 0);
    // the counter does count on this thread
    let v = vec![0u8; 3];
    assert!(allocs() > after, "{v:?}");
    let a = model.m.handle_of("a").unwrap();
    assert!(model.m.value(a).unwrap()[[0]] < -0.5);
}
