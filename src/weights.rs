//! A machine's parameters as bytes or on disk, in the [safetensors] format that PyTorch
//! and Hugging Face read and write.
//!
//! [`Machine::load_from_bytes`] and [`Machine::save_to_bytes`] need no `std`: a firmware
//! loads weights it was built with (`m.load_from_bytes(include_bytes!("w.safetensors"))`).
//! The files (`save`, `load` and their `_with` forms) need the `std` feature. The format
//! is read and written here (no serde): strictly, every malformed input an `Err`.
//!
//! [`Machine::save`] writes one tensor per parameter and per buffer
//! ([`Graph::buffer`](crate::Graph::buffer): state such as batch norm's running
//! statistics, which a PyTorch `state_dict` holds too), named as it is, of dtype
//! `F32` or `F64` as the machine computes, row-major, with no `__metadata__`.
//! [`Machine::load`] reads them back by name into a machine of the same parameters:
//!
//! - every parameter and buffer must be in the file with the same shape and dtype (no conversion,
//!   f64 weights do not silently lose precision in an f32 machine);
//! - by default a file tensor that no parameter takes is refused too, like PyTorch's
//!   `load_state_dict(strict=True)`, so that weights of another model never load "fine";
//!   [`WeightMap::allow_extra`] skips such tensors instead;
//! - loading is all or nothing: every tensor is checked before any parameter is written,
//!   so after an `Err` the machine holds exactly what it held before.
//!
//! Saving writes a temporary file beside the target, syncs it to disk and renames it over
//! the target: a crash leaves either the old file or the new one, never half of one.
//!
//! ## PyTorch
//! tapegrad computes `x.matmul(w)` with `w` of shape `[in, out]`; PyTorch's `nn.Linear`
//! stores `weight` as `[out, in]` and computes `x @ weight.T`. A [`WeightMap`] says which
//! file tensor each parameter is and whether it is stored transposed;
//! [`WeightMap::torch_linear`] does both for one layer. The same map also saves in
//! PyTorch's names and layout, for `model.load_state_dict(safetensors.torch.load_file(..))`.
//!
//! ```
//! use tapegrad::prelude::*;
//! use tapegrad::weights::WeightMap;
//!
//! // nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)) in tapegrad
//! let g = Graph::<f32>::new();
//! let x = g.input("x", [1, 3]);
//! let w1 = g.param("w1", init::zeros([3, 5])?);
//! let b1 = g.param("b1", init::zeros([5])?);
//! let w2 = g.param("w2", init::zeros([5, 2])?);
//! let b2 = g.param("b2", init::zeros([2])?);
//! let y = (x.matmul(w1) + b1).relu().matmul(w2) + b2;
//! let mut m = g.compile(&[y], &[])?;
//!
//! let path = std::env::temp_dir().join("tapegrad-doc-weights.safetensors");
//! m.save(&path)?; // tensors "w1", "b1", "w2", "b2"
//! m.load(&path)?;
//!
//! // PyTorch's names ("0.weight", ...) and layout ([out, in]), both ways
//! let torch = WeightMap::new()
//!     .torch_linear("0", "w1", "b1")
//!     .torch_linear("2", "w2", "b2");
//! m.save_with(&path, &torch)?;
//! m.load_with(&path, &torch)?;
//! # std::fs::remove_file(&path).unwrap();
//! # Ok::<(), tapegrad::Error>(())
//! ```
//!
//! [safetensors]: https://huggingface.co/docs/safetensors

// Without `std` the file methods these docs link to do not exist.
#![cfg_attr(not(feature = "std"), allow(rustdoc::broken_intra_doc_links))]

use core::any::{Any, TypeId};

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use ndarray::{ArrayD, IxDyn};

use format::Dtype;

use crate::error::{Caller, Error, Result};
use crate::graph::Handle;
use crate::machine::Machine;
use crate::scalar::Scalar;
use crate::shape::Shape;

#[cfg(feature = "std")]
mod file;
mod format;

