//! The unrolled layers against PyTorch: two layers, both layouts, an initial state.

use alloc::vec::Vec;

use rand::SeedableRng;

use super::super::super::{GRUCell, LSTMCell, GRU, LSTM};
use super::{assert_values, fill, filled, weights};
use crate::prelude::*;

/// A two-layer, batch-first GRU or LSTM filled as PyTorch's test fills it.
fn two_layers<'g>(g: &'g Graph<f64>, gates: usize) -> Vec<[Tensor<'g, f64>; 4]> {
    alloc::vec![filled(g, gates, 3, 0), filled(g, gates, 2, 4)]
}

fn gru_of<'g>(g: &'g Graph<f64>, batch_first: bool) -> GRU<'g, f64> {
    GRU {
        layers: two_layers(g, 3)
            .into_iter()
            .map(|[weight_ih, weight_hh, bias_ih, bias_hh]| GRUCell {
                weight_ih,
                weight_hh,
                bias_ih,
                bias_hh,
            })
            .collect(),
        batch_first,
    }
}

fn lstm_of<'g>(g: &'g Graph<f64>, batch_first: bool) -> LSTM<'g, f64> {
    LSTM {
        layers: two_layers(g, 4)
            .into_iter()
            .map(|[weight_ih, weight_hh, bias_ih, bias_hh]| LSTMCell {
                weight_ih,
                weight_hh,
                bias_ih,
                bias_hh,
            })
            .collect(),
        batch_first,
    }
}

// m = torch.nn.GRU(3, 2, num_layers=2, batch_first=True), parameters filled in order
// x = fill(2x4x3, 9.0); out, hn = m(x)
// loss = (out * arange(1., 17.).reshape(2, 4, 2)).sum() + (hn * hn).sum(); loss.backward()
const GRU_OUT: [f64; 16] = [
    0.002098207452131717,
    -0.036157851487730965,
    -0.003312159849808635,
    -0.050591534983425876,
    -0.004671200815726565,
    -0.05103016117566338,
    -0.0071127702104304465,
    -0.05995021694888762,
    0.012545822800155055,
    -0.0383223360463036,
    0.0006172102258898762,
    -0.07227511604091022,
    -0.01878000442853557,
    -0.08508324319795028,
    -0.021435511072000656,
    -0.072800988066612,
];
const GRU_HN: [f64; 8] = [
    -0.3700059911856054,
    -0.4705008649739215,
    -0.31072120752059207,
    -0.5611641878911001,
    -0.0071127702104304465,
    -0.05995021694888762,
    -0.021435511072000656,
    -0.072800988066612,
];
const GRU_DX: [f64; 24] = [
    -0.6153463173838709,
    -0.24413363058983045,
    0.16012139782190937,
    -0.8535129568440679,
    -0.3797134110059605,
    0.1454785636956673,
    -0.6994859838874296,
    -0.2878401537567157,
    0.16276349086576625,
    -0.26387629061807777,
    -0.0762415289863727,
    0.12171216592845698,
    -0.7745242437785783,
    0.30017028348838615,
    1.3342381710476543,
    -0.9481421553994619,
    0.535442799675141,
    1.9465580836894376,
    -1.6256598372149498,
    -0.5010193411627875,
    0.6914317723277784,
    -0.8988619790011424,
    -0.4017305363310219,
    0.14977324982836188,
];
const GRU_DW_HH_L0: [f64; 12] = [
    -0.015031188891325643,
    -0.014750081073624787,
    0.043766524218860556,
    0.023138023406772283,
    0.4310446147407457,
    0.3050256173582897,
    -0.6618696282828311,
    -0.35601351918844304,
    -2.580982757642776,
    -1.4592575278444728,
    -1.9645810987408177,
    -0.8256785927435104,
];

