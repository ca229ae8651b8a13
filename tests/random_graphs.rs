//! Property tests on random graphs: broadcasting binary ops on random shape pairs, and
//! random compositions of unary ops, each checked against finite differences (and the
//! binary ones against ndarray's own broadcasting arithmetic).

use ndarray::{ArrayD, IxDyn, Zip};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use tapegrad::check::gradcheck;
use tapegrad::prelude::*;

/// Deterministic values from a seed (a 64-bit LCG), so a failing case is reproduced from
/// the seed proptest prints.
struct Lcg(u64);

impl Lcg {
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    /// Uniform in [lo, hi).
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() as f64 / (1u64 << 53) as f64)
    }
    /// An integer in lo..hi.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }
}

fn fill(shape: &[usize], mut f: impl FnMut() -> f64) -> ArrayD<f64> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), &mut f)
}

/// Two shapes that broadcast: from a common shape of rank 0..=3 (extents 0..=3, an empty
/// axis now and then), each side independently sets some axes to 1 and drops some leading
/// axes.
fn broadcastable_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    prop::collection::vec(prop_oneof![1 => Just(0usize), 6 => 1usize..=3], 0..=3)
        .prop_flat_map(|full| {
            let r = full.len();
            (
                Just(full),
                prop::collection::vec(any::<bool>(), r),
                prop::collection::vec(any::<bool>(), r),
                0..=r,
                0..=r,
            )
        })
        .prop_map(|(full, ones_a, ones_b, drop_a, drop_b)| {
            let side = |ones: &[bool], drop: usize| -> Vec<usize> {
                full.iter()
                    .zip(ones)
                    .map(|(&d, &one)| if one { 1 } else { d })
                    .skip(drop)
                    .collect()
            };
            (side(&ones_a, drop_a), side(&ones_b, drop_b))
        })
}

#[derive(Clone, Copy, Debug)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
}

const BIN_OPS: [BinOp; 6] = [
    BinOp::Add,
    BinOp::Sub,
    BinOp::Mul,
    BinOp::Div,
    BinOp::Maximum,
    BinOp::Minimum,
];

impl BinOp {
    fn apply<'g>(self, a: Tensor<'g, f64>, b: Tensor<'g, f64>) -> Tensor<'g, f64> {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            BinOp::Maximum => a.maximum(b),
            BinOp::Minimum => a.minimum(b),
        }
    }

    fn reference(self, a: f64, b: f64) -> f64 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            BinOp::Maximum => a.max(b),
            BinOp::Minimum => a.min(b),
        }
    }

    /// Operands away from the kinks and poles: `|b| >= 0.5` for div, and for max/min
    /// `a` on the grid `0.25 i + 0.1` and `b` on `0.25 j`, so `|a − b| >= 0.1`, far more
    /// than the finite-difference step.
    fn operands(self, sa: &[usize], sb: &[usize], seed: u64) -> (ArrayD<f64>, ArrayD<f64>) {
        let mut r = Lcg(seed);
        match self {
            BinOp::Maximum | BinOp::Minimum => {
                let a = fill(sa, || 0.25 * r.int(-6, 6) as f64 + 0.1);
                let b = fill(sb, || 0.25 * r.int(-6, 6) as f64);
                (a, b)
            }
            BinOp::Div => {
                let a = fill(sa, || r.uniform(-2.0, 2.0));
                let b = fill(sb, || {
                    let m = r.uniform(0.5, 1.5);
                    if r.int(0, 2) == 0 {
                        m
                    } else {
                        -m
                    }
                });
                (a, b)
            }
            _ => (
                fill(sa, || r.uniform(-2.0, 2.0)),
                fill(sb, || r.uniform(-2.0, 2.0)),
            ),
        }
    }
}

