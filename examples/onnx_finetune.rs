//! Fine-tunes a CNN exported from PyTorch to ONNX (`tests/fixtures/onnx/cnn.onnx`, made by
//! `tests/fixtures/onnx/export.py`): imports it into a graph whose initializers are
//! trainable parameters, checks that it computes PyTorch's logits, then adds a
//! cross-entropy loss and trains it with SGD on the UCI 8x8 digits.
//!
//! PyTorch pre-trained the model briefly on the first 500 images; this example fine-tunes
//! on images 500..1400 and reports the loss and accuracy on images 1400.. (never seen by
//! either) before and after.
//!
//! ```text
//! cargo run --release --features onnx --example onnx_finetune
//! ```

#[path = "digits_common/mod.rs"]
mod common;

use std::error::Error;
use std::time::Instant;

use common::Digits;
use tapegrad::data::Batches;
use tapegrad::ndarray::{Array1, Array4, ArrayD, Axis, IxDyn};
use tapegrad::onnx::{ImportOptions, Model};
use tapegrad::prelude::*;
use tapegrad::rand::rngs::StdRng;
use tapegrad::rand::SeedableRng;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/onnx");
const BATCH: usize = 32;
const EPOCHS: usize = 20;
const LR: f64 = 0.05;

/// One float32 tensor of the fixture's `cnn_io.safetensors`.
fn reference(key: &str) -> Result<ArrayD<f32>, Box<dyn Error>> {
    let bytes = std::fs::read(format!("{FIXTURES}/cnn_io.safetensors"))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)?;
    let t = st.tensor(key)?;
    let v = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(ArrayD::from_shape_vec(IxDyn(t.shape()), v)?)
}

fn main() -> Result<(), Box<dyn Error>> {
    let model = Model::from_file(format!("{FIXTURES}/cnn.onnx"))?;
    let g = Graph::<f32>::new();
    let net = model.import(&g, &ImportOptions::default().batch(Dim::upto(BATCH)))?;
    let (x, logits) = (net.input("x")?, net.output("logits")?);
    let y = g.input("y", Dim::upto(BATCH));
    let loss = logits.cross_entropy(y);
    let class = logits.argmax(-1, false);
    let grads = g.grad(loss, &net.params)?;
    let mut m = g.compile(&[logits, loss, class], &grads)?;
    println!(
        "imported opset {} with {} parameters ({} values)",
        model.opset(),
        net.params.len(),
        net.params.iter().map(|p| p.numel()).sum::<usize>()
    );

    // the imported graph computes PyTorch's logits (in evaluation mode: a machine with
    // gradients starts in training mode, where batch norm uses the batch's statistics)
    m.set_training(false);
    let (x5, want) = (reference("x5")?, reference("logits5")?);
    m.feed(x, &x5)?;
    m.feed(y, &Array1::<f32>::zeros(5))?;
    m.run()?;
    let err = (&m.value(logits)? - &want).fold(0.0f32, |a, v| a.max(v.abs()));
    println!("max |tapegrad - PyTorch| on 5 images: {err:.2e}");
    if err > 1e-4 {
        return Err(format!("logits differ from PyTorch's by {err}").into());
    }

    let data = Digits::load()?;
    let images = data.x.into_shape_with_order((data.y.len(), 1, 8, 8))?;
    let train: Vec<usize> = (500..1400).collect();
    let test: Vec<usize> = (1400..data.y.len()).collect();
    let evaluate = |m: &mut Machine<f32>| -> Result<(f32, f32), Box<dyn Error>> {
        m.set_training(false);
        let (mut total, mut right) = (0.0, 0);
        for rows in test.chunks(BATCH) {
            m.feed(x, &images.select(Axis(0), rows))?;
            let labels: Array1<f32> = data.y.select(Axis(0), rows);
            m.feed(y, &labels)?;
            m.run()?;
            total += m.item(loss)? * rows.len() as f32;
            let predicted = m.value(class)?;
            right += predicted
                .iter()
                .zip(&labels)
                .filter(|(p, l)| p == l)
                .count();
        }
        Ok((total / test.len() as f32, right as f32 / test.len() as f32))
    };
    let (l0, a0) = evaluate(&mut m)?;
    println!("before: test loss {l0:.4}, accuracy {:.1}%", 100.0 * a0);

    let start = Instant::now();
    let mut opt = Sgd::new(LR);
    let mut rng = StdRng::seed_from_u64(7);
    let mut batches = Batches::from_indices(train, BATCH, false)?;
    // as PyTorch's `model.train()`: batch norm normalizes with each batch's statistics and
    // updates its running ones (buffers, not trained by SGD)
    m.set_training(true);
    for epoch in 1..=EPOCHS {
        batches.shuffle(&mut rng);
        let (mut sum, mut n) = (0.0, 0);
        while let Some(rows) = batches.next_indices() {
            let xb: Array4<f32> = images.select(Axis(0), rows);
            m.feed(x, &xb)?;
            m.feed(y, &data.y.select(Axis(0), rows))?;
            m.run()?;
            opt.step(&mut m, &grads)?;
            sum += m.item(loss)?;
            n += 1;
        }
        println!("epoch {epoch}: train loss {:.4}", sum / n as f32);
    }
    let (l1, a1) = evaluate(&mut m)?;
    println!(
        "after {EPOCHS} epochs ({:.2} s): test loss {l1:.4}, accuracy {:.1}%",
        start.elapsed().as_secs_f64(),
        100.0 * a1
    );
    if l1 >= l0 {
        return Err("fine-tuning did not lower the test loss".into());
    }
    Ok(())
}
