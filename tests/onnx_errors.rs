//! ONNX models built in code (prost messages): the operators the PyTorch fixtures do not
//! emit, the opset rules, and every error path. Nothing here panics on a bad model.

use tapegrad::ndarray::{arr1, arr2, Array3};
use tapegrad::onnx::prost::Message;
use tapegrad::onnx::proto::{
    attribute_proto::AttributeType, tensor_shape_proto::dimension, tensor_shape_proto::Dimension,
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use tapegrad::onnx::{ImportOptions, Model};
use tapegrad::prelude::*;

const FLOAT: i32 = 1;
const INT64: i32 = 7;

/// A graph input or output; `-1` is a dynamic extent.
fn vi(name: &str, elem: i32, dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&d| Dimension {
            value: Some(if d < 0 {
                dimension::Value::DimParam("N".into())
            } else {
                dimension::Value::DimValue(d)
            }),
            denotation: String::new(),
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem,
                shape: Some(TensorShapeProto { dim }),
            })),
            denotation: String::new(),
        }),
        doc_string: String::new(),
    }
}

fn floats(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: FLOAT,
        float_data: v.to_vec(),
        ..Default::default()
    }
}

fn ints(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: INT64,
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

fn attr(name: &str, ty: AttributeType, f: impl FnOnce(&mut AttributeProto)) -> AttributeProto {
    let mut a = AttributeProto {
        name: name.into(),
        r#type: ty as i32,
        ..Default::default()
    };
    f(&mut a);
    a
}

fn int(name: &str, v: i64) -> AttributeProto {
    attr(name, AttributeType::Int, |a| a.i = v)
}

fn ints_attr(name: &str, v: &[i64]) -> AttributeProto {
    attr(name, AttributeType::Ints, |a| a.ints = v.to_vec())
}

fn node(op: &str, name: &str, i: &[&str], o: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: i.iter().map(|s| s.to_string()).collect(),
        output: o.iter().map(|s| s.to_string()).collect(),
        name: name.into(),
        op_type: op.into(),
        attribute: attrs,
        ..Default::default()
    }
}

