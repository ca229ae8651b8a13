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
//! - every parameter and buffer must be in the file with the same shape and dtype: f64 weights do
//!   not silently lose precision in an f32 machine, unless asked
//!   ([`WeightMap::convert_dtype`]: f32 to f64 exactly, f64 to f32 rounded to nearest,
//!   a finite f64 beyond f32's range an `Err`);
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
//! For a model built from [`nn`](crate::nn) layers named as the PyTorch modules,
//! [`WeightMap::torch`] needs no entries: each layer records how PyTorch stores its
//! parameters (only `Linear`'s weight is transposed), and the `num_batches_tracked`
//! counters of PyTorch's batch norms are skipped on load.
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
//! ## Checkpoints
//! [`Machine::save_checkpoint`] writes what training needs to resume bit for bit, in one
//! safetensors file written as `save` writes (whole, synced, renamed):
//!
//! - every parameter, under its own name;
//! - the optimizer's buffers as `optim.{slot}.{parameter}`, in the parameter's shape,
//!   slots named as in PyTorch's optimizer state (`optim.momentum_buffer.fc.weight` for
//!   [`Sgd`](crate::Sgd) with momentum, `optim.exp_avg.*` and `optim.exp_avg_sq.*` for
//!   [`Adam`](crate::Adam) and [`AdamW`](crate::AdamW));
//! - in `__metadata__`: `format` (`tapegrad.checkpoint`), `version` (`1`), `dtype`,
//!   `step` (the step to resume at, which is a [`Schedule`](crate::optim::Schedule)'s
//!   position: schedules are functions of the step), `rng` (the machine's random state,
//!   so dropout draws the masks it would have drawn), `optim` (`Sgd`, `Adam`, `AdamW`),
//!   `optim.steps` (Adam's `t`), `optim.param.{k}` (the order of the optimizer's
//!   parameters) and `optim.setting.{name}` (`lr`, `beta1`, ... as shortest round-trip
//!   decimals).
//!
//! [`Machine::load_checkpoint`] reads it strictly into a machine of the same parameters
//! and an optimizer of the same kind and settings (the learning rate is restored, every
//! other setting must match), and returns the step. It is all or nothing: a corrupt,
//! cut-short or mismatched checkpoint is an `Err` that leaves the machine and the
//! optimizer as they were. The `_to_bytes`/`_from_bytes` forms need no `std`.
//!
//! Not in a checkpoint: your own random numbers (data shuffling: seed them from the step,
//! or save them yourself), the schedule's settings (build the same schedule), and the
//! training mode ([`Machine::set_training`]). Gradients need no saving: each run
//! recomputes them.
//!
//! ```
//! use tapegrad::prelude::*;
//! // Fit w to 2 with Adam under a warm-up and cosine schedule, 20 steps in two halves.
//! let schedule = WarmupCosineLr::new(0.1, 0.0, 2, 20);
//! let g = Graph::<f32>::new();
//! let w = g.param("w", tapegrad::ndarray::arr1(&[0.0f32]));
//! let loss = (w - 2.0).square().sum();
//! let grads = g.grad(loss, &[w])?;
//! let train = |m: &mut Machine<f32>, opt: &mut Adam, steps| -> tapegrad::Result<()> {
//!     for step in steps {
//!         schedule.apply(opt, step)?;
//!         m.run()?;
//!         opt.step(m, &grads)?;
//!     }
//!     Ok(())
//! };
//! let path = std::env::temp_dir().join("tapegrad-doc-checkpoint.safetensors");
//!
//! let mut m = g.compile(&[loss], &grads)?;
//! let mut opt = Adam::new(0.1);
//! train(&mut m, &mut opt, 0..10)?;
//! m.save_checkpoint(&path, &opt, 10)?;
//!
//! // Later, in another process: the same model, optimizer settings and schedule.
//! let mut resumed = g.compile(&[loss], &grads)?;
//! let mut opt2 = Adam::new(0.1);
//! let step = resumed.load_checkpoint(&path, &mut opt2)?;
//! assert_eq!(step, 10);
//! train(&mut resumed, &mut opt2, step..20)?;
//!
//! train(&mut m, &mut opt, 10..20)?; // the uninterrupted run
//! assert_eq!(resumed.value(w)?[[0]].to_bits(), m.value(w)?[[0]].to_bits());
//! // another optimizer's checkpoint is refused
//! assert!(resumed.load_checkpoint(&path, &mut Sgd::new(0.1).momentum(0.9)).is_err());
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

