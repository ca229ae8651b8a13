//! Extending tapegrad from outside the crate, with only its public API: an op of our own
//! (forward kernel + VJP) recorded with `Graph::custom`, and an optimizer of our own
//! stepping a machine through `Machine::for_each_pair` without allocating.

use approx::assert_relative_eq;
use ndarray::{arr1, arr2, ArrayD};
use tapegrad::check::gradcheck;
use tapegrad::ops::{Inputs, Op, Out};
use tapegrad::prelude::*;
use tapegrad::{AsGrads, Caller, Scalar};

#[path = "common/counting.rs"]
mod counting;
use counting::thread_allocs as allocs;

// ---------------------------------------------------------------------------------------
// A custom op: the scaled softplus y = ln(1 + exp(beta x)) / beta, elementwise.
// dy/dx = exp(beta x) / (1 + exp(beta x)) = sigmoid(beta x), an ordinary op, so the VJP
// is one line and can itself be differentiated.

#[derive(Debug)]
struct Softplus {
    beta: f64,
}

impl<T: Scalar> Op<T> for Softplus {
    fn name(&self) -> &'static str {
        "softplus"
    }

    fn shape(&self, inputs: &[&Shape]) -> Result<Shape, String> {
        match inputs {
            [x] => Ok((*x).clone()),
            _ => Err(format!("takes one input, got {}", inputs.len())),
        }
    }

    fn forward(&self, inputs: &Inputs<'_, T>, out: &mut Out<'_, T>) -> tapegrad::Result<()> {
        let beta = T::of(self.beta);
        for (y, &x) in out.slice().iter_mut().zip(inputs.slice(0)) {
            // ln(1 + e^z) = max(z, 0) + ln(1 + e^-|z|), which does not overflow
            let z = beta * x;
            *y = (z.max(T::zero()) + (-z.abs()).exp().ln_1p()) / beta;
        }
        Ok(())
    }

    fn vjp<'g>(
        &self,
        inputs: &[Tensor<'g, T>],
        _out: Tensor<'g, T>,
        grad_out: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        vec![Some(grad_out * (inputs[0] * T::of(self.beta)).sigmoid())]
    }
}

#[test]
fn custom_op_known_value_and_gradient() {
    let g = Graph::<f64>::new();
    let x = g.param("x", arr1(&[0.0, 1.0, -30.0]));
    let y = g.custom(Softplus { beta: 2.0 }, &[x]);
    let grads = g.grad(y.sum(), &[x]).unwrap();
    let mut m = g.compile(&[y], &grads).unwrap();
    m.run().unwrap();
    let y = m.value(y).unwrap();
    // x = 0:   ln(2) / 2            = 0.34657359...
    // x = 1:   ln(1 + e^2) / 2      = ln(8.3890561) / 2 = 2.1269280 / 2 = 1.0634640...
    // x = -30: ln(1 + e^-60) / 2    ≈ e^-60 / 2 = 4.3e-27 (no overflow, no cancellation)
    assert_relative_eq!(y[[0]], 0.346_573_590_279_972_6, max_relative = 1e-15);
    assert_relative_eq!(y[[1]], 1.063_464_005_521_486, max_relative = 1e-14);
    assert_relative_eq!(y[[2]], (-60.0f64).exp() / 2.0, max_relative = 1e-12);
    let dx = m.value(grads[0]).unwrap();
    // dy/dx = sigmoid(2x): 0.5, sigmoid(2) = 0.88079708..., sigmoid(-60) ≈ e^-60
    assert_relative_eq!(dx[[0]], 0.5, max_relative = 1e-15);
    assert_relative_eq!(dx[[1]], 0.880_797_077_977_882_4, max_relative = 1e-14);
    assert_relative_eq!(dx[[2]], (-60.0f64).exp(), max_relative = 1e-12);
}

#[test]
fn custom_op_gradcheck_first_and_second_order() {
    let x: ArrayD<f64> = arr2(&[[0.3, -1.2, 2.0], [0.7, -0.1, 1.5]]).into_dyn();
    let report = gradcheck(std::slice::from_ref(&x), |g, t| {
        g.custom(Softplus { beta: 1.5 }, &[t[0]]) * t[0]
    })
    .unwrap();
    assert_eq!(report.checked, 6);
    // the VJP is made of ordinary ops, so the gradient can be checked in turn
    gradcheck(&[x], |g, t| {
        let y = g.custom(Softplus { beta: 1.5 }, &[t[0]]).square().sum();
        g.grad(y, &[t[0]]).unwrap()[0]
    })
    .unwrap();
}

