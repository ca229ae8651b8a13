//! `Machine::memory()` against the bytes a compiled machine really holds: the counting
//! allocator follows the bytes this thread holds, the graph is built, compiled and
//! dropped, and what is still held is the machine's. Also the byte budget of
//! `compile_within`, gradients in buffers of their own size, and inference-only machines
//! without gradient buffers.

#[path = "common/counting.rs"]
mod counting;
use counting::{reset_thread_peak, thread_live_bytes, thread_peak_bytes};

use tapegrad::ndarray::{Array1, Array2};
use tapegrad::prelude::*;
use tapegrad::rand::rngs::StdRng;
use tapegrad::rand::SeedableRng;
use tapegrad::{Memory, Scalar};

/// The machine `build` returns and the bytes the calling thread still holds for it once
/// everything else `build` made (the graph above all) is dropped.
fn held<T: Scalar>(build: impl FnOnce() -> Machine<T>) -> (Machine<T>, usize) {
    let before = thread_live_bytes();
    let m = build();
    let after = thread_live_bytes();
    let bytes = usize::try_from(after - before).unwrap_or(0);
    (m, bytes)
}

/// An MLP `sizes[0] - sizes[1] - ... ` with ReLU between layers and a softmax
/// cross-entropy over batches of up to `batch` rows, compiled for training (`train`) or
/// for inference only (the logits).
fn mlp<T: Scalar>(sizes: &[usize], batch: usize, train: bool) -> Machine<T> {
    let mut rng = StdRng::seed_from_u64(7);
    let g = Graph::<T>::new();
    let x = g.input("x", (Dim::upto(batch), sizes[0]));
    let y = g.input("y", Dim::upto(batch));
    let mut h = x;
    for (l, w) in sizes.windows(2).enumerate() {
        let wl = g.param(
            &format!("w{l}"),
            init::kaiming_uniform([w[0], w[1]], &mut rng).unwrap(),
        );
        let bl = g.param(&format!("b{l}"), init::zeros([w[1]]).unwrap());
        h = h.matmul(wl) + bl;
        if l + 2 < sizes.len() {
            h = h.relu();
        }
    }
    let loss = h.cross_entropy(y);
    let grads = g.grad(loss, &g.params()).unwrap();
    if train {
        g.compile(&[loss], &grads).unwrap()
    } else {
        g.compile(&[h], &[]).unwrap()
    }
}

/// Ops that keep shapes or axes of their own (reshape, transpose, sums over axes,
/// broadcasts in the gradient), a constant and a second-order gradient.
fn layouts<T: Scalar>() -> Machine<T> {
    let g = Graph::<T>::new();
    let x = g.input("x", [6, 4]);
    let w = g.param("w", init::zeros([4, 3]).unwrap());
    let c = g.constant(Array1::from_elem(3, T::of(0.5)));
    let y = (x.matmul(w) + c)
        .reshape([2, 9])
        .t()
        .sum_axes(&[0], true)
        .tanh();
    let loss = y.mean();
    let grads = g.grad(loss, &[w]).unwrap();
    let gg = g.grad(grads[0].square().sum(), &[w]).unwrap();
    g.compile(&[loss, y], &gg).unwrap()
}

/// `reported` is within 5% of `actual` (it is exact today; the margin leaves room for
/// an allocator that rounds a request).
fn close(what: &str, reported: &Memory, actual: usize) {
    let total = reported.total();
    let diff = total.abs_diff(actual);
    println!("{what}: memory().total() {total} B, held {actual} B ({reported:?})");
    assert!(
        diff * 20 <= actual,
        "{what}: memory().total() = {total} B but the machine holds {actual} B ({reported:?})"
    );
}

