//! Two moons: train a 2-32-32-2 ReLU MLP with mini-batch SGD, then measure accuracy on
//! held-out points with the same machine.
//!
//! The inputs' batch axis is a run-time axis of up to 32 rows: the 810 training points
//! are 25 batches of 32 and a last one of 10, trained at its real size (its mean loss
//! divides by 10), and the 190 held-out points go through the training machine in
//! batches of up to 32 too.
//!
//! ```text
//! cargo run --release --example mlp
//! ```
//!
//! Exits with status 1 if the held-out accuracy is below 97%.

use std::time::Instant;

use tapegrad::data::Batches;
use tapegrad::ndarray::{Array1, Array2, ArrayView2};
use tapegrad::prelude::*;
use tapegrad::rand::rngs::StdRng;
use tapegrad::rand::seq::SliceRandom;
use tapegrad::rand::{Rng, SeedableRng};

const POINTS: usize = 1000;
const NOISE: f64 = 0.1;
const TRAIN: usize = 810;
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

    // Any batch of up to BATCH rows: training batches, the last partial one, test batches.
    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(BATCH), 2));
    let y = g.input("y", Dim::upto(BATCH));
    let widths = [2, HIDDEN, HIDDEN, 2];
    let layers: Vec<_> = widths
        .windows(2)
        .enumerate()
        .map(|(i, io)| {
            let w = g.param(&format!("w{i}"), init::kaiming_uniform(io, &mut rng)?);
            let b = g.param(&format!("b{i}"), init::zeros([io[1]])?);
            Ok((w, b))
        })
        .collect::<Result<_, tapegrad::Error>>()?;
    let logits = mlp(x, &layers);
    let loss = logits.cross_entropy(y);
    let params = g.params();
    let grads = g.grad(loss, &params)?;

    // One machine: the loss and the logits stay readable after each run.
    let mut m = g.compile(&[loss, logits], &grads)?;
    let mut opt = Sgd::new(LR);
    let (mut xbuf, mut ybuf) = (Array2::<f32>::zeros((BATCH, 2)), Array1::zeros(BATCH));
    let mut batches = Batches::from_indices(train.to_vec(), BATCH, false)?;
    for epoch in 1..=EPOCHS {
        batches.shuffle(&mut rng);
        let (mut total, mut rows) = (0.0, 0);
        while let Some((xb, yb)) = batches.next_batch(&points, &labels, &mut xbuf, &mut ybuf)? {
            m.feed(x, &xb)?;
            m.feed(y, &yb)?;
            m.run()?;
            opt.step(&mut m, &grads)?;
            // the mean over this batch's rows, weighted back to a sum
            total += m.item(loss)? * yb.len() as f32;
            rows += yb.len();
        }
        println!("epoch {epoch:3}  loss {:.4}", total / rows as f32);
    }

    // The held-out points through the same machine, in batches of up to BATCH rows.
    let mut correct = 0;
    let mut batches = Batches::from_indices(test.to_vec(), BATCH, false)?;
    while let Some((xb, yb)) = batches.next_batch(&points, &labels, &mut xbuf, &mut ybuf)? {
        m.feed(x, &xb)?;
        m.feed(y, &yb)?;
        m.run()?;
        let predicted = argmax_rows(m.value(logits)?.into_dimensionality()?);
        correct += predicted
            .iter()
            .zip(&yb)
            .filter(|&(&p, &label)| p as f32 == label)
            .count();
    }
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
