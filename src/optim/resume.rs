//! An optimizer's state taken out and put back, for checkpoints that resume training
//! ([checkpoints](crate::weights#checkpoints)).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::panic::Location;

use super::{check_lr, Adam, AdamW, Sgd, State};
use crate::error::{Caller, Error, Result};
use crate::num::Num;
use crate::scalar::Scalar;

/// An optimizer's state in plain values: what a checkpoint stores beside the weights.
///
/// Slots are named as in PyTorch's optimizer `state_dict` (`momentum_buffer` for
/// [`Sgd`], `exp_avg` and `exp_avg_sq` for [`Adam`] and [`AdamW`]).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimState<T> {
    /// The optimizer: `"Sgd"`, `"Adam"` or `"AdamW"`.
    pub kind: String,
    /// Its settings by name (`"lr"`, `"beta1"`, ...). Loading checks every one but the
    /// learning rate, which it restores (a schedule sets it anyway).
    pub settings: Vec<(String, f64)>,
    /// Steps taken since the state was made (Adam's `t`); 0 before the first.
    pub steps: u64,
    /// `(slot, parameter, values)`: each slot's buffer of each parameter, one element per
    /// element of the parameter (row-major), the parameters in the order of the steps'
    /// pairs. Empty before the first step (and for SGD without momentum). A slot's name
    /// is not empty and has no `.` (a checkpoint names a buffer `optim.{slot}.{param}`).
    pub buffers: Vec<(String, String, Vec<T>)>,
}

/// An optimizer whose state can be taken out and put back, so that training resumes
/// bit for bit where it stopped. [`Sgd`], [`Adam`] and [`AdamW`] implement it;
/// a [checkpoint](crate::weights#checkpoints) stores it beside the weights.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::optim::Resumable;
/// let g = Graph::<f32>::new();
/// let w = g.param("w", tapegrad::ndarray::arr1(&[1.0f32, 2.0]));
/// let grads = g.grad(w.square().sum(), &[w])?;
/// let mut m = g.compile(&[], &grads)?;
/// let mut opt = Sgd::new(0.1).momentum(0.9);
/// m.run()?;
/// opt.step(&mut m, &grads)?;
/// let state = opt.state::<f32>()?;
/// assert_eq!(state.steps, 1);
/// // after one step the momentum buffer is the gradient, 2w
/// let buffer = ("momentum_buffer".to_string(), "w".to_string(), vec![2.0, 4.0]);
/// assert_eq!(state.buffers, [buffer]);
/// Sgd::new(0.1).momentum(0.9).set_state(&state)?;
/// assert!(Sgd::new(0.1).set_state(&state).is_err()); // another momentum
/// # Ok::<(), tapegrad::Error>(())
/// ```
pub trait Resumable {
    /// The optimizer's state, in a machine's element type `T`.
    ///
    /// # Errors
    /// [`Error::Mismatch`] if the state was made by steps on a machine of the other
    /// element type.
    fn state<T: Scalar>(&self) -> Result<OptimState<T>>;

    /// Puts back a state [`state`](Resumable::state) took: all or nothing.
    ///
    /// # Errors
    /// [`Error::Mismatch`] if `state` is another optimizer's, a setting (bar the
    /// learning rate) differs from this optimizer's, or its buffers are not whole (a
    /// slot missing for a parameter, of another length, twice, or steps without
    /// buffers); [`Error::InvalidArgument`] if its learning rate is not valid. The
    /// optimizer is then unchanged.
    fn set_state<T: Scalar>(&mut self, state: &OptimState<T>) -> Result<()>;
}

const SGD_SLOTS: &[&str] = &["momentum_buffer"];
const ADAM_SLOTS: &[&str] = &["exp_avg", "exp_avg_sq"];

impl Resumable for Sgd {
    #[track_caller]
    fn state<T: Scalar>(&self) -> Result<OptimState<T>> {
        let (steps, buffers) = self.state.export(SGD_SLOTS, Location::caller().into())?;
        Ok(OptimState {
            kind: "Sgd".into(),
            settings: self.settings(),
            steps,
            buffers,
        })
    }

    #[track_caller]
    fn set_state<T: Scalar>(&mut self, state: &OptimState<T>) -> Result<()> {
        let caller = Location::caller().into();
        let lr = check_settings("Sgd", &self.settings(), state, caller)?;
        self.state = State::import(SGD_SLOTS, state, caller)?;
        self.lr = lr;
        Ok(())
    }
}

impl Sgd {
    fn settings(&self) -> Vec<(String, f64)> {
        named(&[
            ("lr", self.lr),
            ("momentum", self.momentum),
            ("dampening", self.dampening),
            ("nesterov", if self.nesterov { 1.0 } else { 0.0 }),
            ("weight_decay", self.weight_decay),
        ])
    }
}

impl Adam {
    fn kind(&self) -> &'static str {
        if self.decoupled {
            "AdamW"
        } else {
            "Adam"
        }
    }

    fn settings(&self) -> Vec<(String, f64)> {
        named(&[
            ("lr", self.lr),
            ("beta1", self.beta1),
            ("beta2", self.beta2),
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
        ])
    }
}

impl Resumable for Adam {
    #[track_caller]
    fn state<T: Scalar>(&self) -> Result<OptimState<T>> {
        let (steps, buffers) = self.state.export(ADAM_SLOTS, Location::caller().into())?;
        Ok(OptimState {
            kind: self.kind().into(),
            settings: self.settings(),
            steps,
            buffers,
        })
    }

    #[track_caller]
    fn set_state<T: Scalar>(&mut self, state: &OptimState<T>) -> Result<()> {
        let caller = Location::caller().into();
        let lr = check_settings(self.kind(), &self.settings(), state, caller)?;
        self.state = State::import(ADAM_SLOTS, state, caller)?;
        self.lr = lr;
        Ok(())
    }
}

