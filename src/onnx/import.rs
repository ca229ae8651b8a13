//! The import walk: graph inputs, then each node in order, then the outputs.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use std::collections::HashMap;

use super::proto::{tensor_proto::DataType, tensor_shape_proto::dimension, NodeProto, TensorProto};
use super::value::{decode, Const, Value, R};
use super::{convert, ImportOptions, Imported, Model};
use crate::{Error, Graph, Result, Scalar, Shape, Tensor};

/// An [`Error::Onnx`] about the model as a whole.
pub(crate) fn model_err(reason: impl Into<String>) -> Error {
    Error::Onnx {
        op: String::new(),
        node: String::new(),
        reason: reason.into(),
    }
}

/// The state of one import.
pub(crate) struct Ctx<'g, 'm, T: Scalar> {
    pub g: &'g Graph<T>,
    pub opset: i64,
    pub batch: usize,
    env: HashMap<&'m str, Value<'g, T>>,
    inits: HashMap<&'m str, &'m TensorProto>,
    params: Vec<Tensor<'g, T>>,
}

impl<'g, 'm, T: Scalar> Ctx<'g, 'm, T> {
    fn lookup(&self, name: &str) -> R<&Value<'g, T>> {
        self.env.get(name).ok_or_else(|| {
            format!(
                "input {name:?} is not a graph input, an initializer or the output of an \
                 earlier node"
            )
        })
    }

    fn init(&self, name: &str) -> R<(&'m TensorProto, Const)> {
        let t = self
            .inits
            .get(name)
            .ok_or_else(|| format!("initializer {name:?} is missing"))?;
        Ok((t, decode(t)?))
    }

    /// `name` as a graph tensor: a float initializer becomes a trainable parameter (once),
    /// an integer one or a constant becomes a constant.
    pub fn tensor(&mut self, name: &str) -> R<Tensor<'g, T>> {
        match self.lookup(name)?.clone() {
            Value::T(t) => Ok(t),
            Value::C(c) => Ok(self.g.constant(c.array::<T>()?)),
            Value::Init(src) => {
                let (t, c) = self.init(&src)?;
                let ty = DataType::try_from(t.data_type).unwrap_or(DataType::Undefined);
                let x = if matches!(ty, DataType::Float | DataType::Double) {
                    let p = self.g.param(&src, c.array::<T>()?);
                    self.params.push(p);
                    p
                } else {
                    self.g.constant(c.array::<T>()?)
                };
                self.set_all(&src, x);
                Ok(x)
            }
        }
    }

    /// `name` as a graph buffer (state that is saved with the weights but not trained):
    /// batch normalization's running statistics.
    pub fn buffer(&mut self, name: &str) -> R<Tensor<'g, T>> {
        match self.lookup(name)?.clone() {
            Value::Init(src) => {
                let (_, c) = self.init(&src)?;
                let b = self.g.buffer(&src, c.array::<T>()?);
                self.set_all(&src, b);
                Ok(b)
            }
            _ => self.tensor(name),
        }
    }

    /// `name` as a value known at import time.
    pub fn konst(&self, name: &str) -> R<Const> {
        match self.lookup(name)? {
            Value::C(c) => Ok(c.clone()),
            Value::Init(src) => Ok(self.init(src)?.1),
            Value::T(_) => Err(format!(
                "input {name:?} must be known at import time (an initializer or a Constant), \
                 but it is computed by the graph"
            )),
        }
    }

    /// Whether `name` is known at import time.
    pub fn is_const(&self, name: &str) -> bool {
        matches!(self.env.get(name), Some(Value::C(_) | Value::Init(_)))
    }

    /// The value of `name`, as it stands.
    pub fn value(&self, name: &str) -> R<Value<'g, T>> {
        self.lookup(name).cloned()
    }

    /// Every name that still refers to initializer `src` now refers to `x`.
    fn set_all(&mut self, src: &str, x: Tensor<'g, T>) {
        for v in self.env.values_mut() {
            if matches!(v, Value::Init(s) if s == src) {
                *v = Value::T(x);
            }
        }
    }
}

