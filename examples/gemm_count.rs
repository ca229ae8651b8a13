//! One general product `c[m, n] = a[m, k] · b[k, n]`, repeated, through tapegrad (a compiled
//! machine running one `matmul`: the NEON kernel on aarch64) or through matrixmultiply's
//! `sgemm` / `dgemm`, on one thread. It prints a checksum of `c` and nothing else: it is the
//! program whose instructions `benches/aarch64_insns.sh` counts under qemu-aarch64 (the
//! difference between `reps` = 2 and 1 is one product in its steady state).
//!
//! ```text
//! cargo run --release --example gemm_count -- tapegrad f32 64 64 64 2
//! ```
//! Arguments: `tapegrad` or `matrixmultiply`, `f32` or `f64`, `m k n`, `reps`.

use std::process::ExitCode;

use tapegrad::ndarray::Array2;
use tapegrad::prelude::*;
use tapegrad::Scalar;

/// The checksum of `reps` products of the operands below, computed by `lib`.
fn product<T: Scalar + Reference>(
    lib: &str,
    (m, k, n): (usize, usize, usize),
    reps: usize,
) -> Result<f64, String> {
    // Values in [-1, 1) from a linear congruential generator.
    let mut s = 1u64;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        T::of((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
    };
    let a = Array2::from_shape_simple_fn((m, k), &mut next);
    let b = Array2::from_shape_simple_fn((k, n), &mut next);
    let sum = |c: &[T]| {
        c.iter()
            .map(|v| v.to_f64().unwrap_or(f64::NAN))
            .sum::<f64>()
    };
    match lib {
        "tapegrad" => {
            tapegrad::set_threads(1);
            let g = Graph::<T>::new();
            let (x, y) = (g.input("a", [m, k]), g.input("b", [k, n]));
            let c = x.matmul(y);
            let mut machine = g.compile(&[c], &[]).map_err(|e| e.to_string())?;
            machine.feed(x, &a).map_err(|e| e.to_string())?;
            machine.feed(y, &b).map_err(|e| e.to_string())?;
            for _ in 0..reps {
                machine.run().map_err(|e| e.to_string())?;
            }
            let c = machine.value(c).map_err(|e| e.to_string())?;
            Ok(c.iter().map(|v| v.to_f64().unwrap_or(f64::NAN)).sum())
        }
        "matrixmultiply" => {
            let (a, b) = (
                a.as_slice().ok_or("a not contiguous")?,
                b.as_slice().ok_or("b not contiguous")?,
            );
            let mut c = vec![T::zero(); m * n];
            for _ in 0..reps {
                T::gemm((m, k, n), a, b, &mut c);
            }
            Ok(sum(&c))
        }
        _ => Err(format!(
            "unknown library {lib:?}: tapegrad or matrixmultiply"
        )),
    }
}

/// matrixmultiply's product for `T`, on row-major operands.
trait Reference: Sized {
    fn gemm(mkn: (usize, usize, usize), a: &[Self], b: &[Self], c: &mut [Self]);
}

impl Reference for f32 {
    fn gemm((m, k, n): (usize, usize, usize), a: &[f32], b: &[f32], c: &mut [f32]) {
        assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n);
        let (k_, n_) = (k as isize, n as isize);
        // SAFETY: row-major `[m, k]`, `[k, n]` and `[m, n]` within the lengths checked above.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                k_,
                1,
                b.as_ptr(),
                n_,
                1,
                0.0,
                c.as_mut_ptr(),
                n_,
                1,
            )
        }
    }
}

impl Reference for f64 {
    fn gemm((m, k, n): (usize, usize, usize), a: &[f64], b: &[f64], c: &mut [f64]) {
        assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n);
        let (k_, n_) = (k as isize, n as isize);
        // SAFETY: as for f32.
        unsafe {
            matrixmultiply::dgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                k_,
                1,
                b.as_ptr(),
                n_,
                1,
                0.0,
                c.as_mut_ptr(),
                n_,
                1,
            )
        }
    }
}

fn main() -> ExitCode {
    // One thread for matrixmultiply too (its `threading` feature, on for examples, reads
    // this once, at its first product; unset it takes every physical core).
    std::env::set_var("MATMUL_NUM_THREADS", "1");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: gemm_count <tapegrad|matrixmultiply> <f32|f64> <m> <k> <n> <reps>";
    let parsed = (|| -> Result<f64, String> {
        let [lib, ty, m, k, n, reps] = args.as_slice() else {
            return Err(usage.into());
        };
        let num = |s: &String| {
            s.parse::<usize>()
                .map_err(|e| format!("{s:?}: {e}; {usage}"))
        };
        let (mkn, reps) = ((num(m)?, num(k)?, num(n)?), num(reps)?);
        match ty.as_str() {
            "f32" => product::<f32>(lib, mkn, reps),
            "f64" => product::<f64>(lib, mkn, reps),
            _ => Err(format!("unknown type {ty:?}; {usage}")),
        }
    })();
    match parsed {
        Ok(sum) => {
            println!("checksum {sum:.6}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
