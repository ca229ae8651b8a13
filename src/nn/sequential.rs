//! [`Sequential`]: modules applied in order, named as `torch.nn.Sequential` names them.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::graph::Tensor;
use crate::scalar::Scalar;

use super::Module;

/// Modules applied one after another, each taking the next index as
/// `torch.nn.Sequential` numbers its children: every module counts, activations, dropout
/// and pooling included, so `Linear, ReLU, Linear` has parameters `0.weight`, `0.bias`,
/// `2.weight`, `2.bias`, after the prefix (`"net.0.weight"`; an empty prefix gives
/// PyTorch's bare names).
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::{Activation, Dropout, Linear, Module, Sequential};
/// use tapegrad::rand::SeedableRng;
/// let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(0);
/// let g = Graph::<f32>::new();
/// let mut net = Sequential::new("net");
/// net.push(|name| Linear::new(&g, name, 64, 32, &mut rng))
///     .add(Activation::Relu)
///     .add(Dropout::new(0.1))
///     .push(|name| Linear::new(&g, name, 32, 10, &mut rng));
/// let logits = net.forward(g.input("x", (Dim::upto(16), 64)));
/// assert_eq!(logits.shape().dims(), &[16, 10]);
/// assert!(g.get("net.3.weight").is_some()); // 1 is the ReLU, 2 the dropout
/// ```
#[derive(Clone)]
pub struct Sequential<'g, T: Scalar> {
    prefix: String,
    modules: Vec<Rc<dyn Module<'g, T> + 'g>>,
}

impl<'g, T: Scalar> Sequential<'g, T> {
    /// An empty sequence whose modules are named `"{prefix}.{index}"` (`"{index}"` for an
    /// empty prefix).
    pub fn new(prefix: &str) -> Self {
        Sequential {
            prefix: String::from(prefix),
            modules: Vec::new(),
        }
    }

    /// The name the next module gets: `"{prefix}.{len}"`, or `"{len}"`.
    pub fn next_name(&self) -> String {
        let i = self.modules.len();
        if self.prefix.is_empty() {
            format!("{i}")
        } else {
            format!("{}.{i}", self.prefix)
        }
    }

    /// Appends the module `make` builds from its name (the next index), for a module with
    /// parameters: `seq.push(|name| Linear::new(&g, name, 64, 32, &mut rng))`.
    pub fn push<M: Module<'g, T> + 'g>(&mut self, make: impl FnOnce(&str) -> M) -> &mut Self {
        let name = self.next_name();
        self.add(make(&name))
    }

    /// Appends a module already made (an activation, dropout, or a layer named by hand);
    /// it takes the next index all the same.
    pub fn add<M: Module<'g, T> + 'g>(&mut self, module: M) -> &mut Self {
        self.modules.push(Rc::new(module));
        self
    }

    /// How many modules, so the index the next one takes.
    pub fn len(&self) -> usize {
        self.modules.len()
    }

    /// Whether there are none (the sequence is then the identity).
    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }
}

impl<'g, T: Scalar> Module<'g, T> for Sequential<'g, T> {
    /// Every module in turn; a shape one does not take is an error at the caller's line.
    #[track_caller]
    fn forward(&self, x: Tensor<'g, T>) -> Tensor<'g, T> {
        let mut h = x;
        for m in &self.modules {
            h = m.forward(h);
        }
        h
    }

    fn params(&self) -> Vec<Tensor<'g, T>> {
        self.modules.iter().flat_map(|m| m.params()).collect()
    }
}

impl<T: Scalar> fmt::Debug for Sequential<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sequential")
            .field("prefix", &self.prefix)
            .field("modules", &self.modules.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Activation, Dropout, Linear};
    use crate::prelude::*;
    use rand::SeedableRng;

    fn names(g: &Graph<f32>, y: Tensor<'_, f32>) -> Vec<String> {
        let m = g.compile(&[y], &[]).unwrap();
        m.params().map(|(n, _)| String::from(n)).collect()
    }

    #[test]
    fn every_module_takes_an_index_as_in_torch_sequential() {
        // nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))
        //   .state_dict().keys() == ['0.weight', '0.bias', '3.weight', '3.bias']
        for (prefix, want) in [
            ("", ["0.weight", "0.bias", "3.weight", "3.bias"]),
            (
                "net",
                ["net.0.weight", "net.0.bias", "net.3.weight", "net.3.bias"],
            ),
        ] {
            let mut rng = rand::rngs::StdRng::seed_from_u64(1);
            let g = Graph::<f32>::new();
            let mut s = Sequential::new(prefix);
            s.push(|n| Linear::new(&g, n, 4, 8, &mut rng))
                .add(Activation::Relu)
                .add(Dropout::new(0.5))
                .push(|n| Linear::new(&g, n, 8, 2, &mut rng));
            assert_eq!(s.len(), 4);
            assert_eq!(s.next_name(), if prefix.is_empty() { "4" } else { "net.4" });
            let y = s.forward(g.input("x", [3, 4]));
            assert_eq!(names(&g, y), want);
            assert_eq!(s.params().len(), 4);
            let ids =
                |s: &Sequential<'_, f32>| s.params().iter().map(|t| t.id()).collect::<Vec<_>>();
            assert_eq!(ids(&s.clone()), ids(&s));
        }
    }

    #[test]
    fn forward_is_the_modules_in_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let g = Graph::<f64>::new();
        let mut s = Sequential::new("s");
        let mut first = None;
        s.push(|n| {
            let l = Linear::new(&g, n, 3, 2, &mut rng);
            first = Some(l);
            l
        })
        .add(Activation::Tanh);
        let x = g.input("x", [2, 3]);
        let l = first.unwrap();
        let (y, want) = (s.forward(x), (x.matmul(l.weight) + l.bias).tanh());
        let mut m = g.compile(&[y, want], &[]).unwrap();
        m.feed(x, &ndarray::arr2(&[[0.1, -0.2, 0.3], [1.0, 2.0, -3.0]]))
            .unwrap();
        m.run().unwrap();
        assert_eq!(m.value(y).unwrap(), m.value(want).unwrap());
        // empty: the identity
        let e = Sequential::<f64>::new("e");
        assert!(e.is_empty());
        assert_eq!(e.forward(x).id(), x.id());
    }

    #[test]
    fn a_module_that_does_not_fit_is_an_error_at_the_callers_line() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let g = Graph::<f32>::new();
        let mut s = Sequential::new("s");
        s.push(|n| Linear::new(&g, n, 4, 8, &mut rng));
        let (y, line) = (s.forward(g.input("x", [2, 5])), line!());
        let e = g.compile(&[y], &[]).unwrap_err().to_string();
        assert!(
            e.contains("matmul") && e.contains(&format!("sequential.rs:{line}")),
            "{e}"
        );
    }
}
