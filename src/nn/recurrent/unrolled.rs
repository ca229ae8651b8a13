//! [`GRU`] and [`LSTM`]: stacks of cells unrolled over a sequence of fixed length.

use alloc::string::String;
use alloc::vec::Vec;
use core::panic::Location;

use rand::Rng;

use super::{params, project, GRUCell, LSTMCell};
use crate::graph::{Graph, Tensor};
use crate::nn::Module;
use crate::scalar::Scalar;
use crate::shape::Shape;

/// Sizes and options of a [`GRU`] or [`LSTM`] (PyTorch's constructor arguments) before
/// it is built into a graph.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::RnnBuilder;
/// use tapegrad::rand::SeedableRng;
/// let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(0);
/// let g = Graph::<f32>::new();
/// let gru = RnnBuilder::new(6, 32).num_layers(2).batch_first(true).gru(&g, "gru", &mut rng);
/// let x = g.input("x", (Dim::upto(64), 100, 6)); // [N, T, F]
/// let (out, h_n) = gru.forward(x);
/// assert_eq!(out.shape().dims(), &[64, 100, 32]); // every step of the last layer
/// assert_eq!(h_n.shape().dims(), &[2, 64, 32]); // the last step of every layer
/// assert!(g.get("gru.weight_hh_l1").is_some());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RnnBuilder {
    input: usize,
    hidden: usize,
    num_layers: usize,
    batch_first: bool,
}

impl RnnBuilder {
    /// `input_size` features in, `hidden_size` out; one layer, input `[T, N, F]`
    /// (PyTorch's defaults) until set otherwise.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        RnnBuilder {
            input: input_size,
            hidden: hidden_size,
            num_layers: 1,
            batch_first: false,
        }
    }

    /// Stacked layers, each taking the previous one's outputs (at least 1: 0 is an
    /// error recorded at `gru`/`lstm`'s caller).
    pub fn num_layers(mut self, n: usize) -> Self {
        self.num_layers = n;
        self
    }

    /// Input and output `[N, T, F]` instead of `[T, N, F]`.
    pub fn batch_first(mut self, yes: bool) -> Self {
        self.batch_first = yes;
        self
    }

    #[allow(clippy::type_complexity)]
    fn layers<'g, T: Scalar, R: Rng + ?Sized>(
        &self,
        g: &'g Graph<T>,
        name: &str,
        gates: usize,
        rng: &mut R,
        caller: &'static Location<'static>,
    ) -> Vec<[Tensor<'g, T>; 4]> {
        if self.num_layers == 0 {
            let reason = String::from("num_layers must be at least 1");
            let what = if gates == 3 { "GRU" } else { "LSTM" };
            g.fail(what, Vec::new(), reason, caller, Shape::scalar());
        }
        (0..self.num_layers)
            .map(|l| {
                let input = if l == 0 { self.input } else { self.hidden };
                let suffix = alloc::format!("_l{l}");
                params(g, name, &suffix, [gates, input, self.hidden], rng, caller)
            })
            .collect()
    }

    /// Records a [`GRU`]'s parameters into `g`: `"{name}.weight_ih_l{k}"`,
    /// `"{name}.weight_hh_l{k}"`, `"{name}.bias_ih_l{k}"`, `"{name}.bias_hh_l{k}"` for each
    /// layer `k` (bare names for an empty `name`), initialised as PyTorch's.
    #[track_caller]
    pub fn gru<'g, T: Scalar, R: Rng + ?Sized>(
        &self,
        g: &'g Graph<T>,
        name: &str,
        rng: &mut R,
    ) -> GRU<'g, T> {
        let layers = self.layers(g, name, 3, rng, Location::caller());
        GRU {
            layers: layers
                .into_iter()
                .map(|[weight_ih, weight_hh, bias_ih, bias_hh]| GRUCell {
                    weight_ih,
                    weight_hh,
                    bias_ih,
                    bias_hh,
                })
                .collect(),
            batch_first: self.batch_first,
        }
    }

    /// Records an [`LSTM`]'s parameters into `g`, named as [`gru`](Self::gru) names them.
    #[track_caller]
    pub fn lstm<'g, T: Scalar, R: Rng + ?Sized>(
        &self,
        g: &'g Graph<T>,
        name: &str,
        rng: &mut R,
    ) -> LSTM<'g, T> {
        let layers = self.layers(g, name, 4, rng, Location::caller());
        LSTM {
            layers: layers
                .into_iter()
                .map(|[weight_ih, weight_hh, bias_ih, bias_hh]| LSTMCell {
                    weight_ih,
                    weight_hh,
                    bias_ih,
                    bias_hh,
                })
                .collect(),
            batch_first: self.batch_first,
        }
    }
}

