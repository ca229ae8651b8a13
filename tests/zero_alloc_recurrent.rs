//! After the first step, training steps of recurrent models (an embedding into a GRU,
//! a two-layer LSTM reading `[T, N, F]`) allocate nothing, with the batch a run-time
//! axis fed a different number of rows each step (a binary of its own: one test
//! function, measured on its own thread; see tests/zero_alloc.rs).

use tapegrad::ndarray::{Array2, Array3, Axis, Slice};
use tapegrad::nn::{Embedding, Linear, Module, RnnBuilder};
use tapegrad::prelude::*;
use tapegrad::rand::SeedableRng;
use tapegrad::Dim;

#[path = "common/counting.rs"]
mod counting;
use counting::thread_allocs;

const BATCH: usize = 6;
const STEPS: usize = 5;

fn recurrent_allocations(lstm: bool) -> usize {
    tapegrad::set_threads(1);
    let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(3);
    let g = Graph::<f32>::new();
    let y = g.input("y", Dim::upto(BATCH));
    let (x, features) = if lstm {
        let x = g.input("x", (Dim::upto(BATCH), STEPS, 3));
        let rnn = RnnBuilder::new(3, 8)
            .num_layers(2)
            .lstm(&g, "lstm", &mut rng);
        // [T, N, F], the batch the run-time axis in the middle
        let (out, (h_n, c_n)) = rnn.forward(x.permute(&[1, 0, 2]));
        let last = h_n.narrow(0, 1, 1).squeeze(0) + c_n.narrow(0, 1, 1).squeeze(0);
        (x, out.mean_axes(&[0], false) + last)
    } else {
        let ids = g.input("ids", (Dim::upto(BATCH), STEPS));
        let emb = Embedding::new(&g, "emb", 10, 4, &mut rng);
        let rnn = RnnBuilder::new(4, 8)
            .batch_first(true)
            .gru(&g, "gru", &mut rng);
        let (out, _) = rnn.forward(emb.forward(ids).dropout(0.1));
        (
            ids,
            Module::forward(&rnn, emb.forward(ids)).mean_axes(&[1], false)
                + out.sum_axes(&[1], false),
        )
    };
    let logits = Linear::new(&g, "fc", 8, 3, &mut rng).forward(features);
    let loss = logits.cross_entropy(y);
    let grads = g.grad(loss, &g.params()).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    m.set_training(true);
    let xb = Array3::from_shape_fn((BATCH, STEPS, 3), |(n, t, f)| {
        ((n * 7 + t * 3 + f) % 5) as f32 * 0.3 - 0.6
    });
    let ids = Array2::from_shape_fn((BATCH, STEPS), |(n, t)| ((n * 3 + t) % 10) as f32);
    let yb = tapegrad::ndarray::Array1::from_shape_fn(BATCH, |n| (n % 3) as f32);
    let mut opt = Adam::new(1e-3);
    let cycle = [BATCH, 1, 3, 0, BATCH - 1];
    let mut t = 0;
    let mut step = |m: &mut Machine<f32>| {
        let rows = Slice::from(..cycle[t % cycle.len()]);
        if lstm {
            m.feed(x, &xb.slice_axis(Axis(0), rows)).unwrap();
        } else {
            m.feed(x, &ids.slice_axis(Axis(0), rows)).unwrap();
        }
        m.feed(y, &yb.slice_axis(Axis(0), rows)).unwrap();
        m.run().unwrap();
        opt.step(m, &grads).unwrap();
        t += 1;
    };
    step(&mut m);
    let before = thread_allocs();
    for _ in 0..10 {
        step(&mut m);
    }
    let after = thread_allocs();
    assert!(m.rows() > 0 && m.item(loss).unwrap().is_finite());
    after - before
}

#[test]
fn recurrent_training_steps_allocate_nothing() {
    assert_eq!(recurrent_allocations(false), 0, "embedding, dropout, GRU");
    assert_eq!(recurrent_allocations(true), 0, "two-layer LSTM, time first");
    // the counter does count
    let before = thread_allocs();
    let g = Graph::<f32>::new();
    let _ = g.input("x", [2]).relu();
    assert!(thread_allocs() > before);
}