impl Resumable for AdamW {
    #[track_caller]
    fn state<T: Scalar>(&self) -> Result<OptimState<T>> {
        self.adam.state()
    }

    #[track_caller]
    fn set_state<T: Scalar>(&mut self, state: &OptimState<T>) -> Result<()> {
        self.adam.set_state(state)
    }
}

fn named(settings: &[(&str, f64)]) -> Vec<(String, f64)> {
    settings.iter().map(|&(k, v)| (k.to_string(), v)).collect()
}

/// Checks that `state` is of optimizer `kind` with the settings `mine` (bit for bit, bar
/// the learning rate); returns its learning rate.
fn check_settings<T>(
    kind: &str,
    mine: &[(String, f64)],
    state: &OptimState<T>,
    caller: Caller,
) -> Result<f64> {
    let mismatch = |reason| Error::Mismatch {
        what: "Resumable::set_state",
        reason,
        caller,
    };
    if state.kind != kind {
        return Err(mismatch(format!(
            "the state is of {:?}, not of {kind:?}",
            state.kind
        )));
    }
    let theirs = |name: &str| {
        state
            .settings
            .iter()
            .find(|(k, _)| k == name)
            .map(|&(_, v)| v)
    };
    if let Some((k, _)) = state
        .settings
        .iter()
        .find(|(k, _)| !mine.iter().any(|(m, _)| m == k))
    {
        return Err(mismatch(format!("{kind} has no setting {k:?}")));
    }
    let mut lr = f64::NAN;
    for (name, v) in mine {
        let Some(t) = theirs(name) else {
            return Err(mismatch(format!("the state has no setting {name:?}")));
        };
        if name == "lr" {
            lr = check_lr(t)?;
        } else if t.to_bits() != v.to_bits() {
            return Err(mismatch(format!(
                "its {name} was {}, this {kind}'s is {}; build the optimizer with the \
                 settings it was saved with",
                Num(t),
                Num(*v)
            )));
        }
    }
    Ok(lr)
}

impl State {
    /// `(steps, buffers)` of an [`OptimState`]: each buffer of `slots.len() * n` elements
    /// (each element's slots side by side) taken apart into one slot of `n` per name.
    #[allow(clippy::type_complexity)]
    fn export<T: Scalar>(
        &self,
        slots: &[&str],
        caller: Caller,
    ) -> Result<(u64, Vec<(String, String, Vec<T>)>)> {
        let Some(any) = &self.bufs else {
            return Ok((self.steps, Vec::new()));
        };
        let bufs = any
            .downcast_ref::<Vec<Vec<T>>>()
            .ok_or_else(|| Error::Mismatch {
                what: "Resumable::state",
                reason: format!(
                    "the optimizer's state was made for another element type than {}",
                    T::NAME
                ),
                caller,
            })?;
        let mut out = Vec::with_capacity(slots.len() * bufs.len());
        for (name, buf) in self.names.iter().zip(bufs) {
            for (s, slot) in slots.iter().enumerate() {
                let values = buf.iter().skip(s).step_by(slots.len()).copied();
                out.push((slot.to_string(), name.clone(), values.collect()));
            }
        }
        Ok((self.steps, out))
    }

    /// The state `export` took out (buffers in any order of slots, parameters in the
    /// order of the first slot's).
    fn import<T: Scalar>(slots: &[&str], state: &OptimState<T>, caller: Caller) -> Result<State> {
        let mismatch = |reason| Error::Mismatch {
            what: "Resumable::set_state",
            reason,
            caller,
        };
        if state.buffers.is_empty() {
            // momentum-free SGD, or no step yet: a state made by the first step
            return Ok(State::default());
        }
        if let Some((slot, ..)) = state.buffers.iter().find(|b| !slots.contains(&&*b.0)) {
            return Err(mismatch(format!(
                "the state has a slot {slot:?}; this optimizer's are {slots:?}"
            )));
        }
        let names: Vec<&str> = state
            .buffers
            .iter()
            .filter(|b| b.0 == slots[0])
            .map(|b| b.1.as_str())
            .collect();
        if state.buffers.len() != names.len() * slots.len() || state.steps == 0 {
            return Err(mismatch(format!(
                "{} buffers after {} steps are not {} slots ({slots:?}) of each of {} \
                 parameters",
                state.buffers.len(),
                state.steps,
                slots.len(),
                names.len()
            )));
        }
        let mut bufs: Vec<Vec<T>> = Vec::with_capacity(names.len());
        for (k, name) in names.iter().enumerate() {
            if names[..k].contains(name) {
                return Err(mismatch(format!("the state has parameter {name:?} twice")));
            }
            let mut buf = Vec::new();
            let mut len = None;
            for (s, slot) in slots.iter().enumerate() {
                let found = state.buffers.iter().find(|b| b.0 == *slot && b.1 == *name);
                let Some((_, _, values)) = found else {
                    return Err(mismatch(format!("no {slot} for parameter {name:?}")));
                };
                if *len.get_or_insert(values.len()) != values.len() {
                    return Err(mismatch(format!(
                        "the slots of parameter {name:?} are of different lengths"
                    )));
                }
                // each element's slots side by side
                if s == 0 {
                    buf = vec![T::zero(); values.len() * slots.len()];
                }
                for (b, &v) in buf.iter_mut().skip(s).step_by(slots.len()).zip(values) {
                    *b = v;
                }
            }
            bufs.push(buf);
        }
        Ok(State {
            bufs: Some(Box::new(bufs)),
            names: names.iter().map(|n| n.to_string()).collect(),
            steps: state.steps,
        })
    }
}
