//! Small products read in place: `c[m, n] = a[m, k] · b[k, n]`, both row-major (`a` may
//! be stored transposed, `[k, m]`), without packing either operand: a convolution's
//! forward at a small batch (`w · cols`), and any small enough product `gemm` is given
//! (the S configuration's first layer `x · W1` and its weight gradient `xᵀ · dy`).
//!
//! There, packing is most of the product's cost besides the multiply-adds: the weights
//! are transposed into panels on every call (`transpose::blocks`), the columns copied into
//! strips, and both are then read once or twice. Read in place instead, a row of `a` is
//! broadcast one element per depth from its own row (a strided broadcast costs what a
//! packed one does) and a row of `b` is loaded as vectors, `n` apart per depth. Each
//! element of `c` is the same chain as the packed kernel's (`micro`): multiply-adds over
//! `k` in order from zero, fused, so the bits are those of [`gemm`](super::gemm) on the
//! same CPU (which on an AVX-512 CPU runs the fused `micro_avx512`).

use core::mem::size_of;

use super::thin::is_thin;
use super::Isa;
use crate::scalar::Scalar;

/// Rows of a tile.
const MR: usize = 8;

/// Elements of `b` up to which it is read in place (64 KiB of f32: it stays in L2 while
/// the tiles of each strip of rows read it). Larger operands keep the packed GEMM, whose
/// panels stay in cache.
const B_MAX: usize = 1 << 14;

/// Whether [`gemm_small`] runs an `[m, k] · [k, n]` product of `T` here (operands of
/// those sizes).
pub(crate) fn small_fits<T: Scalar>(m: usize, k: usize, n: usize) -> bool {
    size_of::<T>() == 4
        && m % MR == 0
        && n % 16 == 0
        && k.saturating_mul(n) <= B_MAX
        && !is_thin(m, k, n)
        && Isa::get() == Isa::Avx512
}

/// Computes `c = op(a) · b` (`a` `[m, k]` or, if `a_t`, stored `[k, m]` as the weight
/// gradient `xᵀ · dy` reads `x`; `b` `[k, n]`; `c` `[m, n]`; row-major, `c` overwritten)
/// in place if it applies here: f32 on an AVX-512 CPU (the kernel `gemm` runs there,
/// fused), not a thin product, `m` a multiple of 8 rows, `n` of 16 columns, `b` small.
/// Returns whether it did; if not, the caller runs the packed GEMM.
pub(crate) fn gemm_small<T: Scalar>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_t: bool,
    b: &[T],
    c: &mut [T],
) -> bool {
    let fits = small_fits::<T>(m, k, n) && a.len() >= m * k && b.len() >= k * n && c.len() >= m * n;
    if !fits {
        return false;
    }
    // element (r, p) of `a` at r * rs + p * cs
    let strides = if a_t { (1, m) } else { (k, 1) };
    // SAFETY: `Isa::Avx512` is only chosen where the CPU has AVX-512F, AVX2 and FMA.
    unsafe {
        if n % 32 == 0 {
            tiles::<T, 32>((m, k, n), a, strides, b, c);
        } else {
            tiles::<T, 16>((m, k, n), a, strides, b, c);
        }
    }
    true
}

/// The `MR × NR` tiles of `c`, strip of columns by strip.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn tiles<T: Scalar, const NR: usize>(
    (m, k, n): (usize, usize, usize),
    a: &[T],
    (rs, cs): (usize, usize),
    b: &[T],
    c: &mut [T],
) {
    for j in (0..n).step_by(NR) {
        for i in (0..m).step_by(MR) {
            let a = &a[i * rs..];
            // SAFETY: the CPU has what the kernel needs (this function's contract).
            unsafe { tile::<T, NR>(a, (rs, cs), &b[j..], (k, n), &mut c[i * n + j..]) };
        }
    }
}

