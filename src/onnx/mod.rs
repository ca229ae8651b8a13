//! ONNX import that trains (feature `onnx`).
//!
//! [`Model::from_bytes`] (or [`Model::from_file`]) reads an ONNX model;
//! [`Model::import`] records it into a [`Graph`]: each graph input becomes an input (a
//! dynamic first extent becomes the run-time batch axis, `Dim::upto(batch)`), each float
//! initializer read as an operand becomes a trainable parameter under its ONNX name,
//! batch normalization's running statistics become buffers, and initializers and
//! `Constant`s used as shapes, axes or indices are folded at import time. The result is
//! an ordinary graph: add a loss, take [`Graph::grad`], compile and fine-tune.
//!
//! ```
//! use tapegrad::onnx::{ImportOptions, Model};
//! use tapegrad::prelude::*;
//! # fn main() -> Result<()> {
//! let model = Model::from_file("tests/fixtures/onnx/mlp.onnx")?;
//! let g = Graph::<f32>::new();
//! let net = model.import(&g, &ImportOptions::default().batch(Dim::upto(32)))?;
//! let (x, logits) = (net.input("x")?, net.output("logits")?);
//! let y = g.input("y", Dim::upto(32));
//! let loss = logits.cross_entropy(y);
//! let grads = g.grad(loss, &net.params)?; // the initializers, trainable
//! let mut m = g.compile(&[loss], &grads)?;
//! m.feed(x, &tapegrad::ndarray::Array2::<f32>::zeros((4, 64)))?;
//! m.feed(y, &tapegrad::ndarray::arr1(&[0.0, 1.0, 2.0, 3.0]))?;
//! m.run()?;
//! Sgd::new(0.1).step(&mut m, &grads)?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Training and evaluation
//! A machine compiled with gradients starts in training mode
//! ([`Machine::set_training`](crate::Machine::set_training)): an imported batch
//! normalization then normalizes with each batch's statistics and updates its running
//! ones (with PyTorch's momentum, `1 - momentum` of ONNX), as PyTorch's `model.train()`.
//! Call `set_training(false)` to evaluate as the exported model does, or to fine-tune
//! with the statistics frozen. (An ONNX model exported for inference holds no dropout.)
//!
//! ## Opsets
//! The default domain (`""` or `"ai.onnx"`) at opset 7 to 22. An opset outside that
//! range is an [`Error::Onnx`] naming it; a node of another domain is an error naming the
//! domain and the node (an `opset_import` of a domain no node uses is ignored).
//!
//! ## Operators
//! Every attribute not listed for an op is an error (rather than silently ignored), as
//! is an operator not in this table. Errors name the op and the node.
//!
//! | Operator | Attributes and inputs honoured | An error |
//! |---|---|---|
//! | Add, Sub, Mul, Div | NumPy broadcasting; folded when both sides are constants | shapes that do not broadcast |
//! | Relu, Tanh, Sigmoid | | |
//! | Gemm | `alpha`, `beta`, `transA`, `transB`, optional `C` (broadcast) | A or B not a matrix |
//! | MatMul | `[M,K]·[K,N]`, `[B,M,K]·[B,K,N]`, `[B,M,K]·[K,N]` | other ranks |
//! | Softmax, LogSoftmax | `axis` (one axis from opset 13; before, the input coerced to a matrix at `axis`) | |
//! | Conv | 1-D and 2-D; `pads` (symmetric), `strides`, `dilations`, `group`, `kernel_shape`, `auto_pad` NOTSET or VALID, optional bias | asymmetric pads, `auto_pad` SAME_* |
//! | MaxPool | 1-D and 2-D; `kernel_shape`, `strides`, `pads` (symmetric), `storage_order` 0 | `ceil_mode` 1, dilations, the Indices output |
//! | AveragePool | as MaxPool, and `count_include_pad` 0 or 1 | `ceil_mode` 1, dilations |
//! | GlobalAveragePool | 1-D and 2-D | |
//! | BatchNormalization | inference form: `epsilon`, `momentum` (for training mode); scale and B are parameters, mean and var buffers | `training_mode` 1, the running-statistics outputs, `spatial` 0 |
//! | Flatten | `axis` | merging the batch axis with others |
//! | Reshape | shape from a constant (or folded `Shape` arithmetic); `0` copies, one `-1` infers; `allowzero` | a shape computed at run time; moving or merging the batch axis |
//! | Transpose | `perm` (default: reversed) | a `perm` of another rank |
//! | Concat | `axis`; folded on constants | |
//! | Gather | `axis`; constant indices (scalar, any rank on axis 0, rank 1 elsewhere) or run-time ids on axis 0; folded on constants | indices out of range |
//! | Shape | `start`, `end`; the batch extent is carried symbolically into Reshape | arithmetic on the batch extent |
//! | Unsqueeze, Squeeze | `axes` as attribute (opset < 13) or input | |
//! | Constant | `value`, `value_float(s)`, `value_int(s)` | sparse and string values |
//! | Identity | | |
//! | Dropout | inference: the identity | `training_mode` true, the mask output |
//!
//! Initializers may be FLOAT or DOUBLE (converted to the graph's `T`), INT64, INT32,
//! INT8, UINT8 or BOOL, inline or as raw data; external data is an error. Graph inputs
//! may be FLOAT, DOUBLE, INT64 or INT32 (integers, such as ids for Gather, are fed as
//! `T`, as class ids are).

