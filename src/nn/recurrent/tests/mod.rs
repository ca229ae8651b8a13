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

mod unrolled;
use crate::nn::Module;
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
fn filled<'g>(g: &'g Graph<f64>, gates: usize, input: usize, first: usize) -> [Tensor<'g, f64>; 4] {
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
    assert_values(
        &m,
        y,
        &[
            -0.233687399564597,
            -0.372049739833279,
            -0.438960517945378,
            -0.270595436805121,
        ],
    );
    assert_values(
        &m,
        d[0],
        &[
            -0.3297039338882756,
            -0.1618752227487097,
            0.027862540398895547,
            -0.5623136318258641,
            -0.06990462907030992,
            0.43196563729247117,
        ],
    );
    assert_values(
        &m,
        d[1],
        &[
            0.04736654239362126,
            0.5664965088089022,
            -0.242133246374011,
            -0.0028111659347809237,
        ],
    );
    assert_values(
        &m,
        d[2],
        &[
            -0.036479722150726826,
            -0.07126848360715345,
            -0.03722327548436901,
            -0.06800912357251157,
            0.10808177249995866,
            0.18965193262700084,
            0.07219881383797747,
            0.21862503844610923,
            0.11585690475766444,
            0.24085291960751112,
            0.18503632988197977,
            0.35495770481654637,
        ],
    );
    assert_values(
        &m,
        d[3],
        &[
            -0.22697080666789338,
            -0.20374988854771517,
            0.5453955562335577,
            0.9076597179903313,
            1.8160872518388698,
            3.120724424896103,
        ],
    );
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
    assert_values(
        &m,
        y,
        &[
            -0.046063509724071,
            -0.035393182576319,
            -0.694896600740347,
            -0.293330314892277,
        ],
    );
    assert_values(
        &m,
        d[0],
        &[
            -0.7667924077551758,
            -0.5714534440051963,
            -0.298770937418407,
            -1.9160476165522606,
            -1.3780544494965963,
            -0.6535480774472323,
        ],
    );
    assert_values(
        &m,
        d[1],
        &[
            -0.9126903947450116,
            -0.6797296780475067,
            -2.790838575517071,
            -2.0675071395988387,
        ],
    );
    assert_values(
        &m,
        d[2],
        &[
            -0.28828450552756285,
            -0.542307006806411,
            -0.20596567405802912,
            -0.5403172471869915,
            0.12763999943697088,
            0.260363945575598,
            0.10885036337697095,
            0.3254602851195461,
            0.21971441485239854,
            0.5092055245541136,
            0.4645590246223723,
            0.9368477623824077,
            -0.04486613616649793,
            -0.07593986616601048,
            -0.02458625037429902,
            -0.04297070068185422,
        ],
    );
    assert_values(
        &m,
        d[3],
        &[
            -1.6701486209294285,
            -2.096647513999642,
            0.8591662282687402,
            1.343909726769682,
            1.8395850487189298,
            3.0633529562797706,
            -0.20992943097366765,
            -0.12305511926696047,
        ],
    );
}
/// Both forms of a cell's step (with a state and from zero), added up.
fn cell<'g>(gates: usize, t: &[Tensor<'g, f64>]) -> Tensor<'g, f64> {
    let [weight_ih, weight_hh, bias_ih, bias_hh] = [t[3], t[4], t[5], t[6]];
    if gates == 3 {
        let c = GRUCell {
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
        };
        c.forward(t[0], Some(t[1])) + c.forward(t[0], None)
    } else {
        let c = LSTMCell {
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
        };
        let (h, c1) = c.forward(t[0], Some((t[1], t[2])));
        h + c1 + c.forward(t[0], None).1
    }
}

#[test]
fn cells_pass_gradcheck_first_and_second_order() {
    // x [2, 3], h [2, 2], c [2, 2], then the four parameters of a 2-unit cell
    for gates in [3, 4] {
        let mut inputs = alloc::vec![
            rand_array(&[2, 3], 1, -1.0, 1.0),
            rand_array(&[2, 2], 2, -1.0, 1.0),
            rand_array(&[2, 2], 3, -1.0, 1.0),
        ];
        for (i, s) in [[gates * 2, 3], [gates * 2, 2]].iter().enumerate() {
            inputs.push(rand_array(s, 4 + i as u64, -0.7, 0.7));
        }
        inputs.push(rand_array(&[gates * 2], 6, -0.7, 0.7));
        inputs.push(rand_array(&[gates * 2], 7, -0.7, 0.7));
        check(&inputs, |_, t| cell(gates, t));
        // second order: the gradient of sum(y^2) dotted with the inputs, differentiated again
        check(&inputs, |g, t| {
            let y = cell(gates, t).square().sum();
            let d = g.grad(y, t).unwrap();
            d.tensors()
                .iter()
                .zip(t)
                .map(|(&d, &x)| (d * x).sum())
                .reduce(|a, b| a + b)
                .unwrap()
        });
    }
}

