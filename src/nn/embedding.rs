//! [`Embedding`] (a lookup table of rows) and [`Dropout`] as a layer.

use alloc::format;
use alloc::vec::Vec;
use core::panic::Location;

use rand::Rng;

use crate::graph::{Graph, Tensor};
use crate::init;
use crate::scalar::Scalar;
use crate::shape::Shape;

use super::Module;

/// `nn.Embedding`: row `i` of `weight` `[num, dim]` for each id `i`, so ids of any shape
/// `[..]` give `[.., dim]`. Ids are integers stored as `T` (as class ids are); one that
/// is not an integer in `0..num` is an [`Error::Index`](crate::Error::Index) from
/// [`Machine::run`](crate::Machine::run), located at the `forward` call, since ids are
/// fed and cannot be known while recording.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::Embedding;
/// use tapegrad::rand::SeedableRng;
/// let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(0);
/// let g = Graph::<f32>::new();
/// let emb = Embedding::new(&g, "emb", 10, 4, &mut rng);
/// let ids = g.input("ids", (Dim::upto(8), 5));
/// let v = emb.forward(ids);
/// assert_eq!(v.shape().dims(), &[8, 5, 4]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Embedding<'g, T: Scalar> {
    /// `[num, dim]`, named `"{name}.weight"`.
    pub weight: Tensor<'g, T>,
}

impl<'g, T: Scalar> Embedding<'g, T> {
    /// A table of `num` rows of `dim` values, initialised as PyTorch's `nn.Embedding`:
    /// `N(0, 1)` (`init.normal_(self.weight)`). Sizes too large to initialise record
    /// [`Error::TooLarge`](crate::Error::TooLarge) in `g`, as [`Linear::new`](super::Linear::new) does.
    #[track_caller]
    pub fn new<R: Rng + ?Sized>(
        g: &'g Graph<T>,
        name: &str,
        num: usize,
        dim: usize,
        rng: &mut R,
    ) -> Self {
        let shape = Shape::from([num, dim]);
        let init = init::normal(shape.clone(), 0.0, 1.0, rng);
        Embedding {
            weight: g.param_or_fail(&format!("{name}.weight"), init, shape, Location::caller()),
        }
    }

    /// The rows picked by `ids` (any shape, ids stored as `T`): `[ids.., dim]`.
    #[track_caller]
    pub fn forward(&self, ids: Tensor<'g, T>) -> Tensor<'g, T> {
        self.weight.index_select(ids)
    }
}

impl<'g, T: Scalar> Module<'g, T> for Embedding<'g, T> {
    #[track_caller]
    fn forward(&self, ids: Tensor<'g, T>) -> Tensor<'g, T> {
        Embedding::forward(self, ids)
    }

    fn params(&self) -> Vec<Tensor<'g, T>> {
        alloc::vec![self.weight]
    }
}

/// `nn.Dropout` as a layer: [`Tensor::dropout`] with probability `p` (zeros with
/// probability `p` in training mode, the rest scaled by `1 / (1 - p)`; the identity in
/// evaluation mode). A `p` outside `[0, 1)` is an error from `compile`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    /// The probability of zeroing an element.
    pub p: f64,
}

impl Dropout {
    /// Dropout with probability `p`.
    pub fn new(p: f64) -> Self {
        Dropout { p }
    }
}

impl<'g, T: Scalar> Module<'g, T> for Dropout {
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        x.dropout(self.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use ndarray::{arr1, arr2};
    use rand::SeedableRng;

    #[test]
    fn embedding_picks_rows_and_sums_gradients_of_repeated_ids() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let g = Graph::<f64>::new();
        let emb = Embedding::new(&g, "emb", 4, 3, &mut rng);
        let ids = g.input("ids", (Dim::upto(4), 2));
        let y = emb.forward(ids);
        assert_eq!(y.shape().dims(), &[4, 2, 3]);
        let loss = y.sum();
        let grads = g.grad(loss, &[emb.weight]).unwrap();
        let mut m = g.compile(&[y], &grads).unwrap();
        m.feed(ids, &arr2(&[[2.0, 0.0], [2.0, 3.0]])).unwrap();
        m.run().unwrap();
        let w = m.value(emb.weight).unwrap().to_owned();
        let out = m.value(y).unwrap().to_owned();
        for (row, id) in [(0, 2), (1, 0), (2, 2), (3, 3)] {
            for k in 0..3 {
                assert_eq!(out.as_slice().unwrap()[row * 3 + k], w[[id, k]]);
            }
        }
        // d sum / d weight[r] = how many times r was picked: [1, 0, 2, 1] per column
        let gw = m.value(grads[0]).unwrap();
        for (r, n) in [1.0, 0.0, 2.0, 1.0].iter().enumerate() {
            assert!(gw.index_axis(ndarray::Axis(0), r).iter().all(|v| v == n));
        }
        let names: Vec<_> = m
            .params()
            .map(|(n, _)| alloc::string::String::from(n))
            .collect();
        assert_eq!(names, ["emb.weight"]);
    }

    #[test]
    fn embedding_init_is_standard_normal() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let g = Graph::<f64>::new();
        let emb = Embedding::new(&g, "e", 100, 100, &mut rng);
        let m = g.compile(&[emb.weight], &[]).unwrap();
        let w = m.value(emb.weight).unwrap();
        let n = w.len() as f64;
        let mean = w.sum() / n;
        let var = w.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        // 10,000 draws: the mean within 4 standard errors (0.04), the variance within 5%
        assert!(mean.abs() < 0.04, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn embedding_id_out_of_range_is_a_located_error_from_run() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let g = Graph::<f32>::new();
        let emb = Embedding::new(&g, "emb", 3, 2, &mut rng);
        let ids = g.input("ids", [2]);
        let (y, line) = (emb.forward(ids), line!());
        let mut m = g.compile(&[y], &[]).unwrap();
        m.feed(ids, &arr1(&[0.0, 1.0])).unwrap();
        m.run().unwrap();
        m.feed(ids, &arr1(&[1.0, 3.0])).unwrap();
        let e = m.run().unwrap_err();
        assert!(matches!(e, Error::Index { bound: 3, .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("row id 3 ") && text.contains(&format!("embedding.rs:{line}")),
            "{text}"
        );
    }

    #[test]
    fn dropout_layer_is_the_identity_in_evaluation_and_drops_in_training() {
        let g = Graph::<f32>::new();
        let x = g.input("x", [1000]);
        let y = Module::forward(&Dropout::new(0.5), x);
        let mut m = g.compile(&[y], &[]).unwrap();
        m.feed(x, &ndarray::Array1::ones(1000)).unwrap();
        m.run().unwrap();
        assert!(m.value(y).unwrap().iter().all(|&v| v == 1.0));
        m.set_training(true);
        m.run().unwrap();
        let kept = m.value(y).unwrap().iter().filter(|&&v| v == 2.0).count();
        let zero = m.value(y).unwrap().iter().filter(|&&v| v == 0.0).count();
        assert_eq!(kept + zero, 1000);
        assert!((400..600).contains(&kept), "{kept}");
        assert!(Module::<f32>::params(&Dropout::new(0.5)).is_empty());
    }
}
