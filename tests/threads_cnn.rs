//! A LeNet-5 step (convolutions, pooling, linear layers) computes the same bits at 1 and 2
//! threads: the convolutions split the batch into whole samples, and the weight
//! gradient sums the samples' products in one order whatever the split.

use rand::{Rng, SeedableRng};
use tapegrad::nn::{Conv2d, Linear, Module};
use tapegrad::ops::Conv2dOptions;
use tapegrad::prelude::*;

/// Loss and every gradient of one step on a batch of 64, large enough that the
/// convolutions split over threads when allowed.
fn step_values(threads: usize) -> Vec<Vec<f32>> {
    tapegrad::set_threads(threads);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let g = Graph::<f32>::new();
    let x = g.input("x", [64, 1, 28, 28]);
    let y = g.input("y", [64]);
    let d = Conv2dOptions::default();
    let c1 = Conv2d::new(&g, "0", 1, 6, 5, d.padding(2), &mut rng);
    let c2 = Conv2d::new(&g, "3", 6, 16, 5, d, &mut rng);
    let fc = Linear::new(&g, "7", 400, 10, &mut rng);
    let h = c1.forward(x).relu().max_pool2d(2);
    let h = c2.forward(h).relu().max_pool2d(2).flatten(1, -1);
    let loss = fc.forward(h).cross_entropy(y);
    // the input's gradient too, so the input-gradient kernel runs
    let mut wrt = g.params();
    wrt.push(x);
    let grads = g.grad(loss, &wrt).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    let xb = ndarray::Array4::from_shape_fn((64, 1, 28, 28), |_| rng.random_range(-1.0f32..1.0));
    let yb = ndarray::Array1::from_shape_fn(64, |_| rng.random_range(0..10) as f32);
    m.feed(x, &xb).unwrap();
    m.feed(y, &yb).unwrap();
    m.run().unwrap();
    let mut out = vec![vec![m.item(loss).unwrap()]];
    for (_, gr) in &grads {
        out.push(m.value(gr).unwrap().iter().copied().collect());
    }
    out
}

#[test]
fn lenet_one_and_two_threads_agree_bit_for_bit() {
    let one = step_values(1);
    let two = step_values(2);
    assert_eq!(one.len(), two.len());
    for (a, b) in one.iter().zip(&two) {
        let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same && a.len() == b.len());
    }
    assert!(one[0][0].is_finite() && one[0][0] > 0.0);
    // a gradient that is all zeros would agree trivially
    assert!(one.iter().skip(1).all(|g| g.iter().any(|&v| v != 0.0)));
}