/// The value of `op(a, b)` computed by the machine.
fn run_binary(op: BinOp, a: &ArrayD<f64>, b: &ArrayD<f64>) -> ArrayD<f64> {
    let g = Graph::<f64>::new();
    let (ta, tb) = (g.param("a", a.clone()), g.param("b", b.clone()));
    let y = op.apply(ta, tb);
    let mut m = g.compile(&[y], &[]).unwrap();
    m.run().unwrap();
    m.value(y).unwrap().to_owned()
}

#[derive(Clone, Copy, Debug)]
enum UnOp {
    Tanh,
    Sigmoid,
    Neg,
    Square,
    Cube,
    ExpHalf,
    SqrtOnePlusSquare,
    LogOnePlusSquare,
    XTanhX,
    Gelu,
    Affine,
    Mean,
}

const UN_OPS: [UnOp; 12] = [
    UnOp::Tanh,
    UnOp::Sigmoid,
    UnOp::Neg,
    UnOp::Square,
    UnOp::Cube,
    UnOp::ExpHalf,
    UnOp::SqrtOnePlusSquare,
    UnOp::LogOnePlusSquare,
    UnOp::XTanhX,
    UnOp::Gelu,
    UnOp::Affine,
    UnOp::Mean,
];

impl UnOp {
    /// Smooth everywhere (no kinks, no poles on their domain), so any composition of them
    /// can be checked at any point.
    fn apply<'g>(self, x: Tensor<'g, f64>) -> Tensor<'g, f64> {
        match self {
            UnOp::Tanh => x.tanh(),
            UnOp::Sigmoid => x.sigmoid(),
            UnOp::Neg => -x,
            UnOp::Square => x.square(),
            UnOp::Cube => x.powf(3.0),
            UnOp::ExpHalf => (x * 0.5).exp(),
            UnOp::SqrtOnePlusSquare => (x.square() + 1.0).sqrt(),
            UnOp::LogOnePlusSquare => (x.square() + 1.0).log(),
            UnOp::XTanhX => x * x.tanh(),
            UnOp::Gelu => x.gelu(),
            UnOp::Affine => x * 0.7 - 0.2,
            // broadcasts back against x: x - mean(x), gradient along two paths
            UnOp::Mean => x - x.mean(),
        }
    }

    fn reference(self, xs: &ArrayD<f64>) -> ArrayD<f64> {
        let mean = xs.mean().unwrap_or(f64::NAN);
        xs.mapv(|x| match self {
            UnOp::Tanh => x.tanh(),
            UnOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            UnOp::Neg => -x,
            UnOp::Square => x * x,
            UnOp::Cube => x * x * x,
            UnOp::ExpHalf => (0.5 * x).exp(),
            UnOp::SqrtOnePlusSquare => (x * x + 1.0).sqrt(),
            UnOp::LogOnePlusSquare => (x * x + 1.0).ln(),
            UnOp::XTanhX => x * x.tanh(),
            UnOp::Gelu => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            }
            UnOp::Affine => 0.7 * x - 0.2,
            UnOp::Mean => x - mean,
        })
    }
}

fn compose<'g>(ops: &[UnOp], x: Tensor<'g, f64>) -> Tensor<'g, f64> {
    ops.iter().fold(x, |y, op| op.apply(y))
}

/// `cases` cases; failures are saved beside this file (proptest cannot find a `lib.rs`
/// from an integration test), to be re-run first next time.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/random_graphs.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

fn composition() -> impl Strategy<Value = (Vec<UnOp>, Vec<usize>, u64)> {
    (
        prop::collection::vec(prop::sample::select(UN_OPS.to_vec()), 1..=4),
        prop::collection::vec(1usize..=3, 0..=2),
        any::<u64>(),
    )
}