#[test]
fn total_counts_every_byte_a_machine_holds() {
    type Case = Box<dyn Fn() -> (Memory, usize)>;
    let cases: Vec<(&str, Case)> = vec![
        (
            "f32 train 64-32-10 upto 32",
            Box::new(|| {
                let (m, b) = held(|| mlp::<f32>(&[64, 32, 10], 32, true));
                (m.memory(), b)
            }),
        ),
        (
            "f32 train 784-128-10 upto 64",
            Box::new(|| {
                let (m, b) = held(|| mlp::<f32>(&[784, 128, 10], 64, true));
                (m.memory(), b)
            }),
        ),
        (
            "f64 train 2-16-16-2 upto 8",
            Box::new(|| {
                let (m, b) = held(|| mlp::<f64>(&[2, 16, 16, 2], 8, true));
                (m.memory(), b)
            }),
        ),
        (
            "f32 inference 784-128-10 upto 64",
            Box::new(|| {
                let (m, b) = held(|| mlp::<f32>(&[784, 128, 10], 64, false));
                (m.memory(), b)
            }),
        ),
        (
            "f64 inference 2-16-2 upto 1",
            Box::new(|| {
                let (m, b) = held(|| mlp::<f64>(&[2, 16, 2], 1, false));
                (m.memory(), b)
            }),
        ),
        (
            "f32 layouts and second order",
            Box::new(|| {
                let (m, b) = held(layouts::<f32>);
                (m.memory(), b)
            }),
        ),
        (
            "f64 layouts and second order",
            Box::new(|| {
                let (m, b) = held(layouts::<f64>);
                (m.memory(), b)
            }),
        ),
    ];
    for (what, case) in &cases {
        let (memory, actual) = case();
        // the tables are a real part of a small machine: leaving them out fails here
        assert!(memory.metadata > 0, "{what}");
        close(what, &memory, actual);
    }
}

#[test]
fn the_l_mlps_workspace_is_its_three_hidden_activations() {
    // The L configuration of examples/bench.rs: 784-1024-1024-10 over 256 rows, f32. Each
    // hidden layer's bias-add, relu and relu gradient share one [256, 1024] buffer (relu
    // computes in place over the add; its gradient reads relu's output and computes in
    // place over it), and a third holds the matmuls' outputs and the input gradients in
    // turn; the logits and the loss gradient take a [256, 10] buffer each (the loss
    // gradient, alive while the next [256, 1024] gradient is made, no longer sits in the
    // third). It was 5,263,360 B (five [256, 1024] buffers and two [256, 10]) before.
    let m = mlp::<f32>(&[784, 1024, 1024, 10], 256, true);
    let mem = m.memory();
    let (act, logits) = (256 * 1024 * 4, 256 * 10 * 4);
    assert_eq!(mem.workspace, 3 * act + 2 * logits, "{mem:?}");
    // so the buffers are the live set: parameters, gradients, inputs, the activations,
    // and the loss and the constant 1 it is differentiated from
    let params = (784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10) * 4;
    assert_eq!((mem.params, mem.grads), (params, params), "{mem:?}");
    assert_eq!(mem.inputs, (256 * 784 + 256) * 4, "{mem:?}");
    let live = 2 * params + mem.inputs + mem.workspace + 4 + 4;
    assert_eq!(mem.buffers() - mem.scratch, live, "{mem:?}");
}

#[test]
fn metadata_alone_is_what_a_small_machine_mostly_holds() {
    // 2-16-2 at one row: a few hundred bytes of values, kilobytes of tape; counting only
    // the buffers would be far off
    let (m, actual) = held(|| mlp::<f32>(&[2, 16, 2], 1, true));
    let mem = m.memory();
    assert!(mem.buffers() * 20 < actual * 19, "{mem:?} vs {actual}");
    close("f32 train 2-16-2 upto 1", &mem, actual);
}

#[test]
fn feeding_and_running_change_nothing_held() {
    let (mut m, actual) = held(|| mlp::<f32>(&[4, 8, 3], 16, true));
    let before = m.memory();
    let x = m.handle_of("x").unwrap();
    let y = m.handle_of("y").unwrap();
    let xs = Array2::<f32>::from_elem((5, 4), 0.25);
    let ys = Array1::<f32>::from_elem(5, 1.0);
    let live = thread_live_bytes();
    m.feed(x, &xs).unwrap();
    m.feed(y, &ys).unwrap();
    m.run().unwrap();
    assert_eq!(thread_live_bytes(), live);
    assert_eq!(m.memory(), before);
    close("after a run of 5 rows", &before, actual);
}

