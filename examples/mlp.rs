//! Two moons: train a 2-32-32-2 ReLU MLP with mini-batch SGD, then measure accuracy on
//! held-out points with a second machine compiled from the same graph.
//!
//! ```text
//! cargo run --release --example mlp
//! ```
//!
//! Exits with status 1 if the held-out accuracy is below 97%.

use std::time::Instant;

use tapegrad::ndarray::{Array1, Array2, ArrayView2, Axis};
use tapegrad::prelude::*;
use tapegrad::rand::rngs::StdRng;
use tapegrad::rand::seq::SliceRandom;
use tapegrad::rand::{Rng, SeedableRng};

const POINTS: usize = 1000;
const NOISE: f64 = 0.1;
const TRAIN: usize = 800;
const TEST: usize = POINTS - TRAIN;
const BATCH: usize = 32;
const HIDDEN: usize = 32;
const EPOCHS: usize = 60;
const LR: f64 = 0.1;
const TARGET: f64 = 0.97;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let mut rng = StdRng::seed_from_u64(42);

    let (points, labels) = two_moons(POINTS, NOISE, &mut rng);
    let mut order: Vec<usize> = (0..POINTS).collect();
    order.shuffle(&mut rng);
    let (train, test) = order.split_at(TRAIN);

    // One graph, two entry points sharing the parameters: a training batch and the whole
    // test set. Each machine compiles only the nodes its outputs need.
    let g = Graph::<f32>::new();
    let x = g.input("x", [BATCH, 2]);
    let y = g.input("y", [BATCH]);
    let x_test = g.input("x_test", [TEST, 2]);
    let widths = [2, HIDDEN, HIDDEN, 2];
    let layers: Vec<_> = widths
        .windows(2)
        .enumerate()
        .map(|(i, io)| {
            let w = g.param(&format!("w{i}"), init::kaiming_uniform(io, &mut rng));
            let b = g.param(&format!("b{i}"), init::zeros([io[1]]));
            (w, b)
        })
        .collect();
    let loss = mlp(x, &layers).cross_entropy(y);
    let test_logits = mlp(x_test, &layers);
    let params = g.params();
    let grads = g.grad(loss, &params)?;

    let mut m = g.compile(&[loss], &grads)?;
    let mut opt = Sgd::new(LR);
    let mut xb = Array2::<f32>::zeros((BATCH, 2));
    let mut yb = Array1::<f32>::zeros(BATCH);
    let mut shuffled = train.to_vec();
    for epoch in 1..=EPOCHS {
        shuffled.shuffle(&mut rng);
        let mut total = 0.0;
        let mut steps = 0;
        // Every batch must have the shape the graph was built with, so a last partial
        // batch is dropped (800 = 25 x 32: there is none here). Each epoch reshuffles, so
        // no point would be left out every time.
        for batch in shuffled.chunks_exact(BATCH) {
            for (row, &i) in batch.iter().enumerate() {
                xb.row_mut(row).assign(&points.row(i));
                yb[row] = labels[i];
            }
            m.feed(x, &xb)?;
            m.feed(y, &yb)?;
            m.run()?;
            opt.step(&mut m, &grads)?;
            total += m.scalar(loss)?;
            steps += 1;
        }
        println!("epoch {epoch:3}  loss {:.4}", total / steps as f32);
    }

    let mut eval = g.compile(&[test_logits], &[])?;
    eval.copy_params_from(&m)?;
    eval.feed(x_test, &points.select(Axis(0), test))?;
    eval.run()?;
    let logits = eval.value(test_logits)?;
    let predicted = argmax_rows(logits.into_dimensionality()?);
    let correct = test
        .iter()
        .zip(&predicted)
        .filter(|(&i, &p)| labels[i] == p as f32)
        .count();
    let accuracy = correct as f64 / TEST as f64;
    println!("test accuracy {:.1}% ({correct}/{TEST})", 100.0 * accuracy);
    println!(
        "wall time {:.2?} (data, training, evaluation)",
        start.elapsed()
    );
    if accuracy < TARGET {
        eprintln!(
            "error: test accuracy {:.1}% is below the {:.0}% target",
            100.0 * accuracy,
            100.0 * TARGET
        );
        std::process::exit(1);
    }
    Ok(())
}

/// Affine layers with ReLU between them; the last layer's output is the logits.
fn mlp<'g>(x: Tensor<'g, f32>, layers: &[(Tensor<'g, f32>, Tensor<'g, f32>)]) -> Tensor<'g, f32> {
    let mut h = x;
    for (i, &(w, b)) in layers.iter().enumerate() {
        if i > 0 {
            h = h.relu();
        }
        h = h.matmul(w) + b;
    }
    h
}

/// Two interleaving half circles with Gaussian noise of standard deviation `noise`, as
/// scikit-learn's `make_moons`: the upper moon is class 0, the lower one class 1.
fn two_moons(n: usize, noise: f64, rng: &mut StdRng) -> (Array2<f32>, Array1<f32>) {
    let outer = n / 2;
    let mut points = Array2::zeros((n, 2));
    let mut labels = Array1::zeros(n);
    for i in 0..n {
        let (class, k, len) = if i < outer {
            (0, i, outer)
        } else {
            (1, i - outer, n - outer)
        };
        let t = std::f64::consts::PI * k as f64 / (len - 1).max(1) as f64;
        let (px, py) = if class == 0 {
            (t.cos(), t.sin())
        } else {
            (1.0 - t.cos(), 0.5 - t.sin())
        };
        points[[i, 0]] = (px + noise * normal(rng)) as f32;
        points[[i, 1]] = (py + noise * normal(rng)) as f32;
        labels[i] = class as f32;
    }
    (points, labels)
}

/// A standard normal draw (Box-Muller), so the example needs no distribution crate.
fn normal(rng: &mut StdRng) -> f64 {
    // 1 - u is in (0, 1], so its logarithm is finite.
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn argmax_rows(logits: ArrayView2<'_, f32>) -> Vec<usize> {
    logits
        .rows()
        .into_iter()
        .map(|row| {
            (0..row.len())
                .reduce(|best, j| if row[j] > row[best] { j } else { best })
                .unwrap_or(0)
        })
        .collect()
}
