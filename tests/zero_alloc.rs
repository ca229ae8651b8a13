//! After the first run, `feed` + `run` + `Sgd::step` allocate nothing: checked with a
//! counting global allocator on the S and M mlp-step configurations of DESIGN.md, with
//! inputs whose batch axis is a run-time axis fed a different number of rows each step.
//!
//! Only the test's own thread and the kernels' worker threads (rayon's global pool, built
//! here with a start handler) are counted: the test harness's other threads allocate when
//! they like, and counting them made this test fail now and then.

use rand::{Rng, SeedableRng};
use tapegrad::ndarray::{Axis, Slice};
use tapegrad::nn::MlpBuilder;
use tapegrad::prelude::*;
use tapegrad::Dim;

#[path = "common/counting.rs"]
mod counting;
use counting::{join_pool, pool_allocs};

/// Allocations made by `steps` training steps of an MLP after one warm-up step, with
/// plain SGD, or (`full`) with dropout, Adam, gradient clipping and a schedule.
fn allocations_per_steps(
    sizes: &[usize],
    batch: usize,
    threads: usize,
    steps: usize,
    full: bool,
) -> usize {
    tapegrad::set_threads(threads);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(batch), sizes[0]));
    let y = g.input("y", Dim::upto(batch));
    let dropout = if full { 0.1 } else { 0.0 };
    let mlp = MlpBuilder::new(sizes).dropout(dropout);
    let h = mlp.build(&g, "mlp", &mut rng).forward(x);
    let loss = h.cross_entropy(y);
    let params = g.params();
    let grads = g.grad(loss, &params).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    let mut sgd = Sgd::new(0.01);
    let mut adam = Adam::new(1e-3);
    let sched = WarmupCosineLr::new(1e-3, 1e-5, 2, 100);
    let mut t = 0;
    let classes = sizes[sizes.len() - 1];
    let xb = ndarray::Array2::from_shape_fn((batch, sizes[0]), |_| rng.random_range(-1.0f32..1.0));
    let yb = ndarray::Array1::from_shape_fn(batch, |_| rng.random_range(0..classes) as f32);
    // every number of rows from the bound down, an empty batch among them
    let cycle = [batch, 1, batch / 2, 0, batch - 1, 3];
    let mut step = |m: &mut Machine<f32>| {
        let rows = cycle[t % cycle.len()];
        m.feed(x, &xb.slice_axis(Axis(0), Slice::from(..rows)))
            .unwrap();
        m.feed(y, &yb.slice_axis(Axis(0), Slice::from(..rows)))
            .unwrap();
        m.run().unwrap();
        if full {
            tapegrad::optim::clip_grad_norm(m, &grads, 1.0).unwrap();
            sched.apply(&mut adam, t).unwrap();
            adam.step(m, &grads).unwrap();
        } else {
            sgd.step(m, &grads).unwrap();
        }
        t += 1;
    };
    step(&mut m);
    let before = pool_allocs();
    for _ in 0..steps {
        step(&mut m);
    }
    let after = pool_allocs();
    assert!(m.rows() > 0 && m.item(loss).unwrap().is_finite());
    after - before
}

// One test function: the counter is global, and tests in one binary run on parallel
// threads by default.
#[test]
fn training_steps_allocate_nothing() {
    join_pool();
    // The kernels' workers count too. This binary has one test, so the pool is not built
    // yet; if it were, its workers would go uncounted, and the check below says so.
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .start_handler(|_| join_pool())
        .build_global();
    assert!(built.is_ok(), "rayon's global pool was built elsewhere");
    // Workers allocate as they start (their queues, their thread-locals), on their own
    // time: have each of them run a job first, so that is over before anything is counted.
    for _ in 0..2 {
        rayon::broadcast(|_| ());
    }
    for threads in [1, 2] {
        for full in [false, true] {
            let s = allocations_per_steps(&[64, 32, 10], 32, threads, 20, full);
            assert_eq!(s, 0, "S, {threads} threads, full {full}");
            let m = allocations_per_steps(&[784, 128, 10], 64, threads, 6, full);
            assert_eq!(m, 0, "M, {threads} threads, full {full}");
        }
    }
    // the counter does count: building a graph allocates
    let before = pool_allocs();
    let g = Graph::<f32>::new();
    let _ = g.input("x", [2]).relu();
    assert!(pool_allocs() > before);
    // and so do the pool's workers (a join from outside the pool runs on them)
    let before = pool_allocs();
    let (a, b) = rayon::join(|| vec![1u8; 64], || vec![2u8; 64]);
    assert_eq!((a.len(), b.len()), (64, 64));
    assert!(pool_allocs() >= before + 2);
}
