//! A run-time axis (`Dim::upto`): one machine, compiled once for a bound, computes on the
//! rows fed. Every value and gradient must equal what a graph recorded for exactly that
//! many rows computes (that graph's ops are finite-difference checked in their files), at
//! every number of rows, in any order, on the same machine.

use approx::assert_relative_eq;
use tapegrad::ndarray::{self, ArrayD, IxDyn, Slice};
use tapegrad::prelude::*;
use tapegrad::{Dim, Shape};

const BOUND: usize = 8;
const CLASSES: usize = 4;

/// Deterministic values in [-1, 1).
fn values(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    })
}

/// A model: the loss from the input `x` (`[rows, ..]`), class ids `[rows]` and parameters.
type Model = dyn for<'g> Fn(
    &'g Graph<f64>,
    Tensor<'g, f64>,
    Tensor<'g, f64>,
    &[Tensor<'g, f64>],
) -> Tensor<'g, f64>;

struct Case {
    name: &'static str,
    /// The extents of `x` after its rows.
    rest: &'static [usize],
    params: Vec<ArrayD<f64>>,
    model: Box<Model>,
    /// Whether the model is defined on zero rows (a max over the rows is not).
    empty_ok: bool,
}

/// The loss and its gradients for each parameter, and the gradient of `(d loss/d p0 · v)`
/// with respect to p0 (second order).
struct Result3 {
    loss: f64,
    grads: Vec<ArrayD<f64>>,
    hvp: ArrayD<f64>,
}

fn record<'g>(
    g: &'g Graph<f64>,
    case: &Case,
    x: Tensor<'g, f64>,
    ids: Tensor<'g, f64>,
) -> (Tensor<'g, f64>, Vec<Tensor<'g, f64>>, Tensor<'g, f64>) {
    let ps: Vec<_> = case
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| g.param(&format!("p{i}"), p.clone()))
        .collect();
    let loss = (case.model)(g, x, ids, &ps);
    let grads = g.grad(loss, &ps).unwrap().tensors().to_vec();
    let v = g.constant(values(case.params[0].shape(), 99));
    let hvp = g.grad((grads[0] * v).sum(), &ps[..1]).unwrap()[0];
    (loss, grads, hvp)
}