/// A wrong VJP is caught: the check can fail.
#[test]
fn gradcheck_catches_a_wrong_custom_vjp() {
    #[derive(Debug)]
    struct WrongVjp;
    impl Op<f64> for WrongVjp {
        fn name(&self) -> &'static str {
            "wrong"
        }
        fn shape(&self, inputs: &[&Shape]) -> Result<Shape, String> {
            Ok(inputs[0].clone())
        }
        fn forward(
            &self,
            inputs: &Inputs<'_, f64>,
            out: &mut Out<'_, f64>,
        ) -> tapegrad::Result<()> {
            for (y, &x) in out.slice().iter_mut().zip(inputs.slice(0)) {
                *y = x * x;
            }
            Ok(())
        }
        // d/dx x^2 = 2x, but this says x
        fn vjp<'g>(
            &self,
            inputs: &[Tensor<'g, f64>],
            _out: Tensor<'g, f64>,
            grad_out: Tensor<'g, f64>,
        ) -> Vec<Option<Tensor<'g, f64>>> {
            vec![Some(grad_out * inputs[0])]
        }
    }
    let x = arr1(&[0.5, -1.0]).into_dyn();
    let e = gradcheck(&[x], |g, t| g.custom(WrongVjp, &[t[0]])).unwrap_err();
    assert!(matches!(e, Error::GradCheck { .. }), "{e}");
}

#[test]
fn custom_op_shape_error_points_at_the_call() {
    let g = Graph::<f32>::new();
    let a = g.param("a", arr1(&[1.0f32, 2.0]));
    let (_, line) = (g.custom(Softplus { beta: 1.0 }, &[a, a]), line!());
    let e = g.grad(a.sum(), &[a]).unwrap_err();
    match &e {
        Error::Shape {
            op, reason, caller, ..
        } => {
            assert_eq!(*op, "softplus");
            assert!(reason.contains("takes one input, got 2"), "{reason}");
            assert_eq!((caller.file, caller.line), (file!(), line));
        }
        other => panic!("{other:?}"),
    }
    // a tensor of another graph is refused too, at the call
    let other = Graph::<f32>::new();
    let b = other.param("b", arr1(&[1.0f32]));
    let _ = g.custom(Softplus { beta: 1.0 }, &[b]);
    assert!(g.check().is_err());
}

/// A "view" that claims to share its input's buffer but has another element count (or
/// no input at all): its own shape rule accepts it, recording it must not.
#[derive(Debug)]
struct Doubled;

impl Op<f32> for Doubled {
    fn name(&self) -> &'static str {
        "doubled"
    }
    fn shape(&self, inputs: &[&Shape]) -> Result<Shape, String> {
        Ok(Shape::from([inputs.first().map_or(2, |s| 2 * s.numel())]))
    }
    fn forward(&self, _: &Inputs<'_, f32>, _: &mut Out<'_, f32>) -> tapegrad::Result<()> {
        Ok(())
    }
    fn vjp<'g>(
        &self,
        inputs: &[Tensor<'g, f32>],
        _: Tensor<'g, f32>,
        _: Tensor<'g, f32>,
    ) -> Vec<Option<Tensor<'g, f32>>> {
        vec![None; inputs.len()]
    }
    fn is_view(&self) -> bool {
        true
    }
}

