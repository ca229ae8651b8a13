//! After the first run, `feed` + `run` + `Sgd::step` allocate nothing: checked with a
//! counting global allocator on the S and M mlp-step configurations of DESIGN.md, with
//! inputs whose batch axis is a run-time axis fed a different number of rows each step.
//!
//! Only the measuring thread's own allocations are counted (a per-thread counter), so no
//! other thread (the harness's, rayon's workers waking, sleeping or stealing) can disturb
//! the figure. The measuring thread is a worker of a pool of 2 built here: a kernel's
//! `join` then pushes onto that worker's own deque. From a thread outside the pool, every
//! `join` is injected into the pool's global queue, which allocates a new block every 63
//! jobs (crossbeam's `Injector`): whether a block boundary fell inside the measured steps
//! depended on how many jobs ran before, so on another CPU's blocking (NEON under
//! qemu-aarch64) the same test counted an allocation that was not the library's.

use rand::{Rng, SeedableRng};
use tapegrad::ndarray::{Axis, Slice};
use tapegrad::nn::MlpBuilder;
use tapegrad::prelude::*;
use tapegrad::Dim;

#[path = "common/counting.rs"]
mod counting;
use counting::thread_allocs;

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
    let before = thread_allocs();
    for _ in 0..steps {
        step(&mut m);
    }
    let after = thread_allocs();
    assert!(m.rows() > 0 && m.item(loss).unwrap().is_finite());
    after - before
}

// One test function per binary: `set_threads` is global.
#[test]
fn training_steps_allocate_nothing() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    // Workers allocate as they start (their queues, their thread-locals): have each run a
    // job first, so that is over before anything is measured.
    pool.broadcast(|_| ());
    pool.install(|| {
        assert_eq!(rayon::current_num_threads(), 2);
        for threads in [1, 2] {
            for full in [false, true] {
                let s = allocations_per_steps(&[64, 32, 10], 32, threads, 20, full);
                assert_eq!(s, 0, "S, {threads} threads, full {full}");
                let m = allocations_per_steps(&[784, 128, 10], 64, threads, 6, full);
                assert_eq!(m, 0, "M, {threads} threads, full {full}");
            }
        }
        // the counter does count: building a graph allocates
        let before = thread_allocs();
        let g = Graph::<f32>::new();
        let _ = g.input("x", [2]).relu();
        assert!(thread_allocs() > before);
    });
}