/// `c[r * n..][..NR] = Σ_p a[r * rs + p * cs] · b[p * n..][..NR]` for the rows `r < MR`:
/// the loops of `kernel::micro` (columns outermost, rows unrolled, `acc` in registers)
/// with `a` and `b` read where they lie.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline(never)]
unsafe fn tile<T: Scalar, const NR: usize>(
    a: &[T],
    (rs, cs): (usize, usize),
    b: &[T],
    (k, n): (usize, usize),
    c: &mut [T],
) {
    // The loop reads `a[r * rs + p * cs]` and `b[p * n..][..NR]` unchecked: a bounds check
    // per element read (LLVM kept all eight rows' checks) halved the kernel's speed.
    // (`gemm_small` checked the lengths; `k > 0` as the product is not thin)
    assert!(k > 0 && a.len() > (MR - 1) * rs + (k - 1) * cs);
    assert!(b.len() >= (k - 1) * n + NR && n >= NR);
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [[T::zero(); NR]; MR];
    for p in 0..k {
        let mut ap = [T::zero(); MR];
        for (r, v) in ap.iter_mut().enumerate() {
            // SAFETY: r * rs + p * cs <= (MR - 1) * rs + (k - 1) * cs < a.len(), checked
            // above.
            *v = unsafe { *pa.add(r * rs + p * cs) };
        }
        // SAFETY: p * n + NR <= (k - 1) * n + NR <= b.len(), checked above.
        let bp: [T; NR] = unsafe { pb.add(p * n).cast::<[T; NR]>().read_unaligned() };
        for (j, &bv) in bp.iter().enumerate() {
            for (acc, &av) in acc.iter_mut().zip(&ap) {
                acc[j] = av.mul_add(bv, acc[j]);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        c[r * n..][..NR].copy_from_slice(acc);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{gemm_with, scratch_len, Isa};
    use alloc::vec;
    use alloc::vec::Vec;

    /// Against the packed GEMM on the AVX-512 kernel, bit for bit: the digits CNN's
    /// products at batch 1 (16×9×64, 32×144×64, 64×288×16: a depth past the packed
    /// kernel's `kc` of 256), the S configuration's (32×64×32, and 64×32×32 with `a`
    /// transposed), each with `a` straight and transposed, both tile widths, values with
    /// signed zeros, and a `c` whose cells start as garbage, between sentinels.
    #[test]
    fn equals_the_packed_gemm() {
        if Isa::get() != Isa::Avx512 {
            return;
        }
        let cases = [
            (16, 9, 64),
            (32, 144, 64),
            (64, 288, 16),
            (8, 5, 48),
            (24, 300, 32),
            (32, 64, 32),
            (64, 32, 32),
        ];
        for ((m, k, n), a_t) in cases.into_iter().flat_map(|c| [(c, false), (c, true)]) {
            let val = |i: usize, s: usize| -> f32 {
                let v = ((i * 7919 + s * 104_729) % 2001) as f32 / 1000.0 - 1.0;
                // a few signed zeros: `0 · x` chains whose sign the order decides
                if i % 13 == 0 {
                    -0.0
                } else {
                    v
                }
            };
            let a: Vec<f32> = (0..m * k).map(|i| val(i, 1)).collect();
            let b: Vec<f32> = (0..k * n).map(|i| val(i, 2)).collect();
            let mut got = vec![f32::NAN; m * n + 3];
            assert!(super::gemm_small(m, k, n, &a, a_t, &b, &mut got[..m * n]));
            assert!(got[m * n..].iter().all(|v| v.is_nan()), "wrote past c");
            let mut want = vec![0.0f32; m * n];
            let blk = Isa::Avx512.blocking::<f32>();
            let mut s = vec![0.0f32; scratch_len::<f32>(m, k, n, 1)];
            gemm_with(
                Isa::Avx512,
                blk,
                1,
                m,
                k,
                n,
                &a,
                a_t,
                &b,
                false,
                &mut want,
                &mut s,
            );
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got[..m * n]), bits(&want), "{m}x{k}x{n} a_t {a_t}");
        }
        // what it leaves to the packed GEMM
        let (a, b, mut c) = (
            vec![1.0f32; 64 * 64],
            vec![1.0f32; 64 * 64],
            vec![0.0; 64 * 64],
        );
        assert!(
            !super::gemm_small(7, 9, 64, &a, false, &b, &mut c),
            "rows not a multiple of 8"
        );
        assert!(
            !super::gemm_small(8, 9, 24, &a, false, &b, &mut c),
            "columns not of 16"
        );
        assert!(!super::gemm_small(8, 4, 64, &a, false, &b, &mut c), "thin");
        let (a64, b64, mut c64) = (
            vec![1.0f64; 64 * 64],
            vec![1.0f64; 64 * 64],
            vec![0.0; 4096],
        );
        assert!(
            !super::gemm_small(8, 9, 64, &a64, false, &b64, &mut c64),
            "f64"
        );
    }
}
