//! [`Conv1d`] and [`Conv2d`] layers.

use alloc::format;
use alloc::vec::Vec;
use core::panic::Location;

use rand::Rng;

use crate::error::{Error, Result};
use crate::graph::{Graph, Tensor};
use crate::init;
use crate::ops::{Conv1dOptions, Conv2dOptions, Extent};
use crate::scalar::Scalar;
use crate::shape::Shape;

use super::Module;

/// A convolution's `"{name}.weight"` of shape `weight` and, if `bias`, `"{name}.bias"`
/// `[out]`, initialised as PyTorch's `_ConvNd.reset_parameters`:
/// `kaiming_uniform_(weight, a=sqrt(5))` is `U(±gain·sqrt(3 / fan_in))` with
/// `gain = sqrt(2 / (1 + a²)) = sqrt(1/3)`, so `U(±1/sqrt(fan_in))`, and the bias
/// `U(±1/sqrt(fan_in))`, where `fan_in = in/groups × prod(kernel)` (`weight[1..]`).
fn conv_params<'g, T: Scalar, R: Rng + ?Sized>(
    g: &'g Graph<T>,
    name: &str,
    weight: Vec<usize>,
    bias: bool,
    rng: &mut R,
    caller: &'static Location<'static>,
) -> (Tensor<'g, T>, Option<Tensor<'g, T>>) {
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
    let fan_in: usize = weight[1..].iter().product();
    let bound = 1.0 / num_traits::Float::sqrt(fan_in.max(1) as f64);
    let out = weight[0];
    let w = Shape::new(weight);
    let wv = at(init::uniform(w.clone(), -bound, bound, rng));
    let weight = g.param_or_fail(&format!("{name}.weight"), wv, w, caller);
    let bias = bias.then(|| {
        let b = Shape::from([out]);
        let bv = at(init::uniform(b.clone(), -bound, bound, rng));
        g.param_or_fail(&format!("{name}.bias"), bv, b, caller)
    });
    (weight, bias)
}

/// A 2-D convolution layer, PyTorch's `nn.Conv2d`: [`Tensor::conv2d`] of `[N, in, H, W]`
/// with `weight` `[out, in/groups, KH, KW]` and `bias` `[out]`.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::{Conv2d, Module};
/// use tapegrad::ops::Conv2dOptions;
/// use tapegrad::rand::SeedableRng;
/// let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(0);
/// let g = Graph::<f32>::new();
/// let conv = Conv2d::new(&g, "conv1", 1, 6, 5, Conv2dOptions::default().padding(2), &mut rng);
/// let y = conv.forward(g.input("x", (Dim::upto(64), 1, 28, 28)));
/// assert_eq!(y.shape().dims(), &[64, 6, 28, 28]);
/// assert_eq!(conv.weight.shape(), Shape::from([6, 1, 5, 5]));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Conv2d<'g, T: Scalar> {
    /// `[out, in/groups, KH, KW]`.
    pub weight: Tensor<'g, T>,
    /// `[out]`, if the layer has one.
    pub bias: Option<Tensor<'g, T>>,
    /// Stride, padding, dilation, groups.
    pub options: Conv2dOptions,
}

impl<'g, T: Scalar> Conv2d<'g, T> {
    /// A layer named `name` (parameters `"{name}.weight"`, `"{name}.bias"`) from `inputs`
    /// to `outputs` channels with a `kernel` (`5` or `[5, 3]`), initialised as PyTorch's.
    /// Sizes whose weight would pass [`max_bytes`](crate::max_bytes) record
    /// [`Error::TooLarge`] in `g`, returned by its next fallible call. Channels that
    /// `options.groups` does not divide are a shape error at the first `forward`.
    #[track_caller]
    pub fn new<R: Rng + ?Sized>(
        g: &'g Graph<T>,
        name: &str,
        inputs: usize,
        outputs: usize,
        kernel: impl Extent<2>,
        options: Conv2dOptions,
        rng: &mut R,
    ) -> Self {
        Self::with_bias(g, name, inputs, outputs, kernel, options, true, rng)
    }

    /// As [`new`](Conv2d::new), with a bias only if `bias` (PyTorch's `bias=False`).
    #[track_caller]
    #[allow(clippy::too_many_arguments)]
    pub fn with_bias<R: Rng + ?Sized>(
        g: &'g Graph<T>,
        name: &str,
        inputs: usize,
        outputs: usize,
        kernel: impl Extent<2>,
        options: Conv2dOptions,
        bias: bool,
        rng: &mut R,
    ) -> Self {
        let [kh, kw] = kernel.per_axis();
        let cg = inputs / options.groups.max(1);
        let shape = alloc::vec![outputs, cg, kh, kw];
        let (weight, bias) = conv_params(g, name, shape, bias, rng, Location::caller());
        Conv2d {
            weight,
            bias,
            options,
        }
    }
}

