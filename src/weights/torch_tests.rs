//! `WeightMap::torch` on models built from `nn` layers: each parameter in the layout its
//! layer records, and PyTorch's `num_batches_tracked` counters skipped on load.

use core::panic::Location;

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use rand::SeedableRng;

use super::format::{self, Dtype, Out};
use super::WeightMap;
use crate::error::Error;
use crate::graph::Graph;
use crate::machine::Machine;
use crate::nn::Linear;
use crate::shape::Shape;

/// `fc` an `nn::Linear` 2 -> 3; `emb.weight` `[5, 2]` and `bn.weight` `[2]` as an `nn`
/// layer other than `Linear` records them (PyTorch stores them as they are); `head.weight`
/// `[2, 4]` and `head.bias` made with `g.param`, which go by their names. Every element
/// distinct.
fn model(g: &Graph<f32>) -> Machine<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let ids = g.input("ids", [1]);
    let emb = g.param_or_fail(
        "emb.weight",
        crate::init::zeros([5, 2]),
        Shape::from([5, 2]),
        Location::caller(),
    );
    let bn = g.param_or_fail(
        "bn.weight",
        crate::init::zeros([2]),
        Shape::from([2]),
        Location::caller(),
    );
    let fc = Linear::new(g, "fc", 2, 3, &mut rng);
    let head = g.param("head.weight", crate::init::zeros([3, 4]).unwrap());
    let bias = g.param("head.bias", crate::init::zeros([4]).unwrap());
    let x = ids.sum() * emb.sum_axes(&[0], true) * bn; // [1, 2]
    let y = fc.forward(x).matmul(head) + bias;
    let mut m = g.compile(&[y], &[]).unwrap();
    let mut k = 0.0;
    let names: Vec<String> = m.params().map(|(n, _)| n.to_string()).collect();
    for name in names {
        let h = m.handle_of(&name).unwrap();
        let v = m.value(h).unwrap().mapv(|_| {
            k += 1.0;
            k
        });
        m.set_param(h, &v).unwrap();
    }
    m
}

/// `m` with every parameter 0, so that a load has something to restore.
fn zeroed(mut m: Machine<f32>) -> Machine<f32> {
    let names: Vec<String> = m.params().map(|(n, _)| n.to_string()).collect();
    for name in names {
        let h = m.handle_of(&name).unwrap();
        let zero = m.value(h).unwrap().mapv(|_| 0.0);
        m.set_param(h, &zero).unwrap();
    }
    m
}

fn shapes(bytes: &[u8]) -> Vec<(String, Vec<usize>)> {
    let file = format::read(bytes).unwrap();
    let mut v: Vec<_> = file
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    v.sort();
    v
}

fn values(m: &Machine<f32>) -> Vec<(String, Vec<u32>)> {
    let names: Vec<String> = m.params().map(|(n, _)| n.to_string()).collect();
    names
        .into_iter()
        .map(|n| {
            let v = m.value(m.handle_of(&n).unwrap()).unwrap();
            (n, v.iter().map(|x| x.to_bits()).collect())
        })
        .collect()
}

#[test]
fn torch_map_lays_out_each_parameter_as_its_layer_records() {
    let g = Graph::<f32>::new();
    let m = model(&g);
    let bytes = m.save_to_bytes_with(&WeightMap::torch()).unwrap();
    let v = |s: &[usize]| s.to_vec();
    // Linear transposed; the embedding table not (the name rule alone transposed it);
    // `g.param`'s 2-D `*.weight` by the name rule
    assert_eq!(
        shapes(&bytes),
        [
            ("bn.weight".to_string(), v(&[2])),
            ("emb.weight".to_string(), v(&[5, 2])),
            ("fc.bias".to_string(), v(&[3])),
            ("fc.weight".to_string(), v(&[3, 2])),
            ("head.bias".to_string(), v(&[4])),
            ("head.weight".to_string(), v(&[4, 3])),
        ]
    );
    // fc.weight [2, 3] here is PyTorch's [3, 2] transposed: file[i][j] = ours[j][i]
    let file = format::read(&bytes).unwrap();
    let t = file.tensor("fc.weight").unwrap();
    let ours = m.value(m.handle_of("fc.weight").unwrap()).unwrap();
    for i in 0..3 {
        for j in 0..2 {
            let at = 4 * (i * 2 + j);
            let x = f32::from_le_bytes(t.data[at..at + 4].try_into().unwrap());
            assert_eq!(x, ours[[j, i]]);
        }
    }
    let g2 = Graph::<f32>::new();
    let mut fresh = zeroed(model(&g2));
    fresh
        .load_from_bytes_with(&bytes, &WeightMap::torch())
        .unwrap();
    assert_eq!(values(&fresh), values(&m));
}

