//! [`WeightMap`]: which file tensor each parameter is, in which layout; and the
//! [`Layout`] each parameter was made in.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::format::{Dtype, Tensor};
use crate::shape::Shape;

/// How PyTorch stores a parameter, as the code that made it knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Made with [`Graph::param`](crate::Graph::param): [`WeightMap::torch`] goes by the
    /// name (a 2-D `*.weight` is taken for `nn.Linear`'s, transposed).
    ByName,
    /// Made by an `nn` layer that PyTorch stores as tapegrad does (an embedding table
    /// `[num, dim]`, a bias, a convolution's kernel, a norm's scale).
    AsTorch,
    /// `nn::Linear`'s weight: `[in, out]` here, `[out, in]` in PyTorch.
    TorchTransposed,
}

/// Which file tensor each parameter of a machine is, and which are stored transposed; and
/// whether loading accepts tensors that no parameter takes, or of the other float dtype.
/// A parameter the map does not name is the file tensor of the same name, not transposed.
///
/// `WeightMap::new()` (or `default()`) is the identity map, strict: what
/// [`Machine::save`](crate::Machine::save) and [`Machine::load`](crate::Machine::load) use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeightMap {
    /// (parameter, file tensor, transposed); a later entry for a parameter wins.
    entries: Vec<(String, String, bool)>,
    torch: bool,
    pub(super) allow_extra: bool,
    pub(super) convert_dtype: bool,
}

impl WeightMap {
    /// The identity map, strict about extra tensors and dtypes.
    pub fn new() -> Self {
        Self::default()
    }

    /// PyTorch's layout, for a model built from [`nn`](crate::nn) layers under PyTorch's
    /// names: each layer's parameters are stored as the layer knows PyTorch stores them
    /// (`nn::Linear`'s weight transposed to `[out, in]`, every other layer's parameters,
    /// an embedding table included, as they are). A parameter made with
    /// [`Graph::param`](crate::Graph::param) goes by its name: transposed if it is 2-D
    /// and its name ends in `.weight`, as they are otherwise.
    ///
    /// Loading skips the `*.num_batches_tracked` counters (I64 scalars) of PyTorch's
    /// batch norms that no parameter takes: PyTorch re-creates them when a `state_dict`
    /// lacks them, so saving writes none.
    ///
    /// Entries added with [`rename`](Self::rename), [`transposed`](Self::transposed) or
    /// [`torch_linear`](Self::torch_linear) take precedence.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// use tapegrad::nn::Linear;
    /// use tapegrad::weights::WeightMap;
    /// use tapegrad::rand::SeedableRng;
    /// let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(0);
    /// let g = Graph::<f32>::new();
    /// let fc = Linear::new(&g, "fc", 3, 2, &mut rng); // fc.weight [3, 2], fc.bias [2]
    /// let y = fc.forward(g.input("x", [1, 3]));
    /// let m = g.compile(&[y], &[])?;
    /// let bytes = m.save_to_bytes_with(&WeightMap::torch())?; // fc.weight as [2, 3]
    /// let mut fresh = g.compile(&[y], &[])?;
    /// fresh.load_from_bytes_with(&bytes, &WeightMap::torch())?;
    /// assert_eq!(fresh.value(fc.weight)?, m.value(fc.weight)?);
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    pub fn torch() -> Self {
        WeightMap {
            torch: true,
            ..Self::default()
        }
    }

    /// Parameter `param` is the file tensor `tensor`, in the same layout.
    pub fn rename(mut self, param: &str, tensor: &str) -> Self {
        self.entries.push((param.into(), tensor.into(), false));
        self
    }

    /// Parameter `param` is the file tensor `tensor` with its axes reversed: a matrix
    /// `[in, out]` here is `[out, in]` in the file.
    pub fn transposed(mut self, param: &str, tensor: &str) -> Self {
        self.entries.push((param.into(), tensor.into(), true));
        self
    }

    /// The parameters of one affine layer, `weight` `[in, out]` and `bias` `[out]`, are
    /// PyTorch's `nn.Linear` tensors `{prefix}.weight` `[out, in]` and `{prefix}.bias`.
    /// The prefix is the module's path in the `state_dict`: `"0"` for the first layer of
    /// an `nn.Sequential`, `"fc1"` for `self.fc1`.
    pub fn torch_linear(self, prefix: &str, weight: &str, bias: &str) -> Self {
        self.transposed(weight, &format!("{prefix}.weight"))
            .rename(bias, &format!("{prefix}.bias"))
    }

    /// Whether loading skips file tensors that no parameter takes (default `false`: they
    /// are an [`Error::Weights`](crate::Error::Weights), as with PyTorch's `strict=True`). Saving ignores this.
    pub fn allow_extra(mut self, allow: bool) -> Self {
        self.allow_extra = allow;
        self
    }

    /// Whether loading converts a tensor of the other float dtype (default `false`: an
    /// f64 tensor for an f32 machine, or the reverse, is an [`Error::Weights`](crate::Error::Weights)).
    /// Converted, f32 to f64 is exact and f64 to f32 rounds to nearest; a finite f64
    /// beyond f32's range is an [`Error::Weights`](crate::Error::Weights) naming the tensor, never an infinity.
    /// Saving ignores this (a machine saves in its own dtype).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// use tapegrad::weights::WeightMap;
    /// let wide = Graph::<f64>::new();
    /// let w = wide.param("w", tapegrad::ndarray::arr1(&[0.1f64]));
    /// let bytes = wide.compile(&[w], &[])?.save_to_bytes()?;
    ///
    /// let g = Graph::<f32>::new();
    /// let w = g.param("w", tapegrad::ndarray::arr1(&[0.0f32]));
    /// let mut m = g.compile(&[w], &[])?;
    /// assert!(m.load_from_bytes(&bytes).is_err()); // strict by default
    /// m.load_from_bytes_with(&bytes, &WeightMap::new().convert_dtype(true))?;
    /// assert_eq!(m.value(w)?[[0]], 0.1f32);
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    pub fn convert_dtype(mut self, convert: bool) -> Self {
        self.convert_dtype = convert;
        self
    }

    /// The file tensor of parameter `param` of shape `shape` made in `layout`, and
    /// whether it is stored transposed.
    pub(super) fn target<'a>(
        &'a self,
        param: &'a str,
        shape: &Shape,
        layout: Layout,
    ) -> (&'a str, bool) {
        let torch = self.torch
            && match layout {
                Layout::ByName => shape.rank() == 2 && param.ends_with(".weight"),
                Layout::AsTorch => false,
                Layout::TorchTransposed => true,
            };
        self.entries
            .iter()
            .rev()
            .find(|(p, _, _)| p == param)
            .map_or((param, torch), |(_, t, tr)| (t.as_str(), *tr))
    }

    /// Whether loading skips file tensor `t` that no parameter takes.
    pub(super) fn skips(&self, t: &Tensor<'_>) -> bool {
        self.allow_extra
            || (self.torch
                && t.dtype == Dtype::I64
                && t.shape.is_empty()
                && t.name.ends_with(".num_batches_tracked"))
    }
}