#[test]
fn a_custom_view_of_other_elements_is_a_located_shape_error() {
    // was: `compile` or `run` panicked slicing past the input's buffer (or, without an
    // input, indexing the planner's inputs)
    for with_input in [true, false] {
        let g = Graph::<f32>::new();
        let x = g.input("x", [2]);
        let inputs: &[Tensor<'_, f32>] = if with_input { &[x] } else { &[] };
        let (y, line) = (g.custom(Doubled, inputs), line!());
        match g.compile(&[y], &[]).unwrap_err() {
            Error::Shape {
                op, reason, caller, ..
            } => {
                assert_eq!(op, "doubled");
                assert!(reason.contains("view"), "{reason}");
                assert_eq!((caller.file, caller.line), (file!(), line));
            }
            other => panic!("{other:?}"),
        }
    }
}

/// The identity with a VJP that gives its gradient transposed: a user's bug.
#[derive(Debug)]
struct TransposedVjp;

impl Op<f64> for TransposedVjp {
    fn name(&self) -> &'static str {
        "transposed_vjp"
    }
    fn shape(&self, inputs: &[&Shape]) -> Result<Shape, String> {
        Ok(inputs[0].clone())
    }
    fn forward(&self, inputs: &Inputs<'_, f64>, out: &mut Out<'_, f64>) -> tapegrad::Result<()> {
        out.slice().copy_from_slice(inputs.slice(0));
        Ok(())
    }
    fn vjp<'g>(
        &self,
        _: &[Tensor<'g, f64>],
        _: Tensor<'g, f64>,
        grad_out: Tensor<'g, f64>,
    ) -> Vec<Option<Tensor<'g, f64>>> {
        vec![Some(grad_out.t())]
    }
}

