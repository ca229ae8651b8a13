//! Checkpoints that resume training: the weights, the optimizer's state and the step in
//! one safetensors file (see the [module docs](crate::weights#checkpoints)).
//!
//! Layout: each parameter under its own name, as [`Machine::save`] writes it; each
//! optimizer buffer as `optim.{slot}.{parameter}` in its parameter's shape (slots named
//! as PyTorch's: `momentum_buffer`, `exp_avg`, `exp_avg_sq`); and in `__metadata__`:
//!
//! | key | value |
//! |---|---|
//! | `format` | `tapegrad.checkpoint` |
//! | `version` | `1` |
//! | `dtype` | `f32` or `f64` |
//! | `step` | the step to resume at (a schedule's position) |
//! | `rng` | the machine's random state (dropout masks) |
//! | `optim` | `Sgd`, `Adam` or `AdamW` |
//! | `optim.steps` | the optimizer's steps (Adam's `t`) |
//! | `optim.param.{k}` | the `k`-th parameter of the optimizer's pairs |
//! | `optim.setting.{name}` | a setting (`lr`, `beta1`, ...), shortest round-trip decimal |

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::format::{self as st, Dtype};
use super::{describe, dtype_of, from_le_bytes, header_error, read_file, to_le_bytes, WeightMap};
use crate::error::{Caller, Error, Result};
use crate::machine::Machine;
use crate::optim::{OptimState, Resumable};
use crate::scalar::Scalar;

const FORMAT: &str = "tapegrad.checkpoint";
const VERSION: &str = "1";
const OPTIM: &str = "optim.";

impl<T: Scalar> Machine<T> {
    /// The bytes of the checkpoint [`save_checkpoint`](Machine::save_checkpoint) writes;
    /// needs no `std`.
    ///
    /// # Errors
    /// As for `save_checkpoint`, bar I/O.
    #[track_caller]
    pub fn save_checkpoint_to_bytes<O: Resumable>(&self, opt: &O, step: usize) -> Result<Vec<u8>> {
        self.encode_checkpoint(opt, step, Caller::here())
    }

    /// [`load_checkpoint`](Machine::load_checkpoint) from the bytes of a checkpoint;
    /// needs no `std`.
    ///
    /// # Errors
    /// As for `load_checkpoint`, bar I/O.
    #[track_caller]
    pub fn load_checkpoint_from_bytes<O: Resumable>(
        &mut self,
        bytes: &[u8],
        opt: &mut O,
    ) -> Result<usize> {
        self.decode_checkpoint(bytes, "<bytes>", opt, Caller::here())
    }

