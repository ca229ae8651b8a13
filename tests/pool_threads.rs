//! Pooling results are bit-identical at 1 and 2 threads: the kernels split whole planes,
//! each computed by the same instructions whatever the split (a binary of its own:
//! `set_threads` is global).

use tapegrad::ndarray::Array4;
use tapegrad::ops::Window;
use tapegrad::prelude::*;
use tapegrad::rand::{Rng, SeedableRng};

/// The loss, and the gradient of `loss + |d loss / dx|^2` in `x`, of LeNet-sized pools
/// (the fast kernels, and general windows) with every pooling op and its gradients
/// (the penalty runs the gradients' VJPs), on a batch large enough to split.
fn values(threads: usize) -> Vec<u32> {
    tapegrad::set_threads(threads);
    let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(11);
    let g = Graph::<f32>::new();
    // few distinct values: ties in many windows, so the arg-max rule matters
    let xv = Array4::from_shape_fn((64, 6, 28, 28), |_| rng.random_range(0..5) as f32 * 0.5);
    let x = g.param("x", xv);
    let a = x.max_pool2d(2); // 14 x 14, fast
    let b = x.avg_pool2d(Window::new(3).stride(2).padding(1)); // 14 x 14, general
    let c = (a * b).avg_pool2d(2).max_pool2d(Window::new(3).stride(2)); // 7 x 7, 3 x 3
    let loss = c.square().mean() + a.max_pool2d(Window::new(2).stride(1)).mean();
    let dx = g.grad(loss, &[x]).unwrap()[0];
    let grads = g.grad(loss + dx.square().sum(), &[x]).unwrap();
    let mut m = g.compile(&[loss, dx], &grads).unwrap();
    m.run().unwrap();
    let mut out = vec![m.item(loss).unwrap().to_bits()];
    out.extend(m.value(dx).unwrap().iter().map(|v| v.to_bits()));
    out.extend(m.value(grads[0]).unwrap().iter().map(|v| v.to_bits()));
    out
}

#[test]
fn one_and_two_threads_agree_bit_for_bit() {
    let one = values(1);
    let two = values(2);
    tapegrad::set_threads(0);
    assert_eq!(one.len(), two.len());
    let differ = one.iter().zip(&two).filter(|(a, b)| a != b).count();
    assert_eq!(differ, 0, "{differ} of {} values differ", one.len());
    // the gradients are not all zero: the comparison compares something
    assert!(one[1..].iter().any(|&v| f32::from_bits(v) != 0.0));
}
