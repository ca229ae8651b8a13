//! Gradients of gradients: `Graph::grad` appends ordinary ops, so its results can be
//! differentiated again. Checked against closed forms and against finite differences of
//! the first gradient.

use approx::{assert_abs_diff_eq, assert_relative_eq};
use ndarray::{arr1, arr2, Array2, ArrayD};
use tapegrad::check::gradcheck;
use tapegrad::prelude::*;

/// First and second derivative of `f` at each element of `xs` (an elementwise `f`, so
/// `d/dx sum f(x)` is `f'(x)` element by element).
fn first_and_second(
    xs: &[f64],
    f: impl for<'g> Fn(Tensor<'g, f64>) -> Tensor<'g, f64>,
) -> (Vec<f64>, Vec<f64>) {
    let g = Graph::<f64>::new();
    let x = g.param("x", arr1(xs));
    let d1 = g.grad(f(x).sum(), &[x]).unwrap()[0];
    let d2 = g.grad(d1.sum(), &[x]).unwrap()[0];
    let mut m = g.compile(&[d1, d2], &[]).unwrap();
    m.run().unwrap();
    let read = |t| m.value(t).unwrap().iter().copied().collect::<Vec<_>>();
    (read(d1), read(d2))
}

#[test]
fn second_derivative_of_cube_f64() {
    let xs = [-2.0, -0.5, 0.0, 1.0, 2.0, 3.5];
    for cube in [
        (|x: Tensor<'_, f64>| x * x * x) as fn(Tensor<'_, f64>) -> Tensor<'_, f64>,
        |x| x.powf(3.0),
    ] {
        let (d1, d2) = first_and_second(&xs, cube);
        for (i, &x) in xs.iter().enumerate() {
            // d/dx x^3 = 3x^2 (at x = 2: 12)
            assert_relative_eq!(d1[i], 3.0 * x * x, max_relative = 1e-12);
            // d2/dx2 x^3 = 6x (at x = 2: 12; at x = -0.5: -3)
            assert_relative_eq!(d2[i], 6.0 * x, max_relative = 1e-12);
        }
    }
}

#[test]
fn second_derivative_of_cube_at_literals() {
    let (_, d2) = first_and_second(&[2.0, -0.5, 3.5], |x| x * x * x);
    // d2/dx2 x^3 = 6x: 6*2 = 12, 6*(-0.5) = -3, 6*3.5 = 21
    assert_abs_diff_eq!(d2[0], 12.0, epsilon = 1e-12);
    assert_abs_diff_eq!(d2[1], -3.0, epsilon = 1e-12);
    assert_abs_diff_eq!(d2[2], 21.0, epsilon = 1e-12);
}

#[test]
fn second_and_third_derivative_of_cube_f32() {
    let xs = [-1.5f32, 0.25, 1.0, 2.0, 4.0];
    let g = Graph::<f32>::new();
    let x = g.param("x", arr1(&xs));
    let y = (x * x * x).sum();
    let d1 = g.grad(y, &[x]).unwrap()[0];
    let d2 = g.grad(d1.sum(), &[x]).unwrap()[0];
    let d3 = g.grad(d2.sum(), &[x]).unwrap()[0];
    let mut m = g.compile(&[y, d1, d2, d3], &[]).unwrap();
    m.run().unwrap();
    for (i, &x) in xs.iter().enumerate() {
        // d/dx x^3 = 3x^2 (at x = 4: 48)
        assert_relative_eq!(m.value(d1).unwrap()[[i]], 3.0 * x * x, max_relative = 1e-6);
        // d2/dx2 x^3 = 6x (at x = 4: 24)
        assert_relative_eq!(m.value(d2).unwrap()[[i]], 6.0 * x, max_relative = 1e-6);
        // d3/dx3 x^3 = 6
        assert_relative_eq!(m.value(d3).unwrap()[[i]], 6.0, max_relative = 1e-6);
    }
}

#[test]
fn second_derivative_of_tanh() {
    let xs = [-2.0, -0.7, 0.0, 0.3, 1.1, 2.5];
    let (d1, d2) = first_and_second(&xs, |x| x.tanh());
    for (i, &x) in xs.iter().enumerate() {
        let t = f64::tanh(x);
        // d/dx tanh = 1 - tanh^2
        assert_relative_eq!(d1[i], 1.0 - t * t, max_relative = 1e-12);
        // d2/dx2 tanh = -2 tanh (1 - tanh^2)
        assert_abs_diff_eq!(d2[i], -2.0 * t * (1.0 - t * t), epsilon = 1e-12);
    }
    // at x = 0: -2 * 0 * 1 = 0, and x = 0.3 is not 0 (the test can tell them apart)
    assert_abs_diff_eq!(d2[2], 0.0, epsilon = 1e-15);
    assert!(d2[3] < -0.5);
}

