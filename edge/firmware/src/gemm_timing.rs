//! The GEMM timing mode (feature `gemm-timing`): instructions per multiply-add of one
//! `M × K × N` f32 matrix product run through a compiled machine (the packed path and its
//! 4 × 4 portable micro-kernel; packing and the machine's dispatch are included, about
//! `M·K + K·N` copies against `M·K·N` multiply-adds).

use tapegrad::ndarray::Array2;
use tapegrad::prelude::*;

use crate::counter;
use semihosting::println;

const M: usize = 64;
const K: usize = 64;
const N: usize = 64;

/// Prints `gemm MxKxN instructions=… per_multiply_add=…` (the latter to two decimals),
/// whether the product is exact, and the heap's and the stack's peaks.
pub fn run(calibration: u64) -> Result<bool, Error> {
    let g = Graph::<f32>::new();
    let a = g.input("a", [M, K]);
    let b = g.input("b", [K, N]);
    let c = a.matmul(b);
    let mut m = g.compile(&[c], &[])?;
    // Small integers: every product and sum is exact, so the result is checkable.
    let av = Array2::from_shape_fn((M, K), |(i, p)| ((i + 2 * p) % 7) as f32);
    let bv = Array2::from_shape_fn((K, N), |(p, j)| ((3 * p + j) % 5) as f32);
    m.feed(a, &av)?;
    m.feed(b, &bv)?;
    // The first run may size buffers; the second is the one counted.
    m.run()?;
    let t0 = counter::ticks();
    m.run()?;
    let ticks = counter::ticks() - t0;
    let right = m.value(c)? == av.dot(&bv).into_dyn();
    let instructions = counter::instructions(ticks, calibration);
    let hundredths = instructions * 100 / (M * K * N) as u64;
    println!(
        "gemm {}x{}x{} instructions={} per_multiply_add={}.{:02} result={} heap_peak_bytes={} stack_peak_bytes={}",
        M,
        K,
        N,
        instructions,
        hundredths / 100,
        hundredths % 100,
        if right { "exact" } else { "WRONG" },
        crate::heap::HEAP.peak(),
        crate::stack::peak()
    );
    Ok(right)
}