/// `bytes` with the extra tensors `extra` (name, dtype, shape, data).
fn with_extra(bytes: &[u8], extra: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let file = format::read(bytes).unwrap();
    let mut outs: Vec<Out<'_>> = file
        .tensors
        .iter()
        .map(|t| Out {
            name: &t.name,
            dtype: t.dtype,
            shape: t.shape.clone(),
            data: t.data.to_vec(),
        })
        .collect();
    for (name, dtype, shape, data) in extra {
        outs.push(Out {
            name,
            dtype: *dtype,
            shape: shape.clone(),
            data: data.clone(),
        });
    }
    format::write(outs).unwrap()
}

fn extra_name(e: &Error) -> &str {
    match e {
        Error::Weights { name, expected, .. } => {
            assert!(expected.starts_with("no tensor"), "{e}");
            name
        }
        e => panic!("{e}"),
    }
}

#[test]
fn torch_map_skips_num_batches_tracked_on_load() {
    let g = Graph::<f32>::new();
    let m = model(&g);
    let saved = m.save_to_bytes_with(&WeightMap::torch()).unwrap();
    // PyTorch's counter: an int64 scalar, here 7 batches
    let counter = (
        "bn.num_batches_tracked",
        Dtype::I64,
        vec![],
        7i64.to_le_bytes().to_vec(),
    );
    let bytes = with_extra(&saved, core::slice::from_ref(&counter));
    let g2 = Graph::<f32>::new();
    let mut fresh = zeroed(model(&g2));
    let before = values(&fresh);
    // a map of the same layout but not `torch()` is strict about it, as about any
    // tensor no parameter takes
    let by_hand = WeightMap::new()
        .torch_linear("fc", "fc.weight", "fc.bias")
        .transposed("head.weight", "head.weight");
    let e = fresh.load_from_bytes_with(&bytes, &by_hand).unwrap_err();
    assert_eq!(extra_name(&e), "bn.num_batches_tracked");
    fresh.load_from_bytes_with(&saved, &by_hand).unwrap();
    fresh = zeroed(fresh);
    assert_eq!(values(&fresh), before);
    fresh
        .load_from_bytes_with(&bytes, &WeightMap::torch())
        .unwrap();
    assert_eq!(values(&fresh), values(&m));

    // only PyTorch's counters: another int64 tensor, or a counter that is not a scalar,
    // is still an extra tensor
    let other = ("bn.count", Dtype::I64, vec![], 7i64.to_le_bytes().to_vec());
    let e = fresh
        .load_from_bytes_with(&with_extra(&saved, &[other]), &WeightMap::torch())
        .unwrap_err();
    assert_eq!(extra_name(&e), "bn.count");
    let shaped = (
        "bn.num_batches_tracked",
        Dtype::I64,
        vec![1],
        7i64.to_le_bytes().to_vec(),
    );
    let e = fresh
        .load_from_bytes_with(&with_extra(&saved, &[shaped]), &WeightMap::torch())
        .unwrap_err();
    assert_eq!(extra_name(&e), "bn.num_batches_tracked");
    // saving writes none
    let resaved = fresh.save_to_bytes_with(&WeightMap::torch()).unwrap();
    assert!(shapes(&resaved)
        .iter()
        .all(|(n, _)| !n.contains("num_batches")));
}

#[test]
fn a_parameter_fed_an_i64_tensor_is_an_error() {
    let g = Graph::<f32>::new();
    let w = g.param("bn.num_batches_tracked", ndarray::arr0(0.0f32));
    let mut m = g.compile(&[w], &[]).unwrap();
    let bytes = format::write(vec![Out {
        name: "bn.num_batches_tracked",
        dtype: Dtype::I64,
        shape: vec![],
        data: 7i64.to_le_bytes().to_vec(),
    }])
    .unwrap();
    for map in [WeightMap::torch(), WeightMap::new().convert_dtype(true)] {
        match m.load_from_bytes_with(&bytes, &map).unwrap_err() {
            Error::Weights {
                name,
                expected,
                found,
                ..
            } => {
                assert_eq!(name, "bn.num_batches_tracked");
                assert_eq!((expected.as_str(), found.as_str()), ("f32 []", "i64 []"));
            }
            e => panic!("{e}"),
        }
    }
    assert_eq!(m.value(w).unwrap()[[]], 0.0);
}
