//! tapegrad against PyTorch: the MLP of `tests/fixtures/make_torch_mlp.py` (8-16-4, ReLU,
//! mean cross-entropy), its weights loaded from the file PyTorch saved, gives PyTorch's
//! logits, loss and parameter gradients, in f32 and in f64.
#![cfg(feature = "std")]

use safetensors::SafeTensors;
use tapegrad::prelude::*;
use tapegrad::rand::SeedableRng;
use tapegrad::weights::WeightMap;
use tapegrad::Scalar;

#[path = "common/torch.rs"]
mod torch;
use torch::{compare, fixture, tensor};

/// PyTorch's `nn.Sequential` names: layer 0 and layer 2 (layer 1 is the ReLU).
fn torch_map() -> WeightMap {
    WeightMap::new()
        .torch_linear("0", "w1", "b1")
        .torch_linear("2", "w2", "b2")
}

/// Builds the MLP in tapegrad, loads PyTorch's weights, runs the fixture's batch and
/// compares every value; returns the largest relative error.
fn matches_pytorch<T: Scalar>(tag: &str, max_relative: f64, epsilon: f64) -> f64 {
    let io_bytes = std::fs::read(fixture(&format!("torch_mlp_{tag}_io.safetensors"))).unwrap();
    let io = SafeTensors::deserialize(&io_bytes).unwrap();
    let x_value = tensor(&io, "x");
    let y_value = tensor(&io, "y");
    let batch = x_value.shape()[0];

    let g = Graph::<T>::new();
    let x = g.input("x", [batch, 8]);
    let y = g.input("y", [batch]);
    let w1 = g.param("w1", init::zeros([8, 16]).unwrap());
    let b1 = g.param("b1", init::zeros([16]).unwrap());
    let w2 = g.param("w2", init::zeros([16, 4]).unwrap());
    let b2 = g.param("b2", init::zeros([4]).unwrap());
    let logits = (x.matmul(w1) + b1).relu().matmul(w2) + b2;
    let loss = logits.cross_entropy(y);
    let params = [w1, b1, w2, b2];
    let grads = g.grad(loss, &params).unwrap();
    let mut m = g.compile(&[loss, logits], &grads).unwrap();

    let weights = fixture(&format!("torch_mlp_{tag}.safetensors"));
    m.load_with(&weights, &torch_map()).unwrap();
    m.feed(x, &x_value.mapv(T::of)).unwrap();
    m.feed(y, &y_value.mapv(T::of)).unwrap();
    m.run().unwrap();

    let mut worst = compare(
        tag,
        m.value(logits).unwrap(),
        &tensor(&io, "logits"),
        max_relative,
        epsilon,
    );
    let loss_value = ndarray::arr0(m.item(loss).unwrap()).into_dyn();
    worst = worst.max(compare(
        tag,
        loss_value.view(),
        &tensor(&io, "loss"),
        max_relative,
        epsilon,
    ));
    // tapegrad's weight gradients are [in, out], PyTorch's [out, in]
    for (grad, (name, transposed)) in grads.tensors().iter().zip([
        ("0.weight", true),
        ("0.bias", false),
        ("2.weight", true),
        ("2.bias", false),
    ]) {
        let want = tensor(&io, &format!("grad.{name}"));
        let want = if transposed {
            want.reversed_axes()
        } else {
            want
        };
        let what = format!("{tag} grad {name}");
        worst = worst.max(compare(
            &what,
            m.value(*grad).unwrap(),
            &want,
            max_relative,
            epsilon,
        ));
    }

    // saved back in PyTorch's layout, the weights are the very tensors PyTorch wrote
    let ours = m.save_to_bytes_with(&torch_map()).unwrap();
    let ours = SafeTensors::deserialize(&ours).unwrap();
    let theirs_bytes = std::fs::read(&weights).unwrap();
    let theirs = SafeTensors::deserialize(&theirs_bytes).unwrap();
    let mut names = theirs.names();
    names.sort_unstable();
    assert_eq!(names, ["0.bias", "0.weight", "2.bias", "2.weight"]);
    for name in names {
        let (a, b) = (ours.tensor(name).unwrap(), theirs.tensor(name).unwrap());
        assert_eq!(
            (a.dtype(), a.shape(), a.data()),
            (b.dtype(), b.shape(), b.data()),
            "{name}"
        );
    }
    eprintln!("{tag}: largest relative error against PyTorch {worst:e}");
    worst
}

#[test]
fn f32_matches_pytorch() {
    // float32 sums in another order: within 1e-5 of the larger magnitude, or 1e-7 apart
    // for values near zero
    matches_pytorch::<f32>("f32", 1e-5, 1e-7);
}

#[test]
fn f64_matches_pytorch() {
    matches_pytorch::<f64>("f64", 1e-12, 1e-15);
}

#[test]
fn pytorch_names_need_the_map() {
    let g = Graph::<f32>::new();
    let w1 = g.param("w1", init::zeros([8, 16]).unwrap());
    let y = w1.sum();
    let mut m = g.compile(&[y], &[]).unwrap();
    let weights = fixture("torch_mlp_f32.safetensors");
    let e = m.load(&weights).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("weights tensor \"w1\" loaded at tests/pytorch_fixture.rs:"),
        "{e}"
    );
    // the first layer alone, transposed, and the rest of the file skipped
    let map = WeightMap::new()
        .transposed("w1", "0.weight")
        .allow_extra(true);
    m.load_with(&weights, &map).unwrap();
    let io_bytes = std::fs::read(fixture("torch_mlp_f32.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&io_bytes).unwrap();
    let want = tensor(&file, "0.weight").reversed_axes();
    assert_eq!(compare("w1", m.value(w1).unwrap(), &want, 0.0, 0.0), 0.0);
}

/// An `Mlp` has `nn.Sequential`'s names: `Linear, ReLU, Linear` is layers `0` and `2`,
/// so PyTorch's file loads by name, only the weights transposed (a user's load failed
/// when the second layer was numbered `1`).
#[test]
fn an_mlp_loads_pytorch_sequential_weights_by_name() {
    use tapegrad::nn::{MlpBuilder, Module};
    let io_bytes = std::fs::read(fixture("torch_mlp_f64_io.safetensors")).unwrap();
    let io = SafeTensors::deserialize(&io_bytes).unwrap();
    let x_value = tensor(&io, "x");
    let g = Graph::<f64>::new();
    let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(0);
    let mlp = MlpBuilder::new(&[8, 16, 4]).build(&g, "", &mut rng);
    let x = g.input("x", [x_value.shape()[0], 8]);
    let logits = mlp.forward(x);
    let mut m = g.compile(&[logits], &[]).unwrap();
    let names: Vec<String> = m.params().map(|(n, _)| n.to_string()).collect();
    assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
    let map = WeightMap::new()
        .transposed("0.weight", "0.weight")
        .transposed("2.weight", "2.weight");
    m.load_with(fixture("torch_mlp_f64.safetensors"), &map)
        .unwrap();
    m.feed(x, &x_value).unwrap();
    m.run().unwrap();
    compare(
        "mlp",
        m.value(logits).unwrap(),
        &tensor(&io, "logits"),
        1e-12,
        1e-15,
    );
    assert_eq!(Module::params(&mlp).len(), 4);
}
