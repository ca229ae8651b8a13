//! ONNX models built in code (prost messages): the operators and paths the PyTorch
//! fixtures (tests/onnx.rs) do not reach.

#[path = "onnx_common/mod.rs"]
mod common;

use common::*;
use tapegrad::ndarray::{arr1, arr2, Array3};
use tapegrad::onnx::proto::{attribute_proto::AttributeType, ModelProto};
use tapegrad::onnx::{ImportOptions, Model};
use tapegrad::prelude::*;

#[test]
fn identity_dropout_constant_squeeze_unsqueeze() {
    let p = model(
        17,
        vec![vi("x", FLOAT, &[-1, 3])],
        vec![ints("ax", &[1], &[1])],
        vec![
            node("Identity", "id", &["x"], &["a"], vec![]),
            node("Dropout", "drop", &["a"], &["b"], vec![]),
            node("Unsqueeze", "un", &["b", "ax"], &["c"], vec![]), // [N, 1, 3]
            node("Squeeze", "sq", &["c", "ax"], &["d"], vec![]),
            node(
                "Constant",
                "k",
                &[],
                &["k"],
                vec![attr("value", AttributeType::Tensor, |a| {
                    a.t = Some(floats("", &[3], &[10.0, 20.0, 30.0]))
                })],
            ),
            node("Add", "add", &["d", "k"], &["y"], vec![]),
        ],
        &["y"],
    );
    let model = Model::from_proto(p).unwrap();
    let g = Graph::<f64>::new();
    let net = model
        .import(&g, &ImportOptions::default().batch(Dim::upto(4)))
        .unwrap();
    let y = net.output("y").unwrap();
    assert_eq!(y.shape(), Shape::from((Dim::upto(4), 3)));
    assert!(net.params.is_empty()); // an INT64 initializer used as axes is no parameter
    let mut m = g.compile(&[y], &[]).unwrap();
    m.feed(
        net.input("x").unwrap(),
        &arr2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
    )
    .unwrap();
    m.run().unwrap();
    let want = arr2(&[[11.0, 22.0, 33.0], [14.0, 25.0, 36.0]]).into_dyn();
    assert_eq!(m.value(y).unwrap(), want);
}

#[test]
fn softmax_before_opset_13_coerces_to_a_matrix() {
    // opset 11: softmax over axes 1.. together; opset 13: over axis 1 alone
    let x = Array3::from_shape_fn((2, 2, 3), |(i, j, k)| (i * 6 + j * 3 + k) as f64 * 0.3);
    for (opset, whole) in [(11, true), (13, false)] {
        let p = model(
            opset,
            vec![vi("x", FLOAT, &[-1, 2, 3])],
            vec![],
            vec![node("Softmax", "sm", &["x"], &["y"], vec![int("axis", 1)])],
            &["y"],
        );
        let g = Graph::<f64>::new();
        let net = Model::from_proto(p)
            .unwrap()
            .import(&g, &ImportOptions::default())
            .unwrap();
        let y = net.output("y").unwrap();
        let mut m = g.compile(&[y], &[]).unwrap();
        m.feed(net.input("x").unwrap(), &x).unwrap();
        m.run().unwrap();
        let v = m.value(y).unwrap();
        // each row of the coerced matrix sums to 1; per axis 1, each (i, k) column does
        let s: f64 = if whole {
            v.iter().take(6).sum()
        } else {
            v[[0, 0, 0]] + v[[0, 1, 0]]
        };
        assert!((s - 1.0).abs() < 1e-12, "opset {opset}: {s}");
        // softmax over 6 entries: e^0 / sum_k e^(0.3 k), k = 0..6
        let want0 = if whole {
            1.0 / (0..6).map(|k| (0.3 * k as f64).exp()).sum::<f64>()
        } else {
            1.0 / (1.0 + 0.9f64.exp())
        };
        assert!((v[[0, 0, 0]] - want0).abs() < 1e-12, "opset {opset}");
    }
}

#[test]
fn gather_of_run_time_ids_is_an_embedding_lookup() {
    let p = model(
        17,
        vec![vi("ids", INT64, &[-1])],
        vec![floats("table", &[3, 2], &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5])],
        vec![
            node("Gather", "emb", &["table", "ids"], &["e"], vec![]),
            node("Gather", "col", &["e", "one"], &["y"], vec![int("axis", 1)]),
            node("Constant", "c", &[], &["one"], vec![int("value_int", 1)]),
        ],
        &["y"],
    );
    // the Constant comes after its use: not topologically sorted, so an error
    let got = import_err(&p);
    assert!(
        got.contains("\"col\" (Gather): input \"one\" is not"),
        "{got}"
    );
    let mut p = p;
    let nodes = &mut p.graph.as_mut().unwrap().node;
    nodes.rotate_right(1);
    let g = Graph::<f32>::new();
    let net = Model::from_proto(p)
        .unwrap()
        .import(&g, &ImportOptions::default())
        .unwrap();
    assert_eq!(net.params.len(), 1); // the table, trainable
    let y = net.output("y").unwrap();
    let mut m = g.compile(&[y], &[]).unwrap();
    m.feed(net.input("ids").unwrap(), &arr1(&[2.0, 0.0, 1.0]))
        .unwrap();
    m.run().unwrap();
    assert_eq!(m.value(y).unwrap().as_slice(), Some(&[2.5, 0.5, 1.5][..]));
}

