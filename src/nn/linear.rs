//! [`Linear`] and the [`Mlp`] builder.

use alloc::format;
use alloc::vec::Vec;
use core::panic::Location;

use rand::Rng;

use crate::error::{Error, Result};
use crate::graph::{Graph, Tensor};
use crate::init;
use crate::scalar::Scalar;
use crate::shape::Shape;
use crate::weights::Layout;

use super::{Activation, Dropout, Module, Sequential};

/// A fully connected layer `x.matmul(weight) + bias`, weight `[in, out]`, bias `[out]`.
#[derive(Clone, Copy, Debug)]
pub struct Linear<'g, T: Scalar> {
    /// `[in, out]`.
    pub weight: Tensor<'g, T>,
    /// `[out]`.
    pub bias: Tensor<'g, T>,
}

impl<'g, T: Scalar> Linear<'g, T> {
    /// A layer named `name` (parameters `"{name}.weight"`, `"{name}.bias"`), initialised as
    /// PyTorch's `nn.Linear`: weight and bias uniform in `±1/sqrt(in)`. Sizes whose
    /// weight would pass [`max_bytes`](crate::max_bytes) record
    /// [`Error::TooLarge`] in `g`, returned by its next fallible
    /// call, as a shape error is.
    #[track_caller]
    pub fn new<R: Rng + ?Sized>(
        g: &'g Graph<T>,
        name: &str,
        inputs: usize,
        outputs: usize,
        rng: &mut R,
    ) -> Self {
        Self::new_at(g, name, inputs, outputs, rng, Location::caller())
    }

    fn new_at<R: Rng + ?Sized>(
        g: &'g Graph<T>,
        name: &str,
        inputs: usize,
        outputs: usize,
        rng: &mut R,
        caller: &'static Location<'static>,
    ) -> Self {
        // the user's line, not this one, for an initialiser's error
        let at = |r: Result<_>| {
            r.map_err(|e| match e {
                Error::TooLarge {
                    what,
                    shapes,
                    bytes,
                    limit,
                    ..
                } => Error::TooLarge {
                    what,
                    shapes,
                    bytes,
                    limit,
                    caller: caller.into(),
                },
                e => e,
            })
        };
        let bound = 1.0 / num_traits::Float::sqrt(inputs.max(1) as f64);
        let (w, b) = (Shape::from([inputs, outputs]), Shape::from([outputs]));
        let weight = at(init::uniform(w.clone(), -bound, bound, rng));
        let bias = at(init::uniform(b.clone(), -bound, bound, rng));
        Linear {
            // PyTorch's `nn.Linear` stores `weight` as `[out, in]`
            weight: g.param_or_fail_laid(
                &format!("{name}.weight"),
                weight,
                w,
                caller,
                Layout::TorchTransposed,
            ),
            bias: g.param_or_fail(&format!("{name}.bias"), bias, b, caller),
        }
    }

    /// `x.matmul(weight) + bias` for `x` `[.., in]` (2-D or 3-D).
    #[track_caller]
    pub fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        x.matmul(self.weight) + self.bias
    }
}

/// A multi-layer perceptron: [`Linear`] layers with an activation (and optional dropout)
/// between them, none after the last: a [`Sequential`], so its parameters have
/// `torch.nn.Sequential`'s names (`Linear, ReLU, Linear` is `{name}.0`, `{name}.2`; with
/// dropout, `Linear, ReLU, Dropout, Linear` is `{name}.0`, `{name}.3`).
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::{Activation, MlpBuilder};
/// use tapegrad::rand::SeedableRng;
/// let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(0);
/// let g = Graph::<f32>::new();
/// let mlp = MlpBuilder::new(&[4, 8, 3]).activation(Activation::Tanh).build(&g, "mlp", &mut rng);
/// let logits = mlp.forward(g.input("x", [5, 4]));
/// assert_eq!(logits.shape(), Shape::from([5, 3]));
/// assert_eq!(g.params().len(), 4); // mlp.0.weight, mlp.0.bias, mlp.2.weight, mlp.2.bias
/// assert!(g.get("mlp.2.weight").is_some()); // 1 is the Tanh
/// ```
#[derive(Clone, Debug)]
pub struct Mlp<'g, T: Scalar> {
    /// The linear layers, in order.
    pub layers: Vec<Linear<'g, T>>,
    /// Every module in order, activations and dropout included.
    pub seq: Sequential<'g, T>,
}

/// Sizes and options of an [`Mlp`] before it is built into a graph.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpBuilder {
    sizes: Vec<usize>,
    activation: Activation,
    dropout: f64,
}

impl MlpBuilder {
    /// An MLP of layer sizes `sizes` (`[in, hidden.., out]`), ReLU and no dropout until
    /// set otherwise.
    pub fn new(sizes: &[usize]) -> Self {
        MlpBuilder {
            sizes: sizes.to_vec(),
            activation: Activation::Relu,
            dropout: 0.0,
        }
    }

