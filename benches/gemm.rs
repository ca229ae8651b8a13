//! Our GEMM (`src/gemm.rs`, through the hidden `tapegrad::__bench::gemm_f32`) beside
//! matrixmultiply's `sgemm` on the products of one mlp-step training step: the 8 of L
//! (784-1024-1024-10, batch 256), the 5 of M (784-128-10, batch 64) and the 5 of S
//! (64-32-10, batch 32), forward `x · W`,
//! weight gradients `xᵀ · dy` and input gradients `dy · Wᵀ` with the transposes tapegrad's
//! `matmul` VJP reads in place (`examples/bench_gemm/shapes.rs`), f32, preallocated
//! buffers, at 1 and 2 threads. Throughput is in FLOP/s (2 per multiply-add).
//!
//! ```text
//! cargo bench --bench gemm                   # about 1.5 minutes
//! cargo bench --bench gemm -- --quick        # a rough figure in about 20 s
//! cargo bench --bench gemm -- 'gemm-L-t2/'   # one group
//! ```
//!
//! matrixmultiply reads its thread count once per process (`MATMUL_NUM_THREADS`, its
//! `threading` feature), so this program runs itself once per thread count, in a child
//! process with `MATMUL_NUM_THREADS` and tapegrad's `set_threads` both set to it. Groups
//! are `gemm-{M,L}-t{1,2}`, benchmarks `tapegrad/MxKxN-ta-tb` and `matrixmultiply/...`.

use std::hint::black_box;
use std::process::{Command, ExitCode};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};

#[path = "../examples/bench_gemm/shapes.rs"]
#[allow(dead_code)]
mod shapes;
use shapes::{step_gemms, Buffers, CONFIGS};

/// Set in the child processes: the thread count they measure.
const CHILD: &str = "TAPEGRAD_GEMM_BENCH_THREADS";

fn bench(c: &mut Criterion, threads: usize) {
    tapegrad::set_threads(threads);
    for (cfg, sizes, batch) in CONFIGS {
        let mut group = c.benchmark_group(format!("gemm-{cfg}-t{threads}"));
        // L's products take milliseconds: few, short samples keep the run to minutes
        let (samples, secs) = if cfg == "L" { (10, 1.0) } else { (20, 0.5) };
        group
            .sample_size(samples)
            .warm_up_time(Duration::from_secs_f64(0.3))
            .measurement_time(Duration::from_secs_f64(secs));
        for g in step_gemms(sizes, batch) {
            let mut buf = Buffers::new(&g, threads);
            let id = format!("{}-{}-{}", g.label(), u8::from(g.a_t), u8::from(g.b_t));
            group.throughput(Throughput::Elements(g.flops() as u64));
            group.bench_function(BenchmarkId::new("tapegrad", &id), |b| {
                b.iter(|| {
                    buf.tapegrad(&g).expect("buffers sized for the product");
                    black_box(&mut buf.c);
                })
            });
            group.bench_function(BenchmarkId::new("matrixmultiply", &id), |b| {
                b.iter(|| {
                    buf.matrixmultiply(&g);
                    black_box(&mut buf.c_mm);
                })
            });
        }
        group.finish();
    }
}

fn main() -> ExitCode {
    if let Ok(t) = std::env::var(CHILD) {
        let Ok(threads) = t.parse::<usize>() else {
            eprintln!("{CHILD}={t:?} is not a thread count");
            return ExitCode::FAILURE;
        };
        let mut c = Criterion::default().configure_from_args();
        bench(&mut c, threads);
        c.final_summary();
        return ExitCode::SUCCESS;
    }
    let Ok(me) = std::env::current_exe() else {
        eprintln!("cannot find this program to run it per thread count");
        return ExitCode::FAILURE;
    };
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let mut ok = true;
    for threads in ["1", "2"] {
        let status = Command::new(&me)
            .args(&args)
            .env(CHILD, threads)
            .env("MATMUL_NUM_THREADS", threads)
            .status();
        ok &= matches!(status, Ok(s) if s.success());
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
