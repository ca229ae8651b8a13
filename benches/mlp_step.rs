//! "mlp-step" (DESIGN.md, benchmark configurations): one training step of an MLP with
//! ReLU between layers, softmax cross-entropy (mean) and plain SGD (lr 0.01), in f32, on
//! fixed random inputs and labels. A step is feed + run (forward, loss, backward) + SGD
//! update.
//!
//! | id | layers               | batch |
//! |----|----------------------|-------|
//! | S  | 64-32-10             | 32    |
//! | M  | 784-128-10           | 64    |
//! | L  | 784-1024-1024-10     | 256   |
//!
//! `cargo bench --bench mlp_step` takes about a minute; add `-- --quick` for a rough
//! figure in seconds. Set `RAYON_NUM_THREADS=1` for the single-thread number.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tapegrad::ndarray::{Array1, Array2};
use tapegrad::prelude::*;
use tapegrad::rand::rngs::StdRng;
use tapegrad::rand::{Rng, SeedableRng};

struct Config {
    id: &'static str,
    widths: &'static [usize],
    batch: usize,
    /// Criterion's sample count and measurement time: fewer, longer samples for the
    /// heavy configurations, so the whole bench stays short.
    samples: usize,
    seconds: u64,
}

const CONFIGS: [Config; 3] = [
    Config {
        id: "S",
        widths: &[64, 32, 10],
        batch: 32,
        samples: 50,
        seconds: 3,
    },
    Config {
        id: "M",
        widths: &[784, 128, 10],
        batch: 64,
        samples: 30,
        seconds: 4,
    },
    Config {
        id: "L",
        widths: &[784, 1024, 1024, 10],
        batch: 256,
        samples: 10,
        seconds: 8,
    },
];

fn mlp_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("mlp-step");
    group.warm_up_time(Duration::from_secs(1));
    for cfg in &CONFIGS {
        let mut rng = StdRng::seed_from_u64(0);
        let (inputs, classes) = (cfg.widths[0], cfg.widths[cfg.widths.len() - 1]);

        let g = Graph::<f32>::new();
        let x = g.input("x", [cfg.batch, inputs]);
        let y = g.input("y", [cfg.batch]);
        let mut h = x;
        for (i, io) in cfg.widths.windows(2).enumerate() {
            if i > 0 {
                h = h.relu();
            }
            let w = g.param(
                &format!("w{i}"),
                init::kaiming_uniform(io, &mut rng).unwrap(),
            );
            let b = g.param(&format!("b{i}"), init::zeros([io[1]]).unwrap());
            h = h.matmul(w) + b;
        }
        let loss = h.cross_entropy(y);
        let params = g.params();
        let grads = g.grad(loss, &params).expect("grad");
        let mut m = g.compile(&[loss], &grads).expect("compile");
        let mut opt = Sgd::new(0.01);

        let xb = Array2::from_shape_fn((cfg.batch, inputs), |_| rng.random_range(-1.0..1.0));
        let yb = Array1::from_shape_fn(cfg.batch, |_| rng.random_range(0..classes) as f32);

        eprintln!(
            "mlp-step/{}: layers {:?}, batch {}, machine buffers {:.1} KiB",
            cfg.id,
            cfg.widths,
            cfg.batch,
            m.memory().buffers() as f64 / 1024.0
        );
        group
            .sample_size(cfg.samples)
            .measurement_time(Duration::from_secs(cfg.seconds));
        group.bench_function(cfg.id, |b| {
            b.iter(|| {
                m.feed(x, &xb).expect("feed x");
                m.feed(y, &yb).expect("feed y");
                m.run().expect("run");
                opt.step(&mut m, &grads).expect("sgd step");
                black_box(&mut m);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, mlp_step);
criterion_main!(benches);