#[test]
fn optimizer_state_is_counted_by_the_optimizer() {
    let mut m = mlp::<f32>(&[8, 8, 4], 4, true);
    let grads = m.grads().clone();
    m.feed_slice(m.handle_of("x").unwrap(), &[0.5; 32]).unwrap();
    m.feed_slice(m.handle_of("y").unwrap(), &[0.0, 1.0, 2.0, 3.0])
        .unwrap();
    m.run().unwrap();
    let params: usize = m.params().map(|(_, s)| s.numel()).sum();
    let mut sgd = Sgd::new(0.1).momentum(0.9);
    let mut adam = Adam::new(1e-3);
    let mut adamw = AdamW::new(1e-3);
    assert_eq!(
        (sgd.state_bytes(), adam.state_bytes(), adamw.state_bytes()),
        (0, 0, 0)
    );
    let live = thread_live_bytes();
    sgd.step(&mut m, &grads).unwrap();
    let sgd_held = thread_live_bytes() - live;
    assert_eq!(sgd.state_bytes() as isize, sgd_held);
    assert!(sgd.state_bytes() >= params * 4);
    let live = thread_live_bytes();
    adam.step(&mut m, &grads).unwrap();
    assert_eq!(adam.state_bytes() as isize, thread_live_bytes() - live);
    assert!(adam.state_bytes() >= 2 * params * 4);
    adamw.step(&mut m, &grads).unwrap();
    assert_eq!(adamw.state_bytes(), adam.state_bytes());
    // the machine's figure does not include any of it
    let total = m.memory().total();
    sgd.step(&mut m, &grads).unwrap();
    assert_eq!(m.memory().total(), total);
}

#[test]
fn gradients_sit_in_buffers_of_their_own_size() {
    // 64-32-10: every gradient is a parameter's size; before 7e4fba1 a bias gradient could
    // take a larger freed buffer and keep it whole
    for sizes in [&[64, 32, 10][..], &[2, 16, 2], &[784, 128, 10]] {
        let m = mlp::<f32>(sizes, 32, true);
        let params: usize = m.params().map(|(_, s)| s.numel()).sum();
        assert_eq!(m.memory().grads, params * 4, "{sizes:?}");
        assert_eq!(m.memory().params, params * 4, "{sizes:?}");
        let m = mlp::<f64>(sizes, 32, true);
        assert_eq!(m.memory().grads, params * 8, "{sizes:?}");
    }
}

#[test]
fn inference_only_machines_keep_no_gradient_buffers() {
    // the graph has its gradient recorded; a machine of its logits holds none of it:
    // no gradient bytes, and exactly what the same graph without `grad` compiles to
    let with_grad = mlp::<f32>(&[64, 32, 10], 32, false);
    let without = {
        let mut rng = StdRng::seed_from_u64(7);
        let g = Graph::<f32>::new();
        let x = g.input("x", (Dim::upto(32), 64));
        let _y = g.input("y", Dim::upto(32));
        let w0 = g.param("w0", init::kaiming_uniform([64, 32], &mut rng).unwrap());
        let b0 = g.param("b0", init::zeros([32]).unwrap());
        let w1 = g.param("w1", init::kaiming_uniform([32, 10], &mut rng).unwrap());
        let b1 = g.param("b1", init::zeros([10]).unwrap());
        let h = (x.matmul(w0) + b0).relu().matmul(w1) + b1;
        g.compile(&[h], &[]).unwrap()
    };
    assert_eq!(with_grad.memory().grads, 0);
    assert_eq!(with_grad.len(), without.len());
    assert_eq!(with_grad.memory(), without.memory());
    // a training machine of the same model does hold them
    assert!(mlp::<f32>(&[64, 32, 10], 32, true).memory().grads > 0);
}

#[test]
fn compile_within_a_budget() {
    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(16), 32));
    let w = g.param("w", init::zeros([32, 8]).unwrap());
    let loss = x.matmul(w).relu().sum();
    let grads = g.grad(loss, &[w]).unwrap();
    let needed = g.compile(&[loss], &grads).unwrap().memory();

    // at the exact figure and above, it fits
    for budget in [needed.total(), needed.total() + 1, usize::MAX] {
        let m = g.compile_within(&[loss], &grads, budget).unwrap();
        assert_eq!(m.memory(), needed);
    }
    // one byte short, or nothing at all
    for budget in [needed.total() - 1, 0] {
        let line = line!() + 1;
        let err = g.compile_within(&[loss], &grads, budget).unwrap_err();
        match &err {
            Error::Budget {
                budget: b,
                needed: n,
                memory,
                caller,
            } => {
                assert_eq!((*b, *n), (budget, needed.total()));
                assert_eq!(*memory, needed);
                assert_eq!((caller.file, caller.line), (file!(), line));
            }
            e => panic!("expected a budget error, got {e:?}"),
        }
        let text = err.to_string();
        let short = needed.total() - budget;
        for part in [
            format!("needs {} bytes", needed.total()),
            format!("budget is {budget}"),
            format!("{short} bytes short"),
            format!("params {}", needed.params),
            format!("grads {}", needed.grads),
            format!("workspace {}", needed.workspace),
            format!("metadata {}", needed.metadata),
            format!("memory.rs:{line}"),
        ] {
            assert!(text.contains(&part), "{part:?} not in {text:?}");
        }
    }
}

