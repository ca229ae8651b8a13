//! After the first step, `feed` + `run` + an optimizer step through every pooling op
//! (forward, gradient, and the gradient of a gradient) allocate nothing, with the batch
//! a run-time axis fed a different number of rows each step (a binary of its own: one
//! test function, measured on its own thread; see tests/zero_alloc.rs), at 1 and 2
//! threads.

use tapegrad::ndarray::{Array1, Array4, Axis, Slice};
use tapegrad::nn::{AdaptiveAvgPool2d, Flatten, Linear, MaxPool2d, Module};
use tapegrad::ops::Window;
use tapegrad::prelude::*;
use tapegrad::rand::SeedableRng;

#[path = "common/counting.rs"]
mod counting;
use counting::thread_allocs;

fn pool_allocations(adam: bool) -> usize {
    tapegrad::set_threads(1);
    let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(3);
    let g = Graph::<f32>::new();
    let batch = 6;
    let x = g.input("x", (Dim::upto(batch), 2, 9, 9));
    let y = g.input("y", Dim::upto(batch));
    let scale = g.param("scale", Array4::from_elem((1, 2, 1, 1), 1.5f32));
    let h = (x * scale).tanh();
    // 2-D max and avg pools (padded, stride != kernel), the 1-D ones over a reshape
    let a = MaxPool2d::new(Window::new(3).stride(2).padding(1)).forward(h); // 5 x 5
    let b = a.avg_pool2d(Window::new(2).stride(1).padding(1)); // 6 x 6
    let c = b
        .reshape((Dim::upto(batch), 2, 36))
        .max_pool1d(Window::new(4).stride(3));
    let d = c
        .avg_pool1d(Window::new(3).padding(1))
        .adaptive_avg_pool1d(1); // [N, 2, 1]
    let e = AdaptiveAvgPool2d::new(1)
        .forward(b)
        .reshape((Dim::upto(batch), 2, 1));
    let features = Flatten::new().forward(d + e);
    let logits = Linear::new(&g, "fc", 2, 3, &mut rng).forward(features);
    let loss = logits.cross_entropy(y);
    let params = g.params();
    // a gradient penalty: the gradient's own gradient runs every pooling VJP's VJP
    let dx = g.grad(loss, &[scale]).unwrap()[0];
    let grads = g.grad(loss + dx.square().sum(), &params).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    let xb = Array4::from_shape_fn((batch, 2, 9, 9), |(n, c, i, j)| {
        ((n * 7 + c * 5 + i * 3 + j) % 11) as f32 * 0.1 - 0.5
    });
    let yb = Array1::from_shape_fn(batch, |n| (n % 3) as f32);
    let cycle = [batch, 1, 3, 0, batch - 1];
    let mut t = 0;
    let mut sgd = Sgd::new(0.01);
    let mut opt = Adam::new(1e-3);
    let mut step = |m: &mut Machine<f32>| {
        let rows = cycle[t % cycle.len()];
        m.feed(x, &xb.slice_axis(Axis(0), Slice::from(..rows)))
            .unwrap();
        m.feed(y, &yb.slice_axis(Axis(0), Slice::from(..rows)))
            .unwrap();
        m.run().unwrap();
        if adam {
            opt.step(m, &grads).unwrap();
        } else {
            sgd.step(m, &grads).unwrap();
        }
        t += 1;
    };
    step(&mut m);
    let before = thread_allocs();
    for _ in 0..10 {
        step(&mut m);
    }
    let after = thread_allocs();
    assert!(m.rows() > 0 && m.item(loss).unwrap().is_finite());
    after - before
}

/// The same for LeNet's pools (kernel 2, stride 2: the fast kernels) on a batch large
/// enough that they split over `threads`, the batch again a run-time axis.
fn tiling_allocations(threads: usize) -> usize {
    tapegrad::set_threads(threads);
    let g = Graph::<f32>::new();
    let batch = 16;
    let x = g.input("x", (Dim::upto(batch), 6, 28, 28));
    let scale = g.param("scale", Array4::from_elem((1, 6, 1, 1), 1.5f32));
    let a = (x * scale).tanh().max_pool2d(2); // 14 x 14
    let b = a.avg_pool2d(2).max_pool2d(Window::new(3).stride(3)); // 7 x 7, 2 x 2
    let loss = b.square().mean();
    let dx = g.grad(loss, &[scale]).unwrap()[0];
    let grads = g.grad(loss + dx.square().sum(), &[scale]).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    let xb = Array4::from_shape_fn((batch, 6, 28, 28), |(n, c, i, j)| {
        ((n * 7 + c * 5 + i * 3 + j) % 11) as f32 * 0.1 - 0.5
    });
    let cycle = [batch, 1, 9, batch - 1];
    let mut sgd = Sgd::new(0.01);
    let mut step = |m: &mut Machine<f32>, t: usize| {
        let rows = cycle[t % cycle.len()];
        m.feed(x, &xb.slice_axis(Axis(0), Slice::from(..rows)))
            .unwrap();
        m.run().unwrap();
        sgd.step(m, &grads).unwrap();
    };
    step(&mut m, 0);
    let before = thread_allocs();
    for t in 1..9 {
        step(&mut m, t);
    }
    let after = thread_allocs();
    assert!(m.item(loss).unwrap().is_finite());
    after - before
}

// One test function per binary: `set_threads` is global. The measuring thread is a worker
// of a pool of 2 built here, as in tests/zero_alloc.rs (a `join` from outside the pool
// allocates in rayon's injector, not in the library).
#[test]
fn pooling_training_steps_allocate_nothing() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.broadcast(|_| ());
    pool.install(|| {
        assert_eq!(pool_allocations(false), 0, "pooling, SGD");
        assert_eq!(pool_allocations(true), 0, "pooling, Adam");
        for threads in [1, 2] {
            assert_eq!(
                tiling_allocations(threads),
                0,
                "kernel 2, {threads} threads"
            );
        }
        // the counter does count: building a graph allocates
        let before = thread_allocs();
        let g = Graph::<f32>::new();
        let _ = g.input("x", [1, 1, 2, 2]).max_pool2d(2);
        assert!(thread_allocs() > before);
    });
}