/// Which file tensor each parameter of a machine is, and which are stored transposed; and
/// whether loading accepts tensors that no parameter takes. A parameter the map does not
/// name is the file tensor of the same name, not transposed.
///
/// `WeightMap::new()` (or `default()`) is the identity map, strict: what
/// [`Machine::save`] and [`Machine::load`] use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeightMap {
    /// (parameter, file tensor, transposed); a later entry for a parameter wins.
    entries: Vec<(String, String, bool)>,
    torch: bool,
    allow_extra: bool,
}

impl WeightMap {
    /// The identity map, strict about extra tensors.
    pub fn new() -> Self {
        Self::default()
    }

    /// PyTorch's layout for parameters named as `nn::Linear` names
    /// them: every 2-D parameter whose name ends in `.weight` is stored transposed, under
    /// its own name; the others as they are. Entries added with [`rename`](Self::rename),
    /// [`transposed`](Self::transposed) or [`torch_linear`](Self::torch_linear) take
    /// precedence (`rename("emb.weight", "emb.weight")` keeps an embedding table, which
    /// PyTorch does not transpose, as it is).
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
    /// are an [`Error::Weights`], as with PyTorch's `strict=True`). Saving ignores this.
    pub fn allow_extra(mut self, allow: bool) -> Self {
        self.allow_extra = allow;
        self
    }

    /// The file tensor of parameter `param` of shape `shape`, and whether it is stored
    /// transposed.
    fn target<'a>(&'a self, param: &'a str, shape: &Shape) -> (&'a str, bool) {
        let torch = self.torch && shape.rank() == 2 && param.ends_with(".weight");
        self.entries
            .iter()
            .rev()
            .find(|(p, _, _)| p == param)
            .map_or((param, torch), |(_, t, tr)| (t.as_str(), *tr))
    }
}

impl<T: Scalar> Machine<T> {
    /// The bytes of the safetensors file that [`save`](Machine::save) writes.
    ///
    /// # Errors
    /// [`Error::Mismatch`] if a parameter is named `__metadata__` (the format reserves
    /// the name) or the header (the names and shapes) would pass the format's 100 MB.
    #[track_caller]
    pub fn save_to_bytes(&self) -> Result<Vec<u8>> {
        self.encode(&WeightMap::new(), Caller::here())
    }

    /// [`save_to_bytes`](Machine::save_to_bytes) under the names and layouts of `map`.
    ///
    /// # Errors
    /// As for [`save_with`](Machine::save_with), bar I/O.
    #[track_caller]
    pub fn save_to_bytes_with(&self, map: &WeightMap) -> Result<Vec<u8>> {
        self.encode(map, Caller::here())
    }

