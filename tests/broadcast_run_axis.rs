//! Broadcasting and thin or packed products on a run-time axis, checked against ndarray
//! at every row count from the bound down to 0 and back, on one machine: the
//! broadcasting row walk (an operand's rows found per output row, in-place outputs), and
//! products that are packed at the bound but thin (no scratch) at fewer rows.

use tapegrad::ndarray::{ArrayD, Ix2, IxDyn};
use tapegrad::prelude::*;
use tapegrad::Shape;

/// Deterministic values in [-1, 1).
fn values(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    })
}

#[test]
fn broadcasting_against_a_run_time_axis_at_every_row_count() {
    // (bound, x's extents after its rows, the parameter's shape)
    let cases: [(usize, &[usize], &[usize]); 6] = [
        (4, &[1], &[1, 3]),    // [n, 1] + [1, 3]: columns against a row
        (4, &[1, 3], &[4, 1]), // [n, 1, 3] + [4, 1]
        (1, &[3], &[1, 3]),    // bound 1: full-size at the bound, in place
        (1, &[3], &[3]),
        (1, &[1], &[3]), // [n, 1] + [3]: a scalar at the bound
        (2, &[2, 1], &[3]),
    ];
    for (bound, rest, ps) in cases {
        for swap in [false, true] {
            let g = Graph::<f64>::new();
            let x = g.input("x", Shape::upto(bound, rest));
            let p = g.param("p", values(ps, 3));
            // the sum and product read `p` twice; `p - x` puts the small operand first
            let y = if swap { (p - x) * 1.0 } else { x * p + p };
            let mut m = g.compile(&[y], &[]).unwrap();
            for n in (0..=bound).rev().chain(0..=bound) {
                let mut shape = vec![n];
                shape.extend(rest);
                let xv = values(&shape, n as u64);
                m.feed(x, &xv).unwrap();
                m.run().unwrap();
                let pv = values(ps, 3);
                let want = if swap { &pv - &xv } else { &(&xv * &pv) + &pv };
                assert_eq!(
                    m.value(y).unwrap().to_owned(),
                    want,
                    "bound {bound}, x [{n}, {rest:?}], p {ps:?}, swap {swap}"
                );
            }
        }
    }
}

#[test]
fn products_packed_at_the_bound_and_thin_below_it() {
    // (bound, k, n): m * k above the thin limit for few columns at the bound only
    for (bound, k, n) in [
        (1000, 20, 3),
        (40, 20, 3),
        (10, 5, 5),
        (9, 4, 1),
        (600, 30, 2),
    ] {
        let g = Graph::<f64>::new();
        let x = g.input("x", (Dim::upto(bound), k));
        let w = g.param("w", values(&[k, n], 7));
        let y = x.matmul(w);
        let loss = (y * y).sum();
        let grads = g.grad(loss, &[w]).unwrap();
        let mut m = g.compile(&[y], &grads).unwrap();
        let w2 = values(&[k, n], 7).into_dimensionality::<Ix2>().unwrap();
        for rows in [bound, 0, 1, 4, 5, bound / 2, bound - 1, bound] {
            let xv = values(&[rows, k], rows as u64);
            m.feed(x, &xv).unwrap();
            m.run().unwrap();
            let x2 = xv.into_dimensionality::<Ix2>().unwrap();
            let want = x2.dot(&w2);
            // d/dw sum((x w)^2) = 2 x^T (x w)
            let want_grad = x2.t().dot(&want) * 2.0;
            let got = m.value(y).unwrap().to_owned();
            let got_grad = m.value(grads[0]).unwrap().to_owned();
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    (a - b).abs() < 1e-12,
                    "{bound} {k} {n}, {rows} rows: {a} {b}"
                );
            }
            for (a, b) in got_grad.iter().zip(&want_grad) {
                assert!(
                    (a - b).abs() < 1e-9 * (1.0 + b.abs()),
                    "grad {bound} {k} {n}, {rows} rows: {a} {b}"
                );
            }
            assert_eq!(got.len(), rows * n);
        }
    }
}
