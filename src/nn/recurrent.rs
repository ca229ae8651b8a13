//! Recurrent layers as PyTorch defines them: [`GRUCell`], [`LSTMCell`], and [`GRU`] /
//! [`LSTM`] unrolled over a sequence of fixed length.
//!
//! Parameters keep PyTorch's names and layout: `weight_ih` `[G·H, in]`, `weight_hh`
//! `[G·H, H]`, `bias_ih`, `bias_hh` `[G·H]`, the gates stacked in PyTorch's order (GRU
//! `r, z, n`, G = 3; LSTM `i, f, g, o`, G = 4), all initialised `U(±1/sqrt(H))`
//! (`reset_parameters`: `init.uniform_(w, -stdv, stdv)` with `stdv = 1 / sqrt(hidden_size)`).
//! The products `x·W_ihᵀ`, `h·W_hhᵀ` read the weights transposed in place (the GEMM's
//! packing), so no transposed copy is made. With `h` the previous hidden state:
//!
//! ```text
//! GRU:  r = σ(W_ir x + b_ir + W_hr h + b_hr)       LSTM: i = σ(W_ii x + b_ii + W_hi h + b_hi)
//!       z = σ(W_iz x + b_iz + W_hz h + b_hz)             f = σ(W_if x + b_if + W_hf h + b_hf)
//!       n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))    g = tanh(W_ig x + b_ig + W_hg h + b_hg)
//!       h' = (1 - z) ⊙ n + z ⊙ h                         o = σ(W_io x + b_io + W_ho h + b_ho)
//!                                                        c' = f ⊙ c + i ⊙ g,  h' = o ⊙ tanh(c')
//! ```
//!
//! A missing initial state is zero, and is left out of the first step's equations
//! (`W_hh·0 = 0`), so no zero tensor of the run-time batch is needed.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::panic::Location;

use rand::Rng;

use crate::graph::{Graph, Tensor};
use crate::init;
use crate::scalar::Scalar;
use crate::shape::Shape;

use super::Module;

#[cfg(test)]
mod tests;

/// `"{prefix}.{field}"`, or `field` alone for an empty prefix.
fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        String::from(field)
    } else {
        format!("{prefix}.{field}")
    }
}

/// The four parameters of one cell or layer of `[gates, input, hidden]`, `suffix` after
/// each name (`"_l0"`).
fn params<'g, T: Scalar, R: Rng + ?Sized>(
    g: &'g Graph<T>,
    name: &str,
    suffix: &str,
    [gates, input, hidden]: [usize; 3],
    rng: &mut R,
    caller: &'static Location<'static>,
) -> [Tensor<'g, T>; 4] {
    let bound = 1.0 / num_traits::Float::sqrt(hidden.max(1) as f64);
    let rows = gates.saturating_mul(hidden);
    let shapes = [
        ("weight_ih", Shape::from([rows, input])),
        ("weight_hh", Shape::from([rows, hidden])),
        ("bias_ih", Shape::from([rows])),
        ("bias_hh", Shape::from([rows])),
    ];
    shapes.map(|(field, shape)| {
        // `init::uniform` locates a size error here; the user's line is the one to show
        let init = init::uniform(shape.clone(), -bound, bound, rng).map_err(|e| match e {
            crate::Error::TooLarge {
                what,
                shapes,
                bytes,
                limit,
                ..
            } => crate::Error::TooLarge {
                what,
                shapes,
                bytes,
                limit,
                caller: caller.into(),
            },
            e => e,
        });
        let name = join(name, &format!("{field}{suffix}"));
        g.param_or_fail(&name, init, shape, caller)
    })
}

/// `x·W_ihᵀ + b_ih` for `x` `[.., in]`, weights `[G·H, in]`.
#[track_caller]
fn project<'g, T: Scalar>(x: Tensor<'g, T>, w: Tensor<'g, T>, b: Tensor<'g, T>) -> Tensor<'g, T> {
    x.matmul_t(w, false, true) + b
}

/// `nn.GRUCell`: one step `h' = cell(x, h)` for `x` `[N, in]`, `h` `[N, H]`.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::GRUCell;
/// use tapegrad::rand::SeedableRng;
/// let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(0);
/// let g = Graph::<f32>::new();
/// let cell = GRUCell::new(&g, "cell", 3, 5, &mut rng);
/// let x = g.input("x", (Dim::upto(16), 3));
/// let h1 = cell.forward(x, None);
/// let h2 = cell.forward(x, Some(h1));
/// assert_eq!(h2.shape().dims(), &[16, 5]);
/// assert_eq!(g.params().len(), 4); // cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh
/// ```
#[derive(Clone, Copy, Debug)]
pub struct GRUCell<'g, T: Scalar> {
    /// `[3H, in]`, gates `r, z, n`.
    pub weight_ih: Tensor<'g, T>,
    /// `[3H, H]`.
    pub weight_hh: Tensor<'g, T>,
    /// `[3H]`.
    pub bias_ih: Tensor<'g, T>,
    /// `[3H]`.
    pub bias_hh: Tensor<'g, T>,
}

