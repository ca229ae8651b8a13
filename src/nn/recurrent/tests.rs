//! Values and gradients against PyTorch, finite differences, the run-time batch, errors.
//!
//! The PyTorch references (torch 2.x, float64) fill every tensor with
//! `0.5 * sin(0.37 k + c)` over its elements `k` in row-major order
//! (`fill` below, and `fill(p, i + 1.0)` for the `i`-th of `named_parameters()`):
//!
//! ```text
//! def fill(t, c):
//!     t.copy_(torch.tensor([0.5*math.sin(0.37*k + c) for k in range(t.numel())]).reshape(t.shape))
//! ```

use alloc::string::String;
use alloc::vec::Vec;

use approx::assert_abs_diff_eq;
use ndarray::{ArrayD, IxDyn};
use rand::SeedableRng;

use super::super::{GRUCell, LSTMCell, RnnBuilder, GRU, LSTM};
use crate::ops::testing::{check, rand_array};
use crate::prelude::*;

fn fill(shape: &[usize], c: f64) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    let v = (0..n).map(|k| 0.5 * (0.37 * k as f64 + c).sin()).collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

fn weights(n: usize, shape: &[usize]) -> ArrayD<f64> {
    // torch.arange(1., n + 1).reshape(shape)
    ArrayD::from_shape_vec(IxDyn(shape), (1..=n).map(|v| v as f64).collect()).unwrap()
}

/// The four parameters of a cell or layer as PyTorch's test fills them, `first` the
/// index of its `weight_ih` among `named_parameters()`.
fn filled<'g>(
    g: &'g Graph<f64>,
    gates: usize,
    input: usize,
    first: usize,
) -> [Tensor<'g, f64>; 4] {
    let c = |i: usize| (first + i + 1) as f64;
    let l = first / 4;
    [
        g.param(&alloc::format!("w_ih{l}"), fill(&[gates * 2, input], c(0))),
        g.param(&alloc::format!("w_hh{l}"), fill(&[gates * 2, 2], c(1))),
        g.param(&alloc::format!("b_ih{l}"), fill(&[gates * 2], c(2))),
        g.param(&alloc::format!("b_hh{l}"), fill(&[gates * 2], c(3))),
    ]
}

#[track_caller]
fn assert_values(m: &Machine<f64>, t: Tensor<'_, f64>, want: &[f64]) {
    let got: Vec<f64> = m.value(t).unwrap().iter().copied().collect();
    assert_eq!(got.len(), want.len());
    for (a, e) in got.iter().zip(want) {
        assert_abs_diff_eq!(*a, *e, epsilon = 1e-12);
    }
}

#[test]
fn gru_cell_matches_pytorch() {
    // cell = torch.nn.GRUCell(3, 2); x = fill(2x3, 5.0); h = fill(2x2, 6.0)
    // y = cell(x, h); (y * torch.arange(1., 5.).reshape(2, 2)).sum().backward()
    let g = Graph::<f64>::new();
    let [weight_ih, weight_hh, bias_ih, bias_hh] = filled(&g, 3, 3, 0);
    let cell = GRUCell {
        weight_ih,
        weight_hh,
        bias_ih,
        bias_hh,
    };
    let x = g.param("x", fill(&[2, 3], 5.0));
    let h = g.param("h", fill(&[2, 2], 6.0));
    let y = cell.forward(x, Some(h));
    let loss = (y * g.constant(weights(4, &[2, 2]))).sum();
    let d = g.grad(loss, &[x, h, weight_hh, bias_ih]).unwrap();
    let mut m = g.compile(&[y], &d).unwrap();
    m.run().unwrap();
    assert_values(&m, y, &[-0.233687399564597, -0.372049739833279, -0.438960517945378, -0.270595436805121]);
    assert_values(&m, d[0], &[-0.3297039338882756, -0.1618752227487097, 0.027862540398895547, -0.5623136318258641, -0.06990462907030992, 0.43196563729247117]);
    assert_values(&m, d[1], &[0.04736654239362126, 0.5664965088089022, -0.242133246374011, -0.0028111659347809237]);
    assert_values(&m, d[2], &[-0.036479722150726826, -0.07126848360715345, -0.03722327548436901, -0.06800912357251157, 0.10808177249995866, 0.18965193262700084, 0.07219881383797747, 0.21862503844610923, 0.11585690475766444, 0.24085291960751112, 0.18503632988197977, 0.35495770481654637]);
    assert_values(&m, d[3], &[-0.22697080666789338, -0.20374988854771517, 0.5453955562335577, 0.9076597179903313, 1.8160872518388698, 3.120724424896103]);
}

#[test]
fn lstm_cell_matches_pytorch() {
    // cell = torch.nn.LSTMCell(3, 2); x, h as for the GRU, c = fill(2x2, 7.0)
    // y, cn = cell(x, (h, c)); y = y + 2 * cn; (y * arange(1., 5.).reshape(2, 2)).sum().backward()
    let g = Graph::<f64>::new();
    let [weight_ih, weight_hh, bias_ih, bias_hh] = filled(&g, 4, 3, 0);
    let cell = LSTMCell {
        weight_ih,
        weight_hh,
        bias_ih,
        bias_hh,
    };
    let x = g.param("x", fill(&[2, 3], 5.0));
    let h = g.param("h", fill(&[2, 2], 6.0));
    let c = g.constant(fill(&[2, 2], 7.0));
    let (h1, c1) = cell.forward(x, Some((h, c)));
    let y = h1 + c1 * 2.0;
    let loss = (y * g.constant(weights(4, &[2, 2]))).sum();
    let d = g.grad(loss, &[x, h, weight_hh, bias_ih]).unwrap();
    let mut m = g.compile(&[y], &d).unwrap();
    m.run().unwrap();
    assert_values(&m, y, &[-0.046063509724071, -0.035393182576319, -0.694896600740347, -0.293330314892277]);
    assert_values(&m, d[0], &[-0.7667924077551758, -0.5714534440051963, -0.298770937418407, -1.9160476165522606, -1.3780544494965963, -0.6535480774472323]);
    assert_values(&m, d[1], &[-0.9126903947450116, -0.6797296780475067, -2.790838575517071, -2.0675071395988387]);
    assert_values(&m, d[2], &[-0.28828450552756285, -0.542307006806411, -0.20596567405802912, -0.5403172471869915, 0.12763999943697088, 0.260363945575598, 0.10885036337697095, 0.3254602851195461, 0.21971441485239854, 0.5092055245541136, 0.4645590246223723, 0.9368477623824077, -0.04486613616649793, -0.07593986616601048, -0.02458625037429902, -0.04297070068185422]);
    assert_values(&m, d[3], &[-1.6701486209294285, -2.096647513999642, 0.8591662282687402, 1.343909726769682, 1.8395850487189298, 3.0633529562797706, -0.20992943097366765, -0.12305511926696047]);
}
