//! Handwritten digits with a small CNN: the UCI 8x8 digits of `examples/digits.rs` (same
//! data, same seeded 80/20 split) as 1×8×8 images, pixels in [0, 1] standardised by the
//! training images' overall mean and deviation (one pair for all pixels, so that an
//! image can be shifted), through
//!
//! conv 1→16 k3 pad 1, ReLU, conv 16→32 k3 pad 1, ReLU, max-pool 2 (→ 4×4),
//! conv 32→64 k3 pad 1, ReLU, max-pool 2 (→ 2×2), flatten 256, dropout 0.3, linear 10,
//!
//! trained with Adam (cosine-decayed learning rate) in mini-batches of 32 (a run-time batch
//! axis, so the last partial batch and the evaluation batches run through the same
//! machine), each training image shifted by a seeded random -1, 0 or 1 pixel along each
//! axis (zeros shifted in). Prints loss, train and test accuracy per epoch, and the time; exits with
//! status 1 if the test accuracy is below 98.5% (the MLP of `digits.rs` gets 97.5%).
//!
//! Saves the weights to `target/digits_cnn.safetensors` unless a path is given, with the
//! standardisation's mean and deviation as the buffers `input.mean` and `input.std` (shape
//! `[1]`), so that `serve/` can take raw pixels.
//!
//! ```text
//! cargo run --release --example digits_cnn [weights.safetensors]
//! ```

#[path = "digits_common/mod.rs"]
mod common;

use std::error::Error;
use std::time::Instant;

use common::{correct, Digits, BATCH, CLASSES, MEAN, STD, TRAIN_SEED};
use tapegrad::data::Batches;
use tapegrad::ndarray::{Array1, Array2, Array4, ArrayView4, ArrayViewMut4, Axis};
use tapegrad::nn::{Conv2d, Linear};
use tapegrad::ops::Conv2dOptions;
use tapegrad::prelude::*;
use tapegrad::rand::rngs::StdRng;
use tapegrad::rand::{Rng, SeedableRng};
use tapegrad::Dim;

const EPOCHS: usize = 30;
const LR: f64 = 3e-3;
const DROPOUT: f64 = 0.3;
const TARGET: f64 = 0.985;
/// Where the weights go unless a path is given on the command line.
const WEIGHTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/digits_cnn.safetensors");

/// The network on batches of up to [`BATCH`] images; the buffers `mean` and `std` take
/// no part in the computation: they carry the standardisation into the saved weights.
struct Cnn<'g> {
    x: Tensor<'g, f32>,
    mean: Tensor<'g, f32>,
    std: Tensor<'g, f32>,
    y: Tensor<'g, f32>,
    logits: Tensor<'g, f32>,
    loss: Tensor<'g, f32>,
}