    /// [`load`](Machine::load) from the bytes of a safetensors file; needs no `std`, so a
    /// firmware can load weights it was built with:
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let w = g.param("w", init::zeros([2, 3])?);
    /// let y = w.sum();
    /// let trained = g.compile(&[y], &[])?;
    /// let bytes = trained.save_to_bytes()?; // e.g. include_bytes!("w.safetensors")
    /// let mut m = g.compile(&[y], &[])?;
    /// m.load_from_bytes(&bytes)?;
    /// assert!(m.load_from_bytes(&bytes[..bytes.len() - 1]).is_err()); // cut short
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for `load`, bar I/O.
    #[track_caller]
    pub fn load_from_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.decode(bytes, "<bytes>", &WeightMap::new(), Caller::here())
    }

    /// [`load_with`](Machine::load_with) from the bytes of a safetensors file.
    ///
    /// # Errors
    /// As for `load`, bar I/O.
    #[track_caller]
    pub fn load_from_bytes_with(&mut self, bytes: &[u8], map: &WeightMap) -> Result<()> {
        self.decode(bytes, "<bytes>", map, Caller::here())
    }

    fn encode(&self, map: &WeightMap, caller: Caller) -> Result<Vec<u8>> {
        let mut tensors: Vec<format::Out<'_>> = Vec::new();
        for (name, shape) in self.state() {
            let (tensor, transposed) = map.target(name, shape);
            if let Some((other, _)) = self.state().find(|(p, s)| map.target(p, s).0 == tensor) {
                if other != name {
                    return Err(Error::Mismatch {
                        what: "weight map",
                        reason: format!(
                            "parameters {other:?} and {name:?} are both saved as {tensor:?}"
                        ),
                        caller,
                    });
                }
            }
            let value = self.value(self.handle_of(name)?)?;
            let value = if transposed {
                value.reversed_axes()
            } else {
                value
            };
            tensors.push(format::Out {
                name: tensor,
                dtype: dtype_of::<T>(),
                shape: value.shape().to_vec(),
                data: to_le_bytes(value.iter().copied().collect()),
            });
        }
        format::write(tensors).map_err(|reason| Error::Mismatch {
            what: "safetensors header",
            reason,
            caller,
        })
    }

    fn decode(
        &mut self,
        bytes: &[u8],
        origin: &str,
        map: &WeightMap,
        caller: Caller,
    ) -> Result<()> {
        let file = format::read(bytes).map_err(|why| Error::WeightsFormat {
            origin: origin.to_string(),
            reason: format!("{} bytes: {why}", bytes.len()),
            caller,
        })?;
        let params: Vec<(String, Shape)> = self
            .state()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect();
        let dtype = dtype_of::<T>();
        // Checked and decoded in full before anything is written.
        let mut staged: Vec<(Handle, ArrayD<T>)> = Vec::with_capacity(params.len());
        let mut taken: Vec<&str> = Vec::with_capacity(params.len());
        for (name, shape) in &params {
            let (tensor, transposed) = map.target(name, shape);
            let mut dims = shape.dims().to_vec();
            if transposed {
                dims.reverse();
            }
            let mismatch = |found: String| Error::Weights {
                name: tensor.to_string(),
                expected: describe(dtype, &dims),
                found,
                caller,
            };
            let view = file
                .tensor(tensor)
                .ok_or_else(|| mismatch("no tensor of that name".into()))?;
            if view.dtype != dtype || view.shape != dims {
                return Err(mismatch(describe(view.dtype, &view.shape)));
            }
            let values = from_le_bytes::<T>(view.data);
            let value =
                ArrayD::from_shape_vec(IxDyn(&dims), values).map_err(|_| Error::WeightsFormat {
                    origin: origin.to_string(),
                    reason: format!("the data of tensor {tensor:?} does not fit its shape"),
                    caller,
                })?;
            let value = if transposed {
                value.reversed_axes()
            } else {
                value
            };
            staged.push((self.handle_of(name)?, value));
            taken.push(tensor);
        }
        if !map.allow_extra {
            let mut extra: Vec<&str> = file
                .tensors
                .iter()
                .map(|t| t.name.as_str())
                .filter(|n| !taken.contains(n))
                .collect();
            extra.sort_unstable();
            if let Some(&name) = extra.first() {
                let found = file
                    .tensor(name)
                    .map_or_else(|| "a tensor".into(), |v| describe(v.dtype, &v.shape));
                return Err(Error::Weights {
                    name: name.to_string(),
                    expected: "no tensor: no parameter of this machine takes it \
                               (`WeightMap::allow_extra(true)` skips such tensors)"
                        .into(),
                    found,
                    caller,
                });
            }
        }
        for (h, value) in staged {
            self.set_state(h, &value, caller)?;
        }
        Ok(())
    }
}

fn dtype_of<T: Scalar>() -> Dtype {
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

/// `"f32 [16, 4]"`.
fn describe(dtype: Dtype, dims: &[usize]) -> String {
    format!("{} {}", dtype.name().to_lowercase(), Shape::from(dims))
}

// `Scalar` is sealed to f32 and f64: the downcasts below copy bits exactly (NaN payloads
// included), which a round trip through `as` casts does not promise.
fn to_le_bytes<T: Scalar>(values: Vec<T>) -> Vec<u8> {
    let any: &dyn Any = &values;
    if let Some(v) = any.downcast_ref::<Vec<f32>>() {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    } else if let Some(v) = any.downcast_ref::<Vec<f64>>() {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    } else {
        Vec::new()
    }
}

fn from_le_bytes<T: Scalar>(bytes: &[u8]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(bytes.len() / core::mem::size_of::<T>());
    let any: &mut dyn Any = &mut out;
    if let Some(v) = any.downcast_mut::<Vec<f32>>() {
        v.extend(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
    } else if let Some(v) = any.downcast_mut::<Vec<f64>>() {
        v.extend(
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
        );
    }
    out
}

#[cfg(all(test, feature = "std"))]
mod tests;