/// The time axis and the steps' projected inputs `x_t·W_ihᵀ + b_ih` `[N, G·H]` of the
/// first layer, or a located error for an input that is not `[N, T, in]` / `[T, N, in]`
/// with `T ≥ 1` fixed.
fn first_layer<'g, T: Scalar>(
    what: &'static str,
    x: Tensor<'g, T>,
    w_ih: Tensor<'g, T>,
    b_ih: Tensor<'g, T>,
    batch_first: bool,
    caller: &'static Location<'static>,
) -> core::result::Result<(usize, Vec<Tensor<'g, T>>), ()> {
    let (s, w) = (x.shape(), w_ih.shape());
    let time = usize::from(batch_first);
    let input = w.dims().get(1).copied().unwrap_or(0);
    let layout = if batch_first {
        "[N, T, F]"
    } else {
        "[T, N, F]"
    };
    let reason = if s.rank() != 3 {
        Some(alloc::format!("the input must be {layout}"))
    } else if s.dims()[2] != input {
        Some(alloc::format!(
            "the input has {} features but the layer takes {input}",
            s.dims()[2]
        ))
    } else if s.dims()[time] == 0 {
        Some(String::from("the sequence is empty (length 0)"))
    } else if s.run_axis() == Some(time) {
        Some(String::from(
            "the sequence length cannot be a run-time axis: it is unrolled while recording",
        ))
    } else {
        None
    };
    if let Some(reason) = reason {
        x.graph()
            .fail(what, alloc::vec![s, w], reason, caller, Shape::scalar());
        return Err(());
    }
    // Each step's input projected on its own. One product over every step, then read a
    // step at a time, made the gradient quadratic in the length: each step's `narrow`
    // gives back a zero-padded gradient of the whole sequence's projection, and those are
    // summed (the motion example's GRU, 100 steps, batch 64: a training run 15.5–16.4 →
    // 6.9–7.1 ms, its forward 4.72 → 4.58–4.62 ms).
    let steps = (0..s.dims()[time])
        .map(|t| project(x.narrow(time, t, 1).squeeze(time), w_ih, b_ih))
        .collect();
    Ok((time, steps))
}

/// Stand-ins for the outputs of a layer whose input was refused: shapes as if it fit,
/// so later shape rules do not report the same mistake again.
fn stand_in<'g, T: Scalar>(
    x: Tensor<'g, T>,
    layers: usize,
    hidden: usize,
    bf: bool,
) -> [Tensor<'g, T>; 2] {
    let s = x.shape();
    let d = s.dims();
    let (n, t) = match (d.len(), bf) {
        (3, true) => (d[0], d[1]),
        (3, false) => (d[1], d[0]),
        _ => (0, 0),
    };
    let out = if bf { [n, t, hidden] } else { [t, n, hidden] };
    let g = x.graph();
    [g.zeros(out), g.zeros([layers, n, hidden])]
}

fn hidden_of<T: Scalar>(w_hh: Tensor<'_, T>) -> usize {
    w_hh.shape().dims().get(1).copied().unwrap_or(0)
}

/// `nn.GRU` over a fixed number of steps; build it with [`RnnBuilder::gru`].
#[derive(Clone, Debug)]
pub struct GRU<'g, T: Scalar> {
    /// One cell per layer; layer `k`'s parameters are named `"{name}.weight_ih_l{k}"`, ...
    pub layers: Vec<GRUCell<'g, T>>,
    /// Input and output `[N, T, F]` rather than `[T, N, F]`.
    pub batch_first: bool,
}

impl<'g, T: Scalar> GRU<'g, T> {
    /// A one-layer GRU taking `[T, N, input]`, as `nn.GRU(input, hidden)`.
    #[track_caller]
    pub fn new<R: Rng + ?Sized>(
        g: &'g Graph<T>,
        name: &str,
        input: usize,
        hidden: usize,
        rng: &mut R,
    ) -> Self {
        RnnBuilder::new(input, hidden).gru(g, name, rng)
    }

    /// `(output, h_n)`: the last layer's hidden state at every step (`[N, T, H]` or
    /// `[T, N, H]`, as the input) and every layer's last hidden state `[layers, N, H]`,
    /// from a zero initial state. The batch may be the input's run-time axis; an input
    /// of the wrong rank or feature size, or of no steps, is an error at the caller's
    /// line, from the first fallible call.
    #[track_caller]
    pub fn forward(&self, x: Tensor<'g, T>) -> (Tensor<'g, T>, Tensor<'g, T>) {
        self.forward_from(x, None)
    }

