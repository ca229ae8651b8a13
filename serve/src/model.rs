//! The networks of `examples/digits.rs` and `examples/digits_cnn.rs`, recorded under the
//! same parameter names, with the standardisation the training used in the graph:
//! `x = (pixels / 16 - mean) / std`, `mean` and `std` being the buffers `input.mean` and
//! `input.std` that the examples save beside the parameters. The service thus takes raw
//! pixels (0..=16, as in `examples/data/digits.csv.gz`) and computes what
//! `digits_predict` computes, operation for operation.

use tapegrad::ndarray::{Array1, ArrayViewD};
use tapegrad::nn::{Conv2d, Linear, MlpBuilder};
use tapegrad::ops::Conv2dOptions;
use tapegrad::prelude::*;
use tapegrad::rand::rngs::StdRng;
use tapegrad::rand::SeedableRng;
use tapegrad::{Dim, Handle};

use crate::config::ModelKind;

/// Pixels per image (8x8).
pub const PIXELS: usize = 64;
/// Classes (the digits 0..=9).
pub const CLASSES: usize = 10;
/// The buffer holding the standardisation's mean (per pixel for the MLP, `[1]` for the CNN).
pub const MEAN: &str = "input.mean";
/// The buffer holding the standardisation's deviation.
pub const STD: &str = "input.std";

/// One row's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The most probable class (the argmax of the logits, as `digits_predict` takes it).
    pub class: usize,
    /// The softmax of the logits.
    pub probs: [f32; CLASSES],
}

/// A compiled evaluation machine of one network, for batches of up to `max_batch` rows.
pub struct Model {
    machine: Machine<f32>,
    pixels: Handle,
    logits: Handle,
    probs: Handle,
    max_batch: usize,
}

/// The graph's nodes the service feeds and reads.
struct Nodes<'g> {
    pixels: Tensor<'g, f32>,
    logits: Tensor<'g, f32>,
    probs: Tensor<'g, f32>,
}

/// Records `kind` into `g` with parameters drawn from `seed` (the values the examples
/// start from; loading replaces them) and the standardisation buffers set to
/// `(mean, std)` for every pixel.
fn record(
    g: &Graph<f32>,
    kind: ModelKind,
    max_batch: usize,
    seed: u64,
    (mean, std): (f32, f32),
) -> Nodes<'_> {
    let mut rng = StdRng::seed_from_u64(seed);
    match kind {
        ModelKind::Mlp => {
            // Dropout is off in evaluation, but it numbers the modules ("mlp.3.weight").
            let mlp = MlpBuilder::new(&[PIXELS, 128, CLASSES])
                .dropout(0.2)
                .build(g, "mlp", &mut rng);
            let pixels = g.input("pixels", (Dim::upto(max_batch), PIXELS));
            let mean = g.buffer(MEAN, Array1::from_elem(PIXELS, mean));
            let std = g.buffer(STD, Array1::from_elem(PIXELS, std));
            let logits = mlp.forward((pixels / 16.0 - mean) / std);
            Nodes {
                pixels,
                logits,
                probs: logits.softmax(-1),
            }
        }
        ModelKind::Cnn => {
            let same = Conv2dOptions::default().padding(1);
            let c1 = Conv2d::new(g, "conv1", 1, 16, 3, same, &mut rng);
            let c2 = Conv2d::new(g, "conv2", 16, 32, 3, same, &mut rng);
            let c3 = Conv2d::new(g, "conv3", 32, 64, 3, same, &mut rng);
            let fc = Linear::new(g, "fc", 64 * 2 * 2, CLASSES, &mut rng);
            let pixels = g.input("pixels", (Dim::upto(max_batch), 1, 8, 8));
            let mean = g.buffer(MEAN, Array1::from_elem(1, mean));
            let std = g.buffer(STD, Array1::from_elem(1, std));
            let x = (pixels / 16.0 - mean) / std;
            let h = c2.forward(c1.forward(x).relu()).relu().max_pool2d(2);
            let h = c3.forward(h).relu().max_pool2d(2).flatten(1, -1);
            let logits = fc.forward(h.dropout(0.3));
            Nodes {
                pixels,
                logits,
                probs: logits.softmax(-1),
            }
        }
    }
}

