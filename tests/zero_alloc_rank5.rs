//! After the first step, `run` + an optimizer step on a rank-5 graph allocate nothing
//! (a binary of its own: one test function, measured on its own thread; see
//! tests/zero_alloc.rs).

use tapegrad::ndarray::{ArrayD, IxDyn};
use tapegrad::prelude::*;

#[path = "common/counting.rs"]
mod counting;
use counting::thread_allocs;

fn rank5_allocations(adam: bool) -> usize {
    tapegrad::set_threads(1);
    let g = Graph::<f32>::new();
    let dims = [2, 3, 2, 3, 4];
    let w = g.param(
        "w",
        ArrayD::from_shape_fn(IxDyn(&dims), |i| (i[4] as f32 - 1.5) * 0.1),
    );
    let x = g.input("x", dims);
    // broadcasting over the first axes and a reduction over two of them, at rank 5
    let b = g.param("b", ArrayD::from_elem(IxDyn(&[3, 4]), 0.1f32));
    let h = (x * w + b).tanh();
    // movement ops at rank 5 too (they went through ndarray's views, whose dimensions
    // past rank 4 are on the heap)
    let moved = h.permute(&[4, 3, 2, 1, 0]).narrow(0, 1, 2).pad(1, 1, 0);
    let loss = h.sum() + h.sum_axes(&[1, 3], false).square().mean() + moved.tanh().sum();
    let grads = g.grad(loss, &[w, b]).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    let data = ArrayD::from_shape_fn(IxDyn(&dims), |i| (i[0] + i[2]) as f32 * 0.25);
    let mut sgd = Sgd::new(0.01);
    let mut opt = Adam::new(1e-3);
    let mut step = |m: &mut Machine<f32>| {
        m.feed(x, &data).unwrap();
        m.run().unwrap();
        if adam {
            opt.step(m, &grads).unwrap();
        } else {
            sgd.step(m, &grads).unwrap();
        }
    };
    step(&mut m);
    let before = thread_allocs();
    for _ in 0..10 {
        step(&mut m);
    }
    let after = thread_allocs();
    assert!(m.item(loss).unwrap().is_finite());
    after - before
}

#[test]
fn rank5_training_steps_allocate_nothing() {
    assert_eq!(rank5_allocations(false), 0, "rank 5, SGD");
    assert_eq!(rank5_allocations(true), 0, "rank 5, Adam");
    // the counter does count: a rank-5 array allocates its data and its dimensions
    let before = thread_allocs();
    let a = ArrayD::<f32>::zeros(IxDyn(&[1, 2, 1, 2, 1]));
    assert!(thread_allocs() >= before + 2, "{a}");
}