// the same with torch.nn.LSTM: out, (hn, cn) = m(x); the same loss of out and hn
const LSTM_OUT: [f64; 16] = [
    0.0821654700945027,
    0.0018751161569839719,
    0.14325785513572095,
    0.004325303333124539,
    0.18422121022999435,
    0.0037634162220356536,
    0.20589888429157258,
    -0.004031338495881157,
    0.07144801450168214,
    -0.006964486357045677,
    0.11925106987970259,
    -0.014147643331500967,
    0.1629494952593491,
    -0.010704044227771187,
    0.1974662199956039,
    -0.0056338280815997595,
];
const LSTM_HN: [f64; 8] = [
    -0.12933100175977533,
    -0.11955106207382346,
    -0.05927496628968622,
    -0.12997916044585195,
    0.20589888429157258,
    -0.004031338495881157,
    0.1974662199956039,
    -0.0056338280815997595,
];
const LSTM_DX: [f64; 24] = [
    -0.20600280587929917,
    -0.14098087521726424,
    -0.05687784446575595,
    -0.15701625182966006,
    -0.09168654874919532,
    -0.013947501416571088,
    -0.1373323784448441,
    -0.08081568690391389,
    -0.013360971264064742,
    -0.12142268473435526,
    -0.08335766940328795,
    -0.03401058456699041,
    -0.7021180730450615,
    -0.46136831374145015,
    -0.15817451754953527,
    -0.698084688759536,
    -0.4148909499327667,
    -0.07554366737402916,
    -0.4658200706393778,
    -0.2915806036372776,
    -0.07787706979931891,
    -0.17831197675025273,
    -0.11110178708276804,
    -0.028854491735675218,
];
const LSTM_DW_HH_L0: [f64; 16] = [
    0.17565095884122459,
    0.07412116434746326,
    0.12733429669923313,
    0.06689789134957286,
    0.1151121446610687,
    0.049759281030968695,
    0.04030364818797465,
    0.025509824204104557,
    -0.2583396708087313,
    -0.1263476586545767,
    -0.28269769810916173,
    -0.10854098751089541,
    0.2610880803910162,
    0.11525609660020997,
    0.12488369673433986,
    0.07307404601230708,
];

#[test]
fn two_layer_gru_and_lstm_match_pytorch() {
    for lstm in [false, true] {
        let g = Graph::<f64>::new();
        let x = g.param("x", fill(&[2, 4, 3], 9.0));
        let (out, hn) = if lstm {
            let (o, (h, _)) = lstm_of(&g, true).forward(x);
            (o, h)
        } else {
            gru_of(&g, true).forward(x)
        };
        assert_eq!(out.shape().dims(), &[2, 4, 2]);
        assert_eq!(hn.shape().dims(), &[2, 2, 2]);
        let loss = (out * g.constant(weights(16, &[2, 4, 2]))).sum() + (hn * hn).sum();
        let w_hh = g.get("w_hh0").unwrap();
        let d = g.grad(loss, &[x, w_hh]).unwrap();
        let mut m = g.compile(&[out, hn], &d).unwrap();
        m.run().unwrap();
        let want = if lstm {
            [&LSTM_OUT[..], &LSTM_HN, &LSTM_DX, &LSTM_DW_HH_L0]
        } else {
            [&GRU_OUT[..], &GRU_HN, &GRU_DX, &GRU_DW_HH_L0]
        };
        for (t, w) in [out, hn, d[0], d[1]].into_iter().zip(want) {
            assert_values(&m, t, w);
        }
    }
}

#[test]
fn the_batch_may_be_the_run_time_axis_in_either_layout() {
    // [..=4, T, F] fed 2 rows, batch first or permuted to [T, ..=4, F]: PyTorch's values
    for batch_first in [true, false] {
        let g = Graph::<f64>::new();
        let x = g.input("x", (Dim::upto(4), 4, 3));
        let xin = if batch_first {
            x
        } else {
            x.permute(&[1, 0, 2])
        };
        let gru = gru_of(&g, batch_first);
        let (out, hn) = gru.forward(xin);
        let out = if batch_first {
            out
        } else {
            out.permute(&[1, 0, 2])
        };
        let w = g.input("w", (Dim::upto(4), 4, 2));
        let loss = (out * w).sum() + (hn * hn).sum();
        let w_hh = g.get("w_hh0").unwrap();
        let d = g.grad(loss, &[w_hh]).unwrap();
        let mut m = g.compile(&[out, hn], &d).unwrap();
        m.feed(x, &fill(&[2, 4, 3], 9.0)).unwrap();
        m.feed(w, &weights(16, &[2, 4, 2])).unwrap();
        m.run().unwrap();
        assert_values(&m, out, &GRU_OUT);
        assert_values(&m, hn, &GRU_HN);
        assert_values(&m, d[0], &GRU_DW_HH_L0);
    }
}

