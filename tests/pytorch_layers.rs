//! tapegrad's layers against PyTorch: the models of `tests/fixtures/make_torch_layers.py`
//! (a CNN with convolution, batch norm, max pooling and a linear layer; a GRU and a linear
//! layer),
//! their weights loaded by name from the files PyTorch saved with `WeightMap::torch()`
//! alone, give PyTorch's logits, loss and every parameter gradient, in f32 and in f64.
#![cfg(feature = "std")]

use ndarray::ArrayD;
use safetensors::SafeTensors;
use tapegrad::nn::{
    Activation, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Module, RnnBuilder, Sequential,
};
use tapegrad::ops::Conv2dOptions;
use tapegrad::prelude::*;
use tapegrad::rand::SeedableRng;
use tapegrad::weights::WeightMap;
use tapegrad::Scalar;

#[path = "common/torch.rs"]
mod torch;
use torch::{compare, fixture, tensor};

/// The fixture's inputs and expected values.
struct Io {
    bytes: Vec<u8>,
}

impl Io {
    fn read(name: &str) -> Io {
        Io {
            bytes: std::fs::read(fixture(name)).unwrap(),
        }
    }

    fn get(&self, name: &str) -> ArrayD<f64> {
        tensor(&SafeTensors::deserialize(&self.bytes).unwrap(), name)
    }
}

/// Compares the loss, the logits and the gradient of every parameter (PyTorch's
/// `grad.{name}`; a `Linear` weight's gradient is `[in, out]` here, `[out, in]` there);
/// returns the largest relative error.
fn compare_step<T: Scalar>(
    tag: &str,
    m: &Machine<T>,
    io: &Io,
    (loss, logits): (Tensor<'_, T>, Tensor<'_, T>),
    grads: &Grads<'_, T>,
    (max_relative, epsilon): (f64, f64),
) -> f64 {
    let mut worst = compare(
        &format!("{tag} logits"),
        m.value(logits).unwrap(),
        &io.get("logits"),
        max_relative,
        epsilon,
    );
    let loss_value = ndarray::arr0(m.item(loss).unwrap()).into_dyn();
    worst = worst.max(compare(
        &format!("{tag} loss"),
        loss_value.view(),
        &io.get("loss"),
        max_relative,
        epsilon,
    ));
    for (name, _) in m.params() {
        let p = m.handle_of(name).unwrap();
        let grad = grads
            .get(p)
            .unwrap_or_else(|| panic!("no gradient of {name}"));
        let want = io.get(&format!("grad.{name}"));
        let got = m.value(grad).unwrap();
        let want = if got.shape() == want.shape() {
            want
        } else {
            want.reversed_axes()
        };
        worst = worst.max(compare(
            &format!("{tag} grad {name}"),
            got,
            &want,
            max_relative,
            epsilon,
        ));
    }
    worst
}

/// Saved with `WeightMap::torch()`, the machine's state is PyTorch's file tensor for
/// tensor, bit for bit, but for BatchNorm's `num_batches_tracked` counters, which tapegrad
/// does not keep (PyTorch's `load_state_dict` re-creates them).
fn saves_as_pytorch<T: Scalar>(m: &Machine<T>, weights: &std::path::Path) {
    let ours = m.save_to_bytes_with(&WeightMap::torch()).unwrap();
    let ours = SafeTensors::deserialize(&ours).unwrap();
    let theirs_bytes = std::fs::read(weights).unwrap();
    let theirs = SafeTensors::deserialize(&theirs_bytes).unwrap();
    let mut names: Vec<_> = theirs
        .names()
        .into_iter()
        .filter(|n| !n.ends_with("num_batches_tracked"))
        .collect();
    names.sort_unstable();
    let mut saved = ours.names();
    saved.sort_unstable();
    assert_eq!(saved, names);
    for name in names {
        let (a, b) = (ours.tensor(name).unwrap(), theirs.tensor(name).unwrap());
        assert_eq!(
            (a.dtype(), a.shape(), a.data()),
            (b.dtype(), b.shape(), b.data()),
            "{name}"
        );
    }
}