impl<'g, T: Scalar> Module<'g, T> for Conv2d<'g, T> {
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        x.conv2d(self.weight, self.bias, self.options)
    }

    fn params(&self) -> Vec<Tensor<'g, T>> {
        core::iter::once(self.weight).chain(self.bias).collect()
    }
}

/// A 1-D convolution layer, PyTorch's `nn.Conv1d`: [`Tensor::conv1d`] of `[N, in, L]`
/// with `weight` `[out, in/groups, K]` and `bias` `[out]`.
#[derive(Clone, Copy, Debug)]
pub struct Conv1d<'g, T: Scalar> {
    /// `[out, in/groups, K]`.
    pub weight: Tensor<'g, T>,
    /// `[out]`, if the layer has one.
    pub bias: Option<Tensor<'g, T>>,
    /// Stride, padding, dilation, groups.
    pub options: Conv1dOptions,
}

impl<'g, T: Scalar> Conv1d<'g, T> {
    /// A layer named `name` from `inputs` to `outputs` channels with a `kernel`, as
    /// [`Conv2d::new`].
    #[track_caller]
    pub fn new<R: Rng + ?Sized>(
        g: &'g Graph<T>,
        name: &str,
        inputs: usize,
        outputs: usize,
        kernel: usize,
        options: Conv1dOptions,
        rng: &mut R,
    ) -> Self {
        Self::with_bias(g, name, inputs, outputs, kernel, options, true, rng)
    }

    /// As [`new`](Conv1d::new), with a bias only if `bias`.
    #[track_caller]
    #[allow(clippy::too_many_arguments)]
    pub fn with_bias<R: Rng + ?Sized>(
        g: &'g Graph<T>,
        name: &str,
        inputs: usize,
        outputs: usize,
        kernel: usize,
        options: Conv1dOptions,
        bias: bool,
        rng: &mut R,
    ) -> Self {
        let cg = inputs / options.groups.max(1);
        let shape = alloc::vec![outputs, cg, kernel];
        let (weight, bias) = conv_params(g, name, shape, bias, rng, Location::caller());
        Conv1d {
            weight,
            bias,
            options,
        }
    }
}

impl<'g, T: Scalar> Module<'g, T> for Conv1d<'g, T> {
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        x.conv1d(self.weight, self.bias, self.options)
    }

    fn params(&self) -> Vec<Tensor<'g, T>> {
        core::iter::once(self.weight).chain(self.bias).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn pytorch_names_shapes_and_init_bounds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let g = Graph::<f64>::new();
        let o = Conv2dOptions::default().groups(2);
        let c = Conv2d::new(&g, "features.0", 4, 6, [3, 2], o, &mut rng);
        let c1 = Conv1d::with_bias(&g, "c1", 3, 5, 7, Conv1dOptions::default(), false, &mut rng);
        assert_eq!(c.weight.shape(), Shape::from([6, 2, 3, 2]));
        assert_eq!(c1.weight.shape(), Shape::from([5, 3, 7]));
        assert!(c1.bias.is_none() && c1.params().len() == 1);
        let m = g.compile(&[], &[]).unwrap();
        let names: Vec<_> = m
            .params()
            .map(|(n, _)| alloc::string::String::from(n))
            .collect();
        assert_eq!(names, ["features.0.weight", "features.0.bias", "c1.weight"]);
        // fan_in = in/groups * kh * kw = 2 * 3 * 2 = 12; 3 * 7 = 21 for c1
        for (t, fan_in) in [(c.weight, 12.0), (c.bias.unwrap(), 12.0), (c1.weight, 21.0)] {
            let v = m.value(t).unwrap();
            let bound = 1.0 / f64::sqrt(fan_in);
            let max = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
            // U(±bound): inside, and not from a much narrower range
            assert!(max <= bound && max > 0.5 * bound, "{max} vs {bound}");
        }
    }

    #[test]
    fn forward_is_the_op_plus_bias() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let g = Graph::<f64>::new();
        let c = Conv1d::new(
            &g,
            "c",
            2,
            3,
            3,
            Conv1dOptions::default().padding(1),
            &mut rng,
        );
        let x = g.constant(crate::ops::testing::rand_array(&[2, 2, 5], 3, -1.0, 1.0));
        let y = c.forward(x);
        let b = c.bias.unwrap();
        let want = x.conv1d(c.weight, None, c.options) + b.reshape([3, 1]);
        let mut m = g.compile(&[y, want], &[]).unwrap();
        m.run().unwrap();
        let (a, w) = (
            m.value(y).unwrap().to_owned(),
            m.value(want).unwrap().to_owned(),
        );
        crate::ops::testing::assert_close(&a, &w);
    }
}
