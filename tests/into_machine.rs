//! `Graph::into_machine`: the machine `compile` makes, bit for bit, with the parameters'
//! values moved out of the graph rather than copied (so the process holds them once);
//! its errors; and the bytes it allocates, from the counting allocator (per thread, so
//! other tests cannot disturb them).

#[path = "common/counting.rs"]
mod counting;
use counting::{reset_thread_peak, thread_live_bytes, thread_peak_bytes};

use tapegrad::ndarray::{s, Array1, Array2};
use tapegrad::prelude::*;
use tapegrad::rand::rngs::StdRng;
use tapegrad::rand::SeedableRng;
use tapegrad::{GradHandles, Handle};

/// The nodes of [`record`] a test reads.
struct Net<'g> {
    x: Tensor<'g, f64>,
    loss: Tensor<'g, f64>,
    logits: Tensor<'g, f64>,
    params: Vec<Tensor<'g, f64>>,
    grads: Grads<'g, f64>,
}

/// The same nodes as handles, which outlive the graph's borrow.
struct Handles {
    x: Handle,
    loss: Handle,
    logits: Handle,
    params: Vec<Handle>,
    grads: GradHandles,
}

impl Net<'_> {
    fn handles(&self) -> Handles {
        Handles {
            x: self.x.handle(),
            loss: self.loss.handle(),
            logits: self.logits.handle(),
            params: self.params.iter().map(|p| p.handle()).collect(),
            grads: self.grads.handles(),
        }
    }
}

/// A two-layer MLP whose parameters are stored every way an array can be: drawn by an
/// initialiser (row-major), transposed (column-major: copied, not moved), sliced (a
/// row-major run that starts past the storage's start) and empty; with a constant and a
/// buffer beside them.
fn record(g: &Graph<f64>) -> Net<'_> {
    let mut rng = StdRng::seed_from_u64(3);
    let x = g.input("x", [5, 4]);
    let w0 = g.param("w0", init::kaiming_uniform([4, 6], &mut rng).unwrap());
    let w1_t = Array2::from_shape_fn((3, 6), |(i, j)| 0.1 * (i as f64) - 0.05 * (j as f64));
    let w1 = g.param("w1", w1_t.reversed_axes());
    let b0 = g.param("b0", Array1::linspace(-1.0, 1.0, 9).slice_move(s![3..]));
    let unused = g.param("empty", Array1::<f64>::zeros(0));
    let scale = g.buffer("scale", Array1::from_elem(3, 0.5));
    let h = (x.matmul(w0) + b0).relu();
    let logits = h.matmul(w1) * scale + g.constant(Array1::from_elem(3, 0.25));
    let ids = g.constant(Array1::from_vec(vec![0.0, 1.0, 2.0, 1.0, 0.0]));
    let loss = logits.cross_entropy(ids);
    let params = vec![w0, w1, b0, unused];
    let grads = g.grad(loss, &params).unwrap();
    Net {
        x,
        loss,
        logits,
        params,
        grads,
    }
}

/// Every value `m` can show of `net` after a run, a step of SGD and another run, as bits.
fn trained(mut m: Machine<f64>, net: &Handles) -> Vec<Vec<u64>> {
    let xs = Array2::from_shape_fn((5, 4), |(i, j)| (i as f64 - 2.0) * 0.3 + j as f64 * 0.1);
    let mut seen = Vec::new();
    let mut opt = Sgd::new(0.1);
    for _ in 0..2 {
        for &p in &net.params {
            seen.push(m.value(p).unwrap().iter().map(|v| v.to_bits()).collect());
        }
        m.feed(net.x, &xs).unwrap();
        m.run().unwrap();
        for h in [net.loss, net.logits]
            .into_iter()
            .chain(net.grads.iter().map(|p| p.1))
        {
            seen.push(m.value(h).unwrap().iter().map(|v| v.to_bits()).collect());
        }
        opt.step(&mut m, &net.grads).unwrap();
    }
    seen
}

#[test]
fn into_machine_makes_compiles_machine_bit_for_bit() {
    let g = Graph::new();
    let net = record(&g);
    let copied = g.compile(&[net.loss, net.logits], &net.grads).unwrap();
    let h = net.handles();
    drop(net);
    let want = trained(copied, &h);
    let moved = g.into_machine(&[h.loss, h.logits], &h.grads).unwrap();
    assert_eq!(moved.grads(), &h.grads);
    assert_eq!(trained(moved, &h), want);
    // a graph recorded again moves into a machine like the first one's copy
    let g = Graph::new();
    let again = record(&g).handles();
    let m = g
        .into_machine(&[again.loss, again.logits], &again.grads)
        .unwrap();
    assert_eq!(trained(m, &again), want);
}