#[test]
fn a_custom_vjp_of_the_wrong_shape_is_an_error_at_the_op() {
    // was: a [3, 2] gradient for a [2, 3] input was reshaped into it without a word,
    // training on scrambled gradients (and a [7] one failed as a `reshape` at `grad`)
    let g = Graph::<f64>::new();
    let x = g.param("x", arr2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]));
    let w = g.constant(arr2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]));
    let (y, line) = (g.custom(TransposedVjp, &[x]), line!());
    match g.grad((y * w).sum(), &[x]).unwrap_err() {
        Error::Shape {
            op,
            shapes,
            caller,
            reason,
        } => {
            assert_eq!(op, "transposed_vjp");
            assert_eq!(shapes, [Shape::from([2, 3]), Shape::from([3, 2])]);
            assert!(reason.contains("does not sum back"), "{reason}");
            assert_eq!((caller.file, caller.line), (file!(), line));
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// An optimizer from outside the crate: signum (sign of a momentum), as in Bernstein et al.
// 2018: m = beta m + (1 - beta) g; p -= lr sign(m). Its state is tied to the parameters'
// names, checked at every step without allocating.

#[derive(Default)]
struct Signum {
    lr: f64,
    beta: f64,
    names: Vec<String>,
    momentum: Vec<Vec<f64>>,
}

impl LearningRate for Signum {
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) -> tapegrad::Result<()> {
        self.lr = lr;
        Ok(())
    }
}

impl Optimizer<f64> for Signum {
    #[track_caller]
    fn step<G: AsGrads + ?Sized>(
        &mut self,
        m: &mut Machine<f64>,
        grads: &G,
    ) -> tapegrad::Result<()> {
        let caller = Caller::here();
        if self.names.is_empty() {
            // first step: make the state (this allocates, once)
            let (names, momentum) = (&mut self.names, &mut self.momentum);
            m.for_each_pair(grads, |pg| {
                names.push(pg.name.to_string());
                momentum.push(vec![0.0; pg.param.len()]);
            })?;
        } else {
            // later steps: the same parameters, by name and size (no allocation)
            let mut same = grads.grad_pairs().len() == self.names.len();
            let (names, momentum) = (&self.names, &self.momentum);
            m.for_each_pair(grads, |pg| {
                same &= names.get(pg.index).is_some_and(|n| n == pg.name)
                    && momentum.get(pg.index).map(Vec::len) == Some(pg.param.len());
            })?;
            if !same {
                return Err(Error::Mismatch {
                    what: "Signum::step",
                    reason: format!("state made for {:?}", self.names),
                    caller,
                });
            }
        }
        let (lr, beta) = (self.lr, self.beta);
        let momentum = &mut self.momentum;
        m.for_each_pair(grads, |pg| {
            let buf = &mut momentum[pg.index];
            for ((p, &g), b) in pg.param.iter_mut().zip(pg.grad).zip(buf.iter_mut()) {
                *b = beta * *b + (1.0 - beta) * g;
                *p -= lr * b.signum();
            }
        })
    }
}

#[test]
fn outside_optimizer_trains_and_allocates_nothing_after_the_first_step() {
    tapegrad::set_threads(1);
    // least squares: t = 2 x0 - x1 + 0.5, fit by w and b
    let g = Graph::<f64>::new();
    let x = g.input("x", [4, 2]);
    let t = g.input("t", [4, 1]);
    let w = g.param("w", arr2(&[[0.0], [0.0]]));
    let b = g.param("b", arr1(&[0.0]));
    let loss = (x.matmul(w) + b).mse(t);
    let grads = g.grad(loss, &g.params()).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    m.feed(x, &arr2(&[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]]))
        .unwrap();
    m.feed(t, &arr2(&[[2.5], [-0.5], [1.5], [5.5]])).unwrap();
    let mut opt = Signum {
        lr: 0.01,
        beta: 0.9,
        ..Signum::default()
    };
    m.run().unwrap();
    let first = m.item(loss).unwrap();
    opt.step(&mut m, &grads).unwrap();
    // first step: m = 0.1 g, so every element moves by exactly lr against its gradient
    let w1 = m.value(w).unwrap().to_owned();
    assert_eq!(w1.as_slice(), Some(&[0.01, -0.01][..]));

    let before = allocs();
    for _ in 0..400 {
        m.run().unwrap();
        opt.step(&mut m, &grads).unwrap();
    }
    let after = allocs();
    assert_eq!(after - before, 0, "allocations in 400 steps");
    m.run().unwrap();
    let last = m.item(loss).unwrap();
    assert!(last < first / 100.0, "{first} -> {last}");

    // the counter does count on this thread
    let v = vec![1u8; 3];
    assert!(allocs() > after, "{v:?}");

    // its state is tied to "w" and "b": a machine with other names is refused, unchanged
    let g2 = Graph::<f64>::new();
    let u = g2.param("u", arr2(&[[0.0], [0.0]]));
    let c = g2.param("c", arr1(&[0.0]));
    let loss2 = (u.sum() + c.sum()) * 1.0;
    let grads2 = g2.grad(loss2, &[u, c]).unwrap();
    let mut m2 = g2.compile(&[loss2], &grads2).unwrap();
    m2.run().unwrap();
    let e = opt.step(&mut m2, &grads2).unwrap_err();
    assert!(e.to_string().contains(r#"["w", "b"]"#), "{e}");
    assert_eq!(m2.value(u).unwrap().sum(), 0.0);
}

/// The softplus again, declaring that its kernel sizes its work from the shapes it is
/// handed, so it takes inputs with a run-time axis.
#[derive(Debug)]
struct RowSoftplus(Softplus);

impl Op<f64> for RowSoftplus {
    fn name(&self) -> &'static str {
        "row_softplus"
    }
    fn shape(&self, inputs: &[&Shape]) -> Result<Shape, String> {
        <Softplus as Op<f64>>::shape(&self.0, inputs)
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, inputs: &Inputs<'_, f64>, out: &mut Out<'_, f64>) -> tapegrad::Result<()> {
        self.0.forward(inputs, out)
    }
    fn vjp<'g>(
        &self,
        inputs: &[Tensor<'g, f64>],
        out: Tensor<'g, f64>,
        grad_out: Tensor<'g, f64>,
    ) -> Vec<Option<Tensor<'g, f64>>> {
        self.0.vjp(inputs, out, grad_out)
    }
}

#[test]
fn custom_ops_take_a_run_time_axis_only_when_they_say_so() {
    let g = Graph::<f64>::new();
    let x = g.input("x", (tapegrad::Dim::upto(4), 2));
    let (_, line) = (g.custom(Softplus { beta: 1.0 }, &[x]), line!());
    match g.check().unwrap_err() {
        Error::Shape {
            op, reason, caller, ..
        } => {
            assert_eq!(op, "softplus");
            assert!(reason.contains("run-time axis"), "{reason}");
            assert_eq!(
                (caller.file.ends_with("extend.rs"), caller.line),
                (true, line)
            );
        }
        e => panic!("{e:?}"),
    }
    let g = Graph::<f64>::new();
    let x = g.input("x", (tapegrad::Dim::upto(4), 2));
    let y = g.custom(RowSoftplus(Softplus { beta: 1.0 }), &[x]).mean();
    let mut m = g.compile(&[y], &[]).unwrap();
    m.feed(x, &arr2(&[[0.0, 0.0]])).unwrap();
    m.run().unwrap();
    // one row of softplus(0) = ln 2
    assert_relative_eq!(m.item(y).unwrap(), 2f64.ln(), max_relative = 1e-15);
}
