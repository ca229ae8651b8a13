//! `bench -- gemm`: the products of one mlp-step training step (`shapes.rs`: the 5 of S,
//! the 5 of M, the 8 of L) through tapegrad's GEMM and matrixmultiply's `sgemm`, one line each:
//!
//! `gemm cfg=L role=forward layer=1 shape=256x784x1024 ta=0 tb=0 threads=1 tapegrad_us=…
//! matrixmultiply_us=… tapegrad_gflops=… ratio=…`
//!
//! then `gemm-total cfg=L threads=1 tapegrad_us=… matrixmultiply_us=… ratio=…`, the sum
//! over the step (matrixmultiply's is the "GEMMs only" floor of a step). `ratio` is
//! tapegrad's time over matrixmultiply's (below 1: tapegrad faster). Times are medians
//! of repetitions of about 0.2 s per product and library, the two libraries alternating
//! repetition by repetition so that both see the same load; preallocated buffers.

use std::process::{Command, ExitCode};
use std::time::Instant;

#[allow(dead_code)]
mod shapes;
use shapes::{step_gemms, Buffers, CONFIGS};

/// The median seconds of `f(true)` and of `f(false)`, timed alternately after a warm-up.
fn medians(mut f: impl FnMut(bool) -> tapegrad::Result<()>) -> tapegrad::Result<(f64, f64)> {
    let mut time = |which: bool| -> tapegrad::Result<f64> {
        let t = Instant::now();
        f(which)?;
        Ok(t.elapsed().as_secs_f64())
    };
    for _ in 0..3 {
        time(true)?;
        time(false)?;
    }
    let n = ((0.4 / (time(true)? + time(false)?)) as usize).clamp(15, 20_000);
    let (mut a, mut b) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        a.push(time(true)?);
        b.push(time(false)?);
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    Ok((a[n / 2], b[n / 2]))
}

/// The lines for `threads` (tapegrad's `set_threads`, and matrixmultiply's
/// `MATMUL_NUM_THREADS`, which must be set before its first product in this process).
pub fn run(threads: usize) -> Result<(), Box<dyn std::error::Error>> {
    tapegrad::set_threads(threads);
    for (cfg, sizes, batch) in CONFIGS {
        let (mut total_tg, mut total_mm) = (0.0, 0.0);
        for g in step_gemms(sizes, batch) {
            let mut buf = Buffers::new(&g, threads);
            let (tg, mm) = medians(|tapegrad| {
                if tapegrad {
                    buf.tapegrad(&g)
                } else {
                    buf.matrixmultiply(&g);
                    Ok(())
                }
            })?;
            // the two products agree (they sum in different orders)
            let diff = buf.max_rel_diff();
            if diff.is_nan() || diff >= 1e-4 {
                return Err(format!("{cfg} {}: the products differ by {diff}", g.label()).into());
            }
            total_tg += tg;
            total_mm += mm;
            println!(
                "gemm cfg={cfg} role={} layer={} shape={} ta={} tb={} threads={threads} \
                 tapegrad_us={:.1} matrixmultiply_us={:.1} tapegrad_gflops={:.1} ratio={:.2}",
                g.role,
                g.layer,
                g.label(),
                u8::from(g.a_t),
                u8::from(g.b_t),
                tg * 1e6,
                mm * 1e6,
                g.flops() / tg / 1e9,
                tg / mm
            );
        }
        println!(
            "gemm-total cfg={cfg} threads={threads} tapegrad_us={:.1} matrixmultiply_us={:.1} \
             ratio={:.2}",
            total_tg * 1e6,
            total_mm * 1e6,
            total_tg / total_mm
        );
    }
    Ok(())
}

/// `bench -- gemm [T]`: with `T`, the lines for `T` threads; without, those for 1 and 2
/// threads, each in a child process (matrixmultiply reads its thread count once).
pub fn main(args: &[String]) -> ExitCode {
    if let Some(t) = args.first() {
        let Ok(threads) = t.parse::<usize>() else {
            eprintln!("bench gemm: {t:?} is not a thread count");
            return ExitCode::FAILURE;
        };
        if std::env::var("MATMUL_NUM_THREADS").as_deref() != Ok(t.as_str()) {
            // before any other thread and before matrixmultiply's first product
            std::env::set_var("MATMUL_NUM_THREADS", t);
        }
        return match run(threads) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench gemm {threads}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let Ok(me) = std::env::current_exe() else {
        eprintln!("cannot find this program to run it per thread count");
        return ExitCode::FAILURE;
    };
    let mut ok = true;
    for threads in ["1", "2"] {
        let status = Command::new(&me)
            .args(["gemm", threads])
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