fn read(
    m: &Machine<f64>,
    loss: Tensor<'_, f64>,
    grads: &[Tensor<'_, f64>],
    hvp: Tensor<'_, f64>,
) -> Result3 {
    Result3 {
        loss: m.item(loss).unwrap(),
        grads: grads
            .iter()
            .map(|t| m.value(*t).unwrap().to_owned())
            .collect(),
        hvp: m.value(hvp).unwrap().to_owned(),
    }
}

fn data(case: &Case) -> (ArrayD<f64>, ArrayD<f64>) {
    let mut shape = vec![BOUND];
    shape.extend_from_slice(case.rest);
    let x = values(&shape, 1);
    let ids = ArrayD::from_shape_fn(IxDyn(&[BOUND]), |i| ((i[0] * 3 + 1) % CLASSES) as f64);
    (x, ids)
}

/// The case on a graph recorded for exactly `rows` rows.
fn fixed(case: &Case, rows: usize) -> Result3 {
    let (x, ids) = data(case);
    let mut shape = vec![rows];
    shape.extend_from_slice(case.rest);
    let g = Graph::new();
    let xi = g.input("x", shape);
    let ii = g.input("ids", [rows]);
    let (loss, grads, hvp) = record(&g, case, xi, ii);
    let mut outs = vec![loss];
    outs.extend_from_slice(&grads);
    outs.push(hvp);
    let mut m = g.compile(&outs, &[]).unwrap();
    m.feed(
        xi,
        &x.slice_axis(tapegrad::ndarray::Axis(0), Slice::from(..rows)),
    )
    .unwrap();
    feed_ids(&mut m, ii, &ids, rows);
    m.seed(5);
    m.run().unwrap();
    read(&m, loss, &grads, hvp)
}

/// Feeds the first `rows` ids, unless the model does not use them.
fn feed_ids(m: &mut Machine<f64>, ids: Tensor<'_, f64>, data: &ArrayD<f64>, rows: usize) {
    let data = data.slice_axis(tapegrad::ndarray::Axis(0), Slice::from(..rows));
    match m.feed(ids, &data) {
        Ok(()) | Err(Error::NotCompiled { .. }) => {}
        Err(e) => panic!("{e}"),
    }
}

fn same(a: f64, b: f64, what: &str) {
    if a.is_nan() || b.is_nan() {
        assert!(a.is_nan() && b.is_nan(), "{what}: {a} vs {b}");
    } else {
        assert_relative_eq!(a, b, epsilon = 1e-12, max_relative = 1e-12);
    }
}

fn check(case: Case) {
    let (x, ids) = data(&case);
    let g = Graph::new();
    let xi = g.input("x", Shape::upto(BOUND, case.rest));
    let ii = g.input("ids", Dim::upto(BOUND));
    let (loss, grads, hvp) = record(&g, &case, xi, ii);
    let mut outs = vec![loss];
    outs.extend_from_slice(&grads);
    outs.push(hvp);
    let mut m = g.compile(&outs, &[]).unwrap();
    // one machine, rows in any order, up and down, the bound included
    for rows in [3, BOUND, 1, 0, 5, 2, BOUND, 0, 7] {
        if rows == 0 && !case.empty_ok {
            continue;
        }
        m.feed(
            xi,
            &x.slice_axis(tapegrad::ndarray::Axis(0), Slice::from(..rows)),
        )
        .unwrap();
        feed_ids(&mut m, ii, &ids, rows);
        m.seed(5);
        m.run().unwrap();
        assert_eq!(m.rows(), rows);
        let got = read(&m, loss, &grads, hvp);
        let want = fixed(&case, rows);
        let what = format!("{} at {rows} rows", case.name);
        same(got.loss, want.loss, &format!("{what}: loss"));
        for (k, (a, b)) in got.grads.iter().zip(&want.grads).enumerate() {
            assert_eq!(a.shape(), b.shape(), "{what}: gradient {k}");
            for (&a, &b) in a.iter().zip(b) {
                same(a, b, &format!("{what}: gradient {k}"));
            }
        }
        for (&a, &b) in got.hvp.iter().zip(&want.hvp) {
            same(a, b, &format!("{what}: second order"));
        }
        if rows == 0 {
            // a mean over no rows is NaN, as in PyTorch; sums over no rows are 0
            assert!(got.loss.is_nan(), "{what}: loss {}", got.loss);
        }
    }
}

fn rows_of(t: Tensor<'_, f64>) -> usize {
    t.shape().dims()[0]
}

#[test]
fn mlp_with_cross_entropy() {
    check(Case {
        name: "mlp",
        rest: &[3],
        params: vec![
            values(&[3, 5], 2),
            values(&[5], 3),
            values(&[5, CLASSES], 4),
            values(&[CLASSES], 5),
        ],
        model: Box::new(|_, x, ids, p| {
            ((x.matmul(p[0]) + p[1]).relu().matmul(p[2]) + p[3]).cross_entropy(ids)
        }),
        empty_ok: true,
    });
}

#[test]
fn mse_softmax_and_unary_ops() {
    check(Case {
        name: "mse",
        rest: &[3],
        params: vec![values(&[3, 4], 6), values(&[4], 7)],
        model: Box::new(|_, x, _, p| {
            let h = (x.matmul(p[0]) * p[1]).tanh();
            let s = h.softmax(1) + h.log_softmax(1).exp() * 0.5 + h.sigmoid().square();
            s.mse(x.matmul(p[0]).exp().sqrt()) + h.gelu().abs().mean()
        }),
        empty_ok: true,
    });
}

#[test]
fn batch_statistics_and_contraction_over_rows() {
    // centring over the rows (a batch norm's first step), a Gram matrix that sums over
    // the rows, and a max over the rows
    check(Case {
        name: "stats",
        rest: &[4],
        params: vec![values(&[4, 3], 8)],
        model: Box::new(|_, x, _, p| {
            let h = x.matmul(p[0]);
            let centred = h - h.mean_axes(&[0], true);
            let var = centred.square().mean_axes(&[0], false);
            let gram = h.t().matmul(h).sum();
            (var.sum() + gram * 0.1 + h.max_axes(&[0], false).sum())
                + h.max_axes(&[1], true).sum_axes(&[0], false).sum()
        }),
        empty_ok: false,
    });
}

#[test]
fn movement_index_and_dropout() {
    check(Case {
        name: "movement",
        rest: &[2, 3],
        params: vec![values(&[3, 4], 9), values(&[CLASSES, 2], 10)],
        model: Box::new(|g, x, ids, p| {
            let r = rows_of(x);
            // [r, 2, 3] x [3, 4]: 3-D x 2-D, whose gradient reshapes to [r * 2, ..]
            let h = x.matmul(p[0]);
            let flat = h.reshape([r * 2, 4]).relu().reshape([r, 8]);
            let joined = g
                .concat(&[flat, flat * 2.0], 1)
                .narrow(1, 3, 10)
                .pad(1, 1, 2);
            let emb = p[1].index_select(ids); // [r, 2]
            let hot = ids.one_hot(CLASSES).matmul(p[1]); // the same rows, as a product
            let perm = h.permute(&[2, 0, 1]).sum_axes(&[0, 2], false); // [r]
            let e = (emb - hot + emb * 0.5).dropout(0.3)
                + p[1].sum_axes(&[0], false).broadcast_to(emb.shape());
            joined.sum_axes(&[1], false).dot(perm) + e.sum() + joined.detach().mean()
        }),
        empty_ok: true,
    });
}

/// `(a * b).sum()` for two tensors of one shape.
trait Dot<'g> {
    fn dot(self, other: Tensor<'g, f64>) -> Tensor<'g, f64>;
}
impl<'g> Dot<'g> for Tensor<'g, f64> {
    fn dot(self, other: Tensor<'g, f64>) -> Tensor<'g, f64> {
        (self * other).sum()
    }
}

#[test]
fn shapes_carry_the_run_time_axis() {
    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(64), 3, 4));
    assert_eq!(x.shape().to_string(), "[..=64, 3, 4]");
    assert_eq!(x.shape().bound(), Some(64));
    let flat = x.reshape([64 * 3, 4]);
    assert_eq!(flat.shape().run_axis(), Some(0));
    let t = x.permute(&[1, 2, 0]);
    assert_eq!(t.shape().run_axis(), Some(2));
    assert_eq!(x.sum_axes(&[0], false).shape(), Shape::from([3, 4]));
    assert_eq!(x.sum_axes(&[1], false).shape().run_axis(), Some(0));
    let w = g.param("w", tapegrad::ndarray::Array2::<f32>::zeros((4, 2)));
    let y = x.matmul(w);
    assert_eq!(y.shape().to_string(), "[..=64, 3, 2]");
    // a contraction over the rows leaves a fixed shape
    let h = x.reshape([64 * 3, 4]);
    assert_eq!(h.t().matmul(h).shape(), Shape::from([4, 4]));
    g.check().unwrap();
}