/// `GRU(3, 5, batch_first=True)` then `Linear(5, 4)` on the last hidden state.
fn gru_matches_pytorch<T: Scalar>(tag: &str, tolerance: (f64, f64)) -> f64 {
    let io = Io::read(&format!("torch_gru_{tag}_io.safetensors"));
    let (x_value, y_value) = (io.get("x"), io.get("y"));
    let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(0);
    let g = Graph::<T>::new();
    let x = g.input("x", x_value.shape());
    let y = g.input("y", y_value.shape());
    let gru = RnnBuilder::new(3, 5)
        .batch_first(true)
        .gru(&g, "gru", &mut rng);
    let fc = tapegrad::nn::Linear::new(&g, "fc", 5, 4, &mut rng);
    let (_, h_n) = gru.forward(x);
    let logits = fc.forward(h_n.squeeze(0));
    let loss = logits.cross_entropy(y);
    let grads = g.grad(loss, &g.params()).unwrap();
    let mut m = g.compile(&[loss, logits], &grads).unwrap();
    let weights = fixture(&format!("torch_gru_{tag}.safetensors"));
    m.load_with(&weights, &WeightMap::torch()).unwrap();
    saves_as_pytorch(&m, &weights);
    m.feed(x, &x_value.mapv(T::of)).unwrap();
    m.feed(y, &y_value.mapv(T::of)).unwrap();
    m.run().unwrap();
    let worst = compare_step(tag, &m, &io, (loss, logits), &grads, tolerance);
    eprintln!("gru {tag}: largest relative error against PyTorch {worst:e}");
    worst
}

#[test]
fn gru_f32_matches_pytorch() {
    gru_matches_pytorch::<f32>("f32", (1e-5, 1e-7));
}

#[test]
fn gru_f64_matches_pytorch() {
    gru_matches_pytorch::<f64>("f64", (1e-10, 1e-15));
}

/// `nn.Sequential(Conv2d(1, 4, 3, padding=1), BatchNorm2d(4), ReLU(), MaxPool2d(2),
/// Flatten(), Linear(64, 3))`: one step in training mode (batch statistics; the running
/// statistics updated after it), then the same batch in evaluation mode.
fn cnn_matches_pytorch<T: Scalar>(tag: &str, tolerance: (f64, f64)) -> f64 {
    let io = Io::read(&format!("torch_cnn_{tag}_io.safetensors"));
    let (x_value, y_value) = (io.get("x"), io.get("y"));
    let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(0);
    let g = Graph::<T>::new();
    let x = g.input("x", x_value.shape());
    let y = g.input("y", y_value.shape());
    let mut net = Sequential::new("");
    let same = Conv2dOptions::default().padding(1);
    net.push(|name| Conv2d::new(&g, name, 1, 4, 3, same, &mut rng));
    net.push(|name| BatchNorm2d::new(&g, name, 4))
        .add(Activation::Relu)
        .add(MaxPool2d::new(2))
        .add(Flatten::new());
    net.push(|name| Linear::new(&g, name, 64, 3, &mut rng));
    let logits = net.forward(x);
    let loss = logits.cross_entropy(y);
    let grads = g.grad(loss, &g.params()).unwrap();
    let mut m = g.compile(&[loss, logits], &grads).unwrap();
    // PyTorch's file, with its int64 `1.num_batches_tracked`, by name alone
    let weights = fixture(&format!("torch_cnn_{tag}.safetensors"));
    m.load_with(&weights, &WeightMap::torch()).unwrap();
    saves_as_pytorch(&m, &weights);
    m.feed(x, &x_value.mapv(T::of)).unwrap();
    m.feed(y, &y_value.mapv(T::of)).unwrap();
    m.run().unwrap();
    let mut worst = compare_step(tag, &m, &io, (loss, logits), &grads, tolerance);
    let (max_relative, epsilon) = tolerance;
    for stat in ["running_mean", "running_var"] {
        let buffer = g.get(&format!("1.{stat}")).unwrap();
        worst = worst.max(compare(
            &format!("{tag} {stat}"),
            m.value(buffer).unwrap(),
            &io.get(stat),
            max_relative,
            epsilon,
        ));
    }
    m.set_training(false);
    m.run().unwrap();
    worst = worst.max(compare(
        &format!("{tag} logits in evaluation mode"),
        m.value(logits).unwrap(),
        &io.get("logits_eval"),
        max_relative,
        epsilon,
    ));
    eprintln!("cnn {tag}: largest relative error against PyTorch {worst:e}");
    worst
}

#[test]
fn cnn_f32_matches_pytorch() {
    cnn_matches_pytorch::<f32>("f32", (1e-5, 1e-7));
}

#[test]
fn cnn_f64_matches_pytorch() {
    cnn_matches_pytorch::<f64>("f64", (1e-10, 1e-15));
}
