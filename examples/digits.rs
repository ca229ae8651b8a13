//! Handwritten digits: train a 64-128-10 ReLU MLP with dropout and Adam (cosine-decayed
//! learning rate) on the UCI 8x8 digits (1,797 images, shipped gzipped in
//! `examples/data/`), on a fixed, seeded 80/20 split with pixels standardised by the
//! training rows' statistics; print loss, train and test accuracy per epoch; save the
//! weights.
//!
//! ```text
//! cargo run --release --example digits [weights.safetensors]
//! cargo run --release --example digits_predict [weights.safetensors]
//! ```
//!
//! The weights go to `target/digits.safetensors` unless a path is given (with the
//! per-pixel mean and deviation of the standardisation as the buffers `input.mean` and
//! `input.std`, so that `serve/` can take raw pixels), with the test
//! accuracy beside them (`.accuracy`) for `digits_predict` to check. Exits with status 1
//! if the test accuracy is below 97%.
//!
//! Mini-batches of 32 come from `tapegrad::data::Batches`. The inputs take any batch of
//! up to 32 rows (a run-time axis), so the 1,438 training rows are 44 batches of 32 and
//! one of 30, trained at its real size, and the train and test sets are evaluated with
//! the training machine itself, in batches of up to 32 rows with dropout off.

#[path = "digits_common/mod.rs"]
mod common;

use std::time::Instant;

use common::{correct, Digits, Model, Sets, BATCH, PIXELS, TRAIN_SEED};
use tapegrad::data::Batches;
use tapegrad::ndarray::{Array1, Array2};
use tapegrad::prelude::*;
use tapegrad::rand::rngs::StdRng;
use tapegrad::rand::SeedableRng;

const EPOCHS: usize = 40;
/// Adam's learning rate at the start, decayed along a cosine to 0 at the last step.
const LR: f64 = 3e-3;
const TARGET: f64 = 0.97;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let data = Digits::load()?;
    let (train, test) = data.split()?;
    let Sets {
        x_train,
        y_train,
        x_test,
        y_test,
        mean,
        std,
    } = data.sets(&train, &test);
    println!(
        "{} images: {} to train on, {} held out for the test",
        data.len(),
        train.len(),
        test.len()
    );

    let g = Graph::<f32>::new();
    let model = Model::build(&g);
    let params = g.params();
    let grads = g.grad(model.loss, &params)?;
    // One machine for training and evaluation: the loss and the logits stay readable.
    let mut m = g.compile(&[model.loss, model.logits], &grads)?;
    m.seed(TRAIN_SEED); // dropout masks
    println!("{}\n", m.summary());

    let mut rng = StdRng::seed_from_u64(TRAIN_SEED);
    // Batches read rows of the training arrays into buffers of BATCH rows, allocated once.
    let mut batches = Batches::new(train.len(), BATCH, false)?;
    let schedule = WarmupCosineLr::new(LR, 0.0, 0, EPOCHS * batches.len());
    let mut opt = Adam::new(LR);
    let mut step = 0;
    let mut xbuf = Array2::<f32>::zeros((BATCH, PIXELS));
    let mut ybuf = Array1::<f32>::zeros(BATCH);
    let mut test_correct = 0;
    for epoch in 1..=EPOCHS {
        batches.shuffle(&mut rng);
        let mut total = 0.0;
        while let Some((xb, yb)) = batches.next_batch(&x_train, &y_train, &mut xbuf, &mut ybuf)? {
            schedule.apply(&mut opt, step)?;
            step += 1;
            m.feed(model.x, &xb)?;
            m.feed(model.y, &yb)?;
            m.run()?;
            opt.step(&mut m, &grads)?;
            // the batch's mean loss, weighted back to a sum over its rows
            total += m.item(model.loss)? * yb.len() as f32;
        }
        let train_pred = model.predict(&mut m, &x_train, &y_train)?;
        let test_pred = model.predict(&mut m, &x_test, &y_test)?;
        test_correct = correct(&test_pred, &y_test);
        println!(
            "epoch {epoch:2}/{EPOCHS}  loss {:.4}  train {:5.1}%  test {:5.1}%",
            total / train.len() as f32,
            percent(correct(&train_pred, &y_train), train.len()),
            percent(test_correct, test.len()),
        );
    }

    let accuracy = test_correct as f64 / test.len() as f64;
    println!(
        "\ntest accuracy {:.1}% ({test_correct}/{})",
        100.0 * accuracy,
        test.len()
    );
    let path = common::weights_path();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // The standardisation travels with the weights, for a program that sees raw pixels.
    m.set_buffer(model.mean, &mean)?;
    m.set_buffer(model.std, &std)?;
    m.save(&path)?;
    std::fs::write(
        common::accuracy_path(&path),
        format!("{test_correct}/{}\n", test.len()),
    )?;
    println!("weights saved to {}", path.display());
    println!(
        "wall time {:.2?} (data, training, evaluation, saving)",
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

fn percent(correct: usize, total: usize) -> f64 {
    100.0 * correct as f64 / total as f64
}