/// An `Error::Shape` recorded at `line` of this file whose message has `needle`.
#[track_caller]
fn shape_error_at(e: Error, line: u32, needle: &str) {
    match &e {
        Error::Shape { caller, .. } => {
            assert!(caller.file.ends_with("run_axis.rs"), "{e}");
            assert_eq!(caller.line, line, "{e}");
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    assert!(e.to_string().contains(needle), "{e} lacks {needle:?}");
}

#[test]
fn ops_that_cannot_take_the_run_time_axis_are_located_errors() {
    type Case = (
        Box<dyn for<'g> Fn(Tensor<'g, f32>) -> (Tensor<'g, f32>, u32)>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (Box::new(|x| (x.narrow(0, 0, 2), line!())), "run-time axis"),
        (Box::new(|x| (x.pad(0, 1, 0), line!())), "run-time axis"),
        (
            Box::new(|x| {
                let z = x.graph().zeros([8, 3]);
                (x + z, line!())
            }),
            "run-time axis meets a fixed extent",
        ),
        (
            Box::new(|x| {
                let (t, z) = (x.t(), x.graph().zeros([8, 2]));
                (t.matmul(z), line!())
            }),
            "inner dimension",
        ),
        (
            Box::new(|x| {
                let h = x.matmul(x.graph().zeros([3, 2]));
                let t = x.t();
                (h.matmul(t), line!())
            }),
            "inner dimension",
        ),
        (
            Box::new(|x| (x.reshape([3, 8]), line!())),
            "must stay whole",
        ),
        (
            Box::new(|x| {
                let (g, z) = (x.graph(), x.graph().zeros([8, 3]));
                (g.concat(&[x, z], 1), line!())
            }),
            "same run-time axis",
        ),
        (
            Box::new(|x| (x.matmul(x.t()), line!())),
            "two run-time axes",
        ),
    ];
    for (f, needle) in cases {
        let g = Graph::<f32>::new();
        let x = g.input("x", (Dim::upto(8), 3));
        let (_, line) = f(x);
        shape_error_at(g.check().unwrap_err(), line, needle);
    }
}

#[test]
fn run_time_axis_only_leads_an_input() {
    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(8), 3));
    let (_, line) = (g.input("t", x.t().shape()), line!());
    shape_error_at(g.check().unwrap_err(), line, "leading axis");
    let g = Graph::<f32>::new();
    let (_, line) = (g.input("x", (Dim::upto(0), 3)), line!());
    shape_error_at(g.check().unwrap_err(), line, "at least 1 row");
}