mod attr;
pub(crate) mod convert;
mod import;
pub mod proto;
mod value;

#[cfg(test)]
mod tests;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use prost::Message;

use crate::{Caller, Dim, Error, Graph, Result, Scalar, Tensor};
use import::model_err;

pub use prost;

/// The default-domain opsets the converters honour.
pub const OPSETS: core::ops::RangeInclusive<i64> = 7..=22;

/// A decoded ONNX model whose opset is supported; [`import`](Model::import) it into a
/// graph.
#[derive(Clone, Debug)]
pub struct Model {
    proto: proto::ModelProto,
    opset: i64,
}

/// Settings for [`Model::import`], built from the default:
///
/// ```
/// use tapegrad::onnx::ImportOptions;
/// use tapegrad::Dim;
/// let opts = ImportOptions::default().batch(Dim::upto(32));
/// assert_eq!(opts.batch, Dim::upto(32));
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ImportOptions {
    /// The bound of the run-time batch axis that a dynamic first extent of a graph input
    /// becomes.
    pub batch: Dim,
}

impl Default for ImportOptions {
    /// A batch of up to 64.
    fn default() -> Self {
        ImportOptions {
            batch: Dim::upto(64),
        }
    }
}

impl ImportOptions {
    /// With this bound for the run-time batch axis (a dynamic first extent of a graph
    /// input becomes `batch`).
    pub fn batch(mut self, batch: Dim) -> Self {
        self.batch = batch;
        self
    }
}

/// A model recorded into a graph: its inputs and outputs by ONNX name, and the
/// parameters made from its initializers.
#[derive(Clone, Debug)]
pub struct Imported<'g, T: Scalar> {
    /// The graph inputs, in the model's order (initializers listed as inputs excluded).
    pub inputs: Vec<(String, Tensor<'g, T>)>,
    /// The graph outputs, in the model's order.
    pub outputs: Vec<(String, Tensor<'g, T>)>,
    /// The trainable parameters made from float initializers, in the order first used.
    pub params: Vec<Tensor<'g, T>>,
}

impl<'g, T: Scalar> Imported<'g, T> {
    /// The input named `name`.
    ///
    /// # Errors
    /// [`Error::UnknownName`] if the model has no such input.
    #[track_caller]
    pub fn input(&self, name: &str) -> Result<Tensor<'g, T>> {
        find(&self.inputs, name, Caller::here())
    }

    /// The output named `name`.
    ///
    /// # Errors
    /// [`Error::UnknownName`] if the model has no such output.
    #[track_caller]
    pub fn output(&self, name: &str) -> Result<Tensor<'g, T>> {
        find(&self.outputs, name, Caller::here())
    }
}

fn find<'g, T: Scalar>(
    list: &[(String, Tensor<'g, T>)],
    name: &str,
    caller: Caller,
) -> Result<Tensor<'g, T>> {
    list.iter()
        .find(|(n, _)| n == name)
        .map(|&(_, t)| t)
        .ok_or_else(|| Error::UnknownName {
            name: String::from(name),
            caller,
        })
}

impl Model {
    /// Decodes a model from the bytes of an `.onnx` file.
    ///
    /// # Errors
    /// [`Error::Onnx`] if the bytes are not an ONNX model or its opset is not supported
    /// (see [`Model::from_proto`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        let proto = proto::ModelProto::decode(bytes)
            .map_err(|e| model_err(format!("the bytes are not an ONNX model: {e}")))?;
        Model::from_proto(proto)
    }

    /// Reads a model from an `.onnx` file.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; as [`Model::from_bytes`] otherwise.
    #[track_caller]
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Model> {
        let caller = Caller::here();
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
            caller,
        })?;
        Model::from_bytes(&bytes)
    }

    /// A model from its decoded message (for instance one built in code).
    ///
    /// # Errors
    /// [`Error::Onnx`] if the model has no graph, imports no default-domain opset, or
    /// one outside [`OPSETS`].
    pub fn from_proto(proto: proto::ModelProto) -> Result<Model> {
        let mut opset = None;
        for o in &proto.opset_import {
            if o.domain.is_empty() || o.domain == "ai.onnx" {
                opset = Some(o.version);
            }
        }
        let Some(opset) = opset else {
            return Err(model_err(
                "the model imports no opset of the default domain",
            ));
        };
        if !OPSETS.contains(&opset) {
            return Err(model_err(format!(
                "opset {opset} of the default domain is not supported (supported: {} to {})",
                OPSETS.start(),
                OPSETS.end()
            )));
        }
        if proto.graph.is_none() {
            return Err(model_err("the model has no graph"));
        }
        Ok(Model { proto, opset })
    }

    /// The default-domain opset the model imports.
    pub fn opset(&self) -> i64 {
        self.opset
    }

    /// The decoded message.
    pub fn proto(&self) -> &proto::ModelProto {
        &self.proto
    }

    /// Records the model into `g` (see the [module docs](self)).
    ///
    /// # Errors
    /// [`Error::Onnx`] naming the op and the node for an unsupported operator, attribute
    /// or data type, an input no earlier node defines, or shapes an op cannot take (the
    /// tapegrad shape error in words); an error the graph held before the import, as it
    /// is.
    pub fn import<'g, T: Scalar>(
        &self,
        g: &'g Graph<T>,
        opts: &ImportOptions,
    ) -> Result<Imported<'g, T>> {
        import::import(self, g, opts)
    }
}
