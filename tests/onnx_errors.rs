//! ONNX error paths, on models built in code: every error names what is wrong (the op
//! and the node where there is one), and corrupt bytes are errors, never panics.

#[path = "onnx_common/mod.rs"]
mod common;

use common::*;
use tapegrad::onnx::proto::{attribute_proto::AttributeType, ModelProto};
use tapegrad::onnx::{ImportOptions, Model};
use tapegrad::prelude::*;

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
            match m.import(&g, &ImportOptions::default().batch(Dim::upto(2))) {
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