/// The node's `i`-th input name, `None` when absent or empty (an omitted optional input).
pub(crate) fn input(node: &NodeProto, i: usize) -> Option<&str> {
    node.input
        .get(i)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

/// The node's `i`-th input, which must be there.
pub(crate) fn need(node: &NodeProto, i: usize) -> R<&str> {
    input(node, i).ok_or_else(|| format!("input {i} is required"))
}

fn graph_input<'g, T: Scalar>(
    g: &'g Graph<T>,
    v: &super::proto::ValueInfoProto,
    batch: usize,
) -> R<Tensor<'g, T>> {
    use super::proto::type_proto;
    let Some(type_proto::Value::TensorType(tt)) = v.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(format!("graph input {:?} is not a tensor", v.name));
    };
    let ty = DataType::try_from(tt.elem_type).unwrap_or(DataType::Undefined);
    if !matches!(
        ty,
        DataType::Float | DataType::Double | DataType::Int64 | DataType::Int32
    ) {
        return Err(format!(
            "graph input {:?} has element type {}, not FLOAT, DOUBLE, INT64 or INT32",
            v.name,
            ty.as_str_name()
        ));
    }
    let Some(shape) = tt.shape.as_ref() else {
        return Err(format!("graph input {:?} has no shape", v.name));
    };
    let mut dims = Vec::with_capacity(shape.dim.len());
    let mut run = false;
    for (i, d) in shape.dim.iter().enumerate() {
        match d.value {
            Some(dimension::Value::DimValue(n)) if n >= 0 => dims.push(n as usize),
            _ if i == 0 => run = true,
            _ => {
                return Err(format!(
                    "graph input {:?} has a dynamic extent on axis {i}; only the first \
                     (batch) axis may be dynamic",
                    v.name
                ))
            }
        }
    }
    Ok(if run {
        g.input(&v.name, Shape::upto(batch, &dims))
    } else {
        g.input(&v.name, Shape::new(dims))
    })
}

pub(crate) fn import<'g, T: Scalar>(
    model: &Model,
    g: &'g Graph<T>,
    opts: &ImportOptions,
) -> Result<Imported<'g, T>> {
    g.check()?;
    let graph = model
        .proto
        .graph
        .as_ref()
        .ok_or_else(|| model_err("the model has no graph"))?;
    let mut ctx = Ctx {
        g,
        opset: model.opset,
        batch: opts.batch.bound(),
        env: HashMap::new(),
        inits: HashMap::new(),
        params: Vec::new(),
    };
    for t in &graph.initializer {
        ctx.inits.insert(&t.name, t);
        ctx.env.insert(&t.name, Value::Init(t.name.clone()));
    }
    let mut inputs = Vec::new();
    for v in &graph.input {
        if ctx.inits.contains_key(v.name.as_str()) {
            continue; // IR < 4 lists initializers as inputs too
        }
        let x = graph_input(g, v, ctx.batch).map_err(model_err)?;
        g.check().map_err(|e| model_err(e.to_string()))?;
        ctx.env.insert(&v.name, Value::T(x));
        inputs.push((v.name.clone(), x));
    }
    for (i, node) in graph.node.iter().enumerate() {
        let name = if node.name.is_empty() {
            format!("#{i}")
        } else {
            node.name.clone()
        };
        let wrap = |reason: String| Error::Onnx {
            op: node.op_type.clone(),
            node: name.clone(),
            reason,
        };
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(wrap(format!(
                "domain {:?} is not supported (only the default ONNX domain)",
                node.domain
            )));
        }
        let outs = convert::convert(&mut ctx, node).map_err(wrap)?;
        g.check().map_err(|e| wrap(e.to_string()))?;
        for (o, v) in node.output.iter().zip(outs) {
            if !o.is_empty() {
                ctx.env.insert(o, v);
            }
        }
    }
    let mut outputs = Vec::new();
    for v in &graph.output {
        let y = ctx
            .tensor(&v.name)
            .map_err(|r| model_err(format!("output: {r}")))?;
        outputs.push((v.name.clone(), y));
    }
    g.check().map_err(|e| model_err(e.to_string()))?;
    Ok(Imported {
        inputs,
        outputs,
        params: ctx.params,
    })
}
