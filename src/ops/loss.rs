//! Softmax cross-entropy as one fused op, forward and gradient.
//!
//! Composed of `log_softmax`, `one_hot`, `mul`, `sum` and `mean`, the loss of an MLP step
//! is about fifteen tape steps forward and twenty backward; fused, it is one kernel each
//! way: `loss = mean_n(lse(x_n) - x_n[id_n])`, and `dloss/dx = (softmax(x) - onehot) / N`.
//! The gradient op's own VJP is written with ordinary ops, so second derivatives work
//! (unless built with `--cfg tapegrad_no_second_order`: see [`CrossEntropyGrad`]).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::panic::Location;

use super::index::to_index;
use super::{Inputs, Op, Out};
use crate::error::Result;
use crate::graph::Tensor;
use crate::scalar::Scalar;
use crate::shape::Shape;

type ShapeResult = core::result::Result<Shape, String>;

fn check_shapes(logits: &Shape, ids: &Shape) -> core::result::Result<(), String> {
    if logits.rank() != 2
        || ids.rank() != 1
        || ids.dim(0) != logits.dim(0)
        || ids.run_axis() != logits.run_axis()
    {
        return Err(format!(
            "takes logits [N, C] and class ids [N], got {logits} and {ids}"
        ));
    }
    // equal extents at the bounds differ at the rows fed unless the bounds agree
    if ids.bound() != logits.bound() {
        return Err(format!(
            "the run-time axes of the logits {logits} and the class ids {ids} have different \
             bounds ({} and {} rows)",
            logits.bound().unwrap_or(0),
            ids.bound().unwrap_or(0)
        ));
    }
    Ok(())
}

/// The largest value of a row, NaN if it holds one.
fn row_max<T: Scalar>(row: &[T]) -> T {
    row.iter().fold(
        T::neg_infinity(),
        |m, &v| if v > m || v.is_nan() { v } else { m },
    )
}

/// Logits whose exponentials the forward holds at once, at most (a block of rows): its
/// scratch stays small for a large vocabulary.
const EXP_BLOCK: usize = 1024;

/// Rows of `c` logits in a block of the forward: as many as fit in [`EXP_BLOCK`], at
/// least one, at most `n`.
fn block_rows(n: usize, c: usize) -> usize {
    (EXP_BLOCK / c.max(1)).min(n).max(1)
}

/// `o = exp(x - max)` for `rows` rows of `c`, each row's `max` into `max` where it has
/// room: the exponentials all at once (vectorised for f32 on x86-64 with std).
#[inline(never)]
fn exps<T: Scalar>(x: &[T], c: usize, rows: usize, o: &mut [T], max: &mut [T]) {
    for r in 0..rows {
        let row = &x[r * c..][..c];
        let m = row_max(row);
        for (o, &v) in o[r * c..][..c].iter_mut().zip(row) {
            *o = v - m;
        }
        if let Some(slot) = max.get_mut(r) {
            *slot = m;
        }
    }
    T::exp_in_place(&mut o[..rows * c]);
}

/// Mean softmax cross-entropy of logits `[N, C]` against class ids `[N]`.
#[derive(Debug)]
pub struct CrossEntropy;

impl<T: Scalar> Op<T> for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross_entropy"
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        check_shapes(s[0], s[1])?;
        Ok(Shape::scalar())
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn scratch(&self, s: &[&Shape]) -> usize {
        // the rows' losses, and the exponentials of a block of rows
        let (n, c) = (s[0].dim(0), s[0].dim(1));
        // block_rows(n, c) * c, at most
        n + (n * c).min(EXP_BLOCK.max(c))
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let (logits, ids) = (x.slice(0), x.slice(1));
        let (n, c) = (ids.len(), x.shape(0).dim(1));
        let (o, scratch) = out.with_scratch();
        let (losses, e) = scratch.split_at_mut(n);
        let per = block_rows(n, c);
        let mut b = per;
        for (r, &id) in ids.iter().enumerate() {
            if b == per {
                // the next block's exponentials
                let rows = per.min(n - r);
                exps(&logits[r * c..], c, rows, e, &mut losses[r..]);
                b = 0;
            }
            let k = to_index("cross_entropy", "class", id, r, c)?;
            // -log softmax(x)[k] = log sum exp(x - max) - (x[k] - max)
            let sum = super::pairwise::sum(&e[b * c..][..c]);
            losses[r] = sum.ln() - (logits[r * c + k] - losses[r]);
            b += 1;
        }
        // the rows' losses summed pairwise, as long sums are (`pairwise.rs`)
        let total = super::pairwise::sum(&losses[..n]);
        o[0] = total / crate::scalar::count::<T>(n); // 0 / 0 = NaN for an empty batch
        Ok(())
    }
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let caller = Location::caller();
        vec![
            Some(x[0].apply(CrossEntropyGrad, &[x[0], x[1], g], caller)),
            None,
        ]
    }
}