#[test]
fn raw_data_reads_as_inline_data() {
    let mut p = conv_model("Conv", vec![]);
    let w = &mut p.graph.as_mut().unwrap().initializer[0];
    let v: Vec<f32> = (0..18).map(|i| i as f32 * 0.25 - 2.0).collect();
    w.float_data = v.clone();
    let mut q = p.clone();
    let w = &mut q.graph.as_mut().unwrap().initializer[0];
    w.float_data.clear();
    w.raw_data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let run = |p: ModelProto| {
        let g = Graph::<f32>::new();
        let net = Model::from_proto(p)
            .unwrap()
            .import(&g, &ImportOptions::default())
            .unwrap();
        let y = net.output("y").unwrap();
        let mut m = g.compile(&[y], &[]).unwrap();
        let x = tapegrad::ndarray::Array4::from_shape_fn((1, 1, 4, 4), |(_, _, i, j)| {
            (i * 4 + j) as f32
        });
        m.feed(net.input("x").unwrap(), &x).unwrap();
        m.run().unwrap();
        m.value(y).unwrap().to_owned()
    };
    let (a, b) = (run(p), run(q));
    assert_eq!(a, b);
    assert!(a.iter().any(|&v| v != 0.0));
}

#[test]
fn the_run_time_batch_axis_follows_reshape_rules() {
    // Reshape x [N, 2, 3] to [0, -1] keeps the batch; to [-1, 3] would merge it
    for (shape, ok) in [
        (vec![0, -1], true),
        (vec![-1, 6], true),
        (vec![-1, 3], false),
        (vec![2, -1], false),
    ] {
        let p = model(
            17,
            vec![vi("x", FLOAT, &[-1, 2, 3])],
            vec![ints("s", &[2], &shape)],
            vec![node("Reshape", "r", &["x", "s"], &["y"], vec![])],
            &["y"],
        );
        let got = import_err(&p);
        assert_eq!(got == "no error", ok, "{shape:?}: {got}");
    }
    let p = model(
        17,
        vec![vi("x", FLOAT, &[-1, 2, 3])],
        vec![ints("s", &[2], &[0, -1])],
        vec![node("Reshape", "r", &["x", "s"], &["y"], vec![])],
        &["y"],
    );
    let g = Graph::<f32>::new();
    let net = Model::from_proto(p)
        .unwrap()
        .import(&g, &ImportOptions::default().batch(Dim::upto(3)))
        .unwrap();
    assert_eq!(
        net.output("y").unwrap().shape(),
        Shape::from((Dim::upto(3), 6))
    );
}

#[test]
fn an_initializer_passed_through_identity_is_one_parameter() {
    // y = x w + x Identity(w): PyTorch emits Identity for shared weights
    let p = model(
        17,
        vec![vi("x", FLOAT, &[-1, 2])],
        vec![floats("w", &[2, 1], &[1.0, 2.0])],
        vec![
            node("Identity", "tie", &["w"], &["w2"], vec![]),
            node("MatMul", "a", &["x", "w2"], &["p"], vec![]),
            node("MatMul", "b", &["x", "w"], &["q"], vec![]),
            node("Add", "sum", &["p", "q"], &["y"], vec![]),
        ],
        &["y"],
    );
    let g = Graph::<f64>::new();
    let net = Model::from_proto(p)
        .unwrap()
        .import(&g, &ImportOptions::default())
        .unwrap();
    assert_eq!(net.params.len(), 1);
    assert_eq!(g.get("w").map(|t| t.id()), Some(net.params[0].id()));
    let y = net.output("y").unwrap();
    let grads = g.grad(y.sum(), &net.params).unwrap();
    let mut m = g.compile(&[y], &grads).unwrap();
    m.feed(net.input("x").unwrap(), &arr2(&[[1.0, 3.0]]))
        .unwrap();
    m.run().unwrap();
    // y = 2 (1 * 1 + 3 * 2) = 14; dy/dw = 2 x
    assert_eq!(m.value(y).unwrap().as_slice(), Some(&[14.0][..]));
    assert_eq!(
        m.value(grads.tensors()[0]).unwrap().as_slice(),
        Some(&[2.0, 6.0][..])
    );
}

#[test]
fn gemm_honours_alpha_beta_and_both_transposes() {
    // y = 0.5 A' B' + 2 C with A = a [2, 1] (A' = [1, 2]), B = w [3, 2] (B' = [2, 3])
    // and C = c [3] broadcast
    let p = model(
        17,
        vec![],
        vec![
            floats("a", &[2, 1], &[1.0, 2.0]),
            floats("w", &[3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]),
            floats("c", &[3], &[10.0, 20.0, 30.0]),
        ],
        vec![node(
            "Gemm",
            "fc",
            &["a", "w", "c"],
            &["y"],
            vec![
                attr("alpha", AttributeType::Float, |a| a.f = 0.5),
                attr("beta", AttributeType::Float, |a| a.f = 2.0),
                int("transA", 1),
                int("transB", 1),
            ],
        )],
        &["y"],
    );
    let g = Graph::<f64>::new();
    let net = Model::from_proto(p)
        .unwrap()
        .import(&g, &ImportOptions::default())
        .unwrap();
    let y = net.output("y").unwrap();
    let mut m = g.compile(&[y], &[]).unwrap();
    m.run().unwrap();
    // A' B' = [1, 2] . [[1, 0, 1], [0, 1, 1]] = [1, 2, 3]; 0.5 [1, 2, 3] + 2 [10, 20, 30]
    assert_eq!(
        m.value(y).unwrap().as_slice(),
        Some(&[20.5, 41.0, 61.5][..])
    );
    assert_eq!(net.params.len(), 3);
}
