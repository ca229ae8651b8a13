//! Inference of the digits models, as a user serving them calls it: feed a batch, run, read
//! the logits. One line per model, batch and thread count:
//!
//! `infer model=mlp batch=1 threads=1 median_us=… system=tapegrad`
//!
//! `BENCH_MODELS=cnn` and `BENCH_ROWS=1,8` choose other models and batches (a profile of one).
//!
//! The models are those of `examples/digits.rs` and `examples/digits_cnn.rs`, built with
//! tapegrad's `nn` layers (seeded random weights: time does not depend on their values):
//!
//! - `mlp`: 64-128-10, ReLU, dropout 0.2 after the hidden layer (off: evaluation mode);
//! - `cnn`: conv 1→16 k3 pad 1, ReLU, conv 16→32 k3 pad 1, ReLU, max-pool 2, conv 32→64 k3
//!   pad 1, ReLU, max-pool 2, flatten 256, dropout 0.3 (off), linear 10, on 1×8×8 images.
//!
//! Each is compiled once for its logits alone (no gradients) with a run-time batch axis of
//! up to 64 rows, and timed at 1 and 64 rows on that one machine. The call timed is
//! `feed` + `run` + copying the logits into the caller's array (what
//! `benches/compare/ort_infer.py` times of ONNX Runtime: `sess.run`, which returns them).

use rand::{Rng, SeedableRng};
use tapegrad::ndarray::{Array2, ArrayD, Axis, IxDyn, Slice};
use tapegrad::nn::{Conv2d, Linear, MlpBuilder};
use tapegrad::ops::Conv2dOptions;
use tapegrad::prelude::*;
use tapegrad::Dim;

use super::median_secs;

/// The largest batch a machine takes.
const BOUND: usize = 64;

/// The comma-separated list in the environment variable `var`, or `default`.
fn list(var: &str, default: &str) -> Vec<String> {
    let v = std::env::var(var).unwrap_or_else(|_| default.into());
    v.split(',').map(|s| s.trim().to_string()).collect()
}

/// The digits MLP's input (`[≤64, 64]`) and logits.
fn mlp<'g>(g: &'g Graph<f32>, rng: &mut impl Rng) -> (Tensor<'g, f32>, Tensor<'g, f32>) {
    let net = MlpBuilder::new(&[64, 128, 10])
        .dropout(0.2)
        .build(g, "mlp", rng);
    let x = g.input("x", (Dim::upto(BOUND), 64));
    (x, net.forward(x))
}

/// The digits CNN's input (`[≤64, 1, 8, 8]`) and logits.
fn cnn<'g>(g: &'g Graph<f32>, rng: &mut impl Rng) -> (Tensor<'g, f32>, Tensor<'g, f32>) {
    let same = Conv2dOptions::default().padding(1);
    let c1 = Conv2d::new(g, "conv1", 1, 16, 3, same, rng);
    let c2 = Conv2d::new(g, "conv2", 16, 32, 3, same, rng);
    let c3 = Conv2d::new(g, "conv3", 32, 64, 3, same, rng);
    let fc = Linear::new(g, "fc", 64 * 2 * 2, 10, rng);
    let x = g.input("x", (Dim::upto(BOUND), 1, 8, 8));
    let h = c2.forward(c1.forward(x).relu()).relu().max_pool2d(2);
    let h = c3.forward(h).relu().max_pool2d(2).flatten(1, -1);
    (x, fc.forward(h.dropout(0.3)))
}

/// The `infer` lines of both models at `threads`.
pub fn run(threads: usize) -> Result<(), Box<dyn std::error::Error>> {
    tapegrad::set_threads(threads);
    for model in list("BENCH_MODELS", "mlp,cnn") {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let g = Graph::<f32>::new();
        let (x, logits) = match model.as_str() {
            "mlp" => mlp(&g, &mut rng),
            "cnn" => cnn(&g, &mut rng),
            _ => return Err(format!("unknown model {model} (use mlp, cnn)").into()),
        };
        let shape = x.shape().dims().to_vec();
        let (x, logits) = (x.handle(), logits.handle());
        let mut m = g.into_machine(&[logits], &[])?;
        m.set_training(false);
        let data = ArrayD::from_shape_fn(IxDyn(&shape), |_| rng.random_range(-1.0f32..1.0));
        for rows in list("BENCH_ROWS", "1,64") {
            let rows: usize = rows.parse()?;
            if rows > BOUND {
                return Err(format!("at most {BOUND} rows").into());
            }
            let xb = data.slice_axis(Axis(0), Slice::from(..rows));
            let mut out = Array2::<f32>::zeros((rows, 10));
            let median = median_secs(|| {
                m.feed(x, &xb)?;
                m.run()?;
                for (o, y) in out.iter_mut().zip(m.value(logits)?.iter()) {
                    *o = *y;
                }
                Ok(())
            })?;
            println!(
                "infer model={model} batch={rows} threads={threads} median_us={:.1} \
                 system=tapegrad",
                median * 1e6
            );
        }
    }
    Ok(())
}