// m = torch.nn.GRU(3, 2, num_layers=2) (time first), parameters filled in order;
// x = fill(4x2x3, 9.0); h0 = fill(2x2x2, 11.0); out, hn = m(x, h0)
// (out.sum() + (hn * hn).sum()).backward()
const GRU_H0_OUT: [f64; 16] = [
    -0.05458964155039914,
    0.009865482144262555,
    0.24735713505154638,
    0.20407826379244082,
    -0.046297700513084405,
    -0.0286692598927756,
    0.18927559472898775,
    0.06375751721524664,
    -0.029015728051879373,
    -0.053872615571844404,
    0.13242828810317608,
    -0.024611258349021337,
    -0.036275108071218025,
    -0.07216652554365728,
    0.09444133210764377,
    -0.05040752496264573,
];
const GRU_H0_HN: [f64; 8] = [
    -0.46393921881805233,
    -0.440740674014242,
    -0.33981886138373685,
    -0.492216977151504,
    -0.036275108071218025,
    -0.07216652554365728,
    0.09444133210764377,
    -0.05040752496264573,
];
const GRU_DH0: [f64; 8] = [
    0.25305833994865096,
    0.2309548609259012,
    0.2568521981706989,
    0.2730975846592519,
    1.735162438115433,
    0.9021370138964817,
    2.3117957280865244,
    1.3502700740353284,
];
// the same with torch.nn.LSTM and c0 = fill(2x2x2, 12.0): out, (hn, cn) = m(x, (h0, c0));
// hn = hn + cn; the same loss
const LSTM_H0_OUT: [f64; 16] = [
    0.19108332348138848,
    0.10873308482483691,
    0.20901757030144683,
    0.06952486689871638,
    0.21343375028747005,
    0.061384516133896005,
    0.24887801759699735,
    0.0453881943289084,
    0.22088912917152168,
    0.020938138023766466,
    0.24664085493654236,
    0.010708612030476312,
    0.23606132588938344,
    0.005650693856169927,
    0.2586043101948364,
    0.0036595622940561326,
];
const LSTM_H0_HN: [f64; 8] = [
    -0.49212372826953066,
    -0.4036827826188586,
    -0.3534044287528468,
    -0.4222458956518297,
    0.8784484422129214,
    0.02125021473158025,
    0.9888179550093841,
    0.013944474939254044,
];
const LSTM_DH0: [f64; 8] = [
    -0.09003643307538674,
    -0.06700292909209841,
    -0.05212141081725639,
    -0.039849736595302464,
    0.1930551761720714,
    -0.0991860282453849,
    0.12576721440832997,
    -0.12271848402443813,
];

#[test]
fn an_initial_state_matches_pytorch() {
    for lstm in [false, true] {
        let g = Graph::<f64>::new();
        let x = g.constant(fill(&[4, 2, 3], 9.0));
        let h0 = g.param("h0", fill(&[2, 2, 2], 11.0));
        let (out, hn) = if lstm {
            let c0 = g.param("c0", fill(&[2, 2, 2], 12.0));
            let (o, (h, c)) = lstm_of(&g, false).forward_from(x, Some((h0, c0)));
            (o, h + c)
        } else {
            gru_of(&g, false).forward_from(x, Some(h0))
        };
        let loss = out.sum() + (hn * hn).sum();
        let d = g.grad(loss, &[h0]).unwrap();
        let mut m = g.compile(&[out, hn], &d).unwrap();
        m.run().unwrap();
        let want = if lstm {
            [&LSTM_H0_OUT[..], &LSTM_H0_HN, &LSTM_DH0]
        } else {
            [&GRU_H0_OUT[..], &GRU_H0_HN, &GRU_DH0]
        };
        for (t, w) in [out, hn, d[0]].into_iter().zip(want) {
            assert_values(&m, t, w);
        }
    }
    // a state of the wrong batch: located at the caller's line
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let g = Graph::<f64>::new();
    let gru = GRU::new(&g, "r", 3, 2, &mut rng);
    let (x, h0) = (g.input("x", [4, 2, 3]), g.input("h0", [1, 3, 2]));
    let (out, line) = (gru.forward_from(x, Some(h0)).0, line!());
    let text = g.compile(&[out.sum()], &[]).unwrap_err().to_string();
    assert!(
        text.contains(&alloc::format!("{}:{line}", file!())),
        "{text}"
    );
}