/// `g * (softmax(logits) - onehot(ids)) / N`: the gradient of [`CrossEntropy`] for the
/// upstream gradient `g` (a scalar).
#[derive(Debug)]
pub struct CrossEntropyGrad;

impl<T: Scalar> Op<T> for CrossEntropyGrad {
    fn name(&self) -> &'static str {
        "cross_entropy_grad"
    }
    fn shape(&self, s: &[&Shape]) -> ShapeResult {
        check_shapes(s[0], s[1])?;
        if s[2].numel() != 1 {
            return Err(format!(
                "the upstream gradient must be a scalar, got {}",
                s[2]
            ));
        }
        Ok(s[0].clone())
    }
    fn takes_run_axis(&self) -> bool {
        true
    }
    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let (logits, ids, g) = (x.slice(0), x.slice(1), x.slice(2)[0]);
        let c = x.shape(0).dim(1);
        let scale = g / crate::scalar::count::<T>(ids.len());
        // each exponential computed once and kept in the output; each row's terms summed
        // in `cross_entropy`'s tree
        let o = out.slice();
        exps(logits, c, ids.len(), o, &mut []);
        for (r, &id) in ids.iter().enumerate() {
            let k = to_index("cross_entropy_grad", "class", id, r, c)?;
            let o = &mut o[r * c..][..c];
            let inv = scale / super::pairwise::sum(o);
            for o in o.iter_mut() {
                *o = *o * inv;
            }
            o[k] = o[k] - scale;
        }
        Ok(())
    }

    #[cfg(tapegrad_no_second_order)]
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        _: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        vec![Some(no_second_order(x[0])), None, None]
    }

    #[cfg(not(tapegrad_no_second_order))]
    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        gg: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let (logits, g) = (x[0], x[2]);
        // out = g (p - onehot) / N with p = softmax(logits). For the upstream `gg`:
        //   d/dlogits = (g / N) p * (gg - sum_c(gg * p))   (the softmax Jacobian, symmetric)
        //   d/dg      = sum(gg * out) / g  =  sum(gg * (p - onehot)) / N
        // 1 / N at the rows fed
        let inv_n = logits.inv_count(&[0]);
        let p = logits.softmax(1);
        let scale = g * inv_n;
        let dlogits = p * (gg - (gg * p).sum_axes(&[1], true)) * scale;
        let onehot = x[1].one_hot(logits.shape().dim(1));
        let dg = (gg * (p - onehot)).sum() * inv_n;
        vec![Some(dlogits), None, Some(dg)]
    }
}

