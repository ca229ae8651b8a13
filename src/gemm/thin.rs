//! Thin products: at most [`THIN`] rows, or a depth of at most `THIN` (a batch of one row
//! through a layer, and its weight gradient), or at most `THIN` columns of a small product
//! (a two-class output layer and its gradients). Packing would cost more than the product:
//! these stream the operands once instead, and need no scratch memory.

use super::View;
use crate::scalar::Scalar;

/// Products with at most this many rows, or this depth, skip packing (`thin`).
pub(super) const THIN: usize = 4;

/// Products of at most [`THIN`] columns are thin when `a` has at most this many elements.
/// Packing such a product pads its tiles to several times its size and asks for scratch
/// of `kc` times the tile widths (6,204 B for the 2-16-2 two-moons MLP's batch of 32,
/// f32, on x86), which matters on microcontrollers. Larger ones keep the packed path,
/// whose vector tiles suit long products.
pub(super) const THIN_COLUMNS_MAX_A: usize = 1 << 14;

/// Whether `gemm` computes an `m × k × n` product here (without packing or scratch).
/// Fewer rows (a run-time axis fed less than its bound) keep a thin product thin.
pub(super) fn is_thin(m: usize, k: usize, n: usize) -> bool {
    m <= THIN || k <= THIN || (n <= THIN && m.saturating_mul(k) <= THIN_COLUMNS_MAX_A)
}

/// Interleaved partial sums of a thin product's dot products.
pub(super) const LANES: usize = 16;

/// `c = op(a) · op(b)` without packing, for the products of [`is_thin`]; `a` read as
/// `[m, k]`, `b` stored `[k, n]` or, if `b_t`, `[n, k]`.
#[inline(always)]
pub(super) fn thin<T: Scalar, const FUSED: bool>(
    (m, k, n): (usize, usize, usize),
    a: View<T>,
    b: &[T],
    b_t: bool,
    c: &mut [T],
) {
    let fma = |x: T, y: T, acc: T| {
        if FUSED {
            x.mul_add(y, acc)
        } else {
            x * y + acc
        }
    };
    let at = |i: usize, p: usize| a.data[i * a.rs + p * a.ds];
    // `c_row = x * b_row` (the first multiply-add of a chain starting from zero), or
    // `c_row += x * b_row`: no pass that only zeroes `c`.
    let axpy = |c: &mut [T], x: T, b: &[T], first: bool| {
        if first {
            for (c, &y) in c.iter_mut().zip(b) {
                *c = fma(x, y, T::zero());
            }
        } else {
            for (c, &y) in c.iter_mut().zip(b) {
                *c = fma(x, y, *c);
            }
        }
    };
    if !b_t {
        // Row `i` of `c` is a chain of `axpy`s over the rows of `b`, in order: few rows of
        // `c` stay in cache while `b` streams once; few rows of `b` stay while `c` streams.
        if m <= THIN {
            for (p, b) in b.chunks_exact(n).take(k).enumerate() {
                for (i, c) in c.chunks_exact_mut(n).enumerate() {
                    axpy(c, at(i, p), b, p == 0);
                }
            }
        } else {
            for (i, c) in c.chunks_exact_mut(n).enumerate() {
                for (p, b) in b.chunks_exact(n).take(k).enumerate() {
                    axpy(c, at(i, p), b, p == 0);
                }
            }
        }
    } else if m <= THIN && a.ds == 1 {
        // `c[i, j]` is the dot product of rows `i` of `a` and `j` of `b`, both contiguous.
        for (j, b) in b.chunks_exact(k).take(n).enumerate() {
            for i in 0..m {
                let a = &a.data[i * a.rs..][..k];
                let mut acc = [T::zero(); LANES];
                let (mut xs, mut ys) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
                for (x, y) in (&mut xs).zip(&mut ys) {
                    for ((acc, &x), &y) in acc.iter_mut().zip(x).zip(y) {
                        *acc = fma(x, y, *acc);
                    }
                }
                let mut sum = acc.iter().fold(T::zero(), |s, &v| s + v);
                for (&x, &y) in xs.remainder().iter().zip(ys.remainder()) {
                    sum = fma(x, y, sum);
                }
                c[i * n + j] = sum;
            }
        }
    } else {
        for i in 0..m {
            for j in 0..n {
                let mut acc = T::zero();
                for p in 0..k {
                    acc = fma(at(i, p), b[j * k + p], acc);
                }
                c[i * n + j] = acc;
            }
        }
    }
}