proptest! {
    #![proptest_config(config(32))]

    /// Every broadcasting binary op on a random pair of broadcastable shapes: the result
    /// has the broadcast shape and ndarray's values, and its gradient (summed back to each
    /// operand's shape) matches finite differences.
    #[test]
    fn broadcasting_binary_ops_gradcheck(
        (sa, sb) in broadcastable_pair(),
        op in prop::sample::select(BIN_OPS.to_vec()),
        seed in any::<u64>(),
    ) {
        let want_shape = Shape::new(sa.clone()).broadcast(&Shape::new(sb.clone()));
        prop_assert!(want_shape.is_some(), "{:?} and {:?} should broadcast", sa, sb);
        let want_shape = want_shape.unwrap();
        let (a, b) = op.operands(&sa, &sb, seed);

        let got = run_binary(op, &a, &b);
        prop_assert_eq!(got.shape(), want_shape.dims());
        let (av, bv) = (a.broadcast(got.raw_dim()).unwrap(), b.broadcast(got.raw_dim()).unwrap());
        let mut worst = 0.0f64;
        Zip::from(&got).and(&av).and(&bv).for_each(|&y, &x, &z| {
            worst = worst.max((y - op.reference(x, z)).abs());
        });
        prop_assert!(worst <= 1e-12, "{:?}: value off by {}", op, worst);

        let report = gradcheck(&[a.clone(), b.clone()], move |_, t| op.apply(t[0], t[1]));
        prop_assert!(report.is_ok(), "{:?} on {:?}, {:?}: {}", op, sa, sb, report.unwrap_err());
        prop_assert_eq!(report.unwrap().checked, a.len() + b.len());
    }

    /// The same op with both operands the same tensor: the two gradient paths add up.
    #[test]
    fn binary_op_on_one_tensor_twice(
        shape in prop::collection::vec(1usize..=3, 0..=3),
        op in prop::sample::select(vec![BinOp::Add, BinOp::Sub, BinOp::Mul]),
        seed in any::<u64>(),
    ) {
        let mut r = Lcg(seed);
        let x = fill(&shape, || r.uniform(-2.0, 2.0));
        let report = gradcheck(&[x], move |_, t| op.apply(t[0], t[0]));
        prop_assert!(report.is_ok(), "{:?}: {}", op, report.unwrap_err());
    }

    /// Random chains of one to four smooth unary ops: values against an independent f64
    /// reference, gradients against finite differences.
    #[test]
    fn unary_compositions_gradcheck((ops, shape, seed) in composition()) {
        let mut r = Lcg(seed);
        let x = fill(&shape, || r.uniform(-1.2, 1.2));

        let g = Graph::<f64>::new();
        let t = g.param("x", x.clone());
        let y = compose(&ops, t);
        let mut m = g.compile(&[y], &[]).unwrap();
        m.run().unwrap();
        let want = ops.iter().fold(x.clone(), |v, op| op.reference(&v));
        let got = m.value(y).unwrap();
        prop_assert_eq!(got.shape(), want.shape());
        for (a, b) in got.iter().zip(want.iter()) {
            prop_assert!((a - b).abs() <= 1e-9 * (1.0 + b.abs()), "{:?}: {} vs {}", ops, a, b);
        }

        let ops2 = ops.clone();
        let report = gradcheck(&[x], move |_, t| compose(&ops2, t[0]));
        prop_assert!(report.is_ok(), "{:?}: {}", ops, report.unwrap_err());
    }
}

proptest! {
    #![proptest_config(config(16))]

    /// Second order on random chains: the symbolic gradient of a chain, itself
    /// gradchecked, so every VJP's own VJP is exercised.
    #[test]
    fn gradients_of_unary_compositions_gradcheck((ops, shape, seed) in composition()) {
        let mut r = Lcg(seed);
        let x = fill(&shape, || r.uniform(-1.2, 1.2));
        let ops2 = ops.clone();
        let report = gradcheck(&[x], move |g, t| {
            let y = compose(&ops2, t[0]).sum();
            // `+ 0 x` keeps x in the compiled machine when the gradient is constant in x
            // (a chain of Neg/Affine): without it gradcheck fails with NotCompiled, see
            // `gradcheck_of_a_constant_gradient` in tests/second_order.rs.
            g.grad(y, &[t[0]]).unwrap()[0] + t[0] * 0.0
        });
        prop_assert!(report.is_ok(), "{:?}: {}", ops, report.unwrap_err());
    }
}
