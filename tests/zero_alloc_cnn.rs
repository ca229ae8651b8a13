//! After the first run, a training step of LeNet-5 (the cnn-step configuration of
//! `examples/bench.rs`: convolutions, pooling, flatten, linear layers, cross-entropy, SGD)
//! allocates nothing, at 1 and 2 threads, with a run-time batch axis fed a different number
//! of rows each step. Counted as in `zero_alloc.rs` (the measuring thread's own
//! allocations, on a worker of a pool of 2 built here).

use rand::{Rng, SeedableRng};
use tapegrad::ndarray::{Axis, Slice};
use tapegrad::nn::{Conv2d, Linear, Module};
use tapegrad::ops::Conv2dOptions;
use tapegrad::prelude::*;
use tapegrad::Dim;

#[path = "common/counting.rs"]
mod counting;
use counting::thread_allocs;

fn lenet_allocations(batch: usize, threads: usize, steps: usize) -> usize {
    tapegrad::set_threads(threads);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(batch), 1, 28, 28));
    let y = g.input("y", Dim::upto(batch));
    let d = Conv2dOptions::default();
    let c1 = Conv2d::new(&g, "0", 1, 6, 5, d.padding(2), &mut rng);
    let c2 = Conv2d::new(&g, "3", 6, 16, 5, d, &mut rng);
    let f1 = Linear::new(&g, "7", 400, 120, &mut rng);
    let f2 = Linear::new(&g, "9", 120, 84, &mut rng);
    let f3 = Linear::new(&g, "11", 84, 10, &mut rng);
    let h = c1.forward(x).relu().max_pool2d(2);
    let h = c2.forward(h).relu().max_pool2d(2).flatten(1, -1);
    let logits = f3.forward(f2.forward(f1.forward(h).relu()).relu());
    let loss = logits.cross_entropy(y);
    let grads = g.grad(loss, &g.params()).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    let mut sgd = Sgd::new(0.01);
    let xb = ndarray::Array4::from_shape_fn((batch, 1, 28, 28), |_| rng.random_range(-1.0f32..1.0));
    let yb = ndarray::Array1::from_shape_fn(batch, |_| rng.random_range(0..10) as f32);
    let cycle = [batch, 1, batch / 2, 0, batch - 1, 3];
    let mut t = 0;
    let mut step = |m: &mut Machine<f32>| {
        let rows = cycle[t % cycle.len()];
        m.feed(x, &xb.slice_axis(Axis(0), Slice::from(..rows)))
            .unwrap();
        m.feed(y, &yb.slice_axis(Axis(0), Slice::from(..rows)))
            .unwrap();
        m.run().unwrap();
        sgd.step(m, &grads).unwrap();
        t += 1;
    };
    step(&mut m);
    let before = thread_allocs();
    for _ in 0..steps {
        step(&mut m);
    }
    let after = thread_allocs();
    assert!(m.item(loss).unwrap().is_finite());
    after - before
}

#[test]
fn lenet_steps_allocate_nothing() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.broadcast(|_| ());
    pool.install(|| {
        for threads in [1, 2] {
            assert_eq!(lenet_allocations(64, threads, 6), 0, "{threads} threads");
        }
        // the counter does count: building a graph allocates
        let before = thread_allocs();
        let g = Graph::<f32>::new();
        let _ = g.input("x", [2]).relu();
        assert!(thread_allocs() > before);
    });
}