impl Model {
    /// The network `kind` for batches of up to `max_batch` rows, with the parameters and
    /// standardisation buffers of the safetensors file `weights` (strictly: every tensor
    /// of the model present with its shape, and no other).
    ///
    /// # Errors
    /// A malformed file or one of another model ([`tapegrad::Error::Weights`]).
    pub fn load(kind: ModelKind, max_batch: usize, weights: &[u8]) -> tapegrad::Result<Model> {
        let g = Graph::<f32>::new();
        let nodes = record(&g, kind, max_batch, 0, (0.0, 1.0));
        let mut machine = g.compile(&[nodes.logits, nodes.probs], &[])?;
        machine.set_training(false);
        machine.load_from_bytes(weights)?;
        Ok(Model {
            machine,
            pixels: nodes.pixels.handle(),
            logits: nodes.logits.handle(),
            probs: nodes.probs.handle(),
            max_batch,
        })
    }

    /// The most rows one [`predict`](Self::predict) takes.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// The predictions for `rows` (row-major, [`PIXELS`] values per row, at most
    /// [`max_batch`](Self::max_batch) rows), appended to `out`.
    ///
    /// # Errors
    /// A length that is not whole rows, or too many rows ([`tapegrad::Error`] from the
    /// feed); an error of the machine's run.
    pub fn predict(&mut self, rows: &[f32], out: &mut Vec<Prediction>) -> tapegrad::Result<()> {
        self.machine.feed_slice(self.pixels, rows)?;
        self.machine.run()?;
        let logits = self.machine.value(self.logits)?;
        let probs = self.machine.value(self.probs)?;
        for (l, p) in rows_of(&logits).zip(rows_of(&probs)) {
            let class = (0..CLASSES)
                .reduce(|best, j| if l[j] > l[best] { j } else { best })
                .unwrap_or(0);
            let mut row = [0.0; CLASSES];
            row.copy_from_slice(p);
            out.push(Prediction { class, probs: row });
        }
        Ok(())
    }
}

/// The rows of a `[n, CLASSES]` output (empty if it is not laid out row-major).
fn rows_of<'a>(a: &'a ArrayViewD<'_, f32>) -> impl Iterator<Item = &'a [f32]> {
    a.as_slice().unwrap_or(&[]).chunks_exact(CLASSES)
}

/// A weights file for `kind` with parameters initialised from `seed` as the examples
/// initialise them, and the standardisation `(mean, std)` for every pixel: for tests and
/// trying the service without training.
///
/// # Errors
/// As [`Machine::save_to_bytes`].
pub fn seeded_weights(kind: ModelKind, seed: u64, norm: (f32, f32)) -> tapegrad::Result<Vec<u8>> {
    let g = Graph::<f32>::new();
    let nodes = record(&g, kind, 1, seed, norm);
    g.compile(&[nodes.logits], &[])?.save_to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_in_rows_out() {
        for kind in [ModelKind::Mlp, ModelKind::Cnn] {
            let bytes = seeded_weights(kind, 3, (0.3, 0.4)).unwrap();
            let mut m = Model::load(kind, 4, &bytes).unwrap();
            let rows: Vec<f32> = (0..3 * PIXELS).map(|i| (i % 17) as f32).collect();
            let mut out = Vec::new();
            m.predict(&rows, &mut out).unwrap();
            assert_eq!(out.len(), 3);
            for p in &out {
                let sum: f32 = p.probs.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "{kind:?} {sum}");
                assert!(p.probs.iter().all(|&q| q <= p.probs[p.class]));
            }
            // five rows do not fit a machine of four; 63 values are not a row
            assert!(m.predict(&[0.0; 5 * PIXELS], &mut out).is_err());
            assert!(m.predict(&[0.0; PIXELS - 1], &mut out).is_err());
        }
    }

    #[test]
    fn another_models_weights_are_refused() {
        let mlp = seeded_weights(ModelKind::Mlp, 3, (0.0, 1.0)).unwrap();
        let e = Model::load(ModelKind::Cnn, 4, &mlp).err().unwrap();
        assert!(matches!(e, tapegrad::Error::Weights { .. }), "{e}");
        assert!(Model::load(ModelKind::Mlp, 4, b"not a safetensors file").is_err());
    }
}