    /// [`forward`](Self::forward) from the initial state `h_0` `[layers, N, H]` (PyTorch's
    /// `gru(x, h_0)`; zero if `None`). A state of another shape is an error at the
    /// caller's line.
    #[track_caller]
    pub fn forward_from(
        &self,
        x: Tensor<'g, T>,
        h_0: Option<Tensor<'g, T>>,
    ) -> (Tensor<'g, T>, Tensor<'g, T>) {
        let caller = Location::caller();
        let g = x.graph();
        let (Some(first), Some(last)) = (self.layers.first(), self.layers.last()) else {
            return (x, x);
        };
        let hidden = hidden_of(last.weight_hh);
        let Ok((time, mut gis)) = first_layer(
            "GRU",
            x,
            first.weight_ih,
            first.bias_ih,
            self.batch_first,
            caller,
        ) else {
            let [o, h] = stand_in(x, self.layers.len(), hidden, self.batch_first);
            return (o, h);
        };
        let mut h_n = Vec::with_capacity(self.layers.len());
        let mut hs = Vec::with_capacity(gis.len());
        for (l, cell) in self.layers.iter().enumerate() {
            if l > 0 {
                gis = hs
                    .iter()
                    .map(|&h| project(h, cell.weight_ih, cell.bias_ih))
                    .collect();
            }
            hs.clear();
            let mut h = h_0.map(|h| h.narrow(0, l, 1).squeeze(0));
            for &gi in &gis {
                let next = cell.step(gi, h);
                hs.push(next);
                h = Some(next);
            }
            h_n.extend(h);
        }
        (g.stack(&hs, time), g.stack(&h_n, 0))
    }
}

/// `nn.LSTM` over a fixed number of steps; build it with [`RnnBuilder::lstm`].
#[derive(Clone, Debug)]
pub struct LSTM<'g, T: Scalar> {
    /// One cell per layer, named as [`GRU`]'s.
    pub layers: Vec<LSTMCell<'g, T>>,
    /// Input and output `[N, T, F]` rather than `[T, N, F]`.
    pub batch_first: bool,
}

impl<'g, T: Scalar> LSTM<'g, T> {
    /// A one-layer LSTM taking `[T, N, input]`, as `nn.LSTM(input, hidden)`.
    #[track_caller]
    pub fn new<R: Rng + ?Sized>(
        g: &'g Graph<T>,
        name: &str,
        input: usize,
        hidden: usize,
        rng: &mut R,
    ) -> Self {
        RnnBuilder::new(input, hidden).lstm(g, name, rng)
    }

    /// `(output, (h_n, c_n))` as PyTorch returns them: the last layer's `h` at every
    /// step, and every layer's last `h` and `c` `[layers, N, H]`, from a zero initial
    /// state. Errors as for [`GRU::forward`].
    #[track_caller]
    #[allow(clippy::type_complexity)]
    pub fn forward(&self, x: Tensor<'g, T>) -> (Tensor<'g, T>, (Tensor<'g, T>, Tensor<'g, T>)) {
        self.forward_from(x, None)
    }

    /// [`forward`](Self::forward) from the initial state `(h_0, c_0)`, each
    /// `[layers, N, H]` (PyTorch's `lstm(x, (h_0, c_0))`; zero if `None`). States of
    /// another shape are an error at the caller's line.
    #[track_caller]
    #[allow(clippy::type_complexity)]
    pub fn forward_from(
        &self,
        x: Tensor<'g, T>,
        state_0: Option<(Tensor<'g, T>, Tensor<'g, T>)>,
    ) -> (Tensor<'g, T>, (Tensor<'g, T>, Tensor<'g, T>)) {
        let caller = Location::caller();
        let g = x.graph();
        let (Some(first), Some(last)) = (self.layers.first(), self.layers.last()) else {
            return (x, (x, x));
        };
        let hidden = hidden_of(last.weight_hh);
        let Ok((time, mut gis)) = first_layer(
            "LSTM",
            x,
            first.weight_ih,
            first.bias_ih,
            self.batch_first,
            caller,
        ) else {
            let [o, h] = stand_in(x, self.layers.len(), hidden, self.batch_first);
            return (o, (h, h));
        };
        let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
        let mut hs = Vec::with_capacity(gis.len());
        for (l, cell) in self.layers.iter().enumerate() {
            if l > 0 {
                gis = hs
                    .iter()
                    .map(|&h| project(h, cell.weight_ih, cell.bias_ih))
                    .collect();
            }
            hs.clear();
            let layer = |t: Tensor<'g, T>| t.narrow(0, l, 1).squeeze(0);
            let mut state = state_0.map(|(h, c)| (layer(h), layer(c)));
            for &gi in &gis {
                let (h, c) = cell.step(gi, state);
                hs.push(h);
                state = Some((h, c));
            }
            if let Some((h, c)) = state {
                h_n.push(h);
                c_n.push(c);
            }
        }
        (g.stack(&hs, time), (g.stack(&h_n, 0), g.stack(&c_n, 0)))
    }
}

impl<'g, T: Scalar> Module<'g, T> for GRU<'g, T> {
    /// The outputs of every step.
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        GRU::forward(self, x).0
    }

    fn params(&self) -> Vec<Tensor<'g, T>> {
        self.layers.iter().flat_map(|c| c.params()).collect()
    }
}

impl<'g, T: Scalar> Module<'g, T> for LSTM<'g, T> {
    /// The outputs of every step.
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        LSTM::forward(self, x).0
    }

    fn params(&self) -> Vec<Tensor<'g, T>> {
        self.layers.iter().flat_map(|c| c.params()).collect()
    }
}
