//! Pooling kernels on the shapes of LeNet-5's two pooling layers (`[64, 6, 28, 28]` and
//! `[64, 16, 10, 10]`, kernel 2), in f32: the forward pass alone, and forward plus the
//! gradient of `sum(y)` with respect to the input, at 1 and 2 threads.
//!
//! `cargo bench --bench pool -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tapegrad::ndarray::Array4;
use tapegrad::prelude::*;
use tapegrad::rand::rngs::StdRng;
use tapegrad::rand::{Rng, SeedableRng};

const SHAPES: [[usize; 4]; 2] = [[64, 6, 28, 28], [64, 16, 10, 10]];

fn pool(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool");
    for dims in SHAPES {
        let mut rng = StdRng::seed_from_u64(0);
        let xv = Array4::from_shape_fn(dims, |_| rng.random_range(-1.0f32..1.0));
        for max in [true, false] {
            for backward in [false, true] {
                let g = Graph::<f32>::new();
                let x = g.param("x", xv.clone());
                let y = if max {
                    x.max_pool2d(2)
                } else {
                    x.avg_pool2d(2)
                };
                let mut m = if backward {
                    let grads = g.grad(y.sum(), &[x]).expect("grad");
                    g.compile(&[y], &grads).expect("compile")
                } else {
                    g.compile(&[y], &[]).expect("compile")
                };
                for threads in [1, 2] {
                    let id = format!(
                        "{}_{}/{dims:?}/t{threads}",
                        if max { "max" } else { "avg" },
                        if backward { "fwd_bwd" } else { "fwd" },
                    );
                    group.bench_function(id, |b| {
                        tapegrad::set_threads(threads);
                        b.iter(|| {
                            m.run().expect("run");
                            black_box(&mut m);
                        })
                    });
                }
            }
        }
    }
    tapegrad::set_threads(0);
    group.finish();
}

criterion_group!(benches, pool);
criterion_main!(benches);
