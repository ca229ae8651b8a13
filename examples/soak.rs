//! A soak run: trains the S configuration of examples/bench.rs (a 64-32-10 MLP, batch 32,
//! f32, SGD) for STEPS steps on one compiled machine and checks that it stays flat.
//!
//! `cargo run --release --example soak -- STEPS` (default 100,000) prints, at every 10%,
//!
//! `soak step=… rss_kb=… loss=…`
//!
//! (resident memory from /proc/self/statm; `n/a` off Linux), then
//! `soak allocations_after_first_step=…`, counted by a global allocator of this example's
//! own on the training thread (the S configuration's kernels are below every threading
//! threshold, so they all run there; rayon's workers start on their own time and their
//! start-up allocations are not the machine's). Exits non-zero if anything was allocated
//! after the first step or the loss is not finite.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::process::ExitCode;

use rand::{Rng, SeedableRng};
use tapegrad::nn::MlpBuilder;
use tapegrad::prelude::*;
use tapegrad::Dim;

/// Counts each thread's allocations.
struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: a thread whose locals are being torn down is not counted
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

/// Allocations made so far by the calling thread.
fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Resident set size in KiB: statm's second field is resident pages.
fn rss_kb() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4)
}

fn main() -> tapegrad::Result<ExitCode> {
    let steps: usize = match std::env::args().nth(1) {
        None => 100_000,
        Some(s) => match s.replace(['_', ','], "").parse() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("usage: soak [STEPS]  (a whole number of at least 1, e.g. 1000000)");
                return Ok(ExitCode::from(2));
            }
        },
    };
    let (sizes, batch) = ([64, 32, 10], 32);
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(batch), sizes[0]));
    let y = g.input("y", Dim::upto(batch));
    let logits = MlpBuilder::new(&sizes)
        .build(&g, "mlp", &mut rng)
        .forward(x);
    let loss = logits.cross_entropy(y);
    let grads = g.grad(loss, &g.params())?;
    let mut m = g.compile(&[loss], &grads)?;
    let mut sgd = Sgd::new(0.01);
    // A fixed set of batches, learnable (the class is the argmax of the first 10 inputs),
    // cycled through so the loss falls and then holds.
    let batches: Vec<_> = (0..16)
        .map(|_| {
            let xb = ndarray::Array2::from_shape_fn((batch, sizes[0]), |_| {
                rng.random_range(-1.0f32..1.0)
            });
            let yb = ndarray::Array1::from_shape_fn(batch, |i| {
                let row = xb.row(i);
                (0..10)
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap_or(0) as f32
            });
            (xb, yb)
        })
        .collect();
    let mut after_first = 0;
    let every = (steps / 10).max(1);
    let mut last = f32::NAN;
    for step in 1..=steps {
        let (xb, yb) = &batches[step % batches.len()];
        m.feed(x, xb)?;
        m.feed(y, yb)?;
        m.run()?;
        sgd.step(&mut m, &grads)?;
        if step == 1 {
            after_first = allocs();
        }
        if step % every == 0 || step == steps {
            // the allocations of printing are not the machine's: left out of the count
            let before = allocs();
            last = m.item(loss)?;
            let rss = rss_kb().map_or("n/a".to_string(), |kb| kb.to_string());
            println!("soak step={step} rss_kb={rss} loss={last:.6}");
            after_first += allocs() - before;
        }
    }
    let allocations = allocs() - after_first;
    println!("soak allocations_after_first_step={allocations}");
    if allocations != 0 || !last.is_finite() {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