    /// The activation between layers.
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }

    /// Dropout with probability `p` after each activation (see
    /// [`Tensor::dropout`]; a `p` outside `[0, 1)` is an error from `compile`).
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// Records the layers' parameters into `g`, named `"{name}.{i}.weight"` and
    /// `"{name}.{i}.bias"` with `i` the layer's index among all modules, activations and
    /// dropout counted, as in `torch.nn.Sequential` (`0`, `2`, `4`, ...; `0`, `3`, `6`,
    /// ... with dropout); an empty `name` gives the bare `"{i}.weight"`. A layer too large
    /// to initialise records [`Error::TooLarge`] in `g`, as [`Linear::new`] does.
    #[track_caller]
    pub fn build<'g, T: Scalar, R: Rng + ?Sized>(
        &self,
        g: &'g Graph<T>,
        name: &str,
        rng: &mut R,
    ) -> Mlp<'g, T> {
        let caller = Location::caller();
        let mut seq = Sequential::new(name);
        let mut layers = Vec::new();
        let n = self.sizes.len().saturating_sub(1);
        for (i, w) in self.sizes.windows(2).enumerate() {
            seq.push(|name| {
                let layer = Linear::new_at(g, name, w[0], w[1], rng, caller);
                layers.push(layer);
                layer
            });
            if i + 1 < n {
                seq.add(self.activation);
                if self.dropout > 0.0 {
                    seq.add(Dropout::new(self.dropout));
                }
            }
        }
        Mlp { layers, seq }
    }
}

impl<'g, T: Scalar> Mlp<'g, T> {
    /// The network applied to `x` `[batch, in]`.
    #[track_caller]
    pub fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        self.seq.forward(x)
    }

    /// The parameters, layer by layer (weight, then bias).
    pub fn params(&self) -> Vec<Tensor<'g, T>> {
        self.layers
            .iter()
            .flat_map(|l| [l.weight, l.bias])
            .collect()
    }
}

impl<'g, T: Scalar> Module<'g, T> for Mlp<'g, T> {
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        Mlp::forward(self, x)
    }

    fn params(&self) -> Vec<Tensor<'g, T>> {
        Mlp::params(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use rand::SeedableRng;

    #[test]
    fn linear_is_affine_with_pytorch_init_bounds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let g = Graph::<f64>::new();
        let l = Linear::new(&g, "fc", 16, 3, &mut rng);
        let x = g.input("x", [2, 16]);
        let y = l.forward(x);
        let mut m = g.compile(&[y], &[]).unwrap();
        let w = m.value(l.weight).unwrap().to_owned();
        let b = m.value(l.bias).unwrap().to_owned();
        assert!(w.iter().chain(b.iter()).all(|v| v.abs() <= 0.25)); // 1/sqrt(16)
        let xv = ndarray::Array2::from_shape_fn((2, 16), |(i, j)| (i * 16 + j) as f64 / 10.0);
        m.feed(x, &xv).unwrap();
        m.run().unwrap();
        let w2 = w.into_dimensionality::<ndarray::Ix2>().unwrap();
        let want = xv.dot(&w2) + &b;
        for (a, e) in m.value(y).unwrap().iter().zip(want.iter()) {
            approx::assert_abs_diff_eq!(*a, *e, epsilon = 1e-12);
        }
        let names: Vec<_> = m.params().map(|(n, _)| String::from(n)).collect();
        assert_eq!(names, ["fc.weight", "fc.bias"]);
    }

    #[test]
    fn mlp_has_torch_sequential_names() {
        // nn.Sequential(Linear(3, 5), ReLU(), Linear(5, 4), ReLU(), Linear(4, 2)): 0, 2, 4;
        // with a Dropout after each ReLU: 0, 3, 6
        for (p, want) in [(0.0, ["0", "2", "4"]), (0.5, ["0", "3", "6"])] {
            let mut rng = rand::rngs::StdRng::seed_from_u64(3);
            let g = Graph::<f32>::new();
            let mlp = MlpBuilder::new(&[3, 5, 4, 2])
                .dropout(p)
                .build(&g, "mlp", &mut rng);
            let y = mlp.forward(g.input("x", [2, 3]));
            let m = g.compile(&[y], &[]).unwrap();
            let names: Vec<_> = m.params().map(|(n, _)| String::from(n)).collect();
            let want: Vec<_> = want
                .iter()
                .flat_map(|i| [format!("mlp.{i}.weight"), format!("mlp.{i}.bias")])
                .collect();
            assert_eq!(names, want);
            assert_eq!(mlp.seq.len(), if p > 0.0 { 7 } else { 5 });
            assert_eq!(Module::params(&mlp).len(), 6);
        }
    }

    #[test]
    fn mlp_summary_prints_names_shapes_and_total() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let g = Graph::<f32>::new();
        let mlp = MlpBuilder::new(&[784, 128, 10])
            .dropout(0.1)
            .build(&g, "mlp", &mut rng);
        let y = mlp.forward(g.input("x", [4, 784]));
        let m = g.compile(&[y], &[]).unwrap();
        let s = m.summary();
        // 784*128 + 128 + 128*10 + 10 = 101770
        assert_eq!(s.total(), 101_770);
        let text = s.to_string();
        assert!(
            text.contains("mlp.0.weight  [784, 128]      100352"),
            "{text}"
        );
        assert!(text.lines().last().unwrap().ends_with("101770"), "{text}");
        assert_eq!(mlp.params().len(), 4);
    }
}