mod checkpoint;
mod convert;
#[cfg(feature = "std")]
mod file;
mod format;
mod map;

pub(crate) use map::Layout;
pub use map::WeightMap;

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
        let tensors = self.weight_tensors(map, caller)?;
        format::write(tensors).map_err(|reason| header_error(reason, caller))
    }

    /// Every parameter as the file tensor `map` makes it.
    fn weight_tensors<'a>(
        &'a self,
        map: &'a WeightMap,
        caller: Caller,
    ) -> Result<Vec<format::Out<'a>>> {
        let mut tensors: Vec<format::Out<'a>> = Vec::new();
        let target = |name, shape| map.target(name, shape, self.layout_of(name));
        for (name, shape) in self.state() {
            let (tensor, transposed) = target(name, shape);
            if let Some((other, _)) = self.state().find(|(p, s)| target(p, s).0 == tensor) {
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
        Ok(tensors)
    }

    fn decode(
        &mut self,
        bytes: &[u8],
        origin: &str,
        map: &WeightMap,
        caller: Caller,
    ) -> Result<()> {
        let file = read_file(bytes, origin, caller)?;
        let (staged, taken) = self.stage(&file, origin, map, caller)?;
        let extra = file
            .tensors
            .iter()
            .filter(|t| !taken.contains(&t.name.as_str()) && !map.skips(t))
            .min_by(|a, b| a.name.cmp(&b.name));
        if let Some(t) = extra {
            return Err(Error::Weights {
                name: t.name.clone(),
                expected: "no tensor: no parameter of this machine takes it \
                           (`WeightMap::allow_extra(true)` skips such tensors)"
                    .into(),
                found: describe(t.dtype, &t.shape),
                caller,
            });
        }
        self.commit(staged, caller)
    }

    /// Every parameter's value from `file` under `map`, checked and decoded (nothing is
    /// written), and the names of the file tensors taken.
    fn stage<'f>(
        &self,
        file: &'f format::File<'_>,
        origin: &str,
        map: &WeightMap,
        caller: Caller,
    ) -> Result<(Staged<T>, Vec<&'f str>)> {
        let dtype = dtype_of::<T>();
        let mut staged: Staged<T> = Vec::new();
        let mut taken: Vec<&'f str> = Vec::new();
        for (name, shape) in self.state() {
            let (tensor, transposed) = map.target(name, shape, self.layout_of(name));
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
            let floats = [Dtype::F32, Dtype::F64].contains(&view.dtype);
            let values = if view.shape != dims {
                return Err(mismatch(describe(view.dtype, &view.shape)));
            } else if view.dtype == dtype {
                from_le_bytes::<T>(view.data)
            } else if floats && map.convert_dtype {
                convert::converted(view, &describe(dtype, &dims), caller)?
            } else if floats {
                return Err(mismatch(format!(
                    "{} (`WeightMap::convert_dtype(true)` converts it)",
                    describe(view.dtype, &view.shape)
                )));
            } else {
                return Err(mismatch(describe(view.dtype, &view.shape)));
            };
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
            taken.push(view.name.as_str());
        }
        Ok((staged, taken))
    }

    /// Writes values [`stage`](Machine::stage) checked.
    fn commit(&mut self, staged: Staged<T>, caller: Caller) -> Result<()> {
        for (h, value) in staged {
            self.set_state(h, &value, caller)?;
        }
        Ok(())
    }
}

/// Parameters' and buffers' values checked and decoded, not yet written.
type Staged<T> = Vec<(Handle, ArrayD<T>)>;

fn read_file<'b>(bytes: &'b [u8], origin: &str, caller: Caller) -> Result<format::File<'b>> {
    format::read(bytes).map_err(|why| Error::WeightsFormat {
        origin: origin.to_string(),
        reason: format!("{} bytes: {why}", bytes.len()),
        caller,
    })
}

fn header_error(reason: String, caller: Caller) -> Error {
    Error::Mismatch {
        what: "safetensors header",
        reason,
        caller,
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
#[cfg(test)]
mod torch_tests;
