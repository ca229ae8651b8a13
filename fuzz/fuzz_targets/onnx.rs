//! ONNX bytes: arbitrary bytes (seeded with the PyTorch fixtures) into
//! `tapegrad::onnx::Model::from_bytes`, then `import` into f32 and f64 graphs, `compile`
//! and, for a graph that compiles, a `run` on zero inputs. Every call may return `Err`;
//! none may panic or abort.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tapegrad::ndarray::ArrayD;
use tapegrad::onnx::{ImportOptions, Model};
use tapegrad::prelude::*;
use tapegrad::Scalar;

fn one<T: Scalar>(model: &Model) {
    let g = Graph::<T>::new();
    let Ok(net) = model.import(&g, &ImportOptions::default().batch(Dim::upto(3))) else {
        return;
    };
    let outputs: Vec<_> = net.outputs.iter().map(|(_, t)| *t).collect();
    let Ok(mut m) = g.compile(&outputs, &[]) else {
        return;
    };
    for (_, x) in &net.inputs {
        let dims: Vec<usize> = x.shape().dims().to_vec();
        let _ = m.feed(*x, &ArrayD::<T>::zeros(dims));
    }
    let _ = m.run();
}

fuzz_target!(|data: &[u8]| {
    tapegrad::set_max_bytes(64 << 20); // as the other targets (common.rs, `limit_memory`)
    if let Ok(model) = Model::from_bytes(data) {
        one::<f32>(&model);
        one::<f64>(&model);
    }
});
