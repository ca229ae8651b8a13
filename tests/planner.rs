//! The buffer planner, proven on random graphs: a machine compiled with the plan (buffers
//! reused, steps in place, views sharing) computes bit for bit what the same graph
//! compiled unplanned (every step its own buffer) computes, for every output, gradient
//! and second-order gradient; and at 1 and 2 threads bit for bit the same, and close to
//! the same graph computed in f64 (so a kernel error that is the same at every thread
//! count, or planned and unplanned, is caught too).
//!
//! The graphs: a stack of `[rows, cols]` tensors grown by ops that read earlier entries
//! again (fan-out), views (reshape, transpose, permute, narrow, broadcast_to), elementwise
//! steps whose input dies (in place; relu, whose gradient reads its output),
//! broadcasting against `[cols]` and `[rows, 1]` parameters, matmuls, softmax and
//! reductions; a loss, its gradients, and the gradient of the sum of a gradient. Some
//! cases take a matmul past the GEMM's threshold for splitting over threads (`PAR_MIN` in
//! src/gemm.rs, 2^20 multiply-adds).

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, TestCaseError, TestRng, TestRunner,
};
use tapegrad::prelude::*;
use tapegrad::Scalar;

/// Deterministic values from a seed (a 64-bit LCG), the same for f32 and f64.
struct Lcg(u64);

