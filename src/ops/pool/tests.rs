use super::super::testing::{assert_close, check, eval, grads_of, rand_array};
use super::Window;
use crate::prelude::*;
use approx::assert_abs_diff_eq;
use ndarray::{arr3, ArrayD, IxDyn};

/// The inputs of the PyTorch lines below: `((i * 37) % 101) / 10`, all distinct (no ties).
fn xs(shape: &[usize]) -> ArrayD<f64> {
    let n = shape.iter().product();
    let v = (0..n).map(|i| ((i * 37) % 101) as f64 / 10.0).collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

/// `y` and `d/dx sum(y * w)`, `w[j] = j % 5 - 2`, against PyTorch's values (rounded to
/// 10 digits there). The PyTorch lines, for `f` one of the cases below:
/// ```text
/// x = torch.tensor([((i * 37) % 101) / 10 for i in range(n)], dtype=torch.float64)
///         .reshape(shape).requires_grad_()
/// y = f(x); w = torch.tensor([(j % 5) - 2 for j in range(y.numel())],
///         dtype=torch.float64).reshape(y.shape)
/// (y * w).sum().backward(); print(y.flatten().tolist(), x.grad.flatten().tolist())
/// ```
fn assert_matches_pytorch(
    shape: &[usize],
    f: impl for<'g> Fn(Tensor<'g, f64>) -> Tensor<'g, f64> + Copy,
    y_want: &[f64],
    dx_want: &[f64],
) {
    let x = [xs(shape)];
    let y = eval(&x, |_, t| f(t[0]));
    let w: Vec<f64> = (0..y.len()).map(|j| (j % 5) as f64 - 2.0).collect();
    let w = ArrayD::from_shape_vec(y.raw_dim(), w).unwrap();
    let dx = grads_of(&x, |g, t| f(t[0]) * g.constant(w.clone()));
    assert_eq!((y.len(), dx[0].len()), (y_want.len(), dx_want.len()));
    for (a, b) in y.iter().zip(y_want).chain(dx[0].iter().zip(dx_want)) {
        assert_abs_diff_eq!(*a, *b, epsilon = 1e-9);
    }
}

#[test]
fn max_pool2d_padded_stride_2_matches_pytorch() {
    // F.max_pool2d(x, 3, 2, 1), x of shape (1, 2, 5, 5): y (1, 2, 3, 3)
    assert_matches_pytorch(
        &[1, 2, 5, 5],
        |x| x.max_pool2d(Window::new(3).stride(2).padding(1)),
        &[
            8.4, 9.4, 9.4, 8.7, 9.4, 9.7, 8.7, 8.7, 9.7, 10.0, 9.0, 6.3, 10.0, 9.3, 9.3, 8.6, 8.6,
            9.6,
        ],
        &[
            0., 0., 0., 0., 0., -2., 0., 0., 1., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., -1., 0.,
            0., 0., 0., 0., 0., 0., -2., 0., -1., 2., 0., 0., 0., 0., 0., 0., 0., 3., 0., 0., 0.,
            0., 0., 0., 0., -3., 0., 0., 0.,
        ],
    );
}

#[test]
fn avg_pool2d_rectangular_padded_matches_pytorch() {
    // F.avg_pool2d(x, (3, 2), (1, 2), (1, 1)), x of shape (1, 2, 4, 5): y (1, 2, 4, 3)
    let (t, s) = (1.0 / 3.0, 1.0 / 6.0);
    assert_matches_pytorch(
        &[1, 2, 4, 5],
        |x| x.avg_pool2d(Window::new([3, 2]).stride([1, 2]).padding([1, 1])),
        &[
            1.4,
            3.1333333333,
            3.0166666667,
            2.5166666667,
            3.85,
            4.5166666667,
            3.35,
            3.8333333333,
            6.1833333333,
            1.95,
            2.55,
            4.1166666667,
            0.8166666667,
            3.65,
            3.5333333333,
            2.4833333333,
            5.4666666667,
            4.45,
            3.3166666667,
            5.45,
            4.4333333333,
            3.05,
            3.0666666667,
            2.95,
        ],
        &[
            -s, s, s, -t, -t, -t, s, s, -s, -s, t, 0., 0., -t, -t, s, -t, -t, 0., 0., -t, 0., 0.,
            t, t, -s, t, t, 0., 0., -t, s, s, -s, -s, 0., t, t, -s, -s,
        ],
    );
}

