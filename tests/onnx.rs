//! ONNX models exported from PyTorch (tests/fixtures/onnx/export.py): the imported graph
//! computes PyTorch's outputs at several batch sizes, in f32 and f64, its gradients match
//! finite differences, and it fine-tunes.

use std::path::PathBuf;

use safetensors::SafeTensors;
use tapegrad::ndarray::{Array1, ArrayD, IxDyn};
use tapegrad::onnx::{ImportOptions, Model};
use tapegrad::prelude::*;
use tapegrad::Scalar;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx")
        .join(name)
}

/// The float32 tensors of `NAME_io.safetensors`, as f64.
fn io(name: &str, key: &str) -> ArrayD<f64> {
    let bytes = std::fs::read(fixture(&format!("{name}_io.safetensors"))).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(key).unwrap();
    let v: Vec<f64> = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
        .collect();
    ArrayD::from_shape_vec(IxDyn(t.shape()), v).unwrap()
}

/// Imports `name`, runs it on the inputs of batch 1 and 5 and compares every output with
/// PyTorch's (`tol` absolute, on values of order 1).
fn matches_pytorch<T: Scalar>(name: &str, outputs: &[&str], tol: f64) {
    let model = Model::from_file(fixture(&format!("{name}.onnx"))).unwrap();
    assert_eq!(model.opset(), 17);
    let g = Graph::<T>::new();
    let net = model
        .import(&g, &ImportOptions::default().batch(Dim::upto(8)))
        .unwrap();
    assert!(net.input("x").unwrap().shape().run_axis() == Some(0));
    let ys: Vec<_> = outputs.iter().map(|o| net.output(o).unwrap()).collect();
    let mut m = g.compile(&ys, &[]).unwrap();
    for n in [1, 5] {
        let x = io(name, &format!("x{n}")).mapv(T::of);
        m.feed(net.input("x").unwrap(), &x).unwrap();
        m.run().unwrap();
        for (o, &y) in outputs.iter().zip(&ys) {
            let want = io(name, &format!("{o}{n}"));
            let got = m.value(y).unwrap();
            assert_eq!(got.shape(), want.shape(), "{name} {o} batch {n}");
            let err = got
                .iter()
                .zip(want.iter())
                .map(|(a, b)| (a.to_f64().unwrap() - b).abs())
                .fold(0.0, f64::max);
            assert!(err < tol, "{name} {o} batch {n}: max error {err}");
            // not a comparison of two constants
            assert!(want.iter().any(|&v| v.abs() > 1e-2), "{name} {o}");
        }
    }
}

#[test]
fn mlp_matches_pytorch() {
    matches_pytorch::<f32>("mlp", &["logits"], 1e-4);
    matches_pytorch::<f64>("mlp", &["logits"], 1e-4);
}

#[test]
fn cnn_matches_pytorch() {
    matches_pytorch::<f32>("cnn", &["logits"], 1e-4);
    matches_pytorch::<f64>("cnn", &["logits"], 1e-4);
}

#[test]
fn mixed_ops_match_pytorch() {
    matches_pytorch::<f32>("mixed", &["probs", "logp"], 1e-5);
    matches_pytorch::<f64>("mixed", &["probs", "logp"], 1e-5);
}

#[test]
fn pools_match_pytorch() {
    matches_pytorch::<f32>("pools", &["a", "b"], 1e-5);
    matches_pytorch::<f64>("pools", &["a", "b"], 1e-5);
}

#[test]
fn initializers_become_parameters_and_statistics_buffers() {
    let model = Model::from_file(fixture("cnn.onnx")).unwrap();
    let g = Graph::<f32>::new();
    let net = model.import(&g, &ImportOptions::default()).unwrap();
    let id = |name: &str| g.get(name).map(|t| t.id());
    let params: Vec<_> = net.params.iter().map(|p| Some(p.id())).collect();
    for name in [
        "0.weight", "0.bias", "3.weight", "3.bias", "4.weight", "4.bias", "8.weight", "8.bias",
    ] {
        assert!(params.contains(&id(name)), "{name} is not a parameter");
    }
    assert_eq!(net.params.len(), 8);
    assert_eq!(g.params().len(), 8);
    let buffers: Vec<_> = g.buffers().iter().map(|b| Some(b.id())).collect();
    assert_eq!(buffers, [id("3.running_mean"), id("3.running_var")]);
    assert!(id("3.running_mean").is_some());
    assert_eq!(
        net.output("logits").unwrap().shape(),
        Shape::from((Dim::upto(64), 10))
    );
}

