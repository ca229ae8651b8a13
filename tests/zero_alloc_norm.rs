//! After the first step, `feed` + `run` + an optimizer step on a graph with batch norm
//! (its running statistics written back by the machine) and layer norm allocate nothing,
//! at a run-time batch fed a different number of rows each step (a binary of its own:
//! one test function, measured on its own thread; see tests/zero_alloc.rs).

use tapegrad::ndarray::{Array2, Array4, Axis, Slice};
use tapegrad::nn::{BatchNorm1d, BatchNorm2d, LayerNorm, Linear};
use tapegrad::prelude::*;
use tapegrad::rand::SeedableRng;

#[path = "common/counting.rs"]
mod counting;
use counting::thread_allocs;

fn norm_allocations(training: bool) -> usize {
    tapegrad::set_threads(1);
    let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(3);
    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(8), 2, 3, 3));
    let t = g.input("t", (Dim::upto(8), 4));
    let h = BatchNorm2d::new(&g, "bn2", 2).forward(x).relu();
    let h = h.flatten(1, 3);
    let h = Linear::new(&g, "fc", 18, 4, &mut rng).forward(h);
    let h = BatchNorm1d::new(&g, "bn1", 4).forward(h).tanh();
    let y = LayerNorm::new(&g, "ln", &[4]).forward(h);
    let loss = y.mse(t);
    let grads = g.grad(loss, &g.params()).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    m.set_training(training);
    let xb = Array4::from_shape_fn((8, 2, 3, 3), |(a, b, c, d)| {
        ((a * 7 + b * 5 + c * 3 + d) % 11) as f32 * 0.2
    });
    let tb = Array2::from_shape_fn((8, 4), |(a, b)| ((a + b) % 3) as f32 - 1.0);
    let mut sgd = Sgd::new(0.01);
    // batch norm trains on 2 rows or more
    let cycle = [8, 2, 5, 3, 7];
    let mut k = 0;
    let mut step = |m: &mut Machine<f32>| {
        let rows = cycle[k % cycle.len()];
        k += 1;
        m.feed(x, &xb.slice_axis(Axis(0), Slice::from(..rows)))
            .unwrap();
        m.feed(t, &tb.slice_axis(Axis(0), Slice::from(..rows)))
            .unwrap();
        m.run().unwrap();
        sgd.step(m, &grads).unwrap();
    };
    step(&mut m);
    let mean = m.handle_of("bn1.running_mean").unwrap();
    let first = m.value(mean).unwrap().to_owned();
    let before = thread_allocs();
    for _ in 0..10 {
        step(&mut m);
    }
    let after = thread_allocs();
    assert!(m.item(loss).unwrap().is_finite());
    // training moved the running statistics, evaluation did not
    assert_eq!(m.value(mean).unwrap() != first, training);
    after - before
}

#[test]
fn norm_training_steps_allocate_nothing() {
    assert_eq!(norm_allocations(true), 0, "training mode");
    assert_eq!(norm_allocations(false), 0, "evaluation mode");
    // the counter does count: building a graph allocates
    let before = thread_allocs();
    let g = Graph::<f32>::new();
    let _ = g.input("x", [2]).relu();
    assert!(thread_allocs() > before);
}