fn model(
    opset: i64,
    inputs: Vec<ValueInfoProto>,
    inits: Vec<TensorProto>,
    nodes: Vec<NodeProto>,
    outputs: &[&str],
) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(GraphProto {
            node: nodes,
            name: "g".into(),
            initializer: inits,
            input: inputs,
            output: outputs.iter().map(|o| vi(o, FLOAT, &[])).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Encodes, decodes and imports `p` into a new f64 graph; the error's message otherwise.
fn import_err(p: &ModelProto) -> String {
    let model = match Model::from_bytes(&p.encode_to_vec()) {
        Ok(m) => m,
        Err(e) => return e.to_string(),
    };
    let g = Graph::<f64>::new();
    match model.import(&g, &ImportOptions::default()) {
        Ok(_) => String::from("no error"),
        Err(e) => e.to_string(),
    }
}

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
        .import(
            &g,
            &ImportOptions {
                batch: Dim::upto(4),
            },
        )
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

/// A one-node model on x [N, 1, 4, 4] with weight w [2, 1, 3, 3].
fn conv_model(op: &str, attrs: Vec<AttributeProto>) -> ModelProto {
    model(
        17,
        vec![vi("x", FLOAT, &[-1, 1, 4, 4])],
        vec![floats("w", &[2, 1, 3, 3], &[0.1; 18])],
        vec![node(
            op,
            "n0",
            &["x", "w"][..if op == "Conv" { 2 } else { 1 }],
            &["y"],
            attrs,
        )],
        &["y"],
    )
}

#[test]
fn every_error_names_what_is_wrong() {
    let s = |v: &str| {
        attr("auto_pad", AttributeType::String, |a| {
            a.s = v.as_bytes().to_vec()
        })
    };
    let cases: Vec<(ModelProto, &str)> = vec![
        (
            conv_model("Resize", vec![]),
            "ONNX node \"n0\" (Resize): operator \"Resize\" is not supported",
        ),
        (
            conv_model("Conv", vec![s("SAME_UPPER")]),
            "auto_pad \"SAME_UPPER\" is not supported",
        ),
        (
            conv_model("Conv", vec![ints_attr("pads", &[1, 1, 0, 0])]),
            "only symmetric padding",
        ),
        (
            conv_model("Conv", vec![int("pads", 1)]),
            "attribute \"pads\" has type INT, expected INTS",
        ),
        (
            conv_model("Conv", vec![int("bogus", 1)]),
            "attribute \"bogus\" is not supported",
        ),
        (
            conv_model("Conv", vec![ints_attr("kernel_shape", &[2, 2])]),
            "does not match the weight",
        ),
        (
            conv_model(
                "MaxPool",
                vec![ints_attr("kernel_shape", &[2, 2]), int("ceil_mode", 1)],
            ),
            "ceil_mode 1 is not supported",
        ),
        (conv_model("MaxPool", vec![]), "kernel_shape is required"),
        (
            conv_model("Dropout", vec![int("is_test", 0)]),
            "Dropout in training mode is not supported",
        ),
        (
            conv_model("Reshape", vec![]),
            "(Reshape): input 1 is required",
        ),
        (
            conv_model("Flatten", vec![int("axis", 0)]),
            "would merge the run-time batch axis",
        ),
        (
            conv_model("Transpose", vec![ints_attr("perm", &[1, 0])]),
            "(Transpose): perm [1, 0] does not fit rank 4",
        ),
        (
            conv_model("Conv", vec![int("group", 0)]),
            "group 0 must be >= 1",
        ),
    ];
    for (p, want) in cases {
        let got = import_err(&p);
        assert!(got.contains(want), "expected {want:?} in {got:?}");
    }
}

#[test]
fn shape_errors_name_the_node() {
    let p = model(
        17,
        vec![vi("x", FLOAT, &[-1, 3])],
        vec![floats("w", &[4, 2], &[0.0; 8])],
        vec![node("MatMul", "fc", &["x", "w"], &["y"], vec![])],
        &["y"],
    );
    let got = import_err(&p);
    assert!(
        got.starts_with("ONNX node \"fc\" (MatMul): shape error in `matmul`"),
        "{got}"
    );
    // an unnamed node is named by its position
    let mut p = p;
    p.graph.as_mut().unwrap().node[0].name.clear();
    assert!(import_err(&p).starts_with("ONNX node \"#0\" (MatMul)"));
}

#[test]
fn opsets_and_domains_outside_the_range_are_errors() {
    let ok = conv_model("Conv", vec![]);
    assert_eq!(import_err(&ok), "no error");
    for v in [6, 23] {
        let mut p = ok.clone();
        p.opset_import[0].version = v;
        let got = import_err(&p);
        assert!(
            got.contains(&format!("opset {v} of the default domain is not supported")),
            "{got}"
        );
    }
    let mut p = ok.clone();
    p.opset_import[0].domain = "ai.onnx.ml".into();
    assert!(import_err(&p).contains("imports no opset of the default domain"));
    let mut p = ok.clone();
    p.graph.as_mut().unwrap().node[0].domain = "com.microsoft".into();
    let got = import_err(&p);
    assert!(
        got.contains("(Conv): domain \"com.microsoft\" is not supported"),
        "{got}"
    );
    let mut p = ok.clone();
    p.graph = None;
    assert!(import_err(&p).contains("the model has no graph"));
}

#[test]
fn bad_inputs_and_initializers_are_errors() {
    let mut p = conv_model("Conv", vec![]);
    p.graph.as_mut().unwrap().input[0] = vi("x", FLOAT, &[-1, 1, -1, 4]);
    assert!(import_err(&p).contains("dynamic extent on axis 2"));
    let mut p = conv_model("Conv", vec![]);
    p.graph.as_mut().unwrap().input[0] = vi("x", 8, &[-1, 1, 4, 4]); // STRING
    assert!(import_err(&p).contains("element type STRING"));
    let mut p = conv_model("Conv", vec![]);
    p.graph.as_mut().unwrap().initializer[0].float_data.pop();
    assert!(import_err(&p).contains("holds 17 elements"));
    let mut p = conv_model("Conv", vec![]);
    let w = &mut p.graph.as_mut().unwrap().initializer[0];
    w.float_data.clear();
    w.raw_data = vec![0; 71];
    assert!(import_err(&p).contains("has 71 bytes of raw data, not 72"));
    let mut p = conv_model("Conv", vec![]);
    p.graph.as_mut().unwrap().initializer[0].data_location = 1;
    assert!(import_err(&p).contains("external file"));
    let mut p = conv_model("Conv", vec![]);
    p.graph.as_mut().unwrap().output[0].name = "z".into();
    assert!(import_err(&p).contains("output: input \"z\" is not"));
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
fn corrupt_bytes_are_errors_not_panics() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/onnx/pools.onnx"
    ))
    .unwrap();
    assert!(Model::from_bytes(&[]).is_err()); // no graph
    assert!(Model::from_bytes(b"not a model at all").is_err());
    let (mut errors, mut imported) = (0, 0);
    let mut try_bytes = |b: &[u8]| match Model::from_bytes(b) {
        Err(_) => errors += 1,
        Ok(m) => {
            let g = Graph::<f32>::new();
            match m.import(
                &g,
                &ImportOptions {
                    batch: Dim::upto(2),
                },
            ) {
                Ok(_) => imported += 1,
                Err(_) => errors += 1,
            }
        }
    };
    for cut in 0..bytes.len() {
        try_bytes(&bytes[..cut]);
    }
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            try_bytes(&b);
        }
    }
    // most mutations are caught; some change only a value and import fine
    assert!(
        errors > bytes.len() && imported > 0,
        "{errors} errors, {imported} imported"
    );
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
        .import(
            &g,
            &ImportOptions {
                batch: Dim::upto(3),
            },
        )
        .unwrap();
    assert_eq!(
        net.output("y").unwrap().shape(),
        Shape::from((Dim::upto(3), 6))
    );
}
