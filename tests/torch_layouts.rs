//! PyTorch's files with `WeightMap::torch()` and no entries: a model built from
//! `nn::Linear` layers named as the `nn.Sequential` of `tests/fixtures/make_torch_mlp.py`
//! ("0", "2") loads PyTorch's `state_dict` and computes PyTorch's logits, saves back the
//! very tensors PyTorch wrote, and loads the file of the other dtype when asked.
#![cfg(feature = "std")]

use std::path::PathBuf;

use safetensors::SafeTensors;
use tapegrad::nn::Linear;
use tapegrad::prelude::*;
use tapegrad::rand::SeedableRng;
use tapegrad::weights::WeightMap;
use tapegrad::Scalar;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))` for a batch of 6, its
/// input and logits, randomly initialised (the tests load PyTorch's weights over it).
fn model<T: Scalar>(g: &Graph<T>) -> (Machine<T>, Tensor<'_, T>, Tensor<'_, T>) {
    let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(3);
    let l0 = Linear::new(g, "0", 8, 16, &mut rng);
    let l2 = Linear::new(g, "2", 16, 4, &mut rng);
    let x = g.input("x", [6, 8]);
    let logits = l2.forward(l0.forward(x).relu());
    (g.compile(&[logits], &[]).unwrap(), x, logits)
}

/// Tensor `name` of a safetensors file as f32 values.
fn f32s(file: &SafeTensors<'_>, name: &str) -> Vec<f32> {
    let t = file.tensor(name).unwrap();
    t.data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn values<T: Scalar>(m: &Machine<T>) -> Vec<(String, Vec<f64>)> {
    let names: Vec<String> = m.params().map(|(n, _)| n.to_string()).collect();
    names
        .into_iter()
        .map(|n| {
            let v = m.value(m.handle_of(&n).unwrap()).unwrap();
            (n, v.iter().map(|x| x.to_f64().unwrap()).collect())
        })
        .collect()
}

#[test]
fn nn_layers_load_pytorch_weights_with_no_entries() {
    let g = Graph::<f32>::new();
    let (mut m, x, logits) = model(&g);
    let path = fixture("torch_mlp_f32.safetensors");
    m.load_with(&path, &WeightMap::torch()).unwrap();

    let io_bytes = std::fs::read(fixture("torch_mlp_f32_io.safetensors")).unwrap();
    let io = SafeTensors::deserialize(&io_bytes).unwrap();
    let x_value = ndarray::Array2::from_shape_vec((6, 8), f32s(&io, "x")).unwrap();
    m.feed(x, &x_value).unwrap();
    m.run().unwrap();
    // float32 sums in another order: within 1e-5 of the larger magnitude
    let want = f32s(&io, "logits");
    for (got, want) in m.value(logits).unwrap().iter().zip(want) {
        approx::assert_relative_eq!(*got, want, max_relative = 1e-5, epsilon = 1e-7);
    }

    // saved back: the very tensors PyTorch wrote, names, shapes and bytes
    let ours = m.save_to_bytes_with(&WeightMap::torch()).unwrap();
    let ours = SafeTensors::deserialize(&ours).unwrap();
    let theirs_bytes = std::fs::read(&path).unwrap();
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
}

/// The float64 fixture is the float32 one cast (make_torch_mlp.py), so every value is
/// an f32: converted either way, the loads agree exactly with the strict load of the
/// file of the machine's own dtype.
#[test]
fn pytorch_files_of_the_other_dtype_load_when_asked() {
    let torch = WeightMap::torch();
    let convert = WeightMap::torch().convert_dtype(true);
    let (f32_file, f64_file) = (
        fixture("torch_mlp_f32.safetensors"),
        fixture("torch_mlp_f64.safetensors"),
    );

    let (g, h) = (Graph::<f64>::new(), Graph::<f64>::new());
    let (mut strict, _, _) = model(&g);
    strict.load_with(&f64_file, &torch).unwrap();
    let (mut wide, _, _) = model(&h);
    let e = wide.load_with(&f32_file, &torch).unwrap_err();
    assert!(e.to_string().contains("convert_dtype(true)"), "{e}");
    wide.load_with(&f32_file, &convert).unwrap();
    assert_eq!(values(&wide), values(&strict));

    let (g, h) = (Graph::<f32>::new(), Graph::<f32>::new());
    let (mut strict, _, _) = model(&g);
    strict.load_with(&f32_file, &torch).unwrap();
    let (mut narrow, _, _) = model(&h);
    assert!(narrow.load_with(&f64_file, &torch).is_err());
    narrow.load_with(&f64_file, &convert).unwrap();
    assert_eq!(values(&narrow), values(&strict));
}
