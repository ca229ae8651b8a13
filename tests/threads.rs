//! Results are bit-identical whatever the thread count: kernels split work so that each
//! element is computed by the same instructions in the same order, and so are the
//! optimizers' updates.

use rand::{Rng, SeedableRng};
use tapegrad::prelude::*;

/// Loss and every gradient of one step of a 300-512-10 MLP on a batch of 256: large enough
/// that the GEMMs and elementwise kernels go parallel when allowed; then the parameters
/// after five steps of SGD and Adam.
fn step_values(threads: usize) -> Vec<Vec<f32>> {
    tapegrad::set_threads(threads);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let g = Graph::<f32>::new();
    let x = g.input("x", [256, 300]);
    let y = g.input("y", [256]);
    let w1 = g.param("w1", init::kaiming_uniform([300, 512], &mut rng).unwrap());
    let b1 = g.param("b1", init::uniform([512], -0.1, 0.1, &mut rng).unwrap());
    let w2 = g.param("w2", init::kaiming_uniform([512, 10], &mut rng).unwrap());
    let loss = ((x.matmul(w1) + b1).tanh() * 2.0)
        .relu()
        .matmul(w2)
        .cross_entropy(y);
    let params = g.params();
    let grads = g.grad(loss, &params).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    let xb = ndarray::Array2::from_shape_fn((256, 300), |_| rng.random_range(-1.0f32..1.0));
    let yb = ndarray::Array1::from_shape_fn(256, |_| rng.random_range(0..10) as f32);
    m.feed(x, &xb).unwrap();
    m.feed(y, &yb).unwrap();
    m.run().unwrap();
    let mut out = vec![vec![m.item(loss).unwrap()]];
    for (_, gr) in &grads {
        out.push(m.value(gr).unwrap().iter().copied().collect());
    }
    // Then the optimizers' updates, which split a parameter of 2^16 elements or more (w1:
    // 153,600) over the threads: plain SGD with weight decay, two steps with momentum and
    // two of Adam (AdamW's update is Adam's).
    Sgd::new(0.05)
        .weight_decay(1e-3)
        .step(&mut m, &grads)
        .unwrap();
    let mut momentum = Sgd::new(0.05).momentum(0.9).nesterov(true);
    let mut adam = Adam::new(1e-3).weight_decay(1e-2);
    for k in 0..4 {
        m.run().unwrap();
        if k < 2 {
            momentum.step(&mut m, &grads).unwrap();
        } else {
            adam.step(&mut m, &grads).unwrap();
        }
    }
    for p in &params {
        out.push(m.value(p).unwrap().iter().copied().collect());
    }
    out
}

#[test]
fn one_and_two_threads_agree_bit_for_bit() {
    let one = step_values(1);
    let two = step_values(2);
    assert_eq!(one.len(), two.len());
    for (a, b) in one.iter().zip(&two) {
        let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same && a.len() == b.len());
    }
    assert!(one[0][0].is_finite() && one[0][0] > 0.0);
}