impl<'g> Cnn<'g> {
    fn build(g: &'g Graph<f32>) -> Cnn<'g> {
        let mut rng = StdRng::seed_from_u64(TRAIN_SEED);
        let same = Conv2dOptions::default().padding(1);
        let c1 = Conv2d::new(g, "conv1", 1, 16, 3, same, &mut rng);
        let c2 = Conv2d::new(g, "conv2", 16, 32, 3, same, &mut rng);
        let c3 = Conv2d::new(g, "conv3", 32, 64, 3, same, &mut rng);
        let fc = Linear::new(g, "fc", 64 * 2 * 2, CLASSES, &mut rng);
        let x = g.input("x", (Dim::upto(BATCH), 1, 8, 8));
        let y = g.input("y", Dim::upto(BATCH));
        let h = c2.forward(c1.forward(x).relu()).relu().max_pool2d(2);
        let h = c3.forward(h).relu().max_pool2d(2).flatten(1, -1);
        let logits = fc.forward(h.dropout(DROPOUT));
        Cnn {
            x,
            mean: g.buffer(MEAN, Array1::<f32>::zeros(1)),
            std: g.buffer(STD, Array1::<f32>::ones(1)),
            y,
            logits,
            loss: logits.cross_entropy(y),
        }
    }

    /// The predicted class of each image, run through `m` in evaluation mode.
    fn predict(
        &self,
        m: &mut Machine<f32>,
        x: &Array4<f32>,
        y: &Array1<f32>,
    ) -> Result<Vec<usize>, Box<dyn Error>> {
        m.set_training(false);
        let mut predicted = Vec::with_capacity(y.len());
        let mut batches = Batches::new(y.len(), BATCH, false)?;
        let (mut xbuf, mut ybuf) = (Array4::zeros((BATCH, 1, 8, 8)), Array1::zeros(BATCH));
        while let Some((xb, yb)) = batches.next_batch(x, y, &mut xbuf, &mut ybuf)? {
            m.feed(self.x, &xb)?;
            m.feed(self.y, &yb)?;
            m.run()?;
            let logits: Array2<f32> = m.value(self.logits)?.into_dimensionality()?.to_owned();
            predicted.extend(logits.axis_iter(Axis(0)).map(|row| {
                (0..row.len())
                    .reduce(|best, j| if row[j] > row[best] { j } else { best })
                    .unwrap_or(0)
            }));
        }
        m.set_training(true);
        Ok(predicted)
    }
}

/// The rows `rows` of the pixels `x` as `[n, 1, 8, 8]` images.
fn images(x: &Array2<f32>, rows: &[usize]) -> Result<Array4<f32>, Box<dyn Error>> {
    let x = x.select(Axis(0), rows);
    let n = x.nrows();
    Ok(x.into_shape_with_order((n, 1, 8, 8))?)
}

/// `(x - mean) / std` in place.
fn standardise(x: &mut Array4<f32>, (mean, std): (f32, f32)) {
    x.mapv_inplace(|v| (v - mean) / std);
}

/// Each image of `src` shifted by -1, 0 or 1 pixel along each axis into `dst`, the pixels
/// shifted in being `fill` (a blank pixel, standardised).
fn shift(src: ArrayView4<f32>, mut dst: ArrayViewMut4<f32>, fill: f32, rng: &mut StdRng) {
    for (s, mut d) in src.outer_iter().zip(dst.outer_iter_mut()) {
        let (dy, dx) = (rng.random_range(-1i32..=1), rng.random_range(-1i32..=1));
        for y in 0..8i32 {
            for x in 0..8i32 {
                let (sy, sx) = (y - dy, x - dx);
                let inside = (0..8).contains(&sy) && (0..8).contains(&sx);
                d[[0, y as usize, x as usize]] = if inside {
                    s[[0, sy as usize, sx as usize]]
                } else {
                    fill
                };
            }
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let start = Instant::now();
    let data = Digits::load()?;
    let (train, test) = data.split()?;
    let (mut x_train, mut x_test) = (images(&data.x, &train)?, images(&data.x, &test)?);
    let (y_train, y_test) = (
        data.y.select(Axis(0), &train),
        data.y.select(Axis(0), &test),
    );
    let stats = (x_train.mean().unwrap_or(0.0), x_train.std(0.0).max(1e-6));
    standardise(&mut x_train, stats);
    standardise(&mut x_test, stats);
    let blank = -stats.0 / stats.1;
    println!(
        "{} images: {} to train on, {} held out for the test",
        data.len(),
        train.len(),
        test.len()
    );

    let g = Graph::<f32>::new();
    let model = Cnn::build(&g);
    let grads = g.grad(model.loss, &g.params())?;
    let mut m = g.compile(&[model.loss, model.logits], &grads)?;
    m.seed(TRAIN_SEED);
    println!("{}\n", m.summary());

    let mut rng = StdRng::seed_from_u64(TRAIN_SEED);
    let mut batches = Batches::new(train.len(), BATCH, false)?;
    let schedule = WarmupCosineLr::new(LR, 0.0, 0, EPOCHS * batches.len());
    let mut opt = Adam::new(LR);
    let (mut xbuf, mut ybuf) = (Array4::zeros((BATCH, 1, 8, 8)), Array1::zeros(BATCH));
    let mut shifted = Array4::zeros((BATCH, 1, 8, 8));
    let (mut step, mut test_correct) = (0, 0);
    for epoch in 1..=EPOCHS {
        batches.shuffle(&mut rng);
        let mut total = 0.0;
        while let Some((xb, yb)) = batches.next_batch(&x_train, &y_train, &mut xbuf, &mut ybuf)? {
            schedule.apply(&mut opt, step)?;
            step += 1;
            let n = yb.len();
            let mut xs = shifted.slice_axis_mut(Axis(0), (0..n).into());
            shift(xb, xs.view_mut(), blank, &mut rng);
            m.feed(model.x, &xs)?;
            m.feed(model.y, &yb)?;
            m.run()?;
            opt.step(&mut m, &grads)?;
            total += m.item(model.loss)? * yb.len() as f32;
        }
        let train_correct = correct(&model.predict(&mut m, &x_train, &y_train)?, &y_train);
        test_correct = correct(&model.predict(&mut m, &x_test, &y_test)?, &y_test);
        println!(
            "epoch {epoch:2}/{EPOCHS}  loss {:.4}  train {:5.1}%  test {:5.1}%  ({:.1?})",
            total / train.len() as f32,
            100.0 * train_correct as f64 / train.len() as f64,
            100.0 * test_correct as f64 / test.len() as f64,
            start.elapsed()
        );
    }
    let accuracy = test_correct as f64 / test.len() as f64;
    println!(
        "\ntest accuracy {:.1}% ({test_correct}/{}), wall time {:.2?}",
        100.0 * accuracy,
        test.len(),
        start.elapsed()
    );
    m.set_buffer(model.mean, &tapegrad::ndarray::arr1(&[stats.0]))?;
    m.set_buffer(model.std, &tapegrad::ndarray::arr1(&[stats.1]))?;
    let path = std::env::args_os()
        .nth(1)
        .map_or_else(|| std::path::PathBuf::from(WEIGHTS), Into::into);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    m.save(&path)?;
    println!("weights saved to {}", path.display());
    if accuracy < TARGET {
        eprintln!(
            "error: test accuracy {:.1}% is below the {:.1}% target",
            100.0 * accuracy,
            100.0 * TARGET
        );
        std::process::exit(1);
    }
    Ok(())
}
