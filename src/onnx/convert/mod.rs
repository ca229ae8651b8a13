//! One converter per ONNX operator: reads the node's inputs and attributes and records
//! tapegrad ops (or folds values known at import time). A converter's error is a reason
//! in words; the import walk adds the op and the node.

mod join;
mod math;
mod nn;
pub(crate) mod shape;

use alloc::format;
use alloc::vec::Vec;

use super::import::Ctx;
use super::proto::NodeProto;
use super::value::{Value, R};
use crate::Scalar;

/// The operators the importer converts (see the table in the module docs).
pub(crate) const SUPPORTED: &[&str] = &[
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Concat",
    "Constant",
    "Conv",
    "Div",
    "Dropout",
    "Flatten",
    "Gather",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "LogSoftmax",
    "MatMul",
    "MaxPool",
    "Mul",
    "Relu",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Softmax",
    "Squeeze",
    "Sub",
    "Tanh",
    "Transpose",
    "Unsqueeze",
];

pub(crate) fn convert<'g, T: Scalar>(
    ctx: &mut Ctx<'g, '_, T>,
    node: &NodeProto,
) -> R<Vec<Value<'g, T>>> {
    let one = |v: Value<'g, T>| Ok(alloc::vec![v]);
    match node.op_type.as_str() {
        "Add" | "Sub" | "Mul" | "Div" => one(math::binary(ctx, node)?),
        "Relu" | "Tanh" | "Sigmoid" => one(math::unary(ctx, node)?),
        "Gemm" => one(math::gemm(ctx, node)?),
        "MatMul" => one(math::matmul(ctx, node)?),
        "Softmax" | "LogSoftmax" => one(math::softmax(ctx, node)?),
        "Conv" => one(nn::conv(ctx, node)?),
        "MaxPool" | "AveragePool" => one(nn::pool(ctx, node)?),
        "GlobalAveragePool" => one(nn::global_avg_pool(ctx, node)?),
        "BatchNormalization" => one(nn::batch_norm(ctx, node)?),
        "Flatten" => one(shape::flatten(ctx, node)?),
        "Reshape" => one(shape::reshape(ctx, node)?),
        "Transpose" => one(shape::transpose(ctx, node)?),
        "Concat" => one(join::concat(ctx, node)?),
        "Gather" => one(join::gather(ctx, node)?),
        "Shape" => one(shape::shape(ctx, node)?),
        "Unsqueeze" | "Squeeze" => one(shape::squeeze(ctx, node)?),
        "Constant" => one(shape::constant(node)?),
        "Identity" | "Dropout" => one(shape::identity(ctx, node)?),
        other => Err(format!(
            "operator {other:?} is not supported (supported: {})",
            SUPPORTED.join(", ")
        )),
    }
}