impl<'g, T: Scalar> GRUCell<'g, T> {
    /// A cell named `name` (`"{name}.weight_ih"`, ...; an empty name gives the bare
    /// names), initialised as PyTorch's. Sizes too large to initialise record
    /// [`Error::TooLarge`](crate::Error::TooLarge) in `g`, as
    /// [`Linear::new`](super::Linear::new) does.
    #[track_caller]
    pub fn new<R: Rng + ?Sized>(
        g: &'g Graph<T>,
        name: &str,
        input: usize,
        hidden: usize,
        rng: &mut R,
    ) -> Self {
        let [weight_ih, weight_hh, bias_ih, bias_hh] =
            params(g, name, "", [3, input, hidden], rng, Location::caller());
        GRUCell {
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
        }
    }

    /// The next hidden state `[N, H]` from `x` `[N, in]` and `h` `[N, H]` (zero if
    /// `None`). Shapes that do not fit are an error at the caller's line, from the first
    /// fallible call.
    #[track_caller]
    pub fn forward(&self, x: Tensor<'g, T>, h: Option<Tensor<'g, T>>) -> Tensor<'g, T> {
        self.step(project(x, self.weight_ih, self.bias_ih), h)
    }

    /// One step from the input's projection `gi = x·W_ihᵀ + b_ih` `[N, 3H]`.
    #[track_caller]
    fn step(&self, gi: Tensor<'g, T>, h: Option<Tensor<'g, T>>) -> Tensor<'g, T> {
        let gh = match h {
            Some(h) => project(h, self.weight_hh, self.bias_hh),
            None => self.bias_hh,
        };
        let (i, hh) = (gi.chunk(3, -1), gh.chunk(3, -1));
        let (Some(&[ir, iz, i_n]), Some(&[hr, hz, hn])) = (i.get(..3), hh.get(..3)) else {
            // chunk recorded why it could not split; any stand-in of its result will do
            return gi;
        };
        let r = (ir + hr).sigmoid();
        let z = (iz + hz).sigmoid();
        let n = (i_n + r * hn).tanh();
        match h {
            // h' = (1 - z) n + z h = n + z (h - n): one product fewer
            Some(h) => n + z * (h - n),
            None => n - z * n,
        }
    }
}

/// `nn.LSTMCell`: one step `(h', c') = cell(x, (h, c))` for `x` `[N, in]`, `h`, `c`
/// `[N, H]`.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::LSTMCell;
/// use tapegrad::rand::SeedableRng;
/// let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(0);
/// let g = Graph::<f32>::new();
/// let cell = LSTMCell::new(&g, "cell", 3, 5, &mut rng);
/// let x = g.input("x", [4, 3]);
/// let (h, c) = cell.forward(x, None);
/// let (h, _) = cell.forward(x, Some((h, c)));
/// assert_eq!(h.shape().dims(), &[4, 5]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct LSTMCell<'g, T: Scalar> {
    /// `[4H, in]`, gates `i, f, g, o`.
    pub weight_ih: Tensor<'g, T>,
    /// `[4H, H]`.
    pub weight_hh: Tensor<'g, T>,
    /// `[4H]`.
    pub bias_ih: Tensor<'g, T>,
    /// `[4H]`.
    pub bias_hh: Tensor<'g, T>,
}

impl<'g, T: Scalar> LSTMCell<'g, T> {
    /// A cell named `name`, as [`GRUCell::new`].
    #[track_caller]
    pub fn new<R: Rng + ?Sized>(
        g: &'g Graph<T>,
        name: &str,
        input: usize,
        hidden: usize,
        rng: &mut R,
    ) -> Self {
        let [weight_ih, weight_hh, bias_ih, bias_hh] =
            params(g, name, "", [4, input, hidden], rng, Location::caller());
        LSTMCell {
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
        }
    }

    /// The next `(h, c)`, each `[N, H]`, from `x` `[N, in]` and the state (zero if
    /// `None`). Shapes that do not fit are an error at the caller's line.
    #[track_caller]
    pub fn forward(
        &self,
        x: Tensor<'g, T>,
        state: Option<(Tensor<'g, T>, Tensor<'g, T>)>,
    ) -> (Tensor<'g, T>, Tensor<'g, T>) {
        self.step(project(x, self.weight_ih, self.bias_ih), state)
    }

    #[track_caller]
    fn step(
        &self,
        gi: Tensor<'g, T>,
        state: Option<(Tensor<'g, T>, Tensor<'g, T>)>,
    ) -> (Tensor<'g, T>, Tensor<'g, T>) {
        let gates = match state {
            Some((h, _)) => gi + project(h, self.weight_hh, self.bias_hh),
            None => gi + self.bias_hh,
        };
        let parts = gates.chunk(4, -1);
        let Some(&[i, f, g, o]) = parts.get(..4) else {
            return (gates, gates);
        };
        let (i, g, o) = (i.sigmoid(), g.tanh(), o.sigmoid());
        let c = match state {
            Some((_, c)) => f.sigmoid() * c + i * g,
            None => i * g,
        };
        (o * c.tanh(), c)
    }
}

impl<'g, T: Scalar> Module<'g, T> for GRUCell<'g, T> {
    /// One step from a zero state.
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        GRUCell::forward(self, x, None)
    }

    fn params(&self) -> Vec<Tensor<'g, T>> {
        alloc::vec![self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh]
    }
}

impl<'g, T: Scalar> Module<'g, T> for LSTMCell<'g, T> {
    /// `h'` of one step from a zero state.
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        LSTMCell::forward(self, x, None).0
    }

    fn params(&self) -> Vec<Tensor<'g, T>> {
        alloc::vec![self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh]
    }
}

mod unrolled;
pub use unrolled::{RnnBuilder, GRU, LSTM};