impl Lcg {
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (hi - lo) * ((self.0 >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// A random graph: its sizes, its steps (each an op code and the stack entry it reads
/// besides the top) and the seed of its values.
#[derive(Clone, Debug)]
struct Prog {
    rows: usize,
    cols: usize,
    /// The first matmul takes `x [rows, inner] · w0 [inner, cols]`.
    inner: usize,
    steps: Vec<(u8, usize)>,
    /// Which earlier entries are outputs too (pinned mid-graph).
    pinned: Vec<usize>,
    seed: u64,
}

const OPS: u8 = 20;

fn prog(big: bool) -> impl Strategy<Value = Prog> {
    let sizes = if big {
        // x [64, 1024] · w0 [1024, 128]: 2^23 multiply-adds, past the threshold, split over
        // 2 threads (forward, and both products of its gradient)
        (Just(64usize), Just(128usize), Just(1024usize)).boxed()
    } else {
        (1usize..=4, 2usize..=5, 1usize..=4).boxed()
    };
    let len = if big { 2..=5 } else { 2..=12 };
    (
        sizes,
        prop::collection::vec((0..OPS, 0usize..8), len),
        prop::collection::vec(0usize..16, 0..=3),
        any::<u64>(),
    )
        .prop_map(|((rows, cols, inner), steps, pinned, seed)| Prog {
            rows,
            cols,
            inner,
            steps,
            pinned,
            seed,
        })
}

fn fill<T: Scalar>(dims: &[usize], r: &mut Lcg, lo: f64, hi: f64) -> ArrayD<T> {
    ArrayD::from_shape_simple_fn(IxDyn(dims), || T::from_f64(r.uniform(lo, hi)).unwrap())
}

/// What the graph of a `Prog` computes, every value as f64 in one list per tensor.
type Values = Vec<Vec<f64>>;

fn c<T: Scalar>(v: f64) -> T {
    T::from_f64(v).unwrap()
}

/// Builds `p` on a fresh graph of `T`, compiles it (planned or not), runs it twice (the
/// second run over buffers the first one left) and returns every output and gradient.
fn run<T: Scalar>(p: &Prog, planned: bool) -> Values {
    let (r, cdim) = (p.rows, p.cols);
    let mut rng = Lcg(p.seed);
    let g = Graph::<T>::new();
    let x = g.input("x", [r, p.inner]);
    let w0 = g.param("w0", fill::<T>(&[p.inner, cdim], &mut rng, -0.5, 0.5));
    let w = g.param("w", fill::<T>(&[cdim, cdim], &mut rng, -0.5, 0.5));
    let v = g.param("v", fill::<T>(&[cdim], &mut rng, -0.5, 0.5));
    let s = g.param("s", fill::<T>(&[r, 1], &mut rng, 0.5, 1.5));
    let xs = fill::<T>(&[r, p.inner], &mut rng, -1.0, 1.0);
    let mut stack = vec![x.matmul(w0)];
    for &(op, k) in &p.steps {
        let a = *stack.last().unwrap();
        // an earlier entry read again: fan-out
        let b = stack[stack.len() - 1 - k % stack.len()];
        let t = match op {
            0 => a.tanh(),
            1 => a.sigmoid(),
            2 => a * a,
            3 => a + b,
            4 => a * b,
            5 => a - b.tanh(),
            // relu in place over a bias-add, its gradient read from its output
            6 => (a + v).relu(),
            7 => a * s,
            8 => a.matmul(w),
            9 => a.reshape([cdim, r]).tanh().reshape([r, cdim]),
            10 => a.t().sigmoid().t(),
            11 => a.unsqueeze(0).permute(&[1, 0, 2]).reshape([r, cdim]) * b,
            12 => a.narrow(1, 1, cdim - 1).pad(1, 0, 1) + a,
            13 => a.sum_axes(&[0], true).broadcast_to([r, cdim]) * c::<T>(0.25) + b,
            14 => a.softmax(-1),
            15 => a - a.mean_axes(&[1], true),
            16 => a.tanh().exp(),
            17 => a.maximum(b),
            18 => a / (b * b + c::<T>(1.0)),
            _ => a.detach() * a,
        };
        stack.push(t);
    }
    let top = *stack.last().unwrap();
    let loss = (top * top).mean() + stack[stack.len() / 2].sum() * c::<T>(0.125);
    let params = [w0, w, v, s];
    let grads = g.grad(loss, &params).unwrap();
    // the gradient of the sum of a gradient (second order)
    let gw = grads.get(w).unwrap();
    let second = g
        .grad((gw * gw).sum() + grads.get(v).unwrap().sum(), &params)
        .unwrap();
    let mut outputs = vec![loss, top];
    outputs.extend(p.pinned.iter().map(|&i| stack[i % stack.len()]));
    outputs.extend(second.tensors().iter().copied());
    let mut m = if planned {
        g.compile(&outputs, &grads).unwrap()
    } else {
        g.compile_unplanned(&outputs, &grads).unwrap()
    };
    let mut values = Vec::new();
    for _ in 0..2 {
        m.feed(x, &xs).unwrap();
        m.run().unwrap();
        values.clear();
        for t in outputs.iter().chain(grads.tensors()) {
            values.push(
                m.value(*t)
                    .unwrap()
                    .iter()
                    .map(|v| v.to_f64().unwrap())
                    .collect(),
            );
        }
    }
    values
}

fn bits(v: &Values) -> Vec<Vec<u64>> {
    v.iter()
        .map(|t| t.iter().map(|x| x.to_bits()).collect())
        .collect()
}

/// f32 against f64: each value within what a chain of a few dozen f32 ops loses.
fn close(got: &Values, want: &Values) -> Result<(), TestCaseError> {
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        prop_assert_eq!(a.len(), b.len());
        for (j, (&x, &y)) in a.iter().zip(b).enumerate() {
            let ok = (x.is_nan() && y.is_nan()) || (x - y).abs() <= 2e-3 * (1.0 + y.abs());
            prop_assert!(ok, "value {} element {}: f32 {} f64 {}", i, j, x, y);
        }
    }
    Ok(())
}

fn check(p: &Prog) -> Result<(), TestCaseError> {
    tapegrad::set_threads(1);
    let reference = run::<f64>(p, false);
    prop_assert_eq!(bits(&run::<f64>(p, true)), bits(&reference), "f64 planned");
    let one = run::<f32>(p, true);
    prop_assert_eq!(
        bits(&run::<f32>(p, false)),
        bits(&one),
        "f32 planned vs unplanned"
    );
    close(&one, &reference)?;
    tapegrad::set_threads(2);
    let two = run::<f32>(p, true);
    let two_unplanned = run::<f32>(p, false);
    tapegrad::set_threads(1);
    prop_assert_eq!(bits(&two), bits(&one), "f32 at 2 threads vs 1");
    prop_assert_eq!(
        bits(&two_unplanned),
        bits(&one),
        "f32 unplanned at 2 threads"
    );
    close(&two, &reference)
}

fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/planner.proptest-regressions",
        ))),
        ..Config::default()
    };
    // a fixed seed: the same cases every run (a failure is saved above and re-run first)
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

// One test function: `set_threads` is global to the process.
#[test]
fn planned_equals_unplanned_and_threads_agree() {
    // the pool has 2 workers whatever the machine, so "2 threads" splits
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global();
    runner(128).run(&prog(false), |p| check(&p)).unwrap();
    // one case past the threshold: tapegrad itself runs unoptimised in `cargo test`, where
    // such a case takes seconds
    runner(1).run(&prog(true), |p| check(&p)).unwrap();
}
