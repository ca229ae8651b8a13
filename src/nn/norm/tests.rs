use crate::nn::{BatchNorm1d, BatchNorm2d, LayerNorm, Linear, Module};
use crate::prelude::*;
use alloc::string::String;
use alloc::vec::Vec;
use approx::assert_abs_diff_eq;
use ndarray::{ArrayD, IxDyn};
use rand::SeedableRng;

/// `sin(1.3 k + s) * 2 + 0.5` for element `k`, as `seq` in the PyTorch script below.
fn seq(shape: &[usize], s: f64) -> ArrayD<f64> {
    let mut k = 0.0;
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        let v = (1.3 * k + s).sin() * 2.0 + 0.5;
        k += 1.0;
        v
    })
}

/// `nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))`, its
/// weights set from `seq`, trained 3 SGD steps (lr 0.1) on an MSE loss, then evaluated,
/// against PyTorch 2.x in f64 (/tmp/norm/model.py):
/// ```text
/// model[0].weight.copy_(seq((4, 3), 1.0) * 0.5); model[0].bias.copy_(seq((4,), 2.0) * 0.1)
/// model[3].weight.copy_(seq((2, 4), 3.0) * 0.5); model[3].bias.copy_(seq((2,), 4.0) * 0.1)
/// opt = torch.optim.SGD(model.parameters(), lr=0.1); model.train()
/// for step in range(3):
///     x = seq((5, 3), float(step)); t = seq((5, 2), 20.0 + step)
///     opt.zero_grad(); loss = F.mse_loss(model(x), t); loss.backward(); opt.step()
/// model[1].running_mean, model[1].running_var, model[1].weight
/// model.eval(); model(seq((2, 3), 10.0))
/// ```
#[test]
fn trains_then_evaluates_as_pytorch() {
    let losses = [1.678979979221437, 3.3154775494337256, 3.3976059252187247];
    let running_mean = [
        0.3103917488818576,
        0.12841582376678173,
        -0.09975078254639626,
        0.3332005873532387,
    ];
    let running_var = [
        2.89181838164504,
        3.1092038213647566,
        2.2279184647532753,
        2.297793968579915,
    ];
    let bn_weight = [
        0.912145303978226,
        0.9549687532608708,
        0.9183304614383174,
        0.972752529876083,
    ];
    let eval_y = [
        -0.19599552815397206,
        0.06873486592047443,
        1.3103931631046175,
        1.5011658172714955,
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let g = Graph::<f64>::new();
    let x = g.input("x", (Dim::upto(5), 3));
    let t = g.input("t", (Dim::upto(5), 2));
    let fc0 = Linear::new(&g, "0", 3, 4, &mut rng);
    let bn = BatchNorm1d::new(&g, "1", 4);
    let fc3 = Linear::new(&g, "3", 4, 2, &mut rng);
    let y = fc3.forward(bn.forward(fc0.forward(x)).relu());
    let loss = y.mse(t);
    let grads = g.grad(loss, &g.params()).unwrap();
    let mut m = g.compile(&[loss, y], &grads).unwrap();
    // tapegrad's Linear weight is PyTorch's transposed
    m.set_param(fc0.weight, &(seq(&[4, 3], 1.0) * 0.5).t())
        .unwrap();
    m.set_param(fc0.bias, &(seq(&[4], 2.0) * 0.1)).unwrap();
    m.set_param(fc3.weight, &(seq(&[2, 4], 3.0) * 0.5).t())
        .unwrap();
    m.set_param(fc3.bias, &(seq(&[2], 4.0) * 0.1)).unwrap();
    let mut sgd = Sgd::new(0.1);
    for (step, want) in losses.iter().enumerate() {
        m.feed(x, &seq(&[5, 3], step as f64)).unwrap();
        m.feed(t, &seq(&[5, 2], 20.0 + step as f64)).unwrap();
        m.run().unwrap();
        assert_abs_diff_eq!(m.item(loss).unwrap(), *want, epsilon = 1e-12);
        sgd.step(&mut m, &grads).unwrap();
    }
    let close = |got: ndarray::ArrayViewD<'_, f64>, want: &[f64]| {
        for (a, b) in got.iter().zip(want) {
            assert_abs_diff_eq!(*a, *b, epsilon = 1e-12);
        }
    };
    close(m.value(bn.0.running_mean).unwrap(), &running_mean);
    close(m.value(bn.0.running_var).unwrap(), &running_var);
    close(m.value(bn.0.weight).unwrap(), &bn_weight);
    m.set_training(false);
    m.feed(x, &seq(&[2, 3], 10.0)).unwrap();
    m.feed(t, &ArrayD::zeros(IxDyn(&[2, 2]))).unwrap();
    m.run().unwrap();
    close(m.value(y).unwrap(), &eval_y);
    // the state_dict's names, bar `1.num_batches_tracked`
    let mut names: Vec<String> = m.params().map(|(n, _)| n.into()).collect();
    names.extend(m.buffers().map(|(n, _)| String::from(n)));
    assert_eq!(
        names,
        ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]
            .into_iter()
            .chain(["1.running_mean", "1.running_var"])
            .collect::<Vec<_>>()
    );
}