#[test]
fn second_derivative_of_sigmoid() {
    let xs = [-3.0, -1.0, 0.0, 0.4, 2.0, 5.0];
    let (d1, d2) = first_and_second(&xs, |x| x.sigmoid());
    for (i, &x) in xs.iter().enumerate() {
        let s = 1.0 / (1.0 + f64::exp(-x));
        // d/dx s = s (1 - s)
        assert_relative_eq!(d1[i], s * (1.0 - s), max_relative = 1e-12);
        // d2/dx2 s = s (1 - s) (1 - 2s)
        assert_abs_diff_eq!(d2[i], s * (1.0 - s) * (1.0 - 2.0 * s), epsilon = 1e-12);
    }
    // at x = 0: s = 1/2, so 1/4 * 1/2 * 0 = 0
    assert_abs_diff_eq!(d2[2], 0.0, epsilon = 1e-15);
}

/// Deterministic values in [-1, 1) from a seed: a small LCG, so the test has no extra
/// dependency and the same data on every platform.
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

fn array(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let n = shape.iter().product();
    ArrayD::from_shape_vec(shape.to_vec(), values(n, seed)).unwrap()
}

/// A 3-4-2 MLP with tanh and mean cross-entropy: the Hessian-vector product
/// `H v = d/dθ (∇L(θ) · v)` from differentiating the symbolic gradient matches the central
/// difference of the gradient `(∇L(θ + εv) − ∇L(θ − εv)) / 2ε`.
#[test]
fn hessian_vector_product_of_mlp_matches_finite_differences() {
    let shapes: [&[usize]; 4] = [&[3, 4], &[4], &[4, 2], &[2]];
    let theta: Vec<ArrayD<f64>> = (0..4).map(|i| array(shapes[i], 10 + i as u64)).collect();
    let v: Vec<ArrayD<f64>> = (0..4).map(|i| array(shapes[i], 20 + i as u64)).collect();

    let g = Graph::<f64>::new();
    let x = g.input("x", [5, 3]);
    let ids = g.input("ids", [5]);
    let names = ["w1", "b1", "w2", "b2"];
    let params: Vec<_> = (0..4)
        .map(|i| g.param(names[i], theta[i].clone()))
        .collect();
    let hidden = (x.matmul(params[0]) + params[1]).tanh();
    let loss = (hidden.matmul(params[2]) + params[3]).cross_entropy(ids);
    let grads = g.grad(loss, &params).unwrap();
    let gv = grads
        .tensors()
        .iter()
        .zip(&v)
        .map(|(&gr, vi)| (gr * g.constant(vi.clone())).sum())
        .reduce(|a, b| a + b)
        .unwrap();
    let hv = g.grad(gv, &params).unwrap();
    let mut outputs = vec![loss];
    outputs.extend(hv.tensors());
    let mut m = g.compile(&outputs, &grads).unwrap();
    m.feed(x, &array(&[5, 3], 30).mapv(|t| 2.0 * t)).unwrap();
    m.feed(ids, &arr1(&[0.0, 1.0, 1.0, 0.0, 1.0])).unwrap();
    m.run().unwrap();
    let hv_val: Vec<ArrayD<f64>> = hv
        .tensors()
        .iter()
        .map(|&t| m.value(t).unwrap().to_owned())
        .collect();

    let eps = 1e-5;
    let mut grad_at = |sign: f64| -> Vec<ArrayD<f64>> {
        for i in 0..4 {
            m.set_param(params[i], &(&theta[i] + &(&v[i] * (sign * eps))))
                .unwrap();
        }
        m.run().unwrap();
        grads
            .tensors()
            .iter()
            .map(|&t| m.value(t).unwrap().to_owned())
            .collect()
    };
    let plus = grad_at(1.0);
    let minus = grad_at(-1.0);
    let mut largest = 0.0f64;
    for i in 0..4 {
        // H v ≈ (∇L(θ + εv) − ∇L(θ − εv)) / 2ε, error O(ε²)
        let fd = (&plus[i] - &minus[i]) / (2.0 * eps);
        assert_eq!(fd.shape(), hv_val[i].shape());
        for (a, n) in hv_val[i].iter().zip(fd.iter()) {
            assert_abs_diff_eq!(*a, *n, epsilon = 1e-7);
            largest = largest.max(a.abs());
        }
    }
    // a zero Hessian would pass the comparison above trivially
    assert!(largest > 1e-3, "H v is suspiciously small: {largest}");
}

/// `P(x) = |∇ h(x)|²` with `h = sum(x³)`: `∇h = 3x²`, so `P = 9 Σ x⁴` and `dP/dx = 36 x³`.
#[test]
fn gradient_penalty_known_value() {
    let g = Graph::<f64>::new();
    let x = g.param("x", arr1(&[1.0, -2.0, 0.5]));
    let h = (x * x * x).sum();
    let dh = g.grad(h, &[x]).unwrap()[0];
    let penalty = dh.square().sum();
    let dp = g.grad(penalty, &[x]).unwrap()[0];
    let mut m = g.compile(&[penalty, dp], &[]).unwrap();
    m.run().unwrap();
    // P = 9 (1 + 16 + 1/16) = 153.5625
    assert_abs_diff_eq!(m.item(penalty).unwrap(), 153.5625, epsilon = 1e-12);
    let dp = m.value(dp).unwrap();
    // dP/dx = 36 x³: 36, -288, 4.5
    assert_abs_diff_eq!(dp[[0]], 36.0, epsilon = 1e-12);
    assert_abs_diff_eq!(dp[[1]], -288.0, epsilon = 1e-12);
    assert_abs_diff_eq!(dp[[2]], 4.5, epsilon = 1e-12);
}

