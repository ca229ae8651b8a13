//! The cnn-step benchmark: one SGD step of LeNet-5 on random 1×28×28 images, batch 64, f32:
//!
//! `cnn-step cfg=lenet threads=1 median_us=… peak_rss_kb=…`
//!
//! conv 1→6 k5 pad 2, ReLU, max-pool 2, conv 6→16 k5, ReLU, max-pool 2, flatten 400,
//! linear 120, ReLU, 84, ReLU, 10; mean cross-entropy; SGD lr 0.01.

use rand::{Rng, SeedableRng};
use tapegrad::nn::{Conv2d, Linear, Module};
use tapegrad::ops::Conv2dOptions;
use tapegrad::prelude::*;

use super::{median_secs, peak_rss_kb};

const BATCH: usize = 64;

/// LeNet-5's logits for `x` `[N, 1, 28, 28]`, its parameters named as PyTorch's
/// `Sequential` of the same layers would be.
pub fn lenet<'g>(g: &'g Graph<f32>, x: Tensor<'g, f32>, rng: &mut impl Rng) -> Tensor<'g, f32> {
    let d = Conv2dOptions::default();
    let c1 = Conv2d::new(g, "0", 1, 6, 5, d.padding(2), rng);
    let c2 = Conv2d::new(g, "3", 6, 16, 5, d, rng);
    let f1 = Linear::new(g, "7", 400, 120, rng);
    let f2 = Linear::new(g, "9", 120, 84, rng);
    let f3 = Linear::new(g, "11", 84, 10, rng);
    let h = c1.forward(x).relu().max_pool2d(2);
    let h = c2.forward(h).relu().max_pool2d(2).flatten(1, -1);
    f3.forward(f2.forward(f1.forward(h).relu()).relu())
}

/// One `cnn-step` line for `cfg` at `threads`.
pub fn run(cfg: &str, threads: usize) -> Result<(), Box<dyn std::error::Error>> {
    if cfg != "lenet" {
        return Err("unknown cnn configuration (use lenet)".into());
    }
    tapegrad::set_threads(threads);
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let g = Graph::<f32>::new();
    let x = g.input("x", [BATCH, 1, 28, 28]);
    let y = g.input("y", [BATCH]);
    let loss = lenet(&g, x, &mut rng).cross_entropy(y);
    let grads = g.grad(loss, &g.params())?;
    let mut m = g.compile(&[loss], &grads)?;
    let xb = ndarray::Array4::from_shape_fn((BATCH, 1, 28, 28), |_| rng.random_range(-1.0..1.0));
    let yb = ndarray::Array1::from_shape_fn(BATCH, |_| rng.random_range(0..10) as f32);
    let mut opt = Sgd::new(0.01);
    let median = median_secs(|| {
        m.feed(x, &xb)?;
        m.feed(y, &yb)?;
        m.run()?;
        opt.step(&mut m, &grads)
    })?;
    println!(
        "cnn-step cfg=lenet threads={threads} median_us={:.1} peak_rss_kb={}",
        median * 1e6,
        peak_rss_kb()
    );
    eprintln!(
        "  memory cfg=lenet: total {} B (scratch {} B); loss {:.4}",
        m.memory().total(),
        m.memory().scratch,
        m.item(loss)?
    );
    Ok(())
}