#[test]
fn pool1d_matches_pytorch() {
    // F.max_pool1d(x, 3, 1), x of shape (2, 1, 6): stride 1 != kernel 3, overlapping
    // windows whose gradients add up at a shared arg-max (-2 - 1 + 0 = -3 at x[2])
    assert_matches_pytorch(
        &[2, 1, 6],
        |x| x.max_pool1d(Window::new(3).stride(1)),
        &[7.4, 7.4, 7.4, 8.4, 9.4, 9.4, 9.4, 6.7],
        &[0., 0., -3., 0., 0., 1., 0., 0., -1., 0., 0., 0.],
    );
    // F.avg_pool1d(x, 4, 3, 2), x of shape (2, 1, 7)
    assert_matches_pytorch(
        &[2, 1, 7],
        |x| x.avg_pool1d(Window::new(4).stride(3).padding(2)),
        &[0.925, 4.2, 3.775, 3.775, 4.85, 3.0],
        &[
            -0.5, -0.75, -0.25, -0.25, -0.25, 0.0, 0.0, 0.25, 0.75, 0.5, 0.5, 0.0, -0.5, -0.5,
        ],
    );
    // F.adaptive_avg_pool2d(x, 1), x of shape (2, 2, 2, 3)
    let (t, s) = (1.0 / 3.0, 1.0 / 6.0);
    assert_matches_pytorch(
        &[2, 2, 2, 3],
        |x| x.adaptive_avg_pool2d(1),
        &[4.2, 4.5166666667, 4.8333333333, 5.15],
        &[
            -t, -t, -t, -t, -t, -t, -s, -s, -s, -s, -s, -s, 0., 0., 0., 0., 0., 0., s, s, s, s, s,
            s,
        ],
    );
}

#[test]
fn ties_go_to_the_first_and_overlaps_add() {
    // windows [2, 2], [2, 1] of [2, 2, 1] (kernel 2, stride 1): the tie goes to x[0], and
    // x[1] is the arg-max of the second window: d/dx sum(y) = [1, 1, 0]
    let x = [arr3(&[[[2.0, 2.0, 1.0]]]).into_dyn()];
    let y = eval(&x, |_, t| t[0].max_pool1d(Window::new(2).stride(1)));
    assert_close(&y, &arr3(&[[[2.0, 2.0]]]).into_dyn());
    let d = grads_of(&x, |_, t| t[0].max_pool1d(Window::new(2).stride(1)));
    assert_close(&d[0], &arr3(&[[[1.0, 1.0, 0.0]]]).into_dyn());
    // all-negative values under padding: -inf pads never win (a zero pad would)
    let x = [arr3(&[[[-3.0, -1.0]]]).into_dyn()];
    let y = eval(&x, |_, t| t[0].max_pool1d(Window::new(2).padding(1)));
    assert_close(&y, &arr3(&[[[-3.0, -1.0]]]).into_dyn());
    // avg pads count: (0 + -3) / 2, (-1 + 0) / 2
    let y = eval(&x, |_, t| t[0].avg_pool1d(Window::new(2).padding(1)));
    assert_close(&y, &arr3(&[[[-1.5, -0.5]]]).into_dyn());
}

/// The pools checked here, on `[2, 2, 5, 4]` (2-D) or `[2, 3, 7]` (1-D).
fn pools<'g>(x: Tensor<'g, f64>, case: usize) -> Tensor<'g, f64> {
    match case {
        0 => x.max_pool2d(Window::new([3, 2]).stride([2, 1]).padding([1, 1])),
        1 => x.avg_pool2d(Window::new(2).stride([1, 2]).padding([1, 0])),
        2 => x.max_pool1d(Window::new(3).stride(2).padding(1)),
        3 => x.avg_pool1d(Window::new(3).stride(1).padding(1)),
        4 => x.adaptive_avg_pool2d(1),
        _ => x.adaptive_avg_pool1d(1),
    }
}

