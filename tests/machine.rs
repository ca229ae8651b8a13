//! The compiled machine: deep graphs, re-running on new feeds, ownership (`Send +
//! 'static`, outliving its graph), parameters, handles, memory accounting and training.

use approx::{assert_abs_diff_eq, assert_relative_eq};
use ndarray::{arr0, arr1, arr2, Array1, Array2, ArrayD, ArrayViewD};
use tapegrad::prelude::*;
use tapegrad::Handle;

/// Same shape, and every element within 1e-12.
#[track_caller]
fn assert_close(got: ArrayViewD<'_, f64>, want: ArrayD<f64>) {
    assert_eq!(got.shape(), want.shape());
    for (g, w) in got.iter().zip(want.iter()) {
        assert_abs_diff_eq!(*g, *w, epsilon = 1e-12);
    }
}

/// A chain of 100,000 ops, `y ← c·y + d` 50,000 times, records, differentiates, compiles
/// and runs with no recursion over nodes: `y_n = cⁿ x + d (cⁿ − 1) / (c − 1)` and
/// `dy_n/dx = cⁿ`.
#[test]
fn a_chain_of_100k_ops_does_not_overflow_the_stack() {
    const STEPS: i32 = 50_000;
    // a small, fixed stack: recursion over 100k nodes would need far more
    let worker = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(|| {
            let (c, d) = (1.00002f64, 1e-4);
            let g = Graph::<f64>::new();
            let x = g.param("x", arr1(&[1.0, -0.5]));
            let mut y = x;
            for _ in 0..STEPS {
                y = y * c + d;
            }
            let loss = y.sum();
            let dx = g.grad(loss, &[x]).unwrap()[0];
            let mut m = g.compile(&[y, dx], &[]).unwrap();
            let (y, dx) = (y.handle(), dx.handle());
            // constants, ops and the gradient's ops: hundreds of thousands of nodes,
            // dropped without recursion too
            assert!(g.len() > 200_000, "{}", g.len());
            drop(g);
            m.run().unwrap();
            let y: Vec<f64> = m.value(y).unwrap().iter().copied().collect();
            let dx: Vec<f64> = m.value(dx).unwrap().iter().copied().collect();
            (y, dx)
        })
        .unwrap();
    let (y, dx) = worker.join().unwrap();
    let (c, d) = (1.00002f64, 1e-4);
    let cn = c.powi(STEPS); // 1.00002^50000 ≈ e ≈ 2.71825
    for (i, x0) in [1.0, -0.5].into_iter().enumerate() {
        // y_n = cⁿ x + d (cⁿ − 1) / (c − 1)
        assert_relative_eq!(
            y[i],
            cn * x0 + d * (cn - 1.0) / (c - 1.0),
            max_relative = 1e-8
        );
        // d/dx sum(y_n) = cⁿ for each element
        assert_relative_eq!(dx[i], cn, max_relative = 1e-9);
    }
}

#[test]
fn rerunning_after_new_feeds_gives_new_results() {
    let g = Graph::<f32>::new();
    let x = g.input("x", [3]);
    let w = g.param("w", arr1(&[1.0f32, 2.0, 3.0]));
    let y = (x * w).sum();
    let dw = g.grad(y, &[w]).unwrap()[0];
    let mut m = g.compile(&[y, dw], &[]).unwrap();
    let steps = m.len();
    for (xs, want) in [
        ([1.0f32, 1.0, 1.0], 6.0f32), // 1 + 2 + 3
        ([0.0, 0.5, -1.0], -2.0),     // 0 + 1 - 3
        ([2.0, 0.0, 0.0], 2.0),       // 2
    ] {
        m.feed(x, &arr1(&xs)).unwrap();
        m.run().unwrap();
        assert_abs_diff_eq!(m.item(y).unwrap(), want, epsilon = 1e-6);
        // d/dw sum(x w) = x
        for (got, want) in m.value(dw).unwrap().iter().zip(xs) {
            assert_abs_diff_eq!(*got, want, epsilon = 1e-6);
        }
    }
    assert_eq!(m.len(), steps);
}

