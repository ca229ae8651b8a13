//! The README's quick start graph, with its gradients, as Graphviz DOT on standard output
//! (`Graph::to_dot`). The README's picture is made with
//!
//! ```text
//! cargo run --example dot | dot -Tsvg -o docs/quickstart.svg
//! ```
//!
//! (`dot` is Graphviz: `apt-get install graphviz`.) Inputs are blue ellipses, parameters
//! yellow boxes, the nodes `grad` appended red, dashed and in a dashed cluster.

use tapegrad::prelude::*;
use tapegrad::rand::{rngs::StdRng, SeedableRng};

fn main() -> Result<(), tapegrad::Error> {
    // the quick start's graph, as the README records it
    let mut rng = StdRng::seed_from_u64(0);
    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(4), 2));
    let y = g.input("y", Dim::upto(4));
    let w1 = g.param("w1", init::kaiming_uniform([2, 16], &mut rng)?);
    let b1 = g.param("b1", init::zeros([16])?);
    let w2 = g.param("w2", init::kaiming_uniform([16, 2], &mut rng)?);
    let b2 = g.param("b2", init::zeros([2])?);
    let logits = (x.matmul(w1) + b1).relu().matmul(w2) + b2;
    let loss = logits.cross_entropy(y);
    let class = logits.argmax(-1, false);
    let grads = g.grad(loss, &g.params())?;
    let _ = (class, grads);
    print!("{}", g.to_dot());
    Ok(())
}