#[test]
fn buffers_round_trip_through_save_and_load() {
    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(4), 2, 2, 2));
    let bn = BatchNorm2d::new(&g, "bn", 2);
    let y = bn.forward(x);
    let mut train = g.compile(&[y], &[]).unwrap();
    train.set_training(true);
    let data = seq(&[3, 2, 2, 2], 0.0).mapv(|v| v as f32);
    train.feed(x, &data).unwrap();
    train.run().unwrap();
    let mean = train.value(bn.0.running_mean).unwrap().to_owned();
    assert!(mean.iter().all(|&v| v != 0.0), "{mean}");
    let bytes = train.save_to_bytes().unwrap();
    let mut eval = g.compile(&[y], &[]).unwrap();
    assert_ne!(eval.value(bn.0.running_mean).unwrap(), mean.view());
    eval.load_from_bytes(&bytes).unwrap();
    assert_eq!(eval.value(bn.0.running_mean).unwrap(), mean.view());
    assert_eq!(
        eval.value(bn.0.running_var).unwrap(),
        train.value(bn.0.running_var).unwrap()
    );
    // the file holds the buffers by name: a machine without them refuses it (strict),
    // and a file without them is refused by a machine that has them
    let g2 = Graph::<f32>::new();
    let w = g2.param("bn.weight", ndarray::arr1(&[1.0f32, 1.0]));
    let b = g2.param("bn.bias", ndarray::arr1(&[0.0f32, 0.0]));
    let mut params_only = g2.compile(&[w, b], &[]).unwrap();
    match params_only.load_from_bytes(&bytes) {
        Err(Error::Weights { name, .. }) => assert_eq!(name, "bn.running_mean"),
        other => panic!("{other:?}"),
    }
    let without = params_only.save_to_bytes().unwrap();
    match eval.load_from_bytes(&without) {
        Err(Error::Weights { name, .. }) => assert_eq!(name, "bn.running_mean"),
        other => panic!("{other:?}"),
    }
    // all or nothing: the failed load left the loaded buffers
    assert_eq!(eval.value(bn.0.running_mean).unwrap(), mean.view());
}

#[test]
fn names_modules_and_defaults() {
    let g = Graph::<f32>::new();
    let bn: &dyn Module<'_, f32> = &BatchNorm1d::new(&g, "a", 3).eps(1e-3).momentum(0.2);
    assert_eq!((bn.params().len(), bn.buffers().len()), (2, 2));
    let ln = LayerNorm::new(&g, "b", &[2, 3]);
    assert_eq!((ln.params().len(), ln.buffers().len()), (2, 0));
    let names = |ts: Vec<Tensor<'_, f32>>| -> Vec<String> {
        let m = g.compile(&ts, &[]).unwrap();
        m.params()
            .chain(m.buffers())
            .map(|(n, _)| n.into())
            .collect()
    };
    assert_eq!(
        names(g.params()),
        [
            "a.weight",
            "a.bias",
            "b.weight",
            "b.bias",
            "a.running_mean",
            "a.running_var"
        ]
    );
    let m = g.compile(&[], &[]).unwrap();
    let value = |n: &str| m.value(m.handle_of(n).unwrap()).unwrap().to_owned();
    assert_eq!(value("a.weight").as_slice(), Some(&[1.0, 1.0, 1.0][..]));
    assert_eq!(value("a.bias").as_slice(), Some(&[0.0, 0.0, 0.0][..]));
    assert_eq!(
        value("a.running_mean").as_slice(),
        Some(&[0.0, 0.0, 0.0][..])
    );
    assert_eq!(
        value("a.running_var").as_slice(),
        Some(&[1.0, 1.0, 1.0][..])
    );
    assert!(value("b.weight").iter().all(|&v| v == 1.0));
}