#[test]
fn feeding_a_non_contiguous_array_uses_its_logical_order() {
    let g = Graph::<f64>::new();
    let x = g.input("x", [3, 2]);
    let y = x * 1.0;
    let mut m = g.compile(&[y], &[]).unwrap();
    let a = arr2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    m.feed(x, &a.t()).unwrap();
    m.run().unwrap();
    // the transpose of [[1, 2, 3], [4, 5, 6]]
    assert_close(
        m.value(y).unwrap(),
        arr2(&[[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]).into_dyn(),
    );
    // a strided view (every other column) as well
    let b = arr2(&[
        [1.0, 0.0, 2.0, 0.0],
        [3.0, 0.0, 4.0, 0.0],
        [5.0, 0.0, 6.0, 0.0],
    ]);
    m.feed(x, &b.slice(ndarray::s![.., ..;2])).unwrap();
    m.run().unwrap();
    // columns 0 and 2 of b
    assert_close(
        m.value(y).unwrap(),
        arr2(&[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]).into_dyn(),
    );
}

/// Every-other-element views at each rank the copy routes apart (1 and 3: through one
/// `IxDyn` iterator; a fixed rank 5: its own; `IxDyn` at rank 6), fed to an input with
/// a run-time axis, to a fixed input and set as a parameter: each reads back as the view.
#[test]
fn stepped_views_of_every_rank_feed_in_logical_order() {
    fn check<D: ndarray::Dimension>(big: ndarray::Array<f64, D>) {
        let mut view = big.view();
        view.slice_each_axis_inplace(|_| ndarray::Slice::new(0, None, 2));
        assert!(view.as_slice_memory_order().is_none());
        let want = view.to_owned().into_dyn();
        let dims = want.shape().to_vec();
        let g = Graph::<f64>::new();
        let x = g.input("x", tapegrad::Shape::upto(dims[0] + 1, &dims[1..]));
        let z = g.input("z", dims.as_slice());
        let p = g.param("p", ArrayD::<f64>::zeros(dims.as_slice()));
        let mut m = g.compile(&[x * 1.0, z * 1.0, p * 1.0], &[]).unwrap();
        m.feed(x, &view).unwrap();
        m.feed(z, &view).unwrap();
        m.set_param(p, &view).unwrap();
        m.run().unwrap();
        for t in [x.handle(), z.handle(), p.handle()] {
            assert_eq!(m.value(t).unwrap(), want, "rank {}", dims.len());
        }
    }
    let numbered = |d: &[usize]| {
        let n = d.iter().product::<usize>();
        ArrayD::from_shape_vec(d, (0..n).map(|k| k as f64).collect()).unwrap()
    };
    check(
        numbered(&[6])
            .into_dimensionality::<ndarray::Ix1>()
            .unwrap(),
    );
    check(
        numbered(&[4, 3, 4])
            .into_dimensionality::<ndarray::Ix3>()
            .unwrap(),
    );
    check(
        numbered(&[2, 3, 4, 2, 3])
            .into_dimensionality::<ndarray::Ix5>()
            .unwrap(),
    );
    check(numbered(&[2, 3, 2, 2, 3, 2]));
}

fn assert_send_static<T: Send + 'static>() {}

#[test]
fn machine_is_send_and_static() {
    assert_send_static::<Machine<f32>>();
    assert_send_static::<Machine<f64>>();
    assert_send_static::<Handle>();
}

/// Builds a one-layer model, drops the graph, and returns the machine with the handles
/// needed to drive it.
fn detached_model() -> (Machine<f32>, [Handle; 5]) {
    let g = Graph::<f32>::new();
    let x = g.input("x", [4, 2]);
    let t = g.input("t", [4, 1]);
    let w = g.param("w", Array2::<f32>::zeros((2, 1)));
    let b = g.param("b", Array1::<f32>::zeros(1));
    let loss = (x.matmul(w) + b).mse(t);
    let grads = g.grad(loss, &[w, b]).unwrap();
    let m = g.compile(&[loss], &grads).unwrap();
    let handles = [x, t, w, loss, grads[0]].map(|h| h.handle());
    (m, handles)
}

#[test]
fn machine_moves_to_another_thread_after_the_graph_is_dropped() {
    let (mut m, [x, t, w, loss, gw]) = detached_model();
    let results = std::thread::spawn(move || {
        // t = 2 x0 - x1, fit by w
        let xs = arr2(&[[1.0f32, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]]);
        let ts = arr2(&[[2.0f32], [-1.0], [1.0], [5.0]]);
        m.feed(x, &xs).unwrap();
        m.feed(t, &ts).unwrap();
        m.run().unwrap();
        let first = m.item(loss).unwrap();
        let b = m.handle_of("b").unwrap();
        let mut opt = Sgd::new(0.1);
        // the machine knows its (parameter, gradient) pairs; step w's only
        let only_w = m.grads().select(&[w]).unwrap();
        assert_eq!(only_w.get(w), Some(gw));
        for _ in 0..300 {
            m.run().unwrap();
            opt.step(&mut m, &only_w).unwrap();
        }
        m.run().unwrap();
        let w_now: Vec<f32> = m.value(w).unwrap().iter().copied().collect();
        (
            first,
            m.item(loss).unwrap(),
            w_now,
            m.value(b).unwrap()[[0]],
        )
    })
    .join()
    .unwrap();
    let (first, last, w_now, b_now) = results;
    // at w = 0: mean(t²) = (4 + 1 + 1 + 25) / 4 = 7.75
    assert_abs_diff_eq!(first, 7.75, epsilon = 1e-6);
    // only w was stepped; the exact fit w = [2, -1] (b = 0) has zero loss
    assert!(last < 1e-6, "{last}");
    assert_abs_diff_eq!(w_now[0], 2.0, epsilon = 1e-3);
    assert_abs_diff_eq!(w_now[1], -1.0, epsilon = 1e-3);
    // never stepped, so still exactly its initial 0
    assert_eq!(b_now, 0.0);
}

#[test]
fn handles_address_a_machine_after_the_graph_is_dropped() {
    let (mut m, [x, t, w, loss, _]) = detached_model();
    // names lead to the same handles as the tensors did
    assert_eq!(m.handle_of("x").unwrap(), x);
    assert_eq!(m.handle_of("t").unwrap(), t);
    assert_eq!(m.handle_of("w").unwrap(), w);
    assert_ne!(m.handle_of("b").unwrap(), w);
    assert!(matches!(
        m.handle_of("loss"),
        Err(Error::UnknownName { .. })
    ));
    let xs = arr2(&[[1.0f32, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]);
    m.feed_named("x", &xs).unwrap();
    m.feed(t, &arr2(&[[1.0f32], [1.0], [1.0], [1.0]])).unwrap();
    m.set_param(m.handle_of("w").unwrap(), &arr2(&[[1.0f32], [1.0]]))
        .unwrap();
    m.run().unwrap();
    // predictions [1, 1, 2, 0] against 1: mean(0, 0, 1, 1) = 0.5
    assert_abs_diff_eq!(m.item(loss).unwrap(), 0.5, epsilon = 1e-6);
    // names and shapes of the parameters, in declaration order
    let params: Vec<(String, Vec<usize>)> = m
        .params()
        .map(|(n, s)| (n.to_string(), s.dims().to_vec()))
        .collect();
    assert_eq!(
        params,
        vec![("w".to_string(), vec![2, 1]), ("b".to_string(), vec![1])]
    );
}

#[test]
fn parameters_are_read_and_written() {
    let g = Graph::<f64>::new();
    let w = g.param("w", arr2(&[[1.0, 2.0], [3.0, 4.0]]));
    let y = w.sum();
    let dw = g.grad((w * w).sum(), &[w]).unwrap()[0];
    let mut m = g.compile(&[y, dw], &[]).unwrap();
    // the initial value before any run (stored, so bit for bit)
    assert_eq!(
        m.value(w).unwrap(),
        arr2(&[[1.0, 2.0], [3.0, 4.0]]).into_dyn()
    );
    m.run().unwrap();
    // 1 + 2 + 3 + 4 = 10
    assert_abs_diff_eq!(m.item(y).unwrap(), 10.0);
    m.set_param(w, &arr2(&[[0.5, 0.5], [-1.0, 2.0]])).unwrap();
    assert_eq!(
        m.value(w).unwrap(),
        arr2(&[[0.5, 0.5], [-1.0, 2.0]]).into_dyn()
    );
    // op values keep the last run's results until the next run
    assert_abs_diff_eq!(m.item(y).unwrap(), 10.0);
    m.run().unwrap();
    // 0.5 + 0.5 - 1 + 2 = 2
    assert_abs_diff_eq!(m.item(y).unwrap(), 2.0);
    // d/dw sum(w²) = 2w
    assert_close(
        m.value(dw).unwrap(),
        arr2(&[[1.0, 1.0], [-2.0, 4.0]]).into_dyn(),
    );
    // a scalar parameter
    let g = Graph::<f64>::new();
    let s = g.param("s", arr0(3.0));
    let y = s * s;
    let mut m = g.compile(&[y], &[]).unwrap();
    m.set_param(s, &arr0(-4.0)).unwrap();
    m.run().unwrap();
    // (-4)² = 16
    assert_abs_diff_eq!(m.item(y).unwrap(), 16.0);
    // the wrong shape is refused and leaves the value alone
    assert!(matches!(
        m.set_param(s, &arr1(&[1.0])),
        Err(Error::Feed { .. })
    ));
    assert_abs_diff_eq!(m.item(s).unwrap(), -4.0);
}

#[test]
fn copy_params_from_a_training_machine_into_an_evaluation_machine() {
    let g = Graph::<f64>::new();
    let x = g.input("x", [2, 2]);
    let t = g.input("t", [2, 2]);
    let w1 = g.param("w1", arr2(&[[1.0, 0.0], [0.0, 1.0]]));
    let w2 = g.param("w2", arr2(&[[0.5, 0.0], [0.0, 0.5]]));
    let h = x.matmul(w1);
    let loss = h.matmul(w2).mse(t);
    let params = [w1, w2];
    let grads = g.grad(loss, &params).unwrap();
    let mut train = g.compile(&[loss], &grads).unwrap();
    // evaluation only needs w1, but every machine of a graph holds all its parameters
    let mut eval = g.compile(&[h], &[]).unwrap();
    assert_eq!(eval.params().count(), 2);

    let xs = arr2(&[[1.0, 2.0], [3.0, -1.0]]);
    train.feed(x, &xs).unwrap();
    train.feed(t, &arr2(&[[0.0, 1.0], [1.0, 0.0]])).unwrap();
    let mut opt = Sgd::new(0.05);
    for _ in 0..5 {
        train.run().unwrap();
        opt.step(&mut train, &grads).unwrap();
    }
    let trained = train.value(w1).unwrap().to_owned();
    assert_ne!(trained, arr2(&[[1.0, 0.0], [0.0, 1.0]]).into_dyn());

    // both parameters, named, in declaration order
    assert_eq!(eval.copy_params_from(&train).unwrap(), ["w1", "w2"]);
    // a copy, so bit for bit
    assert_eq!(eval.value(w1).unwrap(), trained);
    eval.feed(x, &xs).unwrap();
    eval.run().unwrap();
    // h = x · w1
    let want = xs.dot(&trained.into_dimensionality::<ndarray::Ix2>().unwrap());
    for (a, b) in eval.value(h).unwrap().iter().zip(want.iter()) {
        assert_abs_diff_eq!(*a, *b, epsilon = 1e-12);
    }

    // a parameter of the same name and another shape is refused
    let g2 = Graph::<f64>::new();
    let other = g2.param("w1", arr1(&[1.0, 2.0, 3.0]));
    let m2 = g2.compile(&[other.sum()], &[]).unwrap();
    let e = eval.copy_params_from(&m2).unwrap_err();
    match &e {
        Error::Feed {
            name,
            expected,
            got,
            ..
        } => {
            assert_eq!(name, "w1");
            assert_eq!(*expected, Shape::from([2, 2]));
            assert_eq!(*got, Shape::from([3]));
        }
        other => panic!("{other:?}"),
    }
    // and nothing was copied
    assert_eq!(eval.value(w1).unwrap(), train.value(w1).unwrap());

    // only the names both hold are copied
    let g3 = Graph::<f64>::new();
    let _ = g3.param("w2", arr2(&[[7.0, 7.0], [7.0, 7.0]]));
    let unrelated = g3.param("bias", arr1(&[1.0]));
    let m3 = g3.compile(&[unrelated.sum()], &[]).unwrap();
    assert_eq!(eval.copy_params_from(&m3).unwrap(), ["w2"]);
    assert_eq!(
        eval.value(w2).unwrap(),
        arr2(&[[7.0, 7.0], [7.0, 7.0]]).into_dyn()
    );
    assert_eq!(eval.value(w1).unwrap(), train.value(w1).unwrap());
}

/// A machine compiled with gradients is for training; one without is for evaluation,
/// so dropout is off until asked for.
#[test]
fn machines_without_gradients_start_in_evaluation_mode() {
    let g = Graph::<f32>::new();
    let x = g.input("x", [200]);
    let w = g.param("w", Array1::<f32>::ones(200));
    let y = (x * w).dropout(0.5);
    let grads = g.grad(y.sum(), &[w]).unwrap();
    let ones = Array1::<f32>::ones(200);
    // dropped elements are 0, kept ones 1 / (1 - 0.5) = 2
    let dropped = |m: &Machine<f32>| m.value(y).unwrap().iter().filter(|&&v| v == 0.0).count();

    let mut train = g.compile(&[y], &grads).unwrap();
    assert!(train.training());
    train.feed(x, &ones).unwrap();
    train.run().unwrap();
    assert!(dropped(&train) > 0);

    let mut eval = g.compile(&[y], &[]).unwrap();
    assert!(!eval.training());
    eval.feed(x, &ones).unwrap();
    eval.run().unwrap();
    assert!(eval.value(y).unwrap().iter().all(|&v| v == 1.0));
    // the mode is the user's to change
    eval.set_training(true);
    eval.run().unwrap();
    assert!(dropped(&eval) > 0);
    train.set_training(false);
    train.run().unwrap();
    assert_eq!(dropped(&train), 0);
}

/// Every op node is an output here, so no buffer can be reused and the bytes are exactly
/// the sum of the node sizes.
#[test]
fn memory_totals_match_a_hand_count() {
    fn build<T: tapegrad::Scalar>(planned_outputs_only: bool) -> tapegrad::Memory {
        let g = Graph::<T>::new();
        let x = g.input("x", [2, 3]);
        let w = g.param("w", Array2::<T>::zeros((3, 4)));
        let b = g.param("b", Array1::<T>::zeros(4));
        let h = x.matmul(w);
        let a = h + b;
        let s = a * T::of(2.0);
        let loss = s.sum();
        let outputs = if planned_outputs_only {
            vec![loss]
        } else {
            vec![h, a, s, loss]
        };
        g.compile(&outputs, &[]).unwrap().memory()
    }
    let m = build::<f32>(false);
    // x [2, 3]: 6 floats
    assert_eq!(m.inputs, 6 * 4);
    // w [3, 4] + b [4]: 16 floats
    assert_eq!(m.params, 16 * 4);
    // the scalar 2.0: 1 float
    assert_eq!(m.constants, 4);
    // h [2, 4] + a [2, 4] + s [2, 4] + loss []: 25 floats; in all 6 + 16 + 1 + 25 = 48
    // (a product of 2 rows is thin: it packs nothing, so no GEMM scratch), beside the
    // tape's own tables
    assert_eq!(m.scratch, 0);
    assert_eq!(m.buffers(), 48 * 4);
    assert_eq!(m.total(), m.buffers() + m.metadata);
    // f64 doubles every buffer
    let m64 = build::<f64>(false);
    assert_eq!(m64.buffers(), 48 * 8);
    assert_eq!(m64.params, 16 * 8);
    // asking only for the loss never needs more
    let lean = build::<f32>(true);
    assert_eq!((lean.inputs, lean.params, lean.constants), (24, 64, 4));
    assert!(lean.buffers() <= m.buffers());
    assert!(lean.buffers() >= (6 + 16 + 1 + 1) * 4);
}

/// Solves the 3×3 system `a z = r` by Cramer's rule.
fn solve3(a: [[f64; 3]; 3], r: [f64; 3]) -> [f64; 3] {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(a);
    let mut z = [0.0; 3];
    for (k, zk) in z.iter_mut().enumerate() {
        let mut ak = a;
        for i in 0..3 {
            ak[i][k] = r[i];
        }
        *zk = det(ak) / d;
    }
    z
}

/// Full-batch SGD on mean squared error converges to the least-squares solution of the
/// normal equations `[X 1]ᵀ [X 1] θ = [X 1]ᵀ y`, which differs from the weights that made
/// the data because of the noise.
#[test]
fn sgd_trains_linear_regression_to_the_least_squares_solution() {
    let a = [-1.0, -0.6, -0.2, 0.2, 0.6, 1.0, 0.3, -0.4];
    let b = [0.5, -1.0, 0.8, -0.3, 0.1, -0.7, 0.9, -0.2];
    let noise = [0.1, -0.05, 0.02, -0.08, 0.04, 0.03, -0.06, 0.07];
    let n = a.len();
    let xs = Array2::from_shape_fn((n, 2), |(i, j)| if j == 0 { a[i] } else { b[i] });
    let ys = Array2::from_shape_fn((n, 1), |(i, _)| 1.5 * a[i] - 2.0 * b[i] + 0.5 + noise[i]);

    // normal equations over the features [a, b, 1]
    let feat = |i: usize| [a[i], b[i], 1.0];
    let mut ata = [[0.0; 3]; 3];
    let mut aty = [0.0; 3];
    for i in 0..n {
        let f = feat(i);
        for (r, row) in ata.iter_mut().enumerate() {
            aty[r] += f[r] * ys[[i, 0]];
            for (c, cell) in row.iter_mut().enumerate() {
                *cell += f[r] * f[c];
            }
        }
    }
    let want = solve3(ata, aty);
    // the noise moves the solution away from the generating weights [1.5, -2, 0.5]
    assert!((want[0] - 1.5).abs() + (want[1] + 2.0).abs() + (want[2] - 0.5).abs() > 1e-3);

    let g = Graph::<f64>::new();
    let x = g.input("x", [n, 2]);
    let y = g.input("y", [n, 1]);
    let w = g.param("w", Array2::<f64>::zeros((2, 1)));
    let bias = g.param("bias", Array1::<f64>::zeros(1));
    let loss = (x.matmul(w) + bias).mse(y);
    let params = g.params();
    let grads = g.grad(loss, &params).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    m.feed(x, &xs).unwrap();
    m.feed(y, &ys).unwrap();
    let mut opt = Sgd::new(0.4);
    for _ in 0..1000 {
        m.run().unwrap();
        opt.step(&mut m, &grads).unwrap();
    }
    m.run().unwrap();
    let wv = m.value(w).unwrap();
    // θ = (XᵀX)⁻¹ Xᵀ y
    assert_abs_diff_eq!(wv[[0, 0]], want[0], epsilon = 1e-6);
    assert_abs_diff_eq!(wv[[1, 0]], want[1], epsilon = 1e-6);
    assert_abs_diff_eq!(m.value(bias).unwrap()[[0]], want[2], epsilon = 1e-6);
    // the gradient vanishes at the minimum
    for (_, gr) in &grads {
        for v in m.value(gr).unwrap().iter() {
            assert_abs_diff_eq!(*v, 0.0, epsilon = 1e-8);
        }
    }
}

#[test]
fn gradients_accumulate_and_unrelated_params_get_zeros() {
    let g = Graph::<f64>::new();
    let x = g.param("x", arr1(&[2.0, -1.0]));
    // x reaches y along three paths: y = sum(x·x + 3x) = sum(x² + 3x)
    let y = (x * x + x * 3.0).sum();
    // declared after y, so y cannot depend on it
    let later = g.param("later", arr1(&[5.0, 5.0, 5.0]));
    let gr = g.grad(y, &[x, later]).unwrap();
    let mut m = g.compile(&[y], &gr).unwrap();
    m.run().unwrap();
    // dy/dx = 2x + 3 = [7, 1]
    assert_close(m.value(gr[0]).unwrap(), arr1(&[7.0, 1.0]).into_dyn());
    // dy/d(later) = 0, with later's shape
    assert_close(m.value(gr[1]).unwrap(), arr1(&[0.0, 0.0, 0.0]).into_dyn());
}

#[test]
fn an_empty_machine_runs() {
    let g = Graph::<f32>::new();
    let mut m = g.compile(&[], &[]).unwrap();
    assert!(m.is_empty());
    m.run().unwrap();
    assert_eq!(m.memory().total(), 0);
}

/// The quick-start pattern (`grads = g.grad(loss, &g.params())`,
/// `compile(&[loss], &grads)`, `step(&mut m, &grads)`) with a parameter the loss does not
/// use (an evaluation head, say): its gradient is zero, so the step should leave it alone.
#[test]
fn sgd_steps_past_a_parameter_the_loss_does_not_use() {
    let g = Graph::<f64>::new();
    let p = g.param("p", arr1(&[1.0]));
    let head = g.param("head", arr1(&[5.0, 5.0]));
    let loss = (p * p).sum();
    let params = g.params();
    let grads = g.grad(loss, &params).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    m.run().unwrap();
    Sgd::new(0.25).step(&mut m, &grads).unwrap();
    // p ← 1 − 0.25 · 2p = 0.5; head ← head − 0.25 · 0
    assert_abs_diff_eq!(m.value(p).unwrap()[[0]], 0.5);
    assert_eq!(m.value(head).unwrap(), arr1(&[5.0, 5.0]).into_dyn());
}

/// Buffer reuse must not overwrite a value that a later step still reads: `y` is used at
/// the start and again at the end of a long chain, through a reshape view as well.
#[test]
fn long_lived_values_survive_buffer_reuse() {
    let g = Graph::<f64>::new();
    let x = g.param("x", arr1(&[0.1, -0.2, 0.3, 0.4]));
    let y = x.exp();
    let mut z = y * 1.0;
    for _ in 0..10 {
        z = (z * 0.5).tanh() + 0.25;
    }
    let y2 = y.reshape([2, 2]);
    let out = (z.reshape([2, 2]) + y2 * y2).sum();
    let dx = g.grad(out, &[x]).unwrap()[0];
    let mut m = g.compile(&[out, dx], &[]).unwrap();
    m.run().unwrap();
    // the same chain in plain f64
    let (mut want, mut want_dx) = (0.0, Vec::new());
    for x0 in [0.1f64, -0.2, 0.3, 0.4] {
        let (mut v, mut dv) = (x0.exp(), x0.exp()); // dz/dx starts at e^x
        for _ in 0..10 {
            let t = (v * 0.5).tanh();
            dv *= 0.5 * (1.0 - t * t); // d/dv tanh(v/2) = (1 - tanh²) / 2
            v = t + 0.25;
        }
        // out = Σ z + (e^x)², d/dx = dz/dx + 2 e^{2x}
        want += v + (2.0 * x0).exp();
        want_dx.push(dv + 2.0 * (2.0 * x0).exp());
    }
    assert_relative_eq!(m.item(out).unwrap(), want, max_relative = 1e-12);
    for (got, want) in m.value(dx).unwrap().iter().zip(want_dx) {
        assert_relative_eq!(*got, want, max_relative = 1e-12);
    }
}

/// A node that was compiled (it is on the way to an output) but not asked for can be read
/// with `value`: it must then hold its own value, or the read must be an `Err`. With
/// buffer reuse its buffer may hold a later node's data by the end of the run.
#[test]
fn reading_an_intermediate_is_its_value_or_an_error() {
    let g = Graph::<f64>::new();
    let x = g.param("x", arr1(&[1.0, 2.0, 3.0, 4.0]));
    let h1 = x * 2.0;
    let h2 = h1 + 1.0;
    let h3 = h2.tanh();
    let loss = (h3 * 3.0).sum();
    let mut m = g.compile(&[loss], &[]).unwrap();
    m.run().unwrap();
    let x0 = [1.0f64, 2.0, 3.0, 4.0];
    for (t, f) in [
        (h1, (|x: f64| 2.0 * x) as fn(f64) -> f64), // h1 = 2x = [2, 4, 6, 8]
        (h2, |x| 2.0 * x + 1.0),                    // h2 = 2x + 1 = [3, 5, 7, 9]
        (h3, |x| (2.0 * x + 1.0).tanh()),           // h3 = tanh(2x + 1)
    ] {
        if let Ok(v) = m.value(t) {
            for (got, x) in v.iter().zip(x0) {
                assert_abs_diff_eq!(*got, f(x), epsilon = 1e-12);
            }
        }
    }
    // h1's buffer is reused by the plan: reading it says so
    let e = m.value(h1).unwrap_err();
    assert!(
        matches!(e, tapegrad::Error::NotKept { op: "mul", .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("pass it to `compile` as an output"),
        "{e}"
    );
}
