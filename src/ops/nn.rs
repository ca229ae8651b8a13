//! Neural-network functions composed of existing ops: softmax, log_softmax, mse. Their
//! gradients (of any order) come from the ops they are made of. The fused
//! `cross_entropy` is in `loss.rs`.

use alloc::format;
use alloc::vec;
use core::panic::Location;

use crate::graph::Tensor;
use crate::scalar::Scalar;
use crate::shape::AxisArg;

impl<'g, T: Scalar> Tensor<'g, T> {
    /// `exp(x - max)` along `axis`, with the max detached: softmax is shift-invariant, so
    /// this changes no value or gradient and keeps `exp` from overflowing.
    ///
    /// Over an empty axis there is nothing to shift (and no max): softmax and
    /// log_softmax of an empty axis are empty, as in PyTorch.
    #[track_caller]
    fn shifted(self, axis: usize) -> Tensor<'g, T> {
        if self.shape().dim(axis) == 0 {
            return self;
        }
        self - self.max_axes(&[axis], true).detach()
    }

    /// Softmax along `axis` (`-1` is the last): `e^x / sum(e^x)`, computed without
    /// overflow.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f64>::new();
    /// let x = g.constant(tapegrad::ndarray::arr2(&[[1000.0, 1000.0]]));
    /// let p = x.softmax(-1);
    /// let mut m = g.compile(&[p], &[])?;
    /// m.run()?;
    /// assert_eq!(m.value(p)?.as_slice(), Some(&[0.5, 0.5][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn softmax<A: AxisArg>(self, axis: A) -> Tensor<'g, T> {
        let axis = match self.axis_for("softmax", axis, Location::caller()) {
            Ok(axis) => axis,
            Err(stand_in) => return stand_in,
        };
        let e = self.shifted(axis).exp();
        e / e.sum_axes(&[axis], true)
    }

    /// Log-softmax along `axis` (`-1` is the last): `x - log(sum(e^x))`, computed
    /// without overflow.
    #[track_caller]
    pub fn log_softmax<A: AxisArg>(self, axis: A) -> Tensor<'g, T> {
        let axis = match self.axis_for("log_softmax", axis, Location::caller()) {
            Ok(axis) => axis,
            Err(stand_in) => return stand_in,
        };
        let z = self.shifted(axis);
        z - z.exp().sum_axes(&[axis], true).log()
    }

    /// Mean squared error against `target`, which must have the same shape.
    #[track_caller]
    pub fn mse(self, target: Tensor<'g, T>) -> Tensor<'g, T> {
        let (s, st) = (self.shape(), target.shape());
        if s != st {
            let reason = format!("prediction {s} and target {st} must have the same shape");
            let caller = Location::caller();
            return self
                .graph
                .fail("mse", vec![s, st], reason, caller, Default::default());
        }
        (self - target).square().mean()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, eval, grads_of, rand_array};
    use crate::prelude::*;
    use approx::assert_abs_diff_eq;
    use ndarray::{arr1, arr2};

    #[test]
    fn softmax_known_values() {
        // softmax([0, ln 3]) = [1/4, 3/4]
        let x = [arr2(&[[0.0, 3f64.ln()]]).into_dyn()];
        let p = eval(&x, |_, t| t[0].softmax(1));
        assert_abs_diff_eq!(p[[0, 0]], 0.25, epsilon = 1e-15);
        assert_abs_diff_eq!(p[[0, 1]], 0.75, epsilon = 1e-15);
        // -1 is the last axis, 1 here
        assert_eq!(eval(&x, |_, t| t[0].softmax(-1)), p);
        let lp = eval(&x, |_, t| t[0].log_softmax(-1));
        assert_abs_diff_eq!(lp[[0, 0]], 0.25f64.ln(), epsilon = 1e-15);
        // large logits do not overflow
        let big = eval(&[arr2(&[[1e4, 0.0]]).into_dyn()], |_, t| {
            t[0].log_softmax(1)
        });
        assert_abs_diff_eq!(big[[0, 0]], 0.0);
        assert_abs_diff_eq!(big[[0, 1]], -1e4);
    }

    #[test]
    fn cross_entropy_known_value_and_gradient() {
        // logits [[0, ln 3], [0, 0]], ids [1, 0]:
        // loss = -(ln 3/4 + ln 1/2) / 2; dloss/dlogits = (softmax - onehot) / N
        let x = [arr2(&[[0.0, 3f64.ln()], [0.0, 0.0]]).into_dyn()];
        let loss = eval(&x, |g, t| t[0].cross_entropy(g.constant(arr1(&[1.0, 0.0]))));
        assert_abs_diff_eq!(
            loss[[]],
            -(0.75f64.ln() + 0.5f64.ln()) / 2.0,
            epsilon = 1e-15
        );
        let gr = grads_of(&x, |g, t| t[0].cross_entropy(g.constant(arr1(&[1.0, 0.0]))));
        let want = arr2(&[[0.125, -0.125], [-0.25, 0.25]]).into_dyn();
        for (a, b) in gr[0].iter().zip(want.iter()) {
            assert_abs_diff_eq!(*a, *b, epsilon = 1e-15);
        }
    }

    #[test]
    fn mse_known_value() {
        // mean((1-0)^2, (3-1)^2) = 2.5; d/dp = 2 (p - t) / n = [1, 2]
        let p = [arr1(&[1.0, 3.0]).into_dyn()];
        let t = || arr1(&[0.0, 1.0]);
        assert_eq!(eval(&p, |g, x| x[0].mse(g.constant(t())))[[]], 2.5);
        assert_eq!(
            grads_of(&p, |g, x| x[0].mse(g.constant(t())))[0],
            arr1(&[1.0, 2.0]).into_dyn()
        );
    }

    #[test]
    fn gradcheck_nn() {
        let x = [rand_array(&[4, 5], 3, -2.0, 2.0)];
        let w = rand_array(&[4, 5], 4, -1.0, 1.0);
        let (w1, w2) = (w.clone(), w.clone());
        check(&x, move |g, t| t[0].softmax(1) * g.constant(w1.clone()));
        check(&x, move |g, t| t[0].log_softmax(0) * g.constant(w2.clone()));
        check(&x, |g, t| {
            t[0].cross_entropy(g.constant(arr1(&[4.0, 0.0, 2.0, 2.0])))
        });
        check(&x, move |g, t| t[0].mse(g.constant(w.clone())));
    }

    #[test]
    fn shape_and_index_errors() {
        let g = Graph::<f32>::new();
        let logits = g.input("logits", [4, 3]);
        let _ = logits.cross_entropy(g.input("ids", [5]));
        let e = g.check().unwrap_err().to_string();
        assert!(
            e.contains("`cross_entropy`") && e.contains("[4, 3], [5]"),
            "{e}"
        );
        let g = Graph::<f32>::new();
        let _ = g.input("p", [2]).mse(g.input("t", [3]));
        assert!(g.check().unwrap_err().to_string().contains("`mse`"));
        // a class id out of range is an Err from run
        let g = Graph::<f32>::new();
        let logits = g.param("w", ndarray::Array2::<f32>::zeros((2, 3)));
        let ids = g.input("ids", [2]);
        let loss = logits.cross_entropy(ids);
        let mut m = g.compile(&[loss], &[]).unwrap();
        m.feed(ids, &arr1(&[0.0f32, 3.0])).unwrap();
        let e = m.run().unwrap_err().to_string();
        assert!(
            e.contains("`cross_entropy`")
                && e.contains("class id 3 at position 1 ")
                && e.contains("0..3"),
            "{e}"
        );
    }

    #[test]
    fn empty_batch_gives_nan_not_panic() {
        let g = Graph::<f32>::new();
        let x = g.input("x", [0, 3]);
        let ids = g.input("ids", [0]);
        let w = g.param("w", ndarray::Array2::<f32>::ones((3, 2)));
        let loss = x.matmul(w).cross_entropy(ids);
        let gw = g.grad(loss, &[w]).unwrap()[0];
        let mut m = g.compile(&[loss, gw], &[]).unwrap();
        m.feed(x, &ndarray::Array2::<f32>::zeros((0, 3))).unwrap();
        m.feed(ids, &ndarray::Array1::<f32>::zeros(0)).unwrap();
        m.run().unwrap();
        assert!(m.item(loss).unwrap().is_nan());
    }
}