#[test]
fn an_evaluation_machine_compiled_first_keeps_its_own_values() {
    let g = Graph::new();
    let net = record(&g);
    let mut eval = g.compile(&[net.logits], &[]).unwrap();
    let h = net.handles();
    drop(net);
    let mut train = g.into_machine(&[h.loss], &h.grads).unwrap();
    let mut opt = Sgd::new(0.5);
    train.feed(h.x, &Array2::from_elem((5, 4), 1.0)).unwrap();
    train.run().unwrap();
    opt.step(&mut train, &h.grads).unwrap();
    let w0 = h.params[0];
    assert_ne!(train.value(w0).unwrap(), eval.value(w0).unwrap());
    eval.copy_params_from(&train).unwrap();
    assert_eq!(train.value(w0).unwrap(), eval.value(w0).unwrap());
}

#[test]
fn errors_are_those_of_compile() {
    let g = Graph::<f64>::new();
    let other = Graph::<f64>::new();
    let y = g.param("w", Array1::from_elem(2, 1.0)).sum().handle();
    let alien = other.input("x", [2]).handle();
    let line = line!() + 1;
    let e = g.into_machine(&[y, alien], &[]).unwrap_err();
    match &e {
        Error::WrongGraph { op, caller } => {
            assert_eq!((*op, caller.line), ("compile", line), "{e}");
            assert!(caller.file.ends_with("into_machine.rs"), "{e}");
        }
        e => panic!("{e:?}"),
    }
    // gradients of another graph
    let g = Graph::<f64>::new();
    let w = other.param("w", Array1::from_elem(2, 1.0));
    let grads = other.grad(w.sum(), &[w]).unwrap().handles();
    let y = g.input("x", [2]).sum().handle();
    let e = g.into_machine(&[y], &grads).unwrap_err();
    assert!(
        matches!(e, Error::WrongGraph { op: "compile", .. }),
        "{e:?}"
    );
    // the first error recorded in the graph
    let g = Graph::<f64>::new();
    let a = g.input("a", [2, 3]);
    let bad = a.matmul(a).handle();
    let e = g.into_machine(&[bad], &[]).unwrap_err();
    assert!(matches!(e, Error::Shape { op: "matmul", .. }), "{e:?}");
}

/// `w [512, 512]` (1 MiB of f32) and a loss that reads it.
fn big(g: &Graph<f32>) -> (Tensor<'_, f32>, Grads<'_, f32>) {
    let w = g.param("w", init::constant([512, 512], 0.5).unwrap());
    let x = g.input("x", [4, 512]);
    let loss = x.matmul(w).relu().sum();
    let grads = g.grad(loss, &[w]).unwrap();
    (loss, grads)
}

#[test]
fn the_parameters_move_and_are_never_held_twice() {
    const W: isize = 512 * 512 * 4;
    // compile: the machine's whole, parameters copied beside the graph's
    let g = Graph::<f32>::new();
    let (loss, grads) = big(&g);
    let live = thread_live_bytes();
    reset_thread_peak();
    let m = g.compile(&[loss], &grads).unwrap();
    let total = m.memory().total() as isize;
    assert!(thread_peak_bytes() - live >= total, "{:?}", m.memory());
    drop((m, g));
    // into_machine: the machine less the parameter it takes from the graph
    let before = thread_live_bytes();
    let g = Graph::<f32>::new();
    let (loss, grads_of_g) = big(&g);
    let (loss, grads) = (loss.handle(), grads_of_g.handles());
    drop(grads_of_g);
    let live = thread_live_bytes();
    reset_thread_peak();
    let m = g.into_machine(&[loss], &grads).unwrap();
    assert_eq!(m.memory().total() as isize, total);
    let peak = thread_peak_bytes() - live;
    // (a few KiB of tables made and dropped on the way)
    assert!(
        peak < total - W + 64 * 1024,
        "peak {peak} B, machine {total} B"
    );
    assert!(peak >= total - W, "peak {peak} B, machine {total} B");
    // the graph is gone: what is held is the machine, as `memory` counts it (within 5%;
    // it is exact today, see tests/memory.rs)
    let held = thread_live_bytes() - before - grads_bytes(&grads);
    assert!(
        (held - total).abs() * 20 <= total,
        "held {held} B, {:?}",
        m.memory()
    );
}

/// The heap bytes of the caller's own copy of the gradient pairs.
fn grads_bytes(grads: &GradHandles) -> isize {
    (grads.len() * 2 * std::mem::size_of::<Handle>()) as isize
}