#[test]
fn feeds_above_the_bound_or_of_another_shape_are_errors() {
    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(4), 3));
    let y = x.sum();
    let mut m = g.compile(&[y], &[]).unwrap();
    let five = ndarray::Array2::zeros((5, 3));
    let (e, line) = (m.feed(x, &five), line!());
    let e = e.unwrap_err();
    match &e {
        Error::Feed {
            expected,
            got,
            caller,
            ..
        } => {
            assert_eq!(expected.to_string(), "[..=4, 3]");
            assert_eq!(got, &Shape::from([5, 3]));
            assert_eq!(caller.line, line);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("[..=4, 3]"), "{e}");
    assert!(m.feed(x, &ndarray::Array2::zeros((2, 4))).is_err());
    assert!(m.feed(x, &ndarray::Array1::zeros(3)).is_err());
    // flat slices: whole rows only, up to the bound
    assert!(m.feed_slice(x, &[1.0; 7]).is_err());
    assert!(m.feed_slice(x, &[1.0; 15]).is_err());
    m.feed_slice(x, &[1.0; 6]).unwrap();
    m.run().unwrap();
    assert_eq!(m.rows(), 2);
    assert_eq!(m.item(y).unwrap(), 6.0);
    // a failed feed leaves the last good one
    assert!(m.feed(x, &ndarray::Array2::zeros((5, 3))).is_err());
    m.run().unwrap();
    assert_eq!(m.item(y).unwrap(), 6.0);
}

#[test]
fn inputs_fed_different_rows_are_an_error_at_run() {
    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(4), 2));
    let t = g.input("t", (Dim::upto(4), 2));
    let loss = x.mse(t);
    let mut m = g.compile(&[loss], &[]).unwrap();
    let fx = line!() + 1;
    m.feed(x, &ndarray::Array2::ones((3, 2))).unwrap();
    let ft = line!() + 1;
    m.feed(t, &ndarray::Array2::zeros((2, 2))).unwrap();
    let e = m.run().unwrap_err();
    match &e {
        Error::Rows {
            first,
            first_rows,
            first_fed_at,
            second,
            second_rows,
            second_fed_at,
        } => {
            assert_eq!((first.as_str(), *first_rows), ("x", 3));
            assert_eq!((second.as_str(), *second_rows), ("t", 2));
            assert_eq!((first_fed_at.line, second_fed_at.line), (fx, ft));
            assert!(first_fed_at.file.ends_with("run_axis.rs"));
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("\"x\" was fed 3 rows at tests/run_axis.rs:{fx}"))
            && msg.contains(&format!("\"t\" 2 rows at tests/run_axis.rs:{ft}")),
        "{msg}"
    );
    // nothing is readable after a failed run; feeding the same rows fixes it
    assert!(m.item(loss).is_err());
    m.feed(t, &ndarray::Array2::zeros((3, 2))).unwrap();
    m.run().unwrap();
    assert_eq!(m.item(loss).unwrap(), 1.0);
}

#[test]
fn values_are_read_at_the_rows_fed() {
    let g = Graph::<f64>::new();
    let x = g.input("x", (Dim::upto(4), 2));
    let w = g.param("w", ndarray::arr2(&[[1.0], [2.0]]));
    let h = x.matmul(w); // [rows, 1]
    let mean = h.mean();
    let dw = g.grad(mean, &[w]).unwrap()[0];
    let mut m = g.compile(&[h, mean, dw], &[]).unwrap();
    m.feed(x, &ndarray::arr2(&[[1.0, 1.0], [2.0, 0.0], [0.0, 3.0]]))
        .unwrap();
    m.run().unwrap();
    assert_eq!(m.value(h).unwrap().shape(), &[3, 1]);
    // mean over 3 rows: (3 + 2 + 6) / 3; d/dw = column means of x
    assert_relative_eq!(m.item(mean).unwrap(), 11.0 / 3.0, epsilon = 1e-15);
    assert_relative_eq!(m.value(dw).unwrap()[[0, 0]], 1.0, epsilon = 1e-15);
    assert_relative_eq!(m.value(dw).unwrap()[[1, 0]], 4.0 / 3.0, epsilon = 1e-15);
    m.feed(x, &ndarray::arr2(&[[2.0, 0.5]])).unwrap();
    m.run().unwrap();
    assert_eq!(m.value(h).unwrap().as_slice(), Some(&[3.0][..]));
    assert_eq!(m.value(dw).unwrap().as_slice(), Some(&[2.0, 0.5][..]));
    // no rows: an empty value, a NaN mean, a zero gradient
    m.feed(x, &ndarray::Array2::zeros((0, 2))).unwrap();
    m.run().unwrap();
    assert_eq!(m.value(h).unwrap().shape(), &[0, 1]);
    assert!(m.item(mean).unwrap().is_nan());
    assert_eq!(m.value(dw).unwrap().as_slice(), Some(&[0.0, 0.0][..]));
}

