//! Builders of ONNX models in code (prost messages), shared by tests/onnx_built.rs and
//! tests/onnx_errors.rs.

#![allow(dead_code)] // each test file uses part of it

use tapegrad::onnx::prost::Message;
use tapegrad::onnx::proto::{
    attribute_proto::AttributeType, tensor_shape_proto::dimension, tensor_shape_proto::Dimension,
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use tapegrad::onnx::{ImportOptions, Model};
use tapegrad::prelude::*;

pub const FLOAT: i32 = 1;
pub const INT64: i32 = 7;

/// A graph input or output; `-1` is a dynamic extent.
pub fn vi(name: &str, elem: i32, dims: &[i64]) -> ValueInfoProto {
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

pub fn floats(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: FLOAT,
        float_data: v.to_vec(),
        ..Default::default()
    }
}

pub fn ints(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: INT64,
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

pub fn attr(name: &str, ty: AttributeType, f: impl FnOnce(&mut AttributeProto)) -> AttributeProto {
    let mut a = AttributeProto {
        name: name.into(),
        r#type: ty as i32,
        ..Default::default()
    };
    f(&mut a);
    a
}

pub fn int(name: &str, v: i64) -> AttributeProto {
    attr(name, AttributeType::Int, |a| a.i = v)
}

pub fn ints_attr(name: &str, v: &[i64]) -> AttributeProto {
    attr(name, AttributeType::Ints, |a| a.ints = v.to_vec())
}

pub fn node(op: &str, name: &str, i: &[&str], o: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: i.iter().map(|s| s.to_string()).collect(),
        output: o.iter().map(|s| s.to_string()).collect(),
        name: name.into(),
        op_type: op.into(),
        attribute: attrs,
        ..Default::default()
    }
}

pub fn model(
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
pub fn import_err(p: &ModelProto) -> String {
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

/// A one-node model on x [N, 1, 4, 4] with weight w [2, 1, 3, 3].
pub fn conv_model(op: &str, attrs: Vec<AttributeProto>) -> ModelProto {
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
