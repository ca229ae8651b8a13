//! What `examples/digits.rs` and `examples/digits_predict.rs` share, so that both read
//! the same data, split it the same way and build the same graph: the data set, the
//! seeded split, the model and the weights' paths.

#![allow(dead_code)] // each example uses part of it

use std::error::Error;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use tapegrad::data::{train_test_split, Batches};
use tapegrad::ndarray::{Array1, Array2, ArrayView2, Axis};
use tapegrad::nn::{Mlp, MlpBuilder};
use tapegrad::prelude::*;
use tapegrad::rand::rngs::StdRng;
use tapegrad::rand::SeedableRng;
use tapegrad::Dim;

/// The UCI optical-recognition handwritten digits as scikit-learn bundles them: one line
/// per image, 64 pixels (8x8, row by row, 0..=16) then the label. See
/// `examples/data/README.md`.
pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/digits.csv.gz");
/// Where the weights go unless a path is given on the command line.
pub const WEIGHTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/digits.safetensors");

pub const PIXELS: usize = 64;
pub const CLASSES: usize = 10;
/// The seed of the 80/20 split, apart from the model's, so that the prediction example
/// finds the same test set without replaying training.
pub const SPLIT_SEED: u64 = 1998;
pub const TEST_FRACTION: f64 = 0.2;
/// The names of the buffers that carry the input standardisation inside the weights file
/// (`x = (pixels / 16 - mean) / std`, per pixel for the MLP, one pair for the CNN), so that
/// a program holding only the weights (serve/) turns raw pixels into the model's inputs.
pub const MEAN: &str = "input.mean";
pub const STD: &str = "input.std";
/// Seed of the initial weights and of the batch order.
pub const TRAIN_SEED: u64 = 7;
/// The most rows a step runs (the inputs' run-time axis): training batches of 32, the
/// last partial one, and evaluation in batches of 32 rows through the same machine.
pub const BATCH: usize = 32;
pub const HIDDEN: usize = 128;
pub const DROPOUT: f64 = 0.2;

/// The images, pixels scaled to [0, 1], and their labels (class ids as `f32`).
pub struct Digits {
    pub x: Array2<f32>,
    pub y: Array1<f32>,
}

impl Digits {
    /// Reads and checks the gzipped CSV file.
    pub fn load() -> Result<Digits, Box<dyn Error>> {
        let mut text = String::new();
        GzDecoder::new(File::open(DATA).map_err(|e| format!("{DATA}: {e}"))?)
            .read_to_string(&mut text)
            .map_err(|e| format!("{DATA}: {e}"))?;
        let mut pixels = Vec::with_capacity(1797 * PIXELS);
        let mut labels = Vec::with_capacity(1797);
        for (n, line) in text.lines().enumerate() {
            let bad = |what: &str| format!("{DATA} line {}: {what}", n + 1);
            let fields: Vec<u8> = line
                .split(',')
                .map(|f| f.trim().parse::<u8>())
                .collect::<Result<_, _>>()
                .map_err(|e| bad(&format!("not an integer ({e})")))?;
            let Some((&label, image)) = fields.split_last() else {
                continue;
            };
            if image.len() != PIXELS || image.iter().any(|&p| p > 16) {
                return Err(bad("expected 64 pixels in 0..=16 and a label").into());
            }
            if label as usize >= CLASSES {
                return Err(bad(&format!("label {label} is not a digit")).into());
            }
            pixels.extend(image.iter().map(|&p| f32::from(p) / 16.0));
            labels.push(f32::from(label));
        }
        let rows = labels.len();
        Ok(Digits {
            x: Array2::from_shape_vec((rows, PIXELS), pixels)?,
            y: Array1::from_vec(labels),
        })
    }

    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// The fixed, seeded 80/20 split: (training rows, test rows).
    pub fn split(&self) -> Result<(Vec<usize>, Vec<usize>), tapegrad::Error> {
        train_test_split(
            self.len(),
            TEST_FRACTION,
            &mut StdRng::seed_from_u64(SPLIT_SEED),
        )
    }

    /// The rows `train` and `test`, each pixel standardised with the mean and standard
    /// deviation of the training rows (a pixel that never varies there is only centred).
    pub fn sets(&self, train: &[usize], test: &[usize]) -> Sets {
        let (mut x_train, y_train) = (self.x.select(Axis(0), train), self.y.select(Axis(0), train));
        let (mut x_test, y_test) = (self.x.select(Axis(0), test), self.y.select(Axis(0), test));
        let mean = x_train
            .mean_axis(Axis(0))
            .unwrap_or_else(|| Array1::zeros(PIXELS));
        let std = x_train
            .std_axis(Axis(0), 0.0)
            .mapv(|s| if s > 1e-6 { s } else { 1.0 });
        for x in [&mut x_train, &mut x_test] {
            *x -= &mean;
            *x /= &std;
        }
        Sets {
            x_train,
            y_train,
            x_test,
            y_test,
            mean,
            std,
        }
    }
}