#[test]
fn a_wrong_rank_is_a_located_error() {
    let g = Graph::<f32>::new();
    let b1 = BatchNorm1d::new(&g, "b1", 3);
    let b2 = BatchNorm2d::new(&g, "b2", 3);
    let ln = LayerNorm::new(&g, "ln", &[4]);
    let cases = [
        (b1.forward(g.input("x4", [2, 3, 2, 2])), line!()),
        (b2.forward(g.input("x3", [2, 3, 4])), line!()),
        (Module::forward(&b2, g.input("x2", [2, 3])), line!()),
        (ln.forward(g.input("y", [2, 3])), line!()),
    ];
    let errors = g.inner.borrow().errors.clone();
    assert_eq!(errors.len(), cases.len(), "{errors:?}");
    for (e, (_, line)) in errors.iter().zip(&cases) {
        match e {
            Error::Shape { caller, .. } => {
                assert_eq!((caller.file, caller.line), (file!(), *line), "{e}")
            }
            other => panic!("{other}"),
        }
    }
}

#[test]
fn errors_of_the_op_under_a_layer_point_at_the_forward_call() {
    // a bad momentum is found by `batch_norm`, which the layer calls: located at forward
    let g = Graph::<f32>::new();
    let x = g.input("x", [4, 3]);
    let bn = BatchNorm1d::new(&g, "bn", 3).momentum(1.5);
    let line = (bn.forward(x), line!()).1;
    match g.check() {
        Err(Error::Shape {
            op: "batch_norm",
            caller,
            reason,
            ..
        }) => {
            assert!(reason.contains("momentum"), "{reason}");
            assert_eq!((caller.file, caller.line), (file!(), line));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_layer_applied_twice_updates_its_statistics_in_call_order() {
    // PyTorch: bn(x1); bn(x2) in training mode leaves
    // running = 0.9 * (0.9 * running + 0.1 * batch1) + 0.1 * batch2 (checked with
    // `bn = nn.BatchNorm1d(1).double(); bn(x1); bn(x2)`: running_mean 0.78, running_var 1.79)
    let g = Graph::<f64>::new();
    let x1 = g.input("x1", [2, 1]);
    let x2 = g.input("x2", [2, 1]);
    let bn = BatchNorm1d::new(&g, "bn", 1);
    let (y1, y2) = (bn.forward(x1), bn.forward(x2));
    let mut m = g.compile(&[y1, y2], &[]).unwrap();
    m.set_training(true);
    m.feed(x1, &ndarray::arr2(&[[1.0], [3.0]])).unwrap(); // mean 2, unbiased var 2
    m.feed(x2, &ndarray::arr2(&[[4.0], [8.0]])).unwrap(); // mean 6, unbiased var 8
    m.run().unwrap();
    let mean = 0.9 * (0.9 * 0.0 + 0.1 * 2.0) + 0.1 * 6.0;
    let var = 0.9 * (0.9 * 1.0 + 0.1 * 2.0) + 0.1 * 8.0;
    assert_abs_diff_eq!(
        m.value(bn.0.running_mean).unwrap()[[0]],
        mean,
        epsilon = 1e-12
    );
    assert_abs_diff_eq!(
        m.value(bn.0.running_var).unwrap()[[0]],
        var,
        epsilon = 1e-12
    );
    // each call normalised with its own batch: y = [-1, 1] (eps aside)
    assert_abs_diff_eq!(m.value(y2).unwrap()[[1, 0]], 1.0, epsilon = 1e-4);
    // a user's own second update of a buffer is still an error
    g.update(bn.0.running_mean, bn.0.running_mean * 2.0);
    assert!(matches!(g.check(), Err(Error::Shape { op: "update", .. })));
}