/// Built with `--cfg tapegrad_no_second_order` (an opt-in for firmware and WebAssembly
/// that never differentiate a gradient), the VJP of [`CrossEntropyGrad`] records this
/// error instead of the softmax Jacobian: that VJP and the ops only it uses (max, exp,
/// sub, div, compare, one-hot: 9.3 KB of a Cortex-M4 image, 11 KB of wasm) are then not
/// linked. `grad` of a gradient through `cross_entropy` returns it as an
/// [`Error::Shape`](crate::Error::Shape) located at the `cross_entropy` call; first-order
/// gradients are unchanged.
#[cfg(tapegrad_no_second_order)]
#[cold]
#[inline(never)]
fn no_second_order<T: Scalar>(logits: Tensor<'_, T>) -> Tensor<'_, T> {
    let graph = logits.graph;
    let shape = logits.shape();
    // `grad` records a VJP's nodes with the caller of the op differentiated, so the
    // stand-in's caller is the user's `cross_entropy` line.
    let stand_in = graph.push(
        crate::graph::Kind::Invalid,
        Vec::new(),
        shape.clone(),
        crate::error::Caller::here(),
    );
    let caller = graph.nodes()[stand_in.id.index()].caller();
    graph.record_error(crate::error::Error::Shape {
        op: "cross_entropy_grad",
        shapes: vec![shape],
        reason: String::from(
            "its gradient (a second-order gradient of cross_entropy) is not in this build: \
             it was built with --cfg tapegrad_no_second_order",
        ),
        caller,
    });
    stand_in
}

impl<'g, T: Scalar> Tensor<'g, T> {
    /// Mean softmax cross-entropy of logits `[N, C]` against integer class ids `[N]`
    /// (stored as `T`), fused into one kernel forward and one backward. A class id outside
    /// `0..C` is an `Err` from `run`; an empty batch gives NaN, as in PyTorch.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f64>::new();
    /// let logits = g.constant(tapegrad::ndarray::arr2(&[[0.0, 0.0]]));
    /// let loss = logits.cross_entropy(g.constant(tapegrad::ndarray::arr1(&[1.0])));
    /// let mut m = g.compile(&[loss], &[])?;
    /// m.run()?;
    /// assert!((m.item(loss)? - 2f64.ln()).abs() < 1e-15); // -ln(1/2)
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn cross_entropy(self, ids: Tensor<'g, T>) -> Tensor<'g, T> {
        self.apply(CrossEntropy, &[self, ids], Location::caller())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, eval, rand_array};
    use approx::assert_abs_diff_eq;
    use ndarray::arr1;

    /// The same loss composed of ordinary ops.
    fn composite<'g>(
        x: crate::Tensor<'g, f64>,
        ids: crate::Tensor<'g, f64>,
    ) -> crate::Tensor<'g, f64> {
        let c = x.shape().dims()[1];
        -(x.log_softmax(1) * ids.one_hot(c))
            .sum_axes(&[1], false)
            .mean()
    }

    /// Run with `RUSTFLAGS="--cfg tapegrad_no_second_order" cargo test --lib
    /// no_second_order` (edge/size.sh does): first order as usual, second order an error
    /// at the user's `cross_entropy` line.
    #[cfg(tapegrad_no_second_order)]
    #[test]
    fn no_second_order_is_a_located_error() {
        use crate::{Error, Graph};
        let g = Graph::<f64>::new();
        let x = g.param("x", ndarray::arr2(&[[0.0, 0.0], [1.0, 0.0]]));
        let ids = g.constant(arr1(&[1.0, 0.0]));
        let (loss, line) = (x.cross_entropy(ids), line!());
        let grads = g.grad(loss, &[x]).unwrap();
        let d = grads[0];
        let mut m = g.compile(&[loss], &grads).unwrap();
        m.run().unwrap();
        // (softmax - onehot) / N, N = 2: row 0 [1/2, 1/2] - [0, 1]; row 1 [s, 1 - s] - [1, 0]
        let s = 1.0 / (1.0 + (-1.0f64).exp());
        let want = [0.25, -0.25, (s - 1.0) / 2.0, (1.0 - s) / 2.0];
        for (a, b) in m.value(d).unwrap().iter().zip(want) {
            assert_abs_diff_eq!(*a, b, epsilon = 1e-15);
        }
        match g.grad(d.sum(), &[x]) {
            Err(Error::Shape { op, caller, .. }) => {
                assert_eq!((op, caller.line), ("cross_entropy_grad", line));
            }
            other => panic!("expected the second-order error, got {other:?}"),
        }
    }

    #[test]
    fn fused_matches_composite_value_and_gradients() {
        let x = [rand_array(&[6, 4], 11, -3.0, 3.0)];
        let ids = || arr1(&[3.0, 0.0, 1.0, 1.0, 2.0, 3.0]);
        let fused = eval(&x, |g, t| t[0].cross_entropy(g.constant(ids())));
        let comp = eval(&x, |g, t| composite(t[0], g.constant(ids())));
        assert_abs_diff_eq!(fused[[]], comp[[]], epsilon = 1e-14);
        // first and second order: the gradient, and the gradient of a weighted sum of it
        let hv = |fused: bool| {
            eval(&x, move |g, t| {
                let ids = g.constant(ids());
                let loss = if fused {
                    t[0].cross_entropy(ids)
                } else {
                    composite(t[0], ids)
                };
                let d = g.grad(loss, &[t[0]]).unwrap()[0];
                let v = g.constant(rand_array(&[6, 4], 12, -1.0, 1.0));
                let dd = g.grad((d * v).sum(), &[t[0]]).unwrap()[0];
                g.concat(&[d, dd], 0)
            })
        };
        for (a, b) in hv(true).iter().zip(hv(false).iter()) {
            assert_abs_diff_eq!(*a, *b, epsilon = 1e-14);
        }
    }

    #[test]
    fn gradcheck_first_and_second_order() {
        let x = [rand_array(&[5, 3], 13, -2.0, 2.0)];
        let ids = || arr1(&[2.0, 0.0, 1.0, 2.0, 2.0]);
        check(&x, |g, t| t[0].cross_entropy(g.constant(ids())) * 3.0);
        check(&x, |g, t| {
            let loss = t[0].cross_entropy(g.constant(ids())) * 3.0;
            let d = g.grad(loss, &[t[0]]).unwrap()[0];
            (d * t[0].square()).sum()
        });
    }

    /// In f32 (the vectorised exponentials on x86-64 hosts), loss and gradient within a
    /// few ulps of f64's, for rows of 1 to 300 classes, fed fewer rows than the bound.
    #[test]
    fn f32_matches_f64_for_any_class_count() {
        use crate::prelude::*;
        use crate::Dim;
        fn run<T: crate::scalar::Scalar>(
            x: &ndarray::Array2<f64>,
            ids: &[f64],
        ) -> (f64, alloc::vec::Vec<f64>) {
            let (n, c) = x.dim();
            let g = Graph::<T>::new();
            let rows = g.input("rows", (Dim::upto(n + 3), c));
            let ids_in = g.input("ids", Dim::upto(n + 3));
            // a zero bias, so that the logits are an op's value with a gradient
            let bias = g.param("bias", ndarray::Array1::<T>::zeros(c));
            let logits = rows + bias;
            let loss = logits.cross_entropy(ids_in);
            let d = g.grad(loss, &[rows, bias]).unwrap();
            let mut m = g.compile(&[loss], &d).unwrap();
            let ids = ndarray::Array1::from_iter(ids.iter().map(|&v| T::of(v)));
            m.feed(ids_in, &ids).unwrap();
            m.feed(rows, &x.mapv(T::of)).unwrap();
            m.run().unwrap();
            let f = |v: &T| v.to_f64().unwrap();
            let mut grad: alloc::vec::Vec<f64> = m.value(d[0]).unwrap().iter().map(f).collect();
            grad.extend(m.value(d[1]).unwrap().iter().map(f));
            assert_eq!(grad.len(), (n + 1) * c);
            (f(&m.item(loss).unwrap()), grad)
        }
        for (c, seed) in [(1, 1), (3, 2), (10, 3), (17, 4), (300, 5)] {
            let n = 7;
            let x = rand_array(&[n, c], seed, -20.0, 20.0)
                .into_dimensionality::<ndarray::Ix2>()
                .unwrap();
            let ids: alloc::vec::Vec<f64> = (0..n).map(|r| ((r * 5) % c) as f64).collect();
            let (l32, g32) = run::<f32>(&x, &ids);
            let (l64, g64) = run::<f64>(&x, &ids);
            approx::assert_relative_eq!(l32, l64, max_relative = 1e-5, epsilon = 1e-6);
            for (a, b) in g32.iter().zip(&g64) {
                assert_abs_diff_eq!(*a, *b, epsilon = 1e-6);
            }
        }
    }

    #[test]
    fn large_logits_do_not_overflow() {
        // logits [1e4, 0], id 1: loss = 1e4 exactly in f64
        let x = [ndarray::arr2(&[[1e4, 0.0]]).into_dyn()];
        let y = eval(&x, |g, t| t[0].cross_entropy(g.constant(arr1(&[1.0]))));
        assert_abs_diff_eq!(y[[]], 1e4);
    }
}