fn input_of(case: usize, seed: u64) -> ArrayD<f64> {
    match case % 2 {
        // random values: no ties (a.s.), and no two closer than finite differences reach
        0 => rand_array(&[2, 2, 5, 4], seed, -2.0, 2.0),
        _ => rand_array(&[2, 3, 7], seed, -2.0, 2.0),
    }
}

#[test]
fn gradcheck_first_and_second_order() {
    for case in 0..6 {
        let x = [if case < 2 || case == 4 {
            input_of(0, 20 + case as u64)
        } else {
            input_of(1, 20 + case as u64)
        }];
        // first order, weighted so that each output's gradient differs
        check(&x, |g, t| {
            let y = pools(t[0], case);
            let w = g.constant(rand_array(y.shape().dims(), 7, -1.0, 1.0));
            (y * w).sum()
        });
        // second order: the gradient of sum(pool(x)^2) is scatter(x, 2 pool(x)) (max) or
        // A^T 2 A x (avg), both nonzero in x; a zero Hessian would not pass this
        check(&x, |g, t| {
            let d = g.grad(pools(t[0], case).square().sum(), &[t[0]]).unwrap()[0];
            let v = g.constant(rand_array(t[0].shape().dims(), 8, -1.0, 1.0));
            (d * v).sum()
        });
    }
}

#[test]
fn second_order_is_not_zero() {
    // d/dx sum(max_pool(x)^2) = scatter(x, 2 max_pool(x)): for x = [1, 3] (kernel 2),
    // y = 3, gradient [0, 6]; its gradient in x along v = [1, 1] is [0, 2]
    let x = [arr3(&[[[1.0, 3.0]]]).into_dyn()];
    let h = eval(&x, |g, t| {
        let d = g.grad(t[0].max_pool1d(2).square().sum(), &[t[0]]).unwrap()[0];
        g.grad(d.sum(), &[t[0]]).unwrap()[0]
    });
    assert_close(&h, &arr3(&[[[0.0, 2.0]]]).into_dyn());
    // avg: y = (x0 + x1) / 2, d/dx sum(y^2) = [y, y], Hessian-vector [1, 1] -> [1, 1]
    let h = eval(&x, |g, t| {
        let d = g.grad(t[0].avg_pool1d(2).square().sum(), &[t[0]]).unwrap()[0];
        g.grad(d.sum(), &[t[0]]).unwrap()[0]
    });
    assert_close(&h, &arr3(&[[[1.0, 1.0]]]).into_dyn());
}

#[test]
fn run_time_batch_axis_matches_fixed_shapes() {
    for case in 0..6 {
        let full = if case < 2 || case == 4 {
            input_of(0, 40)
        } else {
            input_of(1, 40)
        };
        let dims = full.shape().to_vec();
        let g = Graph::<f64>::new();
        let x = g.input("x", Shape::upto(dims[0] + 1, &dims[1..]));
        let p = g.param("p", rand_array(&dims[1..], 41, 0.5, 1.5));
        let y = pools(x * p, case);
        let loss = y.square().sum();
        let grads = g.grad(loss, &[p]).unwrap();
        let mut m = g.compile(&[y, loss], &grads).unwrap();
        for rows in [2, 1, 0, 2] {
            let fed = full.slice_axis(ndarray::Axis(0), (0..rows).into());
            m.feed(x, &fed).unwrap();
            m.run().unwrap();
            let want = eval(&[fed.to_owned(), m.value(p).unwrap().to_owned()], |_, t| {
                pools(t[0] * t[1], case)
            });
            assert_close(&m.value(y).unwrap().to_owned(), &want);
            let want_d = grads_of(&[fed.to_owned(), m.value(p).unwrap().to_owned()], |_, t| {
                pools(t[0] * t[1], case).square()
            });
            assert_close(&m.value(grads[0]).unwrap().to_owned(), &want_d[1]);
        }
    }
}