#[test]
fn gru_and_lstm_names_shapes_and_init_follow_pytorch() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let g = Graph::<f32>::new();
    let gru = RnnBuilder::new(6, 16)
        .num_layers(2)
        .gru(&g, "rnn", &mut rng);
    let lstm = LSTM::new(&g, "", 5, 4, &mut rng);
    let x = g.input("x", (Dim::upto(8), 7, 6)).permute(&[1, 0, 2]);
    let (out, hn) = gru.forward(x);
    assert_eq!(out.shape().dims(), &[7, 8, 16]);
    assert_eq!(hn.shape().dims(), &[2, 8, 16]);
    let (_, (h, c)) = lstm.forward(g.input("y", [3, 2, 5]));
    assert_eq!(
        (h.shape().dims(), c.shape().dims()),
        (&[1, 2, 4][..], &[1, 2, 4][..])
    );
    let m = g.compile(&[out, hn, h, c], &[]).unwrap();
    let got: Vec<(String, Vec<usize>)> = m
        .params()
        .map(|(n, v)| (String::from(n), v.dims().to_vec()))
        .collect();
    let want = [
        ("rnn.weight_ih_l0", &[48, 6][..]),
        ("rnn.weight_hh_l0", &[48, 16]),
        ("rnn.bias_ih_l0", &[48]),
        ("rnn.bias_hh_l0", &[48]),
        ("rnn.weight_ih_l1", &[48, 16]),
        ("rnn.weight_hh_l1", &[48, 16]),
        ("rnn.bias_ih_l1", &[48]),
        ("rnn.bias_hh_l1", &[48]),
        ("weight_ih_l0", &[16, 5]),
        ("weight_hh_l0", &[16, 4]),
        ("bias_ih_l0", &[16]),
        ("bias_hh_l0", &[16]),
    ];
    assert_eq!(got.len(), want.len());
    for ((n, s), (wn, ws)) in got.iter().zip(want) {
        assert_eq!((n.as_str(), s.as_slice()), (wn, ws));
    }
    // U(±1/sqrt(H)): 1/4 for the GRU, 1/2 for the LSTM, and not much narrower
    for (name, bound) in [("rnn.weight_hh_l1", 0.25f32), ("weight_ih_l0", 0.5)] {
        let v = m.value(g.get(name).unwrap()).unwrap();
        let max = v.iter().fold(0.0f32, |a, b| a.max(b.abs()));
        assert!(max <= bound && max > 0.8 * bound, "{name}: {max}");
    }
    assert_eq!(Module::params(&gru).len(), 8);
}

#[test]
fn bad_sequences_are_located_errors() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let cases: [(&[usize], bool, &str); 4] = [
        (&[0, 2, 3], false, "the sequence is empty"),
        (&[2, 0, 3], true, "the sequence is empty"),
        (
            &[4, 2, 5],
            false,
            "the input has 5 features but the layer takes 3",
        ),
        (&[4, 3], true, "the input must be [N, T, F]"),
    ];
    for (shape, batch_first, reason) in cases {
        for lstm in [false, true] {
            let g = Graph::<f32>::new();
            let b = RnnBuilder::new(3, 2).batch_first(batch_first);
            let x = g.input("x", shape);
            let (out, line) = if lstm {
                (b.lstm(&g, "r", &mut rng).forward(x).0, line!())
            } else {
                (b.gru(&g, "r", &mut rng).forward(x).0, line!())
            };
            let e = g.compile(&[out.sum()], &[]).unwrap_err();
            let text = e.to_string();
            let op = if lstm { "LSTM" } else { "GRU" };
            assert!(matches!(e, Error::Shape { op: o, .. } if o == op), "{e:?}");
            assert!(text.contains(reason), "{text}");
            assert!(
                text.contains(&alloc::format!("{}:{line}", file!())),
                "{text}"
            );
        }
    }
    // the sequence length as the run-time axis cannot be unrolled
    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(5), 2, 3));
    let (out, line) = (GRU::new(&g, "r", 3, 2, &mut rng).forward(x).0, line!());
    let text = g.compile(&[out.sum()], &[]).unwrap_err().to_string();
    assert!(
        text.contains("run-time axis") && text.contains(&alloc::format!(":{line}")),
        "{text}"
    );
    // no layers
    let g = Graph::<f32>::new();
    let b = RnnBuilder::new(3, 2).num_layers(0);
    let (gru, line) = (b.gru(&g, "r", &mut rng), line!());
    let out = gru.forward(g.input("x", [2, 2, 3])).0;
    let text = g.compile(&[out.sum()], &[]).unwrap_err().to_string();
    assert!(
        text.contains("num_layers") && text.contains(&alloc::format!(":{line}")),
        "{text}"
    );
    // a cell given a wrong feature size: the product's error, at the caller's line
    let g = Graph::<f32>::new();
    let cell = GRUCell::new(&g, "c", 3, 2, &mut rng);
    let (h, line) = (cell.forward(g.input("x", [2, 4]), None), line!());
    let text = g.compile(&[h.sum()], &[]).unwrap_err().to_string();
    assert!(
        text.contains("matmul") && text.contains(&alloc::format!(":{line}")),
        "{text}"
    );
}