/// A WGAN-GP-style critic loss: `D(x) = sum(tanh(x w) c)`, loss `= D(x) + (|∇ₓD|² − 1)²`,
/// checked by finite differences with respect to both the data `x` and the weights `w`.
#[test]
fn gradcheck_of_a_gradient_penalty() {
    let c = arr2(&[[0.5, -1.0, 0.25, 2.0], [1.5, 0.3, -0.7, 1.0]]);
    let w = array(&[3, 4], 40);
    let x = array(&[2, 3], 41);
    let report = gradcheck(&[x, w], move |g, t| {
        let critic = (t[0].matmul(t[1]).tanh() * g.constant(c.clone())).sum();
        let dx = g.grad(critic, &[t[0]]).unwrap()[0];
        let penalty = (dx.square().sum() - 1.0).square();
        critic + penalty
    })
    .unwrap();
    // every element of x [2, 3] and w [3, 4]
    assert_eq!(report.checked, 6 + 12);
}

/// The same check catches a penalty whose inner gradient is wrong: the finite differences
/// see the true function, so a detached inner gradient (second-order term dropped) fails.
#[test]
fn gradcheck_notices_a_dropped_second_order_term() {
    let x = arr1(&[0.3, -0.8, 1.2]).into_dyn();
    let e = gradcheck(&[x], |g, t| {
        let dh = g.grad(t[0].tanh().sum(), &[t[0]]).unwrap()[0];
        // treating ∇h as a constant drops d/dx of the penalty
        t[0].sum() + dh.detach().square().sum()
    })
    .unwrap_err();
    assert!(matches!(e, Error::GradCheck { .. }), "{e}");
}

#[test]
fn hessian_of_quadratic_form_is_symmetric_matrix() {
    // f(x) = xᵀ A x with A = [[2, 1], [0, 3]]: ∇f = (A + Aᵀ) x, H = A + Aᵀ = [[4, 1], [1, 6]]
    let a = arr2(&[[2.0, 1.0], [0.0, 3.0]]);
    let g = Graph::<f64>::new();
    let x = g.param(
        "x",
        Array2::from_shape_vec((2, 1), vec![0.7, -1.3]).unwrap(),
    );
    let f = x.t().matmul(g.constant(a)).matmul(x).sum();
    let grad = g.grad(f, &[x]).unwrap()[0];
    // row k of H = ∇ (∂f/∂x_k), picked out with a one-hot seed
    let rows: Vec<_> = (0..2)
        .map(|k| {
            let mut e = Array2::zeros((2, 1));
            e[[k, 0]] = 1.0;
            g.grad((grad * g.constant(e)).sum(), &[x]).unwrap()[0]
        })
        .collect();
    let mut outputs = vec![grad];
    outputs.extend(&rows);
    let mut m = g.compile(&outputs, &[]).unwrap();
    m.run().unwrap();
    let h: Vec<Vec<f64>> = rows
        .iter()
        .map(|&r| m.value(r).unwrap().iter().copied().collect())
        .collect();
    let want = [[4.0, 1.0], [1.0, 6.0]]; // H = A + Aᵀ
    for k in 0..2 {
        for j in 0..2 {
            assert_abs_diff_eq!(h[k][j], want[k][j], epsilon = 1e-12);
        }
    }
    // ∇f = [[4, 1], [1, 6]] · [0.7, -1.3] = [1.5, -7.1]
    let gr = m.value(grad).unwrap();
    assert_abs_diff_eq!(gr[[0, 0]], 1.5, epsilon = 1e-12);
    assert_abs_diff_eq!(gr[[1, 0]], -7.1, epsilon = 1e-12);
}

/// The gradient of a linear function is constant, so its own gradient is zero: gradcheck
/// should pass (analytic 0, numeric 0).
#[test]
fn gradcheck_of_a_constant_gradient() {
    let x = arr1(&[0.5, -1.0, 2.0]).into_dyn();
    // d/dx sum(3x) = 3 everywhere; d/dx of that = 0
    let report = gradcheck(&[x], |g, t| g.grad((t[0] * 3.0).sum(), &[t[0]]).unwrap()[0]);
    assert_eq!(report.unwrap().checked, 3);
}

/// The same bug without second order: an input the function ignores has gradient zero.
#[test]
fn gradcheck_with_an_unused_input() {
    let x = arr1(&[0.5, -1.0]).into_dyn();
    let unused = arr1(&[1.0, 2.0, 3.0]).into_dyn();
    // d/dx sum(x²) = 2x; d/d(unused) = 0
    let report = gradcheck(&[x, unused], |_, t| t[0].square().sum());
    assert_eq!(report.unwrap().checked, 2 + 3);
}