#[test]
fn bad_windows_and_ranks_are_located_errors() {
    let g = Graph::<f32>::new();
    let x2 = g.input("x2", [1, 2, 4, 4]);
    let x1 = g.input("x1", [1, 2, 4]);
    // (the line of the call, op, words the reason must hold), the call on the line of `line!()`
    let mut cases = Vec::new();
    let (_, at) = (x2.max_pool2d(0), line!());
    cases.push((at, "max_pool2d", "kernel size must be positive"));
    let (_, at) = (x2.avg_pool2d([2, 0]), line!());
    cases.push((at, "avg_pool2d", "kernel size must be positive, got [2, 0]"));
    let (_, at) = (x1.max_pool1d(Window::new(2).stride(0)), line!());
    cases.push((at, "max_pool1d", "stride must be positive, got 0"));
    let (_, at) = (x2.avg_pool2d(Window::new(2).stride([1, 0])), line!());
    cases.push((at, "avg_pool2d", "stride must be positive, got [1, 0]"));
    let (_, at) = (x2.max_pool2d(5), line!());
    cases.push((
        at,
        "max_pool2d",
        "kernel [5, 5] is larger than the padded input [4, 4]",
    ));
    let (_, at) = (x1.avg_pool1d(Window::new(7).padding(1)), line!());
    cases.push((
        at,
        "avg_pool1d",
        "kernel 7 is larger than the padded input 6",
    ));
    let (_, at) = (x2.max_pool2d(Window::new(3).padding([1, 2])), line!());
    cases.push((at, "max_pool2d", "pad should be at most half"));
    let (_, at) = (x1.avg_pool1d(Window::new(2).padding(2)), line!());
    cases.push((at, "avg_pool1d", "at most half of effective kernel size"));
    let (_, at) = (x1.max_pool2d(2), line!());
    cases.push((at, "max_pool2d", "rank-4 input [N, C, H, W], got rank 3"));
    let (_, at) = (x2.avg_pool1d(2), line!());
    cases.push((at, "avg_pool1d", "rank-3 input [N, C, L], got rank 4"));
    let (_, at) = (x2.adaptive_avg_pool1d(1), line!());
    cases.push((at, "adaptive_avg_pool1d", "rank-3"));
    let (_, at) = (x1.adaptive_avg_pool2d(1), line!());
    cases.push((at, "adaptive_avg_pool2d", "rank-4"));
    let (_, at) = (x2.adaptive_avg_pool2d(2), line!());
    cases.push((at, "adaptive_avg_pool2d", "only an output size of 1"));
    let (_, at) = (g.input("e", [1, 2, 0]).max_pool1d(1), line!());
    cases.push((at, "max_pool1d", "must be positive"));
    let errs = g.inner.borrow().errors.clone();
    assert_eq!(errs.len(), cases.len(), "{errs:?}");
    for ((line, op, words), e) in cases.iter().zip(&errs) {
        match e {
            Error::Shape {
                op: got,
                caller,
                reason,
                ..
            } => {
                assert_eq!((*got, caller.line), (*op, *line), "{e}");
                assert!(caller.file.ends_with("tests.rs"), "{e}");
                assert!(reason.contains(words), "{e}");
            }
            other => panic!("expected a shape error, got {other:?}"),
        }
    }
    // the first comes back from the first fallible call
    let loss = x2.max_pool2d(0).sum();
    assert!(matches!(
        g.grad(loss, &[x2]),
        Err(Error::Shape {
            op: "max_pool2d",
            ..
        })
    ));
    // a run-time axis where pooling runs is refused; on N or C it is taken
    let g = Graph::<f32>::new();
    let t = g.input("t", (Dim::upto(4), 3, 5)).permute(&[1, 2, 0]);
    let _ = t.max_pool1d(2);
    let _ = t.adaptive_avg_pool1d(1);
    let c = g
        .input("c", (Dim::upto(4), 3, 5))
        .permute(&[1, 0, 2])
        .avg_pool1d(2);
    assert_eq!(
        (c.shape().dims(), c.shape().run_axis()),
        (&[3, 4, 2][..], Some(1))
    );
    let errs = g.inner.borrow().errors.clone();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs
        .iter()
        .all(|e| e.to_string().contains("run-time axis must be N or C")));
}
