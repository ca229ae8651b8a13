//! The crate's GEMM for its own benchmarks (`benches/gemm.rs`, `examples/bench.rs -- gemm`),
//! which time it beside matrixmultiply's. Hidden and not part of the public API: it may
//! change or go in any release. Programs multiply with [`Tensor::matmul`](crate::Tensor::matmul).

use alloc::format;

use crate::error::{Error, Result};
use crate::gemm::{gemm, scratch_len};

/// `c[m, n]` (row-major, overwritten) `= op(a) · op(b)` in f32, where `a` is `[m, k]`
/// row-major or, if `a_t`, stored as `[k, m]`, and `b` is `[k, n]` or, if `b_t`, stored as
/// `[n, k]`: the product a `matmul` node runs. It packs into `scratch`, allocates nothing,
/// and splits over up to [`threads`](crate::threads) threads when `scratch` holds
/// [`gemm_scratch_len_f32`] for that many; one thread needs `gemm_scratch_len_f32(m, k, n, 1)`.
///
/// # Errors
/// [`Error::InvalidArgument`] if `a`, `b` or `c` is shorter than its matrix, or `scratch`
/// shorter than one thread needs.
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_t: bool,
    b: &[f32],
    b_t: bool,
    c: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    let need = |what: &str, len: usize, rows: usize, cols: usize| -> Result<()> {
        match rows.checked_mul(cols) {
            Some(elements) if len >= elements => Ok(()),
            _ => Err(Error::InvalidArgument {
                what: "__bench::gemm_f32",
                reason: format!("{what} has {len} elements, its {rows}x{cols} matrix more"),
            }),
        }
    };
    need("a", a.len(), m, k)?;
    need("b", b.len(), k, n)?;
    need("c", c.len(), m, n)?;
    // `gemm` falls back to fewer threads, down to one, when the scratch is short
    let one = scratch_len::<f32>(m, k, n, 1);
    if scratch.len() < one {
        return Err(Error::InvalidArgument {
            what: "__bench::gemm_f32",
            reason: format!(
                "scratch has {} elements, a {m}x{k}x{n} product needs {one} \
                 (gemm_scratch_len_f32(m, k, n, 1))",
                scratch.len()
            ),
        });
    }
    gemm(m, k, n, a, a_t, b, b_t, c, scratch);
    Ok(())
}

/// Elements of scratch that [`gemm_f32`] needs for an `m × k × n` product split over up to
/// `threads` threads (0 for a product that does not pack: see `src/gemm/thin.rs`).
pub fn gemm_scratch_len_f32(m: usize, k: usize, n: usize, threads: usize) -> usize {
    scratch_len::<f32>(m, k, n, threads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn checks_every_length() {
        let (a, b) = ([1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [1.0f32, 1.0, 1.0]);
        let mut c = [0.0f32; 2];
        // [2, 3] · [3, 1]: row sums 6 and 15
        gemm_f32(2, 3, 1, &a, false, &b, false, &mut c, &mut []).unwrap();
        assert_eq!(c, [6.0, 15.0]);
        let short = [
            gemm_f32(2, 3, 1, &a[..5], false, &b, false, &mut c, &mut []),
            gemm_f32(2, 3, 1, &a, false, &b[..2], false, &mut c, &mut []),
            gemm_f32(2, 3, 1, &a, false, &b, false, &mut c[..1], &mut []),
            gemm_f32(usize::MAX, 2, 1, &a, false, &b, false, &mut c, &mut []),
        ];
        for (r, what) in short
            .into_iter()
            .zip(["a has 5", "b has 2", "c has 1", "a has 6"])
        {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("gemm_f32") && e.contains(what), "{e}");
        }
        // a product that packs needs its scratch
        let (m, k, n) = (16, 16, 16);
        let (a, b, mut c) = (vec![1.0; m * k], vec![1.0; k * n], vec![0.0; m * n]);
        let len = gemm_scratch_len_f32(m, k, n, 1);
        assert!(len > 0);
        let mut s = vec![0.0; len];
        let e = gemm_f32(m, k, n, &a, false, &b, true, &mut c, &mut s[..len - 1]);
        assert!(e.unwrap_err().to_string().contains("scratch"));
        gemm_f32(m, k, n, &a, false, &b, true, &mut c, &mut s).unwrap();
        assert!(c.iter().all(|&x| x == k as f32));
    }
}