    pub(super) fn encode_checkpoint<O: Resumable>(
        &self,
        opt: &O,
        step: usize,
        caller: Caller,
    ) -> Result<Vec<u8>> {
        let state: OptimState<T> = opt.state().map_err(|e| relocated(e, caller))?;
        let names: Vec<String> = state
            .buffers
            .iter()
            .map(|(slot, param, _)| format!("{OPTIM}{slot}.{param}"))
            .collect();
        let identity = WeightMap::new();
        let mut tensors = self.weight_tensors(&identity, caller)?;
        let mut meta: Vec<(String, String)> = [
            ("format", FORMAT.to_string()),
            ("version", VERSION.to_string()),
            ("dtype", T::NAME.to_string()),
            ("step", step.to_string()),
            ("rng", self.rng_state().to_string()),
            ("optim", state.kind.clone()),
            ("optim.steps", state.steps.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut order: Vec<&str> = Vec::new();
        for ((slot, param, values), name) in state.buffers.iter().zip(&names) {
            // `optim.{slot}.{param}` splits at the first dot after `optim.`
            if slot.is_empty() || slot.contains('.') {
                return Err(Error::Mismatch {
                    what: "save_checkpoint",
                    reason: format!("the optimizer's slot name {slot:?} is empty or has a '.'"),
                    caller,
                });
            }
            let shape = self
                .params()
                .find(|(p, _)| p == param)
                .map(|(_, s)| s.dims().to_vec())
                .filter(|dims| dims.iter().product::<usize>() == values.len())
                .ok_or_else(|| Error::Mismatch {
                    what: "save_checkpoint",
                    reason: format!(
                        "the optimizer holds {} values for parameter {param:?}, which this \
                         machine has not (or not of that size)",
                        values.len()
                    ),
                    caller,
                })?;
            if !order.contains(&param.as_str()) {
                order.push(param);
            }
            tensors.push(st::Out {
                name,
                dtype: dtype_of::<T>(),
                shape,
                data: to_le_bytes(values.clone()),
            });
        }
        for (k, param) in order.iter().enumerate() {
            meta.push((format!("optim.param.{k}"), param.to_string()));
        }
        for (name, v) in &state.settings {
            // `{:?}` of an f64 is the shortest decimal that parses back to its bits
            meta.push((format!("optim.setting.{name}"), format!("{v:?}")));
        }
        st::write_with(tensors, &meta).map_err(|reason| header_error(reason, caller))
    }

    pub(super) fn decode_checkpoint<O: Resumable>(
        &mut self,
        bytes: &[u8],
        origin: &str,
        opt: &mut O,
        caller: Caller,
    ) -> Result<usize> {
        let file = read_file(bytes, origin, caller)?;
        let bad = |reason: String| Error::WeightsFormat {
            origin: origin.to_string(),
            reason: format!("not a checkpoint of this machine: {reason}"),
            caller,
        };
        let meta = |key: &str| {
            file.meta(key)
                .ok_or_else(|| bad(format!("no {key:?} in its __metadata__")))
        };
        let number = |key: &str| -> Result<u64> {
            let v = meta(key)?;
            v.parse()
                .map_err(|_| bad(format!("its {key:?} is {v:?}, not a whole number")))
        };
        if meta("format")? != FORMAT || meta("version")? != VERSION {
            return Err(bad(format!(
                "its format is {:?} version {:?}, not {FORMAT:?} version {VERSION:?}",
                meta("format")?,
                meta("version")?
            )));
        }
        if meta("dtype")? != T::NAME {
            return Err(bad(format!(
                "it was saved by an {} machine, this one computes in {}",
                meta("dtype")?,
                T::NAME
            )));
        }
        let step = usize::try_from(number("step")?)
            .map_err(|_| bad("its step does not fit this target's usize".into()))?;
        let rng = number("rng")?;
        let (staged, taken) = self.stage(&file, origin, &WeightMap::new(), caller)?;

        // The optimizer's buffers, in the order of its pairs.
        let mut order: Vec<&str> = Vec::new();
        while let Some(p) = file.meta(&format!("optim.param.{}", order.len())) {
            if order.contains(&p) {
                return Err(bad(format!("its optimizer lists parameter {p:?} twice")));
            }
            order.push(p);
        }
        let mut buffers: Vec<(String, String, Vec<T>)> = Vec::new();
        let mut used = 0;
        for &param in &order {
            let shape = self
                .params()
                .find(|(p, _)| *p == param)
                .map(|(_, s)| s.dims().to_vec())
                .ok_or_else(|| {
                    bad(format!(
                        "its optimizer steps parameter {param:?}, which this machine has not"
                    ))
                })?;
            for t in &file.tensors {
                let Some(slot) = t
                    .name
                    .strip_prefix(OPTIM)
                    .and_then(|r| r.strip_suffix(param))
                    .and_then(|r| r.strip_suffix('.'))
                    .filter(|s| !s.is_empty() && !s.contains('.'))
                else {
                    continue;
                };
                if t.dtype != dtype_of::<T>() || t.shape != shape {
                    return Err(Error::Weights {
                        name: t.name.clone(),
                        expected: describe(dtype_of::<T>(), &shape),
                        found: describe(t.dtype, &t.shape),
                        caller,
                    });
                }
                buffers.push((slot.into(), param.into(), from_le_bytes::<T>(t.data)));
                used += 1;
            }
        }
        // Every tensor is a parameter or an optimizer buffer of a listed parameter.
        let optim_tensors = file.tensors.iter().filter(|t| t.name.starts_with(OPTIM));
        if used != optim_tensors.count() || taken.len() + used != file.tensors.len() {
            let stray = file
                .tensors
                .iter()
                .filter(|t| !taken.contains(&t.name.as_str()))
                .find(|t| {
                    !buffers
                        .iter()
                        .any(|(s, p, _)| t.name == format!("{OPTIM}{s}.{p}"))
                });
            let (name, dtype, shape) = stray.map_or(("?".into(), Dtype::F32, Vec::new()), |t| {
                (t.name.clone(), t.dtype, t.shape.clone())
            });
            return Err(Error::Weights {
                name,
                expected: "no tensor: neither a parameter of this machine nor an optimizer \
                           buffer of one"
                    .into(),
                found: describe(dtype, &shape),
                caller,
            });
        }
        let mut settings = Vec::new();
        for (k, v) in &file.metadata {
            if let Some(name) = k.strip_prefix("optim.setting.") {
                let x: f64 = v
                    .parse()
                    .map_err(|_| bad(format!("its setting {name:?} is {v:?}, not a number")))?;
                settings.push((name.to_string(), x));
            } else {
                let listed = k
                    .strip_prefix("optim.param.")
                    .and_then(|i| i.parse::<usize>().ok())
                    .is_some_and(|i| i < order.len() && *k == format!("optim.param.{i}"));
                let known = ["format", "version", "dtype", "step", "rng", "optim"];
                if !listed && !known.contains(&k.as_str()) && k != "optim.steps" {
                    return Err(bad(format!("an unknown key {k:?} in its __metadata__")));
                }
            }
        }
        let state = OptimState {
            kind: meta("optim")?.to_string(),
            settings,
            steps: number("optim.steps")?,
            buffers,
        };
        // The last check; nothing is written before it passes.
        opt.set_state(&state).map_err(|e| relocated(e, caller))?;
        self.commit(staged, caller)?;
        self.set_rng_state(rng);
        Ok(step)
    }
}

/// `e` as found at the user's call.
fn relocated(e: Error, caller: Caller) -> Error {
    match e {
        Error::Mismatch { what, reason, .. } => Error::Mismatch {
            what,
            reason,
            caller,
        },
        e => e,
    }
}

#[cfg(test)]
mod tests;