#[test]
fn a_refused_budget_allocates_no_value_buffers() {
    // 1 MiB of parameters: the budget is checked before the buffers are made
    let g = Graph::<f32>::new();
    let w = g.param("w", init::zeros([512, 512]).unwrap());
    let y = w.sum();
    let live = thread_live_bytes();
    reset_thread_peak();
    let r = g.compile_within(&[y], &[], 4096);
    assert!(matches!(r, Err(Error::Budget { .. })), "{r:?}");
    assert!(thread_peak_bytes() - live < 64 * 1024);
    drop(r);
    assert_eq!(thread_live_bytes(), live);
    reset_thread_peak();
    let m = g.compile_within(&[y], &[], usize::MAX).unwrap();
    assert!(thread_peak_bytes() - live >= 512 * 512 * 4);
    assert_eq!(m.memory().params, 512 * 512 * 4);
}

/// Byte counts that pass `usize` (elements that fit, times their size; or several
/// buffers together) are refused as over any budget, not wrapped to a small count that
/// passes the check, nor a panic; and so is a product whose `m * k * n` passes `usize`
/// while its matrices fit. On a 32-bit device the same happens from 2^30 f32 elements.
#[test]
fn byte_counts_past_usize_are_over_the_budget() {
    const HALF: usize = 1 << (usize::BITS - 2);
    const QUARTER: usize = HALF / 2;
    type Build = fn(&Graph<f32>) -> Tensor<'_, f32>;
    // each tensor within isize::MAX bytes (2^63 - 4), their sum past usize
    let graphs: [(&str, Build); 2] = [
        ("two inputs", |g| {
            g.input("a", [QUARTER - 1]) + g.input("b", [QUARTER - 1])
        }),
        ("three inputs", |g| {
            g.input("a", [QUARTER - 1]) + g.input("b", [1]) + g.input("c", [QUARTER - 1])
        }),
    ];
    for (what, build) in graphs {
        let g = Graph::<f32>::new();
        let y = build(&g);
        g.check().unwrap();
        for budget in [1 << 20, usize::MAX] {
            match g.compile_within(&[y], &[], budget) {
                Err(Error::Budget { needed, .. }) => assert_eq!(needed, usize::MAX, "{what}"),
                other => panic!("{what}, budget {budget}: {:?}", other.map(|m| m.memory())),
            }
        }
        // without a budget, more than any allocation may hold
        let e = g.compile(&[y], &[]).unwrap_err();
        let too_large = matches!(
            e,
            Error::TooLarge {
                what: "compile",
                bytes: usize::MAX,
                ..
            }
        );
        assert!(too_large, "{what}: {e}");
        assert!(
            e.to_string().contains("more bytes than a usize counts"),
            "{e}"
        );
    }
    // 2^62 elements fit a usize, their 2^64 bytes do not: refused where declared
    let g = Graph::<f32>::new();
    let y = g.input("a", [HALF]).sum();
    let r = g.compile_within(&[y], &[], usize::MAX);
    assert!(
        matches!(r, Err(Error::TooLarge { what: "input", .. })),
        "{:?}",
        r.map(|m| m.memory())
    );
    // m * k * n = 2^(3e + 2) passes usize (the GEMM's plan multiplied it)
    let e = usize::BITS / 3;
    let g = Graph::<f32>::new();
    let a = g.input("a", [1usize << (e + 1), 1 << e]);
    let y = a.matmul(g.input("b", [1usize << e, 1 << (e + 1)]));
    let budget = 1 << 20;
    match g.compile_within(&[y], &[], budget) {
        Err(Error::Budget { needed, .. }) => assert!(needed > budget),
        other => panic!("{:?}", other.map(|m| m.memory())),
    }
}
