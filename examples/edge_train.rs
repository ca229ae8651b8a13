//! A training program as small as an edge binary gets: a 2-16-2 ReLU MLP learns two
//! interleaved half circles (generated here from a seed) with mini-batch SGD, on batches
//! of up to 32 points through one machine, then reports its accuracy on held-out points.
//! Exits with status 1 below 95%.
//!
//! ```text
//! cargo run --release --example edge_train
//! cargo build --profile release-small --example edge_train --no-default-features --features std
//! ```
//!
//! Built with `release-small` (opt-level "z", LTO, one codegen unit, abort on panic,
//! stripped) it measures how much tapegrad adds to a binary; README.md gives the sizes.

use tapegrad::data::{two_moons, Batches};
use tapegrad::ndarray::{Array1, Array2};
use tapegrad::prelude::*;
use tapegrad::rand::rngs::StdRng;
use tapegrad::rand::SeedableRng;

const POINTS: usize = 600;
const TRAIN: usize = 500;
const BATCH: usize = 32;
const EPOCHS: usize = 40;

fn main() -> Result<(), Error> {
    let mut rng = StdRng::seed_from_u64(3);
    let (points, labels) = two_moons(POINTS, 0.15, &mut rng);

    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(BATCH), 2));
    let y = g.input("y", Dim::upto(BATCH));
    let w1 = g.param("w1", init::kaiming_uniform([2, 16], &mut rng)?);
    let b1 = g.param("b1", init::zeros([16])?);
    let w2 = g.param("w2", init::kaiming_uniform([16, 2], &mut rng)?);
    let b2 = g.param("b2", init::zeros([2])?);
    let logits = (x.matmul(w1) + b1).relu().matmul(w2) + b2;
    let loss = logits.cross_entropy(y);
    let class = logits.argmax(-1, false);
    let grads = g.grad(loss, &g.params())?;
    let mut m = g.compile(&[loss, class], &grads)?;
    let mut opt = Sgd::new(0.1).momentum(0.9);

    let (mut xbuf, mut ybuf) = (Array2::zeros((BATCH, 2)), Array1::zeros(BATCH));
    let mut batches = Batches::new(TRAIN, BATCH, false)?;
    for _ in 0..EPOCHS {
        batches.shuffle(&mut rng);
        while let Some((xb, yb)) = batches.next_batch(&points, &labels, &mut xbuf, &mut ybuf)? {
            m.feed(x, &xb)?;
            m.feed(y, &yb)?;
            m.run()?;
            opt.step(&mut m, &grads)?;
        }
    }

    let held_out: Vec<usize> = (TRAIN..POINTS).collect();
    let mut batches = Batches::from_indices(held_out, BATCH, false)?;
    let mut right = 0;
    while let Some((xb, yb)) = batches.next_batch(&points, &labels, &mut xbuf, &mut ybuf)? {
        m.feed(x, &xb)?;
        m.feed(y, &yb)?;
        m.run()?;
        let predicted = m.value(class)?;
        right += predicted.iter().zip(&yb).filter(|(p, l)| p == l).count();
    }
    let total = POINTS - TRAIN;
    println!("held-out accuracy {right}/{total}");
    if right * 100 < total * 95 {
        std::process::exit(1);
    }
    Ok(())
}
