//! Layers: plain structs of parameter tensors with a `forward` method that records into
//! the graph like any other op, and the [`Module`] trait they share.
//!
//! Parameters are named as PyTorch's `state_dict` names them (`"{name}.weight"`,
//! `"{name}.bias"`), so weights saved from PyTorch find their place by name. A [`Linear`]
//! weight is `[in, out]` (the layer computes `x.matmul(w) + b`), the transpose of
//! PyTorch's `[out, in]`.

use alloc::vec::Vec;

use crate::graph::Tensor;
use crate::scalar::Scalar;

mod conv;
mod embedding;
mod linear;
mod norm;
mod pool;
mod recurrent;
mod sequential;
mod summary;

pub use conv::{Conv1d, Conv2d};
pub use embedding::{Dropout, Embedding};
pub use linear::{Linear, Mlp, MlpBuilder};
pub use norm::{BatchNorm, BatchNorm1d, BatchNorm2d, LayerNorm};
pub use pool::{
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, Flatten, MaxPool1d, MaxPool2d,
};
pub use recurrent::{GRUCell, LSTMCell, RnnBuilder, GRU, LSTM};
pub use sequential::Sequential;
pub use summary::Summary;

/// A layer: a function of one tensor, with the parameters it holds. Activations,
/// pooling and other parameter-free layers are modules too, so a model is a list of them.
pub trait Module<'g, T: Scalar> {
    /// The layer applied to `x`. Like the ops it never fails on the spot: a shape it does
    /// not take is an error recorded at the caller's line.
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T>;

    /// Its parameters, in the order of PyTorch's `state_dict` (none by default).
    fn params(&self) -> Vec<Tensor<'g, T>> {
        Vec::new()
    }

    /// Its [buffers](crate::Graph::buffer) (non-trainable state such as batch norm's
    /// running statistics), in the order of PyTorch's `state_dict` (none by default).
    fn buffers(&self) -> Vec<Tensor<'g, T>> {
        Vec::new()
    }
}

/// The activation between the layers of an [`Mlp`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `max(x, 0)`
    Relu,
    /// `tanh(x)`
    Tanh,
    /// `sigmoid(x)`
    Sigmoid,
    /// GELU, tanh form.
    Gelu,
    /// `x` where positive, `alpha * x` elsewhere.
    LeakyRelu(f64),
}

impl Activation {
    /// Applies the activation.
    #[track_caller]
    pub fn apply<'g, T: Scalar>(self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        match self {
            Activation::Relu => x.relu(),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Gelu => x.gelu(),
            Activation::LeakyRelu(a) => x.leaky_relu(a),
        }
    }
}

impl<'g, T: Scalar> Module<'g, T> for Activation {
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        self.apply(x)
    }
}

impl<'g, T: Scalar> Module<'g, T> for Linear<'g, T> {
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        Linear::forward(self, x)
    }

    fn params(&self) -> Vec<Tensor<'g, T>> {
        alloc::vec![self.weight, self.bias]
    }
}
