use super::super::testing::{assert_close, check};
use crate::prelude::*;
use alloc::vec::Vec;
use approx::assert_abs_diff_eq;
use ndarray::{arr1, arr2, ArrayD, IxDyn};

/// `sin(1.3 k + s) * 2 + 0.5` for element `k`: the inputs of the PyTorch references
/// (`seq` in the script quoted below), reproducible on both sides.
fn seq(shape: &[usize], s: f64) -> ArrayD<f64> {
    let mut k = 0.0;
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        let v = (1.3 * k + s).sin() * 2.0 + 0.5;
        k += 1.0;
        v
    })
}

/// Central differences of `f` (a scalar) in the given mode, against its graph gradient:
/// `check::gradcheck` always runs in training mode.
fn gradcheck_in_mode(
    training: bool,
    inputs: &[ArrayD<f64>],
    f: impl for<'g> Fn(&'g Graph<f64>, &[Tensor<'g, f64>]) -> Tensor<'g, f64>,
) {
    let g = Graph::new();
    let xs: Vec<_> = inputs
        .iter()
        .enumerate()
        .map(|(i, a)| g.param(&alloc::format!("x{i}"), a.clone()))
        .collect();
    let y = f(&g, &xs);
    let gs = g.grad(y, &xs).unwrap();
    let mut m = g.compile(&[y], &gs).unwrap();
    m.set_training(training);
    m.run().unwrap();
    let analytic: Vec<ArrayD<f64>> = gs
        .tensors()
        .iter()
        .map(|t| m.value(*t).unwrap().to_owned())
        .collect();
    let eps = 1e-6;
    for (i, x) in inputs.iter().enumerate() {
        for k in 0..x.len() {
            let mut at = |d: f64| {
                let mut p = x.clone();
                p.as_slice_mut().unwrap()[k] += d;
                m.set_param(xs[i], &p).unwrap();
                m.run().unwrap();
                m.item(y).unwrap()
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            let a = analytic[i].as_slice().unwrap()[k];
            assert!(
                (a - numeric).abs() <= 1e-6 + 1e-4 * numeric.abs(),
                "input {i} element {k}: analytic {a}, numeric {numeric}"
            );
        }
        m.set_param(xs[i], x).unwrap();
    }
}

/// `batch_norm` of `t[0]` with weight `t[1]`, bias `t[2]` and, in evaluation, running
/// statistics `t[3]`, `t[4]` (parameters here, so they get gradients too).
fn bn<'g>(g: &'g Graph<f64>, t: &[Tensor<'g, f64>]) -> Tensor<'g, f64> {
    let c = t[0].shape().dim(1);
    let (rm, rv) = match t.len() {
        5 => (t[3], t[4]),
        _ => (
            g.buffer("rm", ndarray::Array1::zeros(c)),
            g.buffer("rv", ndarray::Array1::ones(c)),
        ),
    };
    t[0].batch_norm(rm, rv, Some(t[1]), Some(t[2]), 0.1, 1e-5)
}

/// A loss whose Hessian is not zero: the normalised values weighted unevenly, cubed.
fn loss<'g>(g: &'g Graph<f64>, y: Tensor<'g, f64>) -> Tensor<'g, f64> {
    let w = seq(y.shape().dims(), 3.0);
    (y * g.constant(w)).powf(3.0).sum()
}

/// The gradient of `loss` with respect to `t[0]`, weighted: a scalar whose gradient is
/// second order.
fn second<'g>(
    g: &'g Graph<f64>,
    t: &[Tensor<'g, f64>],
    f: fn(&'g Graph<f64>, &[Tensor<'g, f64>]) -> Tensor<'g, f64>,
) -> Tensor<'g, f64> {
    let l = loss(g, f(g, t));
    let d = g.grad(l, &[t[0]]).unwrap()[0];
    (d * g.constant(seq(d.shape().dims(), 7.0))).sum()
}

#[test]
fn batch_norm_known_value() {
    // channel 0: [1, 3, 5, 7], mean 4, biased variance (9 + 1 + 1 + 9) / 4 = 5, so
    // y = (x - 4) / sqrt(5 + eps); channel 1: all 2, variance 0, so y = 0 / sqrt(eps) = 0
    let g = Graph::<f64>::new();
    let x = g.constant(arr2(&[[1.0, 2.0], [3.0, 2.0], [5.0, 2.0], [7.0, 2.0]]));
    let rm = g.buffer("rm", arr1(&[0.0, 0.0]));
    let rv = g.buffer("rv", arr1(&[1.0, 1.0]));
    let y = x.batch_norm(rm, rv, None, None, 0.5, 1e-5);
    let mut m = g.compile(&[y], &[]).unwrap();
    m.set_training(true);
    m.run().unwrap();
    let s = (5.0f64 + 1e-5).sqrt();
    let want = arr2(&[
        [-3.0 / s, 0.0],
        [-1.0 / s, 0.0],
        [1.0 / s, 0.0],
        [3.0 / s, 0.0],
    ]);
    assert_close(&m.value(y).unwrap().to_owned(), &want.into_dyn());
    // running, momentum 0.5: 0.5 * 0 + 0.5 * [4, 2]; 0.5 * 1 + 0.5 * [20 / 3, 0], the
    // unbiased variance (9 + 1 + 1 + 9) / 3
    assert_close(
        &m.value(rm).unwrap().to_owned(),
        &arr1(&[2.0, 1.0]).into_dyn(),
    );
    assert_close(
        &m.value(rv).unwrap().to_owned(),
        &arr1(&[0.5 + 10.0 / 3.0, 0.5]).into_dyn(),
    );
}

/// Three training steps on `seq(shape, step)`, then evaluation on `seq(shape, 10)`,
/// against PyTorch 2.x in f64 (/tmp/norm/ref.py):
/// ```text
/// bn = (BatchNorm1d(C) if len(shape) < 4 else BatchNorm2d(C)).double()
/// bn.weight.copy_(seq((C,), 5.0)); bn.bias.copy_(seq((C,), 6.0))
/// bn.train()
/// for step in range(3): y = bn(seq(shape, float(step)))   # train_y3 = y
/// bn.running_mean, bn.running_var
/// bn.eval(); bn(seq(shape, 10.0))                          # eval_y
/// ```
fn against_pytorch(shape: &[usize], train_y3: &[f64], mean: &[f64], var: &[f64], eval_y: &[f64]) {
    let c = shape[1];
    let g = Graph::<f64>::new();
    let mut dims = shape.to_vec();
    dims[0] = shape[0] + 2; // a run-time batch axis with room to spare
    let x = g.input("x", Shape::upto(dims[0], &dims[1..]));
    let w = g.param("w", seq(&[c], 5.0));
    let b = g.param("b", seq(&[c], 6.0));
    let rm = g.buffer("rm", ndarray::Array1::zeros(c));
    let rv = g.buffer("rv", ndarray::Array1::ones(c));
    let y = x.batch_norm(rm, rv, Some(w), Some(b), 0.1, 1e-5);
    let grads = g.grad(y.sum(), &[w, b]).unwrap();
    let mut m = g.compile(&[y], &grads).unwrap();
    assert!(m.training());
    for step in 0..3 {
        m.feed(x, &seq(shape, step as f64)).unwrap();
        m.run().unwrap();
    }
    let close = |got: ArrayD<f64>, want: &[f64]| {
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(want) {
            assert_abs_diff_eq!(*a, *b, epsilon = 1e-12);
        }
    };
    close(m.value(y).unwrap().to_owned(), train_y3);
    close(m.value(rm).unwrap().to_owned(), mean);
    close(m.value(rv).unwrap().to_owned(), var);
    m.set_training(false);
    m.feed(x, &seq(shape, 10.0)).unwrap();
    m.run().unwrap();
    close(m.value(y).unwrap().to_owned(), eval_y);
    // evaluation leaves the running statistics alone
    close(m.value(rm).unwrap().to_owned(), mean);
}

#[test]
fn batch_norm_matches_pytorch_nc() {
    against_pytorch(
        &[4, 3],
        &[
            -1.480369885399447,
            2.028751293286746,
            -0.8424207090852204,
            1.3672070874460323,
            2.738710192718537,
            5.752286932789305,
            1.350790724221764,
            1.4043135852537447,
            2.204704174558491,
            -1.4729519118597563,
            2.631717893769487,
            0.7606063847303308,
        ],
        &[0.1969435019368859, 0.22953417592956404, 0.12436456188678759],
        &[1.3966769706235316, 1.398726300352609, 1.403575343622679],
        &[
            0.8829329509914637,
            1.4619980112149318,
            2.879371454827749,
            -2.7546901219531725,
            2.761835449426083,
            -0.1857910249509406,
            1.6583872546494116,
            2.5465541513250893,
            6.852317860617806,
            -1.111180529627193,
            1.5592760106772416,
            -0.30090086062830185,
        ],
    );
}

#[test]
fn batch_norm_matches_pytorch_ncl() {
    against_pytorch(
        &[3, 2, 4],
        &[
            -1.9159980661054286,
            0.2432566749774788,
            1.9348648558762205,
            0.6806165285576773,
            2.8030482004591275,
            2.806679150828059,
            1.9289625597579292,
            1.455755289437747,
            0.25915899671332066,
            -1.9092338526918264,
            -1.3918695964966472,
            1.053311917917383,
            1.4901929819201063,
            2.2430674913228685,
            2.940286860863354,
            2.5604230807535,
            1.388099203050442,
            1.6617129668356514,
            -0.6103616202251783,
            -2.0995299651833146,
            2.4091853309684343,
            1.560852885413108,
            1.6563112959121364,
            2.5557137674491726,
        ],
        &[0.1330086164659404, 0.1361950733456403],
        &[1.319482434082154, 1.321175288114318],
        &[
            0.8311736564249507,
            1.843308257802907,
            -0.5948173032299788,
            -2.9113433678398613,
            2.8213975342410347,
            1.7088716970300493,
            1.564565611884518,
            2.5998880316158446,
            -2.9799352974357944,
            -1.2204417803250753,
            1.5771925578352213,
            1.3144268574801152,
            2.7880100843728144,
            3.280419963547401,
            2.438727702593525,
            1.4960144356838496,
            0.9143515852102952,
            -2.0718793444564163,
            -2.7726114269150712,
            -0.1612705197230797,
            1.448894926180161,
            2.008952382553967,
            3.0976106836864155,
            3.1199828679633277,
        ],
    );
}

#[test]
fn batch_norm_matches_pytorch_nchw() {
    against_pytorch(
        &[2, 3, 2, 2],
        &[
            -1.886166411089733,
            0.23861298766608446,
            1.903212418735456,
            0.6689898158600606,
            2.759775251780429,
            2.7631231024986853,
            1.9538407325210894,
            1.5175287098117596,
            1.3313869741445283,
            5.5015642363852635,
            4.50658739993559,
            -0.19590013882291682,
            1.8139105624397018,
            -0.1759081134476027,
            -2.0186323727701483,
            -1.0146668585766323,
            1.7058280071871816,
            1.611898343461892,
            2.3918854280624076,
            2.9031063547335854,
            3.030149305765317,
            -1.3517618859156681,
            -0.8586883514807644,
            3.787016025974464,
        ],
        &[0.1312246737583973, 0.13410897320486423, 0.1384718877541095],
        &[1.3593260559803018, 1.345769586838575, 1.340259083608556],
        &[
            0.8158637078247736,
            1.813054606393081,
            -0.5890731498546701,
            -2.871396770428743,
            2.8166608999660894,
            1.7143477151987967,
            1.571366316495421,
            2.5971847879261976,
            6.93665686032991,
            3.9373982029307713,
            -0.8314906434135094,
            -0.3835763464902962,
            -1.602850103298777,
            -2.892692356285774,
            -0.6879229393717337,
            1.781465786438912,
            1.8376905851048448,
            2.9505709434333545,
            3.211713162299163,
            2.2385432792727133,
            -1.4440103374399769,
            1.0942060392563226,
            6.028075407681339,
            6.129467584265853,
        ],
    );
}

#[test]
fn batch_norm_gradcheck_training_first_and_second_order() {
    for shape in [&[4, 3][..], &[3, 2, 3], &[2, 2, 2, 2]] {
        let c = shape[1];
        let inputs = [seq(shape, 0.5), seq(&[c], 5.0), seq(&[c], 6.0)];
        check(&inputs, |g, t| loss(g, bn(g, t)));
        check(&inputs, |g, t| second(g, t, bn));
    }
}

#[test]
fn batch_norm_gradcheck_eval_first_and_second_order() {
    for shape in [&[4, 3][..], &[2, 2, 2, 2]] {
        let c = shape[1];
        let inputs = [
            seq(shape, 0.5),
            seq(&[c], 5.0),
            seq(&[c], 6.0),
            seq(&[c], 8.0) * 0.2,
            seq(&[c], 9.0).mapv(|v| v.abs() + 0.5),
        ];
        gradcheck_in_mode(false, &inputs, |g, t| loss(g, bn(g, t)));
        gradcheck_in_mode(false, &inputs, |g, t| second(g, t, bn));
        // and the same helper agrees with `gradcheck` in training mode
        gradcheck_in_mode(true, &inputs[..3], |g, t| second(g, t, bn));
    }
}

#[test]
fn batch_norm_second_order_is_not_zero() {
    // a zero Hessian would pass the checks above trivially
    let inputs = [seq(&[4, 3], 0.5), seq(&[3], 5.0), seq(&[3], 6.0)];
    let g = Graph::new();
    let t: Vec<_> = inputs
        .iter()
        .enumerate()
        .map(|(i, a)| g.param(&alloc::format!("x{i}"), a.clone()))
        .collect();
    let s = second(&g, &t, bn);
    let dd = g.grad(s, &[t[0]]).unwrap()[0];
    let mut m = g.compile(&[dd], &[]).unwrap();
    m.set_training(true);
    m.run().unwrap();
    let most = m
        .value(dd)
        .unwrap()
        .iter()
        .fold(0.0f64, |a, v| a.max(v.abs()));
    assert!(most > 1e-2, "{most}");
}

#[test]
fn batch_norm_one_value_per_channel_is_a_run_time_error_in_training_only() {
    let g = Graph::<f64>::new();
    let x = g.input("x", (Dim::upto(4), 3));
    let rm = g.buffer("rm", arr1(&[0.0, 0.0, 0.0]));
    let rv = g.buffer("rv", arr1(&[1.0, 1.0, 1.0]));
    let (y, line) = (x.batch_norm(rm, rv, None, None, 0.1, 1e-5), line!());
    let mut m = g.compile(&[y], &[]).unwrap();
    m.set_training(true);
    m.feed(x, &arr2(&[[1.0, 2.0, 3.0]])).unwrap(); // one row: one value per channel
    match m.run() {
        Err(Error::Empty {
            op: "batch_norm",
            axis: 0,
            caller: Some(at),
        }) => assert_eq!((at.file, at.line), (file!(), line)),
        other => panic!("expected Error::Empty, got {other:?}"),
    }
    let msg = m.run().unwrap_err().to_string();
    assert!(msg.contains("more than 1 value per channel"), "{msg}");
    // running statistics untouched by the failed runs; evaluation takes one row
    assert_eq!(m.value(rm).unwrap().as_slice(), Some(&[0.0, 0.0, 0.0][..]));
    m.set_training(false);
    m.run().unwrap();
    // two rows train
    m.set_training(true);
    m.feed(x, &arr2(&[[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]))
        .unwrap();
    m.run().unwrap();
    // a fixed [1, 2, 1] (one value per channel) is refused at run time too
    let g = Graph::<f64>::new();
    let x = g.constant(ArrayD::<f64>::ones(IxDyn(&[1, 2, 1])));
    let (rm, rv) = (
        g.buffer("rm", arr1(&[0.0, 0.0])),
        g.buffer("rv", arr1(&[1.0, 1.0])),
    );
    let y = x.batch_norm(rm, rv, None, None, 0.1, 1e-5);
    let mut m = g.compile(&[y], &[]).unwrap();
    m.set_training(true);
    assert!(matches!(m.run(), Err(Error::Empty { .. })));
}

#[test]
fn batch_norm_run_time_batch_equals_fixed_batch() {
    // 3 rows fed to a bound of 6 give the values and running statistics of a fixed [3, 2, 2]
    let data = seq(&[3, 2, 2], 1.0);
    let run = |fixed: bool| {
        let g = Graph::<f64>::new();
        let x = if fixed {
            g.input("x", [3, 2, 2])
        } else {
            g.input("x", (Dim::upto(6), 2, 2))
        };
        let (rm, rv) = (
            g.buffer("rm", arr1(&[0.0, 0.0])),
            g.buffer("rv", arr1(&[1.0, 1.0])),
        );
        let y = x.batch_norm(rm, rv, None, None, 0.1, 1e-5);
        let mut m = g.compile(&[y], &[]).unwrap();
        m.set_training(true);
        m.feed(x, &data).unwrap();
        m.run().unwrap();
        [y, rm, rv].map(|t| m.value(t).unwrap().to_owned())
    };
    for (a, b) in run(true).iter().zip(&run(false)) {
        assert_close(a, b);
    }
}

#[test]
fn batch_norm_bad_inputs_are_located_errors() {
    let g = Graph::<f64>::new();
    let x = g.input("x", [4, 3]);
    let r3 = g.buffer("r3", arr1(&[0.0, 0.0, 0.0]));
    let r2 = g.buffer("r2", arr1(&[0.0, 0.0]));
    let v = g.input("v", [4]);
    let cases = [
        (v.batch_norm(r3, r3, None, None, 0.1, 1e-5), line!()),
        (x.batch_norm(r2, r3, None, None, 0.1, 1e-5), line!()),
        (x.batch_norm(r3, r2, None, None, 0.1, 1e-5), line!()),
        (x.batch_norm(r3, r3, Some(r2), None, 0.1, 1e-5), line!()),
        (x.batch_norm(r3, r3, None, Some(r2), 0.1, 1e-5), line!()),
        (x.batch_norm(r3, r3, None, None, 1.5, 1e-5), line!()),
        (x.batch_norm(r3, r3, None, None, f64::NAN, 1e-5), line!()),
        (x.batch_norm(r3, r3, None, None, 0.1, -1.0), line!()),
    ];
    let errors = g.inner.borrow().errors.clone();
    assert_eq!(errors.len(), cases.len(), "{errors:?}");
    for (e, (_, line)) in errors.iter().zip(&cases) {
        match e {
            Error::Shape {
                op: "batch_norm",
                caller,
                ..
            } => assert_eq!((caller.file, caller.line), (file!(), *line)),
            other => panic!("{other}"),
        }
    }
}

/// PyTorch 2.x, f64 (/tmp/norm/ref.py):
/// ```text
/// x = seq((2, 3, 4), 0.0)
/// ln = torch.nn.LayerNorm([3, 4]).double()
/// ln.weight.copy_(seq((3, 4), 5.0)); ln.bias.copy_(seq((3, 4), 6.0))
/// ln(x)                        # ln_y
/// F.layer_norm(x, [4])         # ln_plain
/// ```
#[test]
fn layer_norm_matches_pytorch() {
    let ln_y = [
        0.15351230846139371,
        2.8556701964451188,
        3.398234949546655,
        -2.1161574876502183,
        -0.18778741468248308,
        0.1701872080137558,
        3.6172225137477247,
        2.4074612632062418,
        -2.250437756982984,
        0.12926175907595214,
        0.3482511677720614,
        4.212978429870276,
        -0.4683839365814491,
        1.56522389991334,
        0.194793555079964,
        1.0860621961025323,
        -2.7727189235350536,
        0.39239982250973976,
        1.1608158127015191,
        0.4841625964599786,
        0.5772939391775574,
        -2.87049398116043,
        1.1220244956690073,
        0.717009074501377,
    ];
    let ln_plain = [
        -0.3219000294820366,
        1.2460109833279938,
        0.5169286891465104,
        -1.4410396429924675,
        -1.5502454166156499,
        0.078259623477647,
        1.23959071104584,
        0.2323950820921628,
        -1.008056111574365,
        -0.9231915367685908,
        0.6004766550502746,
        1.3307709932926812,
        0.5217097542372303,
        -1.2070071373940465,
        -0.6663380908589437,
        1.3516354740157601,
        1.5446915393435172,
        0.05443266203495081,
        -1.2072049547143595,
        -0.3919192466641088,
        0.9069354932557208,
        0.9914929775285233,
        -0.506282348105745,
        -1.3921461226784992,
    ];
    let g = Graph::<f64>::new();
    let x = g.input("x", (Dim::upto(5), 3, 4));
    let w = g.param("w", seq(&[3, 4], 5.0));
    let b = g.param("b", seq(&[3, 4], 6.0));
    let y = x.layer_norm(&[3, 4], Some(w), Some(b), 1e-5);
    let plain = x.layer_norm(&[4], None, None, 1e-5);
    let mut m = g.compile(&[y, plain], &[]).unwrap();
    m.feed(x, &seq(&[2, 3, 4], 0.0)).unwrap();
    m.run().unwrap();
    for (got, want) in [(y, &ln_y), (plain, &ln_plain)] {
        for (a, b) in m.value(got).unwrap().iter().zip(want) {
            assert_abs_diff_eq!(*a, *b, epsilon = 1e-12);
        }
    }
}

#[test]
fn layer_norm_known_value() {
    // rows [1, 2, 3] (mean 2, biased variance 2/3) and [5, 5, 5] (variance 0), eps 0:
    // (x - 2) / sqrt(2/3) and 0 / sqrt(1e-5) = 0 (with eps 1e-5 for that row)
    let x = [arr2(&[[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]).into_dyn()];
    let y = super::super::testing::eval(&x, |_, t| t[0].layer_norm(&[3], None, None, 1e-5));
    let s = (2.0f64 / 3.0 + 1e-5).sqrt();
    let want = arr2(&[[-1.0 / s, 0.0, 1.0 / s], [0.0, 0.0, 0.0]]).into_dyn();
    assert_close(&y, &want);
}

#[test]
fn layer_norm_gradcheck_first_and_second_order() {
    fn ln<'g>(_: &'g Graph<f64>, t: &[Tensor<'g, f64>]) -> Tensor<'g, f64> {
        t[0].layer_norm(&[2, 3], Some(t[1]), Some(t[2]), 1e-5)
    }
    let inputs = [seq(&[2, 2, 3], 0.5), seq(&[2, 3], 5.0), seq(&[2, 3], 6.0)];
    check(&inputs, |g, t| loss(g, ln(g, t)));
    check(&inputs, |g, t| second(g, t, ln));
}

#[test]
fn layer_norm_bad_inputs_are_located_errors() {
    let g = Graph::<f64>::new();
    let x = g.input("x", [4, 3]);
    let w3 = g.param("w3", arr1(&[1.0, 1.0, 1.0]));
    let w2 = g.param("w2", arr1(&[1.0, 1.0]));
    let cases = [
        (x.layer_norm(&[], None, None, 1e-5), line!()),
        (x.layer_norm(&[4], None, None, 1e-5), line!()),
        (x.layer_norm(&[2, 4, 3], None, None, 1e-5), line!()),
        (x.layer_norm(&[3], Some(w2), None, 1e-5), line!()),
        (x.layer_norm(&[3], Some(w3), Some(w2), 1e-5), line!()),
        (x.layer_norm(&[3], None, None, f64::INFINITY), line!()),
    ];
    let errors = g.inner.borrow().errors.clone();
    assert_eq!(errors.len(), cases.len(), "{errors:?}");
    for (e, (_, line)) in errors.iter().zip(&cases) {
        match e {
            Error::Shape {
                op: "layer_norm",
                caller,
                ..
            } => assert_eq!((caller.file, caller.line), (file!(), *line)),
            other => panic!("{other}"),
        }
    }
}