/// The model's inputs: standardised pixels and labels of the training and test rows, and
/// the per-pixel mean and deviation they were standardised with.
pub struct Sets {
    pub x_train: Array2<f32>,
    pub y_train: Array1<f32>,
    pub x_test: Array2<f32>,
    pub y_test: Array1<f32>,
    pub mean: Array1<f32>,
    pub std: Array1<f32>,
}

/// The network on batches of up to [`BATCH`] rows: pixels `x`, labels `y`, their
/// `logits` and mean `loss`; the buffers `mean` and `std` ([`MEAN`], [`STD`]) take no
/// part in the computation: they carry the standardisation into the saved weights.
pub struct Model<'g> {
    pub mlp: Mlp<'g, f32>,
    pub mean: Tensor<'g, f32>,
    pub std: Tensor<'g, f32>,
    pub x: Tensor<'g, f32>,
    pub y: Tensor<'g, f32>,
    pub logits: Tensor<'g, f32>,
    pub loss: Tensor<'g, f32>,
}

impl<'g> Model<'g> {
    /// 64-128-10, ReLU, dropout 0.2 after the hidden layer (off in evaluation mode).
    pub fn build(g: &'g Graph<f32>) -> Model<'g> {
        let mut rng = StdRng::seed_from_u64(TRAIN_SEED);
        let mlp = MlpBuilder::new(&[PIXELS, HIDDEN, CLASSES])
            .dropout(DROPOUT)
            .build(g, "mlp", &mut rng);
        let x = g.input("x", (Dim::upto(BATCH), PIXELS));
        let y = g.input("y", Dim::upto(BATCH));
        let logits = mlp.forward(x);
        Model {
            loss: logits.cross_entropy(y),
            logits,
            mlp,
            mean: g.buffer(MEAN, Array1::<f32>::zeros(PIXELS)),
            std: g.buffer(STD, Array1::<f32>::ones(PIXELS)),
            x,
            y,
        }
    }

    /// The predicted class of each row of `x`, run through `m` in evaluation mode in
    /// batches of up to [`BATCH`] rows (the last one shorter); `m` was compiled with
    /// `logits` among its outputs (and `y` is fed if it holds the loss), and is left in
    /// the mode it was in.
    pub fn predict(
        &self,
        m: &mut Machine<f32>,
        x: &Array2<f32>,
        y: &Array1<f32>,
    ) -> Result<Vec<usize>, Box<dyn Error>> {
        let training = m.training();
        m.set_training(false);
        let mut predicted = Vec::with_capacity(x.nrows());
        let mut batches = Batches::new(x.nrows(), BATCH, false)?;
        let (mut xbuf, mut ybuf) = (Array2::zeros((BATCH, PIXELS)), Array1::zeros(BATCH));
        while let Some((xb, yb)) = batches.next_batch(x, y, &mut xbuf, &mut ybuf)? {
            m.feed(self.x, &xb)?;
            if m.holds(self.y) {
                m.feed(self.y, &yb)?; // a training machine computes the loss too
            }
            m.run()?;
            predicted.extend(argmax_rows(m.value(self.logits)?.into_dimensionality()?));
        }
        m.set_training(training);
        Ok(predicted)
    }
}

/// How many predictions equal the labels.
pub fn correct(predicted: &[usize], labels: &Array1<f32>) -> usize {
    predicted
        .iter()
        .zip(labels)
        .filter(|&(&p, &l)| p as f32 == l)
        .count()
}

fn argmax_rows(logits: ArrayView2<'_, f32>) -> Vec<usize> {
    logits
        .axis_iter(Axis(0))
        .map(|row| {
            (0..row.len())
                .reduce(|best, j| if row[j] > row[best] { j } else { best })
                .unwrap_or(0)
        })
        .collect()
}

/// The weights file: the first command-line argument, or [`WEIGHTS`].
pub fn weights_path() -> PathBuf {
    std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from(WEIGHTS), PathBuf::from)
}

/// The file beside the weights where training records its test accuracy
/// (`correct/total`), for the prediction example to compare against.
pub fn accuracy_path(weights: &Path) -> PathBuf {
    let mut p = weights.as_os_str().to_owned();
    p.push(".accuracy");
    PathBuf::from(p)
}