#[test]
fn holds_says_which_nodes_a_machine_has() {
    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(4), 2));
    let y = g.input("y", Dim::upto(4));
    let logits = x.matmul(g.param("w", ndarray::Array2::zeros((2, 3))));
    let loss = logits.cross_entropy(y);
    let eval = g.compile(&[logits], &[]).unwrap();
    assert!(eval.holds(x) && eval.holds(logits));
    assert!(!eval.holds(y) && !eval.holds(loss));
    let train = g.compile(&[loss], &[]).unwrap();
    assert!(train.holds(y) && train.holds(loss));
    let other = Graph::<f32>::new();
    assert!(!train.holds(other.input("x", [1])));
}

mod random {
    //! Random broadcasting graphs over a run-time axis: at every number of rows, the same
    //! values and gradients as the graph recorded for exactly that many rows.
    use super::*;
    use proptest::prelude::*;

    /// `[BOUND, rest..]` with the run-time axis first, and a fixed shape that broadcasts
    /// against it (some axes 1, some leading axes dropped, never the rows' own extent).
    fn pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
        prop::collection::vec(1usize..=3, 0..=2).prop_flat_map(|rest| {
            let r = rest.len();
            (
                Just(rest),
                prop::collection::vec(any::<bool>(), r),
                0..=r + 1,
            )
                .prop_map(|(rest, ones, drop)| {
                    let mut b = vec![1];
                    b.extend(rest.iter().zip(&ones).map(|(&d, &o)| if o { 1 } else { d }));
                    (rest, b.split_off(drop.min(b.len())))
                })
        })
    }

    fn graph<'g>(
        g: &'g Graph<f64>,
        x: Tensor<'g, f64>,
        p: Tensor<'g, f64>,
        op: u8,
    ) -> Tensor<'g, f64> {
        let h = match op % 4 {
            0 => x + p,
            1 => x * p,
            2 => p - x,
            _ => x.maximum(p * 0.5),
        };
        let h = match op / 4 % 3 {
            0 => h.tanh(),
            1 => h.sigmoid() * h,
            _ => h.square(),
        };
        // a mean over the rows and a sum: both reductions of the run-time axis
        h.mean_axes(&[0], false).sum() + (h * g.full([], 0.25)).sum()
    }

    fn eval(rest: &[usize], b: &[usize], op: u8, rows: usize, run_axis: bool) -> (f64, Vec<f64>) {
        let mut xs = vec![BOUND];
        xs.extend_from_slice(rest);
        let x_all = values(&xs, 3);
        let g = Graph::new();
        let x = if run_axis {
            g.input("x", Shape::upto(BOUND, rest))
        } else {
            let mut s = vec![rows];
            s.extend_from_slice(rest);
            g.input("x", s)
        };
        let p = g.param("p", values(b, 4));
        let y = graph(&g, x, p, op);
        let dp = g.grad(y, &[p]).unwrap()[0];
        let mut m = g.compile(&[y, dp], &[]).unwrap();
        m.feed(
            x,
            &x_all.slice_axis(tapegrad::ndarray::Axis(0), Slice::from(..rows)),
        )
        .unwrap();
        m.run().unwrap();
        (
            m.item(y).unwrap(),
            m.value(dp).unwrap().iter().copied().collect(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn broadcasting_over_rows((rest, b) in pair(), op in 0u8..12, rows in 1usize..=BOUND) {
            let (v, d) = eval(&rest, &b, op, rows, true);
            let (w, e) = eval(&rest, &b, op, rows, false);
            prop_assert!((v - w).abs() <= 1e-12 * (1.0 + w.abs()), "{v} vs {w}");
            for (a, b) in d.iter().zip(&e) {
                prop_assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
    }
}

#[test]
fn pytorch_named_ops_over_rows() {
    check(Case {
        name: "names",
        rest: &[4],
        params: vec![values(&[4, 4], 11)],
        model: Box::new(|g, x, _, p| {
            let h = x.matmul(p[0]);
            let var = h.var(&[0], 1, false).sum() + h.std(&[-1], 0, true).sum();
            let picked = h.where_(h.gt(g.full([], 0.1)), h * 0.5).clamp(-0.8, 0.9);
            let parts = picked.chunk(2, -1);
            let st = g.stack(&[parts[0], parts[1]], 1).flatten(1, -1); // [r, 4]
            let lo = h.min_axes(&[0], false).sum() + h.t().matmul(st).sum();
            var + lo + st.unsqueeze(1).squeeze(1).mean()
        }),
        empty_ok: false,
    });
}

#[test]
fn argmax_and_var_follow_the_rows_fed() {
    let g = Graph::<f64>::new();
    let x = g.input("x", (Dim::upto(8), 3));
    let v = x.var(&[0], 1, false);
    let am = x.argmax(-1, false);
    let (col, col_line) = (x.argmax(0, false), line!());
    let mut m = g.compile(&[v, am, col], &[]).unwrap();
    m.feed(x, &ndarray::arr2(&[[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]]))
        .unwrap();
    m.run().unwrap();
    // column 0: [1, 3], mean 2, squares 2 -> var (correction 1) = 2; column 1 likewise
    assert_eq!(m.value(v).unwrap().as_slice().unwrap(), &[2.0, 2.0, 0.0]);
    assert_eq!(m.value(am).unwrap().as_slice().unwrap(), &[1.0, 0.0]);
    assert_eq!(m.value(col).unwrap().as_slice().unwrap(), &[1.0, 0.0, 0.0]);
    m.feed(
        x,
        &ndarray::arr2(&[[1.0, 2.0, 0.0], [3.0, 0.0, 0.0], [5.0, 1.0, 0.0]]),
    )
    .unwrap();
    m.run().unwrap();
    // column 0: [1, 3, 5], mean 3, squares 8 -> var 4
    assert_relative_eq!(m.value(v).unwrap()[[0]], 4.0, epsilon = 1e-12);
    assert_eq!(m.value(am).unwrap().as_slice().unwrap(), &[1.0, 0.0, 0.0]);
    assert_eq!(m.value(col).unwrap().as_slice().unwrap(), &[2.0, 0.0, 0.0]);
    // an argmax over no rows has nothing to choose from: an Err, not a panic
    m.feed(x, &ndarray::Array2::zeros((0, 3))).unwrap();
    let e = m.run().unwrap_err();
    assert!(e.to_string().contains("argmax"), "{e}");
    // located at the line that recorded it, like a bad id
    match &e {
        Error::Empty {
            op: "argmax",
            axis: 0,
            caller: Some(c),
        } => assert_eq!((c.file.ends_with("run_axis.rs"), c.line), (true, col_line)),
        other => panic!("{other:?}"),
    }
    assert!(
        e.to_string().contains(&format!("run_axis.rs:{col_line}")),
        "{e}"
    );
}

#[test]
fn inputs_of_different_bounds_compute_on_the_rows_fed() {
    // x takes up to 4 rows, y up to 8: fed together, both have the rows fed (4 here),
    // and y's shapes must follow them although its bound is another
    let g = Graph::<f64>::new();
    let x = g.input("x", (Dim::upto(4), 1));
    let y = g.input("y", (Dim::upto(8), 1));
    let loss = x.sum() + y.max() + y.mean();
    let mut m = g.compile(&[loss, y], &[]).unwrap();
    assert_eq!(m.rows(), 4);
    m.feed(x, &ndarray::Array2::ones((4, 1))).unwrap();
    m.feed(y, &ndarray::arr2(&[[-1.0], [-2.0], [-3.0], [-4.0]]))
        .unwrap();
    m.run().unwrap();
    // 4 + max(-1..-4) + mean(-1..-4) = 4 - 1 - 2.5
    assert_eq!(m.item(loss).unwrap(), 0.5);
    assert_eq!(m.value(y).unwrap().shape(), &[4, 1]);
}

#[test]
fn a_run_time_axis_bound_below_the_inputs_is_a_located_error() {
    // a shape of the user's with a run-time axis of 2 rows, in a machine whose input
    // takes 8: computing it on 3 rows wrote past its buffer
    let g = Graph::<f64>::new();
    let x = g.input("x", (Dim::upto(8), 2));
    let (c, line) = (g.zeros([1, 2]).broadcast_to(Shape::upto(2, &[2])), line!());
    let e = g.compile(&[x.sum(), c], &[]).unwrap_err();
    shape_error_at(e, line, "up to 2 rows");
}

#[test]
fn three_d_by_two_d_with_the_rows_inside() {
    // [2, r, 3] x [3, 4]: the rows are the lhs rows of each batch, so the gradient of the
    // shared rhs cannot fold the batch into the rows (its reshape was refused)
    check(Case {
        name: "rows inside",
        rest: &[2, 3],
        params: vec![values(&[3, 4], 12), values(&[4], 13)],
        model: Box::new(|_, x, _, p| {
            let h = x.permute(&[1, 0, 2]).matmul(p[0]) + p[1]; // [2, r, 4]
            h.tanh().square().sum() + h.mean()
        }),
        empty_ok: true,
    });
}

#[test]
fn squeeze_unsqueeze_flatten_keep_the_rows_in_place_at_a_bound_of_one() {
    // with a bound of 1, every axis of extent 1 looks like the run-time axis to a
    // reshape: the composites must say where it goes
    let g = Graph::<f64>::new();
    let x = g.input("x", (Dim::upto(1), 3));
    assert_eq!(x.unsqueeze(0).shape().run_axis(), Some(1));
    assert_eq!(x.t().unsqueeze(1).shape().run_axis(), Some(2));
    let u = x.unsqueeze(0).unsqueeze(0); // [1, 1, ..=1, 3]
    assert_eq!(u.shape().run_axis(), Some(2));
    assert_eq!(u.squeeze(0).shape().run_axis(), Some(1));
    assert_eq!(u.flatten(0, 1).shape().run_axis(), Some(1));
    assert_eq!(u.flatten(1, 2).shape().run_axis(), Some(1));
    // a mean over the rows: NaN over no rows, as the fixed graph of 0 rows gives
    let y = x.unsqueeze(0).mean_axes(&[1], false).sum();
    let mut m = g.compile(&[y], &[]).unwrap();
    m.feed(x, &ndarray::Array2::zeros((0, 3))).unwrap();
    m.run().unwrap();
    assert!(m.item(y).unwrap().is_nan());
    m.feed(x, &ndarray::arr2(&[[1.0, 2.0, 3.0]])).unwrap();
    m.run().unwrap();
    assert_eq!(m.item(y).unwrap(), 6.0);
    // the run-time axis cannot be squeezed away
    let (_, line) = (x.squeeze(0), line!());
    shape_error_at(g.check().unwrap_err(), line, "run-time axis");
}

#[test]
fn products_at_fewer_rows_fit_the_planned_scratch() {
    // the GEMM may pack a smaller product the other way round, with larger panels than
    // the bound's plan had (AVX2, f32: bound 13, 5 rows, [5] x [5, 17] panicked with
    // "gemm scratch too short")
    for bound in 5..=32 {
        for k in [5, 17] {
            for n in [5, 7, 13, 17, 20, 33] {
                let g = Graph::<f32>::new();
                let x = g.input("x", (Dim::upto(bound), k));
                let w = g.param("w", ndarray::Array2::from_elem((k, n), 0.5f32));
                let y = x.matmul(w);
                let mut m = g.compile(&[y], &[]).unwrap();
                for rows in 5..=bound {
                    m.feed(x, &ndarray::Array2::ones((rows, k))).unwrap();
                    m.run().unwrap();
                    let v = m.value(y).unwrap();
                    assert_eq!(v.shape(), &[rows, n]);
                    assert!(v.iter().all(|&e| e == 0.5 * k as f32));
                }
            }
        }
    }
}

#[test]
fn gradients_keep_their_shapes_over_the_rows() {
    // a [1, 3] parameter broadcast over a run-time axis of bound 1: its gradient is
    // [1, 3] at 0 rows too (zeros), not the rows' [0, 3]
    let g = Graph::<f64>::new();
    let x = g.input("x", (Dim::upto(1), 3));
    let p = g.param("p", ndarray::Array2::from_elem((1, 3), 2.0));
    let loss = (x * p).sum() + p.sum();
    let grads = g.grad(loss, &[p]).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    for (rows, want) in [(0, 1.0), (1, 4.0)] {
        m.feed(x, &ndarray::Array2::from_elem((rows, 3), 3.0))
            .unwrap();
        m.run().unwrap();
        let dp = m.value(grads[0]).unwrap();
        assert_eq!(dp.shape(), &[1, 3], "{rows} rows");
        assert!(dp.iter().all(|&v| v == want), "{rows} rows: {dp}");
    }
    // the gradient of an input with a run-time axis that nothing flows into has its rows
    let g = Graph::<f64>::new();
    let x = g.input("x", (Dim::upto(4), 3));
    let p = g.param("p", ndarray::arr1(&[1.0]));
    let loss = p.sum() + x.argmax(-1, false).sum();
    let dx = g.grad(loss, &[x]).unwrap()[0];
    assert_eq!(dx.shape().run_axis(), Some(0));
    let mut m = g.compile(&[loss, dx], &[]).unwrap();
    m.feed(x, &ndarray::Array2::ones((2, 3))).unwrap();
    m.run().unwrap();
    assert_eq!(m.value(dx).unwrap().shape(), &[2, 3]);
}

#[test]
fn an_input_reads_back_as_fed_before_the_next_run() {
    let g = Graph::<f64>::new();
    let x = g.input("x", (Dim::upto(4), 2));
    let y = x.sum();
    let mut m = g.compile(&[y], &[]).unwrap();
    m.feed(x, &ndarray::Array2::ones((4, 2))).unwrap();
    m.run().unwrap();
    let two = ndarray::arr2(&[[5.0, 6.0], [7.0, 8.0]]);
    m.feed(x, &two).unwrap();
    // was [4, 2]: the two rows fed and two stale ones
    assert_eq!(m.value(x).unwrap(), two.into_dyn());
    m.run().unwrap();
    assert_eq!(m.item(y).unwrap(), 26.0);
}

#[test]
fn grad_of_a_value_with_a_run_time_axis_is_not_scalar() {
    // one element at a bound of 1, but none at 0 rows: not a loss (grad blamed a seed
    // the user never gave: "the seed must have the output's shape", [..=1] and [1])
    let g = Graph::<f64>::new();
    let x = g.input("x", (Dim::upto(1), 3));
    let w = g.param("w", ndarray::arr1(&[1.0, 2.0, 3.0]));
    let y = (x * w).sum_axes(&[1], false); // [..=1]
    let (e, line) = (g.grad(y, &[w]), line!());
    match e {
        Err(Error::NotScalar {
            op: "grad", caller, ..
        }) => assert_eq!(caller.line, line),
        other => panic!("{:?}", other.err()),
    }
    g.check().unwrap();
    g.grad(y.sum(), &[w]).unwrap();
}

#[test]
fn a_contraction_over_run_time_axes_of_different_bounds_is_a_shape_error() {
    // [1, ..=8] (rows of 2 elements, bound 4) x [..=8, 1] (bound 8): the same depth at
    // the bounds, 2n against n at n rows (the GEMM panicked on a short slice)
    let g = Graph::<f64>::new();
    let x = g.input("x", (Dim::upto(4), 2));
    let y = g.input("y", (Dim::upto(8), 1));
    let a = x.reshape([1, 8]);
    let (_, line) = (a.matmul(y), line!());
    shape_error_at(g.check().unwrap_err(), line, "different bounds");
}

#[test]
fn cross_entropy_over_run_time_axes_of_different_bounds_is_a_shape_error() {
    // logits [..=8, 3] of 2 rows per row of x (bound 4) against ids of bound 8: 2n
    // logits rows for n ids (the loss read half of them, its gradient left the rest)
    let g = Graph::<f64>::new();
    let x = g.input("x", (Dim::upto(4), 2, 3));
    let ids = g.input("ids", Dim::upto(8));
    let logits = x.reshape([8, 3]);
    let (_, line) = (logits.cross_entropy(ids), line!());
    shape_error_at(g.check().unwrap_err(), line, "different bounds");
}

#[test]
fn rows_without_any_run_time_axis_are_zero() {
    // as `Machine::rows` and `Out::rows` say: there is no bound to report
    let g = Graph::<f64>::new();
    let x = g.input("x", [3, 2]);
    let mut m = g.compile(&[x.sum()], &[]).unwrap();
    m.feed(x, &ndarray::Array2::zeros((3, 2))).unwrap();
    m.run().unwrap();
    assert_eq!(m.rows(), 0);
    // a shape with a run-time axis that no input has: its bound
    let g = Graph::<f64>::new();
    let c = g.full([2], 1.0).broadcast_to(Shape::upto(5, &[2]));
    let m = g.compile(&[c], &[]).unwrap();
    assert_eq!(m.rows(), 5);
}