/// Adds cross-entropy to the imported logits, trains 20 SGD steps on PyTorch's batch of
/// 5 with fixed labels, and returns the first and last loss.
fn finetune(name: &str) -> (f32, f32) {
    let model = Model::from_file(fixture(&format!("{name}.onnx"))).unwrap();
    let g = Graph::<f32>::new();
    let net = model
        .import(&g, &ImportOptions::default().batch(Dim::upto(5)))
        .unwrap();
    let y = g.input("y", Dim::upto(5));
    let loss = net.output("logits").unwrap().cross_entropy(y);
    let grads = g.grad(loss, &net.params).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    m.feed(net.input("x").unwrap(), &io(name, "x5").mapv(|v| v as f32))
        .unwrap();
    m.feed(y, &Array1::from(vec![3.0, 1.0, 4.0, 1.0, 5.0]))
        .unwrap();
    let mut opt = Sgd::new(0.05);
    let mut losses = Vec::new();
    for _ in 0..20 {
        m.run().unwrap();
        losses.push(m.item(loss).unwrap());
        opt.step(&mut m, &grads).unwrap();
    }
    (losses[0], losses[19])
}

#[test]
fn mlp_fine_tunes() {
    let (first, last) = finetune("mlp");
    assert!(
        first.is_finite() && last < 0.5 * first,
        "loss {first} -> {last}"
    );
}

#[test]
fn cnn_fine_tunes() {
    let (first, last) = finetune("cnn");
    assert!(
        first.is_finite() && last < 0.5 * first,
        "loss {first} -> {last}"
    );
}

/// The gradient of an imported model (in f64) with respect to each imported parameter
/// matches central finite differences.
fn grads_match_finite_differences(name: &str, outputs: &[&str]) {
    let model = Model::from_file(fixture(&format!("{name}.onnx"))).unwrap();
    let g = Graph::<f64>::new();
    let net = model
        .import(&g, &ImportOptions::default().batch(Dim::upto(5)))
        .unwrap();
    // a scalar that weighs each output element differently
    let mut loss = None;
    let mut weights = Vec::new();
    for (k, o) in outputs.iter().enumerate() {
        let y = net.output(o).unwrap();
        let c = y.shape().dims()[1];
        let w = g.input(&format!("w{k}"), (Dim::upto(5), c));
        let mut v = ArrayD::zeros(IxDyn(&[5, c]));
        for (i, v) in v.iter_mut().enumerate() {
            *v = 1.0 + 0.1 * ((i + k) % 7) as f64;
        }
        weights.push((w, v));
        let term = (y * w).sum();
        loss = Some(loss.map_or(term, |l| l + term));
    }
    let loss = loss.unwrap();
    let grads = g.grad(loss, &net.params).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    m.feed(net.input("x").unwrap(), &io(name, "x5")).unwrap();
    for (w, v) in &weights {
        m.feed(*w, v).unwrap();
    }
    m.run().unwrap();
    let mut checked = 0;
    for (&p, &dp) in net.params.iter().zip(grads.tensors().iter()) {
        let analytic = m.value(dp).unwrap().to_owned();
        let value = m.value(p).unwrap().to_owned();
        // a few elements of each parameter, spread over it
        let n = value.len();
        for k in [0, n / 3, n / 2, n - 1] {
            let eps = 1e-6;
            let mut at = |d: f64| {
                let mut v = value.clone();
                v.as_slice_mut().unwrap()[k] += d;
                m.set_param(p, &v).unwrap();
                m.run().unwrap();
                m.item(loss).unwrap()
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            let a = analytic.as_slice().unwrap()[k];
            assert!(
                (a - numeric).abs() <= 1e-6 + 1e-4 * numeric.abs(),
                "{name}: parameter element {k}: analytic {a}, numeric {numeric}"
            );
            checked += 1;
        }
        m.set_param(p, &value).unwrap();
    }
    assert!(checked >= 8, "{checked}");
}

#[test]
fn mixed_grads_match_finite_differences() {
    grads_match_finite_differences("mixed", &["probs", "logp"]);
}

#[test]
fn pools_grads_match_finite_differences() {
    grads_match_finite_differences("pools", &["a", "b"]);
}

#[test]
fn pools1d_match_pytorch() {
    matches_pytorch::<f32>("pools1d", &["a", "b"], 1e-5);
    matches_pytorch::<f64>("pools1d", &["a", "b"], 1e-5);
}

#[test]
fn pools1d_grads_match_finite_differences() {
    grads_match_finite_differences("pools1d", &["a", "b"]);
}
